using System.Diagnostics;
using System.Formats.Tar;
using System.Text;

namespace Berth.Cli.Tests;

/// <summary>What one run of the binary did.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Stderr without the daemon's <c>WARNING: …</c> lines (create warnings, which docker prints too).</summary>
    public string Errors => string.Concat(Stderr.Split('\n').Where(l => !l.StartsWith("WARNING: ", StringComparison.Ordinal)).Select((l, i) => (i == 0 ? "" : "\n") + l));

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// Runs the published <c>artifacts/bin/berth</c> against a daemon of its own (<see cref="TestDaemon"/>:
/// berthd by default, dockerd with <c>BERTH_CLI_TEST_DAEMON=dockerd</c>), reached through
/// <c>BERTH_HOST</c>. Dispose removes every container the test left (berthd keeps containers
/// across its own exit), stops the daemon by PID, detaches any mount left under the temp
/// directory and removes it.
/// </summary>
public sealed class BerthCli : IDisposable
{
    private static readonly Lazy<string> BinaryPath = new(() => TestDaemon.FindArtifact("berth"));
    private readonly TempDirectory _dir = new("cli");
    private readonly TestDaemon? _daemon;

    public BerthCli(bool startDaemon = true)
    {
        try
        {
            _daemon = startDaemon ? new TestDaemon(_dir) : null;
        }
        catch
        {
            _dir.Dispose();
            throw;
        }
    }

    /// <summary>The daemon's data root (berthd's layout: content/, snapshots/, images/).</summary>
    public string DataRoot => _daemon?.DataRoot ?? throw new InvalidOperationException("no daemon");
    public string Host => _daemon?.Host ?? "unix://" + Path.Combine(Work, "nothing-listens-here.sock");
    public string Work => _dir.Path;
    public static string Binary => BinaryPath.Value;
    public static DaemonKind Daemon => TestDaemon.Kind;

    public CliResult Run(params string[] args) => RunWith(null, args);

    /// <summary>The environment every berth run gets: the daemon's socket, an empty docker config.</summary>
    public void Configure(ProcessStartInfo start)
    {
        start.Environment["BERTH_HOST"] = Host;
        start.Environment["DOCKER_CONFIG"] = _dir.CreateSubdirectory("docker-config");
    }

    /// <summary>Runs <c>berth args…</c>, feeding <paramref name="stdin"/> when given; killed (by PID) after 60 s.</summary>
    public CliResult RunWith(byte[]? stdin, params string[] args)
    {
        var start = new ProcessStartInfo(Binary)
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        foreach (string a in args) start.ArgumentList.Add(a);
        Configure(start);
        return RunProcess(start, stdin);
    }

    /// <summary>Runs a shell command line under script(1) (a pseudo-terminal), with <c>$BERTH</c> naming the binary.</summary>
    public CliResult RunShellInTerminal(string commandLine)
    {
        var start = new ProcessStartInfo("script", ["-qefc", commandLine, "/dev/null"])
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        Configure(start);
        start.Environment["BERTH"] = Binary;
        return RunProcess(start);
    }

    /// <summary>
    /// Runs <c>berth args…</c>; once its stdout contains <paramref name="marker"/>, runs <paramref name="then"/>
    /// (e.g. a command that lets the container go on), then waits for the exit. Not seeing the marker in
    /// 30 s is a <see cref="TimeoutException"/>; a process that ends without it is returned as it is.
    /// </summary>
    public CliResult RunAndThen(string marker, Action then, params string[] args)
    {
        var start = new ProcessStartInfo(Binary)
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        foreach (string a in args) start.ArgumentList.Add(a);
        Configure(start);
        return RunProcess(start, waitFor: marker, whenSeen: then);
    }

    /// <summary>
    /// Like <see cref="RunInTerminal"/>, but <paramref name="input"/> is typed once the terminal shows
    /// <paramref name="prompt"/>: by then berth has put the terminal in raw mode and relays the input
    /// (typed earlier, the line discipline would echo it or eat ctrl-q as flow control).
    /// </summary>
    public CliResult RunInTerminalAfterPrompt(string prompt, string input, params string[] args)
        => RunProcess(TerminalStart(args), System.Text.Encoding.UTF8.GetBytes(input), waitFor: prompt);

    /// <summary>Runs <c>berth args…</c> with a pseudo-terminal as its stdin/stdout (script(1)); <paramref name="input"/> is typed after a short delay.</summary>
    public CliResult RunInTerminal(string? input, params string[] args)
        => RunProcess(TerminalStart(args), input is null ? null : System.Text.Encoding.UTF8.GetBytes(input), inputDelayMs: 1500);

    private ProcessStartInfo TerminalStart(string[] args)
    {
        string command = "'" + Binary + "' " + string.Join(' ', args.Select(a => "'" + a.Replace("'", "'\\''") + "'"));
        var start = new ProcessStartInfo("script", ["-qefc", command, "/dev/null"])
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        Configure(start);
        return start;
    }

    /// <param name="waitFor">When set, <paramref name="whenSeen"/> runs and <paramref name="stdin"/> is written only once stdout contains it.</param>
    public static CliResult RunProcess(ProcessStartInfo start, byte[]? stdin = null, int inputDelayMs = 0, string? waitFor = null, Action? whenSeen = null)
    {
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + start.FileName);
        try
        {
            var partial = new StringBuilder();
            var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task<string> stdout = waitFor is null ? process.StandardOutput.ReadToEndAsync() : ReadWatchingAsync(process.StandardOutput, partial, waitFor, seen);
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            if (inputDelayMs > 0) Thread.Sleep(inputDelayMs);
            if (waitFor is not null)
            {
                // A sign of readiness in the output rather than a fixed delay; if the process ends
                // without it, nothing is done and the result shows why.
                if (Task.WaitAny([seen.Task, stdout], TimeSpan.FromSeconds(30)) < 0)
                    lock (partial) throw new TimeoutException($"no \"{waitFor}\" in the output of {start.FileName} {string.Join(' ', start.ArgumentList)} within 30 s; it printed:\n{partial}");
                if (!seen.Task.IsCompleted) stdin = null;
                else whenSeen?.Invoke();
            }
            if (stdin is not null)
            {
                process.StandardInput.BaseStream.Write(stdin);
                process.StandardInput.BaseStream.Flush();
            }
            process.StandardInput.Close();
            if (!process.WaitForExit(60_000)) throw new TimeoutException($"{start.FileName} {string.Join(' ', start.ArgumentList)} did not finish in 60 s");
            process.WaitForExit();
            return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
    }

    private static async Task<string> ReadWatchingAsync(StreamReader reader, StringBuilder text, string marker, TaskCompletionSource seen)
    {
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer)) > 0)
        {
            lock (text)
            {
                text.Append(buffer, 0, n);
                if (!seen.Task.IsCompleted && text.ToString().Contains(marker, StringComparison.Ordinal)) seen.TrySetResult();
            }
        }
        lock (text) return text.ToString();
    }

    /// <summary>Runs and asserts exit 0.</summary>
    public string Ok(params string[] args)
    {
        CliResult r = Run(args);
        Assert.True(r.ExitCode == 0, $"berth {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    public void Dispose()
    {
        if (_daemon is not null)
        {
            try
            {
                foreach (string id in Run("ps", "-aq", "--no-trunc").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    Run("rm", "-f", id);
            }
            finally
            {
                _daemon.Dispose();
            }
        }
        foreach (string mountPoint in MountsUnder(_dir.Path).OrderByDescending(m => m.Length))
            RunProcess(new ProcessStartInfo("umount", ["-l", mountPoint]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true });
        _dir.Dispose();
    }

    public static IReadOnlyList<string> MountsUnder(string path)
        => File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(path, StringComparison.Ordinal)).ToList();

    /// <summary>
    /// A busybox rootfs as a tar: Debian's static <c>/bin/busybox</c> and a few applet symlinks, plus
    /// <c>/etc/berth-test</c> holding <paramref name="marker"/> (different markers give different layers).
    /// </summary>
    public string WriteBusyboxTar(string name, string marker = "berth", IReadOnlyDictionary<string, string>? extraFiles = null)
    {
        const string busybox = "/bin/busybox";
        if (!File.Exists(busybox))
            throw new InvalidOperationException($"{busybox} is missing: the CLI tests need Debian's busybox-static (apt-get install -y busybox-static)");
        string path = Path.Combine(Work, name);
        using (FileStream file = File.Create(path))
        using (var tar = new TarWriter(file, TarEntryFormat.Pax))
        {
            foreach (string dir in new[] { "bin/", "etc/", "tmp/" })
                tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir) { Mode = (UnixFileMode)0x1ED });
            tar.WriteEntry(busybox, "bin/busybox");
            foreach (string applet in new[] { "sh", "ls", "echo", "cat", "true", "sleep", "env", "pwd", "id", "hostname", "tty", "wc", "mkdir", "ps", "stty" })
                tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "bin/" + applet) { LinkName = "busybox", Mode = (UnixFileMode)0x1FF });
            foreach (var (target, source) in extraFiles ?? new Dictionary<string, string>())
                tar.WriteEntry(source, target);
            var data = new MemoryStream(Encoding.UTF8.GetBytes(marker + "\n"));
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/berth-test") { DataStream = data, Mode = (UnixFileMode)0x1A4 });
        }
        return path;
    }
}
