using System.Runtime.InteropServices;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Berth.Daemon.Monitor;

namespace Berth.Daemon.Tests.Monitor;

/// <summary>A temp directory with a runtime root, busybox bundles and monitors; Dispose deletes every
/// container (runtime delete --force), kills every monitor still alive and removes the directory.</summary>
internal sealed class MonitorScope : IAsyncDisposable
{
    private readonly TempDirectory _dir = new("monitor");
    private readonly List<(string Runtime, string Root, string Id)> _containers = [];
    private readonly List<MonitorHandle> _monitors = [];

    public static readonly string RepoRoot = FindRepoRoot();
    public static string MonitorBinary => System.IO.Path.Combine(RepoRoot, "artifacts/bin/berth-monitor");
    public static string BerthRuntime => System.IO.Path.Combine(RepoRoot, "artifacts/bin/berth-runtime");
    public const string Runc = "/usr/sbin/runc";

    public string Path => _dir.Path;
    public string Combine(params string[] parts) => _dir.Combine(parts);

    private static string FindRepoRoot()
    {
        for (string? d = AppContext.BaseDirectory; d is not null; d = System.IO.Path.GetDirectoryName(d))
            if (File.Exists(System.IO.Path.Combine(d, "Berth.slnx"))) return d;
        throw new InvalidOperationException("repository root (Berth.slnx) not found above " + AppContext.BaseDirectory);
    }

    /// <summary>scripts/make-busybox-bundle.sh DIR ARGS…; with <paramref name="terminal"/> process.terminal is set.</summary>
    public string MakeBundle(string name, bool terminal, params string[] args)
    {
        string bundle = Combine(name);
        var start = new ProcessStartInfo(System.IO.Path.Combine(RepoRoot, "scripts/make-busybox-bundle.sh")) { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(bundle);
        foreach (string a in args) start.ArgumentList.Add(a);
        start.Environment["BERTH_RUNTIME"] = BerthRuntime;
        using var p = Process.Start(start)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, "make-busybox-bundle.sh: " + err);
        if (terminal)
        {
            var config = JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(bundle, "config.json")))!;
            config["process"]!["terminal"] = true;
            File.WriteAllText(System.IO.Path.Combine(bundle, "config.json"), config.ToJsonString());
        }
        return bundle;
    }

    /// <summary>A bundle directory without config.json: the runtime refuses it.</summary>
    public string CreateEmptyBundle(string name) => Directory.CreateDirectory(Combine(name)).FullName;

    /// <summary>An exec process.json: the bundle's process with other args.</summary>
    public string MakeExecProcess(string bundle, string name, params string[] args)
    {
        var process = JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(bundle, "config.json")))!["process"]!.DeepClone();
        var array = new JsonArray();
        foreach (string a in args) array.Add((JsonNode)JsonValue.Create(a));
        process["args"] = array;
        process["terminal"] = false;
        string path = Combine(name);
        File.WriteAllText(path, process.ToJsonString());
        return path;
    }

    public string RuntimeRoot(string runtime) => Combine(runtime == Runc ? "runc-root" : "runtime-root");

    public MonitorLaunch Launch(string id, string? bundle, string? execProcess = null, bool tty = false, bool stdin = false,
        bool stdinOnce = false, string? runtime = null, long logMaxSize = 10 * 1024 * 1024, int logMaxFiles = 3, string? stateName = null)
    {
        runtime ??= BerthRuntime;
        string state = Combine(stateName ?? "state-" + id);
        Directory.CreateDirectory(state);
        if (bundle is not null) _containers.Add((runtime, RuntimeRoot(runtime), id));
        return new MonitorLaunch(MonitorBinary, runtime, ["--root", RuntimeRoot(runtime)], id, state,
            System.IO.Path.Combine(state, "container.log"), tty, stdin, stdinOnce, bundle, execProcess, logMaxSize, logMaxFiles);
    }

    public async Task<MonitorHandle> StartMonitorAsync(MonitorLaunch launch)
    {
        MonitorHandle handle = await MonitorProcess.LaunchAsync(launch, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        _monitors.Add(handle);
        return handle;
    }

    public static (int ExitCode, string Output) Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        Task<string> err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    public void StartContainer(string id, string? runtime = null)
    {
        runtime ??= BerthRuntime;
        var (code, output) = Run(runtime, "--root", RuntimeRoot(runtime), "start", id);
        Assert.True(code == 0, $"{runtime} start {id}: {output}");
    }

    public static async Task<MonitorExit> WaitExitAsync(MonitorHandle handle, int seconds = 30)
    {
        await MonitorProcess.WaitForExitAsync(handle.MonitorPid, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(seconds));
        return MonitorProcess.ReadExit(handle.StateDir) ?? throw new Xunit.Sdk.XunitException("the monitor ended without an exit file");
    }

    /// <summary>Everything an attach client receives until the monitor closes it: (stdout, stderr).</summary>
    public static async Task<(string Stdout, string Stderr)> ReadAllAsync(AttachConnection attach, int seconds = 30)
    {
        var stdout = new MemoryStream();
        var stderr = new MemoryStream();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        while (await attach.ReadAsync(cts.Token) is { } frame)
            (frame.Stream == 1 ? stdout : stderr).Write(frame.Data.Span);
        return (System.Text.Encoding.UTF8.GetString(stdout.ToArray()), System.Text.Encoding.UTF8.GetString(stderr.ToArray()));
    }

    [DllImport("libc", SetLastError = true)]
    public static extern int kill(int pid, int signal);

    /// <summary>The berth-monitor processes whose command line names <paramref name="stateDir"/>.</summary>
    public static List<int> MonitorsFor(string stateDir)
    {
        var found = new List<int>();
        foreach (string proc in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(System.IO.Path.GetFileName(proc), out int pid) && MonitorProcess.IsAlive(pid, stateDir)) found.Add(pid);
        return found;
    }

    public static string Status(int pid, string field) =>
        File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal))[(field.Length + 1)..].Trim();

    public async ValueTask DisposeAsync()
    {
        foreach (var (runtime, root, id) in _containers)
            Run(runtime, "--root", root, "delete", "--force", id);
        foreach (MonitorHandle m in _monitors)
        {
            if (!MonitorProcess.IsAlive(m.MonitorPid, m.StateDir)) continue;
            kill(m.MonitorPid, 9);
            try { await MonitorProcess.WaitForExitAsync(m.MonitorPid, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10)); }
            catch (TimeoutException) { }
        }
        _dir.Dispose();
    }
}
