using System.Net;
using System.Net.Sockets;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// docker's fluentd logging driver: what a Forward-protocol server receives (sockets the test holds) is what dockerd
/// 20.10 sends through fluent-logger-golang — [tag, time, record, {}] in msgpack, the record's fields and partial
/// metadata, whole seconds or EventTime — over tcp and unix sockets; docker logs reads the dual-logging cache; an
/// unreachable fluentd fails the start unless fluentd-async, which delivers once it is up.
/// </summary>
public sealed class FluentdDriverTests : DockerCliTestBase
{
    [Fact]
    public async Task Tcp_gets_dockerds_messages_with_the_record_fields_and_docker_logs_reads_the_cache()
    {
        using var server = Listener(out int port);
        Task<List<object?[]>> received = ReadMessagesAsync(server, count: 4);
        DockerCli docker = Docker();
        string id = docker.Ok("run", "-d", "--name", "fl1", "--label", "lab1=v1", "-e", "E1=x", "--log-driver", "fluentd",
            "--log-opt", $"fluentd-address=127.0.0.1:{port}", "--log-opt", "labels=lab1", "--log-opt", "env=E1",
            "busybox", "sh", "-c", "echo hello; sleep 0.2; echo 'err <&>' >&2; sleep 0.2; echo; sleep 0.2; printf nonl").Trim();
        List<object?[]> messages = await received.WaitAsync(TimeSpan.FromSeconds(30));
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        // dockerd 20.10: [ "f05d17c9a8e9", 1796557612 (0xd2), {container_id, container_name "/f1", source, log, lab1, E1}, {} ]
        Assert.All(messages, m =>
        {
            Assert.Equal(4, m.Length);
            Assert.Equal(id[..12], m[0]);
            Assert.InRange((long)m[1]!, now - 30, now + 1);
            Assert.Equal(new Dictionary<string, string>(), m[3]);
        });
        var records = messages.Select(m => (Dictionary<string, string>)m[2]!).ToList();
        var common = new Dictionary<string, string> { ["container_id"] = id, ["container_name"] = "/fl1", ["lab1"] = "v1", ["E1"] = "x" };
        Assert.Equal(With(common, ("source", "stdout"), ("log", "hello")), records[0]);
        Assert.Equal(With(common, ("source", "stderr"), ("log", "err <&>")), records[1]);
        Assert.Equal(With(common, ("source", "stdout"), ("log", "")), records[2]);      // fluentd gets empty lines, gelf does not
        // Output that ends without a newline is a partial message, as dockerd's copier makes it.
        Assert.Equal("nonl", records[3]["log"]);
        Assert.Equal("true", records[3]["partial_message"]);
        Assert.Equal("1", records[3]["partial_ordinal"]);
        Assert.Equal("false", records[3]["partial_last"]);
        Assert.Matches("^[0-9a-f]{64}$", records[3]["partial_id"]);

        docker.Ok("wait", id);
        var (exit, logs, errors) = docker.Run("logs", id);
        Assert.Equal(0, exit);
        Assert.Equal("hello\n\nnonl", logs);
        Assert.Equal("err <&>\n", errors);
        docker.Ok("rm", id);
    }

    [Fact]
    public async Task Sub_second_precision_sends_event_time_and_long_lines_go_in_parts_over_a_unix_socket()
    {
        using var dir = new TempDirectory("fluentd");
        string path = dir.Combine("fluentd.sock");
        using var server = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        server.Bind(new UnixDomainSocketEndPoint(path));
        server.Listen();
        Task<List<object?[]>> received = ReadMessagesAsync(server, count: 2);
        DockerCli docker = Docker();
        docker.Ok("run", "--rm", "--name", "fl2", "--log-driver", "fluentd", "--log-opt", "fluentd-address=unix://" + path,
            "--log-opt", "fluentd-sub-second-precision=true", "--log-opt", "tag=a.{{.Name}}",
            "busybox", "sh", "-c", "head -c 17000 /dev/zero | tr '\\0' a; echo");
        List<object?[]> messages = await received.WaitAsync(TimeSpan.FromSeconds(30));
        // dockerd 20.10: EventTime (fixext8, type 0), the same for both parts of the line, which are 16 KiB and the rest.
        Assert.All(messages, m => Assert.Equal("a.fl2", m[0]));
        var time = Assert.IsType<(long, long)>(messages[0][1]);
        Assert.Equal(time, messages[1][1]);
        Assert.InRange(time.Item1, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 30, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        var first = (Dictionary<string, string>)messages[0][2]!;
        var last = (Dictionary<string, string>)messages[1][2]!;
        Assert.Equal(16384, first["log"].Length);
        Assert.Equal(17000 - 16384, last["log"].Length);
        Assert.Equal(("1", "false", "2", "true"), (first["partial_ordinal"], first["partial_last"], last["partial_ordinal"], last["partial_last"]));
        Assert.Equal(first["partial_id"], last["partial_id"]);
    }

    [Fact]
    public async Task An_unreachable_fluentd_fails_the_start_unless_async_which_delivers_once_it_is_up()
    {
        DockerCli docker = Docker();
        int port;
        using (var probe = Listener(out port)) { }
        var (exit, _, stderr) = docker.Run("run", "--rm", "--log-driver", "fluentd", "--log-opt", $"fluentd-address=tcp://127.0.0.1:{port}", "busybox", "true");
        // dockerd 20.10: "failed to initialize logging driver: dial tcp 127.0.0.1:24225: connect: connection refused"
        Assert.True(exit != 0 && stderr.Contains($"failed to initialize logging driver: dial tcp 127.0.0.1:{port}: connect: connection refused", StringComparison.Ordinal), stderr);

        string id = docker.Ok("run", "-d", "--log-driver", "fluentd", "--log-opt", $"fluentd-address=127.0.0.1:{port}", "--log-opt", "fluentd-async=true",
            "--log-opt", "fluentd-retry-wait=100ms", "busybox", "sh", "-c", "echo early; sleep 1; echo late; sleep 30").Trim();
        await Task.Delay(300);
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        server.Bind(new IPEndPoint(IPAddress.Loopback, port));
        server.Listen();
        List<object?[]> messages = await ReadMessagesAsync(server, count: 2).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(["early", "late"], messages.Select(m => ((Dictionary<string, string>)m[2]!)["log"]));
        docker.Ok("rm", "-f", id);
    }

    [Fact]
    public async Task Request_ack_sends_each_message_with_a_chunk_id_and_the_next_only_once_fluentd_acknowledged_it()
    {
        using var server = Listener(out int port);
        DockerCli docker = Docker();
        string id = docker.Ok("run", "-d", "--log-driver", "fluentd", "--log-opt", $"fluentd-address=127.0.0.1:{port}",
            "--log-opt", "fluentd-request-ack=true", "busybox", "sh", "-c", "echo one; echo two; echo three").Trim();
        try
        {
            using var first = new FluentForward.Connection(await server.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(30)));
            object?[] one = await first.NextAsync();
            // fluent-logger-golang's option {"chunk": base64 of 16 bytes}; dockerd 20.10 sent e.g. {"chunk":"kH5+aQAAAAA3lYw9dn1DMw=="}.
            string chunk = Chunk(one);
            Assert.Matches("^[A-Za-z0-9+/]{22}==$", chunk);
            Assert.Equal("one", Log(one));
            Assert.False(first.Receives(TimeSpan.FromSeconds(1)), "the next message came before the first one's ack");

            // An ack of another chunk: the connection is given up and the message sent again, whole, on a new one.
            await first.Socket.SendAsync(FluentForward.Ack("AAAAAAAAAAAAAAAAAAAAAA=="));
            await Assert.ThrowsAsync<EndOfStreamException>(first.NextAsync);
            using var second = new FluentForward.Connection(await server.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(30)));
            object?[] again = await second.NextAsync();
            Assert.Equal((chunk, "one"), (Chunk(again), Log(again)));

            var logs = new List<string>();
            var chunks = new HashSet<string> { chunk };
            await second.Socket.SendAsync(FluentForward.Ack(chunk));
            for (int k = 0; k < 2; k++)
            {
                object?[] message = await second.NextAsync();
                logs.Add(Log(message));
                Assert.True(chunks.Add(Chunk(message)), "a chunk id came twice");
                await second.Socket.SendAsync(FluentForward.Ack(Chunk(message)));
            }
            Assert.Equal(["two", "three"], logs);
            Assert.True(LogModeTests.WaitForExit(docker, id, TimeSpan.FromSeconds(30)));
        }
        finally
        {
            docker.Run("rm", "-f", id);
        }
    }

    private static string Chunk(object?[] message) => ((Dictionary<string, string>)message[3]!)["chunk"];

    private static string Log(object?[] message) => ((Dictionary<string, string>)message[2]!)["log"];

    [Fact]
    public void Bad_options_are_refused_in_dockerds_words()
    {
        DockerCli docker = Docker();
        (string Option, string Error)[] refused =
        [
            ("fluentd-retry-wait=x", "time: invalid duration \"x\""),
            ("fluentd-buffer-limit=x", "invalid size: 'x'"),
            ("fluentd-address=http://x", "invalid fluentd-address http://x: strconv.Atoi: parsing \"//x\": invalid syntax"),
            ("fluentd-max-retries=-1", "strconv.ParseUint: parsing \"-1\": invalid syntax"),
            ("fluentd-async=x", "strconv.ParseBool: parsing \"x\": invalid syntax"),
            ("foo=bar", "unknown log opt 'foo' for fluentd log driver"),
            ("fluentd-request-ack=maybe", "strconv.ParseBool: parsing \"maybe\": invalid syntax"),
        ];
        LogDriverChecks.AssertRefusedAtCreate(docker, "fluentd", refused);
    }

    private static Dictionary<string, string> With(Dictionary<string, string> common, params (string Key, string Value)[] more)
    {
        var d = new Dictionary<string, string>(common);
        foreach (var (k, v) in more) d[k] = v;
        return d;
    }

    private static Socket Listener(out int port)
    {
        var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        tcp.Listen();
        port = ((IPEndPoint)tcp.LocalEndPoint!).Port;
        return tcp;
    }

    /// <summary>The first connection's messages: each an array whose strings, integers, EventTimes (seconds, nanoseconds) and string maps are decoded.</summary>
    private static async Task<List<object?[]>> ReadMessagesAsync(Socket listener, int count)
    {
        using Socket connection = await listener.AcceptAsync();
        var data = new List<byte>();
        var buffer = new byte[65536];
        var messages = new List<object?[]>();
        while (messages.Count < count)
        {
            int n = await connection.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0) throw new EndOfStreamException($"connection closed after {messages.Count} messages");
            data.AddRange(buffer[..n]);
            for (;;)
            {
                int at = 0;
                byte[] bytes = [.. data];
                object? value;
                try { value = FluentForward.Decode(bytes, ref at); }
                catch (IndexOutOfRangeException) { break; }     // not all of it yet
                catch (ArgumentOutOfRangeException) { break; }
                messages.Add((object?[])value!);
                data.RemoveRange(0, at);
                if (data.Count == 0) break;
            }
        }
        return messages;
    }
}
