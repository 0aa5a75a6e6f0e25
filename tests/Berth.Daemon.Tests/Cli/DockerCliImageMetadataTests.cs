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
