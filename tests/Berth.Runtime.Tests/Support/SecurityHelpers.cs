using System.Security.Cryptography;

namespace Berth.Runtime.Tests.Support;

/// <summary>Small helpers for the escape-class tests in tests/Berth.Runtime.Tests/Security.</summary>
public static class SecurityHelpers
{
    /// <summary>A snapshot of a host directory tree (relative path → size:mode:content hash), to prove a container did not touch it.</summary>
    public static SortedDictionary<string, string> Snapshot(string dir)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (!Directory.Exists(dir)) return result;
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var info = new FileInfo(entry);
            var rel = Path.GetRelativePath(dir, entry);
            if (info.LinkTarget is { } link) result[rel] = "link:" + link;
            else if (Directory.Exists(entry)) result[rel] = "dir";
            else result[rel] = $"file:{info.Length}:{Sha256(entry)}";
        }
        return result;
    }

    public static string Describe(SortedDictionary<string, string> snapshot) =>
        snapshot.Count == 0 ? "(empty)" : string.Join("\n", snapshot.Select(kv => $"  {kv.Key} {kv.Value}"));

    public static string Sha256(string file)
    {
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return Convert.ToHexString(SHA256.HashData(stream));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "unreadable"; }
    }

    /// <summary>The device:inode of a host file as busybox `stat -L -c %d:%i` prints it inside a container.</summary>
    public static string DevIno(string path)
    {
        var (code, output) = TestEnvironment.Sh($"stat -L -c '%d:%i' '{path}'");
        if (code != 0) throw new InvalidOperationException($"stat {path}: {output}");
        return output.Trim();
    }

    /// <summary>Builds a static binary from C source with gcc -static (null when gcc or libc.a is missing).</summary>
    public static string? BuildStatic(string source, string output)
    {
        var c = output + ".c";
        File.WriteAllText(c, source);
        var (code, text) = TestEnvironment.Sh($"gcc -static -O1 -o '{output}' '{c}'", 60_000);
        return code == 0 ? output : null;
    }

    /// <summary>The mount points of the host's own mount namespace (field 5 of /proc/self/mountinfo).</summary>
    public static HashSet<string> HostMountPoints() =>
        File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4].Replace("\\040", " ")).ToHashSet(StringComparer.Ordinal);

    /// <summary>One field of /proc/PID/status ("CapEff" → "000001fffeffffff").</summary>
    public static string StatusField(string status, string name) =>
        status.Split('\n').Single(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..].Trim();
}

public static class HostCapabilities
{
    /// <summary>Every capability the test process may hand out (its bounding set): "all caps" on this host.</summary>
    public static string[] All { get; } = Names(Convert.ToUInt64(SecurityHelpers.StatusField(File.ReadAllText("/proc/self/status"), "CapBnd"), 16));

    public static string[] Names(ulong mask) =>
        Enumerable.Range(0, Berth.Oci.Capabilities.Last + 1).Where(c => (mask & (1UL << c)) != 0).Select(Berth.Oci.Capabilities.NameOf).ToArray();
}

/// <summary>A theory that needs root, the built berth-runtime and busybox; skipped with the reason otherwise.</summary>
public sealed class IntegrationTheoryAttribute : TheoryAttribute
{
    public IntegrationTheoryAttribute()
    {
        if (TestEnvironment.IntegrationSkipReason is { } reason) Skip = reason;
    }
}
