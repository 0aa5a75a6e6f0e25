namespace Berth.Cgroups;

/// <summary>
/// The cgroup of one container across every hierarchy of the host (runc <c>cgroups.Manager</c>).
/// Made by <see cref="CgroupManager.Create"/> or rebuilt from persisted
/// <see cref="Paths"/> by <see cref="CgroupManager.Load"/>.
/// </summary>
public interface ICgroupManager
{
    CgroupMode Mode { get; }

    /// <summary>
    /// Controller → absolute group directory. v1 keys are controller names ("memory",
    /// "cpuacct", "name=systemd"; co-mounted controllers share a path); the cgroup2 group is
    /// under "" (<see cref="CgroupManager.UnifiedKey"/>), as in runc's state.json.
    /// </summary>
    IReadOnlyDictionary<string, string> Paths { get; }

    /// <summary>Makes the group in every hierarchy (idempotent).</summary>
    void Create();

    /// <summary>
    /// Validates and writes the limits, on a new group or a live one (<c>update</c>): only the
    /// fields set are written. A field this host cannot apply (controller not mounted, kernel file
    /// missing) is a <see cref="CgroupException"/> of kind <see cref="CgroupErrorKind.Unavailable"/>
    /// naming the field; controllers are checked before anything is written.
    /// </summary>
    void Apply(CgroupResources resources);

    /// <summary>Moves <paramref name="pid"/> (all its threads) into the group in every hierarchy.</summary>
    void AddProcess(int pid);

    /// <summary>The processes in the group (not in its sub-groups).</summary>
    IReadOnlyList<int> GetPids();

    /// <summary>Removes the group and any group below it in every hierarchy; a group already gone is fine.</summary>
    void Destroy();

    /// <summary>Freezes every process of the group (v1 freezer.state, v2 cgroup.freeze) and returns once they are frozen.</summary>
    void Freeze();

    /// <summary>Thaws the group.</summary>
    void Thaw();

    /// <summary>The group's freezer state; <see cref="FreezerState.Undefined"/> when there is no freezer.</summary>
    FreezerState GetFreezerState();

    /// <summary>Usage figures of every controller the group has (runc <c>events --stats</c>).</summary>
    CgroupStats Stats();

    /// <summary>Starts watching the group for OOM kills (needs the memory controller).</summary>
    IOomWatcher WatchOom();

    /// <summary>How many processes of the group the OOM killer has killed (v1 memory.oom_control, v2 memory.events oom_kill).</summary>
    ulong OomKillCount();
}
