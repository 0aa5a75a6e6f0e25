using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// dockerd's log modes against a log server that accepts and never reads: in blocking mode (the default) the
/// container's writes wait for the server, and once it reads it gets every line, in order; in non-blocking mode the
/// container runs to its end, what the buffer (max-buffer-size) could not hold is dropped, and what arrives is whole
/// messages in order; the log file and dockerd's cache keep every line either way.
/// </summary>
public sealed partial class LogModeTests : DockerCliTestBase
{
    private const int Lines = 40000;

    // 40000 lines of 509 bytes (about 20 MB): far more than the socket buffers and the 1 MB ring hold.
    private static readonly string[] Writer = ["awk", $"BEGIN {{ s = sprintf(\"%500s\", \"\"); gsub(/ /, \"a\", s); for (i = 0; i < {Lines}; i++) printf \"%08d %s\\n\", i, s }}"];

    [Theory]
    [InlineData("fluentd")]
    [InlineData("syslog")]
    [InlineData("gelf")]
    public async Task Non_blocking_mode_drops_what_a_stalled_server_does_not_take_and_the_container_runs_to_its_end(string driver)
    {
        using Socket listener = Listener(out int port);
        Task<Socket> accepted = listener.AcceptAsync();
        DockerCli docker = Docker();
        string id = docker.Ok(["run", "-d", "--log-driver", driver, .. AddressOption(driver, port), "--log-opt", "mode=non-blocking",
            "--log-opt", "max-buffer-size=64k", "busybox", .. Writer]).Trim();
        try
        {
            using Socket connection = await accepted.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(WaitForExit(docker, id, TimeSpan.FromSeconds(60)), "the container was held up by a log server that does not read");
            Assert.Equal("0", docker.Ok("inspect", "-f", "{{.State.ExitCode}}", id).Trim());

            List<int> numbers = Numbers(driver, await ReadToEndAsync(connection));
            Assert.True(numbers.Count is > 0 and < Lines, $"{numbers.Count} of {Lines} lines arrived: nothing was dropped");
            Assert.Equal(numbers.Order(), numbers);                        // in order, none twice
            Assert.Equal(numbers.Count, numbers.Distinct().Count());

            // The cache docker logs reads is written as the output comes, outside the buffer: every line.
            Assert.Equal(Lines, CountLines(docker, id));
        }
        finally
        {
            docker.Run("rm", "-f", id);
        }
    }

    [Theory]
    [InlineData("fluentd")]
    [InlineData("syslog")]
    [InlineData("gelf")]
    public async Task Blocking_mode_holds_the_container_while_the_server_does_not_read_and_then_delivers_every_line(string driver)
    {
        using Socket listener = Listener(out int port);
        Task<Socket> accepted = listener.AcceptAsync();
        DockerCli docker = Docker();
        string id = docker.Ok(["run", "-d", "--log-driver", driver, .. AddressOption(driver, port), "--log-opt", "mode=blocking", "busybox", .. Writer]).Trim();
        try
        {
            using Socket connection = await accepted.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.False(WaitForExit(docker, id, TimeSpan.FromSeconds(4)), "the container ran to its end while its log server read nothing");

            Task<byte[]> received = ReadToEndAsync(connection);
            Assert.True(WaitForExit(docker, id, TimeSpan.FromSeconds(60)), "the container stayed blocked while its log server read");
            Assert.Equal("0", docker.Ok("inspect", "-f", "{{.State.ExitCode}}", id).Trim());
            Assert.Equal(Enumerable.Range(0, Lines), Numbers(driver, await received.WaitAsync(TimeSpan.FromSeconds(30))));
        }
        finally
        {
            docker.Run("rm", "-f", id);
        }
    }

    [Theory]
    [InlineData("json-file")]
    [InlineData("local")]
    public void Non_blocking_mode_keeps_every_line_of_a_log_file_the_disk_keeps_up_with(string driver)
    {
        DockerCli docker = Docker();
        string id = docker.Ok(["run", "-d", "--log-driver", driver, "--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=4k",
            "--log-opt", "max-size=100m", "busybox", .. Writer]).Trim();
        try
        {
            Assert.True(WaitForExit(docker, id, TimeSpan.FromSeconds(60)));
            Assert.Equal(Lines, CountLines(docker, id));
            Assert.Contains("\"mode\":\"non-blocking\"", docker.Ok("inspect", "-f", "{{json .HostConfig.LogConfig.Config}}", id), StringComparison.Ordinal);
        }
        finally
        {
            docker.Run("rm", "-f", id);
        }
    }

    [Fact]
    public void Bad_mode_options_get_dockerds_errors()
    {
        DockerCli docker = Docker();
        LogDriverChecks.AssertRefusedAtCreate(docker, "json-file", new (string[], string)[]
        {
            (["mode=fast"], "logger: logging mode not supported: fast"),
            (["max-buffer-size=4m"], "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
            (["mode=blocking", "max-buffer-size=4m"], "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
            (["mode=non-blocking", "max-buffer-size=lots"], "error parsing option max-buffer-size: invalid size: 'lots'"),
        });
        // The mode's options are every driver's, not the driver's own.
        docker.Ok("rm", docker.Ok("create", "--log-driver", "local", "--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=2m", "busybox").Trim());
    }

    internal static string[] AddressOption(string driver, int port) => driver switch
    {
        "fluentd" => ["--log-opt", $"fluentd-address=127.0.0.1:{port}"],
        "syslog" => ["--log-opt", $"syslog-address=tcp://127.0.0.1:{port}"],
        _ => ["--log-opt", $"gelf-address=tcp://127.0.0.1:{port}"],
    };

    internal static Socket Listener(out int port)
    {
        var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        tcp.Listen();
        port = ((IPEndPoint)tcp.LocalEndPoint!).Port;
        return tcp;
    }

    internal static bool WaitForExit(DockerCli docker, string id, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        do
        {
            if (docker.Ok("inspect", "-f", "{{.State.Running}}", id).Trim() == "false") return true;
            Thread.Sleep(200);
        }
        while (watch.Elapsed < timeout);
        return false;
    }

    private static int CountLines(DockerCli docker, string id)
    {
        var (exit, output, error) = docker.Shell($"\"$DOCKER\" logs {id} | wc -l");
        Assert.True(exit == 0, error);
        return int.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<byte[]> ReadToEndAsync(Socket connection)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var data = new MemoryStream();
        var buffer = new byte[1 << 16];
        int n;
        while ((n = await connection.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0) data.Write(buffer, 0, n);
        return data.ToArray();
    }

    /// <summary>
    /// The line numbers of the messages received, each message checked whole: a fluentd record, a syslog line or a
    /// GELF document whose line is one the container wrote. Only the very end may be a message the connection's close
    /// cut (what a server discards), never one in the middle.
    /// </summary>
    private static List<int> Numbers(string driver, byte[] data)
    {
        var lines = new List<string>();
        if (driver == "fluentd")
        {
            int at = 0;
            while (at < data.Length)
            {
                int start = at;
                object?[] message;
                try { message = (object?[])FluentForward.Decode(data, ref at)!; }
                catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException)
                {
                    Assert.True(data.Length - start < 4096, $"a message cut at {start} of {data.Length} bytes");
                    break;
                }
                lines.Add(((Dictionary<string, string>)message[2]!)["log"]);
            }
        }
        else
        {
            string text = Encoding.UTF8.GetString(data);
            string[] parts = text.Split(driver == "syslog" ? '\n' : '\0');
            foreach (string part in parts[..^1])       // the last: after the last separator, empty or cut
            {
                if (driver == "syslog")
                {
                    Match m = SyslogLine().Match(part);
                    Assert.True(m.Success, part);
                    lines.Add(m.Groups[1].Value);
                }
                else
                {
                    using var json = JsonDocument.Parse(part);
                    lines.Add(json.RootElement.GetProperty("short_message").GetString()!);
                }
            }
        }
        Assert.All(lines, line => Assert.Matches("^[0-9]{8} a{500}$", line));
        return lines.Select(line => int.Parse(line[..8], System.Globalization.CultureInfo.InvariantCulture)).ToList();
    }

    [GeneratedRegex(@"^<\d+>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [0-9a-f]{12}\[\d+\]: (.*)$")]
    private static partial Regex SyslogLine();
}
