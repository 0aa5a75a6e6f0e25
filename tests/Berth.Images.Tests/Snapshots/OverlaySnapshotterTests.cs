using Berth.Images.Layers;
using Berth.Images.Snapshots;

namespace Berth.Images.Tests.Snapshots;

public sealed class OverlaySnapshotterTests : SnapshotterConformanceTests
{
    protected override (ISnapshotter Snapshotter, IDisposable Cleanup) CreateSnapshotter()
    {
        var dir = new TempDirectory("snap");
        var sn = new OverlaySnapshotter(dir.Path);
        return (sn, new Cleanup(sn, dir));
    }

    private sealed class Cleanup(OverlaySnapshotter sn, TempDirectory dir) : IDisposable
    {
        public void Dispose()
        {
            sn.Dispose();
            dir.Dispose();
        }
    }

    [Fact]
    public void Snapshots_survive_a_reopen()
    {
        using var dir = new TempDirectory("snap");
        using (var sn = new OverlaySnapshotter(dir.Path))
        {
            sn.Prepare("a", null, new Dictionary<string, string> { ["l"] = "v" });
            sn.Commit("base", "a");
            sn.Prepare("b", "base");
        }
        using (var sn = new OverlaySnapshotter(dir.Path))
        {
            Assert.Equal(SnapshotKind.Committed, sn.Stat("base").Kind);
            Assert.Equal("v", sn.Stat("base").Labels["l"]);
            Assert.Equal("base", sn.Stat("b").Parent);
            sn.Prepare("c", "base");
            Assert.Equal(3, Directory.EnumerateDirectories(Path.Combine(dir.Path, "snapshots")).Count());
        }
    }

    [Fact]
    public void Crash_leftovers_are_cleaned_at_open_and_metadata_is_never_half_written()
    {
        using var dir = new TempDirectory("snap");
        using (var sn = new OverlaySnapshotter(dir.Path)) sn.Prepare("a", null);
        // A crash between creating a directory and recording it, and one in the middle of writing the temp metadata.
        Directory.CreateDirectory(Path.Combine(dir.Path, "snapshots", "99", "fs", "sub"));
        File.WriteAllText(Path.Combine(dir.Path, "metadata.json.tmp"), "{ \"nextId\": 1, \"snap");

        using var reopened = new OverlaySnapshotter(dir.Path);
        Assert.Equal(["a"], reopened.Walk().Select(i => i.Name));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "snapshots", "99")));
        Assert.False(File.Exists(Path.Combine(dir.Path, "metadata.json.tmp")));
    }

    [Fact]
    public void Corrupt_metadata_is_an_error_not_a_fresh_start()
    {
        using var dir = new TempDirectory("snap");
        File.WriteAllText(Path.Combine(dir.Path, "metadata.json"), "{ not json");
        var e = Assert.Throws<ImagesException>(() => new OverlaySnapshotter(dir.Path));
        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
    }

    [Fact]
    public void One_snapshotter_per_root()
    {
        using var dir = new TempDirectory("snap");
        using var first = new OverlaySnapshotter(dir.Path);
        Assert.Equal(ImagesErrorKind.Conflict, Assert.Throws<ImagesException>(() => new OverlaySnapshotter(dir.Path)).Kind);
    }

    [Fact]
    public void Directories_have_short_numeric_names_and_mounts_name_them()
    {
        using var dir = new TempDirectory("snap");
        using var sn = new OverlaySnapshotter(dir.Path);
        sn.Prepare("a very long key that would make lowerdir overflow a page if used as a directory name", null);
        sn.Commit("base", "a very long key that would make lowerdir overflow a page if used as a directory name");
        Mount m = Assert.Single(sn.Prepare("child", "base"));

        Assert.Equal("overlay", m.Type);
        Assert.Contains($"lowerdir={dir.Path}/snapshots/1/fs", m.Options);
        Assert.Contains($"upperdir={dir.Path}/snapshots/2/fs", m.Options);
        Assert.Contains($"workdir={dir.Path}/snapshots/2/work", m.Options);
        Assert.Equal($"{dir.Path}/snapshots/2/fs", MountHelper.WritableDirectory([m]));
    }

    [Fact]
    public void Layers_unpack_into_snapshots_and_a_container_change_diffs_back_to_whiteouts()
    {
        using var dir = new TempDirectory("snap");
        using var sn = new OverlaySnapshotter(dir.Path);
        // Image layer 1 and 2 unpacked the way a pull does: into the upper directory of a fresh snapshot.
        var layer1 = new Layers.TarBuilder().Dir("etc").File("etc/a", "a").File("etc/b", "b").Dir("opt/app").File("opt/app/old", "old");
        LayerApplier.Apply(layer1.ToStream(), MountHelper.WritableDirectory(sn.Prepare("l1", null)));
        sn.Commit("layer1", "l1");
        var layer2 = new Layers.TarBuilder().File("etc/.wh.a", "").File("opt/app/.wh..wh..opq", "").File("opt/app/new", "new");
        LayerApplier.Apply(layer2.ToStream(), MountHelper.WritableDirectory(sn.Prepare("l2", "layer1")));
        sn.Commit("layer2", "l2");

        // A container's writable layer.
        IReadOnlyList<Mount> container = sn.Prepare("container", "layer2");
        using (var root = new MountScope(container))
        {
            Assert.False(File.Exists(root.Combine("etc/a")));
            Assert.Equal(["new"], Directory.EnumerateFileSystemEntries(root.Combine("opt/app")).Select(Path.GetFileName));
            File.Delete(root.Combine("etc/b"));
            File.WriteAllText(root.Combine("etc/c"), "c");
        }

        var diff = new MemoryStream();
        LayerDiffer.Diff(MountHelper.WritableDirectory(container), diff);
        diff.Position = 0;
        var names = new List<string>();
        using (var reader = new System.Formats.Tar.TarReader(diff))
            while (reader.GetNextEntry() is { } e) names.Add(e.Name);
        Assert.Equal(["etc/", "etc/.wh.b", "etc/c"], names);
    }

    [Fact]
    public void Mounting_many_layers_with_long_paths_needs_the_relative_form()
    {
        // 128 lowers of ~60 characters each are ~8 KB of options: more than a page.
        using var dir = new TempDirectory("snap-with-a-deliberately-long-directory-name");
        using var sn = new OverlaySnapshotter(dir.Path);
        string? parent = null;
        for (int i = 0; i < 128; i++)
        {
            string dirOfLayer = MountHelper.WritableDirectory(sn.Prepare($"k{i}", parent));
            File.WriteAllText(Path.Combine(dirOfLayer, $"f{i}"), "");
            sn.Commit($"c{i}", $"k{i}");
            parent = $"c{i}";
        }
        IReadOnlyList<Mount> mounts = sn.Prepare("top", parent);
        Assert.True(string.Join(',', mounts[0].Options).Length > Environment.SystemPageSize);
        using var m = new MountScope(mounts);
        Assert.Equal(128, Directory.EnumerateFiles(m.Path).Count());
    }
}
