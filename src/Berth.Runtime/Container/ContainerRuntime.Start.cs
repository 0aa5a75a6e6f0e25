using Berth.Oci;
using Berth.Runtime.Native;

namespace Berth.Runtime.Container;

public sealed partial class ContainerRuntime
{
    /// <summary>
    /// Lets the waiting init exec the user process: startContainer hooks, one byte into the
    /// exec fifo, the fifo removed, poststart hooks.
    /// </summary>
    public void Start(string id) => Start(id, notifySocket: null)?.Dispose();

    /// <summary>
    /// <see cref="Start(string)"/>, and with <paramref name="notifySocket"/> (the caller's
    /// NOTIFY_SOCKET) the container's notify socket bound before its process starts, so that no
    /// message is lost: the caller waits on it with <see cref="NotifySocket.RelayReady"/> and
    /// disposes it.
    /// </summary>
    public NotifySocket? Start(string id, string? notifySocket)
    {
        var record = Store.Load(id);
        var status = StatusOf(record);
        if (status != ContainerStatus.Created)
            throw new InvalidStateException($"cannot start a container that is {status.ToString().ToLowerInvariant()}");
        var notify = string.IsNullOrEmpty(notifySocket) ? null
            : NotifySocket.Listen(Store.DirectoryOf(id), notifySocket, record.InitPid, record.InitStartTime);
        try
        {
            StartProcess(record);
            return notify;
        }
        catch
        {
            notify?.Dispose();
            throw;
        }
    }

    void StartProcess(ContainerRecord record)
    {
        var id = record.Id;
        var fifo = Path.Combine(Store.DirectoryOf(id), StateStore.ExecFifo);
        try
        {
            RunHooks("startContainer", record.Hooks?.StartContainer, StateJson(record, pidSeenInContainer: true), namespacePid: record.InitPid);
        }
        catch (HookFailedException)
        {
            // "…stop the container, and continue the lifecycle at step 12": destroyed, poststop run.
            Delete(id, force: true);
            throw;
        }

        // O_NONBLOCK: if no init holds the fifo any more, fail (ENXIO) instead of blocking.
        var fd = LibC.open(fifo, Sys.O_WRONLY | Sys.O_NONBLOCK | Sys.O_CLOEXEC, 0);
        if (fd < 0)
        {
            var errno = LibC.Errno;
            throw errno == 6 /* ENXIO */
                ? new InvalidStateException($"container \"{id}\" is not waiting to start (its init exited)")
                : LibC.Error($"open {fifo}", errno);
        }
        try
        {
            ReadOnlySpan<byte> go = [0];
            if (LibC.write(fd, go, 1) != 1) throw LibC.Error($"write {fifo}", LibC.Errno);
        }
        finally { LibC.close(fd); }
        File.Delete(fifo);
        RunHooks("poststart", record.Hooks?.Poststart, StateJson(record, ContainerStatus.Running), warnOnly: true);
    }
}
