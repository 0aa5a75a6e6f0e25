using Berth.Images.Content;
using Berth.Images.Manifests;

namespace Berth.Images.Store;

/// <summary>
/// Tells the image store which images the engine's containers use, so that <c>Remove</c> refuses
/// to remove them (unless forced) and garbage collection keeps their configs.
/// </summary>
public interface IImageUsage
{
    /// <summary>The image IDs (config digests) that containers use now.</summary>
    IReadOnlyCollection<Digest> ImagesInUse();

    /// <summary>The containers made from <paramref name="image"/>, running (or paused) ones first: what <c>rmi</c>'s conflicts name.</summary>
    IReadOnlyList<ImageUser> UsersOf(Digest image);
}

/// <summary>A container that uses an image: its ID, and whether it runs (a paused one does).</summary>
public sealed record ImageUser(string ContainerId, bool Running);

/// <summary>A named reference in the store: a name (with a tag or a digest) and what it points at.</summary>
public sealed record ImageRecord(string Name, Descriptor Target, DateTimeOffset Created);

/// <summary>An image resolved for one platform: its manifest and config, read and verified from the content store.</summary>
public sealed record Image
{
    /// <summary>The image ID: the config's digest, as Docker shows it.</summary>
    public required Digest Id { get; init; }

    /// <summary>What the reference points at: an index or a manifest.</summary>
    public required Descriptor Target { get; init; }

    /// <summary>The manifest for the platform (equal to <see cref="Target"/> for a single-platform image).</summary>
    public required Descriptor ManifestDescriptor { get; init; }

    public required ImageManifest Manifest { get; init; }
    public required ImageConfig Config { get; init; }

    /// <summary>The layers' diffIDs, bottom first.</summary>
    public IReadOnlyList<Digest> DiffIds => Config.RootFS.DiffIds.Select(Digest.Parse).ToList();

    /// <summary>The layers' chain IDs, bottom first; the last names the snapshot of the whole image.</summary>
    public IReadOnlyList<Digest> ChainIds => ChainId.Compute(DiffIds);
}

/// <summary>One line of <c>images</c>; its <c>Size</c> is what its layers hold unpacked (<see cref="ImageStore.SizeOf"/>).</summary>
public sealed record ImageSummary(Digest Id, IReadOnlyList<string> RepoTags, IReadOnlyList<string> RepoDigests, DateTimeOffset? Created, long Size);

/// <summary>What <c>inspect</c> shows.</summary>
public sealed record ImageDetails(
    Digest Id,
    IReadOnlyList<string> RepoTags,
    IReadOnlyList<string> RepoDigests,
    DateTimeOffset? Created,
    string? Author,
    string? Comment,
    Platform Platform,
    long Size,
    ContainerConfig? Config,
    IReadOnlyList<Digest> DiffIds,
    Descriptor Target,
    Descriptor Manifest,
    IReadOnlyList<Descriptor> Layers,
    string? Container = null,
    ContainerConfig? ContainerConfig = null,
    Digest? Parent = null);

/// <summary>One line of <c>history</c>, newest first; the ID is the image's up its parent chain (a build's steps), <c>&lt;missing&gt;</c> below, as dockerd shows.</summary>
public sealed record ImageHistoryItem(string Id, DateTimeOffset? Created, string CreatedBy, long Size, string Comment, bool EmptyLayer);

/// <summary>What one <c>Remove</c> did: a name untagged, and/or an image deleted (its last name gone).</summary>
public sealed record ImageRemoval(string? Untagged, Digest? Deleted);

/// <summary>What garbage collection removed.</summary>
public sealed record GarbageCollectionResult(IReadOnlyList<Digest> RemovedBlobs, IReadOnlyList<string> RemovedSnapshots, long ReclaimedBytes);
