using System.Net;

namespace Berth.Daemon.Configuration;

public enum ListenKind
{
    Unix,
    Tcp,
}

/// <summary>A parsed <c>-H</c> value.</summary>
public sealed record ListenAddress(ListenKind Kind, string Text, string? SocketPath = null, IPAddress? Address = null, int Port = 0)
{
    /// <summary>
    /// <c>unix:///path</c> (or a bare absolute path), <c>tcp://host:port</c>. TCP is refused
    /// without TLS: the API gives whoever reaches it root on this machine.
    /// </summary>
    public static ListenAddress Parse(string text, TlsOptions tls)
    {
        if (text.StartsWith('/')) text = "unix://" + text;
        if (text.StartsWith("unix://", StringComparison.Ordinal))
        {
            string path = text["unix://".Length..];
            if (path.Length == 0) path = "/run/berth/berth.sock";
            if (!path.StartsWith('/')) throw new DaemonConfigException($"invalid host `{text}`: the socket path must be absolute");
            if (System.Text.Encoding.UTF8.GetByteCount(path) >= 108)
                throw new DaemonConfigException($"invalid host `{text}`: a unix socket path is limited to 107 bytes");
            return new ListenAddress(ListenKind.Unix, text, SocketPath: path);
        }
        if (text.StartsWith("tcp://", StringComparison.Ordinal))
        {
            if (!tls.Configured)
                throw new DaemonConfigException(
                    $"refusing to listen on `{text}` without TLS: the Engine API gives root on this host to anyone who can reach it. " +
                    "Give --tlscert and --tlskey (and --tlsverify --tlscacert to require client certificates), or listen on a unix socket");
            string rest = text["tcp://".Length..].TrimEnd('/');
            int colon = rest.LastIndexOf(':');
            string hostPart = colon < 0 ? rest : rest[..colon];
            string portPart = colon < 0 ? "2376" : rest[(colon + 1)..];
            if (!int.TryParse(portPart, out int port) || port is <= 0 or > 65535)
                throw new DaemonConfigException($"invalid host `{text}`: bad port `{portPart}`");
            hostPart = hostPart.Trim('[', ']');
            IPAddress address = hostPart.Length == 0 ? IPAddress.Any
                : hostPart == "localhost" ? IPAddress.Loopback
                : IPAddress.TryParse(hostPart, out IPAddress? a) ? a
                : throw new DaemonConfigException($"invalid host `{text}`: `{hostPart}` is not an IP address");
            return new ListenAddress(ListenKind.Tcp, text, Address: address, Port: port);
        }
        throw new DaemonConfigException($"invalid host `{text}`: berthd listens on unix:///path or tcp://address:port (with TLS)");
    }
}
