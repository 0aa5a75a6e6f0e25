namespace Berth.Daemon.Monitor;

/// <summary>What berth-monitor is started with (see native/monitor/berth_monitor.c). Exactly one of
/// <see cref="BundlePath"/> (a container: runtime <c>create</c>) and <see cref="ExecProcessPath"/>
/// (an exec process: runtime <c>exec --detach --process</c>) is set. Paths are absolute.</summary>
public sealed record MonitorLaunch(string MonitorPath, string RuntimePath, IReadOnlyList<string> RuntimeArgs,
    string ContainerId, string StateDir, string? LogPath, bool Tty, bool OpenStdin, bool StdinOnce,
    string? BundlePath, string? ExecProcessPath, long LogMaxSize = 10 * 1024 * 1024, int LogMaxFiles = 3)
{
    /// <summary>The monitor reads no output until the first attach client has connected (at most 60 s), so an
    /// exec's client misses none of it (the process blocks once its pipes are full).</summary>
    public bool WaitForAttach { get; init; }

    /// <summary>The format the log at <see cref="LogPath"/> is written in.</summary>
    public LogFormat LogFormat { get; init; } = LogFormat.JsonFile;

    /// <summary>Rotated log files are gzip-compressed (<c>PATH.N.gz</c>), off the output path (either driver's compress).</summary>
    public bool LogCompress { get; init; }

    /// <summary>json-file: the JSON object written as <c>"attrs"</c> into every entry (the log-opt labels and env values), or null.</summary>
    public string? LogAttributes { get; init; }

    /// <summary>The syslog every entry is also sent to (the syslog driver; the log is then its cache, or there is none), or null.</summary>
    public Containers.SyslogTarget? Syslog { get; init; }

    /// <summary>The GELF server every entry is also sent to (the gelf driver), or null.</summary>
    public Containers.GelfTarget? Gelf { get; init; }

    /// <summary>The fluentd every entry is also sent to (the fluentd driver), or null.</summary>
    public Containers.FluentdTarget? Fluentd { get; init; }

    /// <summary>The journald every entry is also sent to (the journald driver), or null.</summary>
    public Containers.JournaldTarget? Journald { get; init; }

    /// <summary>dockerd's non-blocking log mode: the bytes of log-server messages queued at most, what does not fit
    /// dropped (null: blocking, the container's output waits for a log server that is behind).</summary>
    public long? LogMaxBufferSize { get; init; }
}

/// <summary>A running monitor and the container (or exec) process it supervises.</summary>
public sealed record MonitorHandle(int MonitorPid, int ContainerPid, string StateDir);

/// <summary>The content of <c>&lt;state-dir&gt;/exit</c>: 128+N when the process was killed by signal N.</summary>
public sealed record MonitorExit(int ExitCode, DateTimeOffset FinishedAt);

/// <summary>The monitor could not start the container: the message is the runtime's error text
/// (or the monitor's own reason), ending with the runtime's exit status.</summary>
public sealed class MonitorException : Exception
{
    public MonitorException(string message) : base(message) { }
    public MonitorException(string message, Exception inner) : base(message, inner) { }
}
