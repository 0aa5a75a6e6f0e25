using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Berth.Cli.Tests;

/// <summary>
/// The API version berth asks for: its own (1.47) without a ping first, and, when the daemon says
/// that is too new, the version <c>/_ping</c> names, the refused request sent again with its body.
/// The daemon here is a fake on a unix socket that logs each request and answers like dockerd
/// (a 400 whose connection is closed without reading the request's body).
/// </summary>
public sealed class ApiVersionTests
{
    [Fact]
    public async Task A_current_daemon_gets_each_request_once_and_no_ping()
    {
        await using var daemon = FakeDaemon.Start(apiVersion: "1.51");
        CliResult ps = daemon.Berth("ps", "-q");
        Assert.True(ps.ExitCode == 0, ps.ToString());
        Assert.Equal(["GET /v1.47/containers/json"], daemon.RequestLines.Select(PathOnly));
    }

    [Fact]
    public async Task An_older_daemon_gets_the_request_again_at_its_own_version()
    {
        await using var daemon = FakeDaemon.Start(apiVersion: "1.41");
        CliResult ps = daemon.Berth("ps", "-q");
        Assert.True(ps.ExitCode == 0, ps.ToString());
        Assert.Equal(["GET /v1.47/containers/json", "GET /_ping", "GET /v1.41/containers/json"], daemon.RequestLines.Select(PathOnly));

        daemon.RequestLines.Clear();
        CliResult create = daemon.Berth("volume", "create", "--label", "a=b", "data");
        Assert.True(create.ExitCode == 0, create.ToString());
        Assert.Equal("data\n", create.Stdout);
        Assert.Equal(["POST /v1.47/volumes/create", "GET /_ping", "POST /v1.41/volumes/create"], daemon.RequestLines.Select(PathOnly));
        Assert.Contains("\"Labels\":{\"a\":\"b\"}", daemon.LastBody);
    }

    [Fact]
    public async Task A_400_of_a_current_daemon_is_reported_as_it_came()
    {
        await using var daemon = FakeDaemon.Start(apiVersion: "1.51");
        CliResult create = daemon.Berth("volume", "create", "bad");
        Assert.Equal(1, create.ExitCode);
        Assert.Equal("Error response from daemon: volume name is bad\n", create.Stderr);
        Assert.Equal(["POST /v1.47/volumes/create", "GET /_ping"], daemon.RequestLines.Select(PathOnly));
    }

    private static string PathOnly(string requestLine)
    {
        string[] parts = requestLine.Split(' ');
        return parts[0] + " " + parts[1].Split('?')[0];
    }

    private sealed class FakeDaemon : IAsyncDisposable
    {
        private readonly TempDirectory _dir = new("fake-daemon");
        private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        private readonly string _apiVersion;
        private Task _serving = Task.CompletedTask;

        private FakeDaemon(string apiVersion) => _apiVersion = apiVersion;

        public List<string> RequestLines { get; } = [];
        public string LastBody { get; private set; } = "";
        private string SocketPath => _dir.Combine("fake.sock");

        public static FakeDaemon Start(string apiVersion)
        {
            var daemon = new FakeDaemon(apiVersion);
            daemon._listener.Bind(new UnixDomainSocketEndPoint(daemon.SocketPath));
            daemon._listener.Listen();
            daemon._serving = daemon.ServeAsync();
            return daemon;
        }

        public CliResult Berth(params string[] args)
        {
            var start = new ProcessStartInfo(BerthCli.Binary)
            {
                UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            };
            foreach (string a in args) start.ArgumentList.Add(a);
            start.Environment["BERTH_HOST"] = "unix://" + SocketPath;
            start.Environment["DOCKER_CONFIG"] = _dir.CreateSubdirectory("docker-config");
            return BerthCli.RunProcess(start);
        }

        private async Task ServeAsync()
        {
            while (true)
            {
                Socket connection;
                try
                {
                    connection = await _listener.AcceptAsync();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    return;
                }
                using (connection) await AnswerAsync(connection);
            }
        }

        private async Task AnswerAsync(Socket connection)
        {
            var received = new List<byte>();
            var buffer = new byte[4096];
            int headEnd;
            while ((headEnd = IndexOfHeadEnd(received)) < 0)
            {
                int n = await connection.ReceiveAsync(buffer);
                if (n == 0) return;
                received.AddRange(buffer.AsSpan(0, n));
            }
            string head = Encoding.ASCII.GetString(received.ToArray(), 0, headEnd);
            string requestLine = head.Split("\r\n")[0];
            lock (RequestLines) RequestLines.Add(requestLine);
            string path = requestLine.Split(' ')[1];
            // (The versions compared here all have the form 1.NN.)
            if (path.StartsWith("/v1.47/", StringComparison.Ordinal) && string.CompareOrdinal(_apiVersion, "1.47") < 0)
            {
                // dockerd refuses the version before reading the body, and closes the connection.
                await RespondAsync(connection, 400, $"{{\"message\":\"client version 1.47 is too new. Maximum supported API version is {_apiVersion}\"}}");
                return;
            }
            int length = head.Split("\r\n").Where(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                .Select(h => int.Parse(h["Content-Length:".Length..].Trim())).FirstOrDefault();
            while (received.Count - headEnd - 4 < length)
            {
                int n = await connection.ReceiveAsync(buffer);
                if (n == 0) return;
                received.AddRange(buffer.AsSpan(0, n));
            }
            string body = Encoding.UTF8.GetString(received.ToArray(), headEnd + 4, length);
            if (path.StartsWith("/_ping", StringComparison.Ordinal))
                await RespondAsync(connection, 200, "OK", "text/plain");
            else if (path.Contains("/containers/json", StringComparison.Ordinal))
                await RespondAsync(connection, 200, "[]");
            else if (path.Contains("/volumes/create", StringComparison.Ordinal) && body.Contains("\"bad\"", StringComparison.Ordinal))
                await RespondAsync(connection, 400, "{\"message\":\"volume name is bad\"}");
            else if (path.Contains("/volumes/create", StringComparison.Ordinal))
            {
                LastBody = body;
                await RespondAsync(connection, 201, "{\"Name\":\"data\",\"Driver\":\"local\",\"Mountpoint\":\"/x\",\"Labels\":{\"a\":\"b\"},\"Scope\":\"local\"}");
            }
            else
                await RespondAsync(connection, 404, "{\"message\":\"page not found\"}");
        }

        private async Task RespondAsync(Socket connection, int status, string body, string type = "application/json")
        {
            byte[] bytes = Encoding.UTF8.GetBytes(body);
            string head = $"HTTP/1.1 {status} X\r\nApi-Version: {_apiVersion}\r\nContent-Type: {type}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n";
            await connection.SendAsync(Encoding.ASCII.GetBytes(head));
            await connection.SendAsync(bytes);
        }

        private static int IndexOfHeadEnd(List<byte> bytes)
        {
            for (int i = 0; i + 3 < bytes.Count; i++)
                if (bytes[i] == '\r' && bytes[i + 1] == '\n' && bytes[i + 2] == '\r' && bytes[i + 3] == '\n') return i;
            return -1;
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Dispose();
            await _serving;
            _dir.Dispose();
        }
    }
}
