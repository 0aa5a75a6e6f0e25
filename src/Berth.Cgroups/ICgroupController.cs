namespace Berth.Cgroups;

/// <summary>
/// One controller of one cgroup version (youki libcgroups <c>Controller</c>): it knows which
/// part of <see cref="CgroupResources"/> it owns and which files carry it.
/// </summary>
public interface ICgroupController
{
    /// <summary>The kernel's controller name: "memory", "cpu", "cpuset", "pids"…</summary>
    string Name { get; }

    /// <summary>True when <paramref name="resources"/> sets anything this controller applies.</summary>
    bool NeedsApply(CgroupResources resources);

    /// <summary>Writes the limits into the group directory <paramref name="path"/>.</summary>
    void Apply(string path, CgroupResources resources);
}

/// <summary>A v1 controller that must prepare a new group before it accepts tasks (cpuset).</summary>
internal interface ICgroupCreateHook
{
    /// <summary>Called after the directories down to <paramref name="path"/> exist below <paramref name="mountPoint"/>.</summary>
    void OnCreate(string mountPoint, string path);
}

/// <summary>A controller that contributes figures to <see cref="ICgroupManager.Stats"/>.</summary>
internal interface ICgroupStatsReader
{
    string Name { get; }

    /// <summary>Reads the controller's figures of the group at <paramref name="path"/> into <paramref name="stats"/>.</summary>
    void ReadStats(string path, CgroupStats stats);
}
