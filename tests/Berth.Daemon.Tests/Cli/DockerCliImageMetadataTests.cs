using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Manifests;

namespace Berth.Daemon.Tests.Cli;

/// <summary>
/// Image metadata as dockerd 20.10 shows it, through the docker client: RepoDigests only for the
/// repositories an image was pulled from or pushed to, rmi's lines for the layers it removed, and
/// a committed image's Parent. A real Distribution registry on 127.0.0.1, killed by PID at the end.
/// </summary>
public sealed class DockerCliImageMetadataTests : DockerCliTestBase
{
    private RegistryProcess _registry = null!;

    public override async Task InitializeAsync()
    {
        _registry = new RegistryProcess();
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _registry?.Dispose();
    }

    private static string Digests(DockerCli docker, string image)
        => docker.Ok("image", "inspect", "--format", "{{json .RepoDigests}}", image).Trim();

    private static List<string> Lines(string output) => [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>The scenario run against dockerd 20.10 by hand: each step's RepoDigests and rmi lines are what it showed.</summary>
    [Fact]
    public void RepoDigests_name_only_the_repositories_an_image_was_pulled_from_or_pushed_to()
    {
        DockerCli docker = Docker(DockerCli.Debian);
        string bb = $"{_registry.Host}/bb", other = $"{_registry.Host}/other";

        // Imported, built, committed: no digest.
        Assert.Equal("[]", Digests(docker, "busybox"));
        Assert.Equal("busybox latest <none>", docker.Ok("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}").Trim());
        docker.Ok("run", "--name", "c1", "busybox", "sh", "-c", "echo a > /a");
        docker.Ok("commit", "c1", "committed");
        Assert.Equal("[]", Digests(docker, "committed"));
        docker.Ok("rm", "c1");
        docker.Ok("rmi", "committed");

        // Pushed to two repositories: a digest for each, the same manifest.
        docker.Ok("tag", "busybox", bb + ":1");
        string digest = System.Text.RegularExpressions.Regex.Match(docker.Ok("push", bb + ":1"), @"1: digest: (sha256:[0-9a-f]{64})").Groups[1].Value;
        Assert.StartsWith("sha256:", digest);
        Assert.Equal($"[\"{bb}@{digest}\"]", Digests(docker, "busybox"));
        docker.Ok("tag", "busybox", other + ":2");
        docker.Ok("push", other + ":2");
        Assert.Equal($"[\"{bb}@{digest}\",\"{other}@{digest}\"]", Digests(docker, "busybox"));

        // rmi of the last tag of one repository takes its digest with it.
        Assert.Equal([$"Untagged: {other}:2", $"Untagged: {other}@{digest}"], Lines(docker.Ok("rmi", other + ":2")));
        Assert.Equal($"[\"{bb}@{digest}\"]", Digests(docker, "busybox"));

        // Pulled: the registry's digest; a tag under another name adds none.
        docker.Ok("rmi", "busybox", bb + ":1");
        Assert.Equal("", docker.Ok("images", "-aq").Trim());
        docker.Ok("pull", bb + ":1");
        docker.Ok("tag", bb + ":1", "renamed:x");
        Assert.Equal($"[\"{bb}@{digest}\"]", Digests(docker, "renamed:x"));
        Assert.Equal("ok", docker.Ok("run", "--rm", $"{bb}@{digest}", "echo", "ok").Trim());

        // Saved and loaded back: the loaded image has no digest.
        string archive = DockerConfig.Combine("bb.tar");
        docker.Ok("save", "-o", archive, bb + ":1");
        docker.Ok("rmi", "renamed:x", bb + ":1");
        docker.Ok("load", "-i", archive);
        Assert.Equal("[]", Digests(docker, bb + ":1"));
        docker.Ok("rmi", bb + ":1");

        // Pulled by digest: listed with the digest and no tag; it runs by digest.
        // dockerd's first line names the whole reference: "127.0.0.1:5000/bb@sha256:…: Pulling from bb".
        Assert.Contains($"{bb}@{digest}: Pulling from bb", docker.Ok("pull", $"{bb}@{digest}"));
        Assert.Equal($"{bb} <none> {digest}", docker.Ok("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}").Trim());
        Assert.Equal("ok", docker.Ok("run", "--rm", $"{bb}@{digest}", "echo", "ok").Trim());
        Assert.Contains($"Untagged: {bb}@{digest}", docker.Ok("rmi", $"{bb}@{digest}"));
    }

    /// <summary>dockerd: "Deleted: IMAGE ID", then one "Deleted: CHAIN ID" per layer that went, top first; a layer another image keeps is not said.</summary>
    [Fact]
    public void Rmi_says_each_layer_it_removed_after_its_image()
    {
        DockerCli docker = Docker();
        docker.Ok("run", "--name", "c1", "busybox", "sh", "-c", "echo a > /a");
        docker.Ok("commit", "c1", "committed");
        docker.Ok("rm", "c1");
        string committedId = docker.Ok("image", "inspect", "--format", "{{.Id}}", "committed").Trim();
        string busyboxId = docker.Ok("image", "inspect", "--format", "{{.Id}}", "busybox").Trim();
        List<Digest> diffIds = JsonSerializer.Deserialize<List<string>>(docker.Ok("image", "inspect", "--format", "{{json .RootFS.Layers}}", "committed"))!
            .Select(Digest.Parse).ToList();
        IReadOnlyList<Digest> chain = ChainId.Compute(diffIds);
        Assert.Equal(2, chain.Count);

        Assert.Equal(["Untagged: committed:latest", $"Deleted: {committedId}", $"Deleted: {chain[1]}"], Lines(docker.Ok("rmi", "committed")));
        Assert.Equal(["Untagged: busybox:latest", $"Deleted: {busyboxId}", $"Deleted: {chain[0]}"], Lines(docker.Ok("rmi", "busybox")));
    }

    /// <summary>dockerd records a commit's Parent: the container's image, which history then names.</summary>
    [Fact]
    public void A_committed_image_has_the_containers_image_as_parent()
    {
        DockerCli docker = Docker();
        string busyboxId = docker.Ok("image", "inspect", "--format", "{{.Id}}", "busybox").Trim();
        docker.Ok("run", "--name", "c1", "busybox", "sh", "-c", "echo a > /a");
        docker.Ok("commit", "c1", "committed");
        docker.Ok("rm", "c1");
        string committedId = docker.Ok("image", "inspect", "--format", "{{.Id}}", "committed").Trim();
        Assert.Equal(busyboxId, docker.Ok("image", "inspect", "--format", "{{.Parent}}", "committed").Trim());
        Assert.Equal([committedId, busyboxId], Lines(docker.Ok("history", "--no-trunc", "--format", "{{.ID}}", "committed")));

        // The child keeps its parent: by ID it cannot go, by name it is only untagged.
        var (exit, _, error) = docker.Run("rmi", busyboxId);
        Assert.NotEqual(0, exit);
        Assert.Contains("image has dependent child images", error);
        Assert.Equal(["Untagged: busybox:latest"], Lines(docker.Ok("rmi", "busybox")));
    }
}
