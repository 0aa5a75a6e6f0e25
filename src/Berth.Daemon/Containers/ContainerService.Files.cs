using Berth.Images.Engine;
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
            if (mountedHere) MountRootfs(entry.Record, rootfs);
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
    /// Runs <paramref name="action"/> with the container's root filesystem as it is stored, for export: the
    /// container's own mount (<see cref="WithRootfsAsync"/>), but for a container in a remapped user namespace,
    /// whose mount shows every owner shifted (<see cref="RemappedRootfs"/>), a read-only overlay of its writable
    /// layer over the image's layers, unmapped: owners as in the image, as dockerd's export shows them.
    /// </summary>
    public Task<T> WithStoredRootfsAsync<T>(ContainerEntry entry, Func<string, Task<T>> action, CancellationToken cancellationToken)
    {
        if (RemapOf(entry.Record) is null) return WithRootfsAsync(entry, action, cancellationToken);
        return WithRootfsAsync(entry, async _ =>
        {
            string id = entry.Record.Id;
            // The writable layer as the first lower: its whiteouts and opaque directories hide the image's entries as
            // they do over it; no upper and no work directory, so nothing the running container's overlay uses is shared.
            IReadOnlyList<Mount> mounts = Snapshotter.Mounts(SnapshotKey(id));
            Mount readOnly = mounts switch
            {
                [{ Type: "bind" } bind] => bind with { Options = ["rbind", "ro"] },
                [{ Type: "overlay" } overlay] => overlay with
                {
                    Options = [.. overlay.Options.Where(o => !o.StartsWith("upperdir=", StringComparison.Ordinal) && !o.StartsWith("workdir=", StringComparison.Ordinal)
                        && !o.StartsWith("lowerdir=", StringComparison.Ordinal)),
                        "lowerdir=" + MountHelper.WritableDirectory(mounts) + ":" + overlay.Options.First(o => o.StartsWith("lowerdir=", StringComparison.Ordinal))["lowerdir=".Length..]],
                },
                _ => throw new InvalidOperationException("unexpected snapshot mounts"),
            };
            string view = Path.Combine(StateRoot, id, "stored-rootfs");
            Directory.CreateDirectory(view);
            MountHelper.MountAll([readOnly], view);
            try
            {
                return await action(view);
            }
            finally
            {
                while (MountPoints.IsMountPoint(view)) MountHelper.Unmount(view, detach: true);
                Directory.Delete(view);
            }
        }, cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="action"/> with a directory fd of the container's root as its processes see it,
    /// so that paths below its volumes, bind mounts and the engine's /etc files reach those, as dockerd's
    /// archive API mounts them for the copy: for a running container its init's root (/proc/PID/root);
    /// for a stopped one the root filesystem with those mounted on it for the time of the action
    /// (<see cref="WithStoppedRootAsync"/>). Should a running container's PID no longer be its own (its
    /// exit is on its way to being recorded), the root filesystem alone.
    /// Holds the container's lock throughout: no start, stop, removal or other copy comes between.
    /// </summary>
    public Task<T> WithContainerRootAsync<T>(ContainerEntry entry, Func<SafeFileHandle, Task<T>> action, CancellationToken cancellationToken)
        => WithRootfsAsync(entry, async rootfs =>
        {
            if (!entry.Record.State.Running) return await WithStoppedRootAsync(entry.Record, rootfs, action);
            using SafeFileHandle view = ContainerFiles.OpenRoot(rootfs);
            using SafeFileHandle? live = entry.Record.State.Pid > 0 ? ContainerFiles.OpenProcessRoot(entry.Record.State.Pid, view) : null;
            return await action(live ?? view);
        }, cancellationToken);

    /// <summary>
    /// dockerd's mountVolumes for a stopped container: its volumes mounted as at a start (a volume's
    /// device mounted by its first user, an empty volume seeded from the image, a subpath resolved),
    /// then bound with its bind mounts and the engine's /etc files (when a start has written them)
    /// onto the mounted root filesystem <paramref name="rootfs"/>, in a mount namespace of their own
    /// (<see cref="ContainerFiles.StoppedRoot"/>); all undone when the action ends, however it ends.
    /// Tmpfs mounts are not made, as dockerd does not: what is below them is the rootfs's.
    /// </summary>
    private async Task<T> WithStoppedRootAsync<T>(ContainerRecord r, string rootfs, Func<SafeFileHandle, Task<T>> action)
    {
        try
        {
            ContainerFiles.StoppedRoot stopped;
            try
            {
                List<BindMount> mounts = [.. ContainerSpecFactory.HostBinds(r.HostConfig, createMissingSource: true), .. MountVolumes(r, rootfs), .. r.InheritedBinds ?? []];
                // Parents before what they hold, as dockerd sorts them (by the number of path elements).
                mounts = [.. mounts.OrderBy(m => CleanPath(m.Destination).Count(c => c == '/'))];
                foreach (string name in (string[])["hostname", "hosts", "resolv.conf"])
                {
                    string file = Path.Combine(Store.DirectoryOf(r.Id), name);
                    if (File.Exists(file) && !mounts.Any(m => CleanPath(m.Destination) == "/etc/" + name))
                        mounts.Add(new BindMount(file, "/etc/" + name, r.HostConfig.ReadonlyRootfs));
                }
                stopped = ContainerFiles.StoppedRoot.Open(rootfs, mounts);
            }
            finally
            {
                // The subpaths are bound (or the mounts failed): their pins in exec-root go, as after a start.
                if (r.Volumes?.Any(m => m.Subpath is not null) == true) ReleaseSubpaths(r.Id);
            }
            using (stopped)
                return await action(stopped.Root);
        }
        finally
        {
            UnmountVolumes(r);
        }
    }

    /// <summary>The container's writable layer (the overlay's upper directory): what it changed.</summary>
    public string WritableLayer(ContainerEntry entry) => MountHelper.WritableDirectory(Snapshotter.Mounts(SnapshotKey(entry.Record.Id)));
}
