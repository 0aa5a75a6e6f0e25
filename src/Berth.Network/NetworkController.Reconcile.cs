using System.Net;
using Berth.Network.Nat;
using Berth.Network.State;

namespace Berth.Network;

public sealed partial class NetworkController
{
    /// <summary>
    /// Daemon start: makes the kernel match the persisted state after a crash or reboot.
    /// Endpoints not in <paramref name="liveEndpointIds"/> are forgotten (their addresses freed);
    /// addresses owned by no endpoint (a crash between allocation and record) are freed; each
    /// network's bridge is recreated if missing; our links (<c>vb*</c> veths, <c>bb-*</c> bridges)
    /// that no state owns are deleted; and <c>table ip berth</c> (with <c>table ip6 berth</c> when a
    /// network is dual stack, deleted otherwise) is rebuilt in one atomic batch from what remains,
    /// which drops every stale rule and port; IPv6 forwarding goes back off when no dual-stack network remains.
    /// The live endpoints' published ports get their host sockets again (see <see cref="PublishedPortSockets"/>).
    /// </summary>
    public ReconcileReport Reconcile(IReadOnlyCollection<string> liveEndpointIds)
    {
        lock (_lock)
        {
            var live = new HashSet<string>(liveEndpointIds, StringComparer.Ordinal);
            var staleEndpoints = 0;
            foreach (var e in _endpoints.Values.Where(e => !live.Contains(e.Id) || !_networks.ContainsKey(e.NetworkId)).ToList())
            {
                AtomicFile.Delete(Path.Combine(_endpointsDir, e.Id + ".json"));
                _endpoints.Remove(e.Id);
                if (_portSockets.Remove(e.Id, out var sockets)) sockets.Dispose();
                staleEndpoints++;
            }

            // The ports of containers that kept running while berthd was down: their host sockets again.
            var unboundPorts = new List<string>();
            foreach (var e in _endpoints.Values.Where(e => e.Ports.Count > 0 && !_portSockets.ContainsKey(e.Id)))
            {
                var sockets = PublishedPortSockets.BindEach(e.Ports, _options.HostNetnsPath, _options.UserlandProxy, (p, error) => unboundPorts.Add($"{p} of container {e.ContainerId}: {error.Message}"));
                if (_options.UserlandProxy) sockets.Serve(IPAddress.Parse(e.Address), e.Address6 is null ? null : IPAddress.Parse(e.Address6));
                _portSockets[e.Id] = sockets;
            }

            // dockerd makes its bridge network again at each start, from its options of the day. Berth
            // keeps it (its containers outlive berthd) unless its settings differ from the options and no
            // endpoint holds it: then it goes here (its pool below, its bridge with the stale links, its
            // rules with the rebuild) and EnsureDefaultNetwork makes it again, as the options say.
            if (_networks.Values.FirstOrDefault(n => n.Name == DefaultNetworkName) is { } defaultNetwork
                && !_endpoints.Values.Any(e => e.NetworkId == defaultNetwork.Id) && DefaultNetworkDiffersFromOptions(defaultNetwork))
            {
                AtomicFile.Delete(Path.Combine(_networksDir, defaultNetwork.Id + ".json"));
                _networks.Remove(defaultNetwork.Id);
            }

            var released = 0;
            foreach (var pool in _ipam.Pools.ToList())
            {
                if (!_networks.ContainsKey(pool)) { _ipam.RemovePool(pool); continue; }
                released += _ipam.ReleaseUnless(pool, _endpoints.ContainsKey);
            }

            var recreated = 0;
            if (_networks.Values.Any(IsBridge)) EnsureForwarding();
            if (_networks.Values.Any(n => IsBridge(n) && n.Subnet6 is not null)) EnsureForwarding6();
            RecreateParents();
            foreach (var n in _networks.Values.Where(IsBridge))
            {
                if (_host.GetLink(n.Bridge) is not null) continue;
                _host.CreateBridge(n.Bridge, n.Mtu);
                ConfigureBridge(n.Bridge, IPAddress.Parse(n.Gateway), Ipv4Subnet.Parse(n.Subnet),
                    n.Gateway6 is null ? null : IPAddress.Parse(n.Gateway6), n.Subnet6 is null ? null : Ipv6Subnet.Parse(n.Subnet6));
                recreated++;
            }

            var ownedLinks = new HashSet<string>(_endpoints.Values.Select(e => e.HostInterface)
                .Concat(_networks.Values.Select(n => IsBridge(n) ? n.Bridge : n.Parent ?? "")), StringComparer.Ordinal);
            var staleLinks = 0;
            foreach (var link in _host.ListLinks())
            {
                // A macvlan/ipvlan network's 802.1q sub-interface has the name the user gave: a crash between
                // making it and recording the network leaves it; its dummy links are named as ours.
                var ours = (link.Kind == "veth" && link.Name.StartsWith(VethPrefix, StringComparison.Ordinal) && link.Name.Length == VethPrefix.Length + 10)
                    || (link.Kind == "bridge" && (link.Name.StartsWith(BridgePrefix, StringComparison.Ordinal) || link.Name == _options.DefaultBridge))
                    || IsDummyParentName(link);
                if (ours && !ownedLinks.Contains(link.Name) && _host.DeleteLink(link.Name)) staleLinks++;
            }

            RebuildTable();
            if (!_networks.Values.Any(IsBridge)) ReleaseForwarding();
            if (!_networks.Values.Any(n => IsBridge(n) && n.Subnet6 is not null)) ReleaseForwarding6();
            return new ReconcileReport(staleEndpoints, staleLinks, released, recreated, unboundPorts);
        }
    }

    /// <summary>
    /// Whether the default network was made with other settings than the options give it now. Options
    /// that do not parse count as no difference: the network is kept, and making it would report them.
    /// </summary>
    private bool DefaultNetworkDiffersFromOptions(NetworkRecord n)
    {
        try
        {
            return DiffersFromOptions(n);
        }
        catch (Exception e) when (e is NetworkException or FormatException)
        {
            return false;
        }
    }

    private bool DiffersFromOptions(NetworkRecord n)
    {
        var range = _options.DefaultIpRange is null ? (Ipv4Subnet?)null : Ipv4Subnet.Parse(_options.DefaultIpRange);
        if ((n.IpRange is null ? (Ipv4Subnet?)null : Ipv4Subnet.Parse(n.IpRange)) != range) return true;
        if (n.IccDisabled == _options.DefaultIcc) return true;
        var binding = _options.DefaultHostBindingIpv4 is { } b && !IPAddress.Any.Equals(IPAddress.Parse(b)) ? IPAddress.Parse(b).ToString() : null;
        if (n.HostBindingIpv4 != binding) return true;
        if (n.Mtu != (_options.DefaultMtu ?? UplinkMtu(_host.ListRoutes()))) return true;
        if ((n.Subnet6 is not null) != _options.DefaultEnableIpv6) return true;
        if (_options.DefaultEnableIpv6 && (_options.DefaultSubnet6 is { } wanted6 ? Ipv6Subnet.Parse(wanted6).ToString() != n.Subnet6 : n.ConfiguredSubnet6)) return true;
        var subnet = Ipv4Subnet.Parse(n.Subnet);
        if ((_options.DefaultSubnet ?? _options.DefaultIpRange) is { } wanted) return Ipv4Subnet.Parse(wanted) != subnet;
        if (n.ConfiguredSubnet) return true;
        // Chosen from the pools: still one of their subnets?
        return !(_options.DefaultAddressPools ?? Ipam.DefaultPools).Any(p => p.Size == subnet.PrefixLength && p.Base.Contains(subnet.Network));
    }
}
