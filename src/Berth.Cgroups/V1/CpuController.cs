using System.Globalization;

namespace Berth.Cgroups.V1;

/// <summary>cgroup v1 cpu: shares and CFS bandwidth (quota/period).</summary>
internal sealed class CpuController : ICgroupController
{
    internal const string Shares = "cpu.shares";
    internal const string Quota = "cpu.cfs_quota_us";
    internal const string Period = "cpu.cfs_period_us";

    public string Name => "cpu";

    public bool NeedsApply(CgroupResources resources) => resources.Cpu is { IsCpuSet: true };

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Cpu is not { } cpu)
        {
            return;
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
        if (cpu.Quota is { } quota)
        {
            CgroupFs.Write(path, Quota, quota.ToString(CultureInfo.InvariantCulture));
            if (pendingPeriod is not null)
            {
                CgroupFs.Write(path, Period, pendingPeriod);
            }
        }
    }

    private static string Str(ulong value) => value.ToString(CultureInfo.InvariantCulture);
}
