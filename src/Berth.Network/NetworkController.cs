using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Berth.Network.Nat;
using Berth.Network.Netlink;
using Berth.Network.State;

namespace Berth.Network;

/// <summary>
/// Docker's network model for berthd: networks (a bridge, a subnet, NAT rules), endpoints (a veth
/// pair whose inner end lives in a container's namespace, an address, published ports) and the
/// sandbox (that namespace, owned by the runtime and referred to by path). macvlan and ipvlan
/// networks have a parent link instead of a bridge and endpoints without a host end, no rules nor
/// forwarding (NetworkController.MacvlanIpvlan.cs).
///
/// State is persisted under <see cref="NetworkControllerOptions.StateDirectory"/> before an
/// operation returns; the kernel objects are derived from it and named so that a restart can
/// tell ours apart: bridges <c>berth0</c>/<c>bb-&lt;id12&gt;</c>, host-side veths <c>vb&lt;id10&gt;</c>,
/// rules in <c>table ip berth</c> (and <c>table ip6 berth</c> while a network is dual stack). <see cref="Reconcile"/> (daemon start) makes the kernel match
/// the state again and drops what a crash left behind.
///
/// Every operation validates first, then acts, and undoes what it did if a later step fails,
/// so a refused request leaves no link, rule or address behind. Calls are serialised by one lock.
/// </summary>
public sealed partial class NetworkController : IDisposable
{
    public const string DefaultNetworkName = "bridge";
    internal const string BridgePrefix = "bb-", VethPrefix = "vb";

    private readonly NetworkControllerOptions _options;
    private readonly Lock _lock = new();
    private readonly NetlinkSocket _host;
    private readonly NftFirewall _firewall;
    private readonly Ipam _ipam;
    private readonly string _networksDir, _endpointsDir, _forwardingFile, _forwarding6File;
    private readonly Dictionary<string, NetworkRecord> _networks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, EndpointRecord> _endpoints = new(StringComparer.Ordinal);
    /// <summary>Endpoint id → the host sockets of its published ports (held while the endpoint lives; not persisted).</summary>
    private readonly Dictionary<string, PublishedPortSockets> _portSockets = new(StringComparer.Ordinal);
    private bool _tableReady;

    private NetworkController(NetworkControllerOptions options)
    {
        _options = options;
        _networksDir = Path.Combine(options.StateDirectory, "networks");
        _endpointsDir = Path.Combine(options.StateDirectory, "endpoints");
        _forwardingFile = Path.Combine(options.StateDirectory, "ip_forward.json");
        _forwarding6File = Path.Combine(options.StateDirectory, "ipv6_forwarding.json");
        Directory.CreateDirectory(_networksDir);
        Directory.CreateDirectory(_endpointsDir);
        AtomicFile.RemoveLeftovers(_networksDir);
        AtomicFile.RemoveLeftovers(_endpointsDir);
        AtomicFile.RemoveLeftovers(options.StateDirectory);
        foreach (var f in Directory.EnumerateFiles(_networksDir, "*.json"))
        {
            var n = JsonSerializer.Deserialize(File.ReadAllText(f), StateJson.Default.NetworkRecord)!;
            _networks[n.Id] = n;
        }
        foreach (var f in Directory.EnumerateFiles(_endpointsDir, "*.json"))
        {
            var e = JsonSerializer.Deserialize(File.ReadAllText(f), StateJson.Default.EndpointRecord)!;
            _endpoints[e.Id] = e;
        }
        _ipam = new Ipam(options.StateDirectory);
        _firewall = new NftFirewall(options.HostNetnsPath);
        _host = NetlinkSocket.OpenIn(options.HostNetnsPath);
    }

    /// <summary>Loads the persisted state; touches no kernel object until the first operation (call <see cref="Reconcile"/> at daemon start).</summary>
    public static NetworkController Open(NetworkControllerOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(options.StateDirectory);
        return new NetworkController(options);
    }

    /// <summary>Link deletions still running in the background (see <see cref="DeleteEndpoint"/>).</summary>
    private readonly List<Task> _pendingDeletions = [];

    /// <summary>The background deletions' own netlink socket (opened on first use), used under <see cref="_deleterLock"/> only.</summary>
    private NetlinkSocket? _deleter;
    private readonly Lock _deleterLock = new();

    public void Dispose()
    {
        Task[] pending;
        lock (_pendingDeletions) pending = [.. _pendingDeletions];
        Task.WaitAll(pending, TimeSpan.FromSeconds(10));
        lock (_deleterLock) _deleter?.Dispose();
        StopAllDns();
        lock (_lock)
        {
            foreach (var sockets in _portSockets.Values) sockets.Dispose();
            _portSockets.Clear();
        }
        _host.Dispose();
    }

    public IReadOnlyList<NetworkInfo> Networks
    {
        get { lock (_lock) return _networks.Values.OrderBy(n => n.Created).Select(ToInfo).ToList(); }
    }

    public IReadOnlyList<EndpointInfo> Endpoints
    {
        get { lock (_lock) return _endpoints.Values.Select(ToInfo).ToList(); }
    }

    /// <summary>A network by id, unique id prefix or name.</summary>
    public NetworkInfo GetNetwork(string idOrName)
    {
        lock (_lock) return ToInfo(Find(idOrName));
    }

    public EndpointInfo GetEndpoint(string endpointId)
    {
        lock (_lock) return ToInfo(FindEndpoint(endpointId));
    }

    // ---- networks ----

    /// <summary>The default network ("bridge" on <see cref="NetworkControllerOptions.DefaultBridge"/>), created if missing.</summary>
    public NetworkInfo EnsureDefaultNetwork()
    {
        lock (_lock)
        {
            var existing = _networks.Values.FirstOrDefault(n => n.Name == DefaultNetworkName);
            return existing is not null ? ToInfo(existing) : CreateNetworkLocked(new NetworkCreateOptions
            {
                Name = DefaultNetworkName,
                // dockerd: with --fixed-cidr and no --bip the fixed range is the bridge's subnet too.
                Subnet = _options.DefaultSubnet ?? _options.DefaultIpRange,
                IpRange = _options.DefaultIpRange,
                Mtu = _options.DefaultMtu,
                EnableIcc = _options.DefaultIcc,
                HostBindingIpv4 = _options.DefaultHostBindingIpv4,
                EnableIpv6 = _options.DefaultEnableIpv6,
                Subnet6 = _options.DefaultEnableIpv6 ? _options.DefaultSubnet6 : null,
            });
        }
    }

    public NetworkInfo CreateNetwork(NetworkCreateOptions options)
    {
        lock (_lock) return CreateNetworkLocked(options);
    }

    private NetworkInfo CreateNetworkLocked(NetworkCreateOptions o)
    {
        // Validate everything before the first change.
        if (string.IsNullOrWhiteSpace(o.Name) || o.Name.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.')))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid network name \"{o.Name}\" (letters, digits, '-', '_', '.')");
        if (_networks.Values.Any(n => n.Name == o.Name)) throw new NetworkException(NetworkErrorKind.Conflict, $"network with name {o.Name} already exists");
        if (o.Mtu is { } m && m is < 68 or > 65535) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid MTU {m}");
        IPAddress? gateway = null;
        if (o.Gateway is not null && (!IPAddress.TryParse(o.Gateway, out gateway) || gateway.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid gateway \"{o.Gateway}\"");
        if (o.Subnet is null && gateway is not null) throw new NetworkException(NetworkErrorKind.InvalidArgument, "a gateway needs a subnet");
        if (!o.EnableIpv6 && (o.Subnet6 is not null || o.Gateway6 is not null))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"IPv6 subnet or gateway given but IPv6 is not enabled on network {o.Name} (--ipv6)");
        IPAddress? gateway6 = null;
        if (o.Gateway6 is not null && (!IPAddress.TryParse(o.Gateway6, out gateway6) || gateway6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid IPv6 gateway \"{o.Gateway6}\"");
        if (o.Subnet6 is null && gateway6 is not null) throw new NetworkException(NetworkErrorKind.InvalidArgument, "an IPv6 gateway needs an IPv6 subnet");
        Ipv6Subnet? subnet6 = o.Subnet6 is null ? null : Ipv6Subnet.Parse(o.Subnet6);
        if (o.Subnet is null && (o.IpRange is not null || o.AuxAddresses is { Count: > 0 }))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, "every ip-range or auxiliary address must have a corresponding subnet");
        Ipv4Subnet? range = o.IpRange is null ? null : Ipv4Subnet.Parse(o.IpRange);
        var aux = new Dictionary<string, IPAddress>(StringComparer.Ordinal);
        foreach (var (name, text) in o.AuxAddresses ?? new Dictionary<string, string>())
        {
            if (!IPAddress.TryParse(text, out var a) || a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid auxiliary address {name}: invalid address {text}");
            aux[name] = a;
        }
        if (o.Subnet6 is null && (o.IpRange6 is not null || o.AuxAddresses6 is { Count: > 0 }))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, "every ip-range or auxiliary address must have a corresponding subnet");
        Ipv6Subnet? range6 = o.IpRange6 is null ? null : Ipv6Subnet.Parse(o.IpRange6);
        var aux6 = new Dictionary<string, IPAddress>(StringComparer.Ordinal);
        foreach (var (name, text) in o.AuxAddresses6 ?? new Dictionary<string, string>())
        {
            if (!IPAddress.TryParse(text, out var a) || a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6 || a.ScopeId != 0)
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid auxiliary address {name}: invalid address {text}");
            aux6[name] = a;
        }
        IPAddress? hostBinding = null;
        if (o.HostBindingIpv4 is not null && (!IPAddress.TryParse(o.HostBindingIpv4, out hostBinding) || hostBinding.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid host binding address \"{o.HostBindingIpv4}\": give an IPv4 address");
        if (IPAddress.Any.Equals(hostBinding)) hostBinding = null;
        var lan = o.Driver != NetworkDrivers.Bridge;
        var parentPlan = lan ? PlanParent(o) : null;
        if (o.EnableIpv6)
        {
            // The kernel drops IPv6 from a link whose MTU is below 1280 (RFC 8200's minimum).
            if (o.Mtu is < 1280) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid MTU {o.Mtu} for an IPv6 network: at least 1280");
            RequireKernelIpv6();
        }
        var routes = _host.ListRoutes();
        var subnet = o.Subnet is not null
            ? Ipv4Subnet.Parse(o.Subnet)
            : _ipam.ChooseSubnet(routes.Where(r => r.Destination.PrefixLength > 0 && r.Table != 255).Select(r => r.Destination), _options.DefaultAddressPools);
        if (o.EnableIpv6 && subnet6 is null)
            subnet6 = _ipam.ChooseSubnet6(UlaPrefix(), _host.ListRoutes6().Where(r => r.Destination.PrefixLength > 0 && r.Table != 255).Select(r => r.Destination));
        var id = NewId();
        var bridge = lan ? "" : o.Name == DefaultNetworkName ? _options.DefaultBridge : BridgePrefix + id[..12];
        if (!lan && _host.GetLink(bridge) is not null) throw new NetworkException(NetworkErrorKind.Conflict, $"a link named {bridge} already exists");
        var mtu = lan ? 0 : o.Mtu ?? UplinkMtu(routes);
        if (!lan && subnet6 is not null && mtu < 1280)
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"the uplink's MTU {mtu} is below IPv6's minimum of 1280: give an MTU (-o com.docker.network.driver.mtu=1280) for an IPv6 network");

        var undo = new Stack<Action>();
        try
        {
            gateway = _ipam.AddPool(id, subnet, gateway, subnet6, gateway6, range, aux, range6, aux6); // refuses overlaps, persists
            undo.Push(() => _ipam.RemovePool(id));
            gateway6 = _ipam.GetPool6(id)?.Gateway;
            string? parent = null;
            if (parentPlan is not null)
            {
                // After the pool, as dockerd: a subnet overlapping another network's is refused first.
                parent = PrepareParent(o.Driver, id, parentPlan, undo);
                mtu = _host.GetLink(parent)?.Mtu ?? 0;
            }
            else
            {
                EnsureForwarding();
                if (subnet6 is not null) EnsureForwarding6();
                _host.CreateBridge(bridge, mtu);
                undo.Push(() => _host.DeleteLink(bridge));
                ConfigureBridge(bridge, gateway, subnet, gateway6, subnet6);
                var rules = new NftFirewall.NetworkRules(bridge, subnet, o.Internal, subnet6);
                // The IPv6 table exists only while a dual-stack network does: such a network rebuilds both.
                if (!_tableReady || subnet6 is not null) RebuildTable(extraNetwork: rules);
                else
                {
                    _firewall.AddNetwork(rules);
                }
                undo.Push(() => { if (subnet6 is not null) RebuildTable(); else RemoveNetworkRules(rules); });
            }
            var record = new NetworkRecord
            {
                Id = id, Name = o.Name, Bridge = bridge, Subnet = subnet.ToString(), Gateway = gateway.ToString(),
                // dockerd: a macvlan or ipvlan network without a parent sits on a dummy link and is internal.
                Internal = o.Internal || parentPlan is { Kind: ParentKind.Dummy }, Mtu = mtu, Created = DateTimeOffset.UtcNow,
                Labels = o.Labels is { Count: > 0 } l ? new Dictionary<string, string>(l, StringComparer.Ordinal) : null,
                DriverOptions = o.DriverOptions is { Count: > 0 } d ? new Dictionary<string, string>(d, StringComparer.Ordinal) : null,
                ConfiguredSubnet = o.Subnet is not null,
                Attachable = o.Attachable,
                IpamOptions = o.IpamOptions is { } ipam ? new Dictionary<string, string>(ipam, StringComparer.Ordinal) : null,
                Subnet6 = subnet6?.ToString(), Gateway6 = gateway6?.ToString(), ConfiguredSubnet6 = o.Subnet6 is not null,
                IpRange = range?.ToString(),
                AuxAddresses = aux.Count > 0 ? aux.ToDictionary(a => a.Key, a => a.Value.ToString(), StringComparer.Ordinal) : null,
                IpRange6 = range6?.ToString(),
                AuxAddresses6 = aux6.Count > 0 ? aux6.ToDictionary(a => a.Key, a => a.Value.ToString(), StringComparer.Ordinal) : null,
                IccDisabled = !o.EnableIcc,
                HostBindingIpv4 = hostBinding?.ToString(),
                Driver = lan ? o.Driver : null,
                Parent = parent,
                ParentCreated = parentPlan is { Kind: not ParentKind.Existing },
                Mode = parentPlan?.Mode,
                IpvlanFlag = parentPlan?.IpvlanFlag,
                ConfiguredGateway = o.Gateway is not null,
                ConfiguredGateway6 = o.Gateway6 is not null,
            };
            AtomicFile.Write(Path.Combine(_networksDir, id + ".json"), JsonSerializer.Serialize(record, StateJson.Default.NetworkRecord));
            _networks[id] = record;
            return ToInfo(record);
        }
        catch
        {
            Undo(undo);
            if (!lan)
            {
                if (!_networks.Values.Any(IsBridge)) ReleaseForwarding();
                if (!_networks.Values.Any(n => IsBridge(n) && n.Subnet6 is not null)) ReleaseForwarding6();
            }
            throw;
        }
    }

    /// <summary>The gateway address(es) on a new or recreated bridge; IPv6 enabled on it first when the network is dual stack.</summary>
    private void ConfigureBridge(string bridge, IPAddress gateway, Ipv4Subnet subnet, IPAddress? gateway6, Ipv6Subnet? subnet6)
    {
        var index = _host.GetIndex(bridge);
        _host.AddAddress(index, gateway, subnet.PrefixLength);
        Sysctl.Write(_options.HostNetnsPath, $"net/ipv4/conf/{bridge}/route_localnet", "1");
        if (subnet6 is { } s6 && gateway6 is not null)
        {
            // A new link takes net.ipv6.conf.default.disable_ipv6, which hosts that keep IPv6 off
            // their interfaces set to 1: the bridge needs it on, whatever the default.
            Sysctl.Write(_options.HostNetnsPath, $"net/ipv6/conf/{bridge}/disable_ipv6", "0");
            // fe80::1 on the bridge, as libnetwork gives docker0. The kernel solicits the neighbour
            // for a *forwarded* packet (a published port's DNAT, the reply to outbound traffic) from
            // the outgoing link's link-local address, and sends nothing while it has none. The kernel
            // makes a bridge's own link-local address only once the bridge has a carrier, which
            // linkwatch reports up to a second after the first port joined (then DAD adds another
            // second): IPv6 to a network's first container was lost for 1-2 s after its start.
            _host.AddAddress6(index, IPAddress.Parse("fe80::1"), 64);
            _host.AddAddress6(index, gateway6, s6.PrefixLength);
        }
    }

    /// <summary>A dual-stack network needs the kernel's IPv6 in the bridges' namespace (absent with ipv6.disable=1).</summary>
    private void RequireKernelIpv6()
    {
        try { Sysctl.Read(_options.HostNetnsPath, "net/ipv6/conf/all/forwarding"); }
        catch (NetworkException e)
        {
            throw new NetworkException(NetworkErrorKind.Unavailable, $"IPv6 networks need IPv6 in the kernel: {e.Message}", e);
        }
    }

    /// <summary>The ULA /48 default IPv6 subnets come from (see <see cref="NetworkControllerOptions.Ipv6UlaPrefix"/>).</summary>
    private Ipv6Subnet UlaPrefix()
    {
        if (_options.Ipv6UlaPrefix is { } given)
        {
            var prefix = Ipv6Subnet.Parse(given);
            if (prefix.PrefixLength != 48 || (byte)(prefix.Network >> 120) is not (>= 0xfc and <= 0xfd))
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"IPv6 ULA prefix {given} is not a /48 in fc00::/7");
            return prefix;
        }
        var machineId = File.Exists("/etc/machine-id") ? File.ReadAllText("/etc/machine-id").Trim() : "";
        var hash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"berth ULA\n{machineId}\n{Path.GetFullPath(_options.StateDirectory)}"));
        Span<byte> bytes = stackalloc byte[16];
        bytes[0] = 0xfd; // fd00::/8: locally assigned ULA
        hash.AsSpan(0, 5).CopyTo(bytes[1..]);
        return new Ipv6Subnet(BinaryPrimitives.ReadUInt128BigEndian(bytes), 48);
    }

    /// <summary>Removes a network that has no endpoint left (Conflict otherwise): its rules, bridge and pool.</summary>
    public void RemoveNetwork(string idOrName)
    {
        lock (_lock)
        {
            var n = Find(idOrName);
            var attached = _endpoints.Values.Count(e => e.NetworkId == n.Id);
            if (attached > 0) throw new NetworkException(NetworkErrorKind.Conflict, $"network {n.Name} has {attached} active endpoint(s)");
            if (!IsBridge(n))
            {
                if (n.ParentCreated && n.Parent is not null) _host.DeleteLink(n.Parent);
            }
            else
            {
                if (_networks.Values.Count(IsBridge) == 1)
                {
                    _firewall.DeleteTable();
                    _tableReady = false;
                }
                else if (n.Subnet6 is not null)
                {
                    RebuildTable(excludeNetwork: n.Bridge); // drops the IPv6 table with the last dual-stack network
                }
                else
                {
                    RemoveNetworkRules(RulesOf(n));
                }
                _host.DeleteLink(n.Bridge);
            }
            _ipam.RemovePool(n.Id);
            AtomicFile.Delete(Path.Combine(_networksDir, n.Id + ".json"));
            _networks.Remove(n.Id);
            if (!_networks.Values.Any(IsBridge)) ReleaseForwarding();
            if (!_networks.Values.Any(x => IsBridge(x) && x.Subnet6 is not null)) ReleaseForwarding6();
        }
    }

    private void RemoveNetworkRules(NftFirewall.NetworkRules rules)
    {
        try { _firewall.RemoveNetwork(rules); }
        catch (NetworkException)
        {
            // An element already gone makes the whole delete batch fail: fall back to rebuilding from state.
            RebuildTable(excludeNetwork: rules.Bridge);
        }
    }

    // ---- helpers ----

    private void RebuildTable(NftFirewall.NetworkRules? extraNetwork = null, string? excludeNetwork = null, string? excludeEndpoint = null,
        NftFirewall.EndpointRules? extraEndpoint = null)
    {
        var networks = _networks.Values.Where(n => IsBridge(n) && n.Bridge != excludeNetwork).Select(RulesOf).ToList();
        if (extraNetwork is not null) networks.Add(extraNetwork);
        var endpoints = _endpoints.Values.Where(e => e.Id != excludeEndpoint && e.Ports.Count > 0)
            .Select(e => new NftFirewall.EndpointRules(e.Address, e.Ports, e.Address6)).ToList();
        if (extraEndpoint is not null) endpoints.Add(extraEndpoint);
        if (networks.Count == 0)
        {
            _firewall.DeleteTable();
            _tableReady = false;
            return;
        }
        _firewall.Rebuild(networks, endpoints);
        _tableReady = true;
    }

    /// <summary>A bridge network (with a bridge, NAT rules and forwarding); macvlan and ipvlan networks have none of these.</summary>
    private static bool IsBridge(NetworkRecord n) => n.Driver is null;

    private static NftFirewall.NetworkRules RulesOf(NetworkRecord n) =>
        new(n.Bridge, Ipv4Subnet.Parse(n.Subnet), n.Internal, n.Subnet6 is null ? null : Ipv6Subnet.Parse(n.Subnet6));

    /// <summary>Turns net.ipv4.ip_forward on in the bridges' namespace, remembering (persisted, first) that Berth did.</summary>
    private void EnsureForwarding() => EnsureSysctlOn(_forwardingFile, "net/ipv4/ip_forward");

    /// <summary>After the last network: turns ip_forward back off if Berth turned it on.</summary>
    private void ReleaseForwarding() => ReleaseSysctl(_forwardingFile, "net/ipv4/ip_forward");

    /// <summary>
    /// The same for IPv6 (a dual-stack network): net.ipv6.conf.all.forwarding, as docker sets it.
    /// Writing "all" sets forwarding on every interface, and an interface that forwards ignores
    /// router advertisements unless its accept_ra is 2: a host that learns its IPv6 default route by
    /// SLAAC loses it at expiry (docker documents the same; set accept_ra=2 on the uplink first).
    /// </summary>
    private void EnsureForwarding6() => EnsureSysctlOn(_forwarding6File, "net/ipv6/conf/all/forwarding");

    /// <summary>After the last dual-stack network: turns IPv6 forwarding back off if Berth turned it on.</summary>
    private void ReleaseForwarding6() => ReleaseSysctl(_forwarding6File, "net/ipv6/conf/all/forwarding");

    private void EnsureSysctlOn(string file, string key)
    {
        if (Sysctl.Read(_options.HostNetnsPath, key) == "1") return;
        AtomicFile.Write(file, JsonSerializer.Serialize(new ForwardingRecord { EnabledByBerth = true }, StateJson.Default.ForwardingRecord));
        Sysctl.Write(_options.HostNetnsPath, key, "1");
    }

    private void ReleaseSysctl(string file, string key)
    {
        if (!File.Exists(file)) return;
        var record = JsonSerializer.Deserialize(File.ReadAllText(file), StateJson.Default.ForwardingRecord);
        if (record?.EnabledByBerth == true) Sysctl.Write(_options.HostNetnsPath, key, "0");
        AtomicFile.Delete(file);
    }

    private int UplinkMtu(IReadOnlyList<RouteInfo> routes)
    {
        var uplink = routes.FirstOrDefault(r => r.Destination.PrefixLength == 0 && r.Table == 254 && r.OutputIndex > 0);
        if (uplink is null) return 1500;
        var link = _host.ListLinks().FirstOrDefault(l => l.Index == uplink.OutputIndex);
        return link is { Mtu: > 0 } ? link.Mtu : 1500;
    }

    private NetworkRecord Find(string idOrName)
    {
        if (_networks.TryGetValue(idOrName, out var byId)) return byId;
        var byName = _networks.Values.FirstOrDefault(n => n.Name == idOrName);
        if (byName is not null) return byName;
        var byPrefix = idOrName.Length >= 1 ? _networks.Values.Where(n => n.Id.StartsWith(idOrName, StringComparison.Ordinal)).ToList() : [];
        if (byPrefix.Count == 1) return byPrefix[0];
        throw new NetworkException(NetworkErrorKind.NotFound, $"network {idOrName} not found");
    }

    private EndpointRecord FindEndpoint(string id) =>
        _endpoints.TryGetValue(id, out var e) ? e : throw new NetworkException(NetworkErrorKind.NotFound, $"endpoint {id} not found");

    private static void Undo(Stack<Action> undo)
    {
        while (undo.TryPop(out var step))
        {
            try { step(); }
            catch (Exception) { /* best effort: the original error is what the caller needs; Reconcile mops up */ }
        }
    }

    private static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    private NetworkInfo ToInfo(NetworkRecord n) =>
        new(n.Id, n.Name, n.Bridge, Ipv4Subnet.Parse(n.Subnet), IPAddress.Parse(n.Gateway), n.Internal, n.Mtu, n.Created)
        {
            Labels = n.Labels ?? [],
            DriverOptions = n.DriverOptions ?? [],
            ConfiguredSubnet = n.ConfiguredSubnet,
            Attachable = n.Attachable,
            IpamOptions = n.IpamOptions,
            Subnet6 = n.Subnet6 is null ? null : Ipv6Subnet.Parse(n.Subnet6),
            Gateway6 = n.Gateway6 is null ? null : IPAddress.Parse(n.Gateway6),
            ConfiguredSubnet6 = n.ConfiguredSubnet6,
            IpRange = n.IpRange is null ? null : Ipv4Subnet.Parse(n.IpRange),
            AuxAddresses = n.AuxAddresses ?? [],
            IpRange6 = n.IpRange6 is null ? null : Ipv6Subnet.Parse(n.IpRange6),
            AuxAddresses6 = n.AuxAddresses6 ?? [],
            EnableIcc = !n.IccDisabled,
            HostBindingIpv4 = n.HostBindingIpv4 is null ? null : IPAddress.Parse(n.HostBindingIpv4),
            Driver = n.Driver ?? NetworkDrivers.Bridge,
            Parent = n.Parent,
            Mode = n.Mode,
            IpvlanFlag = n.IpvlanFlag,
            ConfiguredGateway = n.ConfiguredGateway,
            ConfiguredGateway6 = n.ConfiguredGateway6,
        };

    private EndpointInfo ToInfo(EndpointRecord e)
    {
        var n = _networks[e.NetworkId];
        var routedByGateway = !n.Internal && !RoutesViaLink(n);
        return new EndpointInfo(e.Id, e.NetworkId, e.ContainerId, e.HostInterface, e.Interface, IPAddress.Parse(e.Address),
            Ipv4Subnet.Parse(n.Subnet).PrefixLength, routedByGateway ? IPAddress.Parse(n.Gateway) : null, e.MacAddress, e.Ports, e.Aliases, e.Hostname)
        {
            Address6 = e.Address6 is null ? null : IPAddress.Parse(e.Address6),
            PrefixLength6 = e.Address6 is null || n.Subnet6 is null ? 0 : Ipv6Subnet.Parse(n.Subnet6).PrefixLength,
            Gateway6 = e.Address6 is null || !routedByGateway || n.Gateway6 is null ? null : IPAddress.Parse(n.Gateway6),
            PortsOnIpv6Any = e.PortsOnIpv6Any,
        };
    }
}
