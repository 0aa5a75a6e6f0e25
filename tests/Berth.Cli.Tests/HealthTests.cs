namespace Berth.Cli.Tests;

/// <summary>
/// <c>berth run --health-*</c> / <c>--no-healthcheck</c> end to end: the flags become Config.Healthcheck
/// as the docker CLI sends it, and inspect and ps show the health. BerthCli.Dispose removes the
/// containers, even when an assertion failed.
/// </summary>
public sealed class HealthTests
{
    [Fact]
    public void HealthFlagsReachInspectAndPs()
    {
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "health"), "busybox:latest");
        cli.Ok("run", "-d", "--name", "hc", "--health-cmd", "echo fine", "--health-interval", "200ms", "--health-timeout", "5s",
            "--health-retries", "2", "--health-start-period", "1m", "--health-start-interval", "100ms", "busybox", "sleep", "100");
        Assert.Equal("{\"Interval\":200000000,\"Retries\":2,\"StartInterval\":100000000,\"StartPeriod\":60000000000,\"Test\":[\"CMD-SHELL\",\"echo fine\"],\"Timeout\":5000000000}",
            cli.Ok("inspect", "-f", "{{json .Config.Healthcheck}}", "hc").Trim());
        WaitFor(() => cli.Ok("inspect", "-f", "{{.State.Health.Status}}", "hc").Trim() == "healthy", "healthy");
        Assert.Matches(@"^hc Up .* \(healthy\)$", cli.Ok("ps", "--format", "{{.Names}} {{.Status}}").Trim());
        Assert.Equal("hc", cli.Ok("ps", "--format", "{{.Names}}", "--filter", "health=healthy").Trim());

        cli.Ok("run", "-d", "--name", "off", "--no-healthcheck", "busybox", "sleep", "100");
        Assert.Equal("{\"Test\":[\"NONE\"]}", cli.Ok("inspect", "-f", "{{json .Config.Healthcheck}}", "off").Trim());
        Assert.Equal("off", cli.Ok("ps", "--format", "{{.Names}}", "--filter", "health=none").Trim());

        CliResult conflict = cli.Run("run", "-d", "--no-healthcheck", "--health-retries", "2", "busybox", "true");
        Assert.True(conflict.ExitCode == 125, conflict.ToString());
        Assert.Contains("--no-healthcheck conflicts with --health-* options", conflict.Stderr);
        CliResult negative = cli.Run("run", "-d", "--health-interval", "-1s", "busybox", "true");
        Assert.True(negative.ExitCode == 125, negative.ToString());
        Assert.Contains("--health-interval cannot be negative", negative.Stderr);
        CliResult bad = cli.Run("run", "-d", "--health-timeout", "soon", "busybox", "true");
        Assert.True(bad.ExitCode == 125, bad.ToString());
        Assert.Contains("invalid argument \"soon\" for \"--health-timeout\" flag", bad.Stderr);
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
