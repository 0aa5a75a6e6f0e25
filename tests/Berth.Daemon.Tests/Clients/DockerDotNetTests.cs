using Docker.DotNet;
using Docker.DotNet.Models;

namespace Berth.Daemon.Tests.Clients;

/// <summary>
/// Docker.DotNet, the .NET client of the Docker Engine API (issue 6's "a .NET client"), in its
/// maintained fork Docker.DotNet.Enhanced (the one Testcontainers is built on: both ship a
/// Docker.DotNet.dll, so one test assembly can hold only one), against berthd hosted in-process:
/// the workflow a .NET program drives — import, list, create, start,
/// logs, exec with its attached output and exit code, wait, stop, stats, remove — and the typed
/// errors it maps from Docker's status codes. Everything is removed with the daemon at the end.
/// </summary>
public sealed class DockerDotNetTests : IAsyncLifetime
{
    private DaemonScope _daemon = null!;
    private DockerClient _docker = null!;

    public async Task InitializeAsync()
    {
        _daemon = await DaemonScope.StartAsync();
        _docker = new DockerClientBuilder().WithEndpoint(new Uri(_daemon.DockerHost)).Build();
    }

    public async Task DisposeAsync()
    {
        _docker?.Dispose();
        if (_daemon is not null) await _daemon.DisposeAsync();
    }

    [Fact]
    public async Task A_container_is_run_logged_execd_stopped_and_removed()
    {
        using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(2));
        CancellationToken ct = timeout.Token;

        await _docker.System.PingAsync(ct);
        VersionResponse version = await _docker.System.GetVersionAsync(ct);
        Assert.Equal("1.51", version.APIVersion);

        // Import through the client: a rootfs tar as busybox:latest.
        using (var tar = new MemoryStream(TestRootfs.BusyboxTar()))
            await _docker.Images.CreateImageAsync(new ImagesCreateParameters { FromSrc = "-", Repo = "busybox", Tag = "latest" }, tar, null, new Progress<JSONMessage>(), ct);
        IList<ImagesListResponse> images = await _docker.Images.ListImagesAsync(new ImagesListParameters(), ct);
        Assert.Contains(images, i => i.RepoTags?.Contains("busybox:latest") == true);

        CreateContainerResponse created = await _docker.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Name = "dotnet-web",
            Image = "busybox",
            Cmd = ["sh", "-c", "echo hello from $(hostname); exec sleep 100"],
            Env = ["GREETING=hi"],
            Hostname = "dotnet",
            HostConfig = new HostConfig { Memory = 64 * 1024 * 1024, PidsLimit = 50 },
        }, ct);
        Assert.Matches("^[0-9a-f]{64}$", created.ID);
        Assert.True(await _docker.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), ct));

        ContainerInspectResponse running = await _docker.Containers.InspectContainerAsync("dotnet-web", ct);
        Assert.True(running.State!.Running);
        Assert.True(running.State.Pid > 0);
        Assert.Equal(64 * 1024 * 1024, running.HostConfig!.Memory);
        Assert.Equal("/dotnet-web", running.Name);

        IList<ContainerListResponse> listed = await _docker.Containers.ListContainersAsync(new ContainersListParameters(), ct);
        Assert.Contains(listed, c => c.ID == created.ID && c.State == "running" && c.Names.Contains("/dotnet-web"));

        // Logs: a multiplexed stream (no tty); the first line may take a moment to be written.
        string logs = "";
        for (int i = 0; i < 100 && !logs.Contains('\n'); i++)
        {
            using MultiplexedStream stream = await _docker.Containers.GetContainerLogsAsync(created.ID, new ContainerLogsParameters { ShowStdout = true, ShowStderr = true }, ct);
            (string stdout, _) = await stream.ReadOutputToEndAsync(ct);
            logs = stdout;
            if (!logs.Contains('\n')) await Task.Delay(50, ct);
        }
        Assert.Equal("hello from dotnet\n", logs);

        // Exec: the hijacked stream carries its stdout and stderr apart; the exit code is inspected.
        ContainerExecCreateResponse exec = await _docker.Exec.CreateContainerExecAsync(created.ID, new ContainerExecCreateParameters
        {
            Cmd = ["sh", "-c", "echo $((6*7)) $GREETING; echo oops >&2; exit 5"],
            AttachStdout = true,
            AttachStderr = true,
        }, ct);
        using (MultiplexedStream execStream = await _docker.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), ct))
        {
            (string stdout, string stderr) = await execStream.ReadOutputToEndAsync(ct);
            Assert.Equal("42 hi\n", stdout);
            Assert.Equal("oops\n", stderr);
        }
        ContainerExecInspectResponse execState = await _docker.Exec.InspectContainerExecAsync(exec.ID, ct);
        Assert.Equal(5, execState.ExitCode);
        Assert.False(execState.Running);

        // One-shot stats in Docker's shape.
        ContainerStatsResponse? stats = null;
        await _docker.Containers.GetContainerStatsAsync(created.ID, new ContainerStatsParameters { Stream = false }, new Progress<ContainerStatsResponse>(s => stats = s), ct);
        for (int i = 0; i < 50 && stats is null; i++) await Task.Delay(20, ct); // Progress<T> reports on the thread pool
        Assert.NotNull(stats);
        Assert.True(stats!.MemoryStats!.Usage > 0);
        Assert.Equal(64UL * 1024 * 1024, stats.MemoryStats.Limit!.Value);

        // Stop: sh as PID 1 ignores SIGTERM, so the timeout's SIGKILL ends it.
        Assert.True(await _docker.Containers.StopContainerAsync(created.ID, new ContainerStopParameters { WaitBeforeKillSeconds = 1 }, ct));
        ContainerInspectResponse stopped = await _docker.Containers.InspectContainerAsync(created.ID, ct);
        Assert.False(stopped.State!.Running);
        Assert.Equal(137, stopped.State.ExitCode);

        await _docker.Containers.RemoveContainerAsync(created.ID, new ContainerRemoveParameters(), ct);
        var gone = await Assert.ThrowsAsync<DockerContainerNotFoundException>(() => _docker.Containers.InspectContainerAsync(created.ID, ct));
        Assert.Contains("No such container", gone.ResponseBody);
    }

    [Fact]
    public async Task Wait_returns_the_exit_code_and_errors_arrive_as_the_clients_typed_exceptions()
    {
        using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(2));
        CancellationToken ct = timeout.Token;
        await _daemon.ImportBusyboxAsync("busybox:latest");

        CreateContainerResponse created = await _docker.Containers.CreateContainerAsync(new CreateContainerParameters { Image = "busybox", Cmd = ["sh", "-c", "exit 3"] }, ct);
        // The client's wait has dockerd's default condition, not-running: asked before the start it
        // would answer at once (for the created container), so it is asked after.
        await _docker.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), ct);
        Assert.Equal(3, (await _docker.Containers.WaitContainerAsync(created.ID, ct)).StatusCode);
        await _docker.Containers.RemoveContainerAsync(created.ID, new ContainerRemoveParameters(), ct);

        // 404 with Docker's message, mapped by the client to its typed exceptions.
        var noImage = await Assert.ThrowsAsync<DockerImageNotFoundException>(
            () => _docker.Containers.CreateContainerAsync(new CreateContainerParameters { Image = "nosuch:1" }, ct));
        Assert.Contains("No such image: nosuch:1", noImage.ResponseBody);
        await Assert.ThrowsAsync<DockerContainerNotFoundException>(() => _docker.Containers.StartContainerAsync("nosuch", new ContainerStartParameters(), ct));

        // 409: a running container is not removed without force.
        CreateContainerResponse sleeper = await _docker.Containers.CreateContainerAsync(new CreateContainerParameters { Image = "busybox", Cmd = ["sleep", "100"] }, ct);
        await _docker.Containers.StartContainerAsync(sleeper.ID, new ContainerStartParameters(), ct);
        DockerApiException conflict = await Assert.ThrowsAnyAsync<DockerApiException>(
            () => _docker.Containers.RemoveContainerAsync(sleeper.ID, new ContainerRemoveParameters(), ct));
        Assert.Equal(System.Net.HttpStatusCode.Conflict, conflict.StatusCode);
        await _docker.Containers.RemoveContainerAsync(sleeper.ID, new ContainerRemoveParameters { Force = true }, ct);
        Assert.Empty(await _docker.Containers.ListContainersAsync(new ContainersListParameters { All = true }, ct));
    }
}
