namespace Berth.Cgroups.V1;

/// <summary>cgroup v1 pids: pids.max.</summary>
internal sealed class PidsController : ICgroupController, ICgroupStatsReader
{
    internal const string Max = "pids.max";

    public string Name => "pids";

    public bool NeedsApply(CgroupResources resources) => resources.Pids?.Limit is not null;

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Pids?.Limit is { } limit)
        {
            CgroupFs.Write(path, Max, CgroupConversions.PidsMax(limit));
        }
    }

    public void ReadStats(string path, CgroupStats stats) => ReadPidsStats(path, stats);

    internal static void ReadPidsStats(string path, CgroupStats stats)
    {
        stats.Pids.Current = CgroupFs.ReadUInt64(path, "pids.current");
        var max = CgroupFs.ReadUInt64(path, Max);
        stats.Pids.Limit = max == ulong.MaxValue ? 0 : max;
    }
}
