using Berth.Images.Content;
using Berth.Images.Layers;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Store;

namespace Berth.Images.Tests.Store;

/// <summary>
/// Image and layer sizes as dockerd reports them: what a layer holds unpacked (its graph driver's
/// directory.Size), recorded once per layer and measured from the blob when no record exists.
/// </summary>
public sealed class ImageSizeTests
{
    /// <summary>1000 bytes of file, a hard link to it (counted once), a symlink to it (4 bytes: "tool"), a whiteout, a directory.</summary>
    private static readonly (byte[] Gz, Digest DiffId) Tools = TestImages.BuildLayer(w =>
    {
        w.WriteEntry(new TarHeader { Name = "bin", Kind = TarEntryKind.Directory, Mode = 0x1ED });
        w.WriteEntry(new TarHeader { Name = "bin/tool", Kind = TarEntryKind.File, Mode = 0x1ED, Size = 1000 }, new MemoryStream(new byte[1000]));
        w.WriteEntry(new TarHeader { Name = "bin/tool2", Kind = TarEntryKind.Hardlink, LinkName = "bin/tool", Mode = 0x1ED });
        w.WriteEntry(new TarHeader { Name = "bin/t", Kind = TarEntryKind.Symlink, LinkName = "tool", Mode = 0x1FF });
        w.WriteEntry(new TarHeader { Name = ".wh.gone", Kind = TarEntryKind.File, Mode = 0x1A4 });
    });

    private static async Task<Image> StoreAsync(StoreScope scope)
    {
        Descriptor m = await TestImages.StoreImageAsync(scope.Content, [Tools, TestImages.FileLayer("f", "abc")]);
        scope.Images.SetReference(ImageReference.Parse("sized"), m with { Platform = null });
        return scope.Images.Get("sized");
    }

    private static string RecordOf(StoreScope scope, Digest diffId) => Path.Combine(scope.Images.Root, "layer-sizes", diffId.Hex);

    [Fact]
    public async Task Size_is_the_unpacked_content_not_the_blobs_and_is_measured_once()
    {
        using var scope = new StoreScope(countReads: true);
        Image image = await StoreAsync(scope);
        Assert.NotEqual(1007, image.Manifest.Layers.Sum(l => l.Size));

        Assert.Equal(1007, scope.Images.SizeOf(image));
        Assert.Equal(1007, Assert.Single(scope.Images.List()).Size);
        Assert.Equal(1007, scope.Images.Inspect("sized").Size);
        Assert.Equal([3L, 1004L], scope.Images.History("sized").Select(h => h.Size));
        // Measured from the blobs the first time (no record: the layers were never unpacked), then recorded.
        Digest blob = image.Manifest.Layers[0].ParsedDigest;
        Assert.Equal(1, scope.Counting!.Reads(blob));
        Assert.Equal("1004", File.ReadAllText(RecordOf(scope, Tools.DiffId)));

        // A store opened again reads the record, not the blob; a lost record is measured again.
        scope.Reopen();
        Assert.Equal(1007, scope.Images.SizeOf(scope.Images.Get("sized")));
        File.Delete(RecordOf(scope, Tools.DiffId));
        scope.Reopen();
        Assert.Equal(1007, scope.Images.SizeOf(scope.Images.Get("sized")));
        Assert.True(File.Exists(RecordOf(scope, Tools.DiffId)));
    }

    [Fact]
    public async Task Unpacking_records_the_size_and_garbage_collection_drops_it()
    {
        using var scope = new StoreScope(countReads: true);
        Image image = await StoreAsync(scope);
        await scope.Images.UnpackAsync("sized");
        Assert.Equal("1004", File.ReadAllText(RecordOf(scope, Tools.DiffId)));
        Assert.Equal("3", File.ReadAllText(RecordOf(scope, image.DiffIds[1])));
        int reads = scope.Counting!.Reads(image.Manifest.Layers[0].ParsedDigest);
        Assert.Equal(1007, scope.Images.SizeOf(image));
        Assert.Equal(reads, scope.Counting.Reads(image.Manifest.Layers[0].ParsedDigest)); // nothing measured again

        scope.Images.Remove("sized");
        await scope.Images.CollectGarbageAsync();
        Assert.False(File.Exists(RecordOf(scope, Tools.DiffId)));
        Assert.False(File.Exists(RecordOf(scope, image.DiffIds[1])));
    }

    [Fact]
    public void A_layer_is_measured_from_its_compressed_blob()
        => Assert.Equal(1004, LayerSize.Measure(new MemoryStream(Tools.Gz)));
}
