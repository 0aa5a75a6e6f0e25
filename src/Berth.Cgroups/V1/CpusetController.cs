namespace Berth.Cgroups.V1;

/// <summary>
/// cgroup v1 cpuset. A new v1 cpuset group starts with empty cpuset.cpus and cpuset.mems and
/// refuses tasks until both are set, so <see cref="OnCreate"/> copies the parent's values down
/// every new level (runc <c>cpusetEnsureParent</c>).
/// </summary>
internal sealed class CpusetController : ICgroupController, ICgroupCreateHook
{
    internal const string Cpus = "cpuset.cpus";
    internal const string Mems = "cpuset.mems";

    public string Name => "cpuset";

    public bool NeedsApply(CgroupResources resources) => resources.Cpu is { IsCpusetSet: true };

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Cpu is not { } cpu)
        {
            return;
        }
        if (!string.IsNullOrEmpty(cpu.Cpus))
        {
            CgroupFs.Write(path, Cpus, cpu.Cpus);
        }
        if (!string.IsNullOrEmpty(cpu.Mems))
        {
            CgroupFs.Write(path, Mems, cpu.Mems);
        }
    }

    public void OnCreate(string mountPoint, string path)
    {
        var relative = Path.GetRelativePath(mountPoint, path);
        if (relative == ".")
        {
            return;
        }
        var parent = mountPoint;
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var current = Path.Combine(parent, part);
            CopyIfEmpty(parent, current, Cpus);
            CopyIfEmpty(parent, current, Mems);
            parent = current;
        }
    }

    private static void CopyIfEmpty(string parent, string current, string file)
    {
        if (CgroupFs.Read(current, file).Trim().Length != 0)
        {
            return;
        }
        var value = CgroupFs.Read(parent, file).Trim();
        if (value.Length != 0)
        {
            CgroupFs.Write(current, file, value);
        }
    }
}
