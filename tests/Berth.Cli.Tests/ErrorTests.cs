namespace Berth.Cli.Tests;

/// <summary>Bad input: one Docker-like line on stderr, a non-zero exit, never a stack trace.</summary>
[Collection(RegistryCollection.Name)]
public sealed class ErrorTests(RegistryFixture fixture)
{
    private static void AssertError(CliResult r, int code, string contains)
    {
        Assert.True(r.ExitCode == code, r.ToString());
        Assert.Contains(contains, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.DoesNotContain("Exception", r.Stderr);
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>A word that is no command gets docker 28's answer and exit code (1), not a parser's complaint.</summary>
    [Fact]
    public void UnknownCommand()
    {
        using var cli = new BerthCli();
        CliResult r = cli.Run("frobnicate", "now");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("berth: unknown command: berth frobnicate\n\nRun 'berth --help' for more information\n", r.Stderr);
    }

    [Fact]
    public void BadReference()
    {
        using var cli = new BerthCli();
        AssertError(cli.Run("pull", "Bad!Name"), 1, "invalid reference format");
        AssertError(cli.Run("tag", "nosuch", "x:1"), 1, "Error response from daemon: No such image: nosuch");
        AssertError(cli.Run("import", cli.WriteBusyboxTar("r.tar"), "busybox/UPPER"), 1, "invalid reference format");
        Assert.Equal("", cli.Ok("images", "-q"));
    }

    [Fact]
    public void UnknownImage()
    {
        using var cli = new BerthCli();
        AssertError(cli.Run("rmi", "nosuch"), 1, "Error response from daemon: No such image: nosuch");
        AssertError(cli.Run("history", "nosuch:1"), 1, "Error response from daemon: No such image: nosuch:1");
        AssertError(cli.Run("save", "-o", Path.Combine(cli.Work, "x.tar"), "nosuch"), 1, "No such image");
        Assert.False(File.Exists(Path.Combine(cli.Work, "x.tar")));
        CliResult inspect = cli.Run("image", "inspect", "nosuch");
        AssertError(inspect, 1, "Error: No such image: nosuch");
        Assert.Equal("[]\n", inspect.Stdout);
        AssertError(cli.Run("pull", $"{fixture.Registry.Host}/nosuch/image:1"), 1, "manifest unknown");
        AssertError(cli.Run("push", $"{fixture.Registry.Host}/nosuch/image:1"), 1, "An image does not exist locally with the tag");
    }

    [Fact]
    public void WrongDigest()
    {
        using var cli = new BerthCli();
        string repo = $"{fixture.Registry.Host}/digest/busybox";
        string zero = "sha256:" + new string('0', 64);
        AssertError(cli.Run("pull", $"{repo}@{zero}"), 1, "manifest unknown");
        AssertError(cli.Run("pull", $"{repo}@sha256:abc"), 1, "invalid reference format");

        // A layer blob whose bytes the registry serves changed: refused, nothing named, nothing kept.
        cli.Ok("import", cli.WriteBusyboxTar("rootfs.tar", "tampered-" + Guid.NewGuid()), $"{repo}:1");
        cli.Ok("push", $"{repo}:1");
        cli.Ok("rmi", $"{repo}:1");
        // The repository's largest blob is its layer (the config is a few hundred bytes); dockerd
        // pushes it compressed, so its digest is not the diff ID: find it in the registry's store.
        string v2 = Path.Combine(fixture.Registry.DataPath, "docker", "registry", "v2");
        string layer = Directory.GetDirectories(Path.Combine(v2, "repositories", "digest", "busybox", "_layers", "sha256"))
            .Select(Path.GetFileName).OfType<string>()
            .OrderByDescending(d => new FileInfo(Path.Combine(v2, "blobs", "sha256", d[..2], d, "data")).Length).First();
        string blob = Path.Combine(v2, "blobs", "sha256", layer[..2], layer, "data");
        Assert.True(File.Exists(blob), blob);
        byte[] bytes = File.ReadAllBytes(blob);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(blob, bytes);
        CliResult r = cli.Run("pull", $"{repo}:1");
        AssertError(r, 1, layer[..12]);
        Assert.Equal("", cli.Ok("images", "-q"));
    }

    [Fact]
    public void MalformedArchives()
    {
        using var cli = new BerthCli();
        string garbage = Path.Combine(cli.Work, "garbage.tar");
        File.WriteAllText(garbage, "this is not a tar archive\n");
        // Errors before the daemon answers are "Error response from daemon: …"; inside the stream, the bare message (as docker prints them).
        AssertError(cli.Run("load", "-i", garbage), 1, "");
        AssertError(cli.RunWith("not a tar"u8.ToArray(), "load"), 1, "");
        AssertError(cli.Run("import", garbage, "x:1"), 1, "");
        AssertError(cli.Run("load", "-i", Path.Combine(cli.Work, "missing.tar")), 1, "no such file or directory");

        // A rootfs tar (not an image archive) given to load.
        AssertError(cli.Run("load", "-i", cli.WriteBusyboxTar("rootfs.tar")), 1,
            BerthCli.Daemon == DaemonKind.Dockerd ? "no such file or directory" : "neither an OCI image layout");
        Assert.Equal("", cli.Ok("images", "-q"));
    }

    [Fact]
    public void UsageErrorsExit125()
    {
        using var cli = new BerthCli();
        CliResult flag = cli.Run("images", "--bogus");
        Assert.Equal(125, flag.ExitCode);
        Assert.Contains("unknown flag: --bogus", flag.Stderr);
        CliResult args = cli.Run("tag", "only-one");
        Assert.Equal(125, args.ExitCode);
        Assert.Contains("See 'berth tag --help'.", args.Stderr);
        CliResult run = cli.Run("run", "--bogus", "busybox");
        Assert.Equal(125, run.ExitCode);
        Assert.Contains("unknown flag: --bogus", run.Stderr);
    }

    [Fact]
    public void NoDaemonSaysHowToStartIt()
    {
        using var cli = new BerthCli(startDaemon: false);
        CliResult r = cli.Run("ps");
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains($"Cannot connect to berthd at {cli.Host}. Is berthd running?", r.Stderr);
        Assert.Contains("berthd", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.Equal(125, cli.Run("run", "busybox").ExitCode);
    }
}
