namespace Berth.Cgroups.V2;

/// <summary>cgroup v2 cpuset: cpuset.cpus and cpuset.mems (empty means "inherit", no copying needed).</summary>
internal sealed class CpusetController : ICgroupController
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
}
