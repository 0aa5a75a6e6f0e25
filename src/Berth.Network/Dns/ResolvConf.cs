using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Berth.Network;

/// <summary>
/// The container's /etc/resolv.conf on the default bridge, derived from the host's as Docker does: nameservers on
/// loopback (127.0.0.0/8, ::1 — a local stub such as systemd-resolved's 127.0.0.53, unreachable
/// from another namespace) and IPv6 nameservers (Berth's networks are IPv4) are dropped; if none
/// remain, Google's 8.8.8.8 and 8.8.4.4 are used. <c>--dns</c>, <c>--dns-search</c> and
/// <c>--dns-option</c> replace the host's values.
/// </summary>
public static class ResolvConf
{
    public static readonly IReadOnlyList<string> DefaultNameservers = ["8.8.8.8", "8.8.4.4"];

    public static string Render(string hostResolvConf, IReadOnlyList<string>? dns = null,
        IReadOnlyList<string>? search = null, IReadOnlyList<string>? options = null)
    {
        HostSettings host = Parse(hostResolvConf);
        List<string> nameservers;
        if (dns is { Count: > 0 })
        {
            CheckServers(dns);
            nameservers = [.. dns];
        }
        else
        {
            nameservers = host.Nameservers.Where(ip => !IPAddress.IsLoopback(ip) && ip.AddressFamily == AddressFamily.InterNetwork).Select(ip => ip.ToString()).ToList();
            if (nameservers.Count == 0) nameservers = [.. DefaultNameservers];
        }
        var optionList = options is { Count: > 0 } ? options : host.Options;
        return Write(nameservers, search is { Count: > 0 } ? search.Where(x => x != ".").ToList() : host.Search, optionList);
    }

    /// <summary>
    /// The resolv.conf of a container with the embedded DNS server (on a user-defined network), as
    /// dockerd writes it: 127.0.0.11 only, the search domains and options of <see cref="Render"/>, and
    /// <c>ndots:0</c> unless an ndots option was given (a bare service name is asked as it is first).
    /// </summary>
    public static string RenderEmbedded(string hostResolvConf, IReadOnlyList<string>? search = null, IReadOnlyList<string>? options = null)
    {
        HostSettings host = Parse(hostResolvConf);
        List<string> optionList = [.. options is { Count: > 0 } ? options : host.Options];
        if (!optionList.Any(o => o.StartsWith("ndots:", StringComparison.Ordinal))) optionList.Insert(0, "ndots:0");
        return Write([EmbeddedDnsServer.Address.ToString()], search is { Count: > 0 } ? search.Where(x => x != ".").ToList() : host.Search, optionList);
    }

    /// <summary>
    /// Where the embedded DNS server forwards what it does not know: <c>--dns</c>, else every
    /// nameserver of the host's resolv.conf — loopback ones included, as the server asks them from
    /// the host's side —, else Google's.
    /// </summary>
    public static IReadOnlyList<IPAddress> UpstreamServers(string hostResolvConf, IReadOnlyList<string>? dns = null)
    {
        if (dns is { Count: > 0 })
        {
            CheckServers(dns);
            return dns.Select(IPAddress.Parse).ToList();
        }
        List<IPAddress> host = Parse(hostResolvConf).Nameservers;
        return host.Count > 0 ? host : DefaultNameservers.Select(IPAddress.Parse).ToList();
    }

    private sealed record HostSettings(List<IPAddress> Nameservers, List<string> Search, List<string> Options);

    private static HostSettings Parse(string resolvConf)
    {
        var nameservers = new List<IPAddress>();
        var search = new List<string>();
        var options = new List<string>();
        foreach (var raw in resolvConf.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';') continue;
            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            switch (fields[0])
            {
                case "nameserver" when fields.Length > 1:
                    if (IPAddress.TryParse(fields[1], out var ip)) nameservers.Add(ip);
                    break;
                case "search" or "domain":
                    search.Clear();
                    search.AddRange(fields.Skip(1));
                    break;
                case "options":
                    options.AddRange(fields.Skip(1));
                    break;
            }
        }
        return new HostSettings(nameservers, search, options);
    }

    private static void CheckServers(IReadOnlyList<string> dns)
    {
        foreach (var d in dns)
        {
            if (!IPAddress.TryParse(d, out _)) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid DNS server address \"{d}\"");
        }
    }

    private static string Write(IReadOnlyList<string> nameservers, IReadOnlyList<string> search, IReadOnlyList<string> options)
    {
        var s = new StringBuilder();
        foreach (var n in nameservers) s.Append("nameserver ").Append(n).Append('\n');
        if (search.Count > 0) s.Append("search ").AppendJoin(' ', search).Append('\n');
        if (options.Count > 0) s.Append("options ").AppendJoin(' ', options).Append('\n');
        return s.ToString();
    }
}
