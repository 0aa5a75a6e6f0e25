using System.Text.Json;

namespace Berth.Cli.Tests;

/// <summary>The image commands end to end: the real binary, a real registry, a temp data root.</summary>
[Collection(RegistryCollection.Name)]
public sealed class ImageWorkflowTests(RegistryFixture fixture)
{
    [Fact]
    public void ImportTagPushRmiPullImagesHistorySaveRmiLoadInspect()
    {
        using var cli = new BerthCli();
        string repo = $"{fixture.Registry.Host}/workflow/busybox";
        string tar = cli.WriteBusyboxTar("rootfs.tar", "workflow");

        string id = cli.Ok("import", "-m", "from the test", "-c", "CMD [\"/bin/sh\"]", tar, "busybox-test:1").Trim();
        Assert.Matches("^sha256:[0-9a-f]{64}$", id);

        cli.Ok("tag", "busybox-test:1", $"{repo}:1");
        string push = cli.Ok("push", $"{repo}:1");
        Assert.Contains($"The push refers to repository [{repo}]", push);
        Assert.Contains(": Pushed", push);
        Assert.Matches(@"1: digest: sha256:[0-9a-f]{64} size: \d+", push);

        string rmi = cli.Ok("rmi", $"{repo}:1", "busybox-test:1");
        Assert.Contains($"Untagged: {repo}:1", rmi);
        Assert.Contains($"Deleted: {id}", rmi);
        Assert.Equal("", cli.Ok("images", "-q"));
        if (BerthCli.Daemon == DaemonKind.Berthd) Assert.Empty(Directory.GetFiles(Path.Combine(cli.DataRoot, "content", "blobs", "sha256")));

        string pull = cli.Ok("pull", $"{repo}:1");
        Assert.Contains("1: Pulling from workflow/busybox", pull);
        Assert.Contains(": Pull complete", pull);
        Assert.Contains($"Status: Downloaded newer image for {repo}:1", pull);
        Assert.EndsWith($"{repo}:1\n", pull);
        Assert.DoesNotContain("\x1b[", pull); // not a terminal: plain lines
        Assert.Contains("Status: Image is up to date", cli.Ok("pull", $"{repo}:1"));

        string images = cli.Ok("images");
        string[] lines = images.TrimEnd().Split('\n');
        Assert.Matches(@"^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$", lines[0]);
        Assert.Contains(lines, l => l.StartsWith(repo + " ") && l.Contains(" 1 ") && l.Contains(id[7..19]));
        Assert.Equal(id[7..19] + "\n", cli.Ok("images", "-q"));

        string history = cli.Ok("history", $"{repo}:1");
        Assert.Matches(@"^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT", history);
        Assert.Contains("from the test", history);
        Assert.Equal("from the test\n", cli.Ok("image", "inspect", "--format", "{{.Comment}}", $"{repo}:1"));

        string archive = Path.Combine(cli.Work, "saved.tar");
        cli.Ok("save", "-o", archive, $"{repo}:1");
        Assert.True(new FileInfo(archive).Length > 1_000_000);
        cli.Ok("rmi", $"{repo}:1");
        Assert.Equal("", cli.Ok("images", "-q"));
        Assert.Equal($"Loaded image: {repo}:1\n", cli.Ok("load", "-i", archive));

        using JsonDocument inspect = JsonDocument.Parse(cli.Ok("image", "inspect", $"{repo}:1"));
        JsonElement image = inspect.RootElement[0];
        Assert.Equal(id, image.GetProperty("Id").GetString());
        Assert.Equal($"{repo}:1", image.GetProperty("RepoTags")[0].GetString());
        Assert.Equal("/bin/sh", image.GetProperty("Config").GetProperty("Cmd")[0].GetString());
        Assert.Equal("layers", image.GetProperty("RootFS").GetProperty("Type").GetString());
        Assert.Single(image.GetProperty("RootFS").GetProperty("Layers").EnumerateArray());
        Assert.Equal(id + "\n", cli.Ok("image", "inspect", "--format", "{{.Id}}", $"{repo}:1"));

        // The unpacked layer is a committed snapshot holding the rootfs.
        if (BerthCli.Daemon == DaemonKind.Berthd)
        {
            Assert.Contains(Directory.EnumerateFiles(Path.Combine(cli.DataRoot, "snapshots"), "berth-test", SearchOption.AllDirectories), _ => true);
            Assert.Empty(BerthCli.MountsUnder(cli.DataRoot));
        }
    }

    [Fact]
    public void ImagesFormats()
    {
        using var cli = new BerthCli();
        string id = cli.Ok("import", cli.WriteBusyboxTar("rootfs.tar", "formats"), "fmt/busybox:v1").Trim();
        cli.Ok("tag", "fmt/busybox:v1", "fmt/busybox:v2");

        Assert.Equal("fmt/busybox v1\nfmt/busybox v2\n",
            string.Concat(cli.Ok("images", "--format", "{{.Repository}} {{.Tag}}").Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().Select(l => l + "\n")));
        Assert.Equal(id[7..19] + "\n", cli.Ok("images", "-q"));
        Assert.Equal(id + "\n", cli.Ok("images", "-q", "--no-trunc"));
        Assert.Equal("fmt/busybox:v1\n", cli.Ok("images", "--format", "{{.Repository}}:{{.Tag}}", "fmt/busybox:v1"));

        string table = cli.Ok("images", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}");
        Assert.Matches(@"^REPOSITORY\s+TAG\s+IMAGE ID\n", table);

        string digests = cli.Ok("images", "--digests");
        Assert.Matches(@"^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID", digests);
        // An imported image has no registry digest until it is pushed or pulled: <none>, on berthd as
        // on dockerd's classic store.
        Assert.Contains("<none>", digests);
        Assert.DoesNotContain("sha256:", digests);

        foreach (string line in cli.Ok("images", "--format", "{{json .}}").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using JsonDocument row = JsonDocument.Parse(line);
            Assert.Equal("fmt/busybox", row.RootElement.GetProperty("Repository").GetString());
            Assert.Equal(id[7..19], row.RootElement.GetProperty("ID").GetString());
        }

        CliResult bad = cli.Run("images", "--format", "{{.NoSuchField}}");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("NoSuchField", bad.Stderr);

        // prune: after the names go, the blobs and the layer snapshot are collected.
        cli.Ok("rmi", "fmt/busybox:v1", "fmt/busybox:v2");
        string prune = cli.Ok("image", "prune", "-f");
        Assert.Contains("Total reclaimed space:", prune);
        if (BerthCli.Daemon == DaemonKind.Berthd) Assert.Empty(Directory.GetFiles(Path.Combine(cli.DataRoot, "content", "blobs", "sha256")));
    }

    [Fact]
    public void PullOnATerminalRedrawsLayerLines()
    {
        using var cli = new BerthCli();
        string repo = $"{fixture.Registry.Host}/tty/busybox";
        cli.Ok("import", cli.WriteBusyboxTar("rootfs.tar", "tty"), $"{repo}:1");
        cli.Ok("push", $"{repo}:1");
        cli.Ok("rmi", $"{repo}:1");

        // script(1) gives the binary a pseudo-terminal as stdout.
        CliResult r = cli.RunInTerminal(null, "pull", $"{repo}:1");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("\x1b[", r.Stdout);
        Assert.Contains("Pull complete", r.Stdout);
        Assert.Contains($"Status: Downloaded newer image for {repo}:1", r.Stdout);
    }

    /// <summary>
    /// <c>berth search</c> against an index with the v1 search API (a fake one here: Docker Hub is out
    /// of reach and Debian's registry has no such API): the table, filters, --limit, --no-trunc, --format;
    /// a registry without the API answers 404, named.
    /// </summary>
    [Fact]
    public void Search()
    {
        using var index = new SearchIndexServer();
        using var cli = new BerthCli();
        string table = cli.Ok("search", $"{index.Host}/busybox");
        Assert.Equal(
            "NAME                     DESCRIPTION                                     STARS     OFFICIAL\n" +
            "busybox                  Busybox base image.                             3300      [OK]\n" +
            "library/busybox-extras   Busybox with the applets the official image …   12        \n" +
            "someone/busybox-tools    tools across lines                              0         \n", table);
        Assert.Equal("busybox 3300\n", cli.Ok("search", "-f", "is-official=true", "--format", "{{.Name}} {{.StarCount}}", $"{index.Host}/busybox"));
        Assert.Equal("busybox\nlibrary/busybox-extras\n", cli.Ok("search", "--filter", "stars=10", "--format", "{{.Name}}", $"{index.Host}/busy"));
        Assert.Contains("Busybox with the applets the official image leaves out, and a description long enough to be cut",
            cli.Ok("search", "--no-trunc", $"{index.Host}/extras"));
        // docker 28's {{json .}} of a result, keys sorted, IsOfficial as a word.
        Assert.Equal("{\"Description\":\"Busybox base image.\",\"IsOfficial\":\"true\",\"Name\":\"busybox\",\"StarCount\":\"3300\"}\n",
            cli.Ok("search", "--limit", "1", "--format", "json", $"{index.Host}/busybox"));
        cli.Ok("search", "--limit", "2", "--format", "{{.Name}}", $"{index.Host}/busybox");
        Assert.Contains("busybox 2", index.Queries);

        CliResult badLimit = cli.Run("search", "--limit", "101", $"{index.Host}/busybox");
        Assert.NotEqual(0, badLimit.ExitCode);
        Assert.Contains("Limit 101 is outside the range of [1, 100]", badLimit.Stderr);
        if (BerthCli.Daemon == DaemonKind.Berthd)
        {
            using var registry = new RegistryProcess();
            CliResult noApi = cli.Run("search", $"{registry.Host}/busybox");
            Assert.NotEqual(0, noApi.ExitCode);
            Assert.Contains("HTTP 404", noApi.Stderr);
            Assert.Contains("no v1 search API", noApi.Stderr);
            CliResult unreachable = cli.Run("search", "127.0.0.1:1/busybox");
            Assert.NotEqual(0, unreachable.ExitCode);
            Assert.Contains("registry 127.0.0.1:1: search for \"busybox\": cannot reach", unreachable.Stderr); // not "repository , reference busybox"
        }
    }
}
