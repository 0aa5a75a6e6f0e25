using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// docker's syslog logging driver: the messages a syslog receives (on sockets the test holds) are
/// srslog's, as dockerd sends them — priority from the facility and the stream, timestamp, header,
/// line, newline — in each format and over unixgram, udp and tcp; docker logs reads the dual-logging
/// cache; a syslog that cannot be reached fails the start in dockerd's words.
/// </summary>
public sealed class SyslogDriverTests : DockerCliTestBase
{
    private static readonly string Pid = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Unixgram_gets_one_datagram_per_line_in_the_default_format_and_docker_logs_reads_the_cache()
    {
        using var dir = new TempDirectory("syslog");
        string path = dir.Combine("log.sock");
        using var receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        receiver.Bind(new UnixDomainSocketEndPoint(path));

        DockerCli docker = Docker();
        string id = docker.Ok("run", "-d", "--name", "sl1", "--log-driver", "syslog", "--log-opt", "syslog-address=unixgram://" + path,
            "--log-opt", "tag={{.Name}}/{{.ID}}", "--log-opt", "syslog-facility=local0",
            "busybox", "sh", "-c", "echo out; sleep 0.2; echo err >&2").Trim();
        string[] messages = [await ReceiveAsync(receiver), await ReceiveAsync(receiver)];
        // local0 (16) × 8 + info (6) for stdout, + err (3) for stderr; srslog's unix format has no hostname.
        // dockerd 20.10 sent "<134>Dec  6 09:40:58 sl1/21274ee8d40f[17523]: out\n" for the same run.
        string header = Regex.Escape($"sl1/{id[..12]}[{Pid}]: ");
        Assert.Matches(@"^<134>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d " + header + "out\n$", messages[0]);
        Assert.Matches(@"^<131>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d " + header + "err\n$", messages[1]);

        docker.Ok("wait", "sl1");
        var (exit, logs, errors) = docker.Run("logs", "sl1");
        Assert.Equal(0, exit);
        Assert.Equal("out\n", logs);
        Assert.Equal("err\n", errors);
        docker.Ok("rm", "sl1");
    }

    [Fact]
    public async Task Udp_gets_rfc5424micro_and_tcp_rfc3164_lines()
    {
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int udpPort = ((IPEndPoint)udp.LocalEndPoint!).Port;
        DockerCli docker = Docker();
        docker.Ok("run", "--rm", "--log-driver", "syslog", "--log-opt", $"syslog-address=udp://127.0.0.1:{udpPort}",
            "--log-opt", "syslog-format=rfc5424micro", "busybox", "echo", "hello");
        string message = await ReceiveAsync(udp);
        // dockerd 20.10 sent "<30>1 2026-12-06T09:40:59.086862Z vm 51285c956c02 17523 51285c956c02 - hello\n" (no length prefix: that is TLS's).
        Match m = Regex.Match(message, @"^<30>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d) (\S+) ([0-9a-f]{12}) " + Pid + @" \3 - hello\n$");
        Assert.True(m.Success, message);
        Assert.Equal(Dns.GetHostName(), m.Groups[2].Value);

        using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        tcp.Listen();
        int tcpPort = ((IPEndPoint)tcp.LocalEndPoint!).Port;
        Task<string> received = ReceiveStreamAsync(tcp, lines: 2);
        string container = docker.Ok("run", "-d", "--log-driver", "syslog", "--log-opt", $"syslog-address=tcp://localhost:{tcpPort}",
            "--log-opt", "syslog-format=rfc3164", "busybox", "sh", "-c", "echo one; echo two").Trim();
        string[] lines = (await received.WaitAsync(TimeSpan.FromSeconds(30))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string prefix = @"^<30>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d " + Regex.Escape($"{Dns.GetHostName()} {container[..12]}[{Pid}]: ");
        Assert.Matches(prefix + "one$", lines[0]);
        Assert.Matches(prefix + "two$", lines[1]);
        docker.Ok("rm", "-f", container);
    }

    [Fact]
    public void Bad_options_and_an_unreachable_syslog_are_refused_in_dockerds_words()
    {
        DockerCli docker = Docker();
        (string Option, string Error)[] refused =
        [
            ("syslog-format=bogus", "Invalid syslog format"),
            ("syslog-facility=nonsense", "invalid syslog facility"),
            ("syslog-address=http://127.0.0.1:1", "unsupported scheme: 'http'"),
            ("syslog-address=unixgram:///nonexistent/log.sock", "stat /nonexistent/log.sock: no such file or directory"),
            ("max-size=10m", "unknown log opt 'max-size' for syslog log driver"),
            ("tag={{.Nope}}", "can't evaluate field Nope"),
            ("cache-max-file=x", "invalid value for max-file: x"),
        ];
        LogDriverChecks.AssertRefusedAtCreate(docker, "syslog", refused);

        // A port nobody listens on: the start fails, and says why.
        using Socket closed = LogDriverChecks.ClosedTcpPort(out int port);
        var (runExit, _, runError) = docker.Run("run", "--rm", "--log-driver", "syslog", "--log-opt", $"syslog-address=tcp://127.0.0.1:{port}", "busybox", "true");
        Assert.True(runExit != 0 && runError.Contains($"failed to initialize logging driver: dial tcp 127.0.0.1:{port}: connect: connection refused", StringComparison.Ordinal), runError);

        // cache-disabled: nothing for docker logs to read, as dockerd.
        using var dir = new TempDirectory("syslog-nocache");
        using var receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        receiver.Bind(new UnixDomainSocketEndPoint(dir.Combine("log.sock")));
        docker.Ok("run", "--name", "nocache", "--log-driver", "syslog", "--log-opt", "syslog-address=unixgram://" + dir.Combine("log.sock"),
            "--log-opt", "cache-disabled=true", "busybox", "echo", "x");
        var (logsExit, _, logsError) = docker.Run("logs", "nocache");
        Assert.True(logsExit != 0 && logsError.Contains("does not support reading", StringComparison.Ordinal), logsError);
        docker.Ok("rm", "nocache");
    }

    private static async Task<string> ReceiveAsync(Socket socket)
    {
        var buffer = new byte[65536];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    private static async Task<string> ReceiveStreamAsync(Socket listener, int lines)
    {
        using Socket connection = await listener.AcceptAsync();
        var text = new StringBuilder();
        var buffer = new byte[4096];
        while (text.ToString().Count(c => c == '\n') < lines)
        {
            int n = await connection.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0) break;
            text.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }
        return text.ToString();
    }
}
