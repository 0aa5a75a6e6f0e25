namespace Berth.Cgroups.Tests.Support;

/// <summary>A test on the host's real cgroup v1 tree (legacy or hybrid): needs root.</summary>
public sealed class RealCgroupV1FactAttribute : FactAttribute
{
    public RealCgroupV1FactAttribute()
    {
        Skip = RealHost.SkipReason(CgroupMode.Legacy, CgroupMode.Hybrid);
    }
}

/// <summary>A test on the host's real cgroup v2 tree: needs root and a cgroup v2 host.</summary>
public sealed class RealCgroupV2FactAttribute : FactAttribute
{
    public RealCgroupV2FactAttribute()
    {
        Skip = RealHost.SkipReason(CgroupMode.Unified);
    }
}

internal static class RealHost
{
    public static string? SkipReason(params CgroupMode[] modes)
    {
        if (!OperatingSystem.IsLinux())
        {
            return "cgroups exist only on Linux";
        }
        if (!Environment.IsPrivilegedProcess)
        {
            return "needs root to create cgroups on the real tree";
        }
        CgroupMode mode;
        try
        {
            mode = CgroupLayout.Detect().Mode;
        }
        catch (CgroupException e)
        {
            return "no usable cgroup mount: " + e.Message;
        }
        return modes.Contains(mode) ? null : $"host cgroups are {mode}; this test needs {string.Join(" or ", modes)}";
    }
}
