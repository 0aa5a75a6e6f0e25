using System.Security.Cryptography;

namespace Berth.Images.Tests.Layers;

/// <summary>A comparable description of a directory tree: every attribute a layer carries.</summary>
internal static class TreeSnapshot
{
    public static List<string> Capture(string root)
    {
        var lines = new List<string>();
        var inodes = new Dictionary<ulong, string>();
        Walk(root, "", lines, inodes);
        return lines;
    }

    private static void Walk(string root, string prefix, List<string> lines, Dictionary<ulong, string> inodes)
    {
        var names = Directory.EnumerateFileSystemEntries(Path.Combine(root, prefix)).Select(Path.GetFileName).ToList();
        names.Sort(StringComparer.Ordinal);
        foreach (string name in names!)
        {
            string rel = prefix + name;
            string full = Path.Combine(root, rel);
            var st = Interop.LStat(full);
            bool whiteout = st.Type == Interop.S_IFCHR && st.RdevMajor == 0 && st.RdevMinor == 0;
            string line = $"{rel} type={st.Type:x} mode={Convert.ToString(st.Permissions, 8)} uid={st.Uid} gid={st.Gid}";
            if (!whiteout) line += $" mtime={st.MtimeSec}";
            if (st.Type is Interop.S_IFCHR or Interop.S_IFBLK) line += $" rdev={st.RdevMajor}:{st.RdevMinor}";
            if (st.Type == Interop.S_IFLNK) line += $" -> {new FileInfo(full).LinkTarget}";
            if (st.Type == Interop.S_IFREG)
            {
                line += $" size={st.Size} sha={Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(full)))[..16]}";
                if (st.Nlink > 1)
                {
                    if (inodes.TryGetValue(st.Ino, out string? first)) line += $" link-of={first}";
                    else inodes[st.Ino] = rel;
                }
            }
            using (var fd = Interop.Open(full, Interop.O_PATH | Interop.O_NOFOLLOW))
                foreach (var (k, v) in Interop.ListXattrs(fd, rel).OrderBy(x => x.Key, StringComparer.Ordinal))
                    line += $" xattr:{k}={Convert.ToHexString(v)}";
            lines.Add(line);
            if (st.IsDirectory) Walk(root, rel + "/", lines, inodes);
        }
    }
}
