using Berth.Daemon.Api;
using Berth.Daemon.Volumes;
using Berth.Images.Engine;

namespace Berth.Daemon.Containers;

/// <summary>
/// The volumes of containers, as dockerd handles them: resolved at create (named volumes in
/// Binds, Mounts of type volume, and anonymous volumes for the Config's and the image's VOLUME
/// paths that nothing else covers), referred to until the container is removed, mounted while it
/// runs (copy-up of the image's content into an empty volume at its first mount).
/// </summary>
public sealed partial class ContainerService
{
    /// <summary>
    /// Resolves the create request's volumes, making named ones on demand and anonymous ones, and
    /// takes the container's reference on each. On failure, releases what it took and removes the
    /// anonymous volumes it made. Also merges the image's VOLUME paths into the Config (as dockerd
    /// shows them).
    /// </summary>
    private (List<ContainerVolumeMount>? Volumes, List<BindMount>? Binds) AcquireVolumes(string id, ContainerConfigJson config, HostConfigJson host, Berth.Images.Store.Image image)
    {
        var mounts = new List<ContainerVolumeMount>();
        var inheritedBinds = new List<BindMount>();
        // Every destination first, so that a duplicate is refused before any volume is made.
        var destinations = new HashSet<string>(StringComparer.Ordinal);
        void Claim(string destination)
        {
            string clean = CleanPath(destination);
            if (!destinations.Add(clean)) throw ApiException.BadRequest($"Duplicate mount point: {clean}");
        }
        foreach (string bind in host.Binds ?? []) Claim(ContainerRequestCheck.ParseBind(bind).Destination);
        foreach (MountJson m in host.Mounts ?? []) Claim(m.Target);
        foreach (string tmpfs in host.Tmpfs?.Keys ?? Enumerable.Empty<string>()) Claim(tmpfs);
        // --volumes-from: the other containers' volumes and binds, later ones winning, except where
        // this container mounts something of its own (dockerd's order: theirs, then its binds over them).
        var borrowed = new SortedDictionary<string, (ContainerVolumeMount? Volume, BindMount? Bind)>(StringComparer.Ordinal);
        var lenders = new List<ContainerEntry>();
        foreach (string from in host.VolumesFrom ?? [])
        {
            var (reference, readOnly) = ContainerRequestCheck.ParseVolumesFrom(from);
            // dockerd answers 400 here, not 404: a client takes a 404 from create for a missing image and pulls.
            ContainerEntry lender;
            try
            {
                lender = Find(reference);
            }
            catch (ApiException e) when (e.StatusCode == 404)
            {
                throw ApiException.BadRequest(e.Message);
            }
            if (lender.Record.Id == id) throw ApiException.BadRequest("a container cannot take volumes from itself");
            lenders.Add(lender);
            foreach (var (destination, volume, bind) in MountPointsOf(lender.Record))
                borrowed[destination] = (volume, bind) switch
                {
                    ({ } v, _) => (new ContainerVolumeMount { Name = v.Name, Source = v.Source, Destination = v.Destination, ReadOnly = v.ReadOnly || readOnly, NoCopy = true, Subpath = v.Subpath }, null),
                    (_, { } b) => (null, b with { ReadOnly = b.ReadOnly || readOnly }),
                    _ => throw new InvalidOperationException("a mount point is a volume or a bind"),
                };
        }
        foreach (string destination in borrowed.Keys.ToList())
            if (!destinations.Add(destination)) borrowed.Remove(destination);
        try
        {
            foreach (var (volume, bind) in borrowed.Values)
            {
                if (bind is not null)
                {
                    inheritedBinds.Add(bind);
                    continue;
                }
                // Not anonymous here: the lender made it, and this container's rm -v leaves it.
                Volumes.Acquire(volume!.Name, id);
                mounts.Add(volume);
            }
            // A lender removed meanwhile may have removed its anonymous volumes before the references above.
            if (lenders.FirstOrDefault(l => l.Removed) is { } gone) throw ApiException.BadRequest($"No such container: {gone.Record.Id}");
            foreach (string bind in host.Binds ?? [])
            {
                var (source, destination, readOnly, _) = ContainerRequestCheck.ParseBind(bind);
                if (!ContainerRequestCheck.IsVolumeBind(bind)) continue;
                string[] parts = bind.Split(':');
                string mode = parts.Length > 2 ? parts[2] : "z";
                VolumeRecord v = Volumes.Acquire(source, id);
                mounts.Add(new ContainerVolumeMount
                {
                    Name = v.Name,
                    Source = Volumes.MountpointOf(v.Name),
                    Destination = CleanPath(destination),
                    ReadOnly = readOnly,
                    NoCopy = mode.Split(',').Contains("nocopy"),
                    Mode = mode,
                });
            }
            foreach (MountJson m in host.Mounts ?? [])
            {
                if (m.Type != "volume") continue;
                VolumeOptionsJson? o = m.VolumeOptions;
                VolumeRecord v = Volumes.Acquire(m.Source.Length == 0 ? null : m.Source, id, o?.DriverConfig?.Name, o?.DriverConfig?.Options, o?.Labels);
                mounts.Add(new ContainerVolumeMount
                {
                    Name = v.Name,
                    Source = Volumes.MountpointOf(v.Name),
                    Destination = CleanPath(m.Target),
                    ReadOnly = m.ReadOnly,
                    NoCopy = o?.NoCopy == true,
                    Anonymous = m.Source.Length == 0,
                    Mode = "z", // dockerd's setBindModeIfNull for a local driver's volume, named or not
                    Subpath = string.IsNullOrEmpty(o?.Subpath) ? null : o.Subpath,
                });
            }

            // VOLUME paths (the image's and -v /path): anonymous volumes where nothing else is mounted.
            var paths = new SortedSet<string>(StringComparer.Ordinal);
            foreach (string p in image.Config.Config?.Volumes?.Keys ?? Enumerable.Empty<string>()) paths.Add(p);
            foreach (string p in config.Volumes?.Keys ?? Enumerable.Empty<string>()) paths.Add(p);
            foreach (string path in paths)
            {
                if (!path.StartsWith('/')) throw ApiException.BadRequest($"invalid volume specification: '{path}': destination must be an absolute path");
                if (!destinations.Add(CleanPath(path))) continue;
                VolumeRecord v = Volumes.Acquire(null, id);
                mounts.Add(new ContainerVolumeMount { Name = v.Name, Source = Volumes.MountpointOf(v.Name), Destination = CleanPath(path), Anonymous = true });
            }
            if (paths.Count > 0)
            {
                config.Volumes ??= [];
                foreach (string p in paths) config.Volumes.TryAdd(p, EmptyObject);
            }
        }
        catch
        {
            ReleaseVolumes(id, mounts, removeAnonymous: true);
            throw;
        }
        return (mounts.Count > 0 ? mounts : null, inheritedBinds.Count > 0 ? inheritedBinds : null);
    }

    /// <summary>What --volumes-from takes from <paramref name="r"/>: its volumes and its host binds (its own and those it took), by destination.</summary>
    private static IEnumerable<(string Destination, ContainerVolumeMount? Volume, BindMount? Bind)> MountPointsOf(ContainerRecord r)
    {
        foreach (ContainerVolumeMount v in r.Volumes ?? []) yield return (v.Destination, v, null);
        foreach (BindMount b in ContainerSpecFactory.HostBinds(r.HostConfig, createMissingSource: false).Concat(r.InheritedBinds ?? []))
            yield return (CleanPath(b.Destination), null, b with { Destination = CleanPath(b.Destination) });
    }

    /// <summary>
    /// dockerd's checkIfPathIsInAVolume: whether <paramref name="path"/> (absolute, in the container)
    /// lies in a read-only volume or bind mount of <paramref name="r"/>'s, the innermost holding it.
    /// </summary>
    internal static bool IsInReadOnlyMount(ContainerRecord r, string path)
    {
        string? innermost = null;
        bool readOnly = false;
        foreach (var (destination, volume, bind) in MountPointsOf(r))
        {
            bool holds = destination == "/" ? path.StartsWith('/') : path == destination || path.StartsWith(destination + "/", StringComparison.Ordinal);
            if (!holds || (innermost is not null && destination.Length <= innermost.Length)) continue;
            innermost = destination;
            readOnly = volume?.ReadOnly ?? bind!.ReadOnly;
        }
        return readOnly;
    }

    /// <summary>The container no longer refers to its volumes; with <paramref name="removeAnonymous"/> (rm -v, --rm) its anonymous ones go too, unless another container uses them.</summary>
    private void ReleaseVolumes(string id, IEnumerable<ContainerVolumeMount>? mounts, bool removeAnonymous)
    {
        foreach (ContainerVolumeMount m in mounts ?? [])
        {
            Volumes.Release(m.Name, id);
            if (removeAnonymous && m.Anonymous) Volumes.TryRemove(m.Name);
        }
    }

    /// <summary>
    /// At start, after the rootfs is mounted: mounts each volume (the first user mounts a volume's
    /// device and seeds an empty volume from the rootfs) and returns the binds for the spec. A
    /// volume mounted with a subpath is bound through a private mount of the resolved subpath
    /// (<see cref="VolumeSubpath"/>), which the caller releases once the start is over, whichever
    /// way it went (<see cref="ReleaseSubpaths"/>).
    /// </summary>
    private List<BindMount> MountVolumes(ContainerRecord r, string rootfs)
    {
        var binds = new List<BindMount>();
        List<ContainerVolumeMount> volumes = r.Volumes ?? [];
        if (volumes.Any(m => m.Subpath is not null)) ReleaseSubpaths(r.Id); // a release that failed before
        for (int i = 0; i < volumes.Count; i++)
        {
            ContainerVolumeMount m = volumes[i];
            if (m.Subpath is not { } subpath)
            {
                Action<string>? populate = m.NoCopy ? null : dir => VolumeCopyUp.Copy(rootfs, m.Destination, dir);
                string source = Volumes.Mount(m.Name, r.Id, m.Destination, m.ReadOnly, populate);
                binds.Add(new BindMount(source, m.Destination, m.ReadOnly));
                continue;
            }
            string target = Path.Combine(SubpathDirectory(r.Id), i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            bool pinned = false;
            // As dockerd, the first user seeds the subpath (an empty directory) from the image rather
            // than the volume; a subpath that cannot be resolved is reported just below.
            Action<string>? seed = m.NoCopy ? null : dir =>
            {
                try
                {
                    VolumeSubpath.Mount(dir, subpath, target);
                }
                catch (ApiException)
                {
                    return;
                }
                pinned = true;
                if (Directory.Exists(target)) VolumeCopyUp.Copy(rootfs, m.Destination, target);
            };
            string volume = Volumes.Mount(m.Name, r.Id, m.Destination, m.ReadOnly, seed);
            if (!pinned) VolumeSubpath.Mount(volume, subpath, target);
            binds.Add(new BindMount(target, m.Destination, m.ReadOnly));
        }
        return binds;
    }

    /// <summary>Where a container's subpath mounts are pinned while it starts: <c>&lt;exec-root&gt;/subpaths/&lt;id&gt;/&lt;index in its volumes&gt;</c>.</summary>
    private string SubpathDirectory(string id) => Path.Combine(Options.ExecRoot, "subpaths", id);

    /// <summary>
    /// Detaches and removes the container's subpath mounts: once its start is over (the runtime has
    /// made its own binds, or the start failed), at its exit and removal should one remain, and at
    /// daemon start for what a crash left (<see cref="ReleaseAllSubpaths"/>). Never deletes
    /// recursively: a mount that would not go stays, with a warning, and is retried next time.
    /// </summary>
    private void ReleaseSubpaths(string id)
    {
        string dir = SubpathDirectory(id);
        if (!Directory.Exists(dir)) return;
        try
        {
            foreach (string target in Directory.GetFileSystemEntries(dir))
            {
                try
                {
                    VolumeSubpath.Release(target);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    LogWarning(_logger, $"container {id}: releasing the volume subpath mount {target}: {e.Message}");
                }
            }
            if (Directory.GetFileSystemEntries(dir).Length == 0) Directory.Delete(dir, recursive: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogWarning(_logger, $"container {id}: releasing its volume subpath mounts in {dir}: {e.Message}");
        }
    }

    /// <summary>At daemon start, before any container starts: no subpath mount is in use, so every one a crash left goes.</summary>
    private void ReleaseAllSubpaths()
    {
        string root = Path.Combine(Options.ExecRoot, "subpaths");
        if (!Directory.Exists(root)) return;
        foreach (string dir in Directory.GetDirectories(root)) ReleaseSubpaths(Path.GetFileName(dir));
    }

    /// <summary>The container stopped (or did not start): the last user of a volume with a device unmounts it.</summary>
    private void UnmountVolumes(ContainerRecord r)
    {
        foreach (ContainerVolumeMount m in r.Volumes ?? [])
            Volumes.Unmount(m.Name, r.Id);
    }

    /// <summary>At daemon start, before exits are recorded: every record's references.</summary>
    private void RestoreVolumeReferences()
    {
        foreach (ContainerEntry e in Snapshot())
            foreach (ContainerVolumeMount m in e.Record.Volumes ?? [])
                Volumes.AddReference(m.Name, e.Record.Id);
    }

    /// <summary>At daemon start, after the containers are reconciled: which volumes the running ones have mounted.</summary>
    private void ReconcileVolumeMounts()
    {
        var running = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (ContainerEntry e in Snapshot())
        {
            if (!e.Record.State.Running) continue;
            foreach (ContainerVolumeMount m in e.Record.Volumes ?? [])
                running[m.Name] = [.. running.GetValueOrDefault(m.Name) ?? [], e.Record.Id];
        }
        Volumes.ReconcileMounts(running);
    }

    private static string CleanPath(string path) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
}
