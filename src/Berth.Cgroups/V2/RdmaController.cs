namespace Berth.Cgroups.V2;

/// <summary>cgroup v2 rdma: rdma.max, one line per device.</summary>
internal sealed class RdmaController : ICgroupController
{
    public string Name => "rdma";

    public bool NeedsApply(CgroupResources resources) => resources.Rdma is { Count: > 0 };

    public void Apply(string path, CgroupResources resources) => CgroupConversions.WriteRdma(path, resources);
}
