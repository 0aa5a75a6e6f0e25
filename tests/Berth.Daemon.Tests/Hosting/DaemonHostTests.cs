using System.Net;
using Berth.Daemon.Configuration;
using Berth.Daemon.Hosting;

namespace Berth.Daemon.Tests.Hosting;

public sealed class DaemonHostTests
{
    [Fact]
    public async Task Socket_is_0660_and_pidfile_written_then_both_removed_at_stop()
    {
        DaemonScope daemon = await DaemonScope.StartAsync();
        string socket = daemon.SocketPath;
        string pidFile = Path.Combine(daemon.Options.ExecRoot, "berthd.pid");
        TempDirectory dir = daemon.Directory;
        try
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(socket));
            Assert.Equal(Environment.ProcessId.ToString(), File.ReadAllText(pidFile).Trim());
            using HttpResponseMessage r = await daemon.Client.GetAsync("/_ping");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            await daemon.Host.DisposeAsync();
            Assert.False(File.Exists(socket));
            Assert.False(File.Exists(pidFile));
        }
        finally
        {
            await daemon.DisposeAsync();
        }
        Assert.False(Directory.Exists(dir.Path));
    }

    [Fact]
    public async Task A_second_daemon_on_the_same_data_root_is_refused()
    {
        await using DaemonScope first = await DaemonScope.StartAsync();
        DaemonOptions second = first.Options with { Hosts = ["unix://" + first.Directory.Combine("exec", "other.sock")] };
        var e = await Assert.ThrowsAsync<DaemonConfigException>(() => DaemonHost.StartAsync(second));
        Assert.Contains("another berthd is running", e.Message);
        Assert.False(File.Exists(first.Directory.Combine("exec", "other.sock")));
        // The first one is untouched.
        using HttpResponseMessage r = await first.Client.GetAsync("/_ping");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    [Fact]
    public async Task A_socket_in_use_by_another_daemon_is_refused_and_a_stale_one_replaced()
    {
        await using DaemonScope first = await DaemonScope.StartAsync();
        using var other = new TempDirectory("daemon2");
        DaemonOptions clash = DaemonScope.OptionsIn(other) with { Hosts = first.Options.Hosts };
        var e = await Assert.ThrowsAsync<DaemonConfigException>(() => DaemonHost.StartAsync(clash));
        Assert.Contains("in use", e.Message);

        // A stale socket file (bound, nobody listening: what a crash leaves) is replaced.
        string stale = other.Combine("stale.sock");
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        s.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(stale));
        Assert.True(File.Exists(stale));
        await using DaemonHost host = await DaemonHost.StartAsync(DaemonScope.OptionsIn(other) with { Hosts = ["unix://" + stale] });
        using HttpClient client = DaemonScope.CreateClient(stale);
        Assert.Equal("OK", await client.GetStringAsync("/_ping"));
    }
}
