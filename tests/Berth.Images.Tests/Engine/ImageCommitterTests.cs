using System.IO.Compression;
using System.Text;
using Berth.Images.Archive;
using Berth.Images.Content;
using Berth.Images.Engine;
using Berth.Images.Layers;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Store;
using Berth.Images.Tests.Layers;
using Berth.Images.Tests.Snapshots;
using Berth.Images.Tests.Store;

namespace Berth.Images.Tests.Engine;

public sealed class ImageCommitterTests
{
    private const long Mtime = 1_600_000_000;

    private static TarHeader Dir(string name) => new() { Name = name, Kind = TarEntryKind.Directory, Mode = 0x1ED, MtimeSeconds = Mtime };

    private static void File(LayerTarWriter w, string name, string content)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(content);
        w.WriteEntry(new TarHeader { Name = name, Kind = TarEntryKind.File, Mode = 0x1A4, Size = bytes.Length, MtimeSeconds = Mtime }, new MemoryStream(bytes));
    }

    private static async Task<Image> BaseImageAsync(StoreScope scope)
    {
        var layer0 = TestImages.BuildLayer(w =>
        {
            w.WriteEntry(Dir("etc"));
            File(w, "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
            File(w, "keep.txt", "keep");
            File(w, "del.txt", "delete me");
            w.WriteEntry(Dir("dir"));
            File(w, "dir/mod.txt", "old");
        });
        var layer1 = TestImages.FileLayer("other.txt", "layer 1");
        Descriptor m = await TestImages.StoreImageAsync(scope.Content, [layer0, layer1], cmd: ["/bin/old"]);
        scope.Images.SetReference(ImageReference.Parse("base:1"), m with { Platform = null });
        return scope.Images.Get("base:1");
    }

    private static List<string> LayerNames(StoreScope scope, Descriptor layer)
    {
        using Stream blob = scope.Content.OpenRead(layer.ParsedDigest);
        using var gz = new GZipStream(blob, CompressionMode.Decompress);
        var reader = new LayerTarReader(gz);
        var names = new List<string>();
        while (reader.Next() is { } h) names.Add(h.Name.TrimEnd('/'));
        return names;
    }

    [Fact]
    public async Task A_containers_changes_become_a_layer_whose_apply_gives_its_tree()
    {
        using var scope = new StoreScope();
        Image baseImage = await BaseImageAsync(scope);
        string top = (await scope.Images.UnpackAsync("base:1"))!;

        List<string> containerTree;
        using (var mnt = new MountScope(scope.Snapshotter.Prepare("ctr", top)))
        {
            System.IO.File.WriteAllText(mnt.Combine("new.txt"), "new file");
            System.IO.File.Delete(mnt.Combine("del.txt"));
            System.IO.File.WriteAllText(mnt.Combine("dir/mod.txt"), "changed");
            Directory.CreateDirectory(mnt.Combine("newdir/sub"));
            System.IO.File.WriteAllText(mnt.Combine("newdir/sub/f"), "f");
            // What the engine writes (the init layer's files): left out of the commit.
            System.IO.File.WriteAllText(mnt.Combine("etc/hosts"), "127.0.0.1 localhost\n");
            System.IO.File.WriteAllText(mnt.Combine("etc/hostname"), "ctr\n");
            containerTree = TreeSnapshot.Capture(mnt.Path);
        }

        Image committed = await scope.Images.CommitAsync("ctr", baseImage, new CommitOptions
        {
            Changes = new ContainerConfig { Cmd = ["/bin/new"], Env = ["NEW=1"] },
            Author = "Alice <a@example.com>",
            Message = "my change",
            Reference = "committed:1",
        });

        // Config: the parent's diff_ids and history plus one.
        Assert.Equal(committed.Id, scope.Images.Get("committed:1").Id);
        Assert.Equal(3, committed.Config.RootFS.DiffIds.Count);
        Assert.Equal(baseImage.Config.RootFS.DiffIds, committed.Config.RootFS.DiffIds.Take(2));
        Assert.Equal(3, committed.Manifest.Layers.Count);
        Assert.Equal(MediaTypes.OciLayerGzip, committed.Manifest.Layers[2].MediaType);
        HistoryEntry last = committed.Config.History![^1];
        Assert.Equal(3, committed.Config.History.Count);
        Assert.Equal(("Alice <a@example.com>", "my change", false), (last.Author, last.Comment, last.EmptyLayer));
        Assert.Equal("/bin/old", last.CreatedBy); // the container's Cmd, not the --change one (dockerd's commit)
        Assert.Equal(["/bin/new"], committed.Config.Config!.Cmd);
        Assert.Equal(["NEW=1", "PATH=/bin"], committed.Config.Config.Env);
        Assert.Equal("Alice <a@example.com>", committed.Config.Author);

        // The layer: new, whiteout, changed; no init-layer files, no /etc copied up only for them.
        List<string> names = LayerNames(scope, committed.Manifest.Layers[2]);
        Assert.Contains("new.txt", names);
        Assert.Contains(".wh.del.txt", names);
        Assert.Contains("dir/mod.txt", names);
        Assert.Contains("newdir/sub/f", names);
        Assert.DoesNotContain("etc/hosts", names);
        Assert.DoesNotContain("etc/hostname", names);
        Assert.DoesNotContain("etc", names);

        // Unpacked like any image, it is the container's tree without the engine's files.
        string newTop = (await scope.Images.UnpackAsync("committed:1"))!;
        Assert.Equal(committed.ChainIds[^1].Value, newTop);
        List<string> imageTree;
        using (var view = new MountScope(scope.Snapshotter.View("view", newTop)))
            imageTree = TreeSnapshot.Capture(view.Path);
        scope.Snapshotter.Remove("view");
        static bool Engine(string line) => line.StartsWith("etc/hosts ", StringComparison.Ordinal) || line.StartsWith("etc/hostname ", StringComparison.Ordinal) || line.StartsWith("etc ", StringComparison.Ordinal);
        Assert.Equal(containerTree.Where(l => !Engine(l)), imageTree.Where(l => !l.StartsWith("etc ", StringComparison.Ordinal)));
        Assert.DoesNotContain(imageTree, l => l.StartsWith("etc/hosts", StringComparison.Ordinal));
        Assert.Contains(imageTree, l => l.StartsWith("new.txt ", StringComparison.Ordinal));
        Assert.DoesNotContain(imageTree, l => l.StartsWith("del.txt ", StringComparison.Ordinal));

        // Savable and loadable like any image.
        var archive = new MemoryStream();
        await ImageArchive.SaveAsync(scope.Images, ["committed:1"], archive);
        using var other = new StoreScope();
        archive.Position = 0;
        await ImageArchive.LoadAsync(other.Images, archive);
        Assert.Equal(committed.Id, other.Images.Get("committed:1").Id);
    }

    [Fact]
    public async Task No_changes_make_an_empty_layer_history_entry_and_a_directory_works_too()
    {
        using var scope = new StoreScope();
        Image baseImage = await BaseImageAsync(scope);
        using var upper = new TempDirectory("upper");
        Image committed = await scope.Images.CommitAsync(upper.Path, baseImage, new CommitOptions { Message = "nothing" });
        Assert.Equal(baseImage.Config.RootFS.DiffIds, committed.Config.RootFS.DiffIds);
        Assert.Equal(baseImage.Manifest.Layers, committed.Manifest.Layers);
        Assert.True(committed.Config.History![^1].EmptyLayer);
        Assert.Equal(["/bin/old"], committed.Config.Config!.Cmd);
        Assert.DoesNotContain(scope.Images.References(), r => r.Target.Digest == committed.Target.Digest);

        // Only init-layer files: still empty.
        Directory.CreateDirectory(System.IO.Path.Combine(upper.Path, "etc"));
        System.IO.File.WriteAllText(System.IO.Path.Combine(upper.Path, "etc", "resolv.conf"), "nameserver 1.1.1.1\n");
        committed = await scope.Images.CommitAsync(upper.Path, baseImage);
        Assert.True(committed.Config.History![^1].EmptyLayer);

        // Onto scratch.
        System.IO.File.WriteAllText(System.IO.Path.Combine(upper.Path, "etc", "motd"), "hi");
        committed = await scope.Images.CommitAsync(upper.Path, null, new CommitOptions { Changes = new ContainerConfig { Cmd = ["sh"] }, Reference = "scratch:1" });
        Assert.Single(committed.Config.RootFS.DiffIds);
        Assert.Equal(["etc", "etc/motd"], LayerNames(scope, committed.Manifest.Layers[0]));
    }

    [Fact]
    public async Task The_runtimes_empty_mount_points_are_left_out_but_kept_with_something_under_them()
    {
        using var scope = new StoreScope();
        Image baseImage = await BaseImageAsync(scope);
        using var upper = new TempDirectory("upper");
        // What the runtime leaves in the writable layer of an image without /dev, /proc and /sys.
        foreach (string dir in new[] { "dev", "proc", "sys" }) Directory.CreateDirectory(System.IO.Path.Combine(upper.Path, dir));
        Image committed = await scope.Images.CommitAsync(upper.Path, baseImage);
        Assert.True(committed.Config.History![^1].EmptyLayer);

        // A file put under /dev (docker cp writes into the layer, not the container's /dev tmpfs)
        // keeps /dev; a new top-level directory of the container's own is kept as ever.
        System.IO.File.WriteAllText(System.IO.Path.Combine(upper.Path, "dev", "marker"), "m");
        Directory.CreateDirectory(System.IO.Path.Combine(upper.Path, "srv"));
        committed = await scope.Images.CommitAsync(upper.Path, baseImage);
        Assert.Equal(["dev", "dev/marker", "srv"], LayerNames(scope, committed.Manifest.Layers[^1]).Order(StringComparer.Ordinal));

        // A build's COPY step names none: an empty directory it copied is its content.
        System.IO.File.Delete(System.IO.Path.Combine(upper.Path, "dev", "marker"));
        committed = await scope.Images.CommitAsync(upper.Path, baseImage, new CommitOptions { MountPointDirectories = [] });
        Assert.Equal(["dev", "proc", "srv", "sys"], LayerNames(scope, committed.Manifest.Layers[^1]).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_docker_base_gives_a_docker_image_and_a_bad_source_is_refused()
    {
        using var scope = new StoreScope();
        Descriptor m = await TestImages.StoreImageAsync(scope.Content, [TestImages.FileLayer("a", "a")], docker: true);
        scope.Images.SetReference(ImageReference.Parse("dock:1"), m with { Platform = null });
        Image baseImage = scope.Images.Get("dock:1");
        using var upper = new TempDirectory("upper");
        System.IO.File.WriteAllText(System.IO.Path.Combine(upper.Path, "b"), "b");
        Image committed = await scope.Images.CommitAsync(upper.Path, baseImage, new CommitOptions { Compress = false });
        Assert.Equal(MediaTypes.DockerManifest, committed.Manifest.MediaType);
        Assert.Equal(MediaTypes.DockerConfig, committed.Manifest.Config.MediaType);
        Assert.Equal(MediaTypes.DockerLayer, committed.Manifest.Layers[^1].MediaType);
        // Uncompressed: the blob's digest is the diffID.
        Assert.Equal(committed.Manifest.Layers[^1].Digest, committed.Config.RootFS.DiffIds[^1]);

        var e = await Assert.ThrowsAsync<ImagesException>(() => scope.Images.CommitAsync(upper.Path + "-missing", baseImage));
        Assert.Equal(ImagesErrorKind.NotFound, e.Kind);
        await Assert.ThrowsAsync<ImagesException>(() => scope.Images.CommitAsync("no-such-snapshot", baseImage));
    }

    [Fact]
    public void Filter_keeps_a_hardlink_to_a_left_out_file_and_whiteouts_of_others()
    {
        var raw = new MemoryStream();
        var w = new LayerTarWriter(raw);
        w.WriteEntry(Dir("etc"));
        File(w, "etc/hosts", "h");
        w.WriteEntry(new TarHeader { Name = "etc/hosts2", Kind = TarEntryKind.Hardlink, LinkName = "etc/hosts", MtimeSeconds = Mtime });
        w.WriteEntry(new TarHeader { Name = "etc/.wh.resolv.conf", Kind = TarEntryKind.File, MtimeSeconds = Mtime });
        w.WriteEntry(new TarHeader { Name = "etc/.wh.group", Kind = TarEntryKind.File, MtimeSeconds = Mtime });
        w.WriteEntry(Dir("var"));
        w.Finish();
        raw.Position = 0;
        var output = new MemoryStream();
        using var spool = new TempDirectory("spool");
        var (result, entries) = CommitFilter.Filter(raw, output, ["etc/hosts", "/etc/resolv.conf"], spool.Path, default);
        Assert.Equal(4, entries);
        output.Position = 0;
        var reader = new LayerTarReader(output);
        var got = new List<string>();
        while (reader.Next() is { } h)
        {
            got.Add($"{h.Name.TrimEnd('/')}:{h.Kind}");
            if (h.Name == "etc/hosts2")
            {
                var data = new MemoryStream();
                reader.CopyData(data);
                Assert.Equal("h", Encoding.UTF8.GetString(data.ToArray()));
            }
        }
        Assert.Equal(["etc:Directory", "etc/hosts2:File", "etc/.wh.group:File", "var:Directory"], got);
        Assert.Equal(Digest.Compute(output.ToArray()), result.DiffId);
    }

    [Fact]
    public void Changes_merge_like_dockerd()
    {
        var config = new ContainerConfig
        {
            Cmd = ["c"], Entrypoint = ["e"], Env = ["A=1", "B=2"], User = "u", WorkingDir = "/w",
            Labels = new Dictionary<string, string> { ["x"] = "1", ["y"] = "1" },
        };
        ContainerConfig merged = ImageCommitter.MergeChanges(new ContainerConfig { Env = ["B=3"], Labels = new Dictionary<string, string> { ["y"] = "2" } }, config)!;
        Assert.Equal(["B=3", "A=1"], merged.Env);
        Assert.Equal(["c"], merged.Cmd);
        Assert.Equal(["e"], merged.Entrypoint);
        Assert.Equal(("u", "/w"), (merged.User, merged.WorkingDir));
        Assert.Equal("2", merged.Labels!["y"]);
        Assert.Equal("1", merged.Labels["x"]);
        merged = ImageCommitter.MergeChanges(new ContainerConfig { Entrypoint = ["n"] }, config)!;
        Assert.Equal(["n"], merged.Entrypoint);
        Assert.Null(merged.Cmd);
        merged = ImageCommitter.MergeChanges(new ContainerConfig { Cmd = ["n"] }, config)!;
        Assert.Equal(["e"], merged.Entrypoint);
        Assert.Equal(["n"], merged.Cmd);
    }
}
