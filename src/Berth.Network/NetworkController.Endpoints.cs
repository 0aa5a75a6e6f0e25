using System.Net;
using System.Text.Json;
using Berth.Network.Nat;
using Berth.Network.Netlink;
using Berth.Network.State;

namespace Berth.Network;

public sealed partial class NetworkController
{
    /// <summary>
    /// Connects a container's namespace to a network: an address from IPAM, a veth pair created with
    /// its inner end already inside the namespace (named <see cref="EndpointCreateOptions.InterfaceName"/>,
    /// up, MTU of the network), the outer end on the bridge; lo up, the address, the default route
    /// (not on internal networks); the published ports as DNAT map elements. On a dual-stack network
    /// also an IPv6 address (IPv6 enabled on the interface first), the IPv6 default route, and the
    /// published ports DNAT'd over IPv6. On a network without inter-container communication the port is
    /// isolated (see <see cref="NetlinkSocket.SetIsolated"/>).
    /// Ports are validated (conflicts with every published port, duplicates) before anything changes.
    /// </summary>
    public EndpointInfo CreateEndpoint(EndpointCreateOptions o)
    {
        lock (_lock)
        {
            var network = Find(o.Network);
            if (string.IsNullOrEmpty(o.ContainerId)) throw new NetworkException(NetworkErrorKind.InvalidArgument, "container id is empty");
            ValidateInterfaceName(o.InterfaceName);
            IPAddress? requested = null;
            if (o.Address is not null && (!IPAddress.TryParse(o.Address, out requested) || requested.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid IPv4 address \"{o.Address}\"");
            IPAddress? requested6 = null;
            if (o.Address6 is not null && (!IPAddress.TryParse(o.Address6, out requested6) || requested6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6))
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid IPv6 address \"{o.Address6}\"");
            if (requested6 is not null && network.Subnet6 is null)
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"network {network.Name} has no IPv6 subnet: --ip6 {o.Address6} cannot be given");
            byte[]? mac = o.MacAddress is null ? null : ParseMac(o.MacAddress);
            if (!IsBridge(network)) return CreateLanEndpointLocked(network, o, requested, requested6, mac);
            if (network.Internal && o.Ports.Count > 0)
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"network {network.Name} is internal: ports cannot be published");
            using var netns = OpenNetns(o.NetnsPath);
            // A port that names no host address gets the network's binding address (dockerd's --ip, host_binding_ipv4).
            var (ports, portSockets) = ReservePorts(network.HostBindingIpv4 is { } binding
                ? [.. o.Ports.Select(p => p.HostIp is null ? p with { HostIp = binding } : p)]
                : o.Ports);

            var id = NewId();
            var hostIf = VethPrefix + id[..10];
            Ipv6Subnet? subnet6 = network.Subnet6 is null ? null : Ipv6Subnet.Parse(network.Subnet6);
            var undo = new Stack<Action>();
            undo.Push(portSockets.Dispose);
            try
            {
                var address = _ipam.Allocate(network.Id, id, requested);
                undo.Push(() => _ipam.Release(network.Id, address));
                mac ??= [0x02, 0x42, .. address.GetAddressBytes()];
                IPAddress? address6 = null;
                if (subnet6 is not null)
                {
                    address6 = _ipam.Allocate6(network.Id, id, requested6);
                    undo.Push(() => _ipam.Release(network.Id, address6));
                }

                var bridgeIndex = _host.GetIndex(network.Bridge);
                _host.CreateVethPair(hostIf, o.InterfaceName, network.Mtu, bridgeIndex, netns, mac);
                undo.Push(() => _host.DeleteLink(hostIf));
                _host.SetHairpin(hostIf);
                if (network.IccDisabled) _host.SetIsolated(hostIf);
                using (var inside = NetlinkSocket.OpenIn(o.NetnsPath))
                {
                    ConfigureInside(inside, o.NetnsPath, o.InterfaceName, network, address, address6);
                }
                if (ports.Count > 0)
                {
                    var rules = new NftFirewall.EndpointRules(address.ToString(), ports, address6?.ToString());
                    if (!_tableReady) RebuildTable(extraEndpoint: rules);
                    else _firewall.AddPorts(rules);
                    undo.Push(() => RemovePortRules(rules, id));
                }
                var record = new EndpointRecord
                {
                    Id = id, NetworkId = network.Id, ContainerId = o.ContainerId, HostInterface = hostIf, Interface = o.InterfaceName,
                    Address = address.ToString(), Address6 = address6?.ToString(), MacAddress = FormatMac(mac), Hostname = o.Hostname,
                    Aliases = [.. o.Aliases], Ports = [.. ports], PortsOnIpv6Any = portSockets.ListensOnIpv6Any,
                };
                AtomicFile.Write(Path.Combine(_endpointsDir, id + ".json"), JsonSerializer.Serialize(record, StateJson.Default.EndpointRecord), durable: false);
                _endpoints[id] = record;
                if (ports.Count > 0)
                {
                    if (_options.UserlandProxy) portSockets.Serve(address, address6);
                    _portSockets[id] = portSockets;
                }
                else portSockets.Dispose();
                return ToInfo(record);
            }
            catch
            {
                Undo(undo);
                throw;
            }
        }
    }

    /// <summary>
    /// The container's side of a new endpoint, whatever the driver: lo up, the address(es) on the
    /// interface, the interface up, and the default route(s) unless the network is internal.
    /// </summary>
    private static void ConfigureInside(NetlinkSocket inside, string netnsPath, string interfaceName, NetworkRecord network, IPAddress address, IPAddress? address6)
    {
        var index = inside.GetIndex(interfaceName);
        inside.SetLoopbackUp();
        inside.AddAddress(index, address, Ipv4Subnet.Parse(network.Subnet).PrefixLength);
        SetUpOncePeerMacIsFree(inside, index);
        // A namespace that has a default route already (a second network) keeps it: the first network stays the gateway, as in Docker.
        if (!network.Internal && !HasDefaultRoute(inside)) AddDefaultRoute(inside, network, index);
        if (address6 is not null && network.Subnet6 is not null)
        {
            // IPv6 may be off on the new interface (a new link takes net.ipv6.conf.default.disable_ipv6,
            // which a namespace inherits from the host's with net.core.devconf_inherit_init_net,
            // or a --sysctl set); adding the address fails with EACCES unless it is on.
            Sysctl.Write(netnsPath, $"net/ipv6/conf/{interfaceName}/disable_ipv6", "0");
            inside.AddAddress6(index, address6, Ipv6Subnet.Parse(network.Subnet6).PrefixLength);
            if (!network.Internal && !HasDefaultRoute6(inside)) AddDefaultRoute6(inside, network, index);
        }
    }

    /// <summary>
    /// Brings the interface up. A macvlan link cannot go up while a sibling on the same parent has its
    /// MAC (EADDRINUSE); the MAC follows the IPv4 address, so a container that asks for the address of
    /// one that just exited meets that sibling while the kernel still tears the old namespace down
    /// (asynchronously, some milliseconds after its last process). It is waited for, up to 2 s.
    /// </summary>
    private static void SetUpOncePeerMacIsFree(NetlinkSocket inside, int index)
    {
        var deadline = Environment.TickCount64 + 2000;
        while (true)
        {
            try
            {
                inside.SetUp(index);
                return;
            }
            catch (NetlinkException e) when (e.Errno == Interop.Libc.EADDRINUSE && Environment.TickCount64 < deadline)
            {
                Thread.Sleep(20);
            }
        }
    }

    /// <summary>The IPv4 default route through the network's gateway, or through the link itself on an ipvlan l3/l3s network.</summary>
    private static void AddDefaultRoute(NetlinkSocket inside, NetworkRecord network, int index)
        => inside.AddRoute(new Ipv4Subnet(0, 0), RoutesViaLink(network) ? null : IPAddress.Parse(network.Gateway), index);

    private static void AddDefaultRoute6(NetlinkSocket inside, NetworkRecord network, int index)
        => inside.AddRoute6(new Ipv6Subnet(UInt128.Zero, 0), RoutesViaLink(network) ? null : IPAddress.Parse(network.Gateway6!), index);

    /// <summary>
    /// Disconnects: the published ports first (nothing may DNAT to an address about to be reused), then
    /// the veth pair (deleting the outer end deletes the inner one; if the namespace is already gone,
    /// so is the pair), then the address and the record. Unknown ids are NotFound.
    /// With <paramref name="processesGone"/> (the container has exited) the link is deleted in the
    /// background: deleting a veth waits for RCU grace periods in the kernel, 10-20 ms of wall time
    /// and almost no CPU, which an exit (and `run --rm`) need not wait for. The pair is useless by
    /// then (its inner end is in a namespace without processes, which the kernel is usually already
    /// tearing down, pair included), its name is never reused (endpoint IDs are random), and its
    /// address may go to the next container at once: addresses live in the containers' namespaces.
    /// </summary>
    public void DeleteEndpoint(string endpointId, bool processesGone = false)
    {
        string? deferredLink = null;
        lock (_lock)
        {
            var e = FindEndpoint(endpointId);
            if (e.Ports.Count > 0) RemovePortRules(new NftFirewall.EndpointRules(e.Address, e.Ports, e.Address6), e.Id);
            if (_portSockets.Remove(e.Id, out var portSockets)) portSockets.Dispose();
            // A macvlan/ipvlan endpoint has no host end: its link is deleted in the container's namespace
            // (a namespace without processes takes it along).
            if (e.HostInterface.Length == 0) { if (!processesGone && e.NetnsPath is not null) DeleteLinkIn(e.NetnsPath, e.Interface); }
            else if (processesGone) deferredLink = e.HostInterface;
            else _host.DeleteLink(e.HostInterface);
            if (_ipam.HasPool(e.NetworkId))
            {
                _ipam.Release(e.NetworkId, IPAddress.Parse(e.Address));
                if (e.Address6 is not null) _ipam.Release(e.NetworkId, IPAddress.Parse(e.Address6));
            }
            AtomicFile.Delete(Path.Combine(_endpointsDir, e.Id + ".json"), durable: false);
            _endpoints.Remove(e.Id);
        }
        if (deferredLink is not null) DeleteLinkInBackground(deferredLink);
    }

    private void DeleteLinkInBackground(string name)
    {
        Task deletion = Task.Run(() =>
        {
            try
            {
                // A netlink socket of its own, not _host under _lock: the request blocks for the
                // kernel's grace periods, and holding _lock that long held up the next container's
                // endpoint (a `run` right after a `run --rm` waited 10-20 ms for it).
                lock (_deleterLock)
                {
                    _deleter ??= NetlinkSocket.OpenIn(_options.HostNetnsPath);
                    _deleter.DeleteLink(name);
                }
            }
            catch (NetworkException)
            {
                // Gone already with its namespace; a link that could not be deleted is a leftover
                // the start-up reconcile removes.
            }
        });
        lock (_pendingDeletions)
        {
            _pendingDeletions.RemoveAll(t => t.IsCompleted);
            _pendingDeletions.Add(deletion);
        }
    }

    /// <summary>
    /// After an endpoint of a running container went: when the namespace has lost its default route
    /// (it went with the endpoint's interface), adds one through the gateway of the container's
    /// first remaining endpoint on a non-internal network, as Docker moves the gateway to another network;
    /// the same for the IPv6 default route and the first remaining dual-stack endpoint.
    /// </summary>
    public void EnsureDefaultRoute(string containerId, string netnsPath)
    {
        lock (_lock)
        {
            var next = _endpoints.Values
                .Where(e => e.ContainerId == containerId && !_networks[e.NetworkId].Internal)
                .OrderBy(e => e.Interface, StringComparer.Ordinal)
                .FirstOrDefault();
            if (next is null) return;
            using var inside = NetlinkSocket.OpenIn(netnsPath);
            if (!HasDefaultRoute(inside)) AddDefaultRoute(inside, _networks[next.NetworkId], inside.GetIndex(next.Interface));
            var next6 = _endpoints.Values
                .Where(e => e.ContainerId == containerId && e.Address6 is not null && !_networks[e.NetworkId].Internal && _networks[e.NetworkId].Gateway6 is not null)
                .OrderBy(e => e.Interface, StringComparer.Ordinal)
                .FirstOrDefault();
            if (next6 is not null && !HasDefaultRoute6(inside)) AddDefaultRoute6(inside, _networks[next6.NetworkId], inside.GetIndex(next6.Interface));
        }
    }

    private static bool HasDefaultRoute(NetlinkSocket socket)
        => socket.ListRoutes().Any(r => r.Destination.PrefixLength == 0 && r.Table == 254);

    private static bool HasDefaultRoute6(NetlinkSocket socket)
        => socket.ListRoutes6().Any(r => r.Destination.PrefixLength == 0 && r.Table == 254 && r.Gateway is not null);

    /// <summary>
    /// The /etc/hosts entries an endpoint's container should see: every other endpoint of the same
    /// user-defined network by its aliases and hostname (the default network resolves no names, as in Docker).
    ///
    /// The same names are served by the container's embedded DNS server (<see cref="StartDns"/>), which
    /// is what resolvers asking a server directly (nslookup, nginx's <c>resolver 127.0.0.11</c>) and
    /// round robin over replicas need; the hosts files stay as well (what berthd wrote before it had the
    /// server, and what a libc reads first): the engine rewrites them (in place, see
    /// <see cref="HostsFile.WriteInPlace"/>) for every container of a network each time an endpoint
    /// joins or leaves it.
    /// </summary>
    public IReadOnlyList<HostsEntry> PeersOf(string endpointId)
    {
        lock (_lock)
        {
            var self = FindEndpoint(endpointId);
            if (_networks[self.NetworkId].Name == DefaultNetworkName) return [];
            return _endpoints.Values
                .Where(e => e.NetworkId == self.NetworkId && e.Id != self.Id)
                .SelectMany(e => HostsEntries(e, [.. e.Aliases, .. (e.Hostname is null ? Array.Empty<string>() : [e.Hostname])]))
                .ToList();
        }
    }

    /// <summary>
    /// The /etc/hosts entries by which an endpoint's container resolves its own name and aliases on
    /// a user-defined network, to its address there, as dockerd's embedded DNS answers them (a
    /// Testcontainers service that calls itself by its network alias); none on the default network.
    /// The hostname is left out: the hosts file has its own line for it.
    /// </summary>
    public IReadOnlyList<HostsEntry> OwnEntriesOf(string endpointId)
    {
        lock (_lock)
        {
            var self = FindEndpoint(endpointId);
            if (_networks[self.NetworkId].Name == DefaultNetworkName) return [];
            return HostsEntries(self, [.. self.Aliases.Where(a => a != self.Hostname)]);
        }
    }

    /// <summary>A dual-stack endpoint gets a second line with its IPv6 address (docker's embedded DNS answers AAAA too).</summary>
    private static HostsEntry[] HostsEntries(EndpointRecord e, string[] names)
        => names.Length == 0 ? []
            : e.Address6 is null
                ? [new HostsEntry(IPAddress.Parse(e.Address), names)]
                : [new HostsEntry(IPAddress.Parse(e.Address), names), new HostsEntry(IPAddress.Parse(e.Address6), names)];

    /// <summary>The endpoints of a network (e.g. to know whose hosts files to rewrite).</summary>
    public IReadOnlyList<EndpointInfo> EndpointsOf(string networkIdOrName)
    {
        lock (_lock)
        {
            var n = Find(networkIdOrName);
            return _endpoints.Values.Where(e => e.NetworkId == n.Id).Select(ToInfo).ToList();
        }
    }

    private void RemovePortRules(NftFirewall.EndpointRules rules, string endpointId)
    {
        try { _firewall.RemovePorts(rules); }
        catch (NetworkException)
        {
            RebuildTable(excludeEndpoint: endpointId);
        }
    }

    /// <summary>
    /// Checks requested ports against each other and every published port, binds their host sockets
    /// (a port another program holds is refused) and gives HostPort 0 a free port: one no endpoint
    /// publishes and that binds. On failure nothing stays bound.
    /// </summary>
    private (List<PortMapping> Ports, PublishedPortSockets Sockets) ReservePorts(IReadOnlyList<PortMapping> requested)
    {
        var taken = _endpoints.Values.SelectMany(e => e.Ports).ToList();
        var result = new List<PortMapping>();
        var canonical = new List<PortMapping>();
        foreach (var p in requested)
        {
            if (p.Protocol is not ("tcp" or "udp")) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid protocol \"{p.Protocol}\" in {p}");
            if (p.ContainerPort is < 1 or > 65535 || p.HostPort is < 0 or > 65535) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid port in {p}");
            IPAddress? hostIp = null;
            if (p.HostIp is not null && (!IPAddress.TryParse(p.HostIp, out hostIp) || (hostIp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && hostIp.ScopeId != 0)))
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid host IP in {p}");
            canonical.Add(p with { HostIp = hostIp?.ToString() });
        }
        foreach (var p in canonical.Where(p => p.HostPort != 0))
        {
            var clash = taken.FirstOrDefault(t => t.ConflictsWith(p));
            if (clash is not null) throw new NetworkException(NetworkErrorKind.Conflict, $"Bind for {p.HostIp ?? "0.0.0.0"}:{p.HostPort}/{p.Protocol} failed: port is already allocated ({clash})");
            taken.Add(p);
            result.Add(p);
        }
        foreach (var p in canonical.Where(p => p.HostPort == 0))
        {
            var (first, last) = _options.EphemeralPorts;
            var port = Enumerable.Range(first, last - first + 1).FirstOrDefault(candidate =>
                !taken.Any(t => t.ConflictsWith(p with { HostPort = candidate })) && PublishedPortSockets.CanBind(p with { HostPort = candidate }, _options.HostNetnsPath, _options.UserlandProxy));
            if (port == 0) throw new NetworkException(NetworkErrorKind.Exhausted, $"no free host port in {first}-{last} for {p.ContainerPort}/{p.Protocol}");
            var chosen = p with { HostPort = port };
            taken.Add(chosen);
            result.Add(chosen);
        }
        return (result, PublishedPortSockets.Bind(result, _options.HostNetnsPath, _options.UserlandProxy));
    }

    private static Microsoft.Win32.SafeHandles.SafeFileHandle OpenNetns(string path)
    {
        try { return Netns.Open(path); }
        catch (NetlinkException e)
        {
            throw new NetworkException(e.Kind, $"container network namespace {path}: {e.Message}", e);
        }
    }

    private static void ValidateInterfaceName(string name)
    {
        if (name.Length is 0 or > 15 || name is "." or ".." || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || c < 0x20))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid interface name \"{name}\"");
    }

    private static byte[] ParseMac(string text)
    {
        var parts = text.Split(':');
        var mac = new byte[6];
        if (parts.Length != 6 || !parts.Select((p, i) => p.Length == 2 && byte.TryParse(p, System.Globalization.NumberStyles.HexNumber, null, out mac[i])).All(ok => ok))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid MAC address \"{text}\"");
        if ((mac[0] & 1) != 0) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"MAC address {text} is a multicast address");
        return mac;
    }

    private static string FormatMac(byte[] mac) => string.Join(':', mac.Select(b => b.ToString("x2")));
}
