using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Berth.Network.Nat;

/// <summary>
/// Berth's packet rules, in one nftables table of its own (<c>table ip berth</c>), applied with
/// <c>nft -f -</c>: one batch per operation, which the kernel commits atomically (all or nothing).
///
/// Why nftables and not iptables: atomic batches; a private table that cleanup deletes whole
/// without touching anyone else's rules; and sets/maps, so every network and every published
/// port is a set <em>element</em>, not a rule. Adding or removing one is an element add/delete
/// by key — no rule handles to track, no list-and-grep on cleanup — and a packet is matched
/// against 100 published ports with one hash lookup, not 100 rules. (Debian's iptables is
/// iptables-nft anyway.) There is no iptables fallback: without nft, operations needing rules
/// fail with <see cref="NetworkErrorKind.Unavailable"/>.
///
/// The rule set (elements are added per network / per endpoint):
/// <code>
/// prerouting, output (nat, dstnat):   to a local address: DNAT via the maps pub_ip (host ip . proto . port)
///                                     and pub_any (proto . port) → container ip . port
/// postrouting (nat, srcnat):
///   out a bridge, DNAT'd, from 127.0.0.0/8  → masquerade   (host loopback → published port)
///   out a bridge, DNAT'd, from a container subnet → masquerade (hairpin, container → host port)
///   from a non-internal subnet, not out a bridge → masquerade (outbound NAT)
/// forward (filter):
///   to or from an internal bridge, unless it stays on that bridge → drop
///   DNAT'd (published port)                  → accept
///   bridge to a different bridge             → drop (isolation between networks)
/// </code>
///
/// Loopback (<c>curl 127.0.0.1:8080</c> on the host) without a proxy process: the output hook's
/// DNAT rewrites 127.0.0.1:8080 to 172.17.0.2:80, but the source stays 127.0.0.1, and the kernel
/// refuses to route a 127/8 source out of a non-loopback device (a "martian") — on output, and
/// again when the reply comes back de-NATed to 127.0.0.1. <c>net.ipv4.conf.&lt;bridge&gt;.route_localnet=1</c>
/// lifts that for our bridges only, and the masquerade of 127/8 sources leaving by a bridge makes
/// the container see (and answer) the gateway address instead of its own loopback.
/// Hairpin: without br_netfilter the container's packet is routed by the host back out of the
/// bridge; with br_netfilter (bridge-nf-call-iptables=1) it is DNAT'd inside the bridge and sent
/// back out of the port it came in by, which needs the port's hairpin mode (set per endpoint).
/// Either way postrouting sees no input interface for it, hence the match on the source subnet;
/// the masquerade makes the reply go back through the host's conntrack instead of straight to
/// the container's own address.
///
/// Dual-stack networks: the same rules for IPv6 in a second table, <c>table ip6 berth</c>, which exists
/// only while some network has an IPv6 subnet (so IPv4-only hosts, and kernels without IPv6, never see
/// it) and is rebuilt, in the same atomic batch as <c>table ip berth</c>, whenever such a network comes
/// or goes. Outbound IPv6 is masqueraded as IPv4 is: a container's ULA or documentation address is
/// rarely routed back to the host, and docker does the same (ip6tables MASQUERADE). Published ports
/// bound to every address, or to an IPv6 address, are DNAT'd to the container's IPv6 address when it
/// has one. Not to ::1: IPv6 has no route_localnet, the kernel never routes ::1 out of a bridge. What
/// these rules do not take — ::1, and IPv6 to a container without IPv6 — reaches the port's own socket
/// on the host, whose proxy relays it (<see cref="PublishedPortSockets"/>, docker's userland proxy).
/// </summary>
public sealed class NftFirewall
{
    public const string Table = "berth";
    private readonly string? _netnsPath;

    /// <param name="netnsPath">The namespace whose rules to manage (where the bridges live); null: the current one.</param>
    public NftFirewall(string? netnsPath = null) => _netnsPath = netnsPath;

    /// <summary>The definition of the table with no elements; <see cref="Rebuild"/> prepends a delete, so applying it twice is safe.</summary>
    internal static string TableDefinition => $$"""
        table ip {{Table}} {
          set bridges { type ifname; }
          set self { type ifname . ifname; }
          set internal { type ifname; }
          set nat_subnets { type ipv4_addr; flags interval; }
          set subnets { type ipv4_addr; flags interval; }
          map pub_any { type inet_proto . inet_service : ipv4_addr . inet_service; }
          map pub_ip { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
          chain prerouting {
            type nat hook prerouting priority -100; policy accept;
            fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @pub_ip
            fib daddr type local dnat ip to meta l4proto . th dport map @pub_any
          }
          chain output {
            type nat hook output priority -100; policy accept;
            fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @pub_ip
            fib daddr type local dnat ip to meta l4proto . th dport map @pub_any
          }
          chain postrouting {
            type nat hook postrouting priority 100; policy accept;
            oifname @bridges ct status dnat ip saddr 127.0.0.0/8 masquerade
            oifname @bridges ct status dnat ip saddr @subnets masquerade
            ip saddr @nat_subnets oifname != @bridges masquerade
          }
          chain forward {
            type filter hook forward priority 0; policy accept;
            iifname @internal iifname . oifname != @self drop
            oifname @internal iifname . oifname != @self drop
            ct status dnat accept
            iifname @bridges oifname @bridges iifname . oifname != @self drop
          }
        }

        """;

    /// <summary>The IPv6 table (dual-stack networks), the same rules as <see cref="TableDefinition"/> less loopback DNAT.</summary>
    internal static string Table6Definition => $$"""
        table ip6 {{Table}} {
          set bridges { type ifname; }
          set self { type ifname . ifname; }
          set internal { type ifname; }
          set nat_subnets { type ipv6_addr; flags interval; }
          set subnets { type ipv6_addr; flags interval; }
          map pub_any { type inet_proto . inet_service : ipv6_addr . inet_service; }
          map pub_ip { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }
          chain prerouting {
            type nat hook prerouting priority -100; policy accept;
            fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub_ip
            fib daddr type local dnat ip6 to meta l4proto . th dport map @pub_any
          }
          chain output {
            type nat hook output priority -100; policy accept;
            ip6 daddr != ::1 fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub_ip
            ip6 daddr != ::1 fib daddr type local dnat ip6 to meta l4proto . th dport map @pub_any
          }
          chain postrouting {
            type nat hook postrouting priority 100; policy accept;
            oifname @bridges ct status dnat ip6 saddr @subnets masquerade
            ip6 saddr @nat_subnets oifname != @bridges masquerade
          }
          chain forward {
            type filter hook forward priority 0; policy accept;
            iifname @internal iifname . oifname != @self drop
            oifname @internal iifname . oifname != @self drop
            ct status dnat accept
            iifname @bridges oifname @bridges iifname . oifname != @self drop
          }
        }

        """;

    /// <summary>One network's elements; <paramref name="Subnet6"/> for a dual-stack network.</summary>
    public sealed record NetworkRules(string Bridge, Ipv4Subnet Subnet, bool Internal, Ipv6Subnet? Subnet6 = null);

    /// <summary>One endpoint's published ports; <paramref name="ContainerAddress6"/> on a dual-stack network.</summary>
    public sealed record EndpointRules(string ContainerAddress, IReadOnlyList<PortMapping> Ports, string? ContainerAddress6 = null);

    /// <summary>
    /// Replaces the whole table, atomically, with exactly these networks and ports (daemon start, crash
    /// cleanup); in the same batch the IPv6 table is rebuilt when a network has an IPv6 subnet, deleted otherwise.
    /// </summary>
    public void Rebuild(IEnumerable<NetworkRules> networks, IEnumerable<EndpointRules> endpoints)
    {
        var networkList = networks.ToList();
        var script = new StringBuilder();
        script.Append($"add table ip {Table}\ndelete table ip {Table}\n").Append(TableDefinition);
        script.Append($"add table ip6 {Table}\ndelete table ip6 {Table}\n");
        if (networkList.Any(n => n.Subnet6 is not null)) script.Append(Table6Definition);
        foreach (var n in networkList) AppendNetwork(script, "add", n);
        foreach (var e in endpoints) AppendPorts(script, "add", e);
        Apply(script.ToString(), "rebuild table ip berth");
    }

    /// <summary>Deletes the tables (no network left). Deleting a missing table is not an error.</summary>
    public void DeleteTable() => Apply($"add table ip {Table}\ndelete table ip {Table}\nadd table ip6 {Table}\ndelete table ip6 {Table}\n", "delete table ip berth");

    public void AddNetwork(NetworkRules network) => Apply(AppendNetwork(new StringBuilder(), "add", network).ToString(), $"add network rules for {network.Bridge}");

    public void RemoveNetwork(NetworkRules network) => Apply(AppendNetwork(new StringBuilder(), "delete", network).ToString(), $"delete network rules for {network.Bridge}");

    public void AddPorts(EndpointRules endpoint) => Apply(AppendPorts(new StringBuilder(), "add", endpoint).ToString(), $"publish ports of {endpoint.ContainerAddress}");

    public void RemovePorts(EndpointRules endpoint) => Apply(AppendPorts(new StringBuilder(), "delete", endpoint).ToString(), $"unpublish ports of {endpoint.ContainerAddress}");

    internal static StringBuilder AppendNetwork(StringBuilder s, string verb, NetworkRules n)
    {
        var b = Quote(n.Bridge);
        s.Append($"{verb} element ip {Table} bridges {{ {b} }}\n");
        s.Append($"{verb} element ip {Table} self {{ {b} . {b} }}\n");
        s.Append($"{verb} element ip {Table} subnets {{ {n.Subnet} }}\n");
        s.Append(n.Internal
            ? $"{verb} element ip {Table} internal {{ {b} }}\n"
            : $"{verb} element ip {Table} nat_subnets {{ {n.Subnet} }}\n");
        if (n.Subnet6 is { } s6)
        {
            s.Append($"{verb} element ip6 {Table} bridges {{ {b} }}\n");
            s.Append($"{verb} element ip6 {Table} self {{ {b} . {b} }}\n");
            s.Append($"{verb} element ip6 {Table} subnets {{ {s6} }}\n");
            s.Append(n.Internal
                ? $"{verb} element ip6 {Table} internal {{ {b} }}\n"
                : $"{verb} element ip6 {Table} nat_subnets {{ {s6} }}\n");
        }
        return s;
    }

    internal static StringBuilder AppendPorts(StringBuilder s, string verb, EndpointRules e)
    {
        var add = verb == "add";
        foreach (var p in e.Ports)
        {
            var hostIp = p.HostIp is null ? null : IPAddress.Parse(p.HostIp);
            if (hostIp is null || hostIp.AddressFamily == AddressFamily.InterNetwork)
            {
                var value = add ? $" : {e.ContainerAddress} . {p.ContainerPort}" : "";
                if (hostIp is null || hostIp.Equals(IPAddress.Any)) s.Append($"{verb} element ip {Table} pub_any {{ {p.Protocol} . {p.HostPort}{value} }}\n");
                else s.Append($"{verb} element ip {Table} pub_ip {{ {hostIp} . {p.Protocol} . {p.HostPort}{value} }}\n");
            }
            // Over IPv6 only to a container with an IPv6 address, and never for ::1 (see the class comment).
            if ((hostIp is null || hostIp.AddressFamily == AddressFamily.InterNetworkV6) && e.ContainerAddress6 is { } a6 && !IPAddress.IPv6Loopback.Equals(hostIp))
            {
                var value = add ? $" : {a6} . {p.ContainerPort}" : "";
                if (hostIp is null || hostIp.Equals(IPAddress.IPv6Any)) s.Append($"{verb} element ip6 {Table} pub_any {{ {p.Protocol} . {p.HostPort}{value} }}\n");
                else s.Append($"{verb} element ip6 {Table} pub_ip {{ {hostIp} . {p.Protocol} . {p.HostPort}{value} }}\n");
            }
        }
        return s;
    }

    private static string Quote(string name)
    {
        if (name.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.')))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid interface name \"{name}\"");
        return $"\"{name}\"";
    }

    /// <summary>Runs <c>nft -f -</c> (inside the namespace through nsenter when one was given) with the batch on stdin.</summary>
    internal void Apply(string script, string operation)
    {
        if (script.Length == 0) return;
        var nft = FindNft() ?? throw new NetworkException(NetworkErrorKind.Unavailable, $"{operation}: nft (nftables) is not installed");
        var start = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        if (_netnsPath is null)
        {
            start.FileName = nft;
        }
        else
        {
            start.FileName = "nsenter";
            start.ArgumentList.Add($"--net={_netnsPath}");
            start.ArgumentList.Add(nft);
        }
        start.ArgumentList.Add("-f");
        start.ArgumentList.Add("-");
        using var process = Process.Start(start) ?? throw new NetworkException(NetworkErrorKind.Unavailable, $"{operation}: cannot start {start.FileName}");
        // Disposed here: Process leaves redirected streams it hands out open (a pipe fd per run until a GC).
        using StreamReader errReader = process.StandardError, outReader = process.StandardOutput;
        var stderr = errReader.ReadToEndAsync();
        var stdout = outReader.ReadToEndAsync();
        process.StandardInput.Write(script);
        process.StandardInput.Close();
        if (!process.WaitForExit(30_000))
        {
            process.Kill();
            throw new NetworkException(NetworkErrorKind.Internal, $"{operation}: nft did not finish in 30 s");
        }
        if (process.ExitCode != 0)
        {
            throw new NetworkException(NetworkErrorKind.Internal, $"{operation}: nft exited with {process.ExitCode}: {stderr.Result.Trim()}{stdout.Result.Trim()}");
        }
    }

    private static string? FindNft() =>
        new[] { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft" }.FirstOrDefault(File.Exists);
}
