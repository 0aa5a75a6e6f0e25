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

    /// <summary>
    /// The snapshots directory carries chattr's +T (each layer placed as a top-level directory,
    /// away from the inodes an rmi just freed) where the filesystem has inode flags: ext4 here.
    /// On one without (tmpfs) there is nothing to see, and opening must still work.
    /// </summary>
    [Fact]
    public void The_snapshots_directory_is_a_top_directory_where_the_filesystem_has_inode_flags()
    {
        using var dir = new TempDirectory("snap");
        using (new OverlaySnapshotter(dir.Path)) { }
        int? flags = Interop.GetInodeFlags(dir.Combine("snapshots"));
        if (flags is null) return; // no inode flags on this filesystem
        Assert.Equal(Interop.FS_TOPDIR_FL, flags.Value & Interop.FS_TOPDIR_FL);
        Assert.Equal(0, Interop.GetInodeFlags(dir.Path)!.Value & Interop.FS_TOPDIR_FL); // only there
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

    private static readonly Dictionary<string, string> Ephemeral = new() { [OverlaySnapshotter.EphemeralLabel] = "1" };

    [Fact]
    public void An_ephemeral_snapshot_lives_in_its_own_file_and_metadata_json_is_not_rewritten_for_it()
    {
        using var dir = new TempDirectory("snap");
        string metadata = Path.Combine(dir.Path, "metadata.json");
        using (var sn = new OverlaySnapshotter(dir.Path))
        {
            sn.Prepare("a", null);
            sn.Commit("base", "a");
            byte[] before = File.ReadAllBytes(metadata);
            IReadOnlyList<Mount> mounts = sn.Prepare("tmp", "base", Ephemeral);
            Assert.Equal("overlay", Assert.Single(mounts).Type);
            Assert.Equal(before, File.ReadAllBytes(metadata));
            Assert.Equal(["2.json"], Directory.GetFiles(Path.Combine(dir.Path, "ephemeral")).Select(Path.GetFileName));
            Assert.Equal(SnapshotKind.Active, sn.Stat("tmp").Kind);
            // A durable change after it still leaves it out of metadata.json.
            sn.Prepare("durable", "base");
            Assert.DoesNotContain("\"tmp\"", File.ReadAllText(metadata));
        }
        using (var sn = new OverlaySnapshotter(dir.Path))
        {
            Assert.Equal("base", sn.Stat("tmp").Parent);
            // Ids continue after the ephemeral one, which metadata.json never counted.
            sn.Prepare("next", "base");
            Assert.Equal(4, sn.Walk().Count);
            byte[] before = File.ReadAllBytes(metadata);
            sn.Remove("tmp");
            Assert.Equal(before, File.ReadAllBytes(metadata));
            Assert.Empty(Directory.GetFiles(Path.Combine(dir.Path, "ephemeral")));
            Assert.False(Directory.Exists(Path.Combine(dir.Path, "snapshots", "2")));
        }
    }

    [Theory]
    [InlineData("lost")]
    [InlineData("empty")]
    [InlineData("torn")]
    public void An_ephemeral_record_lost_or_torn_by_a_crash_takes_its_directory_with_it_at_open(string damage)
    {
        using var dir = new TempDirectory("snap");
        using (var sn = new OverlaySnapshotter(dir.Path))
        {
            sn.Prepare("a", null);
            sn.Commit("base", "a");
            sn.Prepare("tmp", "base", Ephemeral);
        }
        string record = Path.Combine(dir.Path, "ephemeral", "2.json");
        switch (damage)
        {
            case "lost": File.Delete(record); break;
            case "empty": File.WriteAllBytes(record, []); break;
            default: File.WriteAllText(record, File.ReadAllText(record)[..20]); break;
        }

        using var reopened = new OverlaySnapshotter(dir.Path);
        Assert.Equal(["base"], reopened.Walk().Select(i => i.Name));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "snapshots", "2")));
        Assert.Empty(Directory.GetFiles(Path.Combine(dir.Path, "ephemeral")));
        reopened.Prepare("again", "base", Ephemeral); // the id and the key are free again
    }

    [Fact]
    public void Committing_an_ephemeral_snapshot_makes_a_durable_layer()
    {
        using var dir = new TempDirectory("snap");
        using (var sn = new OverlaySnapshotter(dir.Path))
        {
            sn.Prepare("tmp", null, Ephemeral);
            File.WriteAllText(Path.Combine(dir.Path, "snapshots", "1", "fs", "f"), "x");
            sn.Commit("layer", "tmp", new Dictionary<string, string> { ["l"] = "v" });
            Assert.Empty(Directory.GetFiles(Path.Combine(dir.Path, "ephemeral")));
            Assert.DoesNotContain(OverlaySnapshotter.EphemeralLabel, sn.Stat("layer").Labels.Keys);
        }
        // A commit cut short after its save (the ephemeral file still there) keeps the layer.
        File.WriteAllText(Path.Combine(dir.Path, "ephemeral", "1.json"),
            "{\"key\":\"tmp\",\"record\":{\"id\":1,\"kind\":\"Active\",\"labels\":{\"" + OverlaySnapshotter.EphemeralLabel + "\":\"1\"}}}");
        using var reopened = new OverlaySnapshotter(dir.Path);
        Assert.Equal(["layer"], reopened.Walk().Select(i => i.Name));
        Assert.Equal("x", File.ReadAllText(Path.Combine(dir.Path, "snapshots", "1", "fs", "f")));
        Assert.Empty(Directory.GetFiles(Path.Combine(dir.Path, "ephemeral")));
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
