using System.Text.Json.Nodes;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Store;

namespace Berth.Images.Tests.Store;

/// <summary>parents.json (dockerd's Parent): kept for the images here, dropped with each image that goes.</summary>
public sealed class ImageParentTests
{
    private static async Task<Image> StoreAsync(StoreScope scope, string content)
    {
        Descriptor m = await TestImages.StoreImageAsync(scope.Content, [TestImages.FileLayer("f", content)]) with { Platform = null };
        return scope.Images.Read(m);
    }

    private static IReadOnlyCollection<string> RecordedImages(StoreScope scope)
    {
        string path = Path.Combine(scope.Images.Root, "parents.json");
        return File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path))!["parents"]!.AsObject().Select(e => e.Key).ToList() : [];
    }

    [Fact]
    public async Task The_parent_of_a_removed_image_goes_with_it_even_without_a_collection()
    {
        using var scope = new StoreScope();
        Image parent = await StoreAsync(scope, "base"), child = await StoreAsync(scope, "child");
        scope.Images.SetReference(ImageReference.Parse("base:1"), parent.Target);
        scope.Images.SetReference(ImageReference.Parse("child:1"), child.Target);
        scope.Images.SetParent(child.Id, parent.Id);
        Assert.Equal(parent.Id, scope.Images.ParentOf(child.Id));

        // rmi --no-prune: no collection, the blobs stay; the image is gone and so is its parent entry.
        Assert.Contains(new ImageRemoval(null, child.Id), scope.Images.Remove("child:1"));
        Assert.Null(scope.Images.ParentOf(child.Id));
        Assert.Empty(RecordedImages(scope));
        scope.Reopen();
        Assert.Null(scope.Images.ParentOf(child.Id));
    }

    [Fact]
    public async Task The_parent_of_a_build_step_image_goes_when_its_config_is_collected()
    {
        using var scope = new StoreScope();
        Image parent = await StoreAsync(scope, "base"), step = await StoreAsync(scope, "step");
        scope.Images.SetReference(ImageReference.Parse("base:1"), parent.Target);
        scope.Images.KeepIntermediate(step.Target);
        scope.Images.SetParent(step.Id, parent.Id);

        await scope.Images.CollectGarbageAsync();
        Assert.Equal(parent.Id, scope.Images.ParentOf(step.Id)); // still held by the build
        Assert.Equal(1, scope.Images.ForgetIntermediates());      // builder prune
        await scope.Images.CollectGarbageAsync();
        Assert.Null(scope.Images.ParentOf(step.Id));
        Assert.Empty(RecordedImages(scope));
    }

    /// <summary>A build step records its parent without looking at the other recorded images (it stat'ed each one's blob).</summary>
    [Fact]
    public async Task Recording_a_parent_does_not_look_at_the_other_images()
    {
        using var scope = new StoreScope(countReads: true);
        Image parent = await StoreAsync(scope, "base");
        for (int i = 0; i < 20; i++) scope.Images.SetParent(Digest.Compute(System.Text.Encoding.UTF8.GetBytes($"image {i}")), parent.Id);
        int before = scope.Counting!.ExistsCalls;
        scope.Images.SetParent(Digest.Compute("one more"u8.ToArray()), parent.Id);
        Assert.Equal(before, scope.Counting.ExistsCalls);
        Assert.Equal(21, RecordedImages(scope).Count);
    }
}
