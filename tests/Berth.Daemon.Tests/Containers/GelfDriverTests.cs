using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// docker's gelf logging driver: the GELF messages a server receives (sockets the test holds) are the ones dockerd
/// 20.10 sends — the same JSON, byte for byte but for the times and IDs, compressed with gzip or zlib or not over udp,
/// chunked as go-gelf chunks when large, NUL-ended and plain over tcp; empty lines are not sent; docker logs reads the
/// dual-logging cache; a tcp server that cannot be reached fails the start, one that stalls does not hold the container
/// up in non-blocking mode.
/// </summary>
public sealed partial class GelfDriverTests : DockerCliTestBase
{
    [GeneratedRegex("\"timestamp\":[0-9.]+,")]
    private static partial Regex TimestampValue();

    [Fact]
    public async Task Udp_gets_a_gzip_message_per_non_empty_line_with_dockerds_fields_and_docker_logs_reads_the_cache()
    {
        using var udp = UdpReceiver(out int port);
        DockerCli docker = Docker();
        string id = docker.Ok("run", "-d", "--name", "gelf1", "--label", "lab1=v1", "-e", "E1=x", "--log-driver", "gelf",
            "--log-opt", $"gelf-address=udp://127.0.0.1:{port}", "--log-opt", "labels=lab1", "--log-opt", "env=E1",
            "busybox", "sh", "-c", "echo hello; sleep 0.2; echo 'err <&>' >&2; sleep 0.2; echo; printf 'x\\377y\\n'").Trim();
        byte[][] datagrams = [await ReceiveAsync(udp), await ReceiveAsync(udp), await ReceiveAsync(udp)];
        Assert.All(datagrams, d => Assert.Equal(new byte[] { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff }, d[..10]));   // Go's gzip header at BestSpeed
        string[] messages = datagrams.Select(d => Gunzip(d)).ToArray();
        docker.Ok("wait", id);
        string created = docker.Ok("inspect", "-f", "{{.Created}}", id).Trim();
        string image = docker.Ok("inspect", "-f", "{{.Image}}", id).Trim();

        // dockerd 20.10 sent, for the same run: {"version":"1.1","host":"vm","short_message":"err \u003c\u0026\u003e",
        // "timestamp":1796557601.272,"level":3,"_E1":"x","_command":"sh -c echo hello; …","_container_id":"6ebb…",
        // "_container_name":"g1","_created":"2026-12-06T11:46:40.932810494Z","_image_id":"sha256:2e22…",
        // "_image_name":"busybox","_lab1":"v1","_tag":"6ebbb9546836"}
        string extra = ",\"_E1\":\"x\",\"_command\":\"sh -c echo hello; sleep 0.2; echo 'err \\u003c\\u0026\\u003e' \\u003e\\u00262; sleep 0.2; echo; printf 'x\\\\377y\\\\n'\""
            + $",\"_container_id\":\"{id}\",\"_container_name\":\"gelf1\",\"_created\":\"{GoTime(created)}\",\"_image_id\":\"{image}\""
            + $",\"_image_name\":\"busybox\",\"_lab1\":\"v1\",\"_tag\":\"{id[..12]}\"}}";
        string Expected(string line, int level) => $"{{\"version\":\"1.1\",\"host\":\"{Dns.GetHostName()}\",\"short_message\":\"{line}\",\"timestamp\":T,\"level\":{level}" + extra;
        string[] normalized = messages.Select(m => TimestampValue().Replace(m, "\"timestamp\":T,")).ToArray();
        Assert.Equal(Expected("hello", 6), normalized[0]);
        Assert.Equal(Expected("err \\u003c\\u0026\\u003e", 3), normalized[1]);
        Assert.Equal(Expected("x\\ufffdy", 6), normalized[2]);     // the empty line was not sent; invalid UTF-8 as Go's json
        // Go's float64 of the milliseconds: seconds, then at most 3 digits without trailing zeros.
        Assert.All(messages, m => Assert.Matches("\"timestamp\":\\d{10}(\\.\\d{0,2}[1-9])?,", m));
        await Task.Delay(300);
        Assert.Equal(0, udp.Available);

        var (exit, logs, errors) = docker.Run("logs", id);
        Assert.Equal(0, exit);
        Assert.Equal("hello\n\nx\uFFFDy\n", logs);
        Assert.Equal("err <&>\n", errors);
        docker.Ok("rm", id);
    }

    [Fact]
    public async Task Udp_chunks_large_messages_as_go_gelf_and_zlib_or_none_compress()
    {
        using var udp = UdpReceiver(out int port);
        DockerCli docker = Docker();
        docker.Ok("run", "--rm", "--log-driver", "gelf", "--log-opt", $"gelf-address=udp://127.0.0.1:{port}", "--log-opt", "gelf-compression-type=zlib",
            "--log-opt", "tag={{.Name}}", "--name", "gelfz", "busybox", "echo", "zz");
        byte[] zlib = await ReceiveAsync(udp);
        Assert.Equal(new byte[] { 0x78, 0x01 }, zlib[..2]);
        using (var z = new ZLibStream(new MemoryStream(zlib), CompressionMode.Decompress))
        using (var r = new StreamReader(z))
            Assert.Contains("\"short_message\":\"zz\"", await r.ReadToEndAsync(), StringComparison.Ordinal);

        // 3000 bytes uncompressed: go-gelf's chunks of 1420 bytes (12 of header), 0x1e 0x0f, one message ID, index and count.
        docker.Ok("run", "--rm", "--log-driver", "gelf", "--log-opt", $"gelf-address=udp://127.0.0.1:{port}", "--log-opt", "gelf-compression-type=none",
            "busybox", "sh", "-c", "head -c 3000 /dev/zero | tr '\\0' a; echo");
        byte[] first = await ReceiveAsync(udp);
        Assert.Equal(new byte[] { 0x1e, 0x0f }, first[..2]);
        int count = first[11];
        var chunks = new List<byte[]> { first };
        for (int i = 1; i < count; i++) chunks.Add(await ReceiveAsync(udp));
        Assert.All(chunks, c => Assert.Equal(first[2..10], c[2..10]));
        Assert.Equal(Enumerable.Range(0, count), chunks.Select(c => (int)c[10]));
        Assert.All(chunks.SkipLast(1), c => Assert.Equal(1420, c.Length));
        string json = Encoding.UTF8.GetString(chunks.SelectMany(c => c[12..]).ToArray());
        Assert.Equal(json.Length / 1408 + 1, count);
        Assert.StartsWith("{\"version\":\"1.1\",", json, StringComparison.Ordinal);
        Assert.Contains($"\"short_message\":\"{new string('a', 3000)}\"", json, StringComparison.Ordinal);
        Assert.EndsWith("}", json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tcp_gets_plain_nul_ended_messages_and_a_stalled_server_does_not_hold_the_container_up_in_non_blocking_mode()
    {
        using var tcp = TcpListener(out int port);
        DockerCli docker = Docker();
        Task<byte[]> received = ReadUntilAsync(tcp, nuls: 2);
        string id = docker.Ok("run", "-d", "--log-driver", "gelf", "--log-opt", $"gelf-address=tcp://localhost:{port}",
            "busybox", "sh", "-c", "echo one; echo two >&2").Trim();
        string[] messages = Encoding.UTF8.GetString(await received.WaitAsync(TimeSpan.FromSeconds(30))).Split('\0');
        // dockerd 20.10: {"version":"1.1",…,"short_message":"one",…}\0{…"short_message":"two",…,"level":3,…}\0
        Assert.Equal(3, messages.Length);
        Assert.Equal("", messages[2]);
        Assert.Matches("^\\{\"version\":\"1.1\",\"host\":\"[^\"]+\",\"short_message\":\"one\",\"timestamp\":[0-9.]+,\"level\":6,\"_command\":\"sh -c echo one; echo two \\\\u003e\\\\u00262\",\"_container_id\":\"" + id + "\",", messages[0]);
        Assert.Contains("\"short_message\":\"two\"", messages[1], StringComparison.Ordinal);
        Assert.Contains("\"level\":3,", messages[1], StringComparison.Ordinal);
        docker.Ok("rm", "-f", id);

        // A server that accepts and never reads: in non-blocking mode 32 MiB of output still go through at once (LogModeTests: blocking waits).
        using var stalled = TcpListener(out int stalledPort);
        var accepted = stalled.AcceptAsync();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (exit, _, stderr) = docker.Run("run", "--rm", "--log-driver", "gelf", "--log-opt", $"gelf-address=tcp://127.0.0.1:{stalledPort}",
            "--log-opt", "cache-disabled=true", "--log-opt", "mode=non-blocking", "busybox", "sh", "-c", "head -c 33554432 /dev/zero | tr '\\0' 'a'; echo done");
        Assert.True(exit == 0, stderr);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"took {watch.Elapsed}");
        (await accepted).Dispose();
    }

    [Fact]
    public async Task Tcp_connects_again_when_the_server_closes_the_connection()
    {
        using var tcp = TcpListener(out int port);
        DockerCli docker = Docker();
        Task<byte[]> first = ReadUntilAsync(tcp, nuls: 1);
        string id = docker.Ok("run", "-d", "--log-driver", "gelf", "--log-opt", $"gelf-address=tcp://127.0.0.1:{port}", "--log-opt", "gelf-tcp-reconnect-delay=0",
            "busybox", "sh", "-c", "echo one; sleep 1; echo two; echo three").Trim();
        Assert.Contains("\"short_message\":\"one\"", Encoding.UTF8.GetString(await first.WaitAsync(TimeSpan.FromSeconds(30))), StringComparison.Ordinal);
        // The first connection is closed once "one" is read: the next messages come on a new one, whole.
        string[] rest = Encoding.UTF8.GetString(await ReadUntilAsync(tcp, nuls: 2).WaitAsync(TimeSpan.FromSeconds(30))).Split('\0');
        Assert.Contains("\"short_message\":\"two\"", rest[0], StringComparison.Ordinal);
        Assert.Contains("\"short_message\":\"three\"", rest[1], StringComparison.Ordinal);
        Assert.All(rest[..2], m => Assert.StartsWith("{\"version\":\"1.1\",", m, StringComparison.Ordinal));
        docker.Ok("rm", "-f", id);
    }

    [Fact]
    public void Bad_options_and_an_unreachable_server_are_refused_in_dockerds_words()
    {
        DockerCli docker = Docker();
        (string[] Options, string Error)[] refused =
        [
            ([], "gelf-address is a required parameter"),
            (["gelf-address=http://127.0.0.1:1"], "gelf: endpoint needs to be TCP or UDP"),
            (["gelf-address=udp://127.0.0.1"], "gelf: please provide gelf-address as proto://host:port"),
            (["gelf-address=tcp://127.0.0.1:1", "gelf-compression-type=zlib"], "compression is only supported on UDP"),
            (["gelf-address=udp://127.0.0.1:1", "gelf-compression-type=lz4"], "unknown value \"lz4\" for log opt \"gelf-compression-type\" for gelf log driver"),
            (["gelf-address=udp://127.0.0.1:1", "gelf-compression-level=10"], "unknown value \"10\" for log opt \"gelf-compression-level\" for gelf log driver"),
            (["gelf-address=udp://127.0.0.1:1", "gelf-tcp-max-reconnect=1"], "\"gelf-tcp-max-reconnect\" is only valid for TCP"),
            (["gelf-address=tcp://127.0.0.1:1", "gelf-tcp-reconnect-delay=-1"], "\"gelf-tcp-reconnect-delay\" must be a positive integer"),
            (["gelf-address=udp://127.0.0.1:1", "foo=bar"], "unknown log opt \"foo\" for gelf log driver"),
        ];
        LogDriverChecks.AssertRefusedAtCreate(docker, "gelf", refused);

        using Socket closed = LogDriverChecks.ClosedTcpPort(out int port);
        var (runExit, _, runError) = docker.Run("run", "--rm", "--log-driver", "gelf", "--log-opt", $"gelf-address=tcp://127.0.0.1:{port}", "busybox", "true");
        Assert.True(runExit != 0 && runError.Contains($"failed to initialize logging driver: gelf: cannot connect to GELF endpoint: 127.0.0.1:{port} dial tcp 127.0.0.1:{port}: connect: connection refused", StringComparison.Ordinal), runError);
    }

    private static Socket UdpReceiver(out int port)
    {
        var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        port = ((IPEndPoint)udp.LocalEndPoint!).Port;
        return udp;
    }

    private static Socket TcpListener(out int port)
    {
        var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        tcp.Listen();
        port = ((IPEndPoint)tcp.LocalEndPoint!).Port;
        return tcp;
    }

    private static async Task<byte[]> ReceiveAsync(Socket socket)
    {
        var buffer = new byte[65536];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return buffer[..n];
    }

    private static async Task<byte[]> ReadUntilAsync(Socket listener, int nuls)
    {
        using Socket connection = await listener.AcceptAsync();
        var data = new List<byte>();
        var buffer = new byte[4096];
        while (data.Count(b => b == 0) < nuls)
        {
            int n = await connection.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0) break;
            data.AddRange(buffer[..n]);
        }
        return [.. data];
    }

    private static string Gunzip(byte[] data)
    {
        using var gz = new GZipStream(new MemoryStream(data), CompressionMode.Decompress);
        using var r = new StreamReader(gz);
        return r.ReadToEnd();
    }

    /// <summary>inspect's Created as Go's time.Time marshals it (the fraction's trailing zeros left out).</summary>
    private static string GoTime(string created)
    {
        Match m = Regex.Match(created, @"^(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$");
        string fraction = m.Groups[2].Value.TrimEnd('0');
        return m.Groups[1].Value + (fraction == "." ? "" : fraction) + "Z";
    }
}
