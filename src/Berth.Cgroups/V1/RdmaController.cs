namespace Berth.Cgroups.V1;

/// <summary>cgroup v1 rdma: rdma.max, one line per device (same format as v2).</summary>
internal sealed class RdmaController : ICgroupController
{
    public string Name => "rdma";

    public bool NeedsApply(CgroupResources resources) => resources.Rdma is { Count: > 0 };

    public void Apply(string path, CgroupResources resources) => CgroupConversions.WriteRdma(path, resources);
}
