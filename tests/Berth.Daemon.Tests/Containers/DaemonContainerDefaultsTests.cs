using System.Diagnostics;
using Berth.Daemon.Configuration;
using Berth.Daemon.Containers;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// berthd's container defaults as dockerd takes them (<c>--init</c>, <c>--no-new-privileges</c>,
/// <c>--default-ipc-mode</c>, <c>--default-cgroupns-mode</c>) and what docker info and version say
/// (<c>--label</c>, <c>--experimental</c>), through the real docker CLI against a real berthd; and
/// <c>--shutdown-timeout</c> on a stopping berthd. Each daemon force-removes its containers at the end.
/// </summary>
public sealed class DaemonContainerDefaultsTests
{
    private static async Task<(DaemonScope Daemon, DockerCli Docker)> StartAsync(TempDirectory dir, params string[] args)
    {
        DaemonOptions parsed = DaemonArgs.Parse(args).Options;
        DaemonScope daemon = await DaemonScope.StartAsync(o => o with
        {
            Init = parsed.Init, NoNewPrivileges = parsed.NoNewPrivileges, DefaultIpcMode = parsed.DefaultIpcMode,
            DefaultCgroupnsMode = parsed.DefaultCgroupnsMode, Labels = parsed.Labels, Experimental = parsed.Experimental,
        });
        await daemon.ImportBusyboxAsync("busybox:latest");
        string binary = (string)Assert.Single(DockerCli.Installed().Take(1))[0];
        return (daemon, new DockerCli(binary, daemon.DockerHost, dir.CreateSubdirectory("docker-config")));
    }

    [Fact]
    public async Task With_init_containers_run_under_docker_init_unless_they_say_init_false()
    {
        using var dir = new TempDirectory("init-default");
        var (daemon, docker) = await StartAsync(dir, "--init");
        await using (daemon)
        {
            Assert.Equal("docker-init\n", docker.Ok("run", "--rm", "--network", "none", "busybox", "cat", "/proc/1/comm"));
            Assert.Equal("cat\n", docker.Ok("run", "--rm", "--network", "none", "--init=false", "busybox", "cat", "/proc/1/comm"));
            // As dockerd: the record keeps what the container said (nothing), the daemon decides at start.
            string id = docker.Ok("create", "--network", "none", "busybox", "true").Trim();
            Assert.Equal("null\n", docker.Ok("inspect", "-f", "{{json .HostConfig.Init}}", id));
        }

        using var plain = new TempDirectory("init-default");
        var (without, docker2) = await StartAsync(plain);
        await using (without)
            Assert.Equal("cat\n", docker2.Ok("run", "--rm", "--network", "none", "busybox", "cat", "/proc/1/comm"));
    }

    [Fact]
    public async Task With_no_new_privileges_containers_get_it_unless_they_say_false_and_info_lists_it()
    {
        using var dir = new TempDirectory("nnp-default");
        var (daemon, docker) = await StartAsync(dir, "--no-new-privileges");
        await using (daemon)
        {
            Assert.Equal("NoNewPrivs:\t1\n", docker.Ok("run", "--rm", "--network", "none", "busybox", "grep", "NoNewPrivs", "/proc/self/status"));
            Assert.Equal("NoNewPrivs:\t0\n", docker.Ok("run", "--rm", "--network", "none", "--security-opt", "no-new-privileges=false",
                "busybox", "grep", "NoNewPrivs", "/proc/self/status"));
            Assert.Contains("\"name=no-new-privileges\"", docker.Ok("info", "-f", "{{json .SecurityOptions}}"));
        }

        using var plain = new TempDirectory("nnp-default");
        var (without, docker2) = await StartAsync(plain);
        await using (without)
        {
            Assert.Equal("NoNewPrivs:\t0\n", docker2.Ok("run", "--rm", "--network", "none", "busybox", "grep", "NoNewPrivs", "/proc/self/status"));
            Assert.DoesNotContain("no-new-privileges", docker2.Ok("info", "-f", "{{json .SecurityOptions}}"));
        }
    }

    [Fact]
    public async Task A_shareable_default_ipc_mode_lets_other_containers_join_and_private_does_not()
    {
        using var dir = new TempDirectory("ipc-default");
        var (daemon, docker) = await StartAsync(dir, "--default-ipc-mode", "shareable");
        await using (daemon)
        {
            docker.Ok("run", "-d", "--network", "none", "--name", "donor", "busybox", "sleep", "60");
            Assert.Equal("shareable\n", docker.Ok("inspect", "-f", "{{.HostConfig.IpcMode}}", "donor"));
            string donorIpc = docker.Ok("exec", "donor", "busybox", "readlink", "/proc/self/ns/ipc");
            Assert.Equal(donorIpc, docker.Ok("run", "--rm", "--network", "none", "--ipc", "container:donor", "busybox", "busybox", "readlink", "/proc/self/ns/ipc"));
            // A container's own mode wins.
            Assert.Equal("private\n", docker.Ok("inspect", "-f", "{{.HostConfig.IpcMode}}",
                docker.Ok("create", "--network", "none", "--ipc", "private", "busybox", "true").Trim()));
        }

        using var plain = new TempDirectory("ipc-default");
        var (without, docker2) = await StartAsync(plain);
        await using (without)
        {
            docker2.Ok("run", "-d", "--network", "none", "--name", "donor", "busybox", "sleep", "60");
            Assert.Equal("private\n", docker2.Ok("inspect", "-f", "{{.HostConfig.IpcMode}}", "donor"));
            var (exit, _, error) = docker2.Run("run", "--rm", "--network", "none", "--ipc", "container:donor", "busybox", "true");
            Assert.NotEqual(0, exit);
            Assert.Contains("non-shareable IPC", error);
        }
    }

    [Fact]
    public async Task The_default_cgroupns_mode_is_recorded_at_create_and_applied()
    {
        string hostCgroupns = new FileInfo("/proc/self/ns/cgroup").LinkTarget!;
        string hostDefault = ContainerSpecFactory.CgroupV2 ? "private" : "host";
        string other = hostDefault == "host" ? "private" : "host";

        using var dir = new TempDirectory("cgroupns-default");
        var (daemon, docker) = await StartAsync(dir);
        await using (daemon)
        {
            string id = docker.Ok("create", "--network", "none", "busybox", "busybox", "readlink", "/proc/self/ns/cgroup").Trim();
            Assert.Equal(hostDefault + "\n", docker.Ok("inspect", "-f", "{{.HostConfig.CgroupnsMode}}", id));
            string inside = docker.Ok("start", "-a", id).Trim();
            Assert.Equal(hostDefault == "host", inside == hostCgroupns);
            Assert.Equal(hostDefault == "private", docker.Ok("info", "-f", "{{json .SecurityOptions}}").Contains("name=cgroupns"));
        }

        using var changed = new TempDirectory("cgroupns-default");
        var (daemon2, docker2) = await StartAsync(changed, "--default-cgroupns-mode", other);
        await using (daemon2)
        {
            string id = docker2.Ok("create", "--network", "none", "busybox", "busybox", "readlink", "/proc/self/ns/cgroup").Trim();
            Assert.Equal(other + "\n", docker2.Ok("inspect", "-f", "{{.HostConfig.CgroupnsMode}}", id));
            string inside = docker2.Ok("start", "-a", id).Trim();
            Assert.Equal(other == "host", inside == hostCgroupns);
            Assert.Equal(other == "private", docker2.Ok("info", "-f", "{{json .SecurityOptions}}").Contains("name=cgroupns"));
            // A container's own mode wins.
            Assert.Equal(hostDefault + "\n", docker2.Ok("inspect", "-f", "{{.HostConfig.CgroupnsMode}}",
                docker2.Ok("create", "--network", "none", "--cgroupns", hostDefault, "busybox", "true").Trim()));
            // On cgroup v1 a privileged container keeps the host's cgroup namespace whatever the default (dockerd's rule).
            if (!ContainerSpecFactory.CgroupV2)
                Assert.Equal("host\n", docker2.Ok("inspect", "-f", "{{.HostConfig.CgroupnsMode}}",
                    docker2.Ok("create", "--network", "none", "--privileged", "busybox", "true").Trim()));
        }
    }

    [Fact]
    public async Task Labels_and_experimental_show_in_info_and_version()
    {
        using var dir = new TempDirectory("labels");
        string config = dir.Combine("daemon.json");
        File.WriteAllText(config, """{ "labels": ["tier=db", "zone=eu"], "experimental": true, "features": { "buildkit": false } }""");
        var (daemon, docker) = await StartAsync(dir, "--config-file", config);
        await using (daemon)
        {
            Assert.Equal("[\"tier=db\",\"zone=eu\"]\n", docker.Ok("info", "-f", "{{json .Labels}}"));
            Assert.Equal("true\n", docker.Ok("info", "-f", "{{.ExperimentalBuild}}"));
            Assert.Equal("true\n", docker.Ok("version", "-f", "{{.Server.Experimental}}"));
            string info = docker.Ok("info");
            Assert.Contains(" Labels:\n  tier=db\n  zone=eu\n", info);
            Assert.Contains(" Experimental: true\n", info);
            using HttpResponseMessage ping = await daemon.Client.GetAsync("/_ping");
            Assert.Equal("true", ping.Headers.GetValues("Docker-Experimental").Single());
        }

        using var plain = new TempDirectory("labels");
        var (without, docker2) = await StartAsync(plain);
        await using (without)
        {
            Assert.Equal("[]\n", docker2.Ok("info", "-f", "{{json .Labels}}"));
            Assert.Equal("false\n", docker2.Ok("version", "-f", "{{.Server.Experimental}}"));
            using HttpResponseMessage ping = await without.Client.GetAsync("/_ping");
            Assert.Equal("false", ping.Headers.GetValues("Docker-Experimental").Single());
        }
    }

    /// <summary>
    /// A load whose body never ends holds a stopping berthd for --shutdown-timeout, then is cut off:
    /// the stop takes about that long, not the default 15 s.
    /// </summary>
    [Fact]
    public async Task A_stopping_berthd_waits_shutdown_timeout_for_requests_in_progress()
    {
        DaemonScope daemon = await DaemonScope.StartAsync(o => o with { ShutdownTimeout = 2 });
        Stopwatch stopping;
        Task<HttpResponseMessage> load;
        var endless = new EndlessStream();
        // A client of its own: the scope's is disposed (its requests cancelled) before berthd stops.
        using HttpClient client = DaemonScope.CreateClient(daemon.SocketPath);
        try
        {
            var content = new StreamContent(endless);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-tar");
            load = client.PostAsync("/images/load", content);
            await endless.FirstRead.WaitAsync(TimeSpan.FromSeconds(30));
            await Task.Delay(500); // the request's head is at berthd, its body coming
        }
        finally
        {
            stopping = Stopwatch.StartNew();
            await daemon.DisposeAsync();
            stopping.Stop();
        }
        Assert.InRange(stopping.Elapsed, TimeSpan.FromSeconds(1.8), TimeSpan.FromSeconds(10));
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            using HttpResponseMessage response = await load;
            response.EnsureSuccessStatusCode();
            string body = await response.Content.ReadAsStringAsync();
            Assert.DoesNotContain("errorDetail", body);
        });
    }

    /// <summary>A request body that sends a tar header's worth of zeros a little at a time, for ever.</summary>
    private sealed class EndlessStream : Stream
    {
        private readonly TaskCompletionSource _firstRead = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task FirstRead => _firstRead.Task;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => 0; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _firstRead.TrySetResult();
            await Task.Delay(200, cancellationToken);
            int n = Math.Min(buffer.Length, 16);
            buffer.Span[..n].Clear();
            return n;
        }
    }
}
