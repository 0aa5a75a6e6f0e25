using System.Diagnostics;
using System.Net.Sockets;

namespace Berth.Cli.Tests;

/// <summary>Which engine the CLI tests drive: berthd (default) or a real dockerd (<c>BERTH_CLI_TEST_DAEMON=dockerd</c>).</summary>
public enum DaemonKind
{
    Berthd,
    Dockerd,
}

/// <summary>
/// A daemon of its own for one test: <c>artifacts/bin/berthd</c> (or <c>dockerd</c>, which starts
/// its own containerd) with its data root, exec root, socket and PID file in a temp directory.
/// Dispose stops it by PID (SIGTERM, then SIGKILL after 20 s), detaches any mount left under the
/// directory and removes it. The caller removes its containers first (berthd keeps containers
/// running across its own exit, by design).
/// </summary>
public sealed class TestDaemon : IDisposable
{
    private readonly TempDirectory _dir;
    private readonly Process _process;

    public static DaemonKind Kind => Environment.GetEnvironmentVariable("BERTH_CLI_TEST_DAEMON")?.ToLowerInvariant() switch
    {
        null or "" or "berthd" => DaemonKind.Berthd,
        "dockerd" => DaemonKind.Dockerd,
        var other => throw new InvalidOperationException($"BERTH_CLI_TEST_DAEMON={other}: expected berthd or dockerd"),
    };

    public TestDaemon(TempDirectory dir)
    {
        _dir = dir;
        DataRoot = dir.CreateSubdirectory("data-root");
        string exec = dir.CreateSubdirectory("exec-root");
        SocketPath = dir.Combine("daemon.sock");
        LogPath = dir.Combine("daemon.log");
        ProcessStartInfo start;
        if (Kind == DaemonKind.Dockerd)
        {
            // dockerd puts containers under a "docker" group in every hierarchy and leaves it there.
            _dockerCgroupsToRemove = CgroupHierarchies().Select(h => Path.Combine(h, "docker")).Where(d => !Directory.Exists(d)).ToList();
            start = new ProcessStartInfo("dockerd");
            foreach (string a in new[] { "--data-root", DataRoot, "--exec-root", exec, "-H", "unix://" + SocketPath, "--pidfile", dir.Combine("daemon.pid"),
                         "--iptables=false", "--bridge=none", "--ip-masq=false", "--ip-forward=false" })
                start.ArgumentList.Add(a);
        }
        else
        {
            // Bridges, NAT and port rules go into a network namespace of the test's own, never the host's.
            _netns = "berth-cli-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
            RunChecked("ip", "netns", "add", _netns);
            start = new ProcessStartInfo(FindArtifact("berthd"));
            foreach (string a in new[] { "--data-root", DataRoot, "--exec-root", exec, "-H", "unix://" + SocketPath, "--pidfile", dir.Combine("daemon.pid"),
                         "--bridge-netns", "/run/netns/" + _netns })
                start.ArgumentList.Add(a);
        }
        start.UseShellExecute = false;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        _process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + start.FileName);
        var log = new StreamWriter(LogPath) { AutoFlush = true };
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        try
        {
            WaitReady();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string DataRoot { get; }
    public string SocketPath { get; }
    public string Host => "unix://" + SocketPath;
    public string LogPath { get; }

    private void WaitReady()
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"{_process.StartInfo.FileName} exited with {_process.ExitCode}: {SafeLog()}");
            if (File.Exists(SocketPath))
            {
                try
                {
                    using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    socket.Connect(new UnixDomainSocketEndPoint(SocketPath));
                    socket.Send("GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"u8);
                    var buffer = new byte[64];
                    if (socket.Receive(buffer) > 12 && System.Text.Encoding.ASCII.GetString(buffer).Contains(" 200 ")) return;
                }
                catch (SocketException)
                {
                }
            }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"the daemon did not answer on {SocketPath} within 30 s: {SafeLog()}");
    }

    private string SafeLog()
    {
        try
        {
            return File.ReadAllText(LogPath);
        }
        catch (IOException)
        {
            return "";
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })?.WaitForExit();
            if (!_process.WaitForExit(20_000))
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        _process.Dispose();
        if (_netns is not null) RunChecked("ip", "netns", "del", _netns);
        foreach (string dir in _dockerCgroupsToRemove ?? [])
        {
            try
            {
                Directory.Delete(dir); // rmdir: fails while another test's dockerd still has a container in it
            }
            catch (IOException)
            {
            }
        }
    }

    private readonly string? _netns;
    private readonly List<string>? _dockerCgroupsToRemove;

    /// <summary>The cgroup hierarchies' mount points under /sys/fs/cgroup (the v2 root itself on a pure v2 host).</summary>
    private static IEnumerable<string> CgroupHierarchies()
        => File.Exists("/sys/fs/cgroup/cgroup.controllers") ? ["/sys/fs/cgroup"] : Directory.GetDirectories("/sys/fs/cgroup");

    private static void RunChecked(string file, params string[] args)
    {
        using Process p = Process.Start(new ProcessStartInfo(file, args) { UseShellExecute = false, RedirectStandardError = true })!;
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {error}");
    }

    public static string FindArtifact(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "artifacts", "bin", name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException(
            $"artifacts/bin/{name} not found above {AppContext.BaseDirectory}: run ./build.sh first (it publishes the NativeAOT binaries there)");
    }
}
