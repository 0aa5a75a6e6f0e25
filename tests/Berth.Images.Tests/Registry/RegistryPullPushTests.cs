using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Registry;
using Berth.Images.Snapshots;
using Berth.Images.Store;
using Berth.Images.Tests.Snapshots;
using Berth.Images.Tests.Store;

namespace Berth.Images.Tests.Registry;

/// <summary>Pull and push against Debian's real Distribution registry on 127.0.0.1.</summary>
[Collection(RegistryCollection.Name)]
public sealed class RegistryPullPushTests(RegistryFixture fixture)
{
    private readonly RegistryProcess _registry = fixture.Registry;

    internal static RegistryClient Client(RecordingHandler? handler = null, int chunk = 8 * 1024 * 1024)
        => new(new RegistryClientOptions
        {
            Handler = handler,
            Credentials = DockerConfigCredentials.Empty,
            UploadChunkSize = chunk,
            InitialRetryDelay = TimeSpan.FromMilliseconds(10),
        });

    private string Name(string repo, string tag) => $"{_registry.Host}/{repo}-{Guid.NewGuid().ToString("N")[..8]}:{tag}";

    private static async Task<string> BuildBusyboxAsync(StoreScope scope, string name, bool docker = false)
    {
        Descriptor manifest = await TestImages.StoreImageAsync(scope.Content,
            [TestImages.BusyboxLayer, TestImages.FileLayer("etc/motd", "hello " + name)], docker: docker);
        scope.Images.SetReference(ImageReference.Parse(name), manifest with { Platform = null });
        return name;
    }

    [Fact]
    public async Task Push_then_pull_round_trips_with_the_same_digests_and_unpacks()
    {
        using var local = new StoreScope();
        using var remote = new StoreScope();
        string name = await BuildBusyboxAsync(local, Name("test/busybox", "v1"), docker: true);
        Image built = local.Images.Get(name);
        using var handler = new RecordingHandler();
        using RegistryClient client = Client(handler, chunk: 256 * 1024);

        var pushProgress = new ListProgress<PushProgress>();
        await local.Images.PushAsync(client, name, options: new PushOptions { Progress = pushProgress });
        Assert.True(handler.Count("PATCH", "/blobs/uploads/") > 4, "the 2 MB busybox layer goes up in several 256 KiB chunks");
        Assert.Contains(pushProgress.Items, p => p.State == PushState.Pushed && p.Digest == built.Manifest.Layers[0].ParsedDigest);
        // The repository pushed to has the manifest's digest, as dockerd records it (none before the push).
        string repoDigest = ImageReference.Parse(name).WithDigest(built.Target.ParsedDigest).FamiliarName;
        Assert.Equal([repoDigest], local.Images.Inspect(name).RepoDigests);

        var pullProgress = new ListProgress<PullProgress>();
        Image pulled = await remote.Images.PullAsync(client, name, progress: pullProgress);
        Assert.Equal(built.Id, pulled.Id);
        Assert.Equal(built.Target.Digest, pulled.Target.Digest);
        Assert.Equal(MediaTypes.DockerManifest, pulled.Target.MediaType);
        Assert.Equal([repoDigest], remote.Images.Inspect(name).RepoDigests);
        foreach (Descriptor layer in pulled.Manifest.Layers)
        {
            Assert.True(remote.Content.Exists(layer.ParsedDigest));
            using Stream s = remote.Content.OpenRead(layer.ParsedDigest);
            Assert.Equal(layer.ParsedDigest, Digest.Compute(await RegistryClient.ReadAllAsync(s, int.MaxValue, default)));
        }
        Assert.Contains(pullProgress.Items, p => p.State == PullState.Complete && p.Digest == pulled.Manifest.Layers[0].ParsedDigest && p.Current == p.Total);
        Assert.Contains(pullProgress.Items, p => p.State == PullState.Downloading && p.Current > 0);

        string? top = await remote.Images.UnpackAsync(name);
        Assert.Equal(pulled.ChainIds[^1].Value, top);
        remote.Snapshotter.View("check", top);
        using (var mount = new MountScope(remote.Snapshotter.Mounts("check")))
        {
            Assert.Equal(new FileInfo(TestImages.BusyboxPath).Length, new FileInfo(mount.Combine("bin/busybox")).Length);
            Assert.Equal("busybox", new FileInfo(mount.Combine("bin/sh")).LinkTarget);
            Assert.StartsWith("hello ", File.ReadAllText(mount.Combine("etc/motd")));
        }
        remote.Snapshotter.Remove("check");

        // A second pull finds everything present and downloads nothing.
        int blobGets = handler.Count("GET", "/blobs/sha256:");
        var again = new ListProgress<PullProgress>();
        await remote.Images.PullAsync(client, name, progress: again);
        Assert.Equal(blobGets, handler.Count("GET", "/blobs/sha256:"));
        Assert.All(again.Items, p => Assert.Equal(PullState.AlreadyExists, p.State == PullState.Waiting ? PullState.AlreadyExists : p.State));
    }

    [Fact]
    public async Task Pull_by_digest_verifies_and_names_the_digest()
    {
        using var local = new StoreScope();
        using var remote = new StoreScope();
        string name = await BuildBusyboxAsync(local, Name("test/bydigest", "v1"));
        using RegistryClient client = Client();
        await local.Images.PushAsync(client, name);
        Digest digest = local.Images.Get(name).Target.ParsedDigest;
        string byDigest = ImageReference.Parse(name).WithDigest(digest).ToString();

        Image pulled = await remote.Images.PullAsync(client, byDigest);
        Assert.Equal(digest, pulled.Target.ParsedDigest);
        Assert.Contains(remote.Images.References(), r => r.Name == byDigest);
        Assert.Contains(byDigest, remote.Images.Inspect(byDigest).RepoDigests.Select(d => ImageReference.Parse(d).ToString()));
    }

    [Fact]
    public async Task A_manifest_list_with_two_platforms_pulls_the_hosts()
    {
        using var local = new StoreScope();
        using var remote = new StoreScope();
        Descriptor host = await TestImages.StoreImageAsync(local.Content, [TestImages.FileLayer("etc/arch", "host")], PlatformMatcher.Host, docker: true);
        Descriptor other = await TestImages.StoreImageAsync(local.Content, [TestImages.FileLayer("etc/arch", "other")], TestImages.OtherPlatform, docker: true);
        Descriptor list = await TestImages.StoreIndexAsync(local.Content, [other, host], docker: true);
        string name = Name("test/multi", "latest");
        local.Images.SetReference(ImageReference.Parse(name), list);
        using RegistryClient client = Client();
        await local.Images.PushAsync(client, name);

        Image pulled = await remote.Images.PullAsync(client, name);
        Assert.Equal(list.Digest, pulled.Target.Digest);
        Assert.Equal(host.Digest, pulled.ManifestDescriptor.Digest);
        Assert.Equal(PlatformMatcher.Host.Architecture, remote.Images.Inspect(name).Platform.Architecture);
        Assert.False(remote.Content.Exists(other.ParsedDigest), "the other platform's manifest is not pulled");

        // An explicit platform picks the other entry.
        using var third = new StoreScope();
        Image otherPulled = await third.Images.PullAsync(client, name, TestImages.OtherPlatform);
        Assert.Equal(other.Digest, otherPulled.ManifestDescriptor.Digest);
        var none = await Assert.ThrowsAsync<ImagesException>(() => third.Images.PullAsync(client, name, PlatformMatcher.Parse("linux/s390x")));
        Assert.Equal(ImagesErrorKind.NotFound, none.Kind);
        Assert.Contains("linux/s390x", none.Message);
    }

    [Fact]
    public async Task A_blob_whose_bytes_do_not_match_its_digest_is_refused_and_not_stored()
    {
        using var local = new StoreScope();
        using var remote = new StoreScope();
        string name = await BuildBusyboxAsync(local, Name("test/tamper", "v1"));
        using (RegistryClient plain = Client()) await local.Images.PushAsync(plain, name);
        Image built = local.Images.Get(name);
        Digest layer = built.Manifest.Layers[1].ParsedDigest;

        using var handler = new RecordingHandler
        {
            Tamper = (request, body) => request.RequestUri!.AbsolutePath.EndsWith("/blobs/" + layer, StringComparison.Ordinal)
                ? body.Select((b, i) => i == body.Length / 2 ? (byte)(b ^ 0xff) : b).ToArray() : null,
        };
        using RegistryClient client = Client(handler);
        var e = await Assert.ThrowsAsync<RegistryException>(() => remote.Images.PullAsync(client, name));
        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
        Assert.Contains(layer.Value, e.Message);
        Assert.Contains("digest mismatch", e.Message);
        Assert.False(remote.Content.Exists(layer));
        Assert.Empty(remote.Images.References());
    }

    [Fact]
    public async Task A_manifest_that_does_not_match_the_digest_asked_for_is_refused()
    {
        using var local = new StoreScope();
        using var remote = new StoreScope();
        string name = await BuildBusyboxAsync(local, Name("test/tampermanifest", "v1"));
        using (RegistryClient plain = Client()) await local.Images.PushAsync(plain, name);
        Digest digest = local.Images.Get(name).Target.ParsedDigest;

        // A registry (or a proxy) that serves other bytes for the manifest: add a space to the JSON.
        using var handler = new RecordingHandler
        {
            Tamper = (request, body) => request.RequestUri!.AbsolutePath.Contains("/manifests/", StringComparison.Ordinal) ? [.. body, (byte)' '] : null,
        };
        using RegistryClient client = Client(handler);
        var e = await Assert.ThrowsAsync<ImagesException>(() => remote.Images.PullAsync(client, ImageReference.Parse(name).WithDigest(digest).ToString()));
        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
        Assert.Contains("manifest digest mismatch", e.Message);
        // By tag, the registry's Docker-Content-Digest header is the check.
        e = await Assert.ThrowsAsync<ImagesException>(() => remote.Images.PullAsync(client, name));
        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
        Assert.Empty(remote.Content.List());
    }

    [Fact]
    public async Task An_unknown_tag_is_a_clear_not_found()
    {
        using var remote = new StoreScope();
        using RegistryClient client = Client();
        string name = Name("test/nothing", "missing");
        var e = await Assert.ThrowsAsync<RegistryException>(() => remote.Images.PullAsync(client, name));
        Assert.Equal(ImagesErrorKind.NotFound, e.Kind);
        Assert.Contains($"registry {_registry.Host}", e.Message);
        Assert.Contains(ImageReference.Parse(name).Path, e.Message);
        Assert.Contains("missing", e.Message);
        Assert.Contains("MANIFEST_UNKNOWN", e.ErrorCodes);
        Assert.Contains("MANIFEST_UNKNOWN", e.Message);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, e.StatusCode);

        // An unknown blob: BLOB_UNKNOWN, naming the digest.
        Digest nowhere = Digest.Compute("nothing"u8);
        var b = await Assert.ThrowsAsync<RegistryException>(() => client.OpenBlobAsync(ImageReference.Parse(name), nowhere));
        Assert.Equal(ImagesErrorKind.NotFound, b.Kind);
        Assert.Contains(nowhere.Value, b.Message);
    }

    [Fact]
    public async Task Concurrent_pulls_of_images_sharing_layers_download_each_blob_once()
    {
        using var local = new StoreScope();
        using var remote = new StoreScope();
        var shared = TestImages.BusyboxLayer;
        string a = Name("test/shared-a", "v1"), b = Name("test/shared-b", "v1");
        Descriptor ma = await TestImages.StoreImageAsync(local.Content, [shared, TestImages.FileLayer("a", "a")]);
        Descriptor mb = await TestImages.StoreImageAsync(local.Content, [shared, TestImages.FileLayer("b", "b")]);
        local.Images.SetReference(ImageReference.Parse(a), ma);
        local.Images.SetReference(ImageReference.Parse(b), mb);
        using (RegistryClient plain = Client())
        {
            await local.Images.PushAsync(plain, a);
            await local.Images.PushAsync(plain, b);
        }

        using var handler = new RecordingHandler();
        using RegistryClient client = Client(handler);
        await Task.WhenAll(remote.Images.PullAsync(client, a), remote.Images.PullAsync(client, b));
        Digest sharedDigest = Digest.Compute(shared.Gz);
        Assert.Equal(1, handler.Count("GET", "/blobs/" + sharedDigest));

        // Both unpack; the shared bottom layer is one snapshot.
        await Task.WhenAll(remote.Images.UnpackAsync(a), remote.Images.UnpackAsync(b));
        Assert.Equal(3, remote.Snapshotter.Walk().Count);
    }

    [Fact]
    public async Task Push_to_another_repository_mounts_the_blobs_instead_of_uploading()
    {
        using var local = new StoreScope();
        string name = await BuildBusyboxAsync(local, Name("test/mount-src", "v1"));
        using var handler = new RecordingHandler();
        using RegistryClient client = Client(handler);
        await local.Images.PushAsync(client, name);
        int patches = handler.Count("PATCH", "/blobs/uploads/");

        string target = Name("test/mount-dst", "v1");
        var progress = new ListProgress<PushProgress>();
        await local.Images.PushAsync(client, name, target, new PushOptions { MountFrom = [ImageReference.Parse(name).Path], Progress = progress });
        Assert.Equal(patches, handler.Count("PATCH", "/blobs/uploads/"));
        Assert.Equal(3, progress.Items.Count(p => p.State == PushState.Mounted));

        using var remote = new StoreScope();
        Assert.Equal(local.Images.Get(name).Id, (await remote.Images.PullAsync(client, target)).Id);
    }

    [Fact]
    public async Task Server_errors_and_rate_limits_are_retried_with_back_off_then_reported()
    {
        using var local = new StoreScope();
        string name = await BuildBusyboxAsync(local, Name("test/retry", "v1"));
        using (RegistryClient plain = Client()) await local.Images.PushAsync(plain, name);

        int failures = 0;
        using var handler = new RecordingHandler
        {
            Intercept = r => r.RequestUri!.AbsolutePath.Contains("/blobs/", StringComparison.Ordinal) && Interlocked.Increment(ref failures) <= 2
                ? new HttpResponseMessage(failures == 1 ? System.Net.HttpStatusCode.ServiceUnavailable : System.Net.HttpStatusCode.BadGateway)
                : null,
        };
        using (RegistryClient client = Client(handler))
        {
            using var remote = new StoreScope();
            Assert.Equal(local.Images.Get(name).Id, (await remote.Images.PullAsync(client, name)).Id);
        }

        using var limited = new RecordingHandler { Intercept = _ => new HttpResponseMessage(System.Net.HttpStatusCode.TooManyRequests) };
        using (RegistryClient client = Client(limited))
        {
            using var remote = new StoreScope();
            var e = await Assert.ThrowsAsync<RegistryException>(() => remote.Images.PullAsync(client, name));
            Assert.Equal(ImagesErrorKind.Unavailable, e.Kind);
            Assert.Contains("rate limited", e.Message);
            Assert.Equal(4, limited.Requests.Count);
        }
    }
}
