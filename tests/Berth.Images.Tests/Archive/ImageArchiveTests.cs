using System.Formats.Tar;
using System.Text.Json;
using Berth.Images.Archive;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Store;
using Berth.Images.Tests.Snapshots;
using Berth.Images.Tests.Store;

namespace Berth.Images.Tests.Archive;

public sealed class ImageArchiveTests
{
    private static async Task<Image> BuildAsync(StoreScope scope, string name)
    {
        Descriptor m = await TestImages.StoreImageAsync(scope.Content, [TestImages.BusyboxLayer, TestImages.FileLayer("etc/motd", name)], docker: true);
        scope.Images.SetReference(ImageReference.Parse(name), m with { Platform = null });
        return scope.Images.Get(name);
    }

    private static Dictionary<string, byte[]> ReadTar(byte[] tar)
    {
        var files = new Dictionary<string, byte[]>();
        using var reader = new TarReader(new MemoryStream(tar));
        while (reader.GetNextEntry() is { } e)
        {
            if (e.DataStream is null) continue;
            var ms = new MemoryStream();
            e.DataStream.CopyTo(ms);
            files[e.Name] = ms.ToArray();
        }
        return files;
    }

    [Fact]
    public async Task Save_writes_an_oci_layout_and_a_docker_manifest_and_load_round_trips()
    {
        using var a = new StoreScope();
        Image image = await BuildAsync(a, "example.com/app:1.0");
        await BuildAsync(a, "busybox:mine");
        var tar = new MemoryStream();
        await ImageArchive.SaveAsync(a.Images, ["example.com/app:1.0", "busybox:mine"], tar);

        Dictionary<string, byte[]> files = ReadTar(tar.ToArray());
        Assert.Contains("oci-layout", files.Keys);
        Assert.Contains($"blobs/sha256/{image.Target.ParsedDigest.Hex}", files.Keys);
        using (JsonDocument manifest = JsonDocument.Parse(files["manifest.json"]))
        {
            JsonElement first = manifest.RootElement[0];
            Assert.Equal($"blobs/sha256/{image.Id.Hex}", first.GetProperty("Config").GetString());
            Assert.Equal("example.com/app:1.0", first.GetProperty("RepoTags")[0].GetString());
            Assert.Equal(2, first.GetProperty("Layers").GetArrayLength());
        }
        using (JsonDocument repositories = JsonDocument.Parse(files["repositories"]))
            Assert.Equal(image.Id.Hex, repositories.RootElement.GetProperty("example.com/app").GetProperty("1.0").GetString());
        using (JsonDocument index = JsonDocument.Parse(files["index.json"]))
            Assert.Equal("docker.io/library/busybox:mine", index.RootElement.GetProperty("manifests")[1].GetProperty("annotations").GetProperty("io.containerd.image.name").GetString());

        using var b = new StoreScope();
        IReadOnlyList<string> loaded = await ImageArchive.LoadAsync(b.Images, new MemoryStream(tar.ToArray()));
        Assert.Equal(["example.com/app:1.0", "docker.io/library/busybox:mine"], loaded);
        Image back = b.Images.Get("example.com/app:1.0");
        Assert.Equal(image.Id, back.Id);
        Assert.Equal(image.Target.Digest, back.Target.Digest);
        Assert.NotNull(await b.Images.UnpackAsync("example.com/app:1.0"));
    }

    /// <summary>
    /// As dockerd's save: an image asked for by several names (or twice) is written once with all of
    /// them, a repository alone stands for all its tags, an ID adds no name; load says each name once.
    /// </summary>
    [Fact]
    public async Task Save_writes_each_image_once_with_every_name_it_was_asked_by()
    {
        using var a = new StoreScope();
        Image image = await BuildAsync(a, "busybox:latest");
        a.Images.Tag("busybox:latest", "busybox:v2");
        a.Images.Tag("busybox:latest", "other/bb:two");
        Image app = await BuildAsync(a, "example.com/app:1.0");

        // manifest.json as "config tag,tag" per entry ("config -" without RepoTags), index.json's entry count.
        async Task<(string[] Entries, int IndexEntries, byte[] Tar)> Save(params string[] names)
        {
            var tar = new MemoryStream();
            await ImageArchive.SaveAsync(a.Images, names, tar);
            Dictionary<string, byte[]> files = ReadTar(tar.ToArray());
            using JsonDocument manifest = JsonDocument.Parse(files["manifest.json"]);
            using JsonDocument index = JsonDocument.Parse(files["index.json"]);
            string[] entries = manifest.RootElement.EnumerateArray().Select(e => e.GetProperty("Config").GetString() + " " +
                (e.TryGetProperty("RepoTags", out JsonElement t) && t.ValueKind == JsonValueKind.Array ? string.Join(',', t.EnumerateArray().Select(x => x.GetString())) : "-")).ToArray();
            return (entries, index.RootElement.GetProperty("manifests").GetArrayLength(), tar.ToArray());
        }

        string config = $"blobs/sha256/{image.Id.Hex}";
        var (entries, indexEntries, tar) = await Save("busybox:v2", "other/bb:two", "busybox:v2", image.Id.Hex[..12]);
        Assert.Equal([$"{config} busybox:v2,other/bb:two"], entries);
        Assert.Equal(2, indexEntries);

        (entries, _, _) = await Save("busybox");
        Assert.Equal([$"{config} busybox:latest,busybox:v2"], entries);

        (entries, indexEntries, _) = await Save(image.Id.Value, "example.com/app:1.0");
        Assert.Equal([$"{config} -", $"blobs/sha256/{app.Id.Hex} example.com/app:1.0"], entries);
        Assert.Equal(2, indexEntries);

        using var b = new StoreScope();
        IReadOnlyList<string> loaded = await ImageArchive.LoadAsync(b.Images, new MemoryStream(tar));
        Assert.Equal(["docker.io/library/busybox:v2", "docker.io/other/bb:two"], loaded);
    }

    [Fact]
    public async Task Load_reads_the_legacy_docker_save_layout()
    {
        using var a = new StoreScope();
        var layer = TestImages.FileLayer("hello.txt", "legacy");
        Descriptor m = await TestImages.StoreImageAsync(a.Content, [layer], docker: true);
        Image image = a.Images.Read(m with { Platform = null });
        byte[] config = a.Images.ReadBlob(image.Id, int.MaxValue);

        // <id>.json, <layer>/layer.tar (uncompressed), manifest.json, as Docker before 25 wrote them.
        var tar = new MemoryStream();
        using (var w = new TarWriter(tar, leaveOpen: true))
        {
            void Add(string name, byte[] data) => w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
            Add($"{image.Id.Hex}.json", config);
            using var gz = new System.IO.Compression.GZipStream(new MemoryStream(layer.Gz), System.IO.Compression.CompressionMode.Decompress);
            var raw = new MemoryStream();
            gz.CopyTo(raw);
            Add("abc123/layer.tar", raw.ToArray());
            Add("manifest.json", System.Text.Encoding.UTF8.GetBytes($$"""[{"Config":"{{image.Id.Hex}}.json","RepoTags":["legacy:v1"],"Layers":["abc123/layer.tar"]}]"""));
        }
        using var b = new StoreScope();
        Assert.Equal(["docker.io/library/legacy:v1"], await ImageArchive.LoadAsync(b.Images, new MemoryStream(tar.ToArray())));
        Image loaded = b.Images.Get("legacy:v1");
        Assert.Equal(image.Id, loaded.Id);
        Assert.Equal(MediaTypes.DockerLayer, loaded.Manifest.Layers[0].MediaType);
        Assert.Equal(layer.DiffId, loaded.Manifest.Layers[0].ParsedDigest);
        string? top = await b.Images.UnpackAsync("legacy:v1");
        Assert.Equal(layer.DiffId.Value, top);
    }

    [Fact]
    public async Task Load_refuses_a_blob_that_does_not_match_its_name()
    {
        using var a = new StoreScope();
        await BuildAsync(a, "x:1");
        var tar = new MemoryStream();
        await ImageArchive.SaveAsync(a.Images, ["x:1"], tar);
        var files = ReadTar(tar.ToArray());
        string victim = files.Keys.First(k => k.StartsWith("blobs/sha256/", StringComparison.Ordinal) && files[k].Length > 1000);
        var bad = new MemoryStream();
        using (var w = new TarWriter(bad, leaveOpen: true))
            foreach (var (name, data) in files)
            {
                byte[] d = name == victim ? data.Select((x, i) => i == 100 ? (byte)(x ^ 1) : x).ToArray() : data;
                w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(d) });
            }
        using var b = new StoreScope();
        var e = await Assert.ThrowsAsync<ImagesException>(() => ImageArchive.LoadAsync(b.Images, new MemoryStream(bad.ToArray())));
        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
        Assert.Contains(victim, e.Message);
        Assert.Empty(b.Images.References());
    }

    [Fact]
    public async Task Import_makes_a_single_layer_image_and_export_gives_the_tree_back()
    {
        using var scope = new StoreScope();
        var (gz, diffId) = TestImages.BusyboxLayer;
        Image image = await ImageArchive.ImportAsync(scope.Images, new MemoryStream(gz), "imported:v1",
            new ImportOptions { Config = new ContainerConfig { Cmd = ["/bin/sh"] }, Message = "from a test" });
        Assert.Single(image.Manifest.Layers);
        Assert.Equal(diffId, image.Manifest.Layers[0].ParsedDigest);
        Assert.Equal([diffId], image.DiffIds);
        Assert.Equal(["/bin/sh"], image.Config.Config!.Cmd);
        Assert.Equal(PlatformMatcher.Host.Architecture, image.Config.Architecture);
        Assert.Equal("from a test", scope.Images.History("imported:v1")[0].Comment);

        string top = (await scope.Images.UnpackAsync("imported:v1"))!;
        var exported = new MemoryStream();
        ImageArchive.ExportSnapshot(scope.Snapshotter, top, exported);
        Dictionary<string, byte[]> files = ReadTar(exported.ToArray());
        Assert.Equal(File.ReadAllBytes(TestImages.BusyboxPath), files["bin/busybox"]);
        Assert.Single(scope.Snapshotter.Walk()); // the view is gone

        // Exporting a mounted rootfs directly gives the same tar.
        scope.Snapshotter.View("v", top);
        using (var mount = new MountScope(scope.Snapshotter.Mounts("v")))
        {
            var direct = new MemoryStream();
            ImageArchive.Export(mount.Path, direct);
            Assert.Equal(exported.ToArray(), direct.ToArray());
        }
        scope.Snapshotter.Remove("v");
    }

    /// <summary>A docker-save archive of one image of <paramref name="layerTar"/> (uncompressed), whose config gives <paramref name="diffId"/>.</summary>
    private static byte[] SaveArchive(string tag, byte[] layerTar, Digest? diffId = null)
    {
        Digest actual = Digest.Compute(layerTar);
        byte[] config = System.Text.Encoding.UTF8.GetBytes($$$"""{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["{{{diffId ?? actual}}}"]}}""");
        Digest configDigest = Digest.Compute(config);
        var tar = new MemoryStream();
        using (var w = new TarWriter(tar, leaveOpen: true))
        {
            void Add(string name, byte[] data) => w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
            Add($"{configDigest.Hex}.json", config);
            Add($"{actual.Hex}/layer.tar", layerTar);
            Add("manifest.json", System.Text.Encoding.UTF8.GetBytes($$"""[{"Config":"{{configDigest.Hex}}.json","RepoTags":["{{tag}}"],"Layers":["{{actual.Hex}}/layer.tar"]}]"""));
        }
        return tar.ToArray();
    }

    private static byte[] Tar(params TarEntry[] entries)
    {
        var tar = new MemoryStream();
        using (var w = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
            foreach (TarEntry e in entries) w.WriteEntry(e);
        return tar.ToArray();
    }

    private static PaxTarEntry FileEntry(string name, string content) => new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)) };

    /// <summary>A symlink out of the root, then a file written through it: the applier refuses the second entry.</summary>
    private static byte[] EscapingLayer() => Tar(new PaxTarEntry(TarEntryType.SymbolicLink, "out") { LinkName = "/tmp" }, FileEntry("out/escaped", "x"));

    [Fact]
    public async Task Load_with_unpack_names_no_image_whose_layer_does_not_match_its_diff_id_or_is_refused()
    {
        using var scope = new StoreScope();
        byte[] good = Tar(FileEntry("hello", "hi"));
        Assert.Equal(["docker.io/library/kept:1"], await ImageArchive.LoadAsync(scope.Images, new MemoryStream(SaveArchive("kept:1", good)), unpack: true));
        Digest keptId = scope.Images.Get("kept:1").Id;
        int snapshots = scope.Snapshotter.Walk().Count;

        // The same name, reloaded with a layer whose content is not the config's diffID: refused, and the name stays where it was.
        var e = await Assert.ThrowsAsync<ImagesException>(() => ImageArchive.LoadAsync(scope.Images,
            new MemoryStream(SaveArchive("kept:1", Tar(FileEntry("hello", "changed")), Digest.Compute("something else"u8))), unpack: true));
        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
        Assert.StartsWith("invalid diffID for layer 0: expected \"sha256:", e.Message);
        Assert.Equal(keptId, scope.Images.Get("kept:1").Id);

        e = await Assert.ThrowsAsync<ImagesException>(() => ImageArchive.LoadAsync(scope.Images, new MemoryStream(SaveArchive("hostile:1", EscapingLayer())), unpack: true));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("out/escaped", e.Message);
        Assert.Equal(["docker.io/library/kept:1"], scope.Images.References().Select(r => r.Name));
        Assert.Single(scope.Images.List());
        Assert.Equal(snapshots, scope.Snapshotter.Walk().Count); // the refused layers' extraction snapshots are gone
    }

    [Theory]
    [InlineData("garbage", "Error processing tar file: archive/tar: invalid tar header")]
    [InlineData("truncated", "Error processing tar file: unexpected EOF")]
    [InlineData("gzip", "Error processing tar file(gzip): corrupt compressed data")]
    public async Task Load_and_import_of_a_malformed_archive_are_invalid_arguments_naming_the_problem(string kind, string message)
    {
        byte[] input = kind switch
        {
            "garbage" => System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("not a tar archive at all ", 60))),
            "truncated" => Tar(FileEntry("hello", new string('x', 4000)))[..1200],
            _ => [0x1f, 0x8b, 0x08, 0x00, .. System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("garbage", 40)))],
        };
        using var scope = new StoreScope();
        var e = await Assert.ThrowsAsync<ImagesException>(() => ImageArchive.LoadAsync(scope.Images, new MemoryStream(input), unpack: true));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith(message, e.Message);
        e = await Assert.ThrowsAsync<ImagesException>(() => ImageArchive.ImportAsync(scope.Images, new MemoryStream(input), "imported:1", new ImportOptions { Unpack = true }));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith(kind == "truncated" ? "Error processing tar file" : message, e.Message);
        Assert.Empty(scope.Images.References());
        Assert.Empty(scope.Images.List());
    }

    [Fact]
    public async Task Import_with_unpack_of_a_refused_tar_leaves_no_image_and_without_a_name_keeps_an_untagged_one()
    {
        using var scope = new StoreScope();
        var e = await Assert.ThrowsAsync<ImagesException>(() => ImageArchive.ImportAsync(scope.Images, new MemoryStream(EscapingLayer()), "hostile:1", new ImportOptions { Unpack = true }));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("out/escaped", e.Message);
        e = await Assert.ThrowsAsync<ImagesException>(() => ImageArchive.ImportAsync(scope.Images,
            new MemoryStream(Tar(new PaxTarEntry(TarEntryType.HardLink, "link") { LinkName = "../../etc/passwd" })), null, new ImportOptions { Unpack = true }));
        Assert.Contains("leads outside the target directory", e.Message);
        Assert.Empty(scope.Images.List());
        Assert.Empty(scope.Snapshotter.Walk());

        // dockerd's <none> image: listed, found by its ID, and it survives a garbage collection.
        Image untagged = await ImageArchive.ImportAsync(scope.Images, new MemoryStream(Tar(FileEntry("hello", "hi"))), null, new ImportOptions { Unpack = true });
        await scope.Images.CollectGarbageAsync();
        Assert.Equal(untagged.Id, Assert.Single(scope.Images.List()).Id);
        Assert.Equal(untagged.Id, scope.Images.Get(untagged.Id.Value).Id);
        Assert.Single(scope.Snapshotter.Walk());
    }
}
