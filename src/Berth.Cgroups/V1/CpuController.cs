using System.Globalization;

namespace Berth.Cgroups.V1;

/// <summary>cgroup v1 cpu: shares, CFS bandwidth (quota/period) and real-time bandwidth (rt_period/rt_runtime).</summary>
internal sealed class CpuController : ICgroupController, ICgroupStatsReader
{
    internal const string Shares = "cpu.shares";
    internal const string Quota = "cpu.cfs_quota_us";
    internal const string Period = "cpu.cfs_period_us";
    internal const string Burst = "cpu.cfs_burst_us";
    internal const string RtPeriod = "cpu.rt_period_us";
    internal const string RtRuntime = "cpu.rt_runtime_us";
    internal const string Idle = "cpu.idle";

    public string Name => "cpu";

    public bool NeedsApply(CgroupResources resources) => resources.Cpu is { IsCpuSet: true };

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Cpu is not { } cpu)
        {
            return;
        }
        // Real-time bandwidth first, as runc: a process already SCHED_RR cannot join a group without it.
        // The kernel checks each write against the other value in force (runtime <= period, the
        // ratio within the parent's): an update that shortens the period below the group's old
        // runtime is refused (EINVAL) until the new runtime is in, so then the period is written
        // again after it (runc's order).
        string? pendingRtPeriod = null;
        if (cpu.RealtimePeriod is { } rtPeriod and not 0)
        {
            try
            {
                CgroupFs.WriteRequired(path, RtPeriod, Str(rtPeriod), "cpu.realtimePeriod (CONFIG_RT_GROUP_SCHED)");
            }
            catch (CgroupException e) when (e.Errno == CgroupFs.EINVAL && cpu.RealtimeRuntime is not (null or 0))
            {
                pendingRtPeriod = Str(rtPeriod);
            }
        }
        if (cpu.RealtimeRuntime is { } rtRuntime and not 0)
        {
            CgroupFs.WriteRequired(path, RtRuntime, rtRuntime.ToString(CultureInfo.InvariantCulture), "cpu.realtimeRuntime (CONFIG_RT_GROUP_SCHED)");
            if (pendingRtPeriod is not null)
            {
                CgroupFs.Write(path, RtPeriod, pendingRtPeriod);
            }
        }
        if (cpu.Shares is { } shares and not 0)
        {
            CgroupFs.Write(path, Shares, Str(shares));
            // The kernel clamps out-of-range shares silently; report it instead (runc does).
            var actual = CgroupFs.ReadUInt64(path, Shares);
            if (actual != shares)
            {
                var bound = shares > actual ? "maximum" : "minimum";
                throw new CgroupException($"cpu shares {shares} out of range: the {bound} allowed cpu-shares is {actual}",
                    CgroupErrorKind.InvalidArgument, path: Path.Combine(path, Shares));
            }
        }

        // A period smaller than the current one can be refused (EINVAL) while the old quota
        // would exceed the parent's bandwidth; if a quota follows, retry the period after it.
        string? pendingPeriod = null;
        if (cpu.Period is { } period)
        {
            try
            {
                CgroupFs.Write(path, Period, Str(period));
            }
            catch (CgroupException e) when (e.Errno == CgroupFs.EINVAL && cpu.Quota is not null)
            {
                pendingPeriod = Str(period);
            }
        }
        // The kernel wants burst <= quota at every moment: a lowered burst must go first, a
        // raised one after the quota (runc tries first and retries after on failure).
        var burstDone = cpu.Burst is null;
        if (cpu.Burst is { } early)
        {
            CgroupFs.RequireFile(path, Burst, "cpu.burst");
            try
            {
                CgroupFs.Write(path, Burst, Str(early));
                burstDone = true;
            }
            catch (CgroupException e) when (e.Errno == CgroupFs.EINVAL && cpu.Quota is not null)
            {
            }
        }
        if (cpu.Quota is { } quota)
        {
            CgroupFs.Write(path, Quota, quota.ToString(CultureInfo.InvariantCulture));
            if (pendingPeriod is not null)
            {
                CgroupFs.Write(path, Period, pendingPeriod);
            }
        }
        if (!burstDone)
        {
            CgroupFs.Write(path, Burst, Str(cpu.Burst!.Value));
        }
        if (cpu.Idle is { } idle)
        {
            CgroupFs.WriteRequired(path, Idle, idle.ToString(CultureInfo.InvariantCulture), "cpu.idle");
        }
    }

    public void ReadStats(string path, CgroupStats stats)
    {
        if (!CgroupFs.FileExists(path, "cpu.stat"))
        {
            return;
        }
        var s = CgroupFs.ReadFlatKeyed(path, "cpu.stat");
        stats.Cpu.Throttling.Periods = s.GetValueOrDefault("nr_periods");
        stats.Cpu.Throttling.ThrottledPeriods = s.GetValueOrDefault("nr_throttled");
        stats.Cpu.Throttling.ThrottledTime = s.GetValueOrDefault("throttled_time");
    }

    private static string Str(ulong value) => value.ToString(CultureInfo.InvariantCulture);
}
