namespace Berth.Images.Snapshots;

/// <summary>The states of a snapshot (containerd's snapshots.Kind).</summary>
public enum SnapshotKind
{
    /// <summary>A read-only view of a committed parent, discarded after use.</summary>
    View,
    /// <summary>A writable snapshot (a container's layer, or a layer being unpacked).</summary>
    Active,
    /// <summary>A read-only layer that children may stack on.</summary>
    Committed,
}

/// <summary>What the snapshotter knows about a snapshot.</summary>
public sealed record SnapshotInfo(
    string Name,
    SnapshotKind Kind,
    string? Parent,
    IReadOnlyDictionary<string, string> Labels,
    DateTimeOffset Created,
    DateTimeOffset Updated);

/// <summary>One mount(2) to perform: <c>mount -t Type Source target -o Options</c>.</summary>
public sealed record Mount(string Type, string Source, IReadOnlyList<string> Options)
{
    public override string ToString() => $"{Type} {Source} {string.Join(',', Options)}";
}

/// <summary>
/// Layered filesystem snapshots, modeled on containerd's snapshotter API. Committed snapshots are
/// immutable layers; <see cref="Prepare"/> makes a writable snapshot on top of one, <see cref="View"/>
/// a read-only one, and <see cref="Commit"/> turns a writable snapshot into a new layer. A snapshot
/// is used through the mounts it returns; the snapshotter itself mounts nothing.
/// </summary>
public interface ISnapshotter
{
    /// <summary>Creates the writable snapshot <paramref name="key"/> on top of the committed <paramref name="parent"/> (or empty).</summary>
    /// <exception cref="ImagesException">Conflict if the key exists; NotFound if the parent does not; InvalidArgument if the parent is not committed.</exception>
    IReadOnlyList<Mount> Prepare(string key, string? parent, IReadOnlyDictionary<string, string>? labels = null);

    /// <summary>Creates the read-only snapshot <paramref name="key"/> of the committed <paramref name="parent"/>.</summary>
    IReadOnlyList<Mount> View(string key, string? parent, IReadOnlyDictionary<string, string>? labels = null);

    /// <summary>The mounts of an active or view snapshot.</summary>
    IReadOnlyList<Mount> Mounts(string key);

    /// <summary>Turns the active snapshot <paramref name="key"/> into the committed snapshot <paramref name="name"/>; the key ceases to exist.</summary>
    void Commit(string name, string key, IReadOnlyDictionary<string, string>? labels = null);

    /// <summary>Removes a snapshot that has no children.</summary>
    /// <exception cref="ImagesException">NotFound, or Conflict if another snapshot has it as parent.</exception>
    void Remove(string key);

    /// <exception cref="ImagesException">NotFound.</exception>
    SnapshotInfo Stat(string key);

    /// <summary>Every snapshot.</summary>
    IReadOnlyList<SnapshotInfo> Walk();
}
