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

/// <summary>A test on the host's real cgroup2 tree (unified, or the cgroup2 part of a hybrid host): needs root.</summary>
public sealed class RealCgroup2TreeFactAttribute : FactAttribute
{
    public RealCgroup2TreeFactAttribute()
    {
        Skip = RealHost.SkipReason(CgroupMode.Unified, CgroupMode.Hybrid);
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
