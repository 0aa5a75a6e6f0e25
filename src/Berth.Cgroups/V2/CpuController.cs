using System.Globalization;

namespace Berth.Cgroups.V2;

/// <summary>cgroup v2 cpu: cpu.weight (from shares) and cpu.max (quota and period).</summary>
internal sealed class CpuController : ICgroupController
{
    internal const string Weight = "cpu.weight";
    internal const string Max = "cpu.max";

    public string Name => "cpu";

    public bool NeedsApply(CgroupResources resources) => resources.Cpu is { IsCpuSet: true };

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Cpu is not { } cpu)
        {
            return;
        }
        if (cpu.Shares is { } shares and not 0)
        {
            CgroupFs.Write(path, Weight, CgroupConversions.SharesToWeight(shares).ToString(CultureInfo.InvariantCulture));
        }
        if (cpu.Quota is not null || cpu.Period is not null)
        {
            CgroupFs.Write(path, Max, CgroupConversions.CpuMax(cpu.Quota, cpu.Period));
        }
    }
}
