using System.Text.Json;

namespace Berth.Cli.Tests;

/// <summary>
/// <c>berth events</c>, <c>berth system df</c> and the prune commands end to end against a daemon
/// of their own. BerthCli.Dispose removes the containers even when an assertion failed.
/// </summary>
public sealed class EventsAndDfTests
{
    private static BerthCli WithBusybox()
    {
        var cli = new BerthCli();
        try
        {
            cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "events"), "busybox:latest");
            return cli;
        }
        catch
        {
            cli.Dispose();
            throw;
        }
    }

    [Fact]
    public void EventsBetweenSinceAndUntilInDockersFormats()
    {
        using BerthCli cli = WithBusybox();
        DateTimeOffset start = DateTimeOffset.UtcNow.AddSeconds(-1);
        cli.Ok("run", "--rm", "--name", "evented", "--network", "none", "busybox", "true");
        string since = start.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);

        // --until 0s is now: a replay that ends by itself.
        string plain = cli.Ok("events", "--since", since, "--until", "0s", "--filter", "container=evented");
        string[] lines = plain.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["create", "attach", "start", "die", "destroy"], lines.Select(l => l.Split(' ')[2]).Where(a => a != "detach"));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container create [0-9a-f]{64} \(image=busybox, name=evented\)$", lines[0]);

        string json = cli.Ok("events", "--since", "1m", "--until", "0s", "-f", "event=die", "--format", "{{json .}}");
        JsonElement die = JsonDocument.Parse(json.Split('\n')[0]).RootElement;
        Assert.Equal("die", die.GetProperty("status").GetString());
        Assert.Equal("0", die.GetProperty("Actor").GetProperty("Attributes").GetProperty("exitCode").GetString());
        Assert.Equal("evented", cli.Ok("events", "--since", "1m", "--until", "0s", "-f", "event=destroy", "--format", "{{.Actor.Attributes.name}}").Trim());

        // A live stream with a future --until ends on its own.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        CliResult live = cli.Run("events", "--until", "-2s");
        Assert.True(live.ExitCode == 0, live.ToString());
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1.5), $"ended after {watch.Elapsed}");
    }

    [Fact]
    public void SystemDfAndPrunes()
    {
        using BerthCli cli = WithBusybox();
        cli.Ok("run", "--name", "writer", "--network", "none", "busybox", "busybox", "dd", "if=/dev/zero", "of=/blob", "bs=1000", "count=300");
        cli.Ok("run", "-d", "--name", "sleeper", "--network", "none", "busybox", "sleep", "1000");

        string df = cli.Ok("system", "df");
        string[] rows = df.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$", rows[0]);
        Assert.Matches(@"^Images\s+1\s+1\s+\S+\s+0B \(0%\)$", rows[1]);
        Assert.Matches(@"^Containers\s+2\s+1\s+3\d\d(\.\d+)?kB\s+3\d\d(\.\d+)?kB \(\d+%\)$", rows[2]);
        Assert.Matches(@"^Local Volumes\s+0\s+0\s+0B\s+0B$", rows[3]);
        Assert.Matches(@"^Build Cache\s+0\s+0\s+0B\s+0B$", rows[4]);
        string verbose = cli.Ok("system", "df", "-v");
        Assert.Contains("Images space usage:", verbose);
        Assert.Matches(@"busybox\s+latest\s+[0-9a-f]{12}\s", verbose);
        Assert.Contains("sleeper", verbose);
        Assert.Contains("Build cache usage: 0B", verbose);
        Assert.Equal("Images 1\n", cli.Ok("system", "df", "--format", "{{.Type}} {{.TotalCount}}").Split('\n')[0] + "\n");

        string writer = cli.Ok("inspect", "-f", "{{.Id}}", "writer").Trim();
        string pruned = cli.Ok("container", "prune", "-f");
        Assert.Matches("^Deleted Containers:\n" + writer + "\n\nTotal reclaimed space: 3\\d\\d(\\.\\d+)?kB\n$", pruned);
        Assert.Equal("sleeper\n", cli.Ok("ps", "-a", "--format", "{{.Names}}"));

        // Without -f the answer decides; "n" keeps everything.
        cli.Ok("run", "--name", "stopped", "--network", "none", "busybox", "true");
        CliResult declined = cli.RunWith("n\n"u8.ToArray(), "system", "prune");
        Assert.Contains("WARNING! This will remove:", declined.Stdout);
        Assert.Contains("stopped", cli.Ok("ps", "-a", "--format", "{{.Names}}"));

        cli.Ok("rm", "-f", "sleeper");
        string system = cli.Ok("system", "prune", "-a", "-f");
        Assert.Contains("Deleted Containers:", system);
        Assert.Contains("Deleted Images:\nuntagged: busybox:latest\ndeleted: sha256:", system);
        Assert.Contains("Total reclaimed space:", system);
        Assert.Equal("", cli.Ok("ps", "-aq"));
        Assert.Equal("", cli.Ok("images", "-q"));
        Assert.Contains("Total reclaimed space: 0B", cli.Ok("image", "prune", "-a", "-f"));
        Assert.Equal("", cli.Ok("network", "prune", "-f"));
    }
}
