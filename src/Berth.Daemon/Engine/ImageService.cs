using Berth.Daemon.Configuration;
using Berth.Images;
using Berth.Images.Archive;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Registry;
using Berth.Images.Store;
using Microsoft.Extensions.Logging;

namespace Berth.Daemon.Engine;

/// <summary>The outcome of a pull: the image, and whether anything new was fetched.</summary>
public sealed record PullOutcome(Image Image, ImageReference Reference, bool Downloaded);

/// <summary>
/// Images as the engine offers them: the image store plus registry clients built per request
/// (each with the credentials the client sent), unpacking after pull, and collection of what
/// removals leave behind. Nothing here knows HTTP.
/// </summary>
public sealed partial class ImageService(ImageStore store, DaemonOptions options, ILogger<ImageService> logger, Events.EventLog? events = null)
{
    public ImageStore Store { get; } = store;

    public Events.EventLog Events { get; } = events ?? new Events.EventLog();

    public int Count => Store.List().Count;

    public RegistryClient CreateClient(RegistryCredential? credential, string? registry)
        => new(new RegistryClientOptions
        {
            InsecureRegistries = options.InsecureRegistries,
            // dockerd uses only what the client sends (X-Registry-Auth), never a config file of its own;
            // Docker Hub's credentials go to its mirrors too, as dockerd sends them.
            Credentials = new SingleCredential(registry, credential, Mirrors.Select(m => m.Authority).ToList()),
            Mirrors = Mirrors,
            MirrorFailed = (mirror, e) => LogMirrorFailed(logger, mirror.ToString(), e.Message),
            // One limiter per daemon for every pull (push), as dockerd's transfer managers count.
            Downloads = _downloads,
            Uploads = _uploads,
            MaxDownloadAttempts = options.MaxDownloadAttempts,
            UserAgent = $"berthd/{BerthEngine.Version}",
        });

    private IReadOnlyList<Uri> Mirrors { get; } = options.RegistryMirrors.Select(m => new Uri(m)).ToList();
    private readonly TransferLimiter _downloads = new(options.MaxConcurrentDownloads);
    private readonly TransferLimiter _uploads = new(options.MaxConcurrentUploads);

    /// <summary><c>docker login</c>: the registry accepts <paramref name="credential"/> (throws <see cref="RegistryException"/> when not).</summary>
    public async Task LoginAsync(string registry, RegistryCredential credential, CancellationToken cancellationToken)
    {
        using RegistryClient client = CreateClient(credential, registry);
        await client.LoginAsync(registry, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pulls <paramref name="reference"/> and unpacks it into the snapshotter, so containers can start from it at once.</summary>
    public async Task<PullOutcome> PullAsync(string reference, Platform? platform, RegistryCredential? credential,
        IProgress<PullProgress>? progress, IProgress<UnpackProgress>? unpacking, CancellationToken cancellationToken)
    {
        ImageReference name = ImageReference.Parse(reference);
        Descriptor? before = Store.References().FirstOrDefault(r => r.Name == name.ToString())?.Target;
        bool downloaded = false;
        var tracking = new Progress(p =>
        {
            if (p.State is PullState.Downloading or PullState.Complete) downloaded = true;
            progress?.Report(p);
        });
        using RegistryClient client = CreateClient(credential, name.Domain);
        Image image = await Store.PullAndUnpackAsync(client, name.ToString(), platform, tracking, unpacking, cancellationToken: cancellationToken).ConfigureAwait(false);
        LogPulled(logger, name.ToString(), image.Id.Value);
        PublishEvent(name.FamiliarName, FamiliarRepository(name), "pull", LabelsOf(image.Id.Value));
        return new PullOutcome(image, name, downloaded || before?.Digest != image.Target.Digest);
    }

    public async Task<PushResult> PushAsync(string source, string? target, RegistryCredential? credential, IProgress<PushProgress>? progress, CancellationToken cancellationToken)
    {
        ImageReference to = ImageReference.Parse(target ?? Store.ResolveRecord(source).Name);
        using RegistryClient client = CreateClient(credential, to.Domain);
        PushResult pushed = await Store.PushAsync(client, source, to.ToString(), new PushOptions { Progress = progress }, cancellationToken).ConfigureAwait(false);
        PublishEvent(to.FamiliarName, FamiliarRepository(to), "push", LabelsOf(source));
        return pushed;
    }

    /// <summary>
    /// Docker's rmi: untag (or delete by ID), then collect what is no longer referenced unless
    /// <paramref name="noPrune"/>. As dockerd's, each deleted image is followed by the layers that went
    /// with it (<c>Deleted: &lt;chain ID&gt;</c>, top first; see <see cref="WithRemovedLayers"/>).
    /// </summary>
    public async Task<IReadOnlyList<ImageRemoval>> RemoveAsync(string nameOrId, bool force, bool noPrune, CancellationToken cancellationToken)
    {
        // The image's ID and labels before it goes (for the events); a missing name fails in Remove, with its message.
        Image? image = TryGet(nameOrId);
        IReadOnlyDictionary<string, string> labels = image is null ? new Dictionary<string, string>() : LabelsOf(image.Id.Value);
        // The layers of the image and of the parents that may go with it, read while they are still here.
        var layers = new Dictionary<Digest, IReadOnlyList<ImageLayer>>();
        for (Image? step = image; step is not null && layers.TryAdd(step.Id, LayersOf(step));)
            step = Store.ParentOf(step.Id) is { } parent ? TryGet(parent.Value) : null;
        IReadOnlyList<ImageRemoval> removals = Store.Remove(nameOrId, force, pruneParents: !noPrune);
        if (image is not null) PublishRemovals(image.Id, labels, removals);
        if (noPrune || !removals.Any(r => r.Deleted is not null)) return removals;
        GarbageCollectionResult gc = await Store.CollectGarbageAsync(cancellationToken).ConfigureAwait(false);
        return WithRemovedLayers(removals, layers, gc);
    }

    /// <summary>A layer of an image: its chain ID (the snapshot's name, what dockerd says deleted) and its blob.</summary>
    private readonly record struct ImageLayer(Digest ChainId, Digest Blob);

    private static List<ImageLayer> LayersOf(Image image)
        => [.. image.ChainIds.Select((chainId, i) => new ImageLayer(chainId, image.Manifest.Layers[i].ParsedDigest))];

    /// <summary>
    /// <paramref name="removals"/> with, after each deleted image, the layers of it that
    /// <paramref name="gc"/> removed and that no image deleted after it (its parent) had, top first: dockerd's
    /// layer store releases them with the image. A layer went when its snapshot was removed, or, for one
    /// never unpacked (a commit's, a build's last step), when its blob was and no snapshot is left.
    /// </summary>
    private List<ImageRemoval> WithRemovedLayers(IReadOnlyList<ImageRemoval> removals, Dictionary<Digest, IReadOnlyList<ImageLayer>> layers, GarbageCollectionResult gc)
    {
        var removedSnapshots = gc.RemovedSnapshots.ToHashSet(StringComparer.Ordinal);
        var removedBlobs = gc.RemovedBlobs.ToHashSet();
        bool Gone(ImageLayer layer) => removedSnapshots.Contains(layer.ChainId.Value) || (removedBlobs.Contains(layer.Blob) && !SnapshotExists(layer.ChainId));
        var result = new List<ImageRemoval>();
        for (int i = 0; i < removals.Count; i++)
        {
            result.Add(removals[i]);
            if (removals[i].Deleted is not { } id || !layers.TryGetValue(id, out IReadOnlyList<ImageLayer>? own)) continue;
            var laterImagesLayers = removals.Skip(i + 1).SelectMany(r => r.Deleted is { } d && layers.TryGetValue(d, out var l) ? l : []).Select(l => l.ChainId).ToHashSet();
            foreach (ImageLayer layer in own.Reverse())
                if (!laterImagesLayers.Contains(layer.ChainId) && Gone(layer)) result.Add(new ImageRemoval(null, layer.ChainId));
        }
        return result;
    }

    private bool SnapshotExists(Digest chainId)
    {
        if (Store.Snapshotter is not { } snapshotter) return false;
        try
        {
            snapshotter.Stat(chainId.Value);
            return true;
        }
        catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
        {
            return false;
        }
    }

    /// <summary>
    /// Removes untagged images (or, with <paramref name="danglingOnly"/> false, every image not in
    /// <paramref name="used"/>: each of its names, then the image, as dockerd's ImagesPrune) that
    /// <paramref name="filter"/> accepts, then collects; publishes the untag/delete events and
    /// dockerd's image prune event with <c>reclaimed</c>.
    /// </summary>
    public async Task<(IReadOnlyList<ImageRemoval> Removals, long Reclaimed)> PruneAsync(bool danglingOnly, CancellationToken cancellationToken,
        Func<ImageSummary, bool>? filter = null, IReadOnlyCollection<Digest>? used = null)
    {
        var removals = new List<ImageRemoval>();
        var inUse = (used ?? []).ToHashSet();
        var layers = new Dictionary<Digest, IReadOnlyList<ImageLayer>>();
        foreach (ImageSummary image in Store.List())
        {
            if (danglingOnly && image.RepoTags.Count > 0) continue;
            if (inUse.Contains(image.Id) || (filter is not null && !filter(image))) continue;
            if (TryGet(image.Id.Value) is { } read) layers[image.Id] = LayersOf(read);
            IReadOnlyDictionary<string, string> labels = LabelsOf(image.Id.Value);
            var removed = new List<ImageRemoval>();
            try
            {
                // Names one by one: removing by ID refuses an image named in several repositories.
                foreach (string tag in image.RepoTags) removed.AddRange(Store.Remove(tag, force: false));
                if (removed.All(r => r.Deleted is null)) removed.AddRange(Store.Remove(image.Id.Value, force: false));
            }
            catch (ImagesException e) when (e.Kind is ImagesErrorKind.Conflict or ImagesErrorKind.NotFound)
            {
                // In use by a container meanwhile, or gone: prune leaves it, as Docker does.
            }
            PublishRemovals(image.Id, labels, removed);
            removals.AddRange(removed);
        }
        GarbageCollectionResult gc = await Store.CollectGarbageAsync(cancellationToken).ConfigureAwait(false);
        Events.Publish("image", "prune", "", new Dictionary<string, string> { ["reclaimed"] = gc.ReclaimedBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return (WithRemovedLayers(removals, layers, gc), gc.ReclaimedBytes);
    }

    public async Task SaveAsync(IReadOnlyList<string> names, Stream output, CancellationToken cancellationToken)
    {
        await ImageArchive.SaveAsync(Store, names, output, cancellationToken);
        foreach (string name in names)
        {
            string id = Store.Get(name).Id.Value;
            PublishEvent(id, id, "save");
        }
    }

    /// <summary>
    /// Loads an archive and unpacks its images, as dockerd does, so a container starts from them at once; each
    /// image is named only once unpacked, so that one whose layers are refused leaves no image behind.
    /// </summary>
    public async Task<IReadOnlyList<string>> LoadAsync(Stream input, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> loaded = await ImageArchive.LoadAsync(Store, input, cancellationToken, unpack: true);
        foreach (string name in loaded)
        {
            string id = Store.Get(name).Id.Value;
            PublishEvent(id, id, "load");
        }
        return loaded;
    }

    /// <summary>Imports a rootfs tar as an image and unpacks it before naming it, as dockerd does: a refused tar leaves no image.</summary>
    public async Task<Image> ImportAsync(Stream rootfs, string? reference, ImportOptions options, CancellationToken cancellationToken)
    {
        Image image = await ImageArchive.ImportAsync(Store, rootfs, reference, options with { Unpack = true }, cancellationToken);
        // dockerd's ImportImage tags first (a tag event), then logs the import.
        if (reference is not null) PublishEvent(image.Id.Value, ImageReference.Parse(reference).FamiliarName, "tag");
        PublishEvent(image.Id.Value, image.Id.Value, "import");
        return image;
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "pulled {Reference} ({Id})")]
    private static partial void LogPulled(ILogger logger, string reference, string id);

    // dockerd: "Attempting next endpoint for pull after error: …"
    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "pull from mirror {Mirror} failed, attempting the next endpoint: {Error}")]
    private static partial void LogMirrorFailed(ILogger logger, string mirror, string error);

    /// <summary>Reports synchronously on the reporting thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class Progress(Action<PullProgress> report) : IProgress<PullProgress>
    {
        public void Report(PullProgress value) => report(value);
    }

    /// <summary>The credential the client sent, for the registry it was sent for.</summary>
    private sealed class SingleCredential(string? registry, RegistryCredential? credential, IReadOnlyList<string> hubMirrors) : ICredentialProvider
    {
        public RegistryCredential? Get(string host)
            => credential is not null && (registry is null || string.Equals(host, registry, StringComparison.OrdinalIgnoreCase)
                || IsHub(registry) && (IsHub(host) || hubMirrors.Contains(host, StringComparer.OrdinalIgnoreCase)))
                ? credential
                : null;

        private static bool IsHub(string host) => host is "docker.io" or "registry-1.docker.io" or "index.docker.io";
    }
}
