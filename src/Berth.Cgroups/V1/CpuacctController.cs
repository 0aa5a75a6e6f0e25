namespace Berth.Cgroups.V1;

/// <summary>cgroup v1 cpuacct: usage figures only (it has no limits).</summary>
internal sealed class CpuacctController : ICgroupStatsReader
{
    /// <summary>cpuacct.stat counts USER_HZ ticks, 100 per second on every Linux architecture Berth runs on.</summary>
    private const ulong NanosecondsPerTick = 1_000_000_000 / 100;

    public string Name => "cpuacct";

    public void ReadStats(string path, CgroupStats stats)
    {
        var usage = stats.Cpu.Usage;
        usage.Total = CgroupFs.ReadUInt64(path, "cpuacct.usage");
        if (CgroupFs.FileExists(path, "cpuacct.usage_percpu"))
        {
            usage.Percpu = StatsParsing.ParseNumberList(CgroupFs.Read(path, "cpuacct.usage_percpu"));
        }
        if (CgroupFs.FileExists(path, "cpuacct.usage_percpu_sys"))
        {
            usage.PercpuKernel = StatsParsing.ParseNumberList(CgroupFs.Read(path, "cpuacct.usage_percpu_sys"));
            usage.PercpuUser = StatsParsing.ParseNumberList(CgroupFs.Read(path, "cpuacct.usage_percpu_user"));
        }
        if (CgroupFs.FileExists(path, "cpuacct.stat"))
        {
            var s = CgroupFs.ReadFlatKeyed(path, "cpuacct.stat");
            usage.User = s.GetValueOrDefault("user") * NanosecondsPerTick;
            usage.Kernel = s.GetValueOrDefault("system") * NanosecondsPerTick;
        }
    }
}
