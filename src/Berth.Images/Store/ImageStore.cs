using System.Collections.Concurrent;
using Berth.Images.Content;
using Berth.Images.Layers;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Registry;
using Berth.Images.Snapshots;

namespace Berth.Images.Store;

/// <summary>
/// Images: names (<c>docker.io/library/busybox:latest</c>, <c>name@sha256:…</c>) pointing at
/// manifests or indexes in a content store, unpacked into a snapshotter as a chain of committed
/// layers keyed by chain ID (containerd's scheme: a layer stack shared by images is unpacked once).
/// <code>
/// &lt;root&gt;/references.json   name → descriptor, replaced atomically
/// </code>
/// Nothing is deleted when a name goes: <see cref="CollectGarbageAsync"/> marks everything reachable
/// from the names (and the images the engine says are in use) and sweeps the rest of the blobs and
/// layer snapshots. Concurrency: name changes are serialised; pulls, loads and unpacks run in
/// parallel with each other but never with a collection, which would see their new blobs as garbage.
/// </summary>
public sealed partial class ImageStore
{
    /// <summary>Prefix of the active snapshots layers are unpacked into; leftovers of a crash are collected.</summary>
    public const string ExtractPrefix = "extract-";

    private readonly object _gate = new();
    private readonly string _referencesPath;
    private readonly IImageUsage? _usage;
    private readonly TimeProvider _time;
    private readonly GcLock _gcLock = new();
    private readonly ConcurrentDictionary<Digest, SemaphoreSlim> _unpackLocks = new();
    // Names, plus images kept without one under keys no reference can spell: "@<manifest digest>"
    // for an untagged image (docker build without -t), listed as <none>; "%<manifest digest>" for
    // a build step's intermediate image, resolvable by ID but not listed. References() lists only
    // the names.
    private Dictionary<string, ReferenceEntry> _references;
    // Image ID -> its parent's (parents.json), written under _gate.
    private Dictionary<string, string> _parents;
    private readonly string _parentsPath;
    private const char UntaggedKeyMarker = '@';
    private const char IntermediateKeyMarker = '%';

    /// <summary>Opens (creating if needed) the store under <paramref name="root"/>.</summary>
    public ImageStore(string root, IContentStore content, ISnapshotter? snapshotter = null, IImageUsage? usage = null, TimeProvider? timeProvider = null)
    {
        Root = Path.GetFullPath(root);
        Directory.CreateDirectory(Root);
        Content = content;
        Snapshotter = snapshotter;
        _usage = usage;
        _time = timeProvider ?? TimeProvider.System;
        _referencesPath = Path.Combine(Root, "references.json");
        _references = ReferenceFile.Load(_referencesPath, out int version);
        if (version < ReferenceFile.CurrentVersion) UpgradeReferences();
        _parentsPath = Path.Combine(Root, "parents.json");
        _parents = ParentFile.Load(_parentsPath);
    }

    /// <summary>
    /// A store written before digest names were recorded showed a digest for every tag: which of them
    /// were pulled or pushed, and which only built, imported, committed or loaded, was not recorded and
    /// cannot be told from the blobs (the manifests are alike). So that no image really pulled or
    /// pushed loses its RepoDigests, every tag gets its repository's digest name, as before; an image
    /// made here before the upgrade keeps showing one until that name is removed.
    /// </summary>
    private void UpgradeReferences()
    {
        var next = new Dictionary<string, ReferenceEntry>(_references, StringComparer.Ordinal);
        foreach (var (key, entry) in _references)
        {
            if (IsUntaggedKey(key) || !ImageReference.TryParse(key, out ImageReference? name) || name!.Tag is null) continue;
            next.TryAdd(Key(name.WithDigest(entry.Target.ParsedDigest)), entry);
        }
        ReferenceFile.Save(_referencesPath, next);
        _references = next;
    }

    public string Root { get; }
    public IContentStore Content { get; }
    public ISnapshotter? Snapshotter { get; }

    // ---- names --------------------------------------------------------------------------------

    /// <summary>Points <paramref name="name"/> at <paramref name="target"/> (which must be in the content store), replacing what it named.</summary>
    public void SetReference(ImageReference name, Descriptor target) => SetReferences([name], target);

    /// <summary>
    /// Names <paramref name="target"/> as the registry knows it after a pull or a push of
    /// <paramref name="name"/>: the tag, and (dockerd's digest reference, what RepoDigests lists) the
    /// repository with the digest of <paramref name="target"/>; the two are saved together.
    /// </summary>
    public void SetRegistryReference(ImageReference name, Descriptor target)
        => SetReferences(name.Tag is null ? [name] : [name, name.WithDigest(target.ParsedDigest)], target);

    private void SetReferences(IReadOnlyList<ImageReference> names, Descriptor target)
    {
        if (!Content.Exists(target.ParsedDigest))
            throw new ImagesException(ImagesErrorKind.NotFound, $"cannot name {names[0]}: {target.Digest} is not in the content store");
        if (!MediaTypes.IsIndex(target.MediaType) && !MediaTypes.IsManifest(target.MediaType))
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"cannot name {names[0]}: `{target.MediaType}` is not a manifest or index");
        lock (_gate)
        {
            var next = new Dictionary<string, ReferenceEntry>(_references, StringComparer.Ordinal);
            foreach (ImageReference name in names) next[Key(name)] = new ReferenceEntry { Target = target, Created = _time.GetUtcNow() };
            next.Remove(UntaggedKeyMarker + target.Digest);
            ReferenceFile.Save(_referencesPath, next);
            _references = next;
        }
    }

    /// <summary>Every name, with what it points at.</summary>
    public IReadOnlyList<ImageRecord> References()
    {
        lock (_gate) return _references.Where(e => !IsUntaggedKey(e.Key)).Select(e => new ImageRecord(e.Key, e.Value.Target, e.Value.Created)).OrderBy(r => r.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Keeps <paramref name="target"/> as an image without a name (Docker's <c>&lt;none&gt;</c>: what
    /// <c>build</c> without <c>-t</c> leaves), listed, resolvable by ID and safe from garbage
    /// collection until it is removed or pruned. Nothing changes when a name points at it already.
    /// </summary>
    public void KeepUntagged(Descriptor target)
    {
        if (!Content.Exists(target.ParsedDigest))
            throw new ImagesException(ImagesErrorKind.NotFound, $"cannot keep {target.Digest}: it is not in the content store");
        lock (_gate)
        {
            if (_references.Any(e => e.Value.Target.Digest == target.Digest && e.Key[0] != IntermediateKeyMarker)) return;
            var next = new Dictionary<string, ReferenceEntry>(_references, StringComparer.Ordinal)
            {
                [UntaggedKeyMarker + target.Digest] = new ReferenceEntry { Target = target, Created = _time.GetUtcNow() },
            };
            ReferenceFile.Save(_referencesPath, next);
            _references = next;
        }
    }

    /// <summary>
    /// Keeps a build step's image (Docker's intermediate images, shown only by <c>images -a</c>):
    /// resolvable by ID so that the next step's container can start from it, safe from garbage
    /// collection, not listed. <see cref="ForgetIntermediates"/> lets them all go (builder prune).
    /// </summary>
    public void KeepIntermediate(Descriptor target)
    {
        if (!Content.Exists(target.ParsedDigest))
            throw new ImagesException(ImagesErrorKind.NotFound, $"cannot keep {target.Digest}: it is not in the content store");
        string key = IntermediateKeyMarker + target.Digest;
        lock (_gate)
        {
            if (_references.ContainsKey(key)) return;
            var next = new Dictionary<string, ReferenceEntry>(_references, StringComparer.Ordinal)
            {
                [key] = new ReferenceEntry { Target = target, Created = _time.GetUtcNow() },
            };
            ReferenceFile.Save(_referencesPath, next);
            _references = next;
        }
    }

    /// <summary>Drops every intermediate image's hold; returns how many there were. Blobs go at the next collection.</summary>
    public int ForgetIntermediates()
    {
        lock (_gate)
        {
            var next = _references.Where(e => e.Key[0] != IntermediateKeyMarker).ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
            int removed = _references.Count - next.Count;
            if (removed == 0) return 0;
            ReferenceFile.Save(_referencesPath, next);
            _references = next;
            return removed;
        }
    }

    /// <summary>Whether a key is not a name: an untagged or an intermediate image's.</summary>
    private static bool IsUntaggedKey(string key) => key.Length > 0 && key[0] is UntaggedKeyMarker or IntermediateKeyMarker;

    /// <summary>
    /// Records <paramref name="parent"/> as the image <paramref name="image"/> was made from: a build
    /// step's or a commit's (dockerd's <c>Parent</c>, which <c>history</c> follows to name each step's
    /// image). The entry goes when the image is deleted (<see cref="Remove"/>) or its config is
    /// collected (<see cref="CollectGarbageAsync"/>).
    /// </summary>
    public void SetParent(Digest image, Digest parent)
    {
        lock (_gate)
        {
            if (_parents.TryGetValue(image.Value, out string? known) && known == parent.Value) return;
            var next = new Dictionary<string, string>(_parents, StringComparer.Ordinal) { [image.Value] = parent.Value };
            ParentFile.Save(_parentsPath, next);
            _parents = next;
        }
    }

    /// <summary>Drops the parent entries of <paramref name="images"/> (deleted ones); called under _gate.</summary>
    private void ForgetParentsLocked(IEnumerable<Digest> images)
    {
        var next = new Dictionary<string, string>(_parents, StringComparer.Ordinal);
        bool changed = false;
        foreach (Digest image in images) changed |= next.Remove(image.Value);
        if (!changed) return;
        ParentFile.Save(_parentsPath, next);
        _parents = next;
    }

    /// <summary>The image <paramref name="image"/> was made from, when a build recorded one.</summary>
    public Digest? ParentOf(Digest image)
    {
        lock (_gate) return _parents.TryGetValue(image.Value, out string? parent) ? Digest.Parse(parent) : null;
    }

    /// <summary>Gives the image <paramref name="source"/> (a name or an ID) the name <paramref name="target"/>.</summary>
    public void Tag(string source, string target)
    {
        ImageRecord record = ResolveRecord(source);
        ImageReference name = ImageReference.Parse(target);
        if (name.Digest is { } d && d != record.Target.ParsedDigest)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"cannot tag {source} as {target}: the digest does not match the image's {record.Target.Digest}");
        SetReference(name, record.Target);
    }

    /// <summary>
    /// Docker's <c>rmi</c>. A name is untagged; an ID removes all its names. Refused (Conflict) when
    /// the image would lose its last name while a container uses it, or when an ID names an image
    /// with names in several repositories, unless <paramref name="force"/>; by ID, never while a
    /// running container uses it. Forced, the last name of a running container's image goes and the
    /// image stays without a name. Blobs and layers go at the next <see cref="CollectGarbageAsync"/>.
    /// As dockerd's: a build's hold on its step image does not keep an image that lost its last name,
    /// an image another one here was built on (its child) does (by name it is untagged only, by ID it
    /// is refused); with <paramref name="pruneParents"/>, the parents that only the build held and
    /// nothing else was built on go with it, each said as deleted.
    /// </summary>
    public IReadOnlyList<ImageRemoval> Remove(string nameOrId, bool force = false, bool pruneParents = false)
    {
        lock (_gate)
        {
            var removals = new List<ImageRemoval>();
            List<string> names;
            Digest id;
            string? byName = TryKey(nameOrId) is { } k && _references.ContainsKey(k) ? k : null;
            if (byName is not null)
            {
                id = ImageIdOf(_references[byName].Target);
                names = [byName, .. DigestNamesLeftWithoutTag(byName, id)];
            }
            else
            {
                id = ResolveId(nameOrId);
                names = _references.Where(e => TryImageIdOf(e.Value.Target) == id).Select(e => e.Key).OrderBy(k => k, StringComparer.Ordinal).ToList();
                if (names.Where(n => !IsUntaggedKey(n)).Select(n => ImageReference.ParseNormalized(n).Repository).Distinct().Count() > 1 && !force)
                    throw Conflict(id, "must be forced", "image is referenced in multiple repositories");
            }

            // dockerd's conflicts (daemon/images/image_delete.go): a container's image keeps its last
            // name unless forced; forced, a running container's image loses the name but stays, as
            // <none> (by ID it cannot be removed at all); a stopped container's goes.
            bool lastNames = _references.Where(e => e.Key[0] != IntermediateKeyMarker && TryImageIdOf(e.Value.Target) == id).All(e => names.Contains(e.Key));
            HashSet<Digest> held = HeldImages(_references);
            if (byName is null && HasChildren(id, held))
                throw Conflict(id, "cannot be forced", "image has dependent child images");
            IReadOnlyList<ImageUser> users = lastNames ? _usage?.UsersOf(id) ?? [] : [];
            ImageUser? running = users.FirstOrDefault(u => u.Running);
            bool keepDangling = false;
            if (byName is not null)
            {
                if (users.Count > 0 && !force)
                    throw new ImagesException(ImagesErrorKind.Conflict,
                        $"conflict: unable to remove repository reference \"{nameOrId}\" (must force) - container {Short(users[0].ContainerId)} is using its referenced image {Short(id)}");
                keepDangling = running is not null;
            }
            else if (running is not null)
            {
                throw Conflict(id, "cannot be forced", $"image is being used by running container {Short(running.ContainerId)}");
            }
            else if (users.Count > 0 && !force)
            {
                throw Conflict(id, "must be forced", $"image is being used by stopped container {Short(users[0].ContainerId)}");
            }

            var next = new Dictionary<string, ReferenceEntry>(_references, StringComparer.Ordinal);
            Descriptor? target = null;
            foreach (string name in names)
            {
                target ??= next[name].Target;
                next.Remove(name);
                if (!IsUntaggedKey(name)) removals.Add(new ImageRemoval(ImageReference.ParseNormalized(name).FamiliarName, null));
            }
            if (keepDangling && target is not null)
                next[UntaggedKeyMarker + target.Digest] = new ReferenceEntry { Target = target, Created = _time.GetUtcNow() };
            bool deleted = lastNames && !keepDangling && !HasChildren(id, held);
            if (deleted)
            {
                foreach (string key in next.Where(e => e.Key[0] == IntermediateKeyMarker && TryImageIdOf(e.Value.Target) == id).Select(e => e.Key).ToList()) next.Remove(key);
                removals.Add(new ImageRemoval(null, id));
                held.Remove(id);
                if (pruneParents) PruneParents(id, next, held, removals);
            }
            ReferenceFile.Save(_referencesPath, next);
            _references = next;
            ForgetParentsLocked(removals.Where(r => r.Deleted is not null).Select(r => r.Deleted!.Value));
            return removals;
        }
    }

    /// <summary>
    /// dockerd's untag: when the tag <paramref name="key"/> was the last one of its repository on the
    /// image, that repository's digest names of the image (what was pulled from or pushed to it) go
    /// with it, each said as untagged. Removing a digest name takes nothing else.
    /// </summary>
    private List<string> DigestNamesLeftWithoutTag(string key, Digest id)
    {
        ImageReference removed = ImageReference.ParseNormalized(key);
        if (removed.Digest is not null) return [];
        var sameRepository = _references.Keys
            .Where(k => k != key && !IsUntaggedKey(k))
            .Select(k => (Key: k, Name: ImageReference.ParseNormalized(k)))
            .Where(x => x.Name.Repository == removed.Repository && TryImageIdOf(_references[x.Key].Target) == id)
            .ToList();
        if (sameRepository.Any(x => x.Name.Digest is null)) return [];
        return sameRepository.Select(x => x.Key).OrderBy(k => k, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// dockerd's rmi without --no-prune: up the parent chain of <paramref name="id"/>, each parent that
    /// only a build holds (no name, not kept as untagged), that no other image here was built on and that
    /// no container uses goes too, until one does not.
    /// </summary>
    private void PruneParents(Digest id, Dictionary<string, ReferenceEntry> next, HashSet<Digest> held, List<ImageRemoval> removals)
    {
        for (Digest? parent = ParentOfLocked(id); parent is { } p; parent = ParentOfLocked(p))
        {
            var keys = next.Where(e => TryImageIdOf(e.Value.Target) == p).Select(e => e.Key).ToList();
            if (keys.Count == 0 || keys.Any(k => k[0] != IntermediateKeyMarker) || HasChildren(p, held)) return;
            if (_usage?.UsersOf(p) is { Count: > 0 }) return;
            foreach (string key in keys) next.Remove(key);
            held.Remove(p);
            removals.Add(new ImageRemoval(null, p));
        }
    }

    private Digest? ParentOfLocked(Digest image) => _parents.TryGetValue(image.Value, out string? parent) ? Digest.Parse(parent) : null;

    /// <summary>The images that some reference (a name, an untagged or a build's hold) keeps.</summary>
    private HashSet<Digest> HeldImages(Dictionary<string, ReferenceEntry> references)
    {
        var held = new HashSet<Digest>();
        foreach (ReferenceEntry entry in references.Values)
            if (TryImageIdOf(entry.Target) is { } image) held.Add(image);
        return held;
    }

    /// <summary>Whether an image in <paramref name="held"/> was built on <paramref name="id"/>.</summary>
    private bool HasChildren(Digest id, HashSet<Digest> held)
        => _parents.Any(e => e.Value == id.Value && held.Contains(Digest.Parse(e.Key)));

    /// <summary>Whether some reference still keeps <paramref name="target"/> (a build cache entry's image may have been removed).</summary>
    public bool Holds(Descriptor target)
    {
        lock (_gate) return _references.Values.Any(e => e.Target.Digest == target.Digest);
    }

    // ---- reading images -----------------------------------------------------------------------

    /// <summary>Resolves a name, an ID (<c>sha256:…</c> or a unique hex prefix) or a manifest digest to the image for <paramref name="platform"/> (the host's by default).</summary>
    /// <exception cref="ImagesException">NotFound: "No such image".</exception>
    public Image Get(string nameOrId, Platform? platform = null) => Read(ResolveRecord(nameOrId).Target, platform);

    private Image? TryGetById(Digest id)
    {
        try
        {
            return Get(id.Value);
        }
        catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
        {
            return null;
        }
    }

    /// <summary>Reads the image a descriptor points at, choosing from an index the locally present manifest for the platform.</summary>
    public Image Read(Descriptor target, Platform? platform = null)
    {
        ManifestDocument doc = ReadManifest(target);
        Descriptor manifestDescriptor = target;
        if (doc.Index is { } index)
        {
            var present = new ImageIndex { Manifests = index.Manifests.Where(m => Content.Exists(m.ParsedDigest)).ToList() };
            manifestDescriptor = PlatformMatcher.Select(present, platform, $"image {target.Digest}");
            doc = ReadManifest(manifestDescriptor);
            if (doc.Manifest is null) throw new ImagesException(ImagesErrorKind.InvalidArgument, $"index entry {manifestDescriptor.Digest} is itself an index");
        }
        ImageManifest manifest = doc.Manifest!;
        byte[] configBytes = ReadBlob(manifest.Config.ParsedDigest, ManifestParser.MaxConfigSize);
        ImageConfig config = ManifestParser.ParseConfig(configBytes, manifest.Config.ParsedDigest);
        if (config.RootFS.DiffIds.Count != manifest.Layers.Count)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"image {target.Digest}: {manifest.Layers.Count} layers but {config.RootFS.DiffIds.Count} diff_ids");
        return new Image { Id = manifest.Config.ParsedDigest, Target = target, ManifestDescriptor = manifestDescriptor, Manifest = manifest, Config = config };
    }

    /// <summary>One entry per image (grouped by ID), with its names.</summary>
    /// <param name="includeIntermediates">Also the images only a build holds (its steps'), without names, as dockerd's <c>images -a</c> lists its intermediate images.</param>
    public IReadOnlyList<ImageSummary> List(bool includeIntermediates = false)
    {
        var result = new List<ImageSummary>();
        List<ImageRecord> all;
        lock (_gate) all = _references.Select(e => new ImageRecord(e.Key, e.Value.Target, e.Value.Created)).ToList();
        foreach (var group in all.Select(r => (Record: r, Image: TryRead(r.Target))).Where(x => x.Image is not null).GroupBy(x => x.Image!.Id))
        {
            if (!includeIntermediates && group.All(g => g.Record.Name[0] == IntermediateKeyMarker)) continue;
            Image image = group.First().Image!;
            result.Add(new ImageSummary(image.Id, RepoTags(group.Select(g => g.Record)), RepoDigests(group.Select(g => g.Record)), image.Config.Created, SizeOf(image)));
        }
        return result.OrderByDescending(s => s.Created).ToList();
    }

    public ImageDetails Inspect(string nameOrId, Platform? platform = null)
    {
        Image image = Get(nameOrId, platform);
        var records = References().Where(r => TryImageIdOf(r.Target) == image.Id).ToList();
        return new ImageDetails(image.Id, RepoTags(records), RepoDigests(records), image.Config.Created, image.Config.Author,
            image.Config.Comment, image.Config.Platform, SizeOf(image), image.Config.Config, image.DiffIds, image.Target, image.ManifestDescriptor, image.Manifest.Layers,
            image.Config.Container, image.Config.ContainerConfig, ParentOf(image.Id));
    }

    /// <summary>Docker's <c>history</c>: newest first; sizes are the layers' unpacked sizes.</summary>
    public IReadOnlyList<ImageHistoryItem> History(string nameOrId, Platform? platform = null)
    {
        Image image = Get(nameOrId, platform);
        var items = new List<ImageHistoryItem>();
        IReadOnlyList<HistoryEntry> history = image.Config.History is { Count: > 0 } h
            ? h
            : image.Manifest.Layers.Select(_ => new HistoryEntry { Created = image.Config.Created }).ToList();
        int layer = 0;
        foreach (HistoryEntry entry in history)
        {
            long size = 0;
            if (!entry.EmptyLayer && layer < image.Manifest.Layers.Count) size = LayerSizeOf(image, layer++);
            items.Add(new ImageHistoryItem("<missing>", entry.Created, entry.CreatedBy ?? "", size, entry.Comment ?? "", entry.EmptyLayer));
        }
        items.Reverse();
        // As dockerd: the newest entry is the image's, and each one below it the next image up its
        // parent chain while there is one here (a build's steps), "<missing>" from there on.
        Image? step = image;
        for (int i = 0; i < items.Count && step is not null; i++)
        {
            items[i] = items[i] with { Id = step.Id.Value };
            step = ParentOf(step.Id) is { } parent ? TryGetById(parent) : null;
        }
        return items;
    }

    // ---- registry -----------------------------------------------------------------------------

    /// <summary>Pulls <paramref name="reference"/> through <paramref name="client"/> and names it; returns the image for the platform.</summary>
    public async Task<Image> PullAsync(RegistryClient client, string reference, Platform? platform = null,
        IProgress<PullProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ImageReference name = ImageReference.Parse(reference);
        using (await _gcLock.EnterSharedAsync(cancellationToken).ConfigureAwait(false))
        {
            PullResult result = await client.PullAsync(name, Content, platform, progress, cancellationToken).ConfigureAwait(false);
            SetRegistryReference(name, result.Root);
            return Read(result.Root, platform);
        }
    }

    /// <summary>
    /// Pulls <paramref name="reference"/> as <see cref="PullAsync"/> does and unpacks it as
    /// <see cref="UnpackAsync(string, Platform?, LayerApplyOptions?, CancellationToken, IProgress{UnpackProgress}?)"/>
    /// does, overlapping the two where it can: a layer that has to be downloaded and whose parent
    /// is already unpacked (the bottom layer always) is unpacked while it downloads, and committed
    /// once the download is verified (see <see cref="StreamedLayerUnpack"/>). The other layers are
    /// unpacked after the download, from the store.
    /// </summary>
    public async Task<Image> PullAndUnpackAsync(RegistryClient client, string reference, Platform? platform = null,
        IProgress<PullProgress>? progress = null, IProgress<UnpackProgress>? unpacking = null, LayerApplyOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ImageReference name = ImageReference.Parse(reference);
        Image image;
        using (await _gcLock.EnterSharedAsync(cancellationToken).ConfigureAwait(false))
        {
            var streamed = new List<(StreamedLayerUnpack Unpack, SemaphoreSlim Gate)>();
            (IReadOnlyList<Digest> DiffIds, IReadOnlyList<Digest> Chain)? ids = null;
            PullResult result;
            try
            {
                result = await client.PullAsync(name, Content, platform, progress, cancellationToken, (index, layer, config) =>
                {
                    // The config is the same for every layer of the pull: its diffIDs and chain IDs once.
                    if (ids is null)
                    {
                        List<Digest> diffIds = config.RootFS.DiffIds.Select(Digest.Parse).ToList();
                        ids = (diffIds, ChainId.Compute(diffIds));
                    }
                    return StartStreamedUnpack(index, layer, ids.Value.DiffIds, ids.Value.Chain, options, streamed);
                }).ConfigureAwait(false);
            }
            finally
            {
                // Every sink is finished by now; commit what completed, remove the rest. One that
                // fails to do either leaves its layer to the unpack from the store below (which
                // reports what fails) and at worst an extract- snapshot, collected as a crash's are.
                foreach (var (unpack, gate) in streamed)
                {
                    try
                    {
                        if (await unpack.CompleteAsync(unpacking).ConfigureAwait(false) is { } unpacked)
                            RecordLayerSize(unpacked.DiffId, unpacked.UnpackedSize);
                    }
                    catch (Exception e) when (e is ImagesException or IOException or UnauthorizedAccessException)
                    {
                    }
                    finally
                    {
                        gate.Release();
                    }
                }
            }
            SetRegistryReference(name, result.Root);
            image = Read(result.Root, platform);
        }
        await UnpackAsync(image, options, cancellationToken, unpacking).ConfigureAwait(false);
        return image;
    }

    private StreamedLayerUnpack? StartStreamedUnpack(int index, Descriptor layer, IReadOnlyList<Digest> diffIds, IReadOnlyList<Digest> chain,
        LayerApplyOptions? options, List<(StreamedLayerUnpack, SemaphoreSlim)> started)
    {
        if (Snapshotter is not { } snapshotter || Content.Exists(layer.ParsedDigest) || MediaTypes.IsNondistributable(layer.MediaType)) return null;
        string? parent = index == 0 ? null : chain[index - 1].Value;
        if (parent is not null && !SnapshotExists(snapshotter, parent)) return null;
        // The chain's gate, as UnpackAsync takes it; held until CompleteAsync. Busy: another pull is
        // unpacking this layer stack, and UnpackAsync will wait for it afterwards.
        SemaphoreSlim gate = _unpackLocks.GetOrAdd(chain[index], _ => new SemaphoreSlim(1, 1));
        if (!gate.Wait(0)) return null;
        try
        {
            if (SnapshotExists(snapshotter, chain[index].Value))
            {
                gate.Release();
                return null;
            }
            string key = $"{ExtractPrefix}{Guid.NewGuid():N}-{diffIds[index].Hex[..12]}";
            var unpack = new StreamedLayerUnpack(snapshotter, layer, diffIds[index], chain[index].Value, key, parent, options);
            started.Add((unpack, gate));
            return unpack;
        }
        catch
        {
            gate.Release();
            throw;
        }
    }

    /// <summary>Pushes the image <paramref name="source"/> to <paramref name="target"/> (its own name when null).</summary>
    public async Task<PushResult> PushAsync(RegistryClient client, string source, string? target = null, PushOptions? options = null, CancellationToken cancellationToken = default)
    {
        ImageRecord record = ResolveRecord(source);
        if (target is null && IsUntaggedKey(record.Name))
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"image {source} has no name to push it under; tag it first");
        ImageReference to = ImageReference.Parse(target ?? record.Name);
        PushResult result = await client.PushAsync(to, Content, record.Target, options, cancellationToken).ConfigureAwait(false);
        if (to.Tag is not null) SetRegistryReference(to, record.Target);
        return result;
    }

    // ---- unpack -------------------------------------------------------------------------------

    /// <summary>
    /// Unpacks the image's layers into the snapshotter and returns the snapshot name of the top
    /// layer (its chain ID), or null for an image without layers. Each layer is a committed
    /// snapshot named by its chain ID whose parent is the one below: a layer already unpacked (by
    /// this image or another) is not unpacked again. Every layer's diffID is checked against the
    /// config; a mismatch discards the layer and fails.
    /// </summary>
    /// <param name="progress">Per layer actually unpacked: bytes of its blob read, then done.</param>
    public Task<string?> UnpackAsync(string nameOrId, Platform? platform = null, LayerApplyOptions? options = null, CancellationToken cancellationToken = default,
        IProgress<UnpackProgress>? progress = null)
        => UnpackAsync(Get(nameOrId, platform), options, cancellationToken, progress);

    /// <summary>Unpacks an image already read (one without a name, such as a build step's).</summary>
    public async Task<string?> UnpackAsync(Image image, LayerApplyOptions? options = null, CancellationToken cancellationToken = default,
        IProgress<UnpackProgress>? progress = null)
    {
        using (await _gcLock.EnterSharedAsync(cancellationToken).ConfigureAwait(false))
            return await UnpackHeldAsync(image, options, cancellationToken, progress).ConfigureAwait(false);
    }

    /// <summary>
    /// <see cref="UnpackAsync(Image, LayerApplyOptions?, CancellationToken, IProgress{UnpackProgress}?)"/> for a caller that
    /// already holds off garbage collection (<see cref="HoldGarbageCollectionAsync"/>): the hold is not taken twice, as a
    /// collection waiting between the two would wait for the first forever.
    /// </summary>
    internal async Task<string?> UnpackHeldAsync(Image image, LayerApplyOptions? options = null, CancellationToken cancellationToken = default,
        IProgress<UnpackProgress>? progress = null)
    {
        ISnapshotter snapshotter = Snapshotter ?? throw new ImagesException(ImagesErrorKind.InvalidArgument, "this image store has no snapshotter");
        IReadOnlyList<Digest> diffIds = image.DiffIds, chain = image.ChainIds;
        string? parent = null;
        for (int i = 0; i < chain.Count; i++)
        {
            string name = chain[i].Value;
            SemaphoreSlim gate = _unpackLocks.GetOrAdd(chain[i], _ => new SemaphoreSlim(1, 1));
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!SnapshotExists(snapshotter, name))
                    await Task.Run(() => UnpackLayer(snapshotter, image, i, diffIds[i], name, parent, options, progress, cancellationToken), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
            parent = name;
        }
        return parent;
    }

    private void UnpackLayer(ISnapshotter snapshotter, Image image, int index, Digest diffId, string name, string? parent, LayerApplyOptions? options,
        IProgress<UnpackProgress>? progress, CancellationToken cancellationToken)
    {
        Descriptor layer = image.Manifest.Layers[index];
        Digest blobDigest = layer.ParsedDigest;
        string key = $"{ExtractPrefix}{Guid.NewGuid():N}-{diffId.Hex[..12]}";
        IReadOnlyList<Mount> mounts = snapshotter.Prepare(key, parent, new Dictionary<string, string> { ["berth.io/unpack"] = name });
        bool committed = false;
        try
        {
            string dir = MountHelper.WritableDirectory(mounts);
            LayerApplyResult result;
            Stream blob = Content.OpenRead(blobDigest);
            if (progress is not null)
                blob = new ProgressStream(blob, n => progress.Report(new UnpackProgress(blobDigest, Math.Min(n, layer.Size), layer.Size, Done: false)));
            using (blob)
                result = LayerApplier.Apply(blob, dir, options, cancellationToken);
            // At least one full byte count per layer, however small (docker shows a full bar at the end).
            progress?.Report(new UnpackProgress(blobDigest, layer.Size, layer.Size, Done: false));
            if (result.DiffId != diffId)
                throw new ImagesException(ImagesErrorKind.DataLoss,
                    $"invalid diffID for layer {index}: expected \"{diffId}\", got \"{result.DiffId}\" (layer {layer.Digest} of image {image.Id} does not match the config's diff_ids[{index}]; refused)");
            snapshotter.Commit(name, key, new Dictionary<string, string> { ["berth.io/diff-id"] = diffId.Value, ["berth.io/layer"] = layer.Digest });
            committed = true;
            RecordLayerSize(diffId, result.UnpackedSize);
            progress?.Report(new UnpackProgress(blobDigest, layer.Size, layer.Size, Done: true));
        }
        finally
        {
            if (!committed)
            {
                try
                {
                    snapshotter.Remove(key);
                }
                catch (ImagesException)
                {
                }
            }
        }
    }

    private static bool SnapshotExists(ISnapshotter snapshotter, string name)
    {
        try
        {
            return snapshotter.Stat(name).Kind == SnapshotKind.Committed;
        }
        catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
        {
            return false;
        }
    }

    // ---- garbage collection -------------------------------------------------------------------

    /// <summary>
    /// Mark and sweep: marks every blob reachable from the names (indexes, the manifests of them
    /// that are present, configs, layers), the configs of images in use, and the chain-ID snapshots
    /// of every marked image; deletes the other blobs, the other chain-ID layer snapshots (leaves
    /// first; one with a child, such as a container's layer, stays with its parents) and leftover
    /// unpack snapshots. Waits for running pulls and unpacks, and holds new ones off meanwhile.
    /// </summary>
    public async Task<GarbageCollectionResult> CollectGarbageAsync(CancellationToken cancellationToken = default)
    {
        using (await _gcLock.EnterExclusiveAsync(cancellationToken).ConfigureAwait(false))
        {
            var blobs = new HashSet<Digest>();
            var snapshots = new HashSet<string>(StringComparer.Ordinal);
            var diffIds = new HashSet<Digest>();
            List<Descriptor> roots;
            lock (_gate) roots = _references.Values.Select(e => e.Target).ToList();
            foreach (Descriptor root in roots) Mark(root, blobs, snapshots, diffIds);
            foreach (Digest id in _usage?.ImagesInUse() ?? []) blobs.Add(id);

            var removedBlobs = new List<Digest>();
            long reclaimed = 0;
            foreach (ContentInfo info in Content.List().ToList())
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (blobs.Contains(info.Digest) || !Content.Delete(info.Digest)) continue;
                removedBlobs.Add(info.Digest);
                reclaimed += info.Size;
            }
            ForgetLayerSizesExcept(diffIds);
            lock (_gate) ForgetParentsLocked(removedBlobs);

            var removedSnapshots = new List<string>();
            if (Snapshotter is { } sn)
            {
                bool progress = true;
                while (progress)
                {
                    progress = false;
                    IReadOnlyList<SnapshotInfo> all = sn.Walk();
                    var parents = all.Where(s => s.Parent is not null).Select(s => s.Parent!).ToHashSet(StringComparer.Ordinal);
                    foreach (SnapshotInfo s in all)
                    {
                        bool layer = s.Kind == SnapshotKind.Committed && Digest.TryParse(s.Name, out _);
                        bool leftover = s.Kind == SnapshotKind.Active && s.Name.StartsWith(ExtractPrefix, StringComparison.Ordinal);
                        if (!(layer || leftover) || snapshots.Contains(s.Name) || parents.Contains(s.Name)) continue;
                        try
                        {
                            sn.Remove(s.Name);
                            removedSnapshots.Add(s.Name);
                            progress = true;
                        }
                        catch (ImagesException e) when (e.Kind is ImagesErrorKind.Conflict or ImagesErrorKind.NotFound)
                        {
                        }
                    }
                }
            }
            return new GarbageCollectionResult(removedBlobs, removedSnapshots, reclaimed);
        }
    }

    private void Mark(Descriptor target, HashSet<Digest> blobs, HashSet<string> snapshots, HashSet<Digest> diffIds)
    {
        Digest digest = target.ParsedDigest;
        if (!blobs.Add(digest) || !Content.Exists(digest)) return;
        ManifestDocument doc;
        try
        {
            doc = ReadManifest(target);
        }
        catch (ImagesException)
        {
            return; // a damaged manifest keeps only itself
        }
        if (doc.Index is { } index)
        {
            foreach (Descriptor child in index.Manifests) Mark(child, blobs, snapshots, diffIds);
            return;
        }
        ImageManifest m = doc.Manifest!;
        blobs.Add(m.Config.ParsedDigest);
        foreach (Descriptor layer in m.Layers) blobs.Add(layer.ParsedDigest);
        try
        {
            ImageConfig config = ManifestParser.ParseConfig(ReadBlob(m.Config.ParsedDigest, ManifestParser.MaxConfigSize), m.Config.ParsedDigest);
            List<Digest> layers = config.RootFS.DiffIds.Select(Digest.Parse).ToList();
            diffIds.UnionWith(layers);
            foreach (Digest c in ChainId.Compute(layers)) snapshots.Add(c.Value);
        }
        catch (ImagesException)
        {
        }
    }

    // ---- helpers ------------------------------------------------------------------------------

    /// <summary>Holds off garbage collection while new, not yet named content is written (used by archives).</summary>
    public Task<IDisposable> HoldGarbageCollectionAsync(CancellationToken cancellationToken = default) => _gcLock.EnterSharedAsync(cancellationToken);

    internal ManifestDocument ReadManifest(Descriptor descriptor)
    {
        ManifestParser.CheckManifestSize(descriptor.Size, descriptor.Digest);
        return ManifestParser.Parse(ReadBlob(descriptor.ParsedDigest, ManifestParser.MaxManifestSize), descriptor.MediaType, descriptor.ParsedDigest);
    }

    internal byte[] ReadBlob(Digest digest, int limit)
    {
        // Synchronous on purpose: blocking on an async read here starved berthd's thread pool when
        // a burst of creates each read manifests and configs (6-7 s per create with 12 at once).
        using Stream s = Content.OpenRead(digest);
        var buffer = new MemoryStream();
        byte[] chunk = new byte[64 * 1024];
        int n;
        while ((n = s.Read(chunk)) > 0)
        {
            if (buffer.Length + n > limit)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"blob {digest}: larger than the limit of {limit} bytes; refused");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    private Image? TryRead(Descriptor target)
    {
        try
        {
            return Read(target);
        }
        catch (ImagesException)
        {
            return null;
        }
    }

    private Digest? TryImageIdOf(Descriptor target) => TryRead(target)?.Id;

    private Digest ImageIdOf(Descriptor target) => Read(target).Id;

    /// <summary>The record for a name, an image ID (full or a unique prefix of its hex) or a target digest.</summary>
    public ImageRecord ResolveRecord(string nameOrId)
    {
        lock (_gate)
        {
            if (TryKey(nameOrId) is { } key)
            {
                if (_references.TryGetValue(key, out ReferenceEntry? entry)) return new ImageRecord(key, entry.Target, entry.Created);
                // name@digest that was pulled by tag: the name's record with that target.
                ImageReference r = ImageReference.ParseNormalized(nameOrId);
                if (r.Digest is { } d && _references.FirstOrDefault(e => e.Value.Target.Digest == d.Value && !IsUntaggedKey(e.Key) && ImageReference.ParseNormalized(e.Key).Repository == r.Repository) is { Key: not null } hit)
                    return new ImageRecord(hit.Key, hit.Value.Target, hit.Value.Created);
            }
            Digest id = ResolveId(nameOrId);
            var match = _references.Where(e => e.Value.Target.Digest == id.Value || TryImageIdOf(e.Value.Target) == id).OrderBy(e => e.Key, StringComparer.Ordinal).First();
            return new ImageRecord(match.Key, match.Value.Target, match.Value.Created);
        }
    }

    private Digest ResolveId(string text)
    {
        string hex = text.StartsWith("sha256:", StringComparison.Ordinal) ? text[7..] : text;
        if (hex.Length is > 0 and <= 64 && hex.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')))
        {
            var candidates = new HashSet<Digest>();
            foreach (ReferenceEntry e in _references.Values)
            {
                if (e.Target.ParsedDigest.Hex.StartsWith(hex, StringComparison.Ordinal)) candidates.Add(TryImageIdOf(e.Target) ?? e.Target.ParsedDigest);
                if (TryImageIdOf(e.Target) is { } id && id.Hex.StartsWith(hex, StringComparison.Ordinal)) candidates.Add(id);
            }
            if (candidates.Count == 1) return candidates.First();
            if (candidates.Count > 1) throw new ImagesException(ImagesErrorKind.InvalidArgument, $"ambiguous image ID prefix `{text}`: {candidates.Count} images match");
        }
        // Neither an ID nor a well-formed name (BadName, name@sha256:abc): dockerd's 400 "invalid reference format", not a 404.
        if (!hex.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'))) ImageReference.ParseNormalized(text);
        throw new ImagesException(ImagesErrorKind.NotFound, $"No such image: {text}");
    }

    private static string Key(ImageReference name) => (name.Digest is not null ? name.WithDigest(name.Digest.Value) : name).ToString();

    private static string? TryKey(string text)
    {
        try
        {
            ImageReference r = ImageReference.ParseNormalized(text);
            if (r.Tag is null && r.Digest is null)
            {
                // A bare hex prefix is an ID, not a name (Docker resolves IDs first for such strings).
                if (text.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')) && text.Length >= 12) return null;
                r = r.WithDefaultTag();
            }
            return Key(r);
        }
        catch (ImagesException)
        {
            return null;
        }
    }

    private static List<string> RepoTags(IEnumerable<ImageRecord> records)
        => records.Where(r => !IsUntaggedKey(r.Name)).Select(r => ImageReference.ParseNormalized(r.Name)).Where(r => r.Tag is not null).Select(r => r.FamiliarName).Distinct().OrderBy(x => x, StringComparer.Ordinal).ToList();

    /// <summary>
    /// The digest names (dockerd's RepoDigests): a repository the image was pulled from or pushed to,
    /// with the digest of what it got or was sent; a tag gives none, as an image only built,
    /// imported, committed or loaded has none.
    /// </summary>
    private static List<string> RepoDigests(IEnumerable<ImageRecord> records)
        => records.Where(r => !IsUntaggedKey(r.Name)).Select(r => ImageReference.ParseNormalized(r.Name)).Where(r => r.Digest is not null).Select(r => r.FamiliarName).Distinct().OrderBy(x => x, StringComparer.Ordinal).ToList();

    private static string Short(Digest id) => id.Hex[..12];
    private static string Short(string containerId) => containerId.Length > 12 ? containerId[..12] : containerId;

    /// <summary>dockerd's imageDeleteConflict: "conflict: unable to delete ID (must be forced|cannot be forced) - why".</summary>
    private static ImagesException Conflict(Digest id, string forced, string why)
        => new(ImagesErrorKind.Conflict, $"conflict: unable to delete {Short(id)} ({forced}) - {why}");
}

/// <summary>
/// Readers (pulls, loads, unpacks) run together; a writer (garbage collection) waits for them to
/// finish and keeps new ones out until it is done.
/// </summary>
internal sealed class GcLock
{
    private readonly SemaphoreSlim _turnstile = new(1, 1);
    private int _readers;

    public async Task<IDisposable> EnterSharedAsync(CancellationToken cancellationToken)
    {
        await _turnstile.WaitAsync(cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _readers);
        _turnstile.Release();
        return new Releaser(() => Interlocked.Decrement(ref _readers));
    }

    public async Task<IDisposable> EnterExclusiveAsync(CancellationToken cancellationToken)
    {
        await _turnstile.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (Volatile.Read(ref _readers) > 0) await Task.Delay(5, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _turnstile.Release();
            throw;
        }
        return new Releaser(() => _turnstile.Release());
    }

    private sealed class Releaser(Action release) : IDisposable
    {
        private int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) release();
        }
    }
}
