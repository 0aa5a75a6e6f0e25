using System.IO.Compression;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Registry;
using Berth.Images.Snapshots;
using Berth.Images.Store;
using Berth.Images.Tests.Layers;
using Berth.Images.Tests.Snapshots;
using Berth.Images.Tests.Store;

namespace Berth.Images.Tests.Registry;

/// <summary>
/// ImageStore.PullAndUnpackAsync against the real registry: a layer whose parent is unpacked is
/// unpacked while it downloads (never read back from the content store), and nothing of it is
/// committed unless the download completed and verified.
/// </summary>
[Collection(RegistryCollection.Name)]
public sealed class StreamedUnpackTests(RegistryFixture fixture)
{
    private readonly RegistryProcess _registry = fixture.Registry;

    private static RegistryClient Client(RecordingHandler? handler = null) => RegistryPullPushTests.Client(handler);

    private string Name(string repo) => $"{_registry.Host}/{repo}-{Guid.NewGuid().ToString("N")[..8]}:v1";

    private static async Task<string> PushAsync(IReadOnlyList<(byte[] Gz, Digest DiffId)> layers, string name)
    {
        using var local = new StoreScope();
        Descriptor manifest = await TestImages.StoreImageAsync(local.Content, layers);
        local.Images.SetReference(ImageReference.Parse(name), manifest with { Platform = null });
        using RegistryClient client = Client();
        await local.Images.PushAsync(client, name);
        return name;
    }

    private static void AssertNoActiveSnapshots(StoreScope scope)
        => Assert.DoesNotContain(scope.Snapshotter.Walk(), s => s.Kind != SnapshotKind.Committed);

    [Fact]
    public async Task The_bottom_layer_unpacks_while_it_downloads_and_a_layer_on_an_unpacked_parent_too()
    {
        var busybox = TestImages.BusyboxLayer;
        var motd = TestImages.FileLayer("etc/motd", "first");
        string first = await PushAsync([busybox, motd], Name("test/stream-a"));

        using var remote = new StoreScope(countReads: true);
        using RegistryClient client = Client();
        var unpacking = new ListProgress<UnpackProgress>();
        Image image = await remote.Images.PullAndUnpackAsync(client, first, unpacking: unpacking);

        // The bottom layer went from the network into its snapshot; the top one had no parent
        // snapshot when the download began, so it was unpacked afterwards from the store.
        Assert.Equal(0, remote.Counting!.Reads(Digest.Compute(busybox.Gz)));
        Assert.True(remote.Counting.Reads(Digest.Compute(motd.Gz)) > 0);
        Assert.Equal(image.ChainIds.Select(c => c.Value).Order(), remote.Snapshotter.Walk().Select(s => s.Name).Order());
        Assert.All(image.Manifest.Layers, l => Assert.Contains(unpacking.Items, p => p.Done && p.Layer == l.ParsedDigest));
        remote.Snapshotter.View("check", image.ChainIds[^1].Value);
        using (var mount = new MountScope(remote.Snapshotter.Mounts("check")))
        {
            Assert.Equal(new FileInfo(TestImages.BusyboxPath).Length, new FileInfo(mount.Combine("bin/busybox")).Length);
            Assert.Equal("busybox", new FileInfo(mount.Combine("bin/sh")).LinkTarget);
            Assert.Equal("first", File.ReadAllText(mount.Combine("etc/motd")));
        }
        remote.Snapshotter.Remove("check");

        // A second image on the same bottom layer: its own top layer now has its parent unpacked.
        var other = TestImages.FileLayer("etc/motd", "second");
        string second = await PushAsync([busybox, other], Name("test/stream-b"));
        Image image2 = await remote.Images.PullAndUnpackAsync(client, second);
        Assert.Equal(0, remote.Counting.Reads(Digest.Compute(other.Gz)));
        Assert.Equal(3, remote.Snapshotter.Walk().Count);
        remote.Snapshotter.View("check2", image2.ChainIds[^1].Value);
        using (var mount = new MountScope(remote.Snapshotter.Mounts("check2")))
            Assert.Equal("second", File.ReadAllText(mount.Combine("etc/motd")));
        remote.Snapshotter.Remove("check2");
    }

    [Fact]
    public async Task A_layer_whose_bytes_do_not_match_its_digest_leaves_no_snapshot()
    {
        var busybox = TestImages.BusyboxLayer;
        string name = await PushAsync([busybox], Name("test/stream-tamper"));
        Digest layer = Digest.Compute(busybox.Gz);
        using var handler = new RecordingHandler
        {
            // The last byte of the gzip trailer: the whole tar decompresses and applies, only the digest is wrong.
            Tamper = (request, body) => request.RequestUri!.AbsolutePath.EndsWith("/blobs/" + layer, StringComparison.Ordinal)
                ? body.Select((b, i) => i == body.Length - 1 ? (byte)(b ^ 0xff) : b).ToArray() : null,
        };
        using var remote = new StoreScope();
        using RegistryClient client = Client(handler);
        var e = await Assert.ThrowsAsync<RegistryException>(() => remote.Images.PullAndUnpackAsync(client, name));
        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
        Assert.Contains("digest mismatch", e.Message);
        Assert.Empty(remote.Snapshotter.Walk());
        Assert.False(remote.Content.Exists(layer));
        Assert.Empty(remote.Images.References());
    }

    [Fact]
    public async Task A_hostile_layer_is_refused_naming_its_entry_and_writes_nothing_outside()
    {
        using var canary = new Canary();
        string escape = string.Concat(Enumerable.Repeat("../", 10)) + canary.Directory.TrimStart('/') + "/canary";
        byte[] raw = new TarBuilder().File("ok", "fine").File(escape, "overwritten").ToArray();
        var gz = new MemoryStream();
        using (var z = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true)) z.Write(raw);
        string name = await PushAsync([(gz.ToArray(), Digest.Compute(raw))], Name("test/stream-hostile"));

        using var remote = new StoreScope();
        using RegistryClient client = Client();
        var e = await Assert.ThrowsAsync<ImagesException>(() => remote.Images.PullAndUnpackAsync(client, name));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"`{escape}`", e.Message);
        Assert.Empty(remote.Snapshotter.Walk());
        canary.AssertUntouched();
    }

    [Fact]
    public async Task A_download_cut_off_midway_is_retried_and_the_layer_unpacked_from_the_store()
    {
        var busybox = TestImages.BusyboxLayer;
        string name = await PushAsync([busybox], Name("test/stream-retry"));
        Digest layer = Digest.Compute(busybox.Gz);
        int cut = 0;
        using var handler = new RecordingHandler
        {
            Intercept = r => r.RequestUri!.AbsolutePath.EndsWith("/blobs/" + layer, StringComparison.Ordinal) && Interlocked.Increment(ref cut) == 1
                ? new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StreamContent(new CutOffStream(busybox.Gz, busybox.Gz.Length / 2)) }
                : null,
        };
        using var remote = new StoreScope(countReads: true);
        using RegistryClient client = Client(handler);
        Image image = await remote.Images.PullAndUnpackAsync(client, name);

        Assert.Equal(2, handler.Count("GET", "/blobs/" + layer));
        Assert.True(remote.Counting!.Reads(layer) > 0, "the half-applied streamed snapshot was dropped and the layer unpacked from the store");
        Assert.Equal([image.ChainIds[0].Value], remote.Snapshotter.Walk().Select(s => s.Name));
        remote.Snapshotter.View("check", image.ChainIds[0].Value);
        using (var mount = new MountScope(remote.Snapshotter.Mounts("check")))
            Assert.Equal(new FileInfo(TestImages.BusyboxPath).Length, new FileInfo(mount.Combine("bin/busybox")).Length);
        remote.Snapshotter.Remove("check");
        AssertNoActiveSnapshots(remote);
    }

    /// <summary>Gives the first <c>limit</c> bytes, then fails as a dropped connection does.</summary>
    private sealed class CutOffStream(byte[] data, int limit) : ReadOnlyStream
    {
        private int _position;

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_position >= limit) throw new IOException("connection reset by peer (test)");
            int n = Math.Min(count, limit - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }
    }
}
