namespace Berth.Runtime.Native;

/// <summary>/proc/self/mountinfo, read for the runtime (rootfs propagation) and for berthd (bind propagation checks).</summary>
public static class MountInfo
{
    /// <summary>
    /// The mount that holds <paramref name="path"/> once its symlinks are resolved (the longest mount point in
    /// <paramref name="mountinfo"/> that is the path or one of its ancestors; of mounts stacked on one point, the
    /// last listed, which is on top), and whether it is shared (in a peer group) or a slave.
    /// </summary>
    public static (string MountPoint, bool Shared, bool Slave) Holding(string path, string mountinfo)
    {
        var target = RealPath(path);
        (string MountPoint, bool Shared, bool Slave) best = ("/", false, false);
        foreach (var line in mountinfo.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // id parent major:minor root mount-point options optional-fields... - type source super-options
            var fields = line.Split(' ');
            if (fields.Length < 7) continue;
            var point = Unescape(fields[4]);
            var inside = point == "/" || target == point || target.StartsWith(point + "/", StringComparison.Ordinal);
            if (!inside || point.Length < best.MountPoint.Length) continue;
            var dash = Array.IndexOf(fields, "-", 6);
            var optional = fields[6..(dash < 0 ? 6 : dash)];
            best = (point, optional.Any(o => o.StartsWith("shared:", StringComparison.Ordinal)), optional.Any(o => o.StartsWith("master:", StringComparison.Ordinal)));
        }
        return best;
    }

    static string RealPath(string path)
    {
        var resolved = LibC.realpath(path, 0);
        if (resolved == 0) throw LibC.Error($"resolve {path}", LibC.Errno);
        try { return System.Runtime.InteropServices.Marshal.PtrToStringUTF8(resolved)!; }
        finally { unsafe { System.Runtime.InteropServices.NativeMemory.Free((void*)resolved); } }
    }

    // mountinfo escapes space, tab, newline and backslash as octal.
    static string Unescape(string field) => field.Contains('\\')
        ? field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal)
        : field;
}
