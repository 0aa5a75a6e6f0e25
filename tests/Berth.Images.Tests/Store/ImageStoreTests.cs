using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Store;

namespace Berth.Images.Tests.Store;

public sealed class ImageStoreTests
{
    private static async Task<Descriptor> BuildAsync(StoreScope scope, string name, string content)
    {
        Descriptor m = await TestImages.StoreImageAsync(scope.Content, [TestImages.FileLayer("base", "base"), TestImages.FileLayer("f", content)]);
        m = m with { Platform = null };
        scope.Images.SetReference(ImageReference.Parse(name), m);
        return m;
    }

    [Fact]
    public async Task References_persist_and_resolve_by_name_id_and_prefix()
    {
        using var scope = new StoreScope();
        Descriptor m = await BuildAsync(scope, "busybox", "x");
        Image image = scope.Images.Get("busybox");
        scope.Reopen();
        Assert.Equal("docker.io/library/busybox:latest", Assert.Single(scope.Images.References()).Name);
        Assert.Equal(image.Id, scope.Images.Get("docker.io/library/busybox:latest").Id);
        Assert.Equal(image.Id, scope.Images.Get(image.Id.Value).Id);
        Assert.Equal(image.Id, scope.Images.Get(image.Id.Hex[..12]).Id);
        Assert.Equal(image.Id, scope.Images.Get("busybox@" + m.Digest).Id);
        var e = Assert.Throws<ImagesException>(() => scope.Images.Get("nothing:here"));
        Assert.Equal(ImagesErrorKind.NotFound, e.Kind);
        Assert.Contains("No such image: nothing:here", e.Message);
        Assert.False(File.Exists(Path.Combine(scope.Images.Root, "references.json.tmp")));
    }

    [Fact]
    public async Task Tag_list_inspect_and_history()
    {
        using var scope = new StoreScope();
        await BuildAsync(scope, "localhost:5000/x/y:1", "x");
        scope.Images.Tag("localhost:5000/x/y:1", "other:2");
        ImageSummary summary = Assert.Single(scope.Images.List());
        Assert.Equal(["localhost:5000/x/y:1", "other:2"], summary.RepoTags);
        Assert.Empty(summary.RepoDigests); // named here, not pulled or pushed
        ImageDetails details = scope.Images.Inspect("other:2");
        Assert.Equal(PlatformMatcher.Host.Architecture, details.Platform.Architecture);
        Assert.Equal(["/bin/sh"], details.Config!.Cmd);
        Assert.Equal(2, details.DiffIds.Count);
        IReadOnlyList<ImageHistoryItem> history = scope.Images.History("other:2");
        Assert.Equal(["layer 1", "layer 0"], history.Select(h => h.CreatedBy));
        Assert.Equal(details.Id.Value, history[0].Id);
        Assert.Equal("<missing>", history[1].Id);
        Assert.True(history[0].Size > 0);
    }

    [Fact]
    public async Task Remove_untags_and_refuses_an_image_in_use_unless_forced()
    {
        var usage = new FakeUsage();
        using var scope = new StoreScope(usage);
        await BuildAsync(scope, "a:1", "x");
        scope.Images.Tag("a:1", "b:1");
        Image image = scope.Images.Get("a:1");
        usage.InUse.Add(image.Id);

        // Untagging one of two names is fine; the last name of an image in use is not.
        Assert.Equal([new ImageRemoval("a:1", null)], scope.Images.Remove("a:1"));
        var e = Assert.Throws<ImagesException>(() => scope.Images.Remove("b:1"));
        Assert.Equal(ImagesErrorKind.Conflict, e.Kind);
        Assert.Equal($"conflict: unable to remove repository reference \"b:1\" (must force) - container c0ffee{image.Id.Hex[..6]} is using its referenced image {image.Id.Hex[..12]}", e.Message);
        Assert.Equal([new ImageRemoval("b:1", null), new ImageRemoval(null, image.Id)], scope.Images.Remove("b:1", force: true));
        Assert.Empty(scope.Images.References());
    }

    /// <summary>
    /// dockerd's rmi of a running container's image: forced, its last name goes and the image stays
    /// without one (listed as &lt;none&gt;, found by ID); by ID it cannot be forced; once the container
    /// has stopped, by ID it must be forced.
    /// </summary>
    [Fact]
    public async Task Remove_forced_keeps_a_running_containers_image_without_a_name()
    {
        var usage = new FakeUsage();
        using var scope = new StoreScope(usage);
        await BuildAsync(scope, "a:1", "x");
        Image image = scope.Images.Get("a:1");
        usage.InUse.Add(image.Id);
        usage.Running.Add(image.Id);
        string container = "c0ffee" + image.Id.Hex[..6];

        var e = Assert.Throws<ImagesException>(() => scope.Images.Remove(image.Id.Value, force: true));
        Assert.Equal(ImagesErrorKind.Conflict, e.Kind);
        Assert.Equal($"conflict: unable to delete {image.Id.Hex[..12]} (cannot be forced) - image is being used by running container {container}", e.Message);
        Assert.Equal([new ImageRemoval("a:1", null)], scope.Images.Remove("a:1", force: true));
        Assert.Equal(image.Id, scope.Images.Get(image.Id.Hex[..12]).Id);
        Assert.Empty(scope.Images.References());
        Assert.Empty(Assert.Single(scope.Images.List(), i => i.Id == image.Id).RepoTags);

        usage.Running.Clear();
        e = Assert.Throws<ImagesException>(() => scope.Images.Remove(image.Id.Value));
        Assert.Equal($"conflict: unable to delete {image.Id.Hex[..12]} (must be forced) - image is being used by stopped container {container}", e.Message);
        Assert.Equal([new ImageRemoval(null, image.Id)], scope.Images.Remove(image.Id.Value, force: true));
        Assert.Empty(scope.Images.List());
    }

    [Fact]
    public async Task Remove_by_id_with_names_in_several_repositories_needs_force()
    {
        using var scope = new StoreScope();
        await BuildAsync(scope, "a:1", "x");
        scope.Images.Tag("a:1", "b:1");
        Image image = scope.Images.Get("a:1");
        Assert.Equal(ImagesErrorKind.Conflict, Assert.Throws<ImagesException>(() => scope.Images.Remove(image.Id.Value)).Kind);
        Assert.Equal(3, scope.Images.Remove(image.Id.Hex[..12], force: true).Count);
    }

    /// <summary>Collects reports synchronously (Progress&lt;T&gt; would post them to the thread pool, out of order).</summary>
    private sealed class Reports<T> : IProgress<T>
    {
        public List<T> Items { get; } = [];
        public void Report(T value) { lock (Items) Items.Add(value); }
    }

    [Fact]
    public async Task Unpack_reports_each_layer_it_unpacks_up_to_its_size_then_done_and_nothing_for_layers_already_there()
    {
        using var scope = new StoreScope(new FakeUsage());
        await BuildAsync(scope, "a:1", "a");
        await BuildAsync(scope, "b:1", "b");
        Image ia = scope.Images.Get("a:1"), ib = scope.Images.Get("b:1");

        var first = new Reports<UnpackProgress>();
        await scope.Images.UnpackAsync("a:1", progress: first);
        foreach (Descriptor layer in ia.Manifest.Layers)
        {
            var mine = first.Items.Where(r => r.Layer == layer.ParsedDigest).ToList();
            Assert.True(mine.Count >= 2, $"layer {layer.Digest}: {mine.Count} reports");
            Assert.All(mine.Zip(mine.Skip(1)), pair => Assert.True(pair.First.Current <= pair.Second.Current));
            Assert.All(mine[..^1], r => Assert.False(r.Done));
            Assert.Equal(layer.Size, mine[^2].Current); // the last count is the whole blob
            Assert.True(mine[^1].Done);
            Assert.Equal(layer.Size, mine[^1].Current);
            Assert.All(mine, r => Assert.Equal(layer.Size, r.Total));
            Assert.Equal(1, mine.Count(r => r.Done));
        }

        // b shares a's first layer: only b's own layer is unpacked, and reported.
        var second = new Reports<UnpackProgress>();
        await scope.Images.UnpackAsync("b:1", progress: second);
        Assert.DoesNotContain(second.Items, r => r.Layer == ib.Manifest.Layers[0].ParsedDigest);
        Assert.Contains(second.Items, r => r.Layer == ib.Manifest.Layers[^1].ParsedDigest && r.Done);
    }

    [Fact]
    public async Task Unpack_shares_layers_between_images_and_gc_removes_what_no_name_reaches()
    {
        var usage = new FakeUsage();
        using var scope = new StoreScope(usage);
        Descriptor a = await BuildAsync(scope, "a:1", "a");
        Descriptor b = await BuildAsync(scope, "b:1", "b");
        Image ia = scope.Images.Get("a:1"), ib = scope.Images.Get("b:1");
        string? topA = await scope.Images.UnpackAsync("a:1");
        string? topB = await scope.Images.UnpackAsync("b:1");
        Assert.Equal(ia.ChainIds[0], ib.ChainIds[0]);
        Assert.Equal(3, scope.Snapshotter.Walk().Count);
        Assert.Equal(ia.ChainIds[0].Value, scope.Snapshotter.Stat(topA!).Parent);

        // Nothing is garbage while both are named; a stray blob is.
        Digest stray = Digest.Compute("stray"u8);
        await scope.Content.WriteAsync(new MemoryStream("stray"u8.ToArray()), stray);
        scope.Snapshotter.Prepare(ImageStore.ExtractPrefix + "crashed", null);
        GarbageCollectionResult first = await scope.Images.CollectGarbageAsync();
        Assert.Equal([stray], first.RemovedBlobs);
        Assert.Equal([ImageStore.ExtractPrefix + "crashed"], first.RemovedSnapshots);

        // A container's layer on top of b keeps b's snapshots even when b loses its name.
        scope.Snapshotter.Prepare("container-1", topB);
        scope.Images.Remove("a:1");
        scope.Images.Remove("b:1");
        GarbageCollectionResult second = await scope.Images.CollectGarbageAsync();
        Assert.Contains(a.ParsedDigest, second.RemovedBlobs);
        Assert.Contains(b.ParsedDigest, second.RemovedBlobs);
        Assert.Contains(ia.Id, second.RemovedBlobs);
        Assert.Equal([topA!], second.RemovedSnapshots);
        Assert.Equal(["container-1", ia.ChainIds[0].Value, topB!], scope.Snapshotter.Walk().Select(s => s.Name).Order(StringComparer.Ordinal).ToArray()
            .OrderBy(n => n == "container-1" ? 0 : n == ia.ChainIds[0].Value ? 1 : 2));
        Assert.Empty(scope.Content.List());

        scope.Snapshotter.Remove("container-1");
        GarbageCollectionResult third = await scope.Images.CollectGarbageAsync();
        Assert.Equal(2, third.RemovedSnapshots.Count);
        Assert.Empty(scope.Snapshotter.Walk());
    }

    [Fact]
    public async Task Gc_keeps_the_config_of_an_image_in_use_and_the_blobs_of_an_index()
    {
        var usage = new FakeUsage();
        using var scope = new StoreScope(usage);
        Descriptor host = await TestImages.StoreImageAsync(scope.Content, [TestImages.FileLayer("h", "h")]);
        Descriptor other = await TestImages.StoreImageAsync(scope.Content, [TestImages.FileLayer("o", "o")], TestImages.OtherPlatform);
        Descriptor index = await TestImages.StoreIndexAsync(scope.Content, [host, other]);
        scope.Images.SetReference(ImageReference.Parse("multi:1"), index);
        int before = scope.Content.List().Count();
        Assert.Empty((await scope.Images.CollectGarbageAsync()).RemovedBlobs);
        Assert.Equal(before, scope.Content.List().Count());
        Assert.Equal(host.Digest, scope.Images.Get("multi:1").ManifestDescriptor.Digest);
        Assert.Equal(other.Digest, scope.Images.Get("multi:1", TestImages.OtherPlatform).ManifestDescriptor.Digest);

        Digest id = scope.Images.Get("multi:1").Id;
        usage.InUse.Add(id);
        scope.Images.Remove("multi:1", force: true);
        await scope.Images.CollectGarbageAsync();
        Assert.Equal([id], scope.Content.List().Select(c => c.Digest));
    }

    [Fact]
    public async Task Unpack_refuses_a_layer_whose_diff_id_does_not_match_the_config()
    {
        using var scope = new StoreScope();
        var layer = TestImages.FileLayer("f", "real");
        var lie = (layer.Gz, DiffId: Digest.Compute("something else"u8));
        Descriptor m = await TestImages.StoreImageAsync(scope.Content, [lie]);
        scope.Images.SetReference(ImageReference.Parse("liar:1"), m with { Platform = null });
        var e = await Assert.ThrowsAsync<ImagesException>(() => scope.Images.UnpackAsync("liar:1"));
        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
        Assert.Contains("diff_ids[0]", e.Message);
        Assert.Empty(scope.Snapshotter.Walk());
    }
}
