using Berth.Images.Snapshots;

namespace Berth.Images.Tests.Snapshots;

/// <summary>
/// The behaviour every <see cref="ISnapshotter"/> must have, through real mounts (containerd's
/// core/snapshots/testsuite). A class per implementation supplies <see cref="CreateSnapshotter"/>.
/// </summary>
public abstract class SnapshotterConformanceTests : IDisposable
{
    private readonly List<IDisposable> _cleanup = [];
    private readonly ISnapshotter _sn;

    protected SnapshotterConformanceTests()
    {
        var (snapshotter, cleanup) = CreateSnapshotter();
        _sn = snapshotter;
        _cleanup.Add(cleanup);
    }

    /// <summary>A fresh, empty snapshotter, and what to dispose after the test (after every mount is gone).</summary>
    protected abstract (ISnapshotter Snapshotter, IDisposable Cleanup) CreateSnapshotter();

    public void Dispose()
    {
        for (int i = _cleanup.Count - 1; i >= 0; i--) _cleanup[i].Dispose();
        GC.SuppressFinalize(this);
    }

    private MountScope Mount(IReadOnlyList<Mount> mounts)
    {
        var scope = new MountScope(mounts);
        _cleanup.Add(scope);
        return scope;
    }

    /// <summary>Prepare on <paramref name="parent"/>, let <paramref name="change"/> edit the mounted tree, commit as <paramref name="name"/>.</summary>
    private void Layer(string name, string? parent, Action<string> change)
    {
        string key = name + "-active";
        using (var m = new MountScope(_sn.Prepare(key, parent)))
            change(m.Path);
        _sn.Commit(name, key);
    }

    [Fact]
    public void Files_of_parents_show_through_and_deletions_in_children_hide_them()
    {
        Layer("base", null, root =>
        {
            Directory.CreateDirectory(Path.Combine(root, "etc"));
            File.WriteAllText(Path.Combine(root, "etc/keep"), "keep");
            File.WriteAllText(Path.Combine(root, "etc/delete-me"), "x");
            Directory.CreateDirectory(Path.Combine(root, "var/cache/sub"));
            File.WriteAllText(Path.Combine(root, "var/cache/sub/old"), "old");
        });
        Layer("child", "base", root =>
        {
            Assert.Equal("keep", File.ReadAllText(Path.Combine(root, "etc/keep")));
            File.Delete(Path.Combine(root, "etc/delete-me"));
            Directory.Delete(Path.Combine(root, "var/cache"), recursive: true);
            Directory.CreateDirectory(Path.Combine(root, "var/cache"));
            File.WriteAllText(Path.Combine(root, "var/cache/new"), "new");
            File.WriteAllText(Path.Combine(root, "etc/keep"), "changed");
        });

        MountScope view = Mount(_sn.View("view", "child"));
        Assert.Equal("changed", File.ReadAllText(view.Combine("etc/keep")));
        Assert.False(File.Exists(view.Combine("etc/delete-me")));
        Assert.Equal(["new"], Directory.EnumerateFileSystemEntries(view.Combine("var/cache")).Select(Path.GetFileName));

        MountScope baseView = Mount(_sn.View("base-view", "base"));
        Assert.True(File.Exists(baseView.Combine("etc/delete-me")), "a child never changes its parent");
    }

    [Fact]
    public void A_128_layer_chain_mounts()
    {
        string? parent = null;
        for (int i = 0; i < 128; i++)
        {
            int layer = i;
            Layer($"layer-{i}", parent, root =>
            {
                File.WriteAllText(Path.Combine(root, $"file-{layer}"), layer.ToString());
                if (layer > 0) File.Delete(Path.Combine(root, $"file-{layer - 1}"));
                File.WriteAllText(Path.Combine(root, "top"), layer.ToString());
            });
            parent = $"layer-{i}";
        }

        MountScope view = Mount(_sn.View("view-128", parent));
        Assert.Equal(["file-127", "top"], Directory.EnumerateFileSystemEntries(view.Path).Select(Path.GetFileName).Order());
        Assert.Equal("127", File.ReadAllText(view.Combine("top")));

        MountScope active = Mount(_sn.Prepare("active-129", parent));
        File.WriteAllText(active.Combine("129"), "writable on top of 128 layers");
        Assert.Equal("127", File.ReadAllText(active.Combine("file-127")));
    }

    [Fact]
    public void Commit_makes_an_active_snapshot_a_layer_under_a_new_name()
    {
        _sn.Prepare("key", null, new Dictionary<string, string> { ["a"] = "1" });
        Assert.Equal(SnapshotKind.Active, _sn.Stat("key").Kind);

        _sn.Commit("name", "key", new Dictionary<string, string> { ["b"] = "2" });

        SnapshotInfo info = _sn.Stat("name");
        Assert.Equal((SnapshotKind.Committed, (string?)null), (info.Kind, info.Parent));
        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" }, info.Labels);
        Assert.Equal(ImagesErrorKind.NotFound, Assert.Throws<ImagesException>(() => _sn.Stat("key")).Kind);
        Assert.Equal(ImagesErrorKind.InvalidArgument, Assert.Throws<ImagesException>(() => _sn.Mounts("name")).Kind);
    }

    [Fact]
    public void Only_active_snapshots_commit_and_names_are_unique()
    {
        Layer("base", null, _ => { });
        _sn.View("view", "base");
        _sn.Prepare("active", "base");

        Assert.Equal(ImagesErrorKind.InvalidArgument, Assert.Throws<ImagesException>(() => _sn.Commit("x", "view")).Kind);
        Assert.Equal(ImagesErrorKind.InvalidArgument, Assert.Throws<ImagesException>(() => _sn.Commit("y", "base")).Kind);
        Assert.Equal(ImagesErrorKind.Conflict, Assert.Throws<ImagesException>(() => _sn.Commit("base", "active")).Kind);
        Assert.Equal(ImagesErrorKind.NotFound, Assert.Throws<ImagesException>(() => _sn.Commit("z", "missing")).Kind);
    }

    [Fact]
    public void Prepare_checks_key_and_parent()
    {
        Layer("base", null, _ => { });
        _sn.Prepare("active", "base");

        Assert.Equal(ImagesErrorKind.Conflict, Assert.Throws<ImagesException>(() => _sn.Prepare("active", "base")).Kind);
        Assert.Equal(ImagesErrorKind.Conflict, Assert.Throws<ImagesException>(() => _sn.Prepare("base", null)).Kind);
        Assert.Equal(ImagesErrorKind.NotFound, Assert.Throws<ImagesException>(() => _sn.Prepare("x", "missing")).Kind);
        Assert.Equal(ImagesErrorKind.InvalidArgument, Assert.Throws<ImagesException>(() => _sn.Prepare("y", "active")).Kind);
        Assert.Equal(ImagesErrorKind.InvalidArgument, Assert.Throws<ImagesException>(() => _sn.Prepare("", null)).Kind);
    }

    [Fact]
    public void Remove_refuses_parents_and_walk_lists_what_remains()
    {
        Layer("base", null, _ => { });
        Layer("middle", "base", _ => { });
        _sn.Prepare("top", "middle");
        _sn.View("view", "base");

        Assert.Equal(
            [("base", SnapshotKind.Committed, null), ("middle", SnapshotKind.Committed, "base"), ("top", SnapshotKind.Active, "middle"), ("view", SnapshotKind.View, "base")],
            _sn.Walk().Select(i => (i.Name, i.Kind, i.Parent)).OrderBy(i => i.Name));

        Assert.Equal(ImagesErrorKind.Conflict, Assert.Throws<ImagesException>(() => _sn.Remove("middle")).Kind);
        _sn.Remove("top");
        _sn.Remove("middle");
        _sn.Remove("view");
        Assert.Equal(ImagesErrorKind.NotFound, Assert.Throws<ImagesException>(() => _sn.Remove("top")).Kind);
        Assert.Equal(["base"], _sn.Walk().Select(i => i.Name));
        _sn.Remove("base");
        Assert.Empty(_sn.Walk());
    }

    [Fact]
    public void Views_are_read_only()
    {
        Layer("base", null, root => File.WriteAllText(Path.Combine(root, "f"), "x"));
        Layer("second", "base", root => File.WriteAllText(Path.Combine(root, "g"), "y"));

        foreach (string parent in new[] { "base", "second" })
        {
            MountScope view = Mount(_sn.View("view-" + parent, parent));
            Assert.Equal("x", File.ReadAllText(view.Combine("f")));
            Assert.ThrowsAny<IOException>(() => File.WriteAllText(view.Combine("new"), "no"));
        }
    }

    [Fact]
    public void An_empty_active_snapshot_is_writable_and_its_content_survives_commit()
    {
        using (var m = new MountScope(_sn.Prepare("a", null)))
        {
            Assert.Empty(Directory.EnumerateFileSystemEntries(m.Path));
            File.WriteAllText(m.Combine("hello"), "world");
        }
        _sn.Commit("c", "a");
        MountScope view = Mount(_sn.View("v", "c"));
        Assert.Equal("world", File.ReadAllText(view.Combine("hello")));
    }
}
