using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Berth.Network.Nat;
using Berth.Network.Netlink;
using Berth.Network.State;

namespace Berth.Network;

public sealed partial class NetworkController
{
    /// <summary>The nftables table in a container's namespace that sends 127.0.0.11:53 to its DNS server's ports.</summary>
    internal const string DnsTable = "berth_dns";

    /// <summary>Container id → its embedded DNS server (not persisted: a restarted daemon starts them again, <see cref="StartDns"/>).</summary>
    private readonly Dictionary<string, EmbeddedDnsServer> _dnsServers = new(StringComparer.Ordinal);

    /// <summary>
    /// Starts the embedded DNS server of a container on a user-defined network (its /etc/resolv.conf
    /// names 127.0.0.11), replacing one it had — after a daemon restart the namespace still has the
    /// old redirect, now to ports nobody holds, and this rewrites it. <paramref name="upstream"/>: the
    /// servers names the container's networks do not know are forwarded to.
    /// </summary>
    /// <paramref name="links"/>: the addresses of a link alias the container has (<c>--link NAME:ALIAS</c> on a
    /// user-defined network), or null; asked at each query, from the server's threads.
    public void StartDns(string containerId, string netnsPath, IReadOnlyList<IPAddress> upstream, Func<string, IReadOnlyList<IPAddress>?>? links = null)
    {
        StopDns(containerId);
        var server = EmbeddedDnsServer.Start(netnsPath, EmbeddedDnsServer.Address, new ContainerDnsNames(this, containerId, links),
            upstream.Select(a => new IPEndPoint(a, 53)).ToList(), UpstreamSocket);
        try
        {
            new NftFirewall(netnsPath).Apply(DnsRedirect(server), "redirect the container's 127.0.0.11:53 to its DNS server");
        }
        catch
        {
            server.Dispose();
            throw;
        }
        lock (_lock) _dnsServers[containerId] = server;
    }

    /// <summary>Whether the container's embedded DNS server runs (it joined a user-defined network since it started).</summary>
    public bool HasDns(string containerId)
    {
        lock (_lock) return _dnsServers.ContainsKey(containerId);
    }

    /// <summary>Stops the container's DNS server (its exit): its sockets held the namespace. The redirect goes with the namespace.</summary>
    public void StopDns(string containerId)
    {
        EmbeddedDnsServer? server;
        lock (_lock)
        {
            if (!_dnsServers.Remove(containerId, out server)) return;
        }
        server.Dispose();
    }

    private void StopAllDns()
    {
        List<EmbeddedDnsServer> servers;
        lock (_lock)
        {
            servers = [.. _dnsServers.Values];
            _dnsServers.Clear();
        }
        foreach (EmbeddedDnsServer s in servers) s.Dispose();
    }

    /// <summary>
    /// dockerd's DOCKER_OUTPUT chain in nftables: queries the container sends to 127.0.0.11:53 go to the
    /// server's ports; conntrack turns the answers' source back into port 53. Applying it again replaces it.
    /// </summary>
    internal static string DnsRedirect(EmbeddedDnsServer server) => $$"""
        table ip {{DnsTable}}
        delete table ip {{DnsTable}}
        table ip {{DnsTable}} {
          chain output {
            type nat hook output priority -100; policy accept;
            ip daddr {{server.ListenAddress}} udp dport 53 dnat to {{server.ListenAddress}}:{{server.UdpPort.ToString(CultureInfo.InvariantCulture)}}
            ip daddr {{server.ListenAddress}} tcp dport 53 dnat to {{server.ListenAddress}}:{{server.TcpPort.ToString(CultureInfo.InvariantCulture)}}
          }
        }

        """;

    /// <summary>A socket for a forwarded query, in the bridges' namespace (where the host's routes and resolvers are).</summary>
    private Socket UpstreamSocket(AddressFamily family, SocketType type, ProtocolType protocol)
        => _options.HostNetnsPath is null
            ? new Socket(family, type, protocol)
            : Netns.RunIn(_options.HostNetnsPath, "open a socket for a forwarded DNS query", () => new Socket(family, type, protocol));

    /// <summary>The endpoints of a container on user-defined networks, in the order it joined them (eth0, eth1, …). Caller holds the lock.</summary>
    private List<(EndpointRecord Endpoint, NetworkRecord Network)> UserEndpointsOfLocked(string containerId)
        => _endpoints.Values
            .Where(e => e.ContainerId == containerId && _networks.ContainsKey(e.NetworkId))
            .Select(e => (Endpoint: e, Network: _networks[e.NetworkId]))
            .Where(x => x.Network.Name != DefaultNetworkName)
            .OrderBy(x => x.Endpoint.Interface.Length).ThenBy(x => x.Endpoint.Interface, StringComparer.Ordinal)
            .ToList();

    /// <summary>
    /// The names one container resolves, read from the endpoints at each query (a peer that joined a
    /// moment ago resolves at once, one that left no longer does): on each of its user-defined
    /// networks, in the order it joined them, the name, aliases, short ID and hostname of every
    /// endpoint there (its own included), bare or followed by the network's name (<c>web.mynet</c>).
    /// The first network that knows a name answers, with every container that has it there (a
    /// service's replicas), in random order, as dockerd's round robin. The container's link aliases before all.
    /// </summary>
    private sealed class ContainerDnsNames(NetworkController controller, string containerId, Func<string, IReadOnlyList<IPAddress>?>? links) : IDnsNameSource
    {
        public IReadOnlyList<IPAddress>? Lookup(string name)
        {
            // A link alias is this container's own name for another, and comes first, as libnetwork's
            // endpoint aliases (CreateOptionAlias) do in its resolver.
            if (links?.Invoke(name) is { Count: > 0 } linked) return linked;
            lock (controller._lock)
            {
                foreach (var (_, network) in controller.UserEndpointsOfLocked(containerId))
                {
                    string bare = name;
                    string suffix = "." + network.Name;
                    if (name.EndsWith(suffix, StringComparison.OrdinalIgnoreCase) && name.Length > suffix.Length) bare = name[..^suffix.Length];
                    var addresses = new List<IPAddress>();
                    foreach (EndpointRecord e in controller._endpoints.Values)
                    {
                        if (e.NetworkId != network.Id) continue;
                        if (!e.Aliases.Any(a => a.Equals(name, StringComparison.OrdinalIgnoreCase) || a.Equals(bare, StringComparison.OrdinalIgnoreCase))) continue;
                        addresses.Add(IPAddress.Parse(e.Address));
                        if (e.Address6 is not null) addresses.Add(IPAddress.Parse(e.Address6));
                    }
                    if (addresses.Count > 0)
                    {
                        Random.Shared.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(addresses));
                        return addresses;
                    }
                }
                return null;
            }
        }

        public string? LookupAddress(IPAddress address)
        {
            lock (controller._lock)
            {
                foreach (var (_, network) in controller.UserEndpointsOfLocked(containerId))
                    foreach (EndpointRecord e in controller._endpoints.Values)
                        if (e.NetworkId == network.Id && e.Aliases.Count > 0
                            && (IPAddress.Parse(e.Address).Equals(address) || (e.Address6 is not null && IPAddress.Parse(e.Address6).Equals(address))))
                            return e.Aliases[0] + "." + network.Name;
                return null;
            }
        }

        public bool MayForward
        {
            get
            {
                lock (controller._lock)
                    return controller._endpoints.Values.Any(e => e.ContainerId == containerId && controller._networks.TryGetValue(e.NetworkId, out NetworkRecord? n) && !n.Internal);
            }
        }
    }
}
