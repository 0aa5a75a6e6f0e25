using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Layers;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Snapshots;
using Berth.Images.Store;

namespace Berth.Images.Archive;

/// <summary>
/// Images in and out of tar archives: <c>save</c>/<c>load</c> in the format of <c>docker save</c>
/// since Docker 25 (an OCI image layout — <c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/</c> —
/// with Docker's <c>manifest.json</c> and <c>repositories</c> beside it, so both Docker and OCI
/// tools read it); <c>load</c> also reads plain OCI layouts and the older Docker layout
/// (<c>&lt;id&gt;/layer.tar</c>, <c>&lt;id&gt;.json</c>). <c>import</c> makes a one-layer image of a rootfs
/// tar, <c>export</c> writes a rootfs as a tar.
///
/// Security: entry names of a loaded archive are only ever keys; nothing is written to a path taken
/// from the archive. Every blob under <c>blobs/sha256/</c> is verified against its name, and every
/// manifest and config against the digest that refers to it.
/// </summary>
public static class ImageArchive
{
    private const string OciLayoutName = "oci-layout";
    private const string IndexName = "index.json";
    private const string DockerManifestName = "manifest.json";
    private const string RepositoriesName = "repositories";
    private const string ImageNameAnnotation = "io.containerd.image.name";
    private const string RefNameAnnotation = "org.opencontainers.image.ref.name";
    private const int MaxMetadataSize = 8 * 1024 * 1024;

    // ---- save ---------------------------------------------------------------------------------

    /// <summary>Writes the named images (names or IDs) as a docker-save/OCI-layout tar.</summary>
    public static async Task SaveAsync(ImageStore store, IReadOnlyList<string> names, Stream output, CancellationToken cancellationToken = default)
    {
        var blobs = new List<Descriptor>();
        var seen = new HashSet<Digest>();
        var indexEntries = new List<Descriptor>();
        var dockerEntries = new List<DockerArchiveEntry>();
        var repositories = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);

        void Add(Descriptor d)
        {
            if (seen.Add(d.ParsedDigest)) blobs.Add(d);
        }

        // Each image is written once, with every name it was asked by (dockerd's save): one
        // manifest.json entry with all its RepoTags, one index.json entry per name (a plain one when
        // it was asked by ID only).
        var images = new List<(Image Image, Descriptor Root, List<ImageReference> Names)>();
        foreach (string name in names)
        {
            foreach ((ImageRecord record, ImageReference? reference) in SaveSelection(store, name))
            {
                Image image = store.Read(record.Target);
                int at = images.FindIndex(i => i.Image.Id == image.Id);
                if (at < 0)
                {
                    images.Add((image, SaveRoot(store, record, image, Add), []));
                    at = images.Count - 1;
                }
                if (reference is not null && !images[at].Names.Any(n => n.ToString() == reference.ToString())) images[at].Names.Add(reference);
            }
        }

        foreach ((Image image, Descriptor root, List<ImageReference> imageNames) in images)
        {
            Add(root);
            Add(image.ManifestDescriptor);
            Add(image.Manifest.Config);
            foreach (Descriptor l in image.Manifest.Layers) Add(l);

            var repoTags = new List<string>();
            foreach (ImageReference reference in imageNames)
            {
                var annotations = new Dictionary<string, string> { [ImageNameAnnotation] = reference.ToString() };
                if (reference.Tag is not null) annotations[RefNameAnnotation] = reference.Tag;
                indexEntries.Add(Descriptor.For(root.MediaType, root.ParsedDigest, root.Size, annotations: annotations));
                if (reference.Tag is null) continue;
                repoTags.Add(reference.FamiliarName);
                string repo = reference.FamiliarName[..reference.FamiliarName.LastIndexOf(':')];
                if (!repositories.TryGetValue(repo, out var tags)) repositories[repo] = tags = new(StringComparer.Ordinal);
                tags[reference.Tag] = image.Id.Hex;
            }
            if (imageNames.Count == 0) indexEntries.Add(Descriptor.For(root.MediaType, root.ParsedDigest, root.Size));
            dockerEntries.Add(new DockerArchiveEntry
            {
                Config = BlobPath(image.Id),
                RepoTags = repoTags.Count > 0 ? repoTags : null,
                Layers = image.Manifest.Layers.Select(l => BlobPath(l.ParsedDigest)).ToList(),
            });
        }

        // Writes to the client synchronously: on a thread of its own, not the pool's, so that a client
        // reading slowly (or not at all) holds up no one else.
        await Task.Factory.StartNew(() =>
        {
            var writer = new LayerTarWriter(output);
            long mtime = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            writer.WriteEntry(new TarHeader { Name = "blobs", Kind = TarEntryKind.Directory, Mode = 0x1ED, MtimeSeconds = mtime });
            writer.WriteEntry(new TarHeader { Name = "blobs/sha256", Kind = TarEntryKind.Directory, Mode = 0x1ED, MtimeSeconds = mtime });
            foreach (Descriptor blob in blobs)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Digest digest = blob.ParsedDigest;
                using Stream data = store.Content.OpenRead(digest);
                writer.WriteEntry(new TarHeader { Name = BlobPath(digest), Kind = TarEntryKind.File, Mode = 0x1A4, Size = data.Length, MtimeSeconds = mtime }, data);
                if (data.ReadByte() >= 0) throw new ImagesException(ImagesErrorKind.DataLoss, $"blob {digest} grew while being saved");
            }
            WriteFile(writer, OciLayoutName, JsonSerializer.SerializeToUtf8Bytes(new OciLayoutFile(), ArchiveJsonContext.Default.OciLayoutFile), mtime);
            WriteFile(writer, IndexName, JsonSerializer.SerializeToUtf8Bytes(new ImageIndex { MediaType = MediaTypes.OciIndex, Manifests = indexEntries }, ArchiveJsonContext.Default.ImageIndex), mtime);
            WriteFile(writer, DockerManifestName, JsonSerializer.SerializeToUtf8Bytes(dockerEntries, ArchiveJsonContext.Default.ListDockerArchiveEntry), mtime);
            WriteFile(writer, RepositoriesName, JsonSerializer.SerializeToUtf8Bytes(repositories, ArchiveJsonContext.Default.DictionaryStringDictionaryStringString), mtime);
            writer.Finish();
        }, cancellationToken, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default).ConfigureAwait(false);
    }

    private static void WriteFile(LayerTarWriter writer, string name, byte[] bytes, long mtime)
        => writer.WriteEntry(new TarHeader { Name = name, Kind = TarEntryKind.File, Mode = 0x1A4, Size = bytes.Length, MtimeSeconds = mtime }, new MemoryStream(bytes));

    private static string BlobPath(Digest d) => $"blobs/sha256/{d.Hex}";

    /// <summary>
    /// What one name given to save stands for, as dockerd's parseNames: a repository alone, every
    /// tag of it (<c>busybox</c>: busybox:latest and busybox:v2); a name, itself; an ID or a
    /// name@digest, the image without a name.
    /// </summary>
    private static IEnumerable<(ImageRecord Record, ImageReference? Name)> SaveSelection(ImageStore store, string name)
    {
        ImageRecord record = store.ResolveRecord(name);
        ImageReference recordName = ImageReference.ParseNormalized(record.Name);
        ImageReference? asked = null;
        try
        {
            asked = ImageReference.ParseNormalized(name);
        }
        catch (ImagesException)
        {
        }
        if (asked is { Tag: null, Digest: null } && asked.Repository == recordName.Repository)
            return store.References()
                .Select(r => (Record: r, Name: ImageReference.ParseNormalized(r.Name)))
                .Where(r => r.Name.Repository == asked.Repository && r.Name.Tag is not null)
                .Select(r => (r.Record, (ImageReference?)r.Name));
        if (asked is not null && asked.WithDefaultTag().ToString() == recordName.ToString()) return [(record, recordName)];
        return [(record, null)];
    }

    /// <summary>The descriptor index.json names for the image: its whole index when every manifest of it is here, else the platform's manifest alone.</summary>
    private static Descriptor SaveRoot(ImageStore store, ImageRecord record, Image image, Action<Descriptor> add)
    {
        if (!MediaTypes.IsIndex(record.Target.MediaType)) return image.ManifestDescriptor;
        ManifestDocument index = store.ReadManifest(record.Target);
        if (!index.Index!.Manifests.All(m => store.Content.Exists(m.ParsedDigest))) return image.ManifestDescriptor;
        foreach (Descriptor child in index.Index.Manifests)
        {
            add(child);
            ImageManifest m = store.ReadManifest(child).Manifest!;
            add(m.Config);
            foreach (Descriptor l in m.Layers) add(l);
        }
        return record.Target;
    }

    // ---- load ---------------------------------------------------------------------------------

    /// <summary>Loads every image of a docker-save or OCI-layout tar (plain or gzip); returns the names it set (and IDs of unnamed images).</summary>
    /// <param name="unpack">
    /// Unpack each image before it is named, as dockerd registers a loaded image only once its layers are
    /// applied: an image whose layer cannot be unpacked (hostile paths, a diffID that does not match) is then
    /// left with no name, and no earlier image of that name is displaced.
    /// </param>
    public static async Task<IReadOnlyList<string>> LoadAsync(ImageStore store, Stream input, CancellationToken cancellationToken = default, bool unpack = false)
    {
        string spool = Path.Combine(store.Root, "tmp");
        Directory.CreateDirectory(spool);
        using IDisposable hold = await store.HoldGarbageCollectionAsync(cancellationToken).ConfigureAwait(false);
        var files = new Dictionary<string, (Digest Digest, long Size)>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, byte[]>(StringComparer.Ordinal);

        try
        {
            await ReadArchiveAsync(store, input, spool, files, metadata, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (MalformedArchive.Is(e))
        {
            throw MalformedArchive.Error(e);
        }

        if (metadata.TryGetValue(IndexName, out byte[]? indexBytes) && metadata.ContainsKey(OciLayoutName))
            return await LoadOciIndexAsync(store, indexBytes, metadata.GetValueOrDefault(DockerManifestName), unpack, cancellationToken).ConfigureAwait(false);
        if (metadata.TryGetValue(DockerManifestName, out byte[]? manifestBytes))
            return await LoadDockerManifestAsync(store, manifestBytes, files, unpack, cancellationToken).ConfigureAwait(false);
        throw new ImagesException(ImagesErrorKind.InvalidArgument, "archive: neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)");
    }

    /// <summary>Stores the archive's blobs and keeps its metadata files (manifest.json, index.json…).</summary>
    private static async Task ReadArchiveAsync(ImageStore store, Stream input, string spool, Dictionary<string, (Digest Digest, long Size)> files,
        Dictionary<string, byte[]> metadata, CancellationToken cancellationToken)
    {
        await using (Stream tarStream = await LayerDecompression.OpenAsync(input, cancellationToken).ConfigureAwait(false))
        {
            var reader = new TarReader(tarStream);
            while (await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null) continue;
                string name = Clean(entry.Name);
                if (name is OciLayoutName or IndexName or DockerManifestName or RepositoriesName)
                {
                    if (entry.Length > MaxMetadataSize)
                        throw new ImagesException(ImagesErrorKind.InvalidArgument, $"archive: `{name}` is {entry.Length} bytes, over the limit of {MaxMetadataSize}");
                    var buffer = new MemoryStream();
                    await entry.DataStream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
                    metadata[name] = buffer.ToArray();
                }
                else if (name.StartsWith("blobs/sha256/", StringComparison.Ordinal))
                {
                    if (!Digest.TryParse("sha256:" + name["blobs/sha256/".Length..], out Digest digest))
                        throw new ImagesException(ImagesErrorKind.InvalidArgument, $"archive: `{name}` is not named by a sha256 digest");
                    try
                    {
                        await store.Content.WriteAsync(entry.DataStream, digest, entry.Length, cancellationToken).ConfigureAwait(false);
                    }
                    catch (ImagesException e) when (e.Kind == ImagesErrorKind.DataLoss)
                    {
                        throw new ImagesException(ImagesErrorKind.DataLoss, $"archive: `{name}`: {e.Message}", e);
                    }
                    files[name] = (digest, entry.Length);
                }
                else
                {
                    // Older docker save layout: content named by paths. Hash while spooling, then store.
                    files[name] = await IngestAsync(store.Content, entry.DataStream, spool, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    private static async Task<List<string>> LoadOciIndexAsync(ImageStore store, byte[] indexBytes, byte[]? dockerManifest, bool unpack, CancellationToken cancellationToken)
    {
        ManifestDocument doc = ManifestParser.Parse(indexBytes, MediaTypes.OciIndex, what: "archive index.json");
        if (doc.Index is null) throw new ImagesException(ImagesErrorKind.InvalidArgument, "archive: index.json is not an image index");
        List<DockerArchiveEntry> dockerEntries = dockerManifest is null ? [] : ParseDockerManifest(dockerManifest);
        var loaded = new List<string>();
        foreach (Descriptor d in doc.Index.Manifests)
        {
            if (!store.Content.Exists(d.ParsedDigest))
                throw new ImagesException(ImagesErrorKind.NotFound, $"archive: index.json names {d.Digest}, which the archive does not hold");
            Image image = store.Read(d); // verifies the manifest, the config and that the layers are counted right
            if (unpack) await store.UnpackHeldAsync(image, cancellationToken: cancellationToken).ConfigureAwait(false);
            var names = new List<string>();
            if (d.Annotations?.GetValueOrDefault(ImageNameAnnotation) is { } full) names.Add(full);
            else if (d.Annotations?.GetValueOrDefault(RefNameAnnotation) is { } refName && refName.Contains(':') && ImageReference.TryParse(refName, out _)) names.Add(refName);
            names.AddRange(dockerEntries.Where(e => e.Config == BlobPath(image.Id)).SelectMany(e => e.RepoTags ?? []));
            foreach (string n in names.Select(n => ImageReference.Parse(n).ToString()).Distinct())
            {
                store.SetReference(ImageReference.Parse(n), d with { Annotations = null, Platform = null });
                loaded.Add(n);
            }
            if (names.Count == 0) loaded.Add(image.Id.Value);
        }
        // An image saved by several names has an index entry per name, each of which finds them all
        // in manifest.json: each is said once.
        return loaded.Distinct().ToList();
    }

    private static async Task<List<string>> LoadDockerManifestAsync(ImageStore store, byte[] manifestBytes, Dictionary<string, (Digest Digest, long Size)> files, bool unpack,
        CancellationToken cancellationToken)
    {
        var loaded = new List<string>();
        foreach (DockerArchiveEntry entry in ParseDockerManifest(manifestBytes))
        {
            (Digest Digest, long Size) config = Lookup(files, entry.Config);
            ImageConfig parsed = ManifestParser.ParseConfig(store.ReadBlob(config.Digest, ManifestParser.MaxConfigSize), config.Digest);
            if (parsed.RootFS.DiffIds.Count != entry.Layers.Count)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"archive: image {config.Digest} lists {entry.Layers.Count} layers but its config has {parsed.RootFS.DiffIds.Count} diff_ids");
            var layers = new List<Descriptor>();
            foreach (string path in entry.Layers)
            {
                (Digest digest, long size) = Lookup(files, path);
                layers.Add(Descriptor.For(LayerMediaType(store.Content, digest), digest, size));
            }
            var manifest = new ImageManifest
            {
                MediaType = MediaTypes.DockerManifest,
                Config = Descriptor.For(MediaTypes.DockerConfig, config.Digest, config.Size),
                Layers = layers,
            };
            Descriptor target = await StoreManifestAsync(store.Content, manifest, cancellationToken).ConfigureAwait(false);
            if (unpack) await store.UnpackHeldAsync(store.Read(target), cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (string tag in entry.RepoTags ?? [])
            {
                ImageReference name = ImageReference.Parse(tag);
                store.SetReference(name, target);
                loaded.Add(name.ToString());
            }
            if (entry.RepoTags is not { Count: > 0 }) loaded.Add(config.Digest.Value);
        }
        return loaded;
    }

    private static List<DockerArchiveEntry> ParseDockerManifest(byte[] bytes)
    {
        try
        {
            return JsonSerializer.Deserialize(bytes, ArchiveJsonContext.Default.ListDockerArchiveEntry) ?? [];
        }
        catch (JsonException e)
        {
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"archive: malformed manifest.json: {JsonErrorText.Describe(e)}", e);
        }
    }

    private static (Digest, long) Lookup(Dictionary<string, (Digest, long)> files, string path)
        => files.TryGetValue(Clean(path), out var f) ? f : throw new ImagesException(ImagesErrorKind.NotFound, $"archive: manifest.json names `{path}`, which the archive does not hold");

    private static string LayerMediaType(IContentStore content, Digest digest)
    {
        using Stream s = content.OpenRead(digest);
        byte[] head = new byte[4];
        int n = s.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b) return MediaTypes.DockerLayerGzip;
        if (n == 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd) return MediaTypes.OciLayerZstd;
        return MediaTypes.DockerLayer;
    }

    /// <summary>Entry names as keys: no leading <c>./</c> or <c>/</c>. Never used as a path.</summary>
    private static string Clean(string name)
    {
        while (name.StartsWith("./", StringComparison.Ordinal)) name = name[2..];
        return name.TrimStart('/');
    }

    private static async Task<(Digest, long)> IngestAsync(IContentStore content, Stream data, string spoolDir, CancellationToken cancellationToken, Action<Stream>? validate = null)
    {
        string temp = Path.Combine(spoolDir, Guid.NewGuid().ToString("N"));
        try
        {
            Digest digest;
            long size;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.Asynchronous))
            using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                byte[] buffer = new byte[128 * 1024];
                int n;
                while ((n = await data.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    sha.AppendData(buffer, 0, n);
                    await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                }
                digest = Digest.FromSha256(sha.GetHashAndReset());
                size = file.Length;
                if (validate is not null)
                {
                    file.Position = 0;
                    validate(file);
                }
                file.Position = 0;
                await content.WriteAsync(file, digest, size, cancellationToken).ConfigureAwait(false);
            }
            return (digest, size);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>
    /// Refuses a layer that is not a tar archive before anything is stored (docker: "Error processing
    /// tar file"); returns what it holds unpacked (<see cref="LayerSize"/>).
    /// </summary>
    private static long ValidateTar(Stream layer)
    {
        int entries = 0;
        long unpacked = 0;
        try
        {
            using var reader = new System.Formats.Tar.TarReader(layer, leaveOpen: true);
            while (reader.GetNextEntry(copyData: false) is { } entry)
            {
                entries++;
                unpacked += entry.EntryType switch
                {
                    System.Formats.Tar.TarEntryType.RegularFile or System.Formats.Tar.TarEntryType.V7RegularFile
                        or System.Formats.Tar.TarEntryType.ContiguousFile => entry.Length,
                    System.Formats.Tar.TarEntryType.SymbolicLink => System.Text.Encoding.UTF8.GetByteCount(entry.LinkName),
                    _ => 0,
                };
            }
        }
        catch (Exception e) when (MalformedArchive.Is(e) || e is ArgumentException)
        {
            throw MalformedArchive.Error(e);
        }
        if (entries == 0 && layer.Length > 0)
        {
            // TarReader reads a short or zero-filled archive as empty: only zero blocks make an empty tar.
            layer.Position = 0;
            int b;
            while ((b = layer.ReadByte()) >= 0)
                if (b != 0) throw new ImagesException(ImagesErrorKind.InvalidArgument, "Error processing tar file: not a tar archive");
        }
        return unpacked;
    }

    private static async Task<Descriptor> StoreManifestAsync(IContentStore content, ImageManifest manifest, CancellationToken cancellationToken)
    {
        byte[] bytes = ManifestParser.Serialize(manifest);
        Digest digest = Digest.Compute(bytes);
        await content.WriteAsync(new MemoryStream(bytes), digest, bytes.Length, cancellationToken).ConfigureAwait(false);
        return Descriptor.For(manifest.MediaType!, digest, bytes.Length);
    }

    // ---- import / export ----------------------------------------------------------------------

    /// <summary>
    /// <c>docker import</c>: a rootfs tar (plain, gzip or zstd) becomes a one-layer image, stored
    /// uncompressed (its digest is then its diffID), with a config for <paramref name="options"/>;
    /// named <paramref name="reference"/> when given.
    /// </summary>
    public static async Task<Image> ImportAsync(ImageStore store, Stream rootfsTar, string? reference = null, ImportOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ImportOptions();
        string spool = Path.Combine(store.Root, "tmp");
        Directory.CreateDirectory(spool);
        using IDisposable hold = await store.HoldGarbageCollectionAsync(cancellationToken).ConfigureAwait(false);
        long unpacked = 0;
        Stream uncompressed = await LayerDecompression.OpenAsync(rootfsTar, cancellationToken).ConfigureAwait(false);
        (Digest layer, long size) = await IngestAsync(store.Content, uncompressed, spool, cancellationToken,
            tar => unpacked = ValidateTar(tar)).ConfigureAwait(false);
        store.RecordLayerSize(layer, unpacked);

        Platform platform = options.Platform ?? PlatformMatcher.Host;
        DateTimeOffset now = options.TimeProvider.GetUtcNow();
        string comment = options.Message ?? "Imported from tarball";
        var config = new ImageConfig
        {
            Created = now,
            Comment = comment,
            Architecture = platform.Architecture,
            OS = platform.OS,
            Variant = platform.Variant,
            Config = options.Config,
            RootFS = new RootFS { DiffIds = [layer.Value] },
            // As dockerd's import: the entry has a comment and no created_by.
            History = [new HistoryEntry { Created = now, Comment = comment }],
        };
        byte[] configBytes = ManifestParser.Serialize(config);
        Digest configDigest = Digest.Compute(configBytes);
        await store.Content.WriteAsync(new MemoryStream(configBytes), configDigest, configBytes.Length, cancellationToken).ConfigureAwait(false);
        Descriptor target = await StoreManifestAsync(store.Content, new ImageManifest
        {
            MediaType = MediaTypes.OciManifest,
            Config = Descriptor.For(MediaTypes.OciConfig, configDigest, configBytes.Length),
            Layers = [Descriptor.For(MediaTypes.OciLayer, layer, size)],
        }, cancellationToken).ConfigureAwait(false);
        Image image = store.Read(target);
        // Unpacked before it is named (dockerd applies the layer first): a tar the applier refuses leaves no image.
        if (options.Unpack) await store.UnpackHeldAsync(image, cancellationToken: cancellationToken).ConfigureAwait(false);
        // Without a name the image is dockerd's <none>, kept until removed or pruned.
        if (reference is not null) store.SetReference(ImageReference.Parse(reference), target);
        else store.KeepUntagged(target);
        return image;
    }

    /// <summary>
    /// <c>docker export</c>: writes the tree under <paramref name="rootDirectory"/> (a mounted
    /// container rootfs) as a tar, symlinks archived and never followed, in a stable order.
    /// </summary>
    public static void Export(string rootDirectory, Stream output, CancellationToken cancellationToken = default)
        => LayerDiffer.Diff(rootDirectory, output, cancellationToken);

    /// <summary>Exports the filesystem of the committed snapshot <paramref name="name"/> (e.g. an unpacked image's top chain ID), through a temporary read-only view mount.</summary>
    public static void ExportSnapshot(ISnapshotter snapshotter, string name, Stream output, CancellationToken cancellationToken = default)
    {
        string key = $"export-{Guid.NewGuid():N}";
        string target = Path.Combine(Path.GetTempPath(), "berth-" + key);
        IReadOnlyList<Mount> mounts = snapshotter.View(key, name);
        try
        {
            Directory.CreateDirectory(target);
            MountHelper.MountAll(mounts, target);
            try
            {
                Export(target, output, cancellationToken);
            }
            finally
            {
                MountHelper.Unmount(target, detach: true);
            }
        }
        finally
        {
            if (Directory.Exists(target)) Directory.Delete(target);
            snapshotter.Remove(key);
        }
    }
}
