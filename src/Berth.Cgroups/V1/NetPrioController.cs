using System.Globalization;

namespace Berth.Cgroups.V1;

/// <summary>cgroup v1 net_prio: one "ifname priority" write per interface to net_prio.ifpriomap.</summary>
internal sealed class NetPrioController : ICgroupController
{
    internal const string IfPrioMap = "net_prio.ifpriomap";

    public string Name => "net_prio";

    public bool NeedsApply(CgroupResources resources) => resources.Network?.Priorities is { Count: > 0 };

    public void Apply(string path, CgroupResources resources)
    {
        foreach (var p in resources.Network?.Priorities ?? [])
        {
            CgroupFs.WriteRequired(path, IfPrioMap, $"{p.Name} {p.Priority.ToString(CultureInfo.InvariantCulture)}", "network.priorities");
        }
    }
}
