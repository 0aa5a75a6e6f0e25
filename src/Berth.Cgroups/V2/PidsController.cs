namespace Berth.Cgroups.V2;

/// <summary>cgroup v2 pids: pids.max.</summary>
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

    public void ReadStats(string path, CgroupStats stats) => V1.PidsController.ReadPidsStats(path, stats);
}
