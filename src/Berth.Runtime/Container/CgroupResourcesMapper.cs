using Berth.Cgroups;
using Berth.Oci;

namespace Berth.Runtime.Container;

/// <summary>OCI linux.resources → the cgroup library's resources (runc's specconv).</summary>
public static class CgroupResourcesMapper
{
    public static CgroupResources Map(LinuxResources? resources)
    {
        if (resources is null) return new CgroupResources();
        return new CgroupResources
        {
            Memory = resources.Memory is { } m ? new MemoryResources
            {
                Limit = m.Limit, Reservation = m.Reservation, Swap = m.Swap, Swappiness = m.Swappiness, DisableOomKiller = m.DisableOomKiller,
            } : null,
            Cpu = resources.Cpu is { } c ? new CpuResources
            {
                Shares = c.Shares, Quota = c.Quota, Period = c.Period, Cpus = NullIfEmpty(c.Cpus), Mems = NullIfEmpty(c.Mems),
            } : null,
            Pids = resources.Pids is { } p ? new PidsResources { Limit = p.Limit } : null,
        };
    }

    static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
