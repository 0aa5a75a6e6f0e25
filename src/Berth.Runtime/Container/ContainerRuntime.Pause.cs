using Berth.Oci;

namespace Berth.Runtime.Container;

public sealed partial class ContainerRuntime
{
    /// <summary>Freezes every process of the container (v1 freezer, v2 cgroup.freeze); returns once they are frozen.</summary>
    public void Pause(string id)
    {
        var record = Store.Load(id);
        // As runc's libcontainer: a created container may be paused too.
        if (StatusOf(record) is not (ContainerStatus.Running or ContainerStatus.Created))
            throw new InvalidStateException("container not running");
        var cgroup = LoadCgroup(record) ?? throw new RuntimeException($"container \"{id}\" has no cgroup to freeze");
        cgroup.Freeze();
    }

    public void Resume(string id)
    {
        var record = Store.Load(id);
        if (StatusOf(record) != ContainerStatus.Paused) throw new InvalidStateException("container not paused");
        var cgroup = LoadCgroup(record) ?? throw new RuntimeException($"container \"{id}\" has no cgroup to thaw");
        cgroup.Thaw();
    }
}
