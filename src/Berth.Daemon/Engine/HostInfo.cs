using Berth.Cgroups;

namespace Berth.Daemon.Engine;

/// <summary>What <c>/info</c> and <c>/version</c> say about this machine, read once at start.</summary>
public sealed record HostInfo(string KernelVersion, string OperatingSystem, string OSVersion, string Architecture, int Cpus, long MemTotal,
    string CgroupVersion, string CgroupDriver, string Hostname)
{
    public static HostInfo Detect()
    {
        string kernel = ReadTrimmed("/proc/sys/kernel/osrelease") ?? "unknown";
        var osRelease = ParseOsRelease(ReadTrimmed("/etc/os-release") ?? "");
        string cgroupVersion;
        try
        {
            cgroupVersion = CgroupLayout.Detect().Mode == CgroupMode.Unified ? "2" : "1";
        }
        catch (CgroupException)
        {
            cgroupVersion = "";
        }
        return new HostInfo(
            kernel,
            osRelease.GetValueOrDefault("PRETTY_NAME") ?? "Linux",
            osRelease.GetValueOrDefault("VERSION_ID") ?? "",
            RuntimeInformation.OSArchitecture switch
            {
                System.Runtime.InteropServices.Architecture.X64 => "x86_64",
                System.Runtime.InteropServices.Architecture.Arm64 => "aarch64",
                System.Runtime.InteropServices.Architecture.Arm => "armv7l",
                var a => a.ToString().ToLowerInvariant(),
            },
            Environment.ProcessorCount,
            ReadMemTotal(),
            cgroupVersion,
            // Berth manages its cgroups directly in the cgroup filesystem, under a `berth` parent.
            "cgroupfs",
            Environment.MachineName);
    }

    /// <summary>Docker's GOARCH name of this machine (amd64, arm64).</summary>
    public static string GoArch => RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        var a => a.ToString().ToLowerInvariant(),
    };

    private static long ReadMemTotal()
    {
        foreach (string line in (ReadTrimmed("/proc/meminfo") ?? "").Split('\n'))
        {
            if (!line.StartsWith("MemTotal:", StringComparison.Ordinal)) continue;
            string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && long.TryParse(parts[1], out long kb)) return kb * 1024;
        }
        return 0;
    }

    private static Dictionary<string, string> ParseOsRelease(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in text.Split('\n'))
        {
            int eq = line.IndexOf('=');
            if (eq <= 0) continue;
            result[line[..eq]] = line[(eq + 1)..].Trim().Trim('"');
        }
        return result;
    }

    private static string? ReadTrimmed(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
