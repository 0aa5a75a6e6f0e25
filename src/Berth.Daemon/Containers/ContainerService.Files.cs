using Berth.Images.Snapshots;
using Microsoft.Win32.SafeHandles;

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

    /// <summary>
    /// Runs <paramref name="action"/> with a directory fd of the container's root as its processes see it:
    /// for a running container its init's root (/proc/PID/root), so that paths below its volumes, bind
    /// mounts and the engine's /etc files reach those, as dockerd's archive API mounts them for the copy;
    /// otherwise (and should the PID no longer be the container's) the root filesystem alone.
    /// Holds the container's lock throughout.
    /// </summary>
    public Task<T> WithContainerRootAsync<T>(ContainerEntry entry, Func<SafeFileHandle, Task<T>> action, CancellationToken cancellationToken)
        => WithRootfsAsync(entry, async rootfs =>
        {
            using SafeFileHandle view = ContainerFiles.OpenRoot(rootfs);
            SafeFileHandle? live = entry.Record.State.Running && entry.Record.State.Pid > 0
                ? ContainerFiles.OpenProcessRoot(entry.Record.State.Pid, view) : null;
            using (live)
                return await action(live ?? view);
        }, cancellationToken);

    /// <summary>The container's writable layer (the overlay's upper directory): what it changed.</summary>
    public string WritableLayer(ContainerEntry entry) => MountHelper.WritableDirectory(Snapshotter.Mounts(SnapshotKey(entry.Record.Id)));
}
