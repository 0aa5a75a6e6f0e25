using System.Diagnostics;
using System.Globalization;

namespace Berth.Daemon.Monitor;

/// <summary>Starts berth-monitor and observes it from outside: the monitor is never berthd's child
/// (it double-forks), so its end is seen through pidfd_open(2) or /proc, and its result through the
/// exit file it writes atomically.</summary>
public static class MonitorProcess
{
    public const string ExitFileName = "exit", AttachSocketName = "attach.sock";

    /// <summary>Starts the monitor and waits for its one-line answer. The monitor has then run the
    /// runtime's <c>create</c> (the caller runs <c>start</c>) or <c>exec --detach</c>, and listens on attach.sock.</summary>
    /// <exception cref="MonitorException">the runtime failed (nothing is left running).</exception>
    public static async Task<MonitorHandle> LaunchAsync(MonitorLaunch launch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(launch);
        Validate(launch);
        var start = new ProcessStartInfo(launch.MonitorPath)
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        foreach (string arg in Arguments(launch)) start.ArgumentList.Add(arg);

        string output;
        using (var process = new Process { StartInfo = start })
        {
            try { process.Start(); }
            catch (System.ComponentModel.Win32Exception e) { throw new MonitorException($"start {launch.MonitorPath}: {e.Message}", e); }
            // The invoked process exits at once; the detached monitor holds the pipe until its line is written.
            // Disposed here: Process leaves a redirected stream that was read synchronously open, and each
            // launch (every start, every exec) kept a pipe fd until a garbage collection finalized it.
            using StreamReader answer = process.StandardOutput;
            output = await answer.ReadToEndAsync(ct).ConfigureAwait(false);
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        return ParseLine(output, launch.StateDir);
    }

    internal static MonitorHandle ParseLine(string output, string stateDir)
    {
        string line = output.TrimEnd('\n');
        if (line.StartsWith("ok ", StringComparison.Ordinal))
        {
            string[] parts = line.Split(' ');
            if (parts.Length == 3 && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int monitor)
                && int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out int container))
                return new MonitorHandle(monitor, container, stateDir);
        }
        if (line.StartsWith("error ", StringComparison.Ordinal)) throw new MonitorException(line["error ".Length..]);
        throw new MonitorException(line.Length == 0 ? "berth-monitor exited without an answer" : $"berth-monitor: unexpected answer \"{line}\"");
    }

    internal static List<string> Arguments(MonitorLaunch l)
    {
        var args = new List<string> { "--runtime", l.RuntimePath };
        foreach (string a in l.RuntimeArgs) { args.Add("--runtime-arg"); args.Add(a); }
        args.AddRange(["--id", l.ContainerId, "--state-dir", l.StateDir]);
        // No log path: docker's "none" driver, the output only reaches attach clients.
        if (l.LogPath is null) args.Add("--no-log");
        else args.AddRange(["--log", l.LogPath, "--log-max-size", l.LogMaxSize.ToString(CultureInfo.InvariantCulture),
            "--log-max-files", l.LogMaxFiles.ToString(CultureInfo.InvariantCulture)]);
        if (l.LogPath is not null && l.LogFormat == LogFormat.Local) args.AddRange(["--log-format", "local"]);
        if (l.LogPath is not null && l.LogCompress) args.Add("--log-compress");
        if (l.LogMaxBufferSize is long buffer) args.AddRange(["--log-mode", "non-blocking", "--log-max-buffer-size", buffer.ToString(CultureInfo.InvariantCulture)]);
        if (l.LogPath is not null && l.LogFormat == LogFormat.JsonFile && l.LogAttributes is not null) args.AddRange(["--log-attrs", l.LogAttributes]);
        if (l.Syslog is { } syslog)
            args.AddRange(["--syslog", syslog.Address, "--syslog-facility", syslog.Facility.ToString(CultureInfo.InvariantCulture),
                "--syslog-time", syslog.Time, "--syslog-header", syslog.Header]);
        if (l.Syslog?.Tls is { } tls)
        {
            args.AddRange(["--syslog-tls", "--syslog-tls-server-name", tls.ServerName]);
            if (tls.CaFile is not null) args.AddRange(["--syslog-tls-ca", tls.CaFile]);
            if (tls.CertFile is not null) args.AddRange(["--syslog-tls-cert", tls.CertFile]);
            if (tls.KeyFile is not null) args.AddRange(["--syslog-tls-key", tls.KeyFile]);
            if (tls.SkipVerify) args.Add("--syslog-tls-skip-verify");
        }
        if (l.Gelf is { } gelf)
            args.AddRange(["--gelf", gelf.Address, "--gelf-host", gelf.Host, "--gelf-extra", gelf.ExtraJson,
                "--gelf-compression", gelf.Compression, "--gelf-compression-level", gelf.CompressionLevel.ToString(CultureInfo.InvariantCulture),
                "--gelf-tcp-max-reconnect", gelf.MaxReconnect.ToString(CultureInfo.InvariantCulture),
                "--gelf-tcp-reconnect-delay", gelf.ReconnectDelay.ToString(CultureInfo.InvariantCulture)]);
        if (l.Fluentd is { } fluentd)
        {
            args.AddRange(["--fluentd", fluentd.Address, "--fluentd-tag", fluentd.Tag, "--fluentd-container-name", fluentd.ContainerName,
                "--fluentd-buffer-limit", fluentd.BufferLimit.ToString(CultureInfo.InvariantCulture),
                "--fluentd-retry-wait", fluentd.RetryWaitMs.ToString(CultureInfo.InvariantCulture),
                "--fluentd-max-retries", fluentd.MaxRetries.ToString(CultureInfo.InvariantCulture)]);
            if (fluentd.Async) args.Add("--fluentd-async");
            if (fluentd.SubSecondPrecision) args.Add("--fluentd-sub-second-precision");
            if (fluentd.RequestAck) args.Add("--fluentd-request-ack");
            foreach (var (key, value) in fluentd.Extra) args.AddRange(["--fluentd-extra", key, value]);
        }
        if (l.Journald is { } journald)
        {
            args.AddRange(["--journald", journald.Socket]);
            foreach (var (name, value) in journald.Fields) args.AddRange(["--journald-field", name, value]);
        }
        if (l.Tty) args.Add("--tty");
        if (l.OpenStdin) args.Add("--stdin");
        if (l.StdinOnce) args.Add("--stdin-once");
        if (l.WaitForAttach) args.Add("--wait-for-attach");
        if (l.BundlePath is not null) args.AddRange(["--bundle", l.BundlePath]);
        else args.AddRange(["--exec-process", l.ExecProcessPath!]);
        return args;
    }

    private static void Validate(MonitorLaunch l)
    {
        if ((l.BundlePath is null) == (l.ExecProcessPath is null))
            throw new ArgumentException("exactly one of BundlePath and ExecProcessPath must be set", nameof(l));
        foreach (var (name, value) in new[] { ("MonitorPath", l.MonitorPath), ("RuntimePath", l.RuntimePath), ("StateDir", l.StateDir),
                     ("LogPath", l.LogPath), ("BundlePath", l.BundlePath), ("ExecProcessPath", l.ExecProcessPath) })
            if (value is not null && !Path.IsPathFullyQualified(value))
                throw new ArgumentException($"{name} must be an absolute path: \"{value}\"", nameof(l));
        if (string.IsNullOrEmpty(l.ContainerId)) throw new ArgumentException("ContainerId is empty", nameof(l));
        if (l.LogMaxSize <= 0) throw new ArgumentException("LogMaxSize must be positive", nameof(l));
        if (l.LogMaxFiles is < 1 or > 1000) throw new ArgumentException("LogMaxFiles must be 1..1000", nameof(l));
        // sun_path holds 107 bytes: attach.sock and console.sock live in the state dir.
        if (System.Text.Encoding.UTF8.GetByteCount(Path.Combine(l.StateDir, "console.sock")) > 107)
            throw new ArgumentException($"StateDir is too long for a unix socket path: \"{l.StateDir}\"", nameof(l));
    }

    /// <summary>The exit record, or null while the process runs (or when the monitor died without writing it).</summary>
    public static MonitorExit? ReadExit(string stateDir)
    {
        string text;
        try { text = File.ReadAllText(Path.Combine(stateDir, ExitFileName)); }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
        string[] parts = text.Trim().Split(' ');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int code)
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long ns))
            throw new InvalidDataException($"{Path.Combine(stateDir, ExitFileName)}: malformed exit record \"{text.Trim()}\"");
        return new MonitorExit(code, DateTimeOffset.UnixEpoch.AddTicks(ns / 100));
    }

    /// <summary>
    /// The exit a monitor recorded, once it has ended: <paramref name="running"/> is true (and the
    /// result null) while <paramref name="isAlive"/> says it runs; a monitor gone without an exit
    /// file gives null. The file is read again after the liveness check: the monitor writes it
    /// just before exiting, so a first read that found nothing may have raced a monitor ending
    /// between the two (an exec polled through /exec/{id}/json was reported as 255, "monitor gone
    /// without an exit", that way).
    /// </summary>
    public static MonitorExit? ReadExitOnceGone(string stateDir, Func<bool> isAlive, out bool running)
    {
        running = false;
        if (ReadExit(stateDir) is { } exit) return exit;
        if (isAlive())
        {
            running = true;
            return null;
        }
        return ReadExit(stateDir);
    }

    /// <summary>True when <paramref name="monitorPid"/> is a live berth-monitor serving <paramref name="stateDir"/>
    /// (a recycled pid running something else, or a zombie, is not).</summary>
    public static bool IsAlive(int monitorPid, string stateDir)
    {
        if (monitorPid <= 0) return false;
        try
        {
            string stat = File.ReadAllText($"/proc/{monitorPid}/stat");
            int paren = stat.LastIndexOf(')');
            if (paren < 0 || paren + 2 >= stat.Length || stat[paren + 2] is 'Z' or 'X' or 'x') return false;
            string[] argv = File.ReadAllText($"/proc/{monitorPid}/cmdline").Split('\0');
            if (argv.Length == 0 || Path.GetFileName(argv[0]) != "berth-monitor") return false;
            string want = Path.TrimEndingDirectorySeparator(stateDir);
            for (int i = 0; i + 1 < argv.Length; i++)
                if (argv[i] == "--state-dir" && Path.TrimEndingDirectorySeparator(argv[i + 1]) == want) return true;
            return false;
        }
        catch (IOException) { return false; }           // gone (FileNotFound, DirectoryNotFound) or ESRCH on read
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// The PID of a live berth-monitor whose state directory is <paramref name="stateDir"/>, found
    /// by scanning /proc; 0 when there is none. For a restore that finds a monitor directory but
    /// no recorded PID (berthd was killed between the monitor's launch and the record's save).
    /// </summary>
    public static int FindByStateDir(string stateDir)
    {
        foreach (string entry in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(entry), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid)
                && IsAlive(pid, stateDir))
                return pid;
        return 0;
    }

    /// <summary>Completes when the process <paramref name="monitorPid"/> has ended (at once when it does not exist).
    /// Works for processes that are not berthd's children, e.g. monitors found after a daemon restart.</summary>
    public static Task WaitForExitAsync(int monitorPid, CancellationToken ct)
    {
        int pidfd = MonitorInterop.pidfd_open(monitorPid);
        if (pidfd >= 0) return PidfdWatcher.Shared.WaitAsync(pidfd, ct);
        int errno = MonitorInterop.LastErrno;
        if (errno == MonitorInterop.ESRCH) return Task.CompletedTask;
        return PollProcAsync(monitorPid, ct);   // ENOSYS (kernel < 5.3) or EPERM in a restricted sandbox
    }

    private static async Task PollProcAsync(int pid, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                string stat = await File.ReadAllTextAsync($"/proc/{pid}/stat", ct).ConfigureAwait(false);
                int paren = stat.LastIndexOf(')');
                if (paren >= 0 && paren + 2 < stat.Length && stat[paren + 2] is 'Z' or 'X' or 'x') return;
            }
            catch (IOException) { return; }
            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }
}
