using System.Text;
using Berth.Daemon.Configuration;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// Docker's <c>local</c> logging driver through berthd and the real docker CLI: run, logs (tail, timestamps, since,
/// until, follow), rotation with gzip'ed rotated files, the option errors dockerd gives, and the daemon-wide default.
/// Each test's daemon force-removes its containers and its directory at the end.
/// </summary>
public sealed class LocalLogDriverTests
{
    private static async Task<(DaemonScope Daemon, DockerCli Docker)> StartAsync(TempDirectory dir, params string[] args)
    {
        DaemonOptions parsed = DaemonArgs.Parse(args).Options;
        DaemonScope daemon = await DaemonScope.StartAsync(o => o with { LogDriver = parsed.LogDriver, LogOpts = parsed.LogOpts });
        try
        {
            await daemon.ImportBusyboxAsync("busybox:latest");
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
        string binary = (string)Assert.Single(DockerCli.Installed().Take(1))[0];
        return (daemon, new DockerCli(binary, daemon.DockerHost, dir.CreateSubdirectory("docker-config")));
    }

    private static string[] LocalLogFiles(DaemonScope daemon, string id)
        => Directory.GetFiles(Path.Combine(daemon.Options.DataRoot, "containers", id, "local-logs")).Select(Path.GetFileName).Order().ToArray()!;

    [Fact]
    public async Task Logs_of_a_local_driver_container_tail_bound_follow_and_rotate_into_gzip_files()
    {
        using var dir = new TempDirectory("local-log");
        var (daemon, docker) = await StartAsync(dir);
        await using (daemon)
        {
            string id = docker.Ok("run", "-d", "--log-driver", "local", "--log-opt", "max-size=3k", "--log-opt", "max-file=3", "busybox", "sh", "-c",
                "i=1; while [ $i -le 1500 ]; do echo \"line $i\"; i=$((i+1)); done; echo err >&2").Trim();
            Assert.Equal("0\n", docker.Ok("wait", id));
            // As dockerd: the local driver's files are not an API, so inspect shows no LogPath.
            Assert.Equal("local {\"max-file\":\"3\",\"max-size\":\"3k\"} []\n",
                docker.Ok("inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}} [{{.LogPath}}]", id));

            // 3k is 3000 bytes (dockerd reads the local driver's max-size with FromHumanSize): ~45 KB of frames make
            // many rotations; three files are kept, the two rotated ones compressed.
            string[] want = ["container.log", "container.log.1.gz", "container.log.2.gz"];
            for (int i = 0; i < 100 && !LocalLogFiles(daemon, id).SequenceEqual(want); i++) await Task.Delay(50);
            Assert.Equal(want, LocalLogFiles(daemon, id));

            var (exit, output, error) = docker.Run("logs", id);
            Assert.Equal(0, exit);
            Assert.EndsWith("line 1499\nline 1500\n", output);
            Assert.DoesNotContain("\nline 1\n", "\n" + output);
            var numbers = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => int.Parse(l[5..])).ToList();
            Assert.Equal(Enumerable.Range(numbers[0], numbers.Count), numbers);
            Assert.InRange(numbers.Count, 100, 400);   // two full files of ~3000 bytes and the current one
            Assert.Equal("err\n", error);

            Assert.Equal(("line 1499\nline 1500\n", "err\n"), Split(docker.Run("logs", "--tail", "3", id)));
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z err\n$", docker.Run("logs", "-t", "--tail", "1", id).Err);
            Assert.Equal(("", ""), Split(docker.Run("logs", "--until", "2000-01-01T00:00:00Z", id)));
            Assert.Equal(("", "err\n"), Split(docker.Run("logs", "--since", "2000-01-01T00:00:00Z", "--tail", "1", id)));
            Assert.Equal(("", ""), Split(docker.Run("logs", "--since", "2100-01-01T00:00:00Z", id)));

            // Follow a running container to its end; an attached run gets its output as under json-file.
            string follow = docker.Ok("run", "-d", "--log-driver", "local", "busybox", "sh", "-c", "for i in 1 2 3; do echo f$i; sleep 0.3; done").Trim();
            Assert.Equal("f1\nf2\nf3\n", docker.Ok("logs", "-f", follow));
            Assert.Equal("hello\n", docker.Ok("run", "--log-driver", "local", "--name", "attached", "busybox", "echo", "hello"));
            Assert.Equal("hello\n", docker.Ok("logs", "attached"));
            // A restart appends to the same file (its next monitor checks the file's end, and keeps what is whole).
            Assert.Equal("hello\n", docker.Ok("start", "-a", "attached"));
            Assert.Equal("hello\nhello\n", docker.Ok("logs", "attached"));
            // The attach endpoint's log replay (logs=1, no stream) reads the local log too.
            Assert.Equal("hello\nhello\n", await AttachLogsAsync(daemon, "attached"));
            Assert.Equal(["container.log"], LocalLogFiles(daemon, docker.Ok("inspect", "-f", "{{.Id}}", "attached").Trim()));
        }
    }

    /// <summary>POST /containers/{id}/attach?logs=1&amp;stream=0 over the unix socket, raw: the stdout frames of the
    /// multiplexed stream that follows the 101.</summary>
    private static async Task<string> AttachLogsAsync(DaemonScope daemon, string id)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(daemon.SocketPath));
        await using var stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(
            $"POST /containers/{id}/attach?logs=1&stream=0&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"));
        using var all = new MemoryStream();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await stream.CopyToAsync(all, cts.Token);
        byte[] bytes = all.ToArray();
        int body = bytes.AsSpan().IndexOf("\r\n\r\n"u8) + 4;
        Assert.StartsWith("HTTP/1.1 101", System.Text.Encoding.ASCII.GetString(bytes, 0, body));
        var stdout = new StringBuilder();
        for (int pos = body; pos + 8 <= bytes.Length;)
        {
            int length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(pos + 4));
            if (bytes[pos] == 1) stdout.Append(System.Text.Encoding.UTF8.GetString(bytes, pos + 8, length));
            pos += 8 + length;
        }
        return stdout.ToString();
    }

    private static (string Out, string Err) Split((int Exit, string Out, string Err) result)
    {
        Assert.True(result.Exit == 0, result.Err);
        return (result.Out, result.Err);
    }

    [Fact]
    public async Task Bad_local_driver_options_are_refused_with_dockerds_errors()
    {
        using var dir = new TempDirectory("local-log");
        var (daemon, docker) = await StartAsync(dir);
        await using (daemon)
        {
            foreach (var (options, message) in new[]
            {
                (new[] { "foo=bar" }, "unknown log opt 'foo' for log driver local"),
                (["max-file=1"], "compression cannot be enabled when max file count is 1"),
                (["compress=maybe"], "invalid boolean value for compress: strconv.ParseBool: parsing \"maybe\": invalid syntax"),
                (["max-size=lots"], "invalid value for max-size: lots"),
                (["max-file=-2"], "max-file must not be negative"),
                // dockerd sets no bound; berth-monitor rotates through at most 1000 files, and says so at create.
                (["max-file=1001"], "invalid log opt max-file `1001`: berthd keeps at most 1000 log files per container"),
            })
            {
                var (exit, _, error) = docker.Run(["create", "--log-driver", "local", .. options.SelectMany(o => new[] { "--log-opt", o }), "busybox", "true"]);
                Assert.True(exit != 0, string.Join(' ', options));
                Assert.Contains(message, error);
            }
            // json-file keeps its own options: its error names it.
            Assert.Contains("unknown log opt 'foo' for json-file log driver", docker.Run("create", "--log-opt", "foo=bar", "busybox", "true").Err);
            Assert.Contains("invalid log opt max-file `5000`: berthd keeps at most 1000 log files per container",
                docker.Run("create", "--log-opt", "max-file=5000", "busybox", "true").Err);
            string one = docker.Ok("create", "--log-driver", "local", "--log-opt", "max-file=1", "--log-opt", "compress=false", "busybox", "true").Trim();
            Assert.Equal("local\n", docker.Ok("inspect", "-f", "{{.HostConfig.LogConfig.Type}}", one));
        }
    }

    [Fact]
    public async Task A_daemon_with_the_local_driver_gives_it_and_its_options_to_containers_that_name_none()
    {
        using var dir = new TempDirectory("local-log");
        var (daemon, docker) = await StartAsync(dir, "--log-driver", "local", "--log-opt", "max-file=2", "--log-opt", "compress=false");
        await using (daemon)
        {
            Assert.Equal("local\n", docker.Ok("info", "-f", "{{.LoggingDriver}}"));
            Assert.Contains("\"local\"", docker.Ok("info", "-f", "{{json .Plugins.Log}}"));
            Assert.Equal("out\n", docker.Ok("run", "--name", "defaulted", "busybox", "echo", "out"));
            Assert.Equal("local {\"compress\":\"false\",\"max-file\":\"2\"}\n",
                docker.Ok("inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}", "defaulted"));
            Assert.Equal("out\n", docker.Ok("logs", "defaulted"));
            // The daemon's compress=false makes a container's max-file=1 valid; json-file stays available.
            docker.Ok("create", "--log-opt", "max-file=1", "busybox", "true");
            Assert.Equal("json\n", docker.Ok("run", "--log-driver", "json-file", "--name", "json", "busybox", "echo", "json"));
            Assert.Equal("json\n", docker.Ok("logs", "json"));
        }
    }
}
