namespace Berth.Cgroups.V1;

/// <summary>
/// A container's group in every mounted cgroup v1 hierarchy, and on a hybrid host also in the
/// controller-less cgroup2 tree so that tools reading the v2 tree (systemd) see the
/// container's processes there too, as runc does. Limits are only written in v1.
/// </summary>
internal sealed class V1Manager : ICgroupManager
{
    /// <summary>Applied in this order; cpuset first like runc, so the group can hold tasks early.</summary>
    private static readonly ICgroupController[] Controllers =
        [new CpusetController(), new MemoryController(), new CpuController(), new PidsController()];

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

    public void Create()
    {
        foreach (var group in Groups)
        {
            CgroupFs.Mkdir(group);
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
        // Check every controller before writing anything, so a refused request changes nothing.
        var toApply = Controllers.Where(c => c.NeedsApply(resources)).ToList();
        foreach (var controller in toApply)
        {
            if (!_paths.ContainsKey(controller.Name))
            {
                throw CgroupManager.Unavailable(controller.Name, _layout);
            }
        }
        foreach (var controller in toApply)
        {
            controller.Apply(_paths[controller.Name], resources);
        }
    }

    public void AddProcess(int pid)
    {
        foreach (var group in Groups)
        {
            CgroupManager.WriteProcs(group, pid);
        }
    }

    public IReadOnlyList<int> GetPids() => CgroupManager.ReadPids(Groups.Where(Directory.Exists));

    public void Destroy() => CgroupManager.RemoveAll(Groups);
}
