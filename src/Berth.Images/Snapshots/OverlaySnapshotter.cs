using System.Text.Json;
using Berth.Images.Layers;
using Microsoft.Win32.SafeHandles;

namespace Berth.Images.Snapshots;

/// <summary>
/// Snapshots as overlayfs layers:
/// <code>
/// &lt;root&gt;/metadata.json          every snapshot: id, kind, parent, labels, times
/// &lt;root&gt;/snapshots/&lt;id&gt;/fs       the layer's files (the upperdir while active)
/// &lt;root&gt;/snapshots/&lt;id&gt;/work     overlay's workdir (active snapshots)
/// &lt;root&gt;/ephemeral/&lt;id&gt;.json   an ephemeral snapshot's record (see <see cref="EphemeralLabel"/>)
/// &lt;root&gt;/lock                   flock held while a snapshotter has the root open
/// </code>
/// Directories are named by short numeric ids, never by key, so a 128-layer lowerdir list stays
/// small (and <see cref="MountHelper"/> mounts it relative to the snapshots directory if it still
/// exceeds a page).
///
/// Crash safety: metadata.json is replaced atomically (write a temp file, fsync, rename, fsync the
/// directory), and always changes before directories are deleted and after they are created. A
/// crash can thus leave only directories that no record names; they are removed when the
/// snapshotter is opened. A committed snapshot's files are synced before the commit is recorded.
/// Ephemeral snapshots are the exception: recorded without any fsync, each in its own file.
/// Concurrency: one snapshotter per root (the lock file), and one operation at a time within it.
/// </summary>
public sealed class OverlaySnapshotter : ISnapshotter, IDisposable
{
    /// <summary>
    /// A label that makes an active snapshot ephemeral: recorded in its own file under
    /// <c>ephemeral/</c>, written and deleted without an fsync, never in metadata.json. Creating
    /// and removing one thus costs no fsync or rewrite of the whole metadata (each was two
    /// fsyncs, ~1 ms on this VM's ext4 and more while other writes are pending), at the price that
    /// a machine crash may lose its record, after which its directory is removed as an orphan at
    /// the next open. For the writable layers of containers removed when they exit (`run --rm`),
    /// which a restart after a crash removes anyway. A kill -9 loses nothing: the page cache stays.
    /// </summary>
    public const string EphemeralLabel = "berth.io/ephemeral";

    private const string MetadataFile = "metadata.json";
    private const string EphemeralDirectory = "ephemeral";
    private readonly object _gate = new();
    private readonly string _snapshots;
    private readonly string _metadataPath;
    private readonly string _ephemeral;
    private readonly TimeProvider _time;
    private readonly SafeFileHandle _lock;
    private SnapshotMetadata _metadata;

    /// <summary>Opens (creating if needed) the snapshotter under <paramref name="root"/>.</summary>
    /// <exception cref="ImagesException">Conflict if another snapshotter has the root open.</exception>
    public OverlaySnapshotter(string root, TimeProvider? timeProvider = null)
    {
        Root = Path.GetFullPath(root);
        _time = timeProvider ?? TimeProvider.System;
        _snapshots = Path.Combine(Root, "snapshots");
        _metadataPath = Path.Combine(Root, MetadataFile);
        _ephemeral = Path.Combine(Root, EphemeralDirectory);
        Directory.CreateDirectory(_snapshots);
        Directory.CreateDirectory(_ephemeral);
        // ext2/3/4: each snapshot directory is placed as a top-level one (Orlov: spread over the
        // block groups) rather than next to its siblings. Without a journal, ext4 skips inodes
        // deleted in the last 5 s (305 s while their table block is dirty) when it allocates, one
        // by one: a pull right after an rmi (or a prune) made its layer's inodes in the group
        // full of the old ones and paid ~0.3 ms per file (79 of a 110 ms busybox pull; 35 ms with
        // the flag, measured on this project's VM). Elsewhere it only spreads unrelated layers
        // apart, as ext4 does for top-level directories. Filesystems without inode flags ignore it.
        Interop.TrySetTopDirectory(_snapshots);

        string lockPath = Path.Combine(Root, "lock");
        _lock = Interop.Open(lockPath, Interop.O_RDWR | Interop.O_CREAT | Interop.O_NOFOLLOW, 0x180);
        if (Interop.flock(_lock, Interop.LOCK_EX | Interop.LOCK_NB) < 0)
        {
            int errno = Interop.LastErrno;
            _lock.Dispose();
            throw errno == Interop.Errno.EAGAIN
                ? new ImagesException(ImagesErrorKind.Conflict, $"snapshotter root `{Root}` is in use by another snapshotter")
                : new NativeCallException(errno, "flock", lockPath);
        }
        try
        {
            File.Delete(_metadataPath + ".tmp");
            _metadata = Load();
            LoadEphemeral(_metadata);
            RemoveOrphans();
        }
        catch
        {
            _lock.Dispose();
            throw;
        }
    }

    public string Root { get; }

    public IReadOnlyList<Mount> Prepare(string key, string? parent, IReadOnlyDictionary<string, string>? labels = null)
        => Create(SnapshotKind.Active, key, parent, labels);

    public IReadOnlyList<Mount> View(string key, string? parent, IReadOnlyDictionary<string, string>? labels = null)
        => Create(SnapshotKind.View, key, parent, labels);

    public IReadOnlyList<Mount> Mounts(string key)
    {
        lock (_gate) return MountsOf(Get(_metadata, key), _metadata);
    }

    public void Commit(string name, string key, IReadOnlyDictionary<string, string>? labels = null)
    {
        ValidateKey(name);
        lock (_gate)
        {
            SnapshotRecord active = Get(_metadata, key);
            if (active.Kind != SnapshotKind.Active)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"snapshot `{key}` is {active.Kind.ToString().ToLowerInvariant()}: only an active snapshot can be committed");
            if (_metadata.Snapshots.ContainsKey(name))
                throw new ImagesException(ImagesErrorKind.Conflict, $"snapshot `{name}` already exists");

            // The layer's files must be on disk before a record says they are a layer.
            string fs = FsPath(active.Id);
            using (SafeFileHandle dir = Interop.Open(fs, Interop.O_RDONLY | Interop.O_DIRECTORY))
                if (Interop.syncfs(dir) < 0) throw Interop.Error("syncfs", fs);

            SnapshotMetadata next = _metadata.Clone();
            next.Snapshots.Remove(key);
            Dictionary<string, string> committedLabels = Merge(active.Labels, labels);
            committedLabels.Remove(EphemeralLabel); // a layer is durable, whatever it grew from
            next.Snapshots[name] = active with
            {
                Kind = SnapshotKind.Committed,
                Labels = committedLabels,
                Updated = _time.GetUtcNow(),
            };
            Save(next);
            // After the save: a crash in between leaves a stale file, dropped at load since
            // metadata.json claims its id.
            if (IsEphemeral(active)) File.Delete(EphemeralPath(active.Id));
        }
    }

    public void Remove(string key)
    {
        lock (_gate)
        {
            SnapshotRecord record = Get(_metadata, key);
            string? child = _metadata.Snapshots.FirstOrDefault(e => e.Value.Parent == key).Key;
            if (child is not null)
                throw new ImagesException(ImagesErrorKind.Conflict, $"cannot remove snapshot `{key}`: snapshot `{child}` is its child");
            SnapshotMetadata next = _metadata.Clone();
            next.Snapshots.Remove(key);
            if (IsEphemeral(record))
            {
                // The record first, as with metadata.json: a crash before the directory goes
                // leaves an orphan directory, removed at the next open.
                File.Delete(EphemeralPath(record.Id));
                _metadata = next;
            }
            else
            {
                Save(next);
            }
            RemoveDirectory(record.Id);
        }
    }

    public SnapshotInfo Stat(string key)
    {
        lock (_gate) return ToInfo(key, Get(_metadata, key));
    }

    public IReadOnlyList<SnapshotInfo> Walk()
    {
        lock (_gate) return _metadata.Snapshots.Select(e => ToInfo(e.Key, e.Value)).ToList();
    }

    public void Dispose()
    {
        // Unlocked explicitly before the close: a flock belongs to the open file description, and a child
        // that another thread forks in this instant holds a copy of the descriptor until its exec closes
        // it (O_CLOEXEC), which kept the root "in use" for a snapshotter opened right after this one.
        if (!_lock.IsClosed) Interop.flock(_lock, Interop.LOCK_UN);
        _lock.Dispose();
    }

    private IReadOnlyList<Mount> Create(SnapshotKind kind, string key, string? parent, IReadOnlyDictionary<string, string>? labels)
    {
        ValidateKey(key);
        lock (_gate)
        {
            if (_metadata.Snapshots.ContainsKey(key))
                throw new ImagesException(ImagesErrorKind.Conflict, $"snapshot `{key}` already exists");
            if (parent is not null)
            {
                SnapshotRecord p = Get(_metadata, parent);
                if (p.Kind != SnapshotKind.Committed)
                    throw new ImagesException(ImagesErrorKind.InvalidArgument, $"parent `{parent}` of `{key}` is not committed");
            }

            SnapshotMetadata next = _metadata.Clone();
            long id = next.NextId++;
            RemoveDirectory(id); // a leftover of a crash before its record was saved
            Directory.CreateDirectory(FsPath(id));
            if (kind == SnapshotKind.Active) Directory.CreateDirectory(Path.Combine(_snapshots, Id(id), "work"));
            DateTimeOffset now = _time.GetUtcNow();
            var record = new SnapshotRecord
            {
                Id = id, Kind = kind, Parent = parent, Labels = Merge([], labels), Created = now, Updated = now,
            };
            next.Snapshots[key] = record;
            try
            {
                if (IsEphemeral(record)) SaveEphemeral(key, record, next);
                else Save(next);
            }
            catch
            {
                RemoveDirectory(id);
                throw;
            }
            return MountsOf(record, next);
        }
    }

    private List<Mount> MountsOf(SnapshotRecord record, SnapshotMetadata metadata)
    {
        if (record.Kind == SnapshotKind.Committed)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, "a committed snapshot has no mounts: create a view or prepare a child of it");
        var lowers = new List<string>();
        for (string? p = record.Parent; p is not null; p = metadata.Snapshots[p].Parent)
            lowers.Add(FsPath(metadata.Snapshots[p].Id));

        if (record.Kind == SnapshotKind.Active)
        {
            if (lowers.Count == 0) return [new Mount("bind", FsPath(record.Id), ["rbind", "rw"])];
            return [new Mount("overlay", "overlay",
            [
                // index/redirect_dir/metacopy off: the upper directory alone then describes the
                // change (LayerDiffer relies on it) and lowers can be shared by many mounts.
                "index=off", "redirect_dir=off", "metacopy=off",
                "workdir=" + Path.Combine(_snapshots, Id(record.Id), "work"),
                "upperdir=" + FsPath(record.Id),
                "lowerdir=" + string.Join(':', lowers),
            ])];
        }
        return lowers.Count switch
        {
            0 => [new Mount("bind", FsPath(record.Id), ["rbind", "ro"])],
            1 => [new Mount("bind", lowers[0], ["rbind", "ro"])],
            // overlay needs two lowers when it has no upper; with them it is read-only by nature.
            _ => [new Mount("overlay", "overlay", ["index=off", "redirect_dir=off", "metacopy=off", "lowerdir=" + string.Join(':', lowers)])],
        };
    }

    private static SnapshotRecord Get(SnapshotMetadata metadata, string key)
        => metadata.Snapshots.TryGetValue(key, out SnapshotRecord? r) ? r : throw new ImagesException(ImagesErrorKind.NotFound, $"snapshot `{key}` not found");

    private static SnapshotInfo ToInfo(string key, SnapshotRecord r)
        => new(key, r.Kind, r.Parent, new Dictionary<string, string>(r.Labels), r.Created, r.Updated);

    private static Dictionary<string, string> Merge(Dictionary<string, string> existing, IReadOnlyDictionary<string, string>? labels)
    {
        var merged = new Dictionary<string, string>(existing, StringComparer.Ordinal);
        if (labels is not null) foreach (var (k, v) in labels) merged[k] = v;
        return merged;
    }

    private static void ValidateKey(string key)
    {
        if (string.IsNullOrEmpty(key) || key.Contains('\0') || key.Length > 4096)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"invalid snapshot key `{key}`");
    }

    private static string Id(long id) => id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private string FsPath(long id) => Path.Combine(_snapshots, Id(id), "fs");

    private SnapshotMetadata Load()
    {
        if (!File.Exists(_metadataPath)) return new SnapshotMetadata();
        try
        {
            using FileStream f = File.OpenRead(_metadataPath);
            return JsonSerializer.Deserialize(f, SnapshotJsonContext.Default.SnapshotMetadata)
                ?? throw new JsonException("null document");
        }
        catch (JsonException e)
        {
            // Never start over silently: that would orphan every layer on disk.
            throw new ImagesException(ImagesErrorKind.DataLoss, $"snapshot metadata `{_metadataPath}` is unreadable: {e.Message}", e);
        }
    }

    /// <summary>Replaces metadata.json atomically (with every snapshot but the ephemeral ones), then adopts <paramref name="next"/> in memory.</summary>
    private void Save(SnapshotMetadata next)
    {
        string temp = _metadataPath + ".tmp";
        var durable = new SnapshotMetadata
        {
            NextId = next.NextId,
            Snapshots = next.Snapshots.Where(e => !IsEphemeral(e.Value)).ToDictionary(StringComparer.Ordinal),
        };
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(durable, SnapshotJsonContext.Default.SnapshotMetadata);
        using (SafeFileHandle fd = Interop.Open(temp, Interop.O_WRONLY | Interop.O_CREAT | Interop.O_TRUNC | Interop.O_NOFOLLOW, 0x180))
        {
            RandomAccess.Write(fd, json, 0);
            Interop.Fsync(fd, temp);
        }
        File.Move(temp, _metadataPath, overwrite: true);
        Interop.FsyncDirectory(Root);
        _metadata = next;
    }

    private static bool IsEphemeral(SnapshotRecord record) => record.Kind == SnapshotKind.Active && record.Labels.ContainsKey(EphemeralLabel);

    private string EphemeralPath(long id) => Path.Combine(_ephemeral, Id(id) + ".json");

    /// <summary>
    /// Writes an ephemeral snapshot's record into a new file of its own: no temp file, rename or
    /// fsync. A torn or empty file (a crash mid-write) is dropped at load, its directory with it.
    /// </summary>
    private void SaveEphemeral(string key, SnapshotRecord record, SnapshotMetadata next)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(new EphemeralSnapshot { Key = key, Record = record }, SnapshotJsonContext.Default.EphemeralSnapshot);
        string path = EphemeralPath(record.Id);
        using (SafeFileHandle fd = Interop.Open(path, Interop.O_WRONLY | Interop.O_CREAT | Interop.O_TRUNC | Interop.O_NOFOLLOW, 0x180))
            RandomAccess.Write(fd, json, 0);
        _metadata = next;
    }

    /// <summary>
    /// Adds the ephemeral snapshots' records to <paramref name="metadata"/>. A file that does not
    /// parse, names a key or id metadata.json already has (a commit cut short after its save), or
    /// names a parent that is gone is deleted; the directory it named is then an orphan.
    /// </summary>
    private void LoadEphemeral(SnapshotMetadata metadata)
    {
        var ids = metadata.Snapshots.Values.Select(r => r.Id).ToHashSet();
        foreach (string path in Directory.EnumerateFiles(_ephemeral))
        {
            EphemeralSnapshot? e = null;
            try
            {
                e = JsonSerializer.Deserialize(File.ReadAllBytes(path), SnapshotJsonContext.Default.EphemeralSnapshot);
            }
            catch (JsonException)
            {
            }
            if (e is not { Key: { Length: > 0 } key, Record: { } r }
                || Path.GetFileName(path) != Id(r.Id) + ".json" || !IsEphemeral(r)
                || metadata.Snapshots.ContainsKey(key) || ids.Contains(r.Id)
                || r.Parent is not null && !(metadata.Snapshots.TryGetValue(r.Parent, out SnapshotRecord? p) && p.Kind == SnapshotKind.Committed))
            {
                File.Delete(path);
                continue;
            }
            metadata.Snapshots[key] = r;
            ids.Add(r.Id);
            metadata.NextId = Math.Max(metadata.NextId, r.Id + 1);
        }
    }

    private void RemoveOrphans()
    {
        var known = _metadata.Snapshots.Values.Select(r => Id(r.Id)).ToHashSet(StringComparer.Ordinal);
        foreach (string dir in Directory.EnumerateFileSystemEntries(_snapshots))
        {
            string name = Path.GetFileName(dir);
            if (known.Contains(name)) continue;
            using SafeFileHandle snapshots = Interop.Open(_snapshots, Interop.O_RDONLY | Interop.O_DIRECTORY);
            try
            {
                RootedDirectory.RemoveTree(snapshots, name, dir);
            }
            catch (ImagesException)
            {
                // Still mounted somewhere, say: harmless to keep, and retried at the next open.
            }
        }
    }

    private void RemoveDirectory(long id)
    {
        using SafeFileHandle snapshots = Interop.Open(_snapshots, Interop.O_RDONLY | Interop.O_DIRECTORY);
        RootedDirectory.RemoveTree(snapshots, Id(id), Path.Combine(_snapshots, Id(id)));
    }
}
