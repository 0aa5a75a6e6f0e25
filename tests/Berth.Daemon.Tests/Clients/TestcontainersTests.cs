using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Configurations;
using DotNet.Testcontainers.Containers;
using DotNet.Testcontainers.Images;
using DotNet.Testcontainers.Networks;
using DotNet.Testcontainers.Volumes;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Berth.Daemon.Tests.Clients;

/// <summary>
/// Testcontainers for .NET (4.17, on Docker.DotNet.Enhanced) against berthd hosted in-process: what
/// its users do — containers with commands, entrypoints, env, labels, random host ports and wait
/// strategies, files in and out through the archive API, exec, logs, stop and start again, networks
/// with aliases, volumes, mounts, images built from a Dockerfile, reuse, parallel starts. Without
/// Docker Hub: Ryuk (the resource reaper, an image on Docker Hub) is off, the images are busybox
/// imported here and what Testcontainers builds from it. The daemon's published ports live in the
/// test's network namespace (DaemonScope's --bridge-netns), so HTTP from the test goes through
/// sockets made there (<see cref="NetnsHttpHandler"/>).
/// </summary>
public sealed class TestcontainersTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly ILogger _log = new TestOutputLogger(output);
    private DaemonScope _daemon = null!;
    private TempDirectory _files = null!;

    public async Task InitializeAsync()
    {
        // Ryuk is an image from Docker Hub; without it Testcontainers leaves the clean-up to Dispose.
        TestcontainersSettings.ResourceReaperEnabled = false;
        _files = new TempDirectory("testcontainers");
        _daemon = await DaemonScope.StartAsync();
        await _daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
    }

    public async Task DisposeAsync()
    {
        if (_daemon is not null) await _daemon.DisposeAsync();
        _files?.Dispose();
    }

    private ContainerBuilder Busybox() => new ContainerBuilder("busybox:latest").WithDockerEndpoint(_daemon.DockerHost).WithLogger(_log);

    private HttpClient Http() => new(new NetnsHttpHandler(_daemon.Netns!.Path)) { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>A shell that ends at SIGTERM (sh as PID 1 would ignore it and make every stop wait for the kill).</summary>
    private static string[] Sh(string script) => ["sh", "-c", "trap 'exit 0' TERM; " + script + " & wait"];

    private static DateTime Parse(string rfc3339) => DateTime.Parse(rfc3339, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);

    [Fact]
    public async Task A_container_with_a_random_port_waits_for_its_log_port_and_http_then_serves_files_exec_and_logs_across_a_restart()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        CancellationToken ct = timeout.Token;
        await using IContainer web = Busybox()
            .WithName("tc-web")
            .WithCommand(Sh("echo FOO=$FOO; echo oops >&2; sleep 1; echo ready; httpd -f -p 8080 -h /www"))
            .WithEnvironment("FOO", "bar")
            .WithLabel("org.example.suite", "testcontainers")
            .WithPortBinding(8080, assignRandomHostPort: true)
            .WithResourceMapping(Encoding.UTF8.GetBytes("hello page\n"), FilePath.Of("/www/index.html"))
            .WithWaitStrategy(Wait.ForUnixContainer()
                .UntilMessageIsLogged("ready")
                .UntilInternalTcpPortIsAvailable(8080) // an exec of a shell probe inside the container
                .UntilHttpRequestIsSucceeded(r => r.ForPort(8080).ForPath("/index.html").UsingHttpMessageHandler(new NetnsHttpHandler(_daemon.Netns!.Path))))
            .Build();
        await web.StartAsync(ct);

        Assert.Equal("/tc-web", web.Name);
        ushort port = web.GetMappedPublicPort(8080);
        Assert.NotEqual(0, port);
        using (HttpClient http = Http())
            Assert.Equal("hello page\n", await http.GetStringAsync($"http://{web.Hostname}:{port}/index.html", ct));
        JsonElement inspect = await _daemon.GetJsonAsync($"/containers/{web.Id}/json");
        Assert.Equal("testcontainers", inspect.GetProperty("Config").GetProperty("Labels").GetProperty("org.example.suite").GetString());
        Assert.Equal("true", inspect.GetProperty("Config").GetProperty("Labels").GetProperty("org.testcontainers").GetString());

        ExecResult exec = await web.ExecAsync(["sh", "-c", "echo $FOO; echo err >&2; exit 3"], ct);
        Assert.Equal(("bar\n", "err\n", 3L), (exec.Stdout, exec.Stderr, exec.ExitCode));

        // Files in and out through the archive API: mode and owner as asked, parents made, directories whole.
        Assert.Equal("hello page\n", Encoding.UTF8.GetString(await web.ReadFileAsync("/www/index.html", ct)));
        await web.CopyAsync(Encoding.UTF8.GetBytes("#!/bin/sh\necho ran\n"), "/opt/tools/run.sh", 1000, 1001,
            UnixFileModes.UserRead | UnixFileModes.UserWrite | UnixFileModes.UserExecute | UnixFileModes.GroupRead | UnixFileModes.GroupExecute, ct);
        ExecResult tool = await web.ExecAsync(["sh", "-c", "busybox stat -c '%a %u %g' /opt/tools/run.sh; /opt/tools/run.sh"], ct);
        Assert.Equal("750 1000 1001\nran\n", tool.Stdout);
        string dir = _files.Combine("tree");
        Directory.CreateDirectory(Path.Combine(dir, "inner"));
        File.WriteAllText(Path.Combine(dir, "a.txt"), "A");
        File.WriteAllText(Path.Combine(dir, "inner", "b.txt"), "B");
        await web.CopyAsync(new DirectoryInfo(dir), "/tmp/tree", ct: ct);
        Assert.Equal("B", Encoding.UTF8.GetString(await web.ReadFileAsync("/tmp/tree/inner/b.txt", ct)));
        Assert.Equal("A", Encoding.UTF8.GetString(await web.ReadFileAsync("/tmp/tree/a.txt", ct)));
        await Assert.ThrowsAsync<FileNotFoundException>(() => web.ReadFileAsync("/no/such/file", ct));

        // Logs: with timestamps by default, without on request; since and until cut by those times.
        (string stdout, string stderr) = await web.GetLogsAsync(timestampsEnabled: false, ct: ct);
        Assert.Equal(("FOO=bar\nready\n", "oops\n"), (stdout, stderr));
        string[] stamped = (await web.GetLogsAsync(ct: ct)).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(new[] { "FOO=bar", "ready" }, stamped.Select(l => l.Split(' ', 2)[1]));
        DateTime readyAt = Parse(stamped[1].Split(' ')[0]);
        Assert.Equal("ready\n", (await web.GetLogsAsync(since: readyAt, timestampsEnabled: false, ct: ct)).Stdout);
        Assert.Equal("FOO=bar\n", (await web.GetLogsAsync(until: readyAt.AddTicks(-1), timestampsEnabled: false, ct: ct)).Stdout);
        Assert.Equal("", (await web.GetLogsAsync(since: DateTime.UtcNow.AddMinutes(1), ct: ct)).Stdout);

        // Stop, then start again: the wait strategies run again and the port is published anew.
        await web.StopAsync(ct);
        Assert.Equal(TestcontainersStates.Exited, web.State);
        Assert.Equal(0, await web.GetExitCodeAsync(ct));
        await web.StartAsync(ct);
        Assert.Equal(TestcontainersStates.Running, web.State);
        using (HttpClient http = Http())
            Assert.Equal("hello page\n", await http.GetStringAsync($"http://{web.Hostname}:{web.GetMappedPublicPort(8080)}/index.html", ct));
    }

    [Fact]
    public async Task Entrypoint_exit_codes_command_and_health_waits_and_a_container_that_exits_while_waited_for()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        CancellationToken ct = timeout.Token;
        await using (IContainer once = Busybox().WithEntrypoint("sh", "-c").WithCommand("echo from-entrypoint; exit 7").WithWaitStrategy(Wait.ForUnixContainer()).Build())
        {
            await once.StartAsync(ct);
            Assert.Equal(7, await once.GetExitCodeAsync(ct));
            Assert.Equal("from-entrypoint\n", (await once.GetLogsAsync(timestampsEnabled: false, ct: ct)).Stdout);
        }

        await using (IContainer marker = Busybox()
            .WithCommand(Sh("mkdir -p /tmp; sleep 1; touch /tmp/ok; sleep 300"))
            .WithWaitStrategy(Wait.ForUnixContainer().UntilCommandIsCompleted("test -f /tmp/ok").UntilFileExists("/tmp/ok", FileSystem.Container))
            .Build())
        {
            await marker.StartAsync(ct);
            Assert.Equal(0, (await marker.ExecAsync(["test", "-f", "/tmp/ok"], ct)).ExitCode);
        }

        // A health check through the create parameters (Testcontainers has no builder method for it).
        await using (IContainer healthy = Busybox()
            .WithCommand(Sh("mkdir -p /tmp; touch /tmp/healthy; sleep 300"))
            .WithCreateParameterModifier(p => p.Healthcheck = new Docker.DotNet.Models.HealthcheckConfig
            {
                Test = ["CMD-SHELL", "test -f /tmp/healthy"],
                Interval = TimeSpan.FromMilliseconds(200),
                Retries = 50,
            })
            .WithWaitStrategy(Wait.ForUnixContainer().UntilContainerIsHealthy())
            .Build())
        {
            await healthy.StartAsync(ct);
            Assert.Equal(TestcontainersHealthStatus.Healthy, healthy.Health);
        }

        // Other create parameters, as users set them: user, memory limit, stop signal.
        await using (IContainer limited = Busybox()
            .WithCommand("sleep", "300")
            .WithCreateParameterModifier(p => { p.User = "1234:5678"; p.HostConfig!.Memory = 64 * 1024 * 1024; p.StopSignal = "SIGKILL"; })
            .Build())
        {
            await limited.StartAsync(ct);
            Assert.Equal("uid=1234 gid=5678 groups=5678\n", (await limited.ExecAsync(["id"], ct)).Stdout);
            Assert.Equal(64 * 1024 * 1024, (await _daemon.GetJsonAsync($"/containers/{limited.Id}/json")).GetProperty("HostConfig").GetProperty("Memory").GetInt64());
            await limited.StopAsync(ct);
            Assert.Equal(137, await limited.GetExitCodeAsync(ct));
        }

        await using IContainer gone = Busybox().WithCommand("sh", "-c", "echo bye; exit 2").WithWaitStrategy(Wait.ForUnixContainer().UntilMessageIsLogged("never")).Build();
        var exited = await Assert.ThrowsAsync<ContainerNotRunningException>(() => gone.StartAsync(ct));
        Assert.Contains("exited with code 2", exited.Message);
    }

    [Fact]
    public async Task Containers_reach_each_other_and_themselves_by_network_alias_and_share_volumes_and_mounts()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        CancellationToken ct = timeout.Token;
        await using INetwork network = new NetworkBuilder().WithDockerEndpoint(_daemon.DockerHost).WithLogger(_log).WithName("tc-net").Build();
        await network.CreateAsync(ct);
        await using IVolume volume = new VolumeBuilder().WithDockerEndpoint(_daemon.DockerHost).WithLogger(_log).WithName("tc-vol").Build();
        await volume.CreateAsync(ct);

        await using IContainer server = Busybox()
            .WithNetwork(network)
            .WithNetworkAliases("web")
            .WithVolumeMount(volume, "/www")
            .WithCommand(Sh("echo served > /www/index.html; httpd -f -p 80 -h /www"))
            .WithWaitStrategy(Wait.ForUnixContainer().UntilInternalTcpPortIsAvailable(80))
            .Build();
        await server.StartAsync(ct);

        string host = _files.Combine("bind");
        Directory.CreateDirectory(host);
        File.WriteAllText(Path.Combine(host, "from-host.txt"), "host data");
        await using IContainer client = Busybox()
            .WithNetwork(network)
            .WithNetworkAliases("client")
            .WithVolumeMount(volume, "/shared", AccessMode.ReadOnly)
            .WithBindMount(host, "/data")
            .WithBindMount(host, "/data-ro", AccessMode.ReadOnly)
            .WithTmpfsMount("/scratch")
            .WithPrivileged(true)
            .WithHostname("tc-client")
            .WithWorkingDirectory("/data")
            .WithCommand(Sh("sleep 300"))
            .Build();
        await client.StartAsync(ct);

        Assert.Equal("served\n", (await client.ExecAsync(["busybox", "wget", "-qO-", "http://web/index.html"], ct)).Stdout);
        // A service that calls itself by its alias, as dockerd's embedded DNS answers it.
        Assert.Contains($"({client.IpAddress})", (await client.ExecAsync(["ping", "-c1", "-W1", "client"], ct)).Stdout);
        Assert.Equal("served\n", (await client.ExecAsync(["cat", "/shared/index.html"], ct)).Stdout);

        Assert.Equal("/data\ntc-client\nhost data", (await client.ExecAsync(["sh", "-c", "pwd; hostname; cat from-host.txt"], ct)).Stdout);
        string[] procMounts = (await client.ExecAsync(["cat", "/proc/mounts"], ct)).Stdout.Split('\n');
        Assert.Contains(procMounts, l => l.StartsWith("tmpfs /scratch tmpfs rw,", StringComparison.Ordinal));
        Assert.Contains(procMounts, l => l.Split(' ') is [_, "/data-ro", _, var options, ..] && options.Split(',').Contains("ro"));
        Assert.NotEqual(0, (await client.ExecAsync(["touch", "/data-ro/no"], ct)).ExitCode);
        Assert.NotEqual(0, (await client.ExecAsync(["touch", "/shared/no"], ct)).ExitCode);
        Assert.Equal(0, (await client.ExecAsync(["sh", "-c", "echo x > /data/from-container.txt"], ct)).ExitCode);
        // Privileged: every capability the daemon (this process) may give.
        string bounding = File.ReadAllLines("/proc/self/status").Single(l => l.StartsWith("CapBnd:", StringComparison.Ordinal))[7..].Trim();
        Assert.Equal($"CapEff:\t{bounding}\n", (await client.ExecAsync(["grep", "CapEff", "/proc/self/status"], ct)).Stdout);
        Assert.True(File.Exists(Path.Combine(host, "from-container.txt")));
    }

    [Fact]
    public async Task Images_are_built_from_a_multi_stage_Dockerfile_with_build_args_dockerignore_and_a_target_then_deleted()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        CancellationToken ct = timeout.Token;
        string context = _files.Combine("context");
        Directory.CreateDirectory(Path.Combine(context, "docker"));
        File.WriteAllText(Path.Combine(context, "docker", "Dockerfile.app"), """
            FROM busybox:latest AS build
            ARG GREETING=default
            RUN mkdir /out && echo "$GREETING" > /out/greeting
            COPY . /ctx
            FROM build AS test
            RUN echo test-stage > /out/stage
            FROM busybox:latest AS final
            COPY --from=build /out/greeting /greeting
            COPY --from=build /ctx /ctx
            CMD ["sh", "-c", "cat /greeting; ls /ctx | tr '\\n' ' '"]
            """);
        File.WriteAllText(Path.Combine(context, ".dockerignore"), "secret.txt\n*.log\n");
        File.WriteAllText(Path.Combine(context, "secret.txt"), "not for the image");
        File.WriteAllText(Path.Combine(context, "debug.log"), "not for the image");
        File.WriteAllText(Path.Combine(context, "kept.txt"), "kept");

        IFutureDockerImage app = new ImageFromDockerfileBuilder()
            .WithDockerEndpoint(_daemon.DockerHost).WithLogger(_log)
            .WithDockerfileDirectory(context)
            .WithDockerfile("docker/Dockerfile.app")
            .WithName("tc-app:1")
            .WithBuildArgument("GREETING", "hello-arg")
            .WithDeleteIfExists(true)
            .Build();
        await app.CreateAsync(ct);
        await using (IContainer run = Busybox().WithImage(app).WithWaitStrategy(Wait.ForUnixContainer()).Build())
        {
            await run.StartAsync(ct);
            Assert.Equal(0, await run.GetExitCodeAsync(ct));
            Assert.Equal("hello-arg\ndocker kept.txt ", (await run.GetLogsAsync(timestampsEnabled: false, ct: ct)).Stdout);
        }

        // A target stage, built twice under one name: WithDeleteIfExists removes the first image before the second build.
        for (int round = 0; round < 2; round++)
        {
            IFutureDockerImage test = new ImageFromDockerfileBuilder()
                .WithDockerEndpoint(_daemon.DockerHost).WithLogger(_log)
                .WithDockerfileDirectory(context).WithDockerfile("docker/Dockerfile.app").WithTarget("test")
                .WithName("tc-app:test").WithDeleteIfExists(true)
                .Build();
            await test.CreateAsync(ct);
            await using IContainer run = Busybox().WithImage(test).WithCommand("cat", "/out/stage").WithWaitStrategy(Wait.ForUnixContainer()).Build();
            await run.StartAsync(ct);
            Assert.Equal(0, await run.GetExitCodeAsync(ct));
            Assert.Equal("test-stage\n", (await run.GetLogsAsync(timestampsEnabled: false, ct: ct)).Stdout);
            if (round == 1) await test.DeleteAsync(ct);
        }
        await _daemon.GetJsonAsync("/images/tc-app:test/json", 404);

        // Testcontainers' DisposeAsync keeps a built image (Ryuk removes it, by its session label; dockerd too keeps it); DeleteAsync removes it.
        await app.DeleteAsync(ct);
        await _daemon.GetJsonAsync("/images/tc-app:1/json", 404);
    }

    [Fact]
    public async Task Reuse_finds_the_running_container_and_parallel_starts_get_ports_of_their_own()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        CancellationToken ct = timeout.Token;
        IContainer Reusable() => Busybox().WithCommand(Sh("sleep 300")).WithLabel("org.example.reuse", "yes").WithReuse(true).Build();
        IContainer first = Reusable();
        await first.StartAsync(ct);
        IContainer second = Reusable();
        await second.StartAsync(ct);
        Assert.Equal(first.Id, second.Id);
        await first.DisposeAsync();
        await second.DisposeAsync();
        // A reused container is stopped at dispose, not removed.
        JsonElement reused = await _daemon.GetJsonAsync($"/containers/{first.Id}/json");
        Assert.Equal("exited", reused.GetProperty("State").GetProperty("Status").GetString());

        var parallel = Enumerable.Range(0, 6).Select(i => Busybox()
            .WithCommand(Sh($"mkdir /www; echo {i} > /www/index.html; httpd -f -p 80 -h /www"))
            .WithPortBinding(80, assignRandomHostPort: true)
            .WithWaitStrategy(Wait.ForUnixContainer().UntilInternalTcpPortIsAvailable(80))
            .Build()).ToList();
        try
        {
            await Task.WhenAll(parallel.Select(c => c.StartAsync(ct)));
            List<ushort> ports = parallel.Select(c => c.GetMappedPublicPort(80)).ToList();
            Assert.Equal(ports.Count, ports.Distinct().Count());
            using HttpClient http = Http();
            for (int i = 0; i < parallel.Count; i++)
                Assert.Equal($"{i}\n", await http.GetStringAsync($"http://{parallel[i].Hostname}:{ports[i]}/index.html", ct));
        }
        finally
        {
            await Task.WhenAll(parallel.Select(c => c.DisposeAsync().AsTask()));
        }
    }
}

/// <summary>
/// An HTTP handler whose connections are made from a network namespace (the daemon's, where its
/// bridge and published ports are): each socket is created by a short-lived thread that has joined
/// the namespace with setns(2) — a thread's own switch, the rest of the process stays where it is —
/// and keeps that namespace for its life.
/// </summary>
internal sealed class NetnsHttpHandler : DelegatingHandler
{
    public NetnsHttpHandler(string netnsPath)
        : base(new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                IPAddress address = IPAddress.Parse(context.DnsEndPoint.Host);
                Socket socket = CreateSocket(netnsPath, address.AddressFamily);
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
    {
    }

    private const int CLONE_NEWNET = 0x40000000;

    [DllImport("libc", SetLastError = true)]
    private static extern int setns(int fd, int nstype);

    private static Socket CreateSocket(string netnsPath, AddressFamily family)
    {
        Socket? socket = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using Microsoft.Win32.SafeHandles.SafeFileHandle ns = File.OpenHandle(netnsPath);
                if (setns((int)ns.DangerousGetHandle(), CLONE_NEWNET) != 0)
                    throw new IOException($"setns {netnsPath}: errno {Marshal.GetLastPInvokeError()}");
                socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        return error is null ? socket! : throw error;
    }
}

/// <summary>Testcontainers' log in the test's output: what it waited for and did, shown when a test fails.</summary>
internal sealed class TestOutputLogger(ITestOutputHelper output) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        try
        {
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} [testcontainers {logLevel}] {formatter(state, exception)}");
        }
        catch (InvalidOperationException)
        {
            // a line logged after the test ended (a background wait): nobody reads it any more
        }
    }
}
