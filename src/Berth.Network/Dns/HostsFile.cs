using System.Net;
using System.Text;

namespace Berth.Network;

/// <summary>One /etc/hosts line: an address and its names (container name, hostname, aliases).</summary>
public sealed record HostsEntry(IPAddress Address, IReadOnlyList<string> Names);

/// <summary>
/// A container's /etc/hosts. Name resolution between containers on a user network is done with
/// hosts files kept current (not an embedded DNS server): see <see cref="NetworkController.PeersOf"/>.
/// </summary>
public static class HostsFile
{
    /// <summary>Docker's layout: localhost and the IPv6 names, <c>--add-host</c> entries, the container's own address, then its peers.</summary>
    public static string Render(string? hostname, IPAddress? ownAddress, IEnumerable<HostsEntry>? peers = null, IEnumerable<HostsEntry>? extraHosts = null,
        IPAddress? ownAddress6 = null)
    {
        var s = new StringBuilder();
        s.Append("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
        foreach (var e in extraHosts ?? []) Line(s, e);
        if (ownAddress is not null && !string.IsNullOrEmpty(hostname)) s.Append(ownAddress).Append('\t').Append(hostname).Append('\n');
        if (ownAddress6 is not null && !string.IsNullOrEmpty(hostname)) s.Append(ownAddress6).Append('\t').Append(hostname).Append('\n');
        foreach (var e in peers ?? []) Line(s, e);
        return s.ToString();
    }

    /// <summary>
    /// Rewrites the file in place (truncate + write, same inode): a container's /etc/hosts is a bind
    /// mount of this file, and a rename would leave the container looking at the old inode.
    /// </summary>
    public static void WriteInPlace(string path, string content)
    {
        using var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite);
        var bytes = Encoding.UTF8.GetBytes(content);
        stream.SetLength(0);
        stream.Write(bytes);
    }

    private static void Line(StringBuilder s, HostsEntry e)
    {
        var names = e.Names.Where(n => n.Length > 0 && !n.Any(char.IsWhiteSpace)).Distinct().ToList();
        if (names.Count > 0) s.Append(e.Address).Append('\t').AppendJoin(' ', names).Append('\n');
    }
}
