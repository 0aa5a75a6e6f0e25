using System.Text.Json.Nodes;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Store;

namespace Berth.Images.Tests.Store;

/// <summary>
/// RepoDigests as dockerd 20.10 keeps them: a digest name (<c>repo@sha256:…</c>) for the repository an
/// image was pulled from or pushed to, none for a name given here (build, import, commit, load, tag).
/// </summary>
public sealed class RepoDigestTests
{
    private static async Task<Descriptor> StoreAsync(StoreScope scope, string content)
        => await TestImages.StoreImageAsync(scope.Content, [TestImages.FileLayer("f", content)]) with { Platform = null };

    private static string Familiar(string name, Descriptor target) => ImageReference.Parse(name).WithDigest(target.ParsedDigest).FamiliarName;

    [Fact]
    public async Task A_name_given_here_has_no_repo_digest_and_a_tag_does_not_take_one_over_from_another_repository()
    {
        using var scope = new StoreScope();
        Descriptor m = await StoreAsync(scope, "x");
        scope.Images.SetReference(ImageReference.Parse("built:1"), m);
        Assert.Empty(Assert.Single(scope.Images.List()).RepoDigests);
        Assert.Empty(scope.Images.Inspect("built:1").RepoDigests);

        // As after a pull of 127.0.0.1:5000/bb:1 (or a push to it), then a tag under another name.
        scope.Images.SetRegistryReference(ImageReference.Parse("127.0.0.1:5000/bb:1"), m);
        scope.Images.Tag("built:1", "renamed:x");
        ImageSummary summary = Assert.Single(scope.Images.List());
        Assert.Equal(["127.0.0.1:5000/bb:1", "built:1", "renamed:x"], summary.RepoTags);
        Assert.Equal([Familiar("127.0.0.1:5000/bb", m)], summary.RepoDigests);
        Assert.Equal([Familiar("127.0.0.1:5000/bb", m)], scope.Images.Inspect("renamed:x").RepoDigests);
        Assert.Equal(scope.Images.Get("built:1").Id, scope.Images.Get(Familiar("127.0.0.1:5000/bb", m)).Id);
    }

    /// <summary>dockerd's untag: the last tag of a repository takes that repository's digest names with it.</summary>
    [Fact]
    public async Task Removing_the_last_tag_of_a_repository_untags_its_digest_name_too()
    {
        using var scope = new StoreScope();
        Descriptor m = await StoreAsync(scope, "x");
        scope.Images.SetRegistryReference(ImageReference.Parse("127.0.0.1:5000/bb:1"), m);
        scope.Images.SetRegistryReference(ImageReference.Parse("127.0.0.1:5000/other:2"), m);
        scope.Images.Tag("127.0.0.1:5000/bb:1", "127.0.0.1:5000/bb:3");
        Digest id = scope.Images.Get("127.0.0.1:5000/bb:1").Id;
        Assert.Equal([Familiar("127.0.0.1:5000/bb", m), Familiar("127.0.0.1:5000/other", m)], Assert.Single(scope.Images.List()).RepoDigests);

        Assert.Equal([new ImageRemoval("127.0.0.1:5000/other:2", null), new ImageRemoval(Familiar("127.0.0.1:5000/other", m), null)],
            scope.Images.Remove("127.0.0.1:5000/other:2"));
        Assert.Equal([Familiar("127.0.0.1:5000/bb", m)], Assert.Single(scope.Images.List()).RepoDigests);
        // Another tag of bb is left: its digest name stays.
        Assert.Equal([new ImageRemoval("127.0.0.1:5000/bb:3", null)], scope.Images.Remove("127.0.0.1:5000/bb:3"));
        Assert.Equal([new ImageRemoval("127.0.0.1:5000/bb:1", null), new ImageRemoval(Familiar("127.0.0.1:5000/bb", m), null), new ImageRemoval(null, id)],
            scope.Images.Remove("127.0.0.1:5000/bb:1"));
        Assert.Empty(scope.Images.List());
    }

    /// <summary>dockerd's digest reference keeps an image whose tag moved on (a newer pull): listed as REPO &lt;none&gt;, not dangling away.</summary>
    [Fact]
    public async Task An_image_whose_tag_moved_keeps_its_digest_name()
    {
        using var scope = new StoreScope();
        Descriptor old = await StoreAsync(scope, "old"), newer = await StoreAsync(scope, "new");
        scope.Images.SetRegistryReference(ImageReference.Parse("busybox:latest"), old);
        scope.Images.SetRegistryReference(ImageReference.Parse("busybox:latest"), newer);
        ImageSummary moved = Assert.Single(scope.Images.List(), s => s.RepoTags.Count == 0);
        Assert.Equal([Familiar("busybox", old)], moved.RepoDigests);
        Assert.Equal([new ImageRemoval(Familiar("busybox", old), null), new ImageRemoval(null, moved.Id)], scope.Images.Remove(moved.Id.Value));
    }

    /// <summary>
    /// A store written before digest names were recorded cannot tell pulled from built images: every
    /// tag gets its repository's digest name once, so none really pulled loses its RepoDigests.
    /// </summary>
    [Fact]
    public async Task A_store_written_before_digest_names_keeps_the_digests_it_showed_once_upgraded()
    {
        using var scope = new StoreScope();
        Descriptor m = await StoreAsync(scope, "x");
        scope.Images.SetReference(ImageReference.Parse("busybox:latest"), m);
        string path = Path.Combine(scope.Images.Root, "references.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        Assert.Equal(1, (int)json["version"]!);
        json.Remove("version");
        File.WriteAllText(path, json.ToJsonString());

        scope.Reopen();
        Assert.Equal([Familiar("busybox", m)], scope.Images.Inspect("busybox").RepoDigests);
        Assert.Equal(1, (int)JsonNode.Parse(File.ReadAllText(path))!["version"]!);
        // Upgraded once: a digest name removed afterwards does not come back at the next open.
        scope.Images.Remove(Familiar("busybox", m));
        scope.Reopen();
        Assert.Empty(scope.Images.Inspect("busybox").RepoDigests);
    }
}
