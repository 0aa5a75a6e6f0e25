namespace Berth.Cgroups.V1;

/// <summary>
/// A container's group in every mounted cgroup v1 hierarchy, and on a hybrid host also in the
/// cgroup2 tree so that tools reading the v2 tree (systemd) see the container's processes
/// there too, as runc does. Limits go to v1; on a hybrid host a controller that lives only in
/// the cgroup2 tree (hugetlb on some hosts) is enabled and used there, with its v2 files.
/// </summary>
internal sealed class V1Manager : ICgroupManager
{
    /// <summary>Applied in this order; cpuset first like runc, so the group can hold tasks early.</summary>
    private static readonly ICgroupController[] Controllers =
    [
        new CpusetController(), new DevicesController(), new MemoryController(), new CpuController(), new PidsController(),
        new BlkioController(), new HugetlbController(), new NetClsController(), new NetPrioController(), new RdmaController(),
    ];

    private static readonly ICgroupStatsReader[] StatsReaders =
        [new CpuacctController(), new CpuController(), new MemoryController(), new PidsController(), new BlkioController(), new HugetlbController()];

    private readonly CgroupLayout _layout;
    private readonly Dictionary<string, string> _paths;

    internal V1Manager(CgroupLayout layout, IReadOnlyDictionary<string, string> paths)
    {
        _layout = layout;
        _paths = new Dictionary<string, string>(paths, StringComparer.Ordinal);
    }

    internal static V1Manager ForPath(CgroupLayout layout, string cgroupsPath)
    {
        var paths = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var h in layout.V1Hierarchies)
        {
            var path = CgroupManager.Resolve(h.MountPoint, h.Root, layout.GetOwnCgroup(h.Controllers[0]), cgroupsPath);
            foreach (var c in h.Controllers)
            {
                paths[c] = path;
            }
        }
        if (layout.UnifiedMountPoint is { } unified)
        {
            paths[CgroupManager.UnifiedKey] = CgroupManager.Resolve(unified, layout.UnifiedRoot, layout.GetOwnCgroup(CgroupManager.UnifiedKey), cgroupsPath);
        }
        return new V1Manager(layout, paths);
    }

    public CgroupMode Mode => _layout.Mode;

    public IReadOnlyDictionary<string, string> Paths => _paths;

    /// <summary>Each distinct group directory once (co-mounted controllers share one).</summary>
    private IEnumerable<string> Groups => _paths.Values.Distinct(StringComparer.Ordinal);

    private string? UnifiedPath => _paths.GetValueOrDefault(CgroupManager.UnifiedKey);

    public void Create()
    {
        foreach (var (key, group) in _paths)
        {
            if (key == CgroupManager.UnifiedKey)
            {
                // The group in the cgroup2 tree holds the processes (as runc does on hybrid hosts)
                // but enables no controller: that would change cgroup.subtree_control from the
                // root down, for every user of the host. A v2-only controller (hugetlb here) is
                // used where the host already enabled it, and is reported unavailable otherwise.
                V2.V2Manager.CreatePath(_layout, _layout.UnifiedMountPoint!, group, _ => false);
            }
            else
            {
                CgroupFs.Mkdir(group);
            }
        }
        foreach (var controller in Controllers.OfType<ICgroupCreateHook>())
        {
            var name = ((ICgroupController)controller).Name;
            if (_paths.TryGetValue(name, out var path) && _layout.GetV1Hierarchy(name) is { } h)
            {
                controller.OnCreate(h.MountPoint, path);
            }
        }
    }

    public void Apply(CgroupResources resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        resources.Validate();
        // Resolve every controller before writing anything, so a refused request changes nothing.
        var plan = new List<(ICgroupController Controller, string Path)>();
        foreach (var controller in Controllers.Where(c => c.NeedsApply(resources)))
        {
            plan.Add(Resolve(controller));
        }
        if (resources.Unified is { Count: > 0 })
        {
            if (UnifiedPath is not { } unified)
            {
                throw new CgroupException($"unified key/values requested but this host has no cgroup2 tree ({_layout})", CgroupErrorKind.Unavailable);
            }
            plan.Add((new V2.UnifiedController(EnabledInUnified), unified));
        }
        foreach (var (controller, path) in plan)
        {
            controller.Apply(path, resources);
        }
    }

    /// <summary>The v1 controller in its hierarchy, else on a hybrid host its v2 twin in the cgroup2 group.</summary>
    private (ICgroupController, string) Resolve(ICgroupController controller)
    {
        if (_paths.TryGetValue(controller.Name, out var path))
        {
            return (controller, path);
        }
        if (UnifiedPath is { } unified && V2Twin(controller.Name) is { } twin)
        {
            // Device programs attach to any cgroup2 group; real controllers must be enabled for it.
            if (twin.Name != "devices")
            {
                V2.V2Manager.CheckEnabled(_layout, unified, [.. EnabledInUnified(unified)], twin.Name);
            }
            return (twin, unified);
        }
        throw CgroupManager.Unavailable(controller.Name, _layout);
    }

    private static ICgroupController? V2Twin(string v1Name) => v1Name switch
    {
        "hugetlb" => new V2.HugetlbController(),
        "rdma" => new V2.RdmaController(),
        "pids" => new V2.PidsController(),
        "memory" => new V2.MemoryController(),
        "cpu" => new V2.CpuController(),
        "cpuset" => new V2.CpusetController(),
        "blkio" => new V2.IoController(),
        "devices" => new V2.DevicesController(),
        _ => null,
    };

    private IReadOnlySet<string> EnabledInUnified(string path) =>
        (CgroupFs.TryRead(Path.Combine(path, "cgroup.controllers"))?.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            ?? [.. _layout.UnifiedControllers]).ToHashSet(StringComparer.Ordinal);

    public void AddProcess(int pid)
    {
        foreach (var group in Groups)
        {
            CgroupManager.WriteProcs(group, pid);
        }
    }

    public IReadOnlyList<int> GetPids() => CgroupManager.ReadPids(Groups.Where(Directory.Exists));

    public void Destroy() => CgroupManager.RemoveAll(Groups);

    public void Freeze()
    {
        if (_paths.TryGetValue("freezer", out var path))
        {
            FreezerController.Freeze(path);
        }
        else
        {
            V2.FreezerController.Set(UnifiedPath ?? throw CgroupManager.Unavailable("freezer", _layout), frozen: true);
        }
    }

    public void Thaw()
    {
        if (_paths.TryGetValue("freezer", out var path))
        {
            FreezerController.Thaw(path);
        }
        else
        {
            V2.FreezerController.Set(UnifiedPath ?? throw CgroupManager.Unavailable("freezer", _layout), frozen: false);
        }
    }

    public FreezerState GetFreezerState() =>
        _paths.TryGetValue("freezer", out var path) ? FreezerController.GetState(path)
        : UnifiedPath is { } unified ? V2.FreezerController.GetState(unified)
        : FreezerState.Undefined;

    public CgroupStats Stats()
    {
        var stats = new CgroupStats();
        foreach (var reader in StatsReaders)
        {
            if (_paths.TryGetValue(reader.Name, out var path))
            {
                reader.ReadStats(path, stats);
            }
        }
        // hugetlb living in the cgroup2 tree of a hybrid host.
        if (!_paths.ContainsKey("hugetlb") && UnifiedPath is { } unified && EnabledInUnified(unified).Contains("hugetlb"))
        {
            new V2.HugetlbController().ReadStats(unified, stats);
        }
        return stats;
    }

    public IOomWatcher WatchOom() =>
        new OomWatcher(_paths.GetValueOrDefault("memory") ?? throw CgroupManager.Unavailable("memory", _layout));

    public ulong OomKillCount() =>
        MemoryController.OomKillCount(_paths.GetValueOrDefault("memory") ?? throw CgroupManager.Unavailable("memory", _layout));
}
