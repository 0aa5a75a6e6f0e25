namespace Berth.Daemon.Tests.Compose;

/// <summary>
/// docker-compose's second <c>up</c>: nothing recreated when nothing changed; recreated on
/// <c>--force-recreate</c> and on a changed config, with the old container's anonymous volumes (the
/// service's and the image's VOLUME) handed to the new one. Compose finds the image's volumes in the
/// image's ContainerConfig (it failed with KeyError 'ContainerConfig' on every recreate before
/// berthd showed it at API 1.51, the version docker-py picks).
/// </summary>
[Collection(ComposeCollection.Name)]
public sealed class ComposeRecreateTests(ComposeDaemonFixture fixture)
{
    private const string Project = "composerecreate";

    private static readonly Dictionary<string, string> Files = new()
    {
        ["img/Dockerfile"] = """
            FROM busybox:latest
            VOLUME /imgvol
            CMD ["sleep", "600"]
            """,
        ["docker-compose.yml"] = """
            version: "2.4"
            services:
              app:
                build: ./img
                image: composerecreate-app:latest
                environment:
                  MARK: ${MARK:-one}
                volumes:
                  - /anon
            """,
    };

    private string Container => $"{Project}_app_1";

    [ComposeFact]
    public async Task Up_again_keeps_what_did_not_change_and_recreates_with_the_anonymous_volumes()
    {
        ComposeProject project = await fixture.UpAsync(Project, Files);
        var docker = fixture.Docker;
        docker.Ok("exec", Container, "sh", "-c", "echo anon-data > /anon/f; echo image-volume-data > /imgvol/f");
        string firstId = docker.Ok("inspect", "-f", "{{.Id}}", Container).Trim();
        string volumes = MountedVolumes();

        Assert.Contains($"{Container} is up-to-date", project.Ok("up", "-d"));
        Assert.Equal(firstId, docker.Ok("inspect", "-f", "{{.Id}}", Container).Trim());

        Assert.Contains($"Recreating {Container}", project.Ok("up", "-d", "--force-recreate"));
        Assert.NotEqual(firstId, docker.Ok("inspect", "-f", "{{.Id}}", Container).Trim());
        Assert.Equal(volumes, MountedVolumes());
        Assert.Equal("anon-data\nimage-volume-data\none", docker.Ok("exec", Container, "sh", "-c", "cat /anon/f /imgvol/f; echo $MARK").Trim());

        Assert.Contains($"Recreating {Container}", project.Ok(new Dictionary<string, string> { ["MARK"] = "two" }, "up", "-d"));
        Assert.Equal(volumes, MountedVolumes());
        Assert.Equal("anon-data\nimage-volume-data\ntwo", docker.Ok("exec", Container, "sh", "-c", "cat /anon/f /imgvol/f; echo $MARK").Trim());
        Assert.Single(docker.Ok("ps", "-a", "-q", "--filter", $"label=com.docker.compose.project={Project}").Trim().Split('\n'));
    }

    [ComposeFact]
    public async Task A_built_image_shows_its_volumes_in_ContainerConfig_at_every_API_version()
    {
        await fixture.UpAsync(Project, Files);
        foreach (string version in new[] { "v1.41", "v1.51" })
        {
            var image = await fixture.Daemon.GetJsonAsync($"/{version}/images/composerecreate-app:latest/json");
            Assert.True(image.GetProperty("ContainerConfig").GetProperty("Volumes").TryGetProperty("/imgvol", out _), image.ToString());
        }
        // Container is dockerd's below 1.45 only; an imported image has an empty one and a zero ContainerConfig.
        var busybox41 = await fixture.Daemon.GetJsonAsync("/v1.41/images/busybox:latest/json");
        Assert.Equal("", busybox41.GetProperty("Container").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Object, busybox41.GetProperty("ContainerConfig").ValueKind);
        Assert.False((await fixture.Daemon.GetJsonAsync("/v1.51/images/busybox:latest/json")).TryGetProperty("Container", out _));
    }

    private string MountedVolumes()
        => string.Join(' ', fixture.Docker.Ok("inspect", "-f", "{{range .Mounts}}{{.Destination}}={{.Name}} {{end}}", Container)
            .Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order(StringComparer.Ordinal));
}
