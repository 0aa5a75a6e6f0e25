using Berth.Daemon.Configuration;

namespace Berth.Daemon.Tests.Cli;

/// <summary>
/// What the docker-CLI test classes share: a berthd of the class's own (<see cref="DaemonScope"/>) with
/// busybox:latest imported, a docker config directory, and docker clients on both. Disposed even when
/// the start failed half way.
/// </summary>
public abstract class DockerCliTestBase : IAsyncLifetime
{
    protected DaemonScope Daemon { get; private set; } = null!;
    protected TempDirectory DockerConfig { get; private set; } = null!;

    /// <summary>The daemon's options beyond DaemonScope's defaults.</summary>
    protected virtual DaemonOptions Configure(DaemonOptions options) => options;

    /// <summary>The Dockerfile instruction busybox's import applies.</summary>
    protected virtual string BusyboxChange => "CMD [\"sh\"]";

    public virtual async Task InitializeAsync()
    {
        DockerConfig = new TempDirectory("docker-config");
        Daemon = await DaemonScope.StartAsync(Configure);
        await Daemon.ImportBusyboxAsync("busybox:latest", BusyboxChange);
    }

    public virtual async Task DisposeAsync()
    {
        if (Daemon is not null) await Daemon.DisposeAsync();
        DockerConfig.Dispose();
    }

    /// <summary>A docker client, <paramref name="binary"/> or else the first installed, on this class's daemon.</summary>
    protected DockerCli Docker(string? binary = null)
        => new(binary ?? DockerCli.Installed().Select(b => (string)b[0]).First(), Daemon.DockerHost, DockerConfig.Path);
}
