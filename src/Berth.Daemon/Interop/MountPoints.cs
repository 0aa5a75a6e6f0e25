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

    /// <summary>The mount holding <paramref name="path"/> and whether it is shared or a slave (moby's getSourceMount).</summary>
    public static (string MountPoint, bool Shared, bool Slave) Holding(string path)
        => Berth.Runtime.Native.MountInfo.Holding(path, File.ReadAllText("/proc/self/mountinfo"));

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
