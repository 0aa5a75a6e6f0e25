using System.Text.Json;
using Berth.Daemon.Configuration;

namespace Berth.Daemon.Tests.Cli;

/// <summary>
/// <c>--registry-mirror</c> through the real docker clients: Debian's Distribution registry on
/// 127.0.0.1 is the Docker Hub mirror; <c>docker pull busybox</c> comes from it and is named
/// docker.io/library/busybox:latest. Registry killed by PID, daemon and directories removed.
/// </summary>
public sealed class DockerCliMirrorTests
{
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public async Task Docker_pull_of_a_docker_hub_image_comes_from_the_mirror(string binary)
    {
        using var registry = new RegistryProcess();
        using var config = new TempDirectory("docker-config");
        // A mirror that is not there first: the pull goes on to the next one, as dockerd's does.
        string dead = $"http://127.0.0.1:{RegistryProcess.FreePort()}";
        IReadOnlyList<string> mirrors = DaemonArgs.Parse(["--registry-mirror", dead, "--registry-mirror", $"http://{registry.Host}"]).Options.RegistryMirrors;
        await using DaemonScope daemon = await DaemonScope.StartAsync(o => o with { RegistryMirrors = mirrors });
        var docker = new DockerCli(binary, daemon.DockerHost, config.Path);

        // The mirror holds library/busybox:latest: a busybox rootfs imported, pushed there, removed here.
        string onMirror = $"{registry.Host}/library/busybox:latest";
        string id = await daemon.ImportBusyboxAsync(onMirror, "CMD [\"/bin/sh\"]");
        docker.Ok("push", onMirror);
        docker.Ok("rmi", onMirror);

        string pull = docker.Ok("pull", "busybox");
        Assert.Contains("Pull complete", pull);
        Assert.Contains("Status: Downloaded newer image for busybox:latest", pull);
        // The mirror's image (Docker Hub's busybox would have another ID), under its docker.io name.
        JsonElement image = JsonDocument.Parse(docker.Ok("image", "inspect", "docker.io/library/busybox:latest")).RootElement[0];
        Assert.Equal(id, image.GetProperty("Id").GetString());
        Assert.Equal(["busybox:latest"], image.GetProperty("RepoTags").EnumerateArray().Select(t => t.GetString()));
        Assert.StartsWith("busybox@sha256:", image.GetProperty("RepoDigests")[0].GetString());
        Assert.Equal("hello\n", docker.Ok("run", "--rm", "busybox", "echo", "hello"));

        Assert.Equal($"[\"{dead}/\",\"http://{registry.Host}/\"]\n", docker.Ok("info", "-f", "{{json .RegistryConfig.Mirrors}}"));
        Assert.Equal($"[\"{dead}/\",\"http://{registry.Host}/\"]\n", docker.Ok("info", "-f", "{{json (index .RegistryConfig.IndexConfigs \"docker.io\").Mirrors}}"));
        Assert.Contains($"Registry Mirrors:\n  {dead}/\n  http://{registry.Host}/\n", docker.Ok("info"));
    }
}
