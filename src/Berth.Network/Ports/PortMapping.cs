using System.Net;
using System.Net.Sockets;

namespace Berth.Network;

/// <summary>
/// One published port: <see cref="HostIp"/> : <see cref="HostPort"/> (0: pick a free one from the
/// ephemeral range) → the container's <see cref="ContainerPort"/>. The host IP is null for every local
/// address of both families (<c>-p 8080:80</c>), <c>0.0.0.0</c> or <c>::</c> for every address of one
/// family, or one address of either family.
/// </summary>
public sealed record PortMapping
{
    public required string Protocol { get; init; }
    public string? HostIp { get; init; }
    public int HostPort { get; init; }
    public required int ContainerPort { get; init; }

    public override string ToString() => $"{HostIp ?? "0.0.0.0"}:{HostPort}->{ContainerPort}/{Protocol}";

    /// <summary>True when both would catch the same packets: same protocol and port, and an equal host address or a wildcard covering the other's.</summary>
    public bool ConflictsWith(PortMapping other) =>
        Protocol == other.Protocol && HostPort == other.HostPort && AddressesOverlap(HostIp, other.HostIp);

    private static bool AddressesOverlap(string? a, string? b)
    {
        if (a is null || b is null) return true;
        if (!IPAddress.TryParse(a, out var x) || !IPAddress.TryParse(b, out var y)) return a == b;
        if (x.AddressFamily != y.AddressFamily) return false;
        return x.Equals(y) || IsWildcard(x) || IsWildcard(y);
    }

    private static bool IsWildcard(IPAddress a) => a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any);
}

/// <summary>Parses Docker's <c>-p</c> syntax: <c>[ip:][hostPort[-end]:]containerPort[-end][/tcp|udp]</c>.</summary>
public static class PortSpec
{
    public static IReadOnlyList<PortMapping> Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string Bad(string why) => throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid port spec \"{spec}\": {why}");

        var body = spec.Trim();
        var protocol = "tcp";
        var slash = body.LastIndexOf('/');
        if (slash >= 0)
        {
            protocol = body[(slash + 1)..].ToLowerInvariant();
            body = body[..slash];
            if (protocol is not ("tcp" or "udp")) Bad($"protocol \"{protocol}\" is not tcp or udp");
        }
        if (body.Length == 0) Bad("no container port");

        // The host IP may be an IPv6 literal in brackets: [::1]:80:80.
        string? hostIp = null, hostPart = null, containerPart;
        var lastColon = body.LastIndexOf(':');
        if (lastColon < 0)
        {
            containerPart = body;
        }
        else
        {
            containerPart = body[(lastColon + 1)..];
            var front = body[..lastColon];
            var colon = front.LastIndexOf(':');
            if (colon < 0) hostPart = front;
            else
            {
                hostIp = front[..colon];
                hostPart = front[(colon + 1)..];
                if (hostIp.StartsWith('[') && hostIp.EndsWith(']')) hostIp = hostIp[1..^1];
                if (!IPAddress.TryParse(hostIp, out var ip) || (ip.AddressFamily == AddressFamily.InterNetworkV6 && ip.ScopeId != 0)) Bad($"host IP \"{hostIp}\" is not an IP address");
                // 0.0.0.0 is every IPv4 address only, as in docker: -p 8080:80 is both families.
                else hostIp = ip.ToString();
            }
        }

        var (containerStart, containerEnd) = ParseRange(containerPart, "container port", Bad);
        int hostStart = 0, hostEnd = 0;
        if (!string.IsNullOrEmpty(hostPart))
        {
            (hostStart, hostEnd) = ParseRange(hostPart, "host port", Bad);
            if (hostEnd - hostStart != containerEnd - containerStart) Bad("host and container port ranges differ in length");
        }

        var result = new List<PortMapping>(containerEnd - containerStart + 1);
        for (var i = 0; i <= containerEnd - containerStart; i++)
        {
            result.Add(new PortMapping { Protocol = protocol, HostIp = hostIp, HostPort = hostStart == 0 ? 0 : hostStart + i, ContainerPort = containerStart + i });
        }
        return result;
    }

    private static (int, int) ParseRange(string text, string what, Func<string, string> bad)
    {
        var dash = text.IndexOf('-');
        var start = ParsePort(dash < 0 ? text : text[..dash], what, bad);
        var end = dash < 0 ? start : ParsePort(text[(dash + 1)..], what, bad);
        if (end < start) bad($"{what} range {text} ends before it starts");
        return (start, end);
    }

    private static int ParsePort(string text, string what, Func<string, string> bad)
    {
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, null, out var port) || port is < 1 or > 65535)
        {
            bad($"{what} \"{text}\" is not a number in 1..65535");
        }
        return port;
    }
}
