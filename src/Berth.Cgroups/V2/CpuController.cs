using System.Globalization;

namespace Berth.Cgroups.V2;

/// <summary>cgroup v2 cpu: cpu.weight (from shares) and cpu.max (quota and period).</summary>
internal sealed class CpuController : ICgroupController, ICgroupStatsReader
{
    internal const string Weight = "cpu.weight";
    internal const string Max = "cpu.max";
    internal const string MaxBurst = "cpu.max.burst";
    internal const string Idle = "cpu.idle";

    public string Name => "cpu";

    public bool NeedsApply(CgroupResources resources) => resources.Cpu is { IsCpuSet: true };

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Cpu is not { } cpu)
        {
            return;
        }
        if (cpu.RealtimeRuntime is not null and not 0 || cpu.RealtimePeriod is not null and not 0)
        {
            throw new CgroupException(
                $"cpu.{(cpu.RealtimeRuntime is not null and not 0 ? "realtimeRuntime" : "realtimePeriod")} requested but cgroup v2 has no real-time group scheduling (cpu.rt_* exist only in cgroup v1)",
                CgroupErrorKind.Unavailable);
        }
        if (cpu.Shares is { } shares and not 0)
        {
            CgroupFs.Write(path, Weight, CgroupConversions.SharesToWeight(shares).ToString(CultureInfo.InvariantCulture));
        }
        // burst <= quota at every moment: try the burst first (lowering), else after cpu.max.
        var burstDone = cpu.Burst is null;
        if (cpu.Burst is { } early)
        {
            CgroupFs.RequireFile(path, MaxBurst, "cpu.burst");
            try
            {
                CgroupFs.Write(path, MaxBurst, early.ToString(CultureInfo.InvariantCulture));
                burstDone = true;
            }
            catch (CgroupException e) when (e.Errno == CgroupFs.EINVAL && (cpu.Quota is not null || cpu.Period is not null))
            {
            }
        }
        if (cpu.Quota is not null || cpu.Period is not null)
        {
            CgroupFs.Write(path, Max, CgroupConversions.CpuMax(cpu.Quota, cpu.Period));
        }
        if (!burstDone)
        {
            CgroupFs.Write(path, MaxBurst, cpu.Burst!.Value.ToString(CultureInfo.InvariantCulture));
        }
        if (cpu.Idle is { } idle)
        {
            CgroupFs.WriteRequired(path, Idle, idle.ToString(CultureInfo.InvariantCulture), "cpu.idle");
        }
    }

    /// <summary>cpu.stat (usec) in nanoseconds; cgroup v2 has no per-cpu figures.</summary>
    public void ReadStats(string path, CgroupStats stats)
    {
        var s = CgroupFs.ReadFlatKeyed(path, "cpu.stat");
        stats.Cpu.Usage.Total = s.GetValueOrDefault("usage_usec") * 1000;
        stats.Cpu.Usage.User = s.GetValueOrDefault("user_usec") * 1000;
        stats.Cpu.Usage.Kernel = s.GetValueOrDefault("system_usec") * 1000;
        stats.Cpu.Throttling.Periods = s.GetValueOrDefault("nr_periods");
        stats.Cpu.Throttling.ThrottledPeriods = s.GetValueOrDefault("nr_throttled");
        stats.Cpu.Throttling.ThrottledTime = s.GetValueOrDefault("throttled_usec") * 1000;
    }
}
