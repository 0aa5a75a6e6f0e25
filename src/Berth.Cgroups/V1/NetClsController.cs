using System.Globalization;

namespace Berth.Cgroups.V1;

/// <summary>cgroup v1 net_cls: net_cls.classid (cgroup v2 has no equivalent).</summary>
internal sealed class NetClsController : ICgroupController
{
    internal const string ClassId = "net_cls.classid";

    public string Name => "net_cls";

    public bool NeedsApply(CgroupResources resources) => resources.Network?.ClassId is not null;

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Network?.ClassId is { } classId)
        {
            CgroupFs.WriteRequired(path, ClassId, classId.ToString(CultureInfo.InvariantCulture), "network.classID");
        }
    }
}
