using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Berth.Daemon.Api;

namespace Berth.Daemon.Containers;

/// <summary>
/// What berth-monitor is given to reach a log server (syslog, gelf, fluentd): <c>tcp:IP:PORT</c>, <c>udp:IP:PORT</c>
/// (an IPv6 address in brackets) or <c>unix:PATH</c>. berthd resolves host names when the container starts:
/// getaddrinfo would tie the static monitor to the host's NSS libraries.
/// </summary>
internal static class LogServerAddress
{
    /// <exception cref="ApiException">500 in dockerd's words when the name does not resolve (the start fails, as dockerd's dial).</exception>
    public static string Inet(string scheme, string host, int port)
    {
        IPAddress ip;
        try
        {
            // A name's IPv4 address first ("localhost" often lists ::1 first, where a server on 127.0.0.1 is not).
            ip = IPAddress.TryParse(host.Trim('[', ']'), out IPAddress? literal) ? literal
                : Dns.GetHostAddresses(host).OrderBy(a => a.AddressFamily != AddressFamily.InterNetwork).First();
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException)
        {
            throw new ApiException(500, $"failed to initialize logging driver: dial {scheme} {host}:{port}: lookup {host}: {e.Message}");
        }
        string text = ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString();
        return $"{scheme}:{text}:{port.ToString(CultureInfo.InvariantCulture)}";
    }
}

/// <summary>A JSON string as Go's json.Marshal writes it (HTML-safe: &lt;, &gt;, &amp;, U+2028 and U+2029 escaped; a lone surrogate as U+FFFD).</summary>
internal static class GoJson
{
    public static void AppendString(StringBuilder b, string s)
    {
        b.Append('"');
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            switch (c)
            {
                case '"': b.Append("\\\""); break;
                case '\\': b.Append("\\\\"); break;
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                case '<' or '>' or '&' or '\u2028' or '\u2029' or < ' ':
                    b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    break;
                default:
                    if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) b.Append(c).Append(s[++i]);
                    else if (char.IsSurrogate(c)) b.Append("\\ufffd");
                    else b.Append(c);
                    break;
            }
        }
        b.Append('"');
    }

    /// <summary>An object of string members, keys in Go's order (sorted by bytes).</summary>
    public static string Object(IEnumerable<KeyValuePair<string, string>> members)
    {
        var b = new StringBuilder("{");
        foreach (var (key, value) in members.OrderBy(m => Encoding.UTF8.GetBytes(m.Key), ByteOrder.Instance))
        {
            if (b.Length > 1) b.Append(',');
            AppendString(b, key);
            b.Append(':');
            AppendString(b, value);
        }
        return b.Append('}').ToString();
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();
        public int Compare(byte[]? x, byte[]? y) => ((ReadOnlySpan<byte>)x).SequenceCompareTo(y);
    }
}
