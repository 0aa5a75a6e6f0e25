using System.Net;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Registry;
using Berth.Images.Store;
using Berth.Images.Tests.Store;

namespace Berth.Images.Tests.Registry;

/// <summary>
/// Docker Hub mirrors (<see cref="RegistryClientOptions.Mirrors"/>) against Debian's Distribution
/// registry on 127.0.0.1 playing the mirror: docker.io pulls go to the mirrors in order, the
/// image keeps its docker.io name, other registries never see the mirrors.
/// </summary>
[Collection(RegistryCollection.Name)]
public sealed class RegistryMirrorTests(RegistryFixture fixture)
{
    private readonly RegistryProcess _registry = fixture.Registry;

    /// <summary>Puts an image at <c>MIRROR/library/NAME:v1</c>; returns NAME and the image.</summary>
    private async Task<(string Name, Image Image)> SeedMirrorAsync()
    {
        string name = "mirrored-" + Guid.NewGuid().ToString("N")[..8];
        using var seed = new StoreScope();
        Descriptor manifest = await TestImages.StoreImageAsync(seed.Content, [TestImages.BusyboxLayer, TestImages.FileLayer("etc/motd", "from the mirror")]);
        string onMirror = $"{_registry.Host}/library/{name}:v1";
        seed.Images.SetReference(ImageReference.Parse(onMirror), manifest with { Platform = null });
        using RegistryClient client = RegistryPullPushTests.Client();
        await seed.Images.PushAsync(client, onMirror);
        return (name, seed.Images.Get(onMirror));
    }

    [Fact]
    public async Task A_docker_io_pull_tries_the_mirrors_in_order_and_keeps_the_docker_io_name()
    {
        var (name, seeded) = await SeedMirrorAsync();
        var dead = new Uri($"http://127.0.0.1:{RegistryProcess.FreePort()}/");
        var empty = new Uri($"http://localhost:{_registry.Port}/"); // answers 404 to everything (below)
        var good = new Uri($"http://{_registry.Host}/");
        using var handler = new RecordingHandler
        {
            Intercept = r => r.RequestUri!.Host == "localhost"
                ? new HttpResponseMessage(HttpStatusCode.NotFound) { Content = new StringContent("""{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}""") }
                : null,
        };
        var failed = new List<(Uri Mirror, Exception Error)>();
        using var client = new RegistryClient(new RegistryClientOptions
        {
            Handler = handler,
            Credentials = DockerConfigCredentials.Empty,
            InitialRetryDelay = TimeSpan.FromMilliseconds(10),
            Mirrors = [dead, empty, good],
            MirrorFailed = (mirror, e) => failed.Add((mirror, e)),
        });

        using var local = new StoreScope();
        Image pulled = await local.Images.PullAsync(client, name + ":v1");

        Assert.Equal(seeded.Id, pulled.Id);
        Assert.Equal(seeded.Target.Digest, pulled.Target.Digest);
        // The tag and the repository's digest name, both docker.io's.
        Assert.Equal([$"docker.io/library/{name}:v1", $"docker.io/library/{name}@{pulled.Target.Digest}"], local.Images.References().Select(r => r.Name));
        Assert.Equal([dead, empty], failed.Select(f => f.Mirror));
        Assert.Contains("cannot reach", failed[0].Error.Message);
        Assert.Equal(ImagesErrorKind.NotFound, Assert.IsType<RegistryException>(failed[1].Error).Kind);
        // Every request went to a mirror with the docker.io path; none to Docker Hub.
        Assert.Contains($"GET /v2/library/{name}/manifests/v1", handler.Requests);
        Assert.True(handler.Count("GET", "/blobs/sha256:") >= 3, string.Join('\n', handler.Requests)); // config and two layers from the good mirror
    }

    [Fact]
    public async Task Pulls_from_other_registries_do_not_use_the_mirrors()
    {
        var (name, seeded) = await SeedMirrorAsync();
        var failed = new List<Uri>();
        using var client = new RegistryClient(new RegistryClientOptions
        {
            Credentials = DockerConfigCredentials.Empty,
            Mirrors = [new Uri($"http://127.0.0.1:{RegistryProcess.FreePort()}/")],
            MirrorFailed = (mirror, _) => failed.Add(mirror),
        });
        using var local = new StoreScope();
        Image pulled = await local.Images.PullAsync(client, $"{_registry.Host}/library/{name}:v1");
        Assert.Equal(seeded.Id, pulled.Id);
        Assert.Empty(failed);
    }

    [Theory]
    [InlineData("ftp://mirror.example")]
    [InlineData("http://mirror.example/path")]
    [InlineData("https://user:secret@mirror.example")]
    public void A_mirror_that_is_not_http_s_host_port_is_refused(string mirror)
    {
        var e = Assert.Throws<ImagesException>(() => new RegistryClient(new RegistryClientOptions { Mirrors = [new Uri(mirror)], Credentials = DockerConfigCredentials.Empty }));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
    }
}
