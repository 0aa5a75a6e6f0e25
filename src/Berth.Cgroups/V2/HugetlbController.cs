using System.Globalization;

namespace Berth.Cgroups.V2;

/// <summary>cgroup v2 hugetlb: hugetlb.&lt;size&gt;.max per page size.</summary>
internal sealed class HugetlbController : ICgroupController, ICgroupStatsReader
{
    public string Name => "hugetlb";

    public bool NeedsApply(CgroupResources resources) => resources.HugepageLimits is { Count: > 0 };

    public void Apply(string path, CgroupResources resources)
    {
        foreach (var h in resources.HugepageLimits ?? [])
        {
            CgroupFs.WriteRequired(path, $"hugetlb.{h.PageSize}.max", h.Limit.ToString(CultureInfo.InvariantCulture),
                $"hugepageLimits pageSize {h.PageSize}");
        }
    }

    public void ReadStats(string path, CgroupStats stats)
    {
        foreach (var size in StatsParsing.HugePageSizes(path, "max"))
        {
            var events = CgroupFs.FileExists(path, $"hugetlb.{size}.events") ? CgroupFs.ReadFlatKeyed(path, $"hugetlb.{size}.events") : [];
            stats.Hugetlb[size] = new HugetlbStats
            {
                Usage = CgroupFs.ReadUInt64OrZero(path, $"hugetlb.{size}.current"),
                Failcnt = events.GetValueOrDefault("max"),
            };
        }
    }
}
