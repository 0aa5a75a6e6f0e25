using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Berth.Network;

/// <summary>
/// The container's /etc/resolv.conf, derived from the host's as Docker does: nameservers on
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
        var nameservers = new List<string>();
        var hostSearch = new List<string>();
        var hostOptions = new List<string>();
        foreach (var raw in hostResolvConf.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';') continue;
            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            switch (fields[0])
            {
                case "nameserver" when fields.Length > 1:
                    if (IPAddress.TryParse(fields[1], out var ip) && !IPAddress.IsLoopback(ip) && ip.AddressFamily == AddressFamily.InterNetwork)
                        nameservers.Add(fields[1]);
                    break;
                case "search" or "domain":
                    hostSearch.Clear();
                    hostSearch.AddRange(fields.Skip(1));
                    break;
                case "options":
                    hostOptions.AddRange(fields.Skip(1));
                    break;
            }
        }
        if (dns is { Count: > 0 })
        {
            foreach (var d in dns)
            {
                if (!IPAddress.TryParse(d, out _)) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid DNS server address \"{d}\"");
            }
            nameservers = [.. dns];
        }
        else if (nameservers.Count == 0)
        {
            nameservers = [.. DefaultNameservers];
        }
        var s = new StringBuilder();
        foreach (var n in nameservers) s.Append("nameserver ").Append(n).Append('\n');
        var searchList = search is { Count: > 0 } ? search.Where(x => x != ".").ToList() : hostSearch;
        if (searchList.Count > 0) s.Append("search ").AppendJoin(' ', searchList).Append('\n');
        var optionList = options is { Count: > 0 } ? options : hostOptions;
        if (optionList.Count > 0) s.Append("options ").AppendJoin(' ', optionList).Append('\n');
        return s.ToString();
    }
}
