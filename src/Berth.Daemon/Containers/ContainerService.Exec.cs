using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Berth.Daemon.Api;
using Berth.Daemon.Monitor;
using Berth.Images;
using Berth.Images.Engine;
using Berth.Oci;

namespace Berth.Daemon.Containers;

/// <summary>An exec instance (POST /containers/{id}/exec), kept in memory as dockerd keeps them.</summary>
public sealed class ExecInstance(string id, ContainerEntry container, ExecCreateBody config)
{
    public string Id { get; } = id;
    public ContainerEntry Container { get; } = container;
    public ExecCreateBody Config { get; } = config;
    public bool Started { get; set; }
    public bool Running { get; set; }
    public int? ExitCode { get; set; }

    /// <summary>When the exit was recorded: a finished exec is forgotten <see cref="ContainerService.FinishedExecLifetime"/> later.</summary>
    public DateTimeOffset? FinishedAt { get; set; }
    public int Pid { get; set; }
    public int MonitorPid { get; set; }
    public string StateDir { get; set; } = "";

    /// <summary>
    /// The attach connection of the hijacked exec start, while it relays: resizes go through it. A
    /// second connection to the monitor would count as "the attach" that ends --wait-for-attach and
    /// could take the held-back output with it.
    /// </summary>
    public Monitor.AttachConnection? Relay { get; set; }

    /// <summary>A size asked for before the relay connected (docker resizes right after the start request).</summary>
    public (ushort Rows, ushort Cols)? PendingSize { get; set; }
    public TaskCompletionSource Exited { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

public sealed partial class ContainerService
{
    private readonly ConcurrentDictionary<string, ExecInstance> _execs = new(StringComparer.Ordinal);

    /// <summary>
    /// How long a finished exec stays inspectable (its exit code for the client that ran it). dockerd's
    /// exec GC forgets finished execs 5 to 10 minutes after their end; without it every `docker exec`
    /// into a long-running container stayed in memory until the container was removed.
    /// </summary>
    public static readonly TimeSpan FinishedExecLifetime = TimeSpan.FromMinutes(5);

    public ExecInstance CreateExec(string reference, ExecCreateBody body)
    {
        ContainerEntry entry = Find(reference);
        CheckCanExec(entry.Record);
        if (body.Cmd is null or { Count: 0 }) throw ApiException.BadRequest("No exec command specified");
        // dockerd refuses bad detach keys at create (in its words, though as a 500); the start would fail on them after the 101.
        if (!string.IsNullOrEmpty(body.DetachKeys))
        {
            try
            {
                Api.HijackSession.ParseDetachKeys(body.DetachKeys);
            }
            catch (ApiException)
            {
                throw ApiException.BadRequest($"Invalid escape keys ({body.DetachKeys}) provided");
            }
        }
        ForgetFinishedExecs();
        return RegisterExec(entry, body);
    }

    /// <summary>dockerd's refusals of an exec in a container that is not running or is paused (create and start).</summary>
    public static void CheckCanExec(ContainerRecord r)
    {
        if (!r.State.Running) throw ApiException.Conflict($"Container {r.Id} is not running");
        if (r.State.Paused) throw ApiException.Conflict($"Container {r.Id} is paused, unpause the container before exec");
    }

    /// <summary>Drops the execs that finished more than <see cref="FinishedExecLifetime"/> ago (dockerd's execCommandGC).</summary>
    private void ForgetFinishedExecs()
    {
        DateTimeOffset before = Time.GetUtcNow() - FinishedExecLifetime;
        foreach (ExecInstance exec in _execs.Values)
            if (exec.FinishedAt is { } finished && finished < before) ForgetExec(exec);
    }

    private void ForgetExec(ExecInstance exec)
    {
        _execs.TryRemove(exec.Id, out _);
        lock (exec.Container.ExecIds) exec.Container.ExecIds.Remove(exec.Id);
    }

    /// <summary>
    /// At the container's exit, as dockerd's Cleanup unregisters its exec commands: one never started can
    /// no longer run (its start is a 404, as in dockerd). Those that ran stay inspectable for a while
    /// (their client reads the exit code), then go as any finished exec.
    /// </summary>
    private void ForgetUnstartedExecs(ContainerEntry entry)
    {
        List<ExecInstance> unstarted;
        lock (entry.ExecIds) unstarted = [.. entry.ExecIds.Select(id => _execs.GetValueOrDefault(id)).OfType<ExecInstance>().Where(e => !e.Started)];
        foreach (ExecInstance exec in unstarted) ForgetExec(exec);
    }

    /// <summary>A new exec instance of a running container (an API exec or a health probe); publishes exec_create.</summary>
    private ExecInstance RegisterExec(ContainerEntry entry, ExecCreateBody body)
    {
        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var exec = new ExecInstance(id, entry, body);
        _execs[id] = exec;
        lock (entry.ExecIds) entry.ExecIds.Add(id);
        PublishEvent(entry.Record, ExecAction("exec_create", exec), ("execID", id));
        return exec;
    }

    /// <summary>
    /// Inspect's ExecIDs: the container's execs that have not exited, null when none. dockerd drops an exec
    /// from its container's list at its exit; it stays inspectable by its ID.
    /// </summary>
    public List<string>? LiveExecIds(ContainerEntry entry)
    {
        lock (entry.ExecIds)
        {
            List<string> live = [.. entry.ExecIds.Where(id => _execs.TryGetValue(id, out ExecInstance? e) && e.ExitCode is null)];
            return live.Count > 0 ? live : null;
        }
    }

    public ExecInstance FindExec(string id)
        => _execs.TryGetValue(id, out ExecInstance? exec) ? exec : throw ApiException.NotFound($"No such exec instance: {id}");

    /// <summary>
    /// Starts the exec's process through a monitor in exec mode (the runtime's <c>exec --detach</c>;
    /// the process is the monitor's child, like the container's init). With <paramref name="waitForAttach"/>
    /// the monitor holds the output back until the caller's attach has connected.
    /// </summary>
    public async Task StartExecAsync(ExecInstance exec, bool tty, bool waitForAttach, CancellationToken cancellationToken)
    {
        ContainerEntry entry = exec.Container;
        ContainerRecord r = entry.Record;
        CheckCanExec(r);
        cancellationToken.ThrowIfCancellationRequested(); // the last point at which a client that went away stops it
        lock (exec)
        {
            if (exec.Started) throw ApiException.Conflict($"Error: Exec command {exec.Id} has already run");
            exec.Started = true;
        }
        var (runtime, globals) = RuntimeOf(r);
        string monitor = Options.BerthBinary("berth-monitor") ?? throw new ApiException(500, "berth-monitor is not installed next to berthd");

        Process process = ExecProcess(exec, r, tty);
        string dir = Path.Combine(ExecStateRoot, exec.Id[..16]);
        Directory.CreateDirectory(dir);
        string processPath = Path.Combine(dir, "process.json");
        await File.WriteAllBytesAsync(processPath, JsonSerializer.SerializeToUtf8Bytes(process, SpecJsonContext.Default.Process), CancellationToken.None);
        exec.StateDir = dir;
        // No log: an exec's output goes to its attach client only (a detached exec's is dropped, as dockerd drops it).
        var launch = new MonitorLaunch(monitor, runtime, globals, r.Id, dir, null,
            tty, exec.Config.AttachStdin, true, null, processPath) { WaitForAttach = waitForAttach };
        MonitorHandle handle;
        try
        {
            // Not cancelled by the client going away: the exec runs anyway, and a monitor launched but
            // never answered for would leave the exec without its pid and exit code for good.
            handle = await MonitorProcess.LaunchAsync(launch, CancellationToken.None);
        }
        catch (MonitorException e)
        {
            // dockerd's exit codes for an exec that cannot run: 127 not found, 126 otherwise.
            exec.ExitCode = e.Message.Contains("not found", StringComparison.OrdinalIgnoreCase)
                || e.Message.Contains("no such file", StringComparison.OrdinalIgnoreCase) ? 127 : 126;
            exec.FinishedAt = Time.GetUtcNow();
            exec.Exited.TrySetResult();
            TryDeleteDirectory(dir);
            throw new ApiException(e.Message.Contains("not found", StringComparison.OrdinalIgnoreCase) ? 404 : 500,
                "OCI runtime exec failed: " + e.Message);
        }
        exec.Pid = handle.ContainerPid;
        exec.MonitorPid = handle.MonitorPid;
        exec.Running = true;
        PublishEvent(r, ExecAction("exec_start", exec), ("execID", exec.Id));
        CancellationToken stop = _shutdown.Token;
        _ = Task.Run(async () =>
        {
            try
            {
                await MonitorProcess.WaitForExitAsync(handle.MonitorPid, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            RecordExecExit(exec);
        }, CancellationToken.None);
    }

    /// <summary>Reads the exec's exit from its monitor's exit file (idempotent).</summary>
    public void RecordExecExit(ExecInstance exec)
    {
        lock (exec)
        {
            if (!exec.Running) return;
            MonitorExit? exit = MonitorProcess.ReadExitOnceGone(exec.StateDir, () => MonitorProcess.IsAlive(exec.MonitorPid, exec.StateDir), out bool running);
            if (running) return;
            exec.ExitCode = exit?.ExitCode ?? 255;
            exec.FinishedAt = Time.GetUtcNow();
            exec.Running = false; // Pid stays: dockerd's inspect keeps showing it after the exit
        }
        PublishEvent(exec.Container.Record, "exec_die", ("execID", exec.Id), ("exitCode", exec.ExitCode.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        // The waiting client before the state directory goes: its stream ends on this.
        exec.Exited.TrySetResult();
        TryDeleteDirectory(exec.StateDir);
    }

    /// <summary>The exec's process: the container's (env, user, caps, seccomp, rlimits...) with the exec's overrides.</summary>
    private Process ExecProcess(ExecInstance exec, ContainerRecord r, bool tty)
    {
        Spec spec;
        try
        {
            spec = SpecLoader.LoadFromBundle(BundleDirectory(r.Id));
        }
        catch (Exception e) when (e is SpecException or IOException)
        {
            throw new ApiException(500, $"cannot read container {r.Id}'s spec: {e.Message}");
        }
        Process p = spec.Process ?? throw new ApiException(500, $"container {r.Id}'s spec has no process");
        ExecCreateBody c = exec.Config;
        p.Args = [.. c.Cmd!];
        p.Terminal = tty;
        p.ConsoleSize = null;
        p.Env = ImageSpecBuilder.MergeEnv(p.Env ?? [], c.Env);
        if (tty && !p.Env.Any(e => e.StartsWith("TERM=", StringComparison.Ordinal))) p.Env.Add("TERM=xterm");
        if (!string.IsNullOrEmpty(c.WorkingDir)) p.Cwd = c.WorkingDir;
        if (!string.IsNullOrEmpty(c.User))
        {
            try
            {
                ResolvedUser user = UserResolver.Resolve(RootfsDirectory(r.Id), c.User, r.HostConfig.GroupAdd);
                p.User = new User { Uid = user.Uid, Gid = user.Gid, AdditionalGids = user.ProcessAdditionalGids };
            }
            catch (ImagesException e)
            {
                throw ApiException.BadRequest(e.Message);
            }
        }
        if (c.Privileged)
        {
            List<string> all = ImageSpecBuilder.TweakCapabilities(null, null, privileged: true);
            p.Capabilities = new LinuxCapabilities { Bounding = [.. all], Effective = [.. all], Permitted = [.. all] };
        }
        return p;
    }
}
