namespace Berth.Cgroups.V2;

/// <summary>A container's group in the cgroup v2 tree.</summary>
internal sealed class V2Manager : ICgroupManager
{
    /// <summary>Applied in runc's fs2 order; unified key/values last so they can override.</summary>
    private readonly ICgroupController[] _controllers;

    private static readonly ICgroupStatsReader[] StatsReaders =
        [new CpuController(), new MemoryController(), new PidsController(), new IoController(), new HugetlbController()];

    /// <summary>Controllers that are not kernel cgroup controllers and need no enabling.</summary>
    private static readonly HashSet<string> Pseudo = ["devices", "unified"];

    private readonly CgroupLayout _layout;
    private readonly string _path;

    internal V2Manager(CgroupLayout layout, string path)
    {
        _layout = layout;
        _path = path;
        _controllers =
        [
            new PidsController(), new MemoryController(), new IoController(), new CpuController(), new CpusetController(),
            new HugetlbController(), new RdmaController(), new DevicesController(), new UnifiedController(EnabledControllers),
        ];
    }

    public CgroupMode Mode => CgroupMode.Unified;

    public IReadOnlyDictionary<string, string> Paths => new Dictionary<string, string> { [CgroupManager.UnifiedKey] = _path };

    public void Create() => CreatePath(_layout, _layout.UnifiedMountPoint!, _path, _ => true);

    /// <summary>
    /// Makes every missing level from the mount point down to the group and enables, in the
    /// cgroup.subtree_control of every ancestor (the mount point included, the group itself
    /// excluded: cgroup v2 forbids processes in a group whose subtree has controllers), the
    /// controllers that ancestor has and <paramref name="include"/> accepts (runc <c>CreateCgroupPath</c>).
    /// </summary>
    internal static void CreatePath(CgroupLayout layout, string mount, string path, Func<string, bool> include)
    {
        var relative = Path.GetRelativePath(mount, path);
        var current = mount;
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            EnableControllers(layout, current, include);
            current = Path.Combine(current, part);
            CgroupFs.Mkdir(current);
        }
    }

    private static void EnableControllers(CgroupLayout layout, string group, Func<string, bool> include)
    {
        var available = (CgroupFs.TryRead(Path.Combine(group, "cgroup.controllers"))?
            .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries) ?? [.. layout.UnifiedControllers])
            .Where(include).Order(StringComparer.Ordinal).ToArray();
        if (available.Length == 0)
        {
            return;
        }
        try
        {
            CgroupFs.Write(group, "cgroup.subtree_control", "+" + string.Join(" +", available));
        }
        catch (CgroupException)
        {
            // Some controllers can be refused (nested or delegated trees, a threaded cpuset…):
            // enable what can be enabled; a limit that then needs a missing controller fails
            // in Apply with a message naming it.
            foreach (var controller in available)
            {
                try
                {
                    CgroupFs.Write(group, "cgroup.subtree_control", "+" + controller);
                }
                catch (CgroupException)
                {
                }
            }
        }
    }

    /// <summary>The controllers enabled for the group (its cgroup.controllers; the layout's on a fake tree without it).</summary>
    internal IReadOnlySet<string> EnabledControllers(string path) =>
        (CgroupFs.TryRead(Path.Combine(path, "cgroup.controllers"))?.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            ?? [.. _layout.UnifiedControllers]).ToHashSet(StringComparer.Ordinal);

    public void Apply(CgroupResources resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        resources.Validate();
        if (resources.Network is { } network && (network.ClassId is not null || network.Priorities is { Count: > 0 }))
        {
            throw new CgroupException(
                $"{(network.ClassId is not null ? "network.classID" : "network.priorities")} requested but cgroup v2 has no net_cls/net_prio controller ({_layout})",
                CgroupErrorKind.Unavailable);
        }
        var toApply = _controllers.Where(c => c.NeedsApply(resources)).ToList();
        // The group's own cgroup.controllers lists what its parent enabled for it (absent on a fake tree).
        var enabled = CgroupFs.TryRead(Path.Combine(_path, "cgroup.controllers"))?
            .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        foreach (var controller in toApply.Where(c => !Pseudo.Contains(c.Name)))
        {
            CheckEnabled(_layout, _path, enabled, controller.Name);
        }
        foreach (var controller in toApply)
        {
            controller.Apply(_path, resources);
        }
    }

    internal static void CheckEnabled(CgroupLayout layout, string path, string[]? enabled, string controller)
    {
        if (!layout.UnifiedControllers.Contains(controller))
        {
            throw CgroupManager.Unavailable(controller, layout);
        }
        if (enabled is not null && !enabled.Contains(controller))
        {
            throw new CgroupException(
                $"{CgroupManager.FieldOf(controller)} requested but the {controller} controller is not enabled for {path} (cgroup.subtree_control of {Path.GetDirectoryName(path)})",
                CgroupErrorKind.Unavailable, path: path);
        }
    }

    public void AddProcess(int pid) => CgroupManager.WriteProcs(_path, pid);

    public IReadOnlyList<int> GetPids() => Directory.Exists(_path) ? CgroupManager.ReadPids([_path]) : [];

    public void Destroy() => CgroupManager.RemoveAll([_path]);

    public void Freeze() => FreezerController.Set(_path, frozen: true);

    public void Thaw() => FreezerController.Set(_path, frozen: false);

    public FreezerState GetFreezerState() => FreezerController.GetState(_path);

    public CgroupStats Stats()
    {
        var stats = new CgroupStats();
        var enabled = EnabledControllers(_path);
        // cpu.stat's usage lines exist in every group, with or without the cpu controller.
        foreach (var reader in StatsReaders.Where(r => enabled.Contains(r.Name) || (r.Name == "cpu" && CgroupFs.FileExists(_path, "cpu.stat"))))
        {
            reader.ReadStats(_path, stats);
        }
        return stats;
    }

    public IOomWatcher WatchOom()
    {
        CheckEnabled(_layout, _path, EnabledControllers(_path).ToArray(), "memory");
        return new OomWatcher(_path);
    }

    public ulong OomKillCount() => MemoryController.OomKillCount(_path);
}
