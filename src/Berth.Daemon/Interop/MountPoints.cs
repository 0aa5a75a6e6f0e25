namespace Berth.Daemon;

/// <summary>Whether a path is mounted on (container rootfs, volumes), for the container and volume services alike.</summary>
internal static class MountPoints
{
    /// <summary>
    /// One statx (<see cref="Interop.IsMountRoot"/>) where the kernel reports mount roots (5.8+);
    /// /proc/self/mountinfo, which grows with every container, only where it does not.
    /// </summary>
    public static bool IsMountPoint(string path)
    {
        if (Interop.IsMountRoot(path) is bool answer) return answer;
        string target = Path.GetFullPath(path);
        return Targets().Any(t => t == target);
    }

    /// <summary>Something is mounted on <paramref name="path"/> or anywhere below it.</summary>
    public static bool IsMountedAtOrUnder(string path)
    {
        string target = Path.GetFullPath(path).TrimEnd('/');
        return Targets().Any(t => t == target || t.StartsWith(target + "/", StringComparison.Ordinal));
    }

    /// <summary>
    /// The mount holding <paramref name="path"/> after its symlinks are resolved (moby's
    /// getSourceMount): its mount point, and whether it is shared (a peer group) or a slave.
    /// </summary>
    public static (string MountPoint, bool Shared, bool Slave) Holding(string path)
    {
        string target = RealPath(path);
        (string Point, bool Shared, bool Slave) best = ("/", false, false);
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root mount-point options optional-fields... - type source super-options
            string[] f = line.Split(' ');
            if (f.Length < 7) continue;
            string point = Unescape(f[4]);
            bool inside = point == "/" || target == point || target.StartsWith(point + "/", StringComparison.Ordinal);
            // >=: of mounts stacked on one point, the last listed is the one on top.
            if (!inside || point.Length < best.Point.Length) continue;
            int dash = Array.IndexOf(f, "-", 6);
            string[] optional = f[6..(dash < 0 ? 6 : dash)];
            best = (point, optional.Any(o => o.StartsWith("shared:", StringComparison.Ordinal)), optional.Any(o => o.StartsWith("master:", StringComparison.Ordinal)));
        }
        return best;
    }

    private static string RealPath(string path)
    {
        nint resolved = Interop.realpath(path, 0);
        if (resolved == 0) return Path.GetFullPath(path);
        try { return System.Runtime.InteropServices.Marshal.PtrToStringUTF8(resolved)!; }
        finally { unsafe { System.Runtime.InteropServices.NativeMemory.Free((void*)resolved); } }
    }

    private static IEnumerable<string> Targets()
    {
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            string[] f = line.Split(' ');
            if (f.Length > 4) yield return Unescape(f[4]);
        }
    }

    private static string Unescape(string field) => field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
        .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);
}
