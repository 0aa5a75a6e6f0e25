using System.IO.Compression;
using Berth.Images.Content;
using Berth.Images.Layers;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Snapshots;
using Berth.Images.Store;

namespace Berth.Images.Engine;

/// <summary>What <c>commit</c> records on the new image.</summary>
public sealed class CommitOptions
{
    /// <summary>The container's config (the image's plus the run overrides); the base image's when null.</summary>
    public ContainerConfig? ContainerConfig { get; init; }

    /// <summary>
    /// <c>--change</c>: fields set here win over <see cref="ContainerConfig"/>, merged as dockerd's
    /// commit does (Env by key, Labels/ExposedPorts/Volumes unioned, Cmd and Entrypoint together).
    /// </summary>
    public ContainerConfig? Changes { get; init; }

    /// <summary>
    /// The image's <c>container_config</c> when it is not <see cref="ContainerConfig"/>: a build step's
    /// container as dockerd records it (its Cmd the step's command or <c>#(nop)</c> comment).
    /// </summary>
    public ContainerConfig? RecordedContainerConfig { get; init; }

    public string? Author { get; init; }
    public string? Message { get; init; }

    /// <summary>The ID of the container committed (the config's <c>container</c>, inspect's Container below API 1.45).</summary>
    public string? Container { get; init; }

    /// <summary>The name to tag the new image with.</summary>
    public string? Reference { get; init; }

    /// <summary>
    /// Without <see cref="Reference"/>: keep the image as Docker's untagged <c>&lt;none&gt;</c> (what
    /// <c>docker commit CONTAINER</c> leaves), not as content for the caller to name or collect.
    /// Done under the commit's hold on garbage collection, so no collection can come between.
    /// </summary>
    public bool KeepUntagged { get; init; }

    /// <summary>The history entry's created_by; when null, the container config's Cmd joined by spaces, as it was before <see cref="Changes"/> (as dockerd).</summary>
    public string? CreatedBy { get; init; }

    /// <summary>
    /// Paths (relative to the rootfs) the engine wrote into the container's filesystem, left out of
    /// the layer, with whiteouts for them: by default what dockerd keeps in its init layer (the
    /// bind-mounted /etc/hosts, /etc/resolv.conf and /etc/hostname, /.dockerenv, /etc/mtab,
    /// /dev/console), as Docker leaves them out. Berth has no separate init layer, so a change the
    /// container itself made at one of these paths is left out too.
    /// </summary>
    public IReadOnlyList<string> ExcludedPaths { get; init; } = ["etc/hosts", "etc/resolv.conf", "etc/hostname", ".dockerenv", "etc/mtab", "dev/console"];

    /// <summary>
    /// Directories (relative to the rootfs) that the runtime creates as mount points when the image
    /// lacks them, left out of the layer unless something under them is kept: dockerd keeps them
    /// in its init layer, below the one it commits. Berth has no separate init layer, so without
    /// this every commit of an image without /proc would carry an empty /proc.
    /// </summary>
    public IReadOnlyList<string> MountPointDirectories { get; init; } = DefaultMountPointDirectories;

    /// <summary>The default <see cref="MountPointDirectories"/>: /dev (with /dev/pts and /dev/shm), /proc, /sys.</summary>
    public static IReadOnlyList<string> DefaultMountPointDirectories { get; } = ["dev", "dev/pts", "dev/shm", "proc", "sys"];

    /// <summary>Compress the new layer (gzip, as Docker pushes it); stored uncompressed otherwise.</summary>
    public bool Compress { get; init; } = true;

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary><c>docker commit</c>: a container's writable layer becomes a new image on top of its base.</summary>
public static class ImageCommitter
{
    /// <summary>
    /// Diffs the writable layer <paramref name="upperDirOrSnapshotKey"/> (an absolute upper
    /// directory, or the key of an active snapshot of the store's snapshotter) into a new layer,
    /// writes a config with the base's diff_ids plus the new one and a history entry, a manifest
    /// with the base's layers plus the new one, and tags it with <see cref="CommitOptions.Reference"/>.
    /// A writable layer with no changes adds no layer, only an <c>empty_layer</c> history entry (as
    /// Docker does). <paramref name="baseImage"/> null commits onto scratch.
    /// </summary>
    public static async Task<Image> CommitAsync(this ImageStore store, string upperDirOrSnapshotKey, Image? baseImage,
        CommitOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(upperDirOrSnapshotKey);
        options ??= new CommitOptions();
        string upper = Path.IsPathRooted(upperDirOrSnapshotKey)
            ? upperDirOrSnapshotKey
            : MountHelper.WritableDirectory((store.Snapshotter ?? throw new ImagesException(ImagesErrorKind.InvalidArgument, "this image store has no snapshotter"))
                .Mounts(upperDirOrSnapshotKey));
        if (!Directory.Exists(upper))
            throw new ImagesException(ImagesErrorKind.NotFound, $"writable layer `{upper}` does not exist");

        string spool = Path.Combine(store.Root, "tmp");
        Directory.CreateDirectory(spool);
        using IDisposable hold = await store.HoldGarbageCollectionAsync(cancellationToken).ConfigureAwait(false);

        string rawPath = Path.Combine(spool, $"commit-{Guid.NewGuid():N}.tar");
        string filteredPath = rawPath + ".filtered";
        string blobPath = rawPath + ".blob";
        try
        {
            // 1. The layer tar, without what the engine put there.
            LayerDiffResult diff;
            int entries;
            string layerPath = rawPath;
            await using (var raw = new FileStream(rawPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16))
            {
                diff = await Task.Run(() => LayerDiffer.Diff(upper, raw, cancellationToken), cancellationToken).ConfigureAwait(false);
                if (CommitFilter.Touches(upper, [.. options.ExcludedPaths, .. options.MountPointDirectories]))
                {
                    raw.Position = 0;
                    await using var filtered = new FileStream(filteredPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
                    (diff, entries) = await Task.Run(() => CommitFilter.Filter(raw, filtered, options.ExcludedPaths, spool, cancellationToken, options.MountPointDirectories), cancellationToken).ConfigureAwait(false);
                    layerPath = filteredPath;
                }
                else
                {
                    entries = Directory.EnumerateFileSystemEntries(upper).Any() ? 1 : 0;
                }
            }

            bool empty = entries == 0;
            ContainerConfig? containerConfig = MergeChanges(options.Changes, options.ContainerConfig ?? baseImage?.Config.Config);
            bool docker = baseImage?.Manifest.MediaType == MediaTypes.DockerManifest;
            var layers = new List<Descriptor>(baseImage?.Manifest.Layers ?? []);
            if (!empty)
            {
                (Digest digest, long size) = Compressed(layerPath, blobPath, options.Compress);
                using (FileStream layerTar = File.OpenRead(layerPath))
                    store.RecordLayerSize(diff.DiffId, LayerSize.Measure(layerTar, cancellationToken));
                await using (var blob = File.OpenRead(blobPath))
                    await store.Content.WriteAsync(blob, digest, size, cancellationToken).ConfigureAwait(false);
                string mediaType = (docker, options.Compress) switch
                {
                    (true, true) => MediaTypes.DockerLayerGzip,
                    (true, false) => MediaTypes.DockerLayer,
                    (false, true) => MediaTypes.OciLayerGzip,
                    _ => MediaTypes.OciLayer,
                };
                layers.Add(Descriptor.For(mediaType, digest, size));
            }

            // 2. The config: the parent's diff_ids and history plus this commit.
            DateTimeOffset now = options.TimeProvider.GetUtcNow();
            Platform platform = baseImage?.Config.Platform ?? PlatformMatcher.Host;
            var history = new List<HistoryEntry>(baseImage?.Config.History ?? [])
            {
                new()
                {
                    Created = now,
                    Author = options.Author,
                    CreatedBy = options.CreatedBy ?? string.Join(' ', (options.ContainerConfig ?? baseImage?.Config.Config)?.Cmd ?? []),
                    Comment = options.Message,
                    EmptyLayer = empty,
                },
            };
            var config = new ImageConfig
            {
                Created = now,
                Author = options.Author,
                Comment = options.Message,
                Architecture = platform.Architecture,
                OS = platform.OS,
                OSVersion = platform.OSVersion,
                Variant = platform.Variant,
                Config = containerConfig,
                Container = options.Container,
                ContainerConfig = options.RecordedContainerConfig ?? options.ContainerConfig ?? baseImage?.Config.Config,
                RootFS = new RootFS { DiffIds = [.. baseImage?.Config.RootFS.DiffIds ?? [], .. empty ? Array.Empty<string>() : [diff.DiffId.Value]] },
                History = history,
            };
            // 3. The config, then the manifest, last: a present manifest means everything it names is present.
            Descriptor target = await WriteConfigAndManifestAsync(store, config, layers, docker, cancellationToken).ConfigureAwait(false);
            if (options.Reference is not null) store.SetReference(ImageReference.Parse(options.Reference), target);
            else if (options.KeepUntagged) store.KeepUntagged(target);
            return store.Read(target);
        }
        finally
        {
            File.Delete(rawPath);
            File.Delete(filteredPath);
            File.Delete(blobPath);
        }
    }

    /// <summary>
    /// An image of layers the store already holds: <paramref name="config"/> as given and a manifest
    /// naming <paramref name="layers"/> (Docker's media types when <paramref name="docker"/>, else OCI's).
    /// The build's <c>--cache-from</c> makes its step images this way from a source image's layers, as
    /// dockerd's image cache restores them.
    /// </summary>
    public static async Task<Image> ComposeAsync(this ImageStore store, ImageConfig config, IReadOnlyList<Descriptor> layers, bool docker, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        using IDisposable hold = await store.HoldGarbageCollectionAsync(cancellationToken).ConfigureAwait(false);
        foreach (Descriptor layer in layers)
            if (!store.Content.Exists(layer.ParsedDigest))
                throw new ImagesException(ImagesErrorKind.NotFound, $"layer {layer.Digest} is not in the content store");
        return store.Read(await WriteConfigAndManifestAsync(store, config, [.. layers], docker, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Writes <paramref name="config"/>, then the manifest naming it and <paramref name="layers"/> (Docker's media types when <paramref name="docker"/>, else OCI's); the manifest's descriptor.</summary>
    private static async Task<Descriptor> WriteConfigAndManifestAsync(ImageStore store, ImageConfig config, List<Descriptor> layers, bool docker, CancellationToken cancellationToken)
    {
        byte[] configBytes = ManifestParser.Serialize(config);
        Digest configDigest = Digest.Compute(configBytes);
        await store.Content.WriteAsync(new MemoryStream(configBytes), configDigest, configBytes.Length, cancellationToken).ConfigureAwait(false);
        var manifest = new ImageManifest
        {
            MediaType = docker ? MediaTypes.DockerManifest : MediaTypes.OciManifest,
            Config = Descriptor.For(docker ? MediaTypes.DockerConfig : MediaTypes.OciConfig, configDigest, configBytes.Length),
            Layers = layers,
        };
        byte[] manifestBytes = ManifestParser.Serialize(manifest);
        Digest manifestDigest = Digest.Compute(manifestBytes);
        await store.Content.WriteAsync(new MemoryStream(manifestBytes), manifestDigest, manifestBytes.Length, cancellationToken).ConfigureAwait(false);
        return Descriptor.For(manifest.MediaType, manifestDigest, manifestBytes.Length);
    }

    private static (Digest, long) Compressed(string tarPath, string blobPath, bool compress)
    {
        using var output = new FileStream(blobPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        using var hashing = new HashingStream(output, leaveOpen: true);
        using (var input = File.OpenRead(tarPath))
        {
            if (compress)
            {
                using var gzip = new GZipStream(hashing, CompressionLevel.Fastest, leaveOpen: true);
                input.CopyTo(gzip);
            }
            else
            {
                input.CopyTo(hashing);
            }
        }
        hashing.Flush();
        return (hashing.GetDigest(), hashing.BytesHashed);
    }

    /// <summary>
    /// dockerd's commit merge(userConf, imageConf): unset fields of <paramref name="changes"/> come
    /// from <paramref name="config"/>; Env keeps the change's entries first and adds the others;
    /// Labels, ExposedPorts and Volumes are unions (the change wins); Cmd comes from the config only
    /// when the change sets neither Entrypoint nor Cmd, Entrypoint only when the change leaves it unset.
    /// </summary>
    public static ContainerConfig? MergeChanges(ContainerConfig? changes, ContainerConfig? config)
    {
        if (changes is null) return config;
        if (config is null) return changes;
        IReadOnlyList<string>? env = changes.Env;
        if (env is not { Count: > 0 })
        {
            env = config.Env;
        }
        else
        {
            var keys = env.Select(EnvKey).ToHashSet(StringComparer.Ordinal);
            env = [.. env, .. (config.Env ?? []).Where(e => !keys.Contains(EnvKey(e)))];
        }
        IReadOnlyList<string>? cmd = changes.Cmd, entrypoint = changes.Entrypoint;
        bool argsEscaped = changes.ArgsEscaped;
        if (entrypoint is not { Count: > 0 })
        {
            if (cmd is not { Count: > 0 })
            {
                cmd = config.Cmd;
                argsEscaped = config.ArgsEscaped;
            }
            entrypoint ??= config.Entrypoint;
        }
        return changes with
        {
            User = string.IsNullOrEmpty(changes.User) ? config.User : changes.User,
            ExposedPorts = Union(config.ExposedPorts, changes.ExposedPorts),
            Env = env,
            Labels = Union(config.Labels, changes.Labels),
            Cmd = cmd,
            Entrypoint = entrypoint,
            ArgsEscaped = argsEscaped,
            WorkingDir = string.IsNullOrEmpty(changes.WorkingDir) ? config.WorkingDir : changes.WorkingDir,
            Volumes = Union(config.Volumes, changes.Volumes),
            StopSignal = string.IsNullOrEmpty(changes.StopSignal) ? config.StopSignal : changes.StopSignal,
            Shell = changes.Shell ?? config.Shell,
            OnBuild = changes.OnBuild ?? config.OnBuild,
            Healthcheck = changes.Healthcheck ?? config.Healthcheck,
        };
    }

    private static string EnvKey(string kv) => kv.IndexOf('=') is var i && i >= 0 ? kv[..i] : kv;

    private static IReadOnlyDictionary<string, T>? Union<T>(IReadOnlyDictionary<string, T>? a, IReadOnlyDictionary<string, T>? b)
    {
        if (a is null || a.Count == 0) return b;
        if (b is null || b.Count == 0) return a;
        var result = a.ToDictionary(StringComparer.Ordinal);
        foreach (var (k, v) in b) result[k] = v;
        return result;
    }
}
