namespace Berth.Cli.Tests;

/// <summary><c>run</c> and <c>create</c> pull an image they do not find, as docker does (a real registry process).</summary>
[Collection(RegistryCollection.Name)]
public sealed class RunPullTests(RegistryFixture fixture)
{
    [Fact]
    public void RunPullsAMissingImageThenRuns()
    {
        using var cli = new BerthCli();
        string repo = $"{fixture.Registry.Host}/runpull/busybox";
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "run-pull-" + Guid.NewGuid()), $"{repo}:1");
        cli.Ok("push", $"{repo}:1");
        cli.Ok("rmi", $"{repo}:1");

        CliResult r = cli.Run("run", "--rm", $"{repo}:1", "cat", "/etc/berth-test");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(r.Stdout.StartsWith("run-pull-", StringComparison.Ordinal), r.ToString());
        Assert.Contains($"Unable to find image '{repo}:1' locally", r.Stderr);
        Assert.Contains($"Status: Downloaded newer image for {repo}:1", r.Stderr);

        // Present now: no pull, nothing on stderr.
        CliResult again = cli.Run("run", "--rm", $"{repo}:1", "true");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal("", again.Errors);

        // --pull never with a missing image fails as docker does (125), --pull always pulls.
        cli.Ok("rmi", $"{repo}:1");
        CliResult never = cli.Run("run", "--rm", "--pull", "never", $"{repo}:1", "true");
        Assert.Equal(125, never.ExitCode);
        Assert.Contains("No such image", never.Stderr);
        CliResult create = cli.Run("create", "--pull", "always", "--name", "pulled", $"{repo}:1");
        Assert.True(create.ExitCode == 0, create.ToString());
        Assert.Matches("^[0-9a-f]{64}\n$", create.Stdout);
    }
}
