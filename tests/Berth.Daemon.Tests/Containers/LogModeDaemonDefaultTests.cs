using System.Net.Sockets;
using Berth.Daemon.Configuration;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// mode=non-blocking as a daemon default (daemon.json's log-opts): a container of the daemon's driver that sets no
/// mode gets it, and a fluentd that accepts and never reads does not hold it up.
/// </summary>
public sealed class LogModeDaemonDefaultTests : DockerCliTestBase
{
    private readonly Socket stalledFluentd;
    private readonly int port;

    public LogModeDaemonDefaultTests() => stalledFluentd = LogModeTests.Listener(out port);

    protected override DaemonOptions Configure(DaemonOptions options) => options with
    {
        LogDriver = "fluentd",
        LogOpts = new Dictionary<string, string> { ["fluentd-address"] = $"127.0.0.1:{port}", ["mode"] = "non-blocking", ["max-buffer-size"] = "64k" },
    };

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        stalledFluentd.Dispose();
    }

    [Fact]
    public async Task A_container_gets_the_daemons_non_blocking_mode_and_is_not_held_up_by_a_stalled_fluentd()
    {
        Task<Socket> accepted = stalledFluentd.AcceptAsync();
        DockerCli docker = Docker();
        string id = docker.Ok("run", "-d", "busybox", "sh", "-c", "head -c 33554432 /dev/zero | tr '\\0' 'a'; echo done").Trim();
        try
        {
            using Socket connection = await accepted.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(LogModeTests.WaitForExit(docker, id, TimeSpan.FromSeconds(60)), "the container was held up by a fluentd that does not read");
            string config = docker.Ok("inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}", id);
            Assert.StartsWith("fluentd ", config, StringComparison.Ordinal);
            Assert.Contains("\"mode\":\"non-blocking\"", config, StringComparison.Ordinal);
        }
        finally
        {
            docker.Run("rm", "-f", id);
        }
    }
}
