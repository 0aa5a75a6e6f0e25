using System.Net.Sockets;
using System.Text;
using Berth.Daemon.Configuration;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// docker's journald logging driver: the datagrams journald's native socket receives (a socket the test holds, where
/// the daemon's JournalSocket points) are go-systemd's, as dockerd 20.10 sends them — PRIORITY, MESSAGE, dockerd's
/// container fields, sanitized attribute names, the binary form for a value with a newline, partial fields; docker logs
/// reads the cache; without the socket the start fails with dockerd's "journald is not enabled on this host".
/// </summary>
public sealed class JournaldDriverTests : DockerCliTestBase
{
    private readonly TempDirectory _journal = new("journald");

    private string SocketPath => _journal.Combine("socket");

    protected override DaemonOptions Configure(DaemonOptions options) => options with { JournalSocket = SocketPath };

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _journal.Dispose();
    }

    [Fact]
    public async Task Every_entry_is_a_native_datagram_with_dockerds_fields_and_docker_logs_reads_the_cache()
    {
        File.Delete(SocketPath);
        using var journal = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        journal.Bind(new UnixDomainSocketEndPoint(SocketPath));
        DockerCli docker = Docker();
        string id = docker.Ok("run", "-d", "--name", "j1", "--label", "lab.one=v1", "--label", "multi=a\nb", "-e", "E1=x", "--log-driver", "journald",
            "--log-opt", "labels=lab.one,multi", "--log-opt", "env=E1", "--log-opt", "tag={{.Name}}",
            "busybox", "sh", "-c", "echo hello; sleep 0.2; echo err >&2; sleep 0.2; echo; printf nonl").Trim();
        string[] datagrams = [await ReceiveAsync(journal), await ReceiveAsync(journal), await ReceiveAsync(journal), await ReceiveAsync(journal)];
        // dockerd 20.10 sent "PRIORITY=6\nMESSAGE=hello\nSYSLOG_IDENTIFIER=j1\nLAB_ONE=v1\nE1=x\nCONTAINER_ID=3625a3e430aa\n
        // CONTAINER_ID_FULL=3625…\nCONTAINER_NAME=j1\nCONTAINER_TAG=j1\nIMAGE_NAME=busybox\n" (fields in Go's map order).
        string fields = $"CONTAINER_ID={id[..12]}\nCONTAINER_ID_FULL={id}\nCONTAINER_NAME=j1\nCONTAINER_TAG=j1\nIMAGE_NAME=busybox\nSYSLOG_IDENTIFIER=j1\n"
            + "E1=x\nLAB_ONE=v1\nMULTI\n\u0003\0\0\0\0\0\0\0a\nb\n";
        Assert.Equal("PRIORITY=6\nMESSAGE=hello\n" + fields, datagrams[0]);
        Assert.Equal("PRIORITY=3\nMESSAGE=err\n" + fields, datagrams[1]);
        Assert.Equal("PRIORITY=6\nMESSAGE=\n" + fields, datagrams[2]);
        Assert.Matches("^PRIORITY=6\nMESSAGE=nonl\n" + System.Text.RegularExpressions.Regex.Escape(fields)
            + "CONTAINER_PARTIAL_ID=[0-9a-f]{64}\nCONTAINER_PARTIAL_ORDINAL=1\nCONTAINER_PARTIAL_LAST=false\nCONTAINER_PARTIAL_MESSAGE=true\n$", datagrams[3]);

        docker.Ok("wait", id);
        var (exit, logs, errors) = docker.Run("logs", id);
        Assert.Equal(0, exit);
        Assert.Equal("hello\n\nnonl", logs);
        Assert.Equal("err\n", errors);
        docker.Ok("rm", id);
    }

    [Fact]
    public void Without_journald_the_start_fails_in_dockerds_words_and_bad_options_are_refused()
    {
        File.Delete(SocketPath);
        DockerCli docker = Docker();
        var (exit, _, stderr) = docker.Run("run", "--rm", "--log-driver", "journald", "busybox", "true");
        Assert.True(exit != 0 && stderr.Contains("failed to initialize logging driver: journald is not enabled on this host", StringComparison.Ordinal), stderr);

        var (createExit, _, createError) = docker.Run("create", "--log-driver", "journald", "--log-opt", "foo=bar", "busybox");
        Assert.True(createExit != 0 && createError.Contains("unknown log opt 'foo' for journald log driver", StringComparison.Ordinal), createError);
        docker.Ok("rm", docker.Ok("create", "--log-driver", "journald", "--log-opt", "cache-disabled=true", "busybox").Trim());   // as dockerd
    }

    private static async Task<string> ReceiveAsync(Socket socket)
    {
        var buffer = new byte[65536];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.Latin1.GetString(buffer, 0, n);
    }
}
