namespace Berth.Daemon.Tests.Cli;

/// <summary>
/// What the docker-CLI test classes share: <see cref="DaemonTestBase"/>'s berthd with busybox:latest, a docker
/// config directory, and docker clients on both. Disposed even when the start failed half way.
/// </summary>
public abstract class DockerCliTestBase : DaemonTestBase
{
    protected TempDirectory DockerConfig { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        DockerConfig = new TempDirectory("docker-config");
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        DockerConfig.Dispose();
    }

    /// <summary>A docker client, <paramref name="binary"/> or else the first installed, on this class's daemon.</summary>
    protected DockerCli Docker(string? binary = null)
        => new(binary ?? DockerCli.Installed().Select(b => (string)b[0]).First(), Daemon.DockerHost, DockerConfig.Path);
}
