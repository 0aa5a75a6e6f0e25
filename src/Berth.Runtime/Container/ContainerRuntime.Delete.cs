using Berth.Cgroups;
using Berth.Oci;
using Berth.Runtime.Native;

namespace Berth.Runtime.Container;

public sealed partial class ContainerRuntime
{
    /// <summary>
    /// Removes a stopped container (and, as runc, a created one): its cgroup, then the
    /// poststop hooks, then its state. With <paramref name="force"/> a running container is
    /// killed first.
    /// </summary>
    public void Delete(string id, bool force = false)
    {
        ContainerRecord record;
        try { record = Store.Load(id); }
        catch (ContainerNotFoundException) when (force)
        {
            // --force also clears a directory a crashed create left without state.json.
            if (Directory.Exists(Store.DirectoryOf(id))) Store.Remove(id);
            return;
        }
        var status = StatusOf(record);
        if (status is ContainerStatus.Running or ContainerStatus.Paused && !force)
            throw new InvalidStateException($"cannot delete container \"{id}\" that is not stopped: {status.ToString().ToLowerInvariant()}");

        var cgroup = LoadCgroup(record);
        if (status != ContainerStatus.Stopped)
        {
            // A frozen group must thaw for SIGKILL to be delivered.
            if (status == ContainerStatus.Paused) Thaw(record);
            KillAndWait(record, cgroup);
        }
        if (cgroup is not null)
        {
            foreach (var pid in cgroup.GetPids()) LibC.kill(pid, Sys.SIGKILL);
            DestroyWithRetry(cgroup);
            if (record.CgroupParentToPrune is { } parent) PruneEmptyParent(record.CgroupPaths.Values, parent);
        }
        RunHooks("poststop", record.Hooks?.Poststop, StateJson(record, ContainerStatus.Stopped) , warnOnly: true);
        Store.Remove(id);
    }

    /// <summary>
    /// The default parent (/berth) is the runtime's own: once its last container is gone it is
    /// removed, so that nothing of Berth outlives its containers. rmdir fails harmlessly while
    /// another container is in it; a create racing with this makes it again.
    /// </summary>
    /// <remarks>A create that fails after making the container's groups prunes it too.</remarks>
    internal static void PruneEmptyParent(IEnumerable<string> containerGroups, string parentToPrune)
    {
        foreach (var group in containerGroups.Distinct())
        {
            var parent = Path.GetDirectoryName(group);
            if (parent is not null && Path.GetFileName(parent) == Path.GetFileName(parentToPrune.TrimEnd('/')))
                LibC.rmdir(parent);
        }
    }

    static void Thaw(ContainerRecord record)
    {
        if (record.CgroupPaths.TryGetValue("freezer", out var freezer)) File.WriteAllText(Path.Combine(freezer, "freezer.state"), "THAWED");
        if (record.CgroupPaths.TryGetValue(CgroupManager.UnifiedKey, out var unified) && File.Exists(Path.Combine(unified, "cgroup.freeze")))
            File.WriteAllText(Path.Combine(unified, "cgroup.freeze"), "0");
    }

    void KillAndWait(ContainerRecord record, ICgroupManager? cgroup)
    {
        // Never kill(0, …): that is this process's own process group.
        if (record.InitPid > 0) LibC.kill(record.InitPid, Sys.SIGKILL);
        foreach (var pid in cgroup?.GetPids() ?? []) LibC.kill(pid, Sys.SIGKILL);
        // The init may be our child (run) or another process's: reap it if we can, else wait
        // until it is gone or a zombie.
        for (var i = 0; i < 2000 && ProcessInfo.IsAlive(record.InitPid, record.InitStartTime); i++)
        {
            if (LibC.waitpid(record.InitPid, out _, LibC.WNOHANG) == record.InitPid) break;
            Thread.Sleep(1);
        }
    }

    static void DestroyWithRetry(ICgroupManager cgroup)
    {
        for (var attempt = 0; ; attempt++)
        {
            try { cgroup.Destroy(); return; }
            catch (CgroupException) when (attempt < 100)
            {
                foreach (var pid in cgroup.GetPids()) LibC.kill(pid, Sys.SIGKILL);
                Thread.Sleep(10);
            }
        }
    }

    /// <summary>Waits for the init (a child of this process) and returns runc's exit code: its status, or 128+signal.</summary>
    public static int WaitForExit(int pid)
    {
        while (true)
        {
            if (LibC.waitpid(pid, out var status, 0) == pid) return ExitCode(status);
            if (LibC.Errno != Sys.EINTR) throw LibC.Error($"wait for {pid}", LibC.Errno);
        }
    }

    /// <summary>As <see cref="WaitForExit(int)"/>, or null if the process is still running after <paramref name="timeout"/>.</summary>
    public static int? WaitForExit(int pid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        for (var delay = 1; ; delay = Math.Min(delay * 2, 10))
        {
            var result = LibC.waitpid(pid, out var status, LibC.WNOHANG);
            if (result == pid) return ExitCode(status);
            if (result < 0 && LibC.Errno != Sys.EINTR) throw LibC.Error($"wait for {pid}", LibC.Errno);
            if (DateTime.UtcNow > deadline) return null;
            Thread.Sleep(delay);
        }
    }

    static int ExitCode(int status)
    {
        var (code, signal) = LibC.DecodeWaitStatus(status);
        return signal != 0 ? 128 + signal : code;
    }
}
