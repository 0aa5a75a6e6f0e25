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

    /// <summary>Validates and writes the limits. A limit whose controller is missing is an error.</summary>
    void Apply(CgroupResources resources);

    /// <summary>Moves <paramref name="pid"/> (all its threads) into the group in every hierarchy.</summary>
    void AddProcess(int pid);

    /// <summary>The processes in the group (not in its sub-groups).</summary>
    IReadOnlyList<int> GetPids();

    /// <summary>Removes the group and any group below it in every hierarchy; a group already gone is fine.</summary>
    void Destroy();
}
