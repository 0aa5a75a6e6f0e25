using Proc = System.Diagnostics.Process;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Berth.Daemon.Api;
using Berth.Daemon.Monitor;
using Berth.Images;
using Berth.Images.Engine;
using Berth.Images.Snapshots;
using Berth.Oci;

namespace Berth.Daemon.Containers;

public sealed partial class ContainerService
{
    /// <summary>How long start waits for attach requests that came before it to connect to the monitor.</summary>
    private static readonly TimeSpan AttachConnectTimeout = TimeSpan.FromSeconds(5);

    // ---- start ---------------------------------------------------------------------------------

    /// <summary>
    /// POST /containers/{id}/start: mounts the layer, builds the spec, launches the monitor (which
    /// runs the runtime's <c>create</c>: the container then waits at its exec fifo), lets attaches
    /// that came first connect, then runs the runtime's <c>start</c>.
    /// </summary>
    /// <returns>False when the container already runs (Docker's 304).</returns>
    public async Task<bool> StartAsync(string reference, CancellationToken cancellationToken)
    {
        ContainerEntry entry = Find(reference);
        await entry.Lock.WaitAsync(cancellationToken);
        try
        {
            if (entry.Removed) throw ApiException.NotFound($"No such container: {reference}");
            if (entry.Record.State.Paused) throw ApiException.Conflict("cannot start a paused container, try unpause instead");
            if (entry.Record.State.Running) return false;
            entry.Record.ManuallyStopped = false;
            // Once begun, a start runs to its end whether or not its client stays (as dockerd's,
            // which gives ContainerStart no request context): cut short by the client, it left a
            // launched monitor that berthd no longer knew of, whose runtime create then made an
            // init in an unmounted rootfs.
            await StartLockedAsync(entry, CancellationToken.None);
            return true;
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    private async Task StartLockedAsync(ContainerEntry entry, CancellationToken cancellationToken)
    {
        ContainerRecord r = entry.Record;
        string id = r.Id;
        // A start looks the binary up again (it may have moved since the last start).
        var (runtime, globals) = RuntimeOf(r, lookUpAgain: true);
        string monitor = Options.BerthBinary("berth-monitor")
            ?? throw new ApiException(500, "berth-monitor is not installed next to berthd (run ./build.sh)");
        Berth.Images.Store.Image image = Images.Get(r.ImageId);
        List<ResolvedLink> links = ResolveLinks(r, NetworksOf(r));
        // --network container:X takes X's hostname and domain name, recorded as dockerd's initializeNetworking does.
        if (EffectiveNetworkMode(r.HostConfig) is var mode && mode.StartsWith("container:", StringComparison.Ordinal))
        {
            ContainerRecord donor = Find(mode["container:".Length..]).Record;
            (r.Config.Hostname, r.Config.Domainname) = (donor.Config.Hostname, donor.Config.Domainname);
        }

        string bundle = BundleDirectory(id), rootfs = RootfsDirectory(id), monitorDir = MonitorDirectory(id);
        Directory.CreateDirectory(bundle);
        MountRootfs(r, rootfs);
        MonitorHandle? handle = null;
        bool started = false;
        Interlocked.Increment(ref _startsInFlight);
        try
        {
            ImageSpec built;
            List<BindMount> volumeBinds = MountVolumes(r, rootfs);
            try
            {
                built = ContainerSpecFactory.Build(r, image, rootfs, Store.DirectoryOf(id), EffectiveNetworkMode(r.HostConfig), JoinedNamespaces(r),
                    // --init on the daemon: containers that do not say --init=false (dockerd decides at each start too).
                    (r.HostConfig.Init ?? Options.Init) ? Options.InitBinary() ?? throw ApiException.BadRequest("--init needs docker-init (tini): apt-get install tini") : null,
                    volumeBinds, Options, SharedShm(r), HostGatewayAddress, embeddedDns: UsesEmbeddedDns(r));
                if (links.Count > 0) built.Spec.Process!.Env = WithLinkEnvironment(r, links, built.Spec.Process.Env ?? []);
            }
            catch (ImagesException e)
            {
                throw ApiException.BadRequest(e.Message);
            }
            if (r.HostConfig.CpuRealtimePeriod != 0 || r.HostConfig.CpuRealtimeRuntime != 0) GiveParentsRealtimeBudget(r);
            byte[] specJson = JsonSerializer.SerializeToUtf8Bytes(built.Spec, SpecJsonContext.Default.Spec);
            await File.WriteAllBytesAsync(Path.Combine(bundle, "config.json"), specJson, cancellationToken);

            // A runtime state left by a crash between create and the record's save would refuse the
            // ID. runc, crun and berth-runtime all keep it in <root>/<id>: only then is a delete
            // needed (a runtime process start saved on every normal start).
            bool mayHaveState = globals is not ["--root", string runtimeRoot] || Directory.Exists(Path.Combine(runtimeRoot, id));
            if (mayHaveState) await RunRuntimeAsync(runtime, globals, ["delete", "--force", id], throwOnError: false);
            TryDeleteDirectory(monitorDir);
            Directory.CreateDirectory(monitorDir);

            string driver = r.HostConfig.LogConfig.Type;
            LogSettings logSettings = LogCache.IsRemote(driver) ? LogCache.Settings(r.HostConfig.LogConfig) : LogLimits.Of(r.HostConfig.LogConfig);
            LogLocation? log = LogOf(r);
            if (log is not null) Directory.CreateDirectory(Path.GetDirectoryName(log.Path)!);
            var launch = new MonitorLaunch(monitor, runtime, globals, id, monitorDir, log?.Path,
                r.Config.Tty, r.Config.OpenStdin, r.Config.StdinOnce, bundle, null, logSettings.MaxSize, logSettings.MaxFiles)
            {
                LogFormat = log?.Format ?? LogFormat.JsonFile,
                LogCompress = logSettings.Compress,
                LogAttributes = LogAttributesJson(r),
                LogMaxBufferSize = LogLimits.Mode(r.HostConfig.LogConfig),
                Syslog = driver == SyslogDriver.Name ? SyslogDriver.Target(r) : null,
                Gelf = driver == GelfDriver.Name ? GelfDriver.Target(r) : null,
                Fluentd = driver == FluentdDriver.Name ? FluentdDriver.Target(r) : null,
                Journald = driver == JournaldDriver.Name ? JournaldDriver.Target(r, Options.JournalSocket) : null,
            };
            try
            {
                handle = await MonitorProcess.LaunchAsync(launch, cancellationToken);
            }
            catch (MonitorException e)
            {
                throw StartFailure(e.Message);
            }

            // Attaches that came before the start connect now, so they miss no output.
            ConnectLocked(entry, handle.ContainerPid);

            List<TaskCompletionSource> pending;
            TaskCompletionSource<string> nextStart;
            lock (entry.PendingAttaches)
            {
                entry.StartingMonitorDir = monitorDir;
                pending = [.. entry.PendingAttaches];
                entry.PendingAttaches.Clear();
                nextStart = entry.NextStart;
                entry.NextStart = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            nextStart.TrySetResult(monitorDir);
            if (pending.Count > 0)
                await Task.WhenAny(Task.WhenAll(pending.Select(p => p.Task)), Task.Delay(AttachConnectTimeout, cancellationToken));

            // Saved before the runtime's start: a crash between that start and the save below leaves
            // a record with the monitor's PID that does not say running, from which RestoreAsync
            // finds the container again (running, or exited with its code) instead of taking it
            // for a start that never happened.
            // This save and the one after the start are not fsynced: they describe processes, which a
            // crash of berthd leaves running (and the page cache keeps the write), and which a power
            // loss ends anyway; the exit, recorded later, is durable.
            r.MonitorPid = handle.MonitorPid;
            r.RuntimePath = runtime;
            r.Path = built.Spec.Process?.Args?.Take(1).ToList();
            Store.Save(r, durable: false);

            // Taken before the start: a short-lived process can exit (and the monitor record its
            // finish) before the start returns, and FinishedAt must not come before StartedAt.
            DateTimeOffset startedAt = Time.GetUtcNow();
            var (code, _, stderr) = await RunRuntimeAsync(runtime, globals, ["start", id], throwOnError: false);
            if (code != 0) throw StartFailure(stderr.Trim());

            r.State = new ContainerStateJson
            {
                Status = "running",
                Running = true,
                Pid = handle.ContainerPid,
                StartedAt = Rfc3339(startedAt),
                FinishedAt = r.State.FinishedAt,
                ExitCode = 0,
                Health = r.State.Health,
            };
            InitHealthMonitor(entry); // status "starting"; the first probe comes an interval later
            Store.Save(r, durable: false);
            started = true;
            PublishEvent(r, "start");
            Watch(entry, handle.MonitorPid);
        }
        finally
        {
            // The runtime's create has made the container's own binds (or the start failed): the
            // pinned subpaths are not needed any more, and must go before the volumes' unmount.
            ReleaseSubpaths(id);
            lock (entry.PendingAttaches)
            {
                entry.StartingMonitorDir = null;
                if (!started)
                {
                    // Attaches waiting for this start end: there is nothing to attach to.
                    entry.NextStart.TrySetCanceled();
                    entry.NextStart = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
            if (!started)
            {
                StopHealthMonitor(entry);
                DisconnectLocked(entry);
                if (handle is not null)
                {
                    // The init waits at its fifo or runs: take it down; the monitor then exits.
                    await RunRuntimeAsync(runtime, globals, ["delete", "--force", id], throwOnError: false);
                    await WaitForMonitorAsync(handle.MonitorPid, TimeSpan.FromSeconds(5));
                    if (r.MonitorPid != 0 && !entry.Removed)
                    {
                        r.MonitorPid = 0; // this start is over: nothing for a restore to find again
                        Store.Save(r);
                    }
                }
                UnmountRootfs(id);
                UnmountShm(id);
                UnmountVolumes(r);
                TryDeleteDirectory(monitorDir);
                // dockerd removes an AutoRemove container whose start failed (`docker run --rm` waits for that),
                // with its anonymous volumes.
                if (r.HostConfig.AutoRemove && !entry.Removed)
                {
                    try
                    {
                        await RemoveLockedAsync(entry, removeVolumes: true);
                    }
                    catch (Exception e) when (e is IOException or ImagesException)
                    {
                        LogWarning(_logger, $"container {id}: auto-remove after a failed start: {e.Message}");
                    }
                }
            }
            Interlocked.Decrement(ref _startsInFlight);
            if (!started) PruneDefaultCgroupParent();
        }
    }

    /// <summary>
    /// --network, --pid and --ipc container:X: the namespaces of X's process, which must run
    /// (dockerd's messages when it does not).
    /// </summary>
    private Dictionary<string, string> JoinedNamespaces(ContainerRecord r)
    {
        var joined = new Dictionary<string, string>(StringComparer.Ordinal);
        string mode = EffectiveNetworkMode(r.HostConfig);
        if (mode.StartsWith("container:", StringComparison.Ordinal))
        {
            ContainerEntry other = Find(mode["container:".Length..]);
            if (!other.Record.State.Running || other.Record.State.Pid <= 0)
                throw ApiException.Conflict($"cannot join the network of a non running container: {other.Record.Name.TrimStart('/')}");
            joined[NamespaceType.Network] = $"/proc/{other.Record.State.Pid}/ns/net";
        }
        if (ContainerRequestCheck.IpcModeContainer(r.HostConfig.IpcMode) is { } ipcDonor)
            joined[NamespaceType.Ipc] = $"/proc/{IpcDonor(ipcDonor).Record.State.Pid}/ns/ipc";
        if (ContainerRequestCheck.PidModeContainer(r.HostConfig.PidMode) is { } pidDonor)
            joined[NamespaceType.Pid] = $"/proc/{RunningDonor(pidDonor, "cannot join PID of a non running container: " + pidDonor).Record.State.Pid}/ns/pid";
        return joined;
    }

    /// <summary>The running container a --pid/--ipc container:NAME names, with dockerd's errors (404 prefixed with <paramref name="notFound"/>; 500 when it does not run).</summary>
    private ContainerEntry RunningDonor(string reference, string notFound)
    {
        ContainerEntry other;
        try
        {
            other = Find(reference);
        }
        catch (ApiException e) when (e.StatusCode == 404)
        {
            throw ApiException.NotFound($"{notFound}: {e.Message}");
        }
        if (!other.Record.State.Running || other.Record.State.Pid <= 0)
            throw new ApiException(500, $"container {other.Record.Id} is not running"); // dockerd's words and status
        return other;
    }

    /// <summary>
    /// dockerd's initCPURtController: a real-time container's cgroup can only take what its parents
    /// have, and a new cgroup v1 directory has a real-time runtime of 0. Every parent of the
    /// container's group (made here when missing) gets --cpu-rt-period and --cpu-rt-runtime, top
    /// down; without them the runtime's write of the container's own value fails, naming it.
    /// </summary>
    private void GiveParentsRealtimeBudget(ContainerRecord r)
    {
        string parent = Path.GetDirectoryName(ContainerStats.CgroupsPath(r))!;
        string path = ContainerRequestCheck.CpuHierarchy;
        foreach (string part in parent.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            path = Path.Combine(path, part);
            try
            {
                Directory.CreateDirectory(path);
                if (Options.CpuRealtimePeriod > 0) File.WriteAllText(Path.Combine(path, "cpu.rt_period_us"), Options.CpuRealtimePeriod.ToString(CultureInfo.InvariantCulture));
                if (Options.CpuRealtimeRuntime != 0) File.WriteAllText(Path.Combine(path, "cpu.rt_runtime_us"), Options.CpuRealtimeRuntime.ToString(CultureInfo.InvariantCulture));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ApiException(500, $"giving {path} berthd's --cpu-rt-period/--cpu-rt-runtime: {e.Message}");
            }
        }
    }

    /// <summary>
    /// The container whose IPC namespace and /dev/shm <c>--ipc container:NAME</c> joins: it must run
    /// and have been started with <c>--ipc shareable</c> (its /dev/shm a tmpfs on the host), as dockerd
    /// requires since its default became private.
    /// </summary>
    private ContainerEntry IpcDonor(string reference)
    {
        string message = "can't join IPC of container " + reference;
        ContainerEntry other = RunningDonor(reference, message);
        if (!MountPoints.IsMountPoint(ShmDirectory(other.Record.Id)))
            throw new ApiException(500, $"{message}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)");
        return other;
    }

    /// <summary>
    /// The host directory bound at the container's /dev/shm, null for its own tmpfs (private, the
    /// default) or none: for <c>--ipc shareable</c> a tmpfs of its own mounted here (so that
    /// <c>--ipc container:</c> can bind it too; unmounted at the exit), the donor's for
    /// <c>container:NAME</c>, the host's /dev/shm for <c>host</c> (as dockerd).
    /// </summary>
    private string? SharedShm(ContainerRecord r)
    {
        string mode = r.HostConfig.IpcMode;
        if (mode == "host") return Directory.Exists("/dev/shm") ? "/dev/shm" : null;
        if (ContainerRequestCheck.IpcModeContainer(mode) is { } donor) return ShmDirectory(IpcDonor(donor).Record.Id);
        if (mode != "shareable") return null;
        string dir = ShmDirectory(r.Id);
        Directory.CreateDirectory(dir);
        if (!MountPoints.IsMountPoint(dir))
        {
            long size = r.HostConfig.ShmSize > 0 ? r.HostConfig.ShmSize : Configuration.DaemonOptions.DockerShmSize;
            List<string> options = ["nosuid", "nodev", "noexec", "mode=1777", "size=" + size.ToString(CultureInfo.InvariantCulture)];
            // As dockerd: owned by the remapped root under --userns-remap (the host's root is nobody in there).
            if (RemapOf(r) is { } remap) options.AddRange(["uid=" + remap.RootUid.ToString(CultureInfo.InvariantCulture), "gid=" + remap.RootGid.ToString(CultureInfo.InvariantCulture)]);
            MountHelper.MountAll([new Berth.Images.Snapshots.Mount("tmpfs", "shm", options)], dir);
        }
        return dir;
    }

    private string ShmDirectory(string id) => Path.Combine(Store.DirectoryOf(id), "shm");

    /// <summary>Unmounts a shareable container's /dev/shm tmpfs (nothing when there is none).</summary>
    private void UnmountShm(string id)
    {
        string dir = ShmDirectory(id);
        try
        {
            while (MountPoints.IsMountPoint(dir)) MountHelper.Unmount(dir, detach: true);
        }
        catch (Exception e) when (e is ImagesException or IOException)
        {
            LogWarning(_logger, $"container {id}: unmounting {dir}: {e.Message}");
        }
    }

    /// <summary>
    /// Docker reports a process that cannot be run with 400 and a message the CLI maps to 126/127;
    /// other runtime failures are 500.
    /// </summary>
    private static ApiException StartFailure(string message)
    {
        string text = "failed to create task for container: " + message;
        bool userError = message.Contains("executable file not found", StringComparison.OrdinalIgnoreCase)
            || message.Contains("no such file or directory", StringComparison.OrdinalIgnoreCase)
            || message.Contains("permission denied", StringComparison.OrdinalIgnoreCase)
            || message.Contains("not a directory", StringComparison.OrdinalIgnoreCase);
        return new ApiException(userError ? 400 : 500, text);
    }

    private void MountRootfs(ContainerRecord record, string rootfs)
    {
        string id = record.Id;
        Directory.CreateDirectory(rootfs);
        if (MountPoints.IsMountPoint(rootfs)) return;
        Configuration.UsernsRemap? remap = RemapOf(record);
        if (remap is null) MountHelper.MountAll(Snapshotter.Mounts(SnapshotKey(id)), rootfs);
        else RemappedRootfs.Mount(Snapshotter.Mounts(SnapshotKey(id)), rootfs, Path.Combine(StateRoot, id, "idmapped-layers"), remap);
        if (InitLayerMade(id)) return;
        try
        {
            ContainerFiles.AddInitLayer(rootfs);
            if (remap is not null) ContainerFiles.GiveInitLayerTo(rootfs, remap.RootUid, remap.RootGid);
            File.WriteAllBytes(InitLayerMarker(id), []);
        }
        catch (IOException)
        {
            UnmountRootfs(id); // mounted only with the init layer's entries in it
            throw;
        }
    }

    /// <summary>
    /// Written once the container's rootfs has had dockerd's init-layer entries made (at its first
    /// mount): from then on whatever of them the container deletes stays deleted. A crash before it
    /// is written makes them again at the next mount, leaving alone those already there.
    /// </summary>
    private string InitLayerMarker(string id) => Path.Combine(Store.DirectoryOf(id), "init-layer-made");

    internal bool InitLayerMade(string id) => File.Exists(InitLayerMarker(id));

    private void UnmountRootfs(string id)
    {
        string rootfs = RootfsDirectory(id);
        try
        {
            while (MountPoints.IsMountPoint(rootfs)) MountHelper.Unmount(rootfs, detach: true);
        }
        catch (Exception e) when (e is ImagesException or IOException)
        {
            LogWarning(_logger, $"container {id}: unmounting {rootfs}: {e.Message}");
        }
    }

    // ---- exit ----------------------------------------------------------------------------------

    /// <summary>Waits (off the request) for the monitor to go, then records the container's exit.</summary>
    private void Watch(ContainerEntry entry, int monitorPid)
    {
        CancellationToken stop = _shutdown.Token;
        _ = Task.Run(async () =>
        {
            try
            {
                await MonitorProcess.WaitForExitAsync(monitorPid, stop);
            }
            catch (OperationCanceledException)
            {
                return; // berthd is stopping; the container keeps running and is found again at the next start
            }
            Interlocked.Increment(ref _exitsBeingRecorded);
            await entry.Lock.WaitAsync(CancellationToken.None);
            try
            {
                if (entry.Record.MonitorPid == monitorPid && entry.Record.State.Running)
                    await RecordExitAsync(entry, restoring: false);
            }
            catch (Exception e)
            {
                LogWarning(_logger, $"container {entry.Record.Id}: recording its exit: {e.Message}");
            }
            finally
            {
                entry.Lock.Release();
                Interlocked.Decrement(ref _exitsBeingRecorded);
            }
        }, CancellationToken.None);
    }

    /// <summary>Records the exit the monitor wrote (or 255 when it left none), deletes the runtime's state, unmounts. Caller holds the lock.</summary>
    private async Task RecordExitAsync(ContainerEntry entry, bool restoring)
    {
        ContainerRecord r = entry.Record;
        string id = r.Id;
        StopHealthMonitor(entry); // the health status stays as it was (dockerd's); the next start resets it
        ForgetUnstartedExecs(entry);
        MonitorExit? exit = MonitorProcess.ReadExit(MonitorDirectory(id));
        var (runtime, globals) = RuntimeOf(r);
        bool oom = OomKilled(r); // before delete removes the cgroup
        await RunRuntimeAsync(runtime, globals, ["delete", "--force", id], throwOnError: false);
        List<ContainerNetworkState> left = DisconnectLocked(entry, publish: false, processesGone: true);
        // An auto-remove container's rootfs is unmounted by its removal, just below, once `wait
        // ?condition=removed` has been answered (RemoveLockedAsync): ~0.5 ms off `run --rm`.
        bool removalFollows = r.HostConfig.AutoRemove && !entry.Removed;
        if (!removalFollows) UnmountRootfs(id);
        UnmountShm(id);
        ReleaseSubpaths(id); // (released after the start already)
        UnmountVolumes(r);
        DateTimeOffset finishedAt = exit?.FinishedAt ?? Time.GetUtcNow();
        if (DateTimeOffset.TryParse(r.State.StartedAt, out DateTimeOffset startedAt) && finishedAt < startedAt) finishedAt = startedAt;
        r.State = new ContainerStateJson
        {
            Status = "exited",
            ExitCode = exit?.ExitCode ?? 255,
            StartedAt = r.State.StartedAt,
            FinishedAt = Rfc3339(finishedAt),
            OOMKilled = oom,
            Error = exit is null ? "the container's monitor exited without recording its exit status" : "",
            Health = r.State.Health,
        };
        r.MonitorPid = 0;
        // An auto-remove container's exit is followed at once by its removal, so it is not worth
        // an fsync: if berthd dies in between, the restore removes it anyway, whichever record
        // (running, or this one) the disk kept. Every other exit is durable.
        Store.Save(r, durable: !r.HostConfig.AutoRemove);
        PruneDefaultCgroupParent();
        if (oom) PublishEvent(r, "oom");
        PublishDie(r);
        foreach (ContainerNetworkState network in left) PublishNetworkEvent("disconnect", network, id); // after die, as dockerd orders them
        TryDeleteDirectory(MonitorDirectory(id));
        TaskCompletionSource<WaitResponse> done = entry.NextExit;
        entry.NextExit = new TaskCompletionSource<WaitResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        done.TrySetResult(new WaitResponse(r.State.ExitCode, exit is null ? new WaitError(r.State.Error) : null));
        if (removalFollows)
        {
            try
            {
                await RemoveLockedAsync(entry, removeVolumes: true); // dockerd's auto-remove takes the anonymous volumes too
            }
            catch (Exception e) when (e is IOException or ImagesException)
            {
                LogWarning(_logger, $"container {id}: auto-remove: {e.Message}");
            }
        }
        else if (ShouldRestart(r)) ScheduleRestart(entry);
        _ = restoring;
    }

    /// <summary>Starts between their first step and their end: the default cgroup parent is left alone meanwhile.</summary>
    private int _startsInFlight;

    /// <summary>
    /// The default cgroup parent (/berth) goes once this berthd has no container running or starting: the
    /// runtime removes only the container's own group, and a parent kept until berthd's shutdown was left
    /// for good by a berthd that never shut down cleanly. rmdir fails harmlessly where another engine's
    /// container is in it; a create racing with another engine's prune makes the parent again (CgroupFs
    /// retries ENOENT; runc does not, hence no prune while a start of this berthd is in flight).
    /// </summary>
    private void PruneDefaultCgroupParent()
    {
        if (Volatile.Read(ref _startsInFlight) > 0 || Snapshot().Any(e => e.Record.State.Running)) return;
        ContainerStats.RemoveDefaultParentIfUnused();
    }

    /// <summary>The restart policy's verdict on the exit just recorded (dockerd's restartmanager).</summary>
    private static bool ShouldRestart(ContainerRecord r)
    {
        if (r.ManuallyStopped) return false;
        RestartPolicyJson p = r.HostConfig.RestartPolicy;
        return p.Name switch
        {
            "always" or "unless-stopped" => true,
            "on-failure" => r.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || r.RestartCount < p.MaximumRetryCount),
            _ => false,
        };
    }

    /// <summary>
    /// Starts the container again after a back-off: 100 ms doubling up to a minute, back to 100 ms
    /// when it had run for 10 s (dockerd's). Shown as "restarting" meanwhile. Caller holds the lock.
    /// </summary>
    private void ScheduleRestart(ContainerEntry entry)
    {
        ContainerRecord r = entry.Record;
        bool ranLong = DateTimeOffset.TryParse(r.State.StartedAt, CultureInfo.InvariantCulture, out DateTimeOffset started)
            && DateTimeOffset.TryParse(r.State.FinishedAt, CultureInfo.InvariantCulture, out DateTimeOffset finished)
            && finished - started >= TimeSpan.FromSeconds(10);
        if (ranLong) entry.Backoff = 0;
        TimeSpan delay = TimeSpan.FromMilliseconds(Math.Min(100 << Math.Min(entry.Backoff, 10), 60_000));
        entry.Backoff++;
        r.RestartCount++;
        r.State.Restarting = true;
        r.State.Status = "restarting";
        Store.Save(r);
        CancellationToken stop = _shutdown.Token;
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(delay, stop);
            }
            catch (OperationCanceledException)
            {
                return; // berthd stops; the record says restarting and the next start resumes it
            }
            await entry.Lock.WaitAsync(CancellationToken.None);
            try
            {
                if (entry.Removed || r.State.Running || !r.State.Restarting || r.ManuallyStopped) return;
                await StartLockedAsync(entry, CancellationToken.None);
            }
            catch (Exception e)
            {
                LogWarning(_logger, $"container {r.Id}: restart: {e.Message}");
                r.State.Restarting = false;
                r.State.Status = "exited";
                r.State.Error = e.Message;
                Store.Save(r);
            }
            finally
            {
                entry.Lock.Release();
            }
        }, CancellationToken.None);
    }

    /// <summary>Whether the kernel's OOM killer struck in the container's cgroup (memory.events / memory.oom_control).</summary>
    private static bool OomKilled(ContainerRecord r)
    {
        try
        {
            return ContainerStats.Manager(r).OomKillCount() > 0;
        }
        catch (Exception e) when (e is Berth.Cgroups.CgroupException or IOException)
        {
            return false; // the cgroup is gone already: nothing to tell
        }
    }

    // ---- stop, kill, restart, pause ------------------------------------------------------------

    /// <summary>POST /containers/{id}/stop: the stop signal, then SIGKILL after the timeout. False when it was not running (304).</summary>
    public async Task<bool> StopAsync(string reference, int? timeoutSeconds, string? signal, CancellationToken cancellationToken)
    {
        ContainerEntry entry = Find(reference);
        await entry.Lock.WaitAsync(cancellationToken);
        try
        {
            entry.Record.ManuallyStopped = true;
            if (entry.Record.State.Restarting && !entry.Record.State.Running)
            {
                // Waiting to be restarted: stop means it stays down.
                entry.Record.State.Restarting = false;
                entry.Record.State.Status = "exited";
                Store.Save(entry.Record);
                return true;
            }
            if (!entry.Record.State.Running) return false;
            Store.Save(entry.Record);
        }
        finally
        {
            entry.Lock.Release();
        }
        Task<WaitResponse> exited = entry.NextExit.Task;
        string sig = signal ?? entry.Record.StopSignal;
        int timeout = timeoutSeconds ?? entry.Record.Config.StopTimeout ?? 10;
        if (entry.Record.State.Paused) await SetPausedAsync(entry, false, cancellationToken, ignoreErrors: true);
        await SignalAsync(entry, sig, allowNotRunning: true);
        if (timeout < 0) await exited.WaitAsync(cancellationToken);
        else if (await Task.WhenAny(exited, Task.Delay(TimeSpan.FromSeconds(timeout), cancellationToken)) != exited)
            await KillAndWaitAsync(entry, cancellationToken);
        PublishEvent(entry.Record, "stop");
        return true;
    }

    /// <summary>SIGKILL, then waits for the exit to be recorded.</summary>
    private async Task KillAndWaitAsync(ContainerEntry entry, CancellationToken cancellationToken)
    {
        Task<WaitResponse> exited = entry.NextExit.Task;
        if (!entry.Record.State.Running) return;
        await SignalAsync(entry, "KILL", allowNotRunning: true);
        if (entry.Record.State.Paused) await SetPausedAsync(entry, false, cancellationToken, ignoreErrors: true);
        if (await Task.WhenAny(exited, Task.Delay(TimeSpan.FromSeconds(30), cancellationToken)) != exited)
            throw new ApiException(500, $"container {entry.Record.Id} did not exit within 30 s of SIGKILL");
    }

    /// <summary>POST /containers/{id}/kill.</summary>
    public async Task KillAsync(string reference, string? signal)
    {
        ContainerEntry entry = Find(reference);
        if (!entry.Record.State.Running)
            throw ApiException.Conflict($"Cannot kill container: {reference}: Container {entry.Record.Id} is not running");
        string sig = string.IsNullOrEmpty(signal) ? "KILL" : signal;
        if (!IsSignal(sig)) throw ApiException.BadRequest($"Invalid signal: {signal}");
        string bare = (sig.StartsWith("SIG", StringComparison.OrdinalIgnoreCase) ? sig[3..] : sig).ToUpperInvariant();
        if (bare is "KILL" or "9") entry.Record.ManuallyStopped = true; // holds the restart policy off, as a stop does
        Task<WaitResponse> exited = entry.NextExit.Task;
        try
        {
            await SignalAsync(entry, sig, allowNotRunning: false);
        }
        catch (ApiException)
        {
            // The container was exiting (a kill right after another): the runtime no longer has
            // its process, and its exit is recorded a moment later. dockerd's killWithSignal takes
            // the runtime's "not found" as done (the kill event included); so does berthd once the
            // exit has come.
            if (await Task.WhenAny(exited, Task.Delay(TimeSpan.FromSeconds(2))) != exited) throw;
            PublishEvent(entry.Record, "kill", ("signal", SignalNumber(sig)));
        }
    }

    /// <summary>A signal as dockerd's signal.ParseSignal takes it: a number 1-64 or a name, with or without SIG.</summary>
    internal static bool IsSignal(string sig) => Berth.Oci.Signals.IsValid(sig);

    private async Task SignalAsync(ContainerEntry entry, string signal, bool allowNotRunning)
    {
        ContainerRecord r = entry.Record;
        var (runtime, globals) = RuntimeOf(r);
        string sig = signal.StartsWith("SIG", StringComparison.OrdinalIgnoreCase) ? signal[3..] : signal;
        var (code, _, stderr) = await RunRuntimeAsync(runtime, globals, ["kill", r.Id, sig.ToUpperInvariant()], throwOnError: false);
        if (code != 0 && !allowNotRunning) throw new ApiException(500, $"Cannot kill container: {r.Id}: {stderr.Trim()}");
        if (code == 0) PublishEvent(r, "kill", ("signal", SignalNumber(signal)));
    }

    public async Task RestartAsync(string reference, int? timeoutSeconds, string? signal, CancellationToken cancellationToken)
    {
        await StopAsync(reference, timeoutSeconds, signal, cancellationToken);
        await StartAsync(reference, cancellationToken);
        PublishEvent(Find(reference).Record, "restart");
    }

    public async Task PauseAsync(string reference, bool pause, CancellationToken cancellationToken)
    {
        ContainerEntry entry = Find(reference);
        await entry.Lock.WaitAsync(cancellationToken);
        try
        {
            if (!entry.Record.State.Running) throw ApiException.Conflict($"Container {entry.Record.Id} is not running");
            if (pause && entry.Record.State.Paused) throw ApiException.Conflict($"Container {entry.Record.Id} is already paused");
            if (!pause && !entry.Record.State.Paused) throw ApiException.Conflict($"Container {entry.Record.Id} is not paused");
            await SetPausedAsync(entry, pause, cancellationToken, ignoreErrors: false);
            PublishEvent(entry.Record, pause ? "pause" : "unpause");
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    private async Task SetPausedAsync(ContainerEntry entry, bool pause, CancellationToken cancellationToken, bool ignoreErrors)
    {
        ContainerRecord r = entry.Record;
        var (runtime, globals) = RuntimeOf(r);
        var (code, _, stderr) = await RunRuntimeAsync(runtime, globals, [pause ? "pause" : "resume", r.Id], throwOnError: false);
        if (code != 0)
        {
            if (ignoreErrors) return;
            throw new ApiException(500, $"cannot {(pause ? "pause" : "unpause")} container {r.Id}: {stderr.Trim()}");
        }
        r.State.Paused = pause;
        r.State.Status = pause ? "paused" : "running";
        Store.Save(r);
        UpdateHealthMonitor(entry); // no probes while paused
        _ = cancellationToken;
    }

    // ---- wait ----------------------------------------------------------------------------------

    /// <summary>POST /containers/{id}/wait?condition=not-running|next-exit|removed.</summary>
    public async Task<WaitResponse> WaitAsync(ContainerEntry entry, string condition, CancellationToken cancellationToken)
    {
        switch (condition)
        {
            case "" or "not-running":
                if (!entry.Record.State.Running) return new WaitResponse(entry.Record.State.ExitCode, null);
                return await entry.NextExit.Task.WaitAsync(cancellationToken);
            case "next-exit":
                return await entry.NextExit.Task.WaitAsync(cancellationToken);
            case "removed":
                await entry.RemovedSignal.Task.WaitAsync(cancellationToken);
                return new WaitResponse(entry.Record.State.ExitCode, null);
            default:
                throw ApiException.BadRequest($"invalid condition: \"{condition}\"");
        }
    }

    // ---- the runtime ---------------------------------------------------------------------------

    /// <summary>
    /// The runtime a container runs (or ran) with: its binary (as recorded at its last start, or
    /// looked up) and its global arguments.
    /// </summary>
    private (string Path, string[] Globals) RuntimeOf(ContainerRecord r, bool lookUpAgain = false)
    {
        string name = string.IsNullOrEmpty(r.HostConfig.Runtime) ? Options.DefaultRuntime : r.HostConfig.Runtime;
        string path = (lookUpAgain ? null : r.RuntimePath) ?? Options.RuntimePath(name)
            ?? throw new ApiException(500, $"runtime `{name}` is not installed (looked next to berthd and on PATH)");
        return (path, RuntimeGlobalArgs(name));
    }

    /// <summary>
    /// The runtime's global arguments: an added runtime's own (runtimeArgs), then its state under the
    /// exec root, one directory per runtime.
    /// </summary>
    public string[] RuntimeGlobalArgs(string runtimeName)
    {
        string root = Path.Combine(Options.ExecRoot, "runtime", Configuration.DaemonOptions.CanonicalRuntimeName(runtimeName));
        return Options.Runtimes.TryGetValue(runtimeName, out Configuration.AddedRuntime? added) ? [.. added.Args, "--root", root] : ["--root", root];
    }

    /// <summary>
    /// Runs a runtime command: in berthd for what berth-runtime's library can do without a
    /// process (see <see cref="InProcessRuntime"/>), else as the runtime's process.
    /// </summary>
    public async Task<(int Code, string Stdout, string Stderr)> RunRuntimeAsync(string runtime, IReadOnlyList<string> globals, IReadOnlyList<string> args, bool throwOnError = true)
    {
        var (code, stdout, stderr) = await (_inProcessRuntime?.TryRun(runtime, globals, args) ?? RunRuntimeProcessAsync(runtime, globals, args));
        if (throwOnError && code != 0)
            throw new ApiException(500, $"{Path.GetFileName(runtime)} {string.Join(' ', args)}: {stderr.Trim()}");
        return (code, stdout, stderr);
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunRuntimeProcessAsync(string runtime, IEnumerable<string> globals, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(runtime)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string a in globals) psi.ArgumentList.Add(a);
        foreach (string a in args) psi.ArgumentList.Add(a);
        using Proc p = Proc.Start(psi) ?? throw new ApiException(500, $"cannot run {runtime}");
        p.StandardInput.Close();
        using StreamReader outReader = p.StandardOutput, errReader = p.StandardError; // Process leaves them open (see MonitorProcess.LaunchAsync)
        Task<string> stdout = outReader.ReadToEndAsync();
        Task<string> stderr = errReader.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout, await stderr);
    }

    private static async Task WaitForMonitorAsync(int pid, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await MonitorProcess.WaitForExitAsync(pid, cts.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
