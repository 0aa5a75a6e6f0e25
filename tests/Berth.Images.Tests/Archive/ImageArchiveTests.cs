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
}
