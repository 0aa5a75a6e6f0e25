using Berth.Images.Snapshots;

namespace Berth.Daemon.Containers;

public sealed partial class ContainerService
{
    /// <summary>
    /// Runs <paramref name="action"/> with the container's root filesystem mounted (the running
    /// container's own mount, or a temporary mount of a stopped container's layer, undone after).
    /// Holds the container's lock throughout, so it cannot start, stop or go meanwhile.
    /// </summary>
    public async Task<T> WithRootfsAsync<T>(ContainerEntry entry, Func<string, Task<T>> action, CancellationToken cancellationToken)
    {
        await entry.Lock.WaitAsync(cancellationToken);
        try
        {
            if (entry.Removed) throw Api.ApiException.NotFound($"No such container: {entry.Record.Id}");
            string id = entry.Record.Id;
            string rootfs = RootfsDirectory(id);
            bool mountedHere = !MountPoints.IsMountPoint(rootfs);
            if (mountedHere) MountRootfs(id, rootfs);
            try
            {
                return await action(rootfs);
            }
            finally
            {
                if (mountedHere && !entry.Record.State.Running) UnmountRootfs(id);
            }
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>The container's writable layer (the overlay's upper directory): what it changed.</summary>
    public string WritableLayer(ContainerEntry entry) => MountHelper.WritableDirectory(Snapshotter.Mounts(SnapshotKey(entry.Record.Id)));
}
