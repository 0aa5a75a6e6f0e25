using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Health;

/// <summary>
/// The real docker clients' health flags against berthd: --health-* become Config.Healthcheck,
/// inspect and ps show the health, --no-healthcheck turns an image's check off. Each test's daemon
/// force-removes its containers at the end.
/// </summary>
public sealed class DockerCliHealthTests : DockerCliTestBase
{
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await Daemon.ImportBusyboxAsync("checked:latest", "HEALTHCHECK --interval=200ms CMD true");
    }

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Run_with_health_flags_becomes_healthy_in_inspect_and_ps(string binary)
    {
        var docker = Docker(binary);
        docker.Ok("run", "-d", "--name", "hc", "--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "100");
        Assert.Equal("{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":1000000000}", docker.Ok("inspect", "-f", "{{json .Config.Healthcheck}}", "hc").Trim());
        WaitFor(() => docker.Ok("inspect", "-f", "{{.State.Health.Status}}", "hc").Trim() == "healthy", "healthy");
        Assert.Matches(@"^Up .* \(healthy\)$", docker.Ok("ps", "--format", "{{.Status}}", "--filter", "name=hc").Trim());
        Assert.Equal("hc", docker.Ok("ps", "--format", "{{.Names}}", "--filter", "health=healthy").Trim());
        Assert.Equal("0", docker.Ok("inspect", "-f", "{{(index .State.Health.Log 0).ExitCode}}", "hc").Trim());

        // --no-healthcheck: the image's HEALTHCHECK is off; the image's check on its own runs.
        docker.Ok("run", "-d", "--name", "off", "--no-healthcheck", "checked", "sleep", "100");
        docker.Ok("run", "-d", "--name", "on", "checked", "sleep", "100");
        WaitFor(() => docker.Ok("inspect", "-f", "{{.State.Health.Status}}", "on").Trim() == "healthy", "the image's check");
        Assert.Equal("<nil>", docker.Ok("inspect", "-f", "{{.State.Health}}", "off").Trim());
        Assert.Equal("[NONE]", docker.Ok("inspect", "-f", "{{.Config.Healthcheck.Test}}", "off").Trim());
        Assert.Equal("off", docker.Ok("ps", "--format", "{{.Names}}", "--filter", "health=none").Trim());

        var (exit, _, error) = docker.Run("run", "-d", "--no-healthcheck", "--health-cmd", "true", "busybox", "true");
        Assert.NotEqual(0, exit);
        Assert.Contains("--no-healthcheck conflicts with --health-* options", error);
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("waiting for " + what);
            Thread.Sleep(100);
        }
    }
}
