using System.Globalization;
using System.Text;
using Berth.Daemon.Api;
using Berth.Daemon.Monitor;

namespace Berth.Daemon.Containers;

/// <summary>
/// Health checks, as dockerd's daemon/health.go runs them: one monitor per running, unpaused
/// container whose Config.Healthcheck has a CMD or CMD-SHELL test. Each probe is an exec in the
/// container (exec_create/exec_start/exec_die events like any exec), with a timeout after which the
/// probe's process is killed; its output (stdout and stderr, at most 4096 bytes) and exit code go to
/// State.Health.Log (the last 5). Exit 0 is healthy; anything else is a failure, and <c>Retries</c>
/// failures in a row make the container unhealthy, except failures during the start period while it
/// has not yet been healthy. A change of status publishes <c>health_status: healthy|unhealthy</c>.
/// <para>
/// Concurrency: a result is applied under the container's lock and only while the monitor that ran
/// it is still the current one (its token not cancelled), so a result that arrives after the
/// container exited, was paused or was started again is dropped, as dockerd drops it. The monitor is
/// started and stopped under <see cref="ContainerEntry.HealthLock"/> (pause and unpause also happen
/// outside the container's lock, on the way to a stop). Health is replaced, never changed in place,
/// so inspect can serialize it without the lock.
/// </para>
/// </summary>
public sealed partial class ContainerService
{
    // dockerd's defaults (daemon/health.go).
    private static readonly TimeSpan DefaultProbeInterval = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan DefaultProbeTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan DefaultStartInterval = TimeSpan.FromSeconds(5);
    private const int DefaultProbeRetries = 3;
    private const int MaxHealthLogEntries = 5;
    private const int MaxProbeOutput = 4096;

    /// <summary>
    /// dockerd's merge of the image's HEALTHCHECK into the container's: the container's fields win,
    /// field by field; an empty Test or a zero duration or retry count takes the image's.
    /// </summary>
    internal static HealthConfigJson? MergeHealthcheck(HealthConfigJson? container, Berth.Images.Manifests.HealthConfig? image)
    {
        if (image is null) return container;
        if (container is null)
            return new HealthConfigJson
            {
                Test = image.Test?.ToList(),
                Interval = image.Interval,
                Timeout = image.Timeout,
                StartPeriod = image.StartPeriod,
                StartInterval = image.StartInterval,
                Retries = image.Retries,
            };
        if (container.Test is null or { Count: 0 }) container.Test = image.Test?.ToList();
        if (container.Interval == 0) container.Interval = image.Interval;
        if (container.Timeout == 0) container.Timeout = image.Timeout;
        if (container.StartPeriod == 0) container.StartPeriod = image.StartPeriod;
        if (container.StartInterval == 0) container.StartInterval = image.StartInterval;
        if (container.Retries == 0) container.Retries = image.Retries;
        return container;
    }

    /// <summary>The probe's command line, or null when the container has no health check (none set, NONE, an unknown type).</summary>
    private List<string>? ProbeCommand(ContainerRecord r)
    {
        List<string>? test = r.Config.Healthcheck?.Test;
        if (test is null or { Count: 0 }) return null;
        switch (test[0])
        {
            case "CMD":
                return test.Count > 1 ? test[1..] : null;
            case "CMD-SHELL":
                List<string> shell = r.Config.Shell is { Count: > 0 } s ? s : ["/bin/sh", "-c"];
                return [.. shell, .. test.Skip(1)];
            case "NONE":
                return null;
            default:
                LogWarning(_logger, $"Unknown healthcheck type '{test[0]}' (expected 'CMD') in container {r.Id}");
                return null;
        }
    }

    /// <summary>
    /// dockerd's initHealthMonitor, at each start and when berthd finds the container running again:
    /// the status goes back to starting with no failing streak (the log is kept) and probes begin.
    /// Caller holds the container's lock.
    /// </summary>
    private void InitHealthMonitor(ContainerEntry entry)
    {
        ContainerRecord r = entry.Record;
        if (ProbeCommand(r) is null) return;
        StopHealthMonitor(entry);
        r.State.Health = new HealthJson { Status = HealthStatus.Starting, FailingStreak = 0, Log = r.State.Health?.Log ?? [] };
        UpdateHealthMonitor(entry);
    }

    /// <summary>dockerd's updateHealthMonitor: the monitor runs while the container runs and is not paused.</summary>
    private void UpdateHealthMonitor(ContainerEntry entry)
    {
        ContainerRecord r = entry.Record;
        List<string>? command = r.State.Health is null ? null : ProbeCommand(r);
        lock (entry.HealthLock)
        {
            if (command is null || !r.State.Running || r.State.Paused || _disposed)
            {
                StopHealthMonitorLocked(entry);
                return;
            }
            if (entry.HealthMonitor is not null) return;
            var stop = new CancellationTokenSource(); // no timer, no links: nothing to dispose
            entry.HealthMonitor = stop;
            HealthConfigJson config = r.Config.Healthcheck!;
            CancellationToken shutdown = _shutdown.Token;
            _ = Task.Run(() => MonitorHealthAsync(entry, config, command, stop.Token, shutdown), CancellationToken.None);
        }
    }

    /// <summary>Stops the container's probes (a probe under way is killed); its health status stays as it was.</summary>
    private static void StopHealthMonitor(ContainerEntry entry)
    {
        lock (entry.HealthLock) StopHealthMonitorLocked(entry);
    }

    private static void StopHealthMonitorLocked(ContainerEntry entry)
    {
        entry.HealthMonitor?.Cancel();
        entry.HealthMonitor = null;
    }

    private async Task MonitorHealthAsync(ContainerEntry entry, HealthConfigJson config, List<string> command, CancellationToken stopped, CancellationToken shutdown)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopped, shutdown);
        CancellationToken stop = linked.Token;
        TimeSpan interval = Duration(config.Interval, DefaultProbeInterval);
        TimeSpan startInterval = Duration(config.StartInterval, DefaultStartInterval);
        TimeSpan startPeriod = Duration(config.StartPeriod, TimeSpan.Zero);
        TimeSpan timeout = Duration(config.Timeout, DefaultProbeTimeout);
        int retries = config.Retries <= 0 ? DefaultProbeRetries : config.Retries;
        DateTimeOffset started = DateTimeOffset.TryParse(entry.Record.State.StartedAt, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset s)
            ? s : Time.GetUtcNow();

        // The first probe comes one interval after the start; during the start period, while the
        // container has not been healthy yet, the start interval applies instead.
        TimeSpan NextInterval() => Time.GetUtcNow() - started < startPeriod && entry.Record.State.Health?.Status == HealthStatus.Starting
            ? startInterval : interval;
        try
        {
            while (true)
            {
                await Task.Delay(NextInterval(), Time, stop);
                DateTimeOffset start = Time.GetUtcNow();
                (int exitCode, string output) result;
                try
                {
                    result = await RunProbeAsync(entry, command, timeout, stop);
                }
                catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
                {
                    // The probe could not run (the exec failed to start): dockerd records -1 and the error.
                    result = (-1, e.Message);
                }
                var probe = new HealthcheckResultJson { Start = Rfc3339(start), End = Rfc3339(Time.GetUtcNow()), ExitCode = result.exitCode, Output = result.output };
                await ApplyProbeResultAsync(entry, probe, start - started < startPeriod, retries, stopped);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // the container stopped or was paused, or berthd is stopping
        }
        catch (Exception e)
        {
            LogWarning(_logger, $"container {entry.Record.Id}: health monitor: {e.Message}");
        }
    }

    private static TimeSpan Duration(long nanoseconds, TimeSpan fallback) => nanoseconds > 0 ? TimeSpan.FromTicks(nanoseconds / 100) : fallback;

    /// <summary>dockerd's handleProbeResult: the log, the failing streak, the status; an event when the status changes.</summary>
    private async Task ApplyProbeResultAsync(ContainerEntry entry, HealthcheckResultJson result, bool inStartPeriod, int retries, CancellationToken stopped)
    {
        await entry.Lock.WaitAsync(CancellationToken.None);
        try
        {
            ContainerRecord r = entry.Record;
            // The monitor was stopped while the probe ran or while this waited for the lock.
            if (stopped.IsCancellationRequested || entry.Removed || r.State.Health is not { } old) return;
            IReadOnlyList<HealthcheckResultJson> log = [.. old.Log.Skip(Math.Max(0, old.Log.Count + 1 - MaxHealthLogEntries)), result];
            string status = old.Status;
            int streak = old.FailingStreak;
            if (result.ExitCode == 0)
            {
                streak = 0;
                status = HealthStatus.Healthy;
            }
            else if (!(status == HealthStatus.Starting && inStartPeriod))
            {
                // Failures during the start period do not count while the container has not been healthy yet.
                streak++;
                if (streak >= retries) status = HealthStatus.Unhealthy;
            }
            r.State.Health = new HealthJson { Status = status, FailingStreak = streak, Log = log };
            // Saved when the status or the streak changes; the log alone is kept in memory until the next save.
            if (status != old.Status || streak != old.FailingStreak) Store.Save(r);
            if (status != old.Status) PublishEvent(r, "health_status: " + status);
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>
    /// One probe: an exec of <paramref name="command"/> as the container's user in its working
    /// directory, stdout and stderr captured. On timeout the probe's process is killed and the
    /// result is -1 with dockerd's "Health check exceeded timeout (…)" message.
    /// </summary>
    private async Task<(int ExitCode, string Output)> RunProbeAsync(ContainerEntry entry, List<string> command, TimeSpan timeout, CancellationToken stop)
    {
        ContainerRecord r = entry.Record;
        if (!r.State.Running || r.State.Paused) throw ApiException.Conflict($"Container {r.Id} is not running");
        var body = new ExecCreateBody
        {
            Cmd = command,
            AttachStdout = true,
            AttachStderr = true,
            User = r.Config.User,
            WorkingDir = r.Config.WorkingDir,
        };
        ExecInstance exec = RegisterExec(entry, body);
        var output = new ProbeOutput();
        try
        {
            await StartExecAsync(exec, tty: false, waitForAttach: true, stop);
            bool timedOut = false;
            await using (AttachConnection connection = await ConnectProbeAsync(exec.StateDir, stop))
            {
                Task reading = ReadProbeOutputAsync(connection, output, stop);
                using (var timer = CancellationTokenSource.CreateLinkedTokenSource(stop))
                {
                    Task expired = Task.Delay(timeout, Time, timer.Token);
                    if (await Task.WhenAny(reading, expired) == expired && !reading.IsCompleted)
                    {
                        stop.ThrowIfCancellationRequested();
                        timedOut = true;
                        KillProbe(exec);
                    }
                    await timer.CancelAsync();
                }
                // After a kill too: wait for the probe to go, so that dying probes do not pile up.
                await reading;
            }
            await exec.Exited.Task.WaitAsync(TimeSpan.FromSeconds(5), stop).ContinueWith(_ => { }, TaskScheduler.Default);
            RecordExecExit(exec);
            if (timedOut)
            {
                string text = output.ToString();
                string limit = GoDurationString(timeout.Ticks * 100);
                return (-1, text.Length > 0 ? $"Health check exceeded timeout ({limit}): {text}" : $"Health check exceeded timeout ({limit})");
            }
            return (exec.ExitCode ?? -1, output.ToString());
        }
        finally
        {
            if (exec.Running) KillProbe(exec); // cancelled (the container stops, berthd stops): leave nothing behind
            // Probes are not kept for /exec/{id}/json: one every interval would pile up.
            _execs.TryRemove(exec.Id, out _);
            lock (entry.ExecIds) entry.ExecIds.Remove(exec.Id);
        }
    }

    private static async Task ReadProbeOutputAsync(AttachConnection connection, ProbeOutput output, CancellationToken stop)
    {
        while (await connection.ReadAsync(stop) is { } frame) output.Append(frame.Data.Span);
    }

    /// <summary>The exec's monitor listens before it answers its launch; a refused connect under load is retried briefly.</summary>
    private static async Task<AttachConnection> ConnectProbeAsync(string stateDir, CancellationToken stop)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return await AttachConnection.ConnectAsync(stateDir, stop);
            }
            catch (IOException) when (attempt < 5)
            {
                await Task.Delay(20 * (attempt + 1), stop);
            }
        }
    }

    /// <summary>
    /// SIGKILL to the probe's process. It is the child of its monitor (a subreaper) until the monitor
    /// reaps it, so checking the parent first keeps a recycled PID from being killed.
    /// </summary>
    private static void KillProbe(ExecInstance exec)
    {
        int pid = exec.Pid;
        if (!exec.Running || pid <= 0 || ParentPid(pid) != exec.MonitorPid) return;
        Interop.kill(pid, 9);
    }

    private static int ParentPid(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int paren = stat.LastIndexOf(')');
            string[] fields = stat[(paren + 2)..].Split(' ');
            return fields.Length > 1 && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out int ppid) ? ppid : -1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return -1;
        }
    }

    /// <summary>Go's time.Duration.String: 0s, 500ms, 1.5s, 1m30s, 2h0m0s.</summary>
    internal static string GoDurationString(long nanoseconds)
    {
        if (nanoseconds == 0) return "0s";
        ulong u = nanoseconds < 0 ? (ulong)(-(nanoseconds + 1)) + 1 : (ulong)nanoseconds;
        string text;
        if (u < 1_000_000_000)
        {
            (ulong unit, int digits, string name) = u < 1_000 ? (1UL, 0, "ns") : u < 1_000_000 ? (1_000UL, 3, "µs") : (1_000_000UL, 6, "ms");
            text = Fraction(u, unit, digits) + name;
        }
        else
        {
            ulong hours = u / 3_600_000_000_000, minutes = u / 60_000_000_000 % 60;
            text = (hours > 0 ? hours.ToString(CultureInfo.InvariantCulture) + "h" : "")
                + (hours > 0 || minutes > 0 ? minutes.ToString(CultureInfo.InvariantCulture) + "m" : "")
                + Fraction(u % 60_000_000_000, 1_000_000_000, 9) + "s";
        }
        return nanoseconds < 0 ? "-" + text : text;

        static string Fraction(ulong value, ulong unit, int digits)
        {
            string whole = (value / unit).ToString(CultureInfo.InvariantCulture);
            ulong rest = value % unit;
            return rest == 0 ? whole : whole + "." + rest.ToString(CultureInfo.InvariantCulture).PadLeft(digits, '0').TrimEnd('0');
        }
    }

    /// <summary>dockerd's limitedBuffer: the first 4096 bytes of the probe's output, "..." appended when there was more.</summary>
    private sealed class ProbeOutput
    {
        private readonly MemoryStream _bytes = new();
        private bool _truncated;

        public void Append(ReadOnlySpan<byte> data)
        {
            int keep = (int)Math.Min(MaxProbeOutput - _bytes.Length, data.Length);
            if (keep > 0) _bytes.Write(data[..keep]);
            if (keep < data.Length) _truncated = true;
        }

        public override string ToString()
        {
            string text = Encoding.UTF8.GetString(_bytes.GetBuffer(), 0, (int)_bytes.Length);
            return _truncated ? text + "..." : text;
        }
    }
}
