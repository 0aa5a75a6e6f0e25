using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using Berth.Daemon.Configuration;
using Berth.Daemon.Hosting;

namespace Berth.Daemon.Tests;

/// <summary>
/// berthd hosted in-process on a unix socket in a temp directory (data root, exec root and
/// socket all inside it), with an HttpClient that connects to that socket. Dispose stops the
/// daemon and removes the directory.
/// </summary>
public sealed class DaemonScope : IAsyncDisposable
{
    private DaemonScope(TempDirectory dir, DaemonHost host, DaemonOptions options)
    {
        Directory = dir;
        Host = host;
        Options = options;
        Client = CreateClient(SocketPath);
    }

    public TempDirectory Directory { get; }
    public DaemonHost Host { get; }
    public DaemonOptions Options { get; }
    public HttpClient Client { get; }
    public string SocketPath => Directory.Combine("exec", "berth.sock");
    public string DockerHost => "unix://" + SocketPath;

    public static DaemonOptions OptionsIn(TempDirectory dir, params string[] insecure) => new()
    {
        DataRoot = dir.Combine("data"),
        ExecRoot = dir.Combine("exec"),
        Hosts = ["unix://" + dir.Combine("exec", "berth.sock")],
        InsecureRegistries = insecure,
        LogLevel = "warn",
        BinDirectory = ArtifactsBin,
    };

    /// <summary>Where ./build.sh puts berth-runtime and berth-monitor.</summary>
    public static string ArtifactsBin { get; } = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../artifacts/bin"));

    public static async Task<DaemonScope> StartAsync(Func<DaemonOptions, DaemonOptions>? configure = null, TimeProvider? time = null)
    {
        var dir = new TempDirectory("daemon");
        TestNetns? netns = null;
        try
        {
            // Bridges, NAT and port rules go into a network namespace of the test's own, never the host's.
            netns = TestNetns.Create();
            DaemonOptions options = OptionsIn(dir) with { BridgeNetns = netns.Path };
            if (configure is not null) options = configure(options);
            DaemonHost host = await DaemonHost.StartAsync(options, time: time);
            return new DaemonScope(dir, host, options) { Netns = netns };
        }
        catch
        {
            netns?.Dispose();
            dir.Dispose();
            throw;
        }
    }

    /// <summary>The network namespace playing the host for bridges and published ports.</summary>
    public TestNetns? Netns { get; private init; }

    public static HttpClient CreateClient(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://berthd"), Timeout = TimeSpan.FromMinutes(2) };
    }

    public async Task<JsonElement> GetJsonAsync(string path, int expectedStatus = 200)
    {
        using HttpResponseMessage response = await Client.GetAsync(path);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(expectedStatus == (int)response.StatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>Imports a busybox rootfs (with <paramref name="extra"/> entries after it) as <paramref name="reference"/> through the API; returns the image ID.</summary>
    public async Task<string> ImportBusyboxAsync(string reference, string? change = null, params System.Formats.Tar.TarEntry[] extra)
    {
        int colon = reference.LastIndexOf(':');
        string repo = reference[..colon], tag = reference[(colon + 1)..];
        string query = $"/images/create?fromSrc=-&repo={Uri.EscapeDataString(repo)}&tag={tag}" + (change is null ? "" : "&changes=" + Uri.EscapeDataString(change));
        using var content = new ByteArrayContent(TestRootfs.BusyboxTar(extra));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
        using HttpResponseMessage response = await Client.PostAsync(query, content);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body.Split('\n')[0]).RootElement.GetProperty("status").GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        // Containers outlive berthd by design: take down what this test made before the daemon goes.
        foreach (var entry in Host.Engine.Containers.Snapshot())
        {
            try
            {
                await Host.Engine.Containers.RemoveAsync(entry.Record.Id, force: true, CancellationToken.None);
            }
            catch (Exception)
            {
                // best effort; the test itself reports what went wrong
            }
        }
        Client.Dispose();
        await Host.DisposeAsync();
        Netns?.Dispose();
        DetachMountsUnder(Directory.Path);
        Directory.Dispose();
    }

    /// <summary>
    /// Lazily unmounts whatever a failed test left mounted under <paramref name="path"/> (a volume's
    /// tmpfs or bind), deepest first, so that removing the directory never deletes through a mount.
    /// </summary>
    public static void DetachMountsUnder(string path)
    {
        string prefix = path.TrimEnd('/') + "/";
        foreach (string target in File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4])
                     .Where(m => m.StartsWith(prefix, StringComparison.Ordinal)).Distinct().OrderByDescending(m => m.Length))
        {
            var psi = new System.Diagnostics.ProcessStartInfo("umount", ["-l", target]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = System.Diagnostics.Process.Start(psi)!;
            p.WaitForExit();
        }
    }
}

/// <summary>A tiny rootfs tar: Debian's busybox-static and a few applet links.</summary>
public static class TestRootfs
{
    public const string BusyboxPath = "/bin/busybox";

    public static byte[] BusyboxTar(params System.Formats.Tar.TarEntry[] extra)
    {
        if (!File.Exists(BusyboxPath))
            throw new InvalidOperationException($"{BusyboxPath} is missing: install Debian's busybox-static (apt-get install -y busybox-static)");
        var output = new MemoryStream();
        using (var writer = new System.Formats.Tar.TarWriter(output, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.Directory, "bin/") { Mode = (UnixFileMode)0x1ED });
            var busybox = new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "bin/busybox")
            {
                Mode = (UnixFileMode)0x1ED,
                DataStream = new MemoryStream(File.ReadAllBytes(BusyboxPath)),
            };
            writer.WriteEntry(busybox);
            foreach (string applet in new[] { "sh", "echo", "true", "false", "ls", "cat", "sleep", "stty", "ps", "id", "hostname", "env", "head", "wc", "printf", "kill", "touch", "mkdir", "pwd", "yes", "dd", "seq", "ip", "nc", "ping", "httpd", "grep", "awk", "tail", "sort", "tr", "timeout", "test" })
                writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.SymbolicLink, "bin/" + applet) { LinkName = "busybox", Mode = (UnixFileMode)0x1FF });
            foreach (System.Formats.Tar.TarEntry entry in extra) writer.WriteEntry(entry);
        }
        return output.ToArray();
    }
}

/// <summary>A named network namespace (<c>ip netns add</c>) that a test owns and deletes.</summary>
public sealed class TestNetns : IDisposable
{
    private TestNetns(string name) => Name = name;

    public string Name { get; }
    public string Path => "/run/netns/" + Name;

    public static TestNetns Create()
    {
        string name = "berth-t-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        Run("ip", "netns", "add", name);
        var netns = new TestNetns(name);
        Run("ip", "-n", name, "link", "set", "lo", "up");
        return netns;
    }

    /// <summary>Runs a command inside the namespace (ip netns exec); returns its exit code and output.</summary>
    public (int Exit, string Output) Exec(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "netns", "exec", Name }.Concat(args)) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    /// <summary>
    /// The namespace's links (`ip -o link`) once no container veth (`vb…`) is left, or as they are
    /// after 5 s: after an exit berthd deletes the host ends in the background.
    /// </summary>
    public string LinksOnceVethsAreGone()
    {
        string links = "";
        for (int i = 0; i < 100; i++)
        {
            links = Exec("ip", "-o", "link").Output;
            if (!links.Contains(": vb", StringComparison.Ordinal)) break;
            Thread.Sleep(50);
        }
        return links;
    }

    public void Dispose() => Run("ip", "netns", "del", Name);

    private static void Run(string file, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {error}");
    }
}

/// <summary>
/// A daemon that a test stops and starts again while its containers run on (the restart tests): its
/// own directory and network namespace, busybox imported. Disposing takes every container down through
/// a daemon (started again when the test left none running: only a daemon can), then the daemon, the
/// mounts under its directory, the namespace and the directory.
/// </summary>
public sealed class RestartableDaemon : IAsyncDisposable
{
    private readonly TempDirectory _dir;
    private readonly TempDirectory _config = new("docker-config");

    private RestartableDaemon(TempDirectory dir, TestNetns netns)
    {
        _dir = dir;
        Netns = netns;
        Options = DaemonScope.OptionsIn(dir) with { BridgeNetns = netns.Path };
    }

    public TestNetns Netns { get; }
    /// <summary>The options of the next start (a test may change them between a stop and a start).</summary>
    public DaemonOptions Options { get; set; }
    public DaemonHost? Host { get; private set; }
    public string Socket => _dir.Combine("exec", "berth.sock");
    public Cli.DockerCli Docker => new(Cli.DockerCli.Installed().Select(b => (string)b[0]).First(), "unix://" + Socket, _config.Path);

    public static async Task<RestartableDaemon> StartAsync(string name, Func<DaemonOptions, DaemonOptions>? configure = null)
    {
        var daemon = new RestartableDaemon(new TempDirectory(name), TestNetns.Create());
        try
        {
            if (configure is not null) daemon.Options = configure(daemon.Options);
            await daemon.StartAgainAsync();
            using HttpClient client = DaemonScope.CreateClient(daemon.Socket);
            using var tar = new ByteArrayContent(TestRootfs.BusyboxTar());
            tar.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
            using HttpResponseMessage imported = await client.PostAsync("/images/create?fromSrc=-&repo=busybox&tag=latest", tar);
            Assert.True(imported.IsSuccessStatusCode, await imported.Content.ReadAsStringAsync());
            return daemon;
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the daemon; its containers run on.</summary>
    public async Task StopAsync()
    {
        DaemonHost? host = Host;
        Host = null;
        if (host is not null) await host.DisposeAsync();
    }

    public async Task StartAgainAsync() => Host = await DaemonHost.StartAsync(Options);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (Host is null) await StartAgainAsync();
            foreach (var entry in Host!.Engine.Containers.Snapshot())
                await Host.Engine.Containers.RemoveAsync(entry.Record.Id, force: true, CancellationToken.None);
        }
        finally
        {
            await StopAsync();
            DaemonScope.DetachMountsUnder(_dir.Path);
            Netns.Dispose();
            _dir.Dispose();
            _config.Dispose();
        }
    }
}
