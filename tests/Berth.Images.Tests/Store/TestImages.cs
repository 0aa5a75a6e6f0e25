using System.IO.Compression;
using Berth.Images.Content;
using Berth.Images.Layers;
using Berth.Images.Manifests;

namespace Berth.Images.Tests.Store;

/// <summary>Builds images into a content store: a busybox rootfs from Debian's busybox-static, and small extra layers.</summary>
internal static class TestImages
{
    public const string BusyboxPath = "/bin/busybox";
    private static readonly string[] Applets = ["sh", "ls", "cat", "echo", "true", "false", "env", "sleep"];
    private static readonly Lazy<(byte[] Gz, Digest DiffId)> s_busyboxLayer = new(() => BuildLayer(BusyboxEntries));

    public static void RequireBusybox()
    {
        if (!File.Exists(BusyboxPath))
            throw new InvalidOperationException($"{BusyboxPath} is missing: install Debian's busybox-static (apt-get install -y busybox-static)");
    }

    /// <summary>A layer: bin/busybox and symlinks for a few applets.</summary>
    public static (byte[] Gz, Digest DiffId) BusyboxLayer
    {
        get
        {
            RequireBusybox();
            return s_busyboxLayer.Value;
        }
    }

    private static void BusyboxEntries(LayerTarWriter w)
    {
        w.WriteEntry(Dir("bin"));
        byte[] bytes = File.ReadAllBytes(BusyboxPath);
        w.WriteEntry(new TarHeader { Name = "bin/busybox", Kind = TarEntryKind.File, Mode = 0x1ED, Size = bytes.Length, MtimeSeconds = 1_600_000_000 }, new MemoryStream(bytes));
        foreach (string applet in Applets)
            w.WriteEntry(new TarHeader { Name = "bin/" + applet, Kind = TarEntryKind.Symlink, LinkName = "busybox", Mode = 0x1FF, MtimeSeconds = 1_600_000_000 });
    }

    private static TarHeader Dir(string name) => new() { Name = name, Kind = TarEntryKind.Directory, Mode = 0x1ED, MtimeSeconds = 1_600_000_000 };

    /// <summary>A small layer holding one file with <paramref name="content"/>.</summary>
    public static (byte[] Gz, Digest DiffId) FileLayer(string path, string content)
        => BuildLayer(w =>
        {
            byte[] bytes = System.Text.Encoding.UTF8.GetBytes(content);
            string dir = Path.GetDirectoryName(path)!;
            if (dir.Length > 0) w.WriteEntry(Dir(dir));
            w.WriteEntry(new TarHeader { Name = path, Kind = TarEntryKind.File, Mode = 0x1A4, Size = bytes.Length, MtimeSeconds = 1_600_000_000 }, new MemoryStream(bytes));
        });

    public static (byte[] Gz, Digest DiffId) BuildLayer(Action<LayerTarWriter> entries)
    {
        var tar = new MemoryStream();
        var writer = new LayerTarWriter(tar);
        entries(writer);
        writer.Finish();
        byte[] raw = tar.ToArray();
        var gz = new MemoryStream();
        using (var z = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true)) z.Write(raw);
        return (gz.ToArray(), Digest.Compute(raw));
    }

    /// <summary>Stores layers, a config and a manifest; returns the manifest's descriptor (with the platform).</summary>
    public static async Task<Descriptor> StoreImageAsync(IContentStore store, IReadOnlyList<(byte[] Gz, Digest DiffId)> layers,
        Platform? platform = null, bool docker = false, IReadOnlyList<string>? cmd = null, string? createdBy = null)
    {
        platform ??= PlatformMatcher.Host;
        var layerDescriptors = new List<Descriptor>();
        foreach (var (gz, _) in layers)
        {
            Digest d = Digest.Compute(gz);
            await store.WriteAsync(new MemoryStream(gz), d, gz.Length);
            layerDescriptors.Add(Descriptor.For(docker ? MediaTypes.DockerLayerGzip : MediaTypes.OciLayerGzip, d, gz.Length));
        }
        var config = new ImageConfig
        {
            Created = new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero),
            Architecture = platform.Architecture,
            OS = platform.OS,
            Variant = platform.Variant,
            Config = new ContainerConfig { Cmd = cmd ?? ["/bin/sh"], Env = ["PATH=/bin"] },
            RootFS = new RootFS { DiffIds = layers.Select(l => l.DiffId.Value).ToList() },
            History = layers.Select((l, i) => new HistoryEntry { CreatedBy = createdBy ?? $"layer {i}", Created = new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero) }).ToList(),
        };
        byte[] configBytes = ManifestParser.Serialize(config);
        Digest configDigest = Digest.Compute(configBytes);
        await store.WriteAsync(new MemoryStream(configBytes), configDigest, configBytes.Length);
        var manifest = new ImageManifest
        {
            MediaType = docker ? MediaTypes.DockerManifest : MediaTypes.OciManifest,
            Config = Descriptor.For(docker ? MediaTypes.DockerConfig : MediaTypes.OciConfig, configDigest, configBytes.Length),
            Layers = layerDescriptors,
        };
        byte[] manifestBytes = ManifestParser.Serialize(manifest);
        Digest manifestDigest = Digest.Compute(manifestBytes);
        await store.WriteAsync(new MemoryStream(manifestBytes), manifestDigest, manifestBytes.Length);
        return Descriptor.For(manifest.MediaType, manifestDigest, manifestBytes.Length, platform);
    }

    /// <summary>Stores an index (or Docker manifest list) of the given manifests.</summary>
    public static async Task<Descriptor> StoreIndexAsync(IContentStore store, IReadOnlyList<Descriptor> manifests, bool docker = false)
    {
        var index = new ImageIndex { MediaType = docker ? MediaTypes.DockerManifestList : MediaTypes.OciIndex, Manifests = manifests };
        byte[] bytes = ManifestParser.Serialize(index);
        Digest d = Digest.Compute(bytes);
        await store.WriteAsync(new MemoryStream(bytes), d, bytes.Length);
        return Descriptor.For(index.MediaType, d, bytes.Length);
    }

    /// <summary>A platform that is not the host's.</summary>
    public static Platform OtherPlatform => PlatformMatcher.Host.Architecture == "amd64"
        ? new Platform { OS = "linux", Architecture = "arm64", Variant = "v8" }
        : new Platform { OS = "linux", Architecture = "amd64" };
}
