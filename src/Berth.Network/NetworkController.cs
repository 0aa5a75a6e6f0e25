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
/// sandbox (that namespace, owned by the runtime and referred to by path).
///
/// State is persisted under <see cref="NetworkControllerOptions.StateDirectory"/> before an
/// operation returns; the kernel objects are derived from it and named so that a restart can
/// tell ours apart: bridges <c>berth0</c>/<c>bb-&lt;id12&gt;</c>, host-side veths <c>vb&lt;id10&gt;</c>,
/// rules in <c>table ip berth</c>. <see cref="Reconcile"/> (daemon start) makes the kernel match
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
    private readonly string _networksDir, _endpointsDir, _forwardingFile;
    private readonly Dictionary<string, NetworkRecord> _networks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, EndpointRecord> _endpoints = new(StringComparer.Ordinal);
    private bool _tableReady;

    private NetworkController(NetworkControllerOptions options)
    {
        _options = options;
        _networksDir = Path.Combine(options.StateDirectory, "networks");
        _endpointsDir = Path.Combine(options.StateDirectory, "endpoints");
        _forwardingFile = Path.Combine(options.StateDirectory, "ip_forward.json");
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
            return existing is not null ? ToInfo(existing) : CreateNetworkLocked(new NetworkCreateOptions { Name = DefaultNetworkName, Subnet = _options.DefaultSubnet });
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
        var routes = _host.ListRoutes();
        var subnet = o.Subnet is not null
            ? Ipv4Subnet.Parse(o.Subnet)
            : _ipam.ChooseSubnet(routes.Where(r => r.Destination.PrefixLength > 0 && r.Table != 255).Select(r => r.Destination));
        var id = NewId();
        var bridge = o.Name == DefaultNetworkName ? _options.DefaultBridge : BridgePrefix + id[..12];
        if (_host.GetLink(bridge) is not null) throw new NetworkException(NetworkErrorKind.Conflict, $"a link named {bridge} already exists");
        var mtu = o.Mtu ?? UplinkMtu(routes);

        var undo = new Stack<Action>();
        try
        {
            gateway = _ipam.AddPool(id, subnet, gateway); // refuses overlaps, persists
            undo.Push(() => _ipam.RemovePool(id));
            EnsureForwarding();
            _host.CreateBridge(bridge, mtu);
            undo.Push(() => _host.DeleteLink(bridge));
            _host.AddAddress(_host.GetIndex(bridge), gateway, subnet.PrefixLength);
            Sysctl.Write(_options.HostNetnsPath, $"net/ipv4/conf/{bridge}/route_localnet", "1");
            var rules = new NftFirewall.NetworkRules(bridge, subnet, o.Internal);
            if (!_tableReady) RebuildTable(extraNetwork: rules);
            else
            {
                _firewall.AddNetwork(rules);
            }
            undo.Push(() => RemoveNetworkRules(rules));
            var record = new NetworkRecord
            {
                Id = id, Name = o.Name, Bridge = bridge, Subnet = subnet.ToString(), Gateway = gateway.ToString(),
                Internal = o.Internal, Mtu = mtu, Created = DateTimeOffset.UtcNow,
                Labels = o.Labels is { Count: > 0 } l ? new Dictionary<string, string>(l, StringComparer.Ordinal) : null,
                DriverOptions = o.DriverOptions is { Count: > 0 } d ? new Dictionary<string, string>(d, StringComparer.Ordinal) : null,
                ConfiguredSubnet = o.Subnet is not null,
                Attachable = o.Attachable,
            };
            AtomicFile.Write(Path.Combine(_networksDir, id + ".json"), JsonSerializer.Serialize(record, StateJson.Default.NetworkRecord));
            _networks[id] = record;
            return ToInfo(record);
        }
        catch
        {
            Undo(undo);
            if (_networks.Count == 0) ReleaseForwarding();
            throw;
        }
    }

    /// <summary>Removes a network that has no endpoint left (Conflict otherwise): its rules, bridge and pool.</summary>
    public void RemoveNetwork(string idOrName)
    {
        lock (_lock)
        {
            var n = Find(idOrName);
            var attached = _endpoints.Values.Count(e => e.NetworkId == n.Id);
            if (attached > 0) throw new NetworkException(NetworkErrorKind.Conflict, $"network {n.Name} has {attached} active endpoint(s)");
            if (_networks.Count == 1)
            {
                _firewall.DeleteTable();
                _tableReady = false;
            }
            else
            {
                RemoveNetworkRules(new NftFirewall.NetworkRules(n.Bridge, Ipv4Subnet.Parse(n.Subnet), n.Internal));
            }
            _host.DeleteLink(n.Bridge);
            _ipam.RemovePool(n.Id);
            AtomicFile.Delete(Path.Combine(_networksDir, n.Id + ".json"));
            _networks.Remove(n.Id);
            if (_networks.Count == 0) ReleaseForwarding();
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
        var networks = _networks.Values.Where(n => n.Bridge != excludeNetwork)
            .Select(n => new NftFirewall.NetworkRules(n.Bridge, Ipv4Subnet.Parse(n.Subnet), n.Internal)).ToList();
        if (extraNetwork is not null) networks.Add(extraNetwork);
        var endpoints = _endpoints.Values.Where(e => e.Id != excludeEndpoint && e.Ports.Count > 0)
            .Select(e => new NftFirewall.EndpointRules(e.Address, e.Ports)).ToList();
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

    /// <summary>Turns net.ipv4.ip_forward on in the bridges' namespace, remembering (persisted, first) that Berth did.</summary>
    private void EnsureForwarding()
    {
        if (Sysctl.Read(_options.HostNetnsPath, "net/ipv4/ip_forward") == "1") return;
        AtomicFile.Write(_forwardingFile, JsonSerializer.Serialize(new ForwardingRecord { EnabledByBerth = true }, StateJson.Default.ForwardingRecord));
        Sysctl.Write(_options.HostNetnsPath, "net/ipv4/ip_forward", "1");
    }

    /// <summary>After the last network: turns ip_forward back off if Berth turned it on.</summary>
    private void ReleaseForwarding()
    {
        if (!File.Exists(_forwardingFile)) return;
        var record = JsonSerializer.Deserialize(File.ReadAllText(_forwardingFile), StateJson.Default.ForwardingRecord);
        if (record?.EnabledByBerth == true) Sysctl.Write(_options.HostNetnsPath, "net/ipv4/ip_forward", "0");
        AtomicFile.Delete(_forwardingFile);
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
        };

    private EndpointInfo ToInfo(EndpointRecord e)
    {
        var n = _networks[e.NetworkId];
        return new EndpointInfo(e.Id, e.NetworkId, e.ContainerId, e.HostInterface, e.Interface, IPAddress.Parse(e.Address),
            Ipv4Subnet.Parse(n.Subnet).PrefixLength, n.Internal ? null : IPAddress.Parse(n.Gateway), e.MacAddress, e.Ports, e.Aliases, e.Hostname);
    }
}
