using System.Globalization;

namespace Berth.Cgroups.V1;

/// <summary>cgroup v1 hugetlb: hugetlb.&lt;size&gt;.limit_in_bytes per page size.</summary>
internal sealed class HugetlbController : ICgroupController, ICgroupStatsReader
{
    public string Name => "hugetlb";

    public bool NeedsApply(CgroupResources resources) => resources.HugepageLimits is { Count: > 0 };

    public void Apply(string path, CgroupResources resources)
    {
        foreach (var h in resources.HugepageLimits ?? [])
        {
            CgroupFs.WriteRequired(path, $"hugetlb.{h.PageSize}.limit_in_bytes", h.Limit.ToString(CultureInfo.InvariantCulture),
                $"hugepageLimits pageSize {h.PageSize}");
        }
    }

    public void ReadStats(string path, CgroupStats stats)
    {
        foreach (var size in StatsParsing.HugePageSizes(path, "limit_in_bytes"))
        {
            stats.Hugetlb[size] = new HugetlbStats
            {
                Usage = CgroupFs.ReadUInt64OrZero(path, $"hugetlb.{size}.usage_in_bytes"),
                Max = CgroupFs.ReadUInt64OrZero(path, $"hugetlb.{size}.max_usage_in_bytes"),
                Failcnt = CgroupFs.ReadUInt64OrZero(path, $"hugetlb.{size}.failcnt"),
            };
        }
    }
}
