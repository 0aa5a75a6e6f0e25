using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Berth.Daemon.Api;
using Microsoft.Extensions.Logging;

namespace Berth.Daemon.Volumes;

/// <summary>
/// Volumes (dockerd's volume service with its <c>local</c> driver): the store on disk, which
/// containers refer to each volume, and which running containers have it mounted.
/// <para>
/// References: a container refers to its volumes from its create to its removal (running or
/// not); a volume that any container refers to cannot be removed (409, as dockerd). Create-or-get
/// and the reference are taken together under the index lock, so a concurrent remove cannot take a
/// volume from under a container being created. References are not stored: they are rebuilt from
/// the container records when berthd starts.
/// </para>
/// <para>
/// Mounts: a volume with a device (local driver options <c>type/device/o</c>) is mounted on its
/// <c>_data</c> when the first running container using it starts and unmounted when the last one
/// stops (dockerd's refcount). Mount, unmount and copy-up of one volume are serialised by that
/// volume's own lock; the index lock is never held across file system work.
/// </para>
/// </summary>
public sealed partial class VolumeService
{
    public const string LocalDriver = "local";
    public const string AnonymousLabel = "com.docker.volume.anonymous";

    private static readonly Regex ValidName = new("^[a-zA-Z0-9][a-zA-Z0-9_.-]+$", RegexOptions.CultureInvariant);

    private readonly Dictionary<string, Volume> _volumes = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly ILogger _logger;

    public VolumeService(string root, ILogger logger, TimeProvider? time = null, Events.EventLog? events = null, (uint Uid, uint Gid)? dataOwner = null)
    {
        Store = new VolumeStore(root, dataOwner);
        _logger = logger;
        Time = time ?? TimeProvider.System;
        Events = events ?? new Events.EventLog(Time);
    }

    public VolumeStore Store { get; }
    public TimeProvider Time { get; }

    /// <summary>Where create, mount, unmount and destroy are published (type <c>volume</c>, as dockerd's).</summary>
    public Events.EventLog Events { get; }

    /// <summary>One volume in memory: its record, the containers that refer to it, the running ones that have it mounted.</summary>
    private sealed class Volume(VolumeRecord record)
    {
        public VolumeRecord Record { get; } = record;
        public HashSet<string> References { get; } = new(StringComparer.Ordinal);
        public HashSet<string> Active { get; } = new(StringComparer.Ordinal);
        /// <summary>Serialises mount, unmount, copy-up and removal of this volume.</summary>
        public Lock MountLock { get; } = new();
        public bool Removed { get; set; }
    }

    // ---- restore ---------------------------------------------------------------------------------

    /// <summary>Reads the volumes at daemon start (before the containers are restored).</summary>
    public void Load()
    {
        foreach (VolumeRecord r in Store.LoadAll(MountPoints.IsMountedAtOrUnder, w => LogWarning(_logger, w)))
            lock (_lock) _volumes[r.Name] = new Volume(r);
    }

    /// <summary>
    /// After the containers are restored: the running ones have their volumes mounted (the mounts
    /// outlived berthd with them); a volume mounted with no running user (its containers exited
    /// while berthd was away, or a crash came between a mount and a start) is unmounted.
    /// </summary>
    public void ReconcileMounts(IReadOnlyDictionary<string, IReadOnlyList<string>> runningByVolume)
    {
        foreach (Volume v in Snapshot())
            lock (v.MountLock)
            {
                v.Active.Clear();
                if (runningByVolume.TryGetValue(v.Record.Name, out IReadOnlyList<string>? running)) v.Active.UnionWith(running);
                string mountpoint = Store.MountpointOf(v.Record.Name);
                if (v.Active.Count == 0 && LocalVolumeMount.HasMount(v.Record.Options) && MountPoints.IsMountPoint(mountpoint))
                {
                    try
                    {
                        LocalVolumeMount.Unmount(mountpoint);
                    }
                    catch (ApiException e)
                    {
                        LogWarning(_logger, $"volume {v.Record.Name}: {e.Message}");
                    }
                }
            }
    }

    // ---- create, get, list -----------------------------------------------------------------------

    /// <summary>
    /// POST /volumes/create: a new volume, or the existing one of that name (dockerd returns it
    /// as is, whatever labels or options were asked; only another driver is a conflict).
    /// </summary>
    public VolumeRecord Create(string? name, string? driver, IReadOnlyDictionary<string, string>? options, IReadOnlyDictionary<string, string>? labels)
        => GetOrCreate(name, driver, options, labels, containerId: null).Record;

    /// <summary>
    /// A volume for container <paramref name="containerId"/>: the named one (made on demand) or a
    /// new anonymous one when <paramref name="name"/> is empty; the container's reference is taken
    /// in the same step.
    /// </summary>
    public VolumeRecord Acquire(string? name, string containerId, string? driver = null,
        IReadOnlyDictionary<string, string>? options = null, IReadOnlyDictionary<string, string>? labels = null)
        => GetOrCreate(name, driver, options, labels, containerId).Record;

    private Volume GetOrCreate(string? name, string? driver, IReadOnlyDictionary<string, string>? options, IReadOnlyDictionary<string, string>? labels, string? containerId)
    {
        driver = string.IsNullOrEmpty(driver) ? LocalDriver : driver;
        // berthd has no volume plugins: any other driver is one it cannot find, in dockerd's words and status.
        if (driver != LocalDriver)
            throw ApiException.NotFound($"{(string.IsNullOrEmpty(name) ? "" : $"create {name}: ")}error looking up volume plugin {driver}: plugin \"{driver}\" not found");
        bool anonymous = string.IsNullOrEmpty(name);
        if (anonymous) name = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        try
        {
            if (!anonymous) CheckName(name!);
            LocalVolumeMount.Validate(options);
        }
        catch (ApiException e) when (e.StatusCode == 400)
        {
            throw ApiException.BadRequest($"create {name}: {e.Message}"); // dockerd's volume service prefix
        }

        Volume volume;
        bool created = false;
        lock (_lock)
        {
            if (_volumes.TryGetValue(name!, out Volume? existing))
            {
                if (existing.Record.Driver != driver)
                    throw ApiException.Conflict($"a volume with the name {name} already exists with driver \"{existing.Record.Driver}\"");
                volume = existing;
            }
            else
            {
                Dictionary<string, string>? l = labels is null ? null : new Dictionary<string, string>(labels, StringComparer.Ordinal);
                if (anonymous) (l ??= new Dictionary<string, string>(StringComparer.Ordinal))[AnonymousLabel] = "";
                var record = new VolumeRecord
                {
                    Name = name!,
                    Driver = driver,
                    CreatedAt = Time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                    Labels = l,
                    Options = options is null ? null : new Dictionary<string, string>(options, StringComparer.Ordinal),
                };
                // Written under the index lock: a create is two mkdirs and one small file, and a
                // concurrent create of the same name must find either nothing or the whole volume.
                try
                {
                    Store.Create(record);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    TryDelete(record.Name);
                    throw new ApiException(500, $"create {record.Name}: {e.Message}", e);
                }
                volume = new Volume(record);
                _volumes[record.Name] = volume;
                created = true;
            }
            if (containerId is not null) volume.References.Add(containerId);
        }
        if (created) Publish("create", volume.Record);
        return volume;
    }

    /// <summary>Docker's rule for volume names (the local driver's validateName), 400 otherwise.</summary>
    public static void CheckName(string name)
    {
        if (ValidName.IsMatch(name)) return;
        if (name.Length == 1 && char.IsAsciiLetterOrDigit(name[0]))
            throw ApiException.BadRequest($"volume name is too short, names should be at least two alphanumeric characters");
        throw ApiException.BadRequest($"\"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path");
    }

    /// <summary>GET /volumes/{name}: 404 "get NAME: no such volume", as dockerd says it.</summary>
    public VolumeRecord Get(string name)
    {
        lock (_lock)
            return _volumes.TryGetValue(name, out Volume? v) ? v.Record : throw ApiException.NotFound($"get {name}: no such volume");
    }

    public IReadOnlyList<VolumeRecord> List()
    {
        lock (_lock) return _volumes.Values.Select(v => v.Record).OrderBy(r => r.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>The containers that refer to the volume (running or not).</summary>
    public IReadOnlyList<string> UsedBy(string name)
    {
        lock (_lock) return _volumes.TryGetValue(name, out Volume? v) ? [.. v.References.Order(StringComparer.Ordinal)] : [];
    }

    /// <summary>Size of the content and number of containers referring to it (the API's UsageData, for system df).</summary>
    public (long Size, long RefCount) Usage(string name)
    {
        Volume v;
        lock (_lock)
        {
            if (!_volumes.TryGetValue(name, out Volume? found)) throw ApiException.NotFound($"get {name}: no such volume");
            v = found;
        }
        return (DirectorySize(Store.MountpointOf(name)), UsedBy(v.Record.Name).Count);
    }

    public string MountpointOf(string name) => Store.MountpointOf(name);

    private List<Volume> Snapshot()
    {
        lock (_lock) return [.. _volumes.Values];
    }

    // ---- references ------------------------------------------------------------------------------

    /// <summary>At daemon start: the references of a restored container.</summary>
    public void AddReference(string name, string containerId)
    {
        lock (_lock)
            if (_volumes.TryGetValue(name, out Volume? v)) v.References.Add(containerId);
    }

    /// <summary>A container is removed (or its create failed): it no longer refers to the volume.</summary>
    public void Release(string name, string containerId)
    {
        lock (_lock)
            if (_volumes.TryGetValue(name, out Volume? v)) v.References.Remove(containerId);
    }

    // ---- remove, prune ---------------------------------------------------------------------------

    /// <summary>DELETE /volumes/{name}: 404 when missing, 409 when any container refers to it.</summary>
    public void Remove(string name)
    {
        Volume v;
        lock (_lock)
        {
            if (!_volumes.TryGetValue(name, out Volume? found)) throw ApiException.NotFound($"get {name}: no such volume");
            v = found;
            if (v.References.Count > 0)
                throw ApiException.Conflict($"remove {name}: volume is in use - [{string.Join(", ", v.References.Order(StringComparer.Ordinal))}]");
            // Out of the index first: from here no container can take a reference to it.
            _volumes.Remove(name);
            v.Removed = true;
        }
        try
        {
            Destroy(v);
        }
        catch
        {
            lock (_lock) _volumes.TryAdd(name, v);
            v.Removed = false;
            throw;
        }
        Publish("destroy", v.Record);
    }

    /// <summary>Removes a container's anonymous volume unless another container refers to it (dockerd ignores that case).</summary>
    public bool TryRemove(string name)
    {
        try
        {
            Remove(name);
            return true;
        }
        catch (ApiException e) when (e.StatusCode is 404 or 409)
        {
            return false;
        }
        catch (ApiException e)
        {
            LogWarning(_logger, $"volume {name}: {e.Message}");
            return false;
        }
    }

    /// <summary>
    /// POST /volumes/prune: volumes no container refers to, matching the label filters; only
    /// anonymous ones unless <paramref name="all"/> (API ≥ 1.42; older APIs prune all).
    /// </summary>
    public (List<string> Deleted, long SpaceReclaimed) Prune(Func<IReadOnlyDictionary<string, string>?, bool> labelsMatch, bool all)
    {
        var deleted = new List<string>();
        long space = 0;
        foreach (Volume v in Snapshot())
        {
            lock (_lock)
                if (v.References.Count > 0) continue;
            if (!all && !v.Record.IsAnonymous) continue;
            if (!labelsMatch(v.Record.Labels)) continue;
            long size = LocalVolumeMount.HasMount(v.Record.Options) ? 0 : DirectorySize(Store.MountpointOf(v.Record.Name));
            if (!TryRemove(v.Record.Name)) continue;
            deleted.Add(v.Record.Name);
            space += size;
        }
        return (deleted, space);
    }

    private void Destroy(Volume v)
    {
        string dir = Store.DirectoryOf(v.Record.Name);
        lock (v.MountLock)
        {
            string mountpoint = Store.MountpointOf(v.Record.Name);
            if (MountPoints.IsMountPoint(mountpoint)) LocalVolumeMount.Unmount(mountpoint);
            // Never delete through a mount: with type=none,o=bind the "content" is a host directory.
            if (MountPoints.IsMountedAtOrUnder(dir))
                throw new ApiException(500, $"remove {v.Record.Name}: something is still mounted in {dir}; not deleting it");
            try
            {
                Store.Delete(v.Record.Name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ApiException(500, $"remove {v.Record.Name}: {e.Message}", e);
            }
        }
    }

    private void TryDelete(string name)
    {
        try
        {
            if (!MountPoints.IsMountedAtOrUnder(Store.DirectoryOf(name))) Store.Delete(name);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogWarning(_logger, $"volume {name}: cleaning up a failed create: {e.Message}");
        }
    }

    // ---- mount -----------------------------------------------------------------------------------

    /// <summary>
    /// A container that uses the volume starts: the first one mounts the volume's device (when it
    /// has one) and, with <paramref name="populate"/>, seeds an empty volume (copy-up) before
    /// anyone else can see it. Returns the path to bind into the container.
    /// </summary>
    public string Mount(string name, string containerId, string destination, bool readOnly, Action<string>? populate)
    {
        Volume v;
        lock (_lock)
        {
            if (!_volumes.TryGetValue(name, out Volume? found)) throw ApiException.NotFound($"get {name}: no such volume");
            v = found;
        }
        string mountpoint = Store.MountpointOf(name);
        bool mounted = false;
        lock (v.MountLock)
        {
            if (v.Removed) throw ApiException.NotFound($"get {name}: no such volume");
            if (v.Active.Contains(containerId)) return mountpoint;
            bool first = v.Active.Count == 0;
            if (first && LocalVolumeMount.HasMount(v.Record.Options) && !MountPoints.IsMountPoint(mountpoint))
            {
                Directory.CreateDirectory(mountpoint);
                LocalVolumeMount.Mount(v.Record.Options!, mountpoint);
                mounted = true;
            }
            if (first && populate is not null)
            {
                try
                {
                    populate(mountpoint);
                }
                catch (Exception e)
                {
                    // Whatever failed, the device mounted for this start must not outlive it (no
                    // container holds the volume yet, so nothing would unmount it until a restart).
                    if (mounted)
                    {
                        try
                        {
                            LocalVolumeMount.Unmount(mountpoint);
                        }
                        catch (ApiException unmountError)
                        {
                            LogWarning(_logger, $"volume {name}: {unmountError.Message}");
                        }
                    }
                    if (e is IOException or UnauthorizedAccessException)
                        throw new ApiException(500, $"copying the image's content into volume {name}: {e.Message}", e);
                    throw;
                }
            }
            v.Active.Add(containerId);
        }
        Publish("mount", v.Record, ("container", containerId), ("destination", destination),
            ("read/write", readOnly ? "false" : "true"), ("propagation", ""));
        return mountpoint;
    }

    /// <summary>A container that used the volume stopped (or failed to start): the last one unmounts its device.</summary>
    public void Unmount(string name, string containerId)
    {
        Volume v;
        lock (_lock)
        {
            if (!_volumes.TryGetValue(name, out Volume? found)) return;
            v = found;
        }
        lock (v.MountLock)
        {
            if (!v.Active.Remove(containerId)) return;
            string mountpoint = Store.MountpointOf(name);
            if (v.Active.Count == 0 && LocalVolumeMount.HasMount(v.Record.Options) && MountPoints.IsMountPoint(mountpoint))
            {
                try
                {
                    LocalVolumeMount.Unmount(mountpoint);
                }
                catch (ApiException e)
                {
                    LogWarning(_logger, $"volume {name}: {e.Message}");
                }
            }
        }
        Publish("unmount", v.Record, ("container", containerId));
    }

    // ---- helpers ---------------------------------------------------------------------------------

    /// <summary>dockerd's volume events: the volume's name is the actor, the driver (and the container) attributes.</summary>
    private void Publish(string action, VolumeRecord record, params (string Key, string Value)[] attributes)
    {
        var all = new Dictionary<string, string>(StringComparer.Ordinal) { ["driver"] = record.Driver };
        foreach (var (k, v) in attributes) all[k] = v;
        Events.Publish("volume", action, record.Name, all);
    }

    private static long DirectorySize(string dir)
    {
        long total = 0;
        try
        {
            var options = new EnumerationOptions { AttributesToSkip = 0, RecurseSubdirectories = true, IgnoreInaccessible = true };
            foreach (FileInfo f in new DirectoryInfo(dir).EnumerateFiles("*", options))
                if (f.LinkTarget is null) total += f.Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return total;
    }

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "{Message}")]
    private static partial void LogWarning(ILogger logger, string message);
}
