namespace Berth.Cgroups.V2;

/// <summary>A container's group in the cgroup v2 tree.</summary>
internal sealed class V2Manager : ICgroupManager
{
    private static readonly ICgroupController[] Controllers =
        [new CpusetController(), new MemoryController(), new CpuController(), new PidsController()];

    private readonly CgroupLayout _layout;
    private readonly string _path;

    internal V2Manager(CgroupLayout layout, string path)
    {
        _layout = layout;
        _path = path;
    }

    public CgroupMode Mode => CgroupMode.Unified;

    public IReadOnlyDictionary<string, string> Paths => new Dictionary<string, string> { [CgroupManager.UnifiedKey] = _path };

    /// <summary>
    /// Makes every missing level from the mount point down to the group and enables, in the
    /// cgroup.subtree_control of every ancestor (the mount point included, the group itself
    /// excluded: cgroup v2 forbids processes in a group whose subtree has controllers), the
    /// controllers that ancestor has (runc <c>CreateCgroupPath</c>).
    /// </summary>
    public void Create()
    {
        var mount = _layout.UnifiedMountPoint!;
        var relative = Path.GetRelativePath(mount, _path);
        var current = mount;
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            EnableControllers(current);
            current = Path.Combine(current, part);
            CgroupFs.Mkdir(current);
        }
    }

    private void EnableControllers(string group)
    {
        var available = CgroupFs.TryRead(Path.Combine(group, "cgroup.controllers"))?
            .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries) ?? [.. _layout.UnifiedControllers];
        if (available.Length == 0)
        {
            return;
        }
        available = [.. available.Order(StringComparer.Ordinal)];
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

    public void Apply(CgroupResources resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        resources.Validate();
        var toApply = Controllers.Where(c => c.NeedsApply(resources)).ToList();
        // The group's own cgroup.controllers lists what its parent enabled for it (absent on a fake tree).
        var enabled = CgroupFs.TryRead(Path.Combine(_path, "cgroup.controllers"))?
            .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        foreach (var controller in toApply)
        {
            if (!_layout.UnifiedControllers.Contains(controller.Name))
            {
                throw CgroupManager.Unavailable(controller.Name, _layout);
            }
            if (enabled is not null && !enabled.Contains(controller.Name))
            {
                throw new CgroupException(
                    $"{controller.Name} limit requested but the {controller.Name} controller is not enabled for {_path} (cgroup.subtree_control of {Path.GetDirectoryName(_path)})",
                    CgroupErrorKind.Unavailable, path: _path);
            }
        }
        foreach (var controller in toApply)
        {
            controller.Apply(_path, resources);
        }
    }

    public void AddProcess(int pid) => CgroupManager.WriteProcs(_path, pid);

    public IReadOnlyList<int> GetPids() => Directory.Exists(_path) ? CgroupManager.ReadPids([_path]) : [];

    public void Destroy() => CgroupManager.RemoveAll([_path]);
}
