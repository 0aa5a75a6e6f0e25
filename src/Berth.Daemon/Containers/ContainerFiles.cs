using System.Formats.Tar;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json.Serialization;
using Berth.Daemon.Api;
using Berth.Daemon.Engine;
using Berth.Images;
using Berth.Images.Engine;
using Berth.Images.Layers;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Snapshots;
using Microsoft.Win32.SafeHandles;

namespace Berth.Daemon.Containers;

/// <summary>Docker's ContainerPathStat (the X-Docker-Container-Path-Stat header); Mode holds Go's os.FileMode bits.</summary>
public sealed record ContainerPathStat(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("size")] long Size,
    [property: JsonPropertyName("mode")] uint Mode,
    [property: JsonPropertyName("mtime")] string Mtime,
    [property: JsonPropertyName("linkTarget")] string LinkTarget);

/// <summary>What POST /commit asks for.</summary>
public sealed record CommitRequest(string? Repo, string? Tag, string? Comment, string? Author, bool Pause, IReadOnlyList<string> Changes, ContainerConfig? Config);

/// <summary>
/// The container's files: stat, archive (docker cp both ways), export, changes and commit.
///
/// Security: the container's rootfs is a tree its processes control, possibly while we read it
/// (CVE-2018-15664 raced a symlink swap against docker cp). So no path inside it is ever resolved
/// by string concatenation: the rootfs is opened once and every user-given path is resolved by
/// the kernel with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), which treats every symlink
/// (absolute or climbing with `..`) as if the rootfs were `/`. Below the resolved point the tree
/// is walked one component at a time with *at calls on directory fds and O_NOFOLLOW, and
/// directories are listed through /proc/self/fd/N of the fd already opened, so a component
/// swapped for a symlink mid-walk is archived as a symlink, never followed. Uploads are unpacked
/// by <see cref="LayerApplier"/> into the resolved directory (reopened through its fd), which
/// resolves every entry with RESOLVE_BENEATH and refuses `..`, escaping links and device nodes.
///
/// Scope: stat and archive (both ways) see and write through the container's volumes, bind
/// mounts and the engine's /etc files as dockerd's do: a running container's from its init's root
/// (/proc/PID/root, checked to be this container's overlay, so a PID reused by another process
/// is never taken), where below a proc, sysfs, devpts, mqueue or cgroup mount only the mount point
/// is archived; a stopped container's from its root filesystem with those mounted on it in a
/// mount namespace of the copy's own (<see cref="StoppedRoot"/>). Export, changes and commit see
/// the root filesystem alone (dockerd's leave volumes out there too).
///
/// The native calls are kept here rather than in Interop/ because they serve only this file.
/// </summary>
public static partial class ContainerFiles
{
    // ---- stat and archive (GET/HEAD/PUT /containers/{id}/archive) ------------------------------------------

    public static Task<ContainerPathStat> StatAsync(ContainerService service, ContainerEntry entry, string path, CancellationToken cancellationToken)
        => service.WithContainerRootAsync(entry, root =>
        {
            using ResolvedPath target = ResolveNoFollowLast(root, entry.Record.Id, path);
            return Task.FromResult(Stat(root, target));
        }, cancellationToken);

    /// <summary>
    /// Writes a tar of <paramref name="path"/> to the stream <paramref name="begin"/> returns, once
    /// the path is known to exist (so a missing path is still a clean 404).
    /// </summary>
    public static Task<bool> ArchiveAsync(ContainerService service, ContainerEntry entry, string path, Func<ContainerPathStat, Stream> begin, CancellationToken cancellationToken)
        => service.WithContainerRootAsync(entry, root => BlockingWork.RunAsync(() =>
        {
            using ResolvedPath target = ResolveNoFollowLast(root, entry.Record.Id, path);
            ContainerPathStat stat = Stat(root, target);
            Stream output = begin(stat);
            using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
            // The entries are named after the path asked for (its last element), as dockerd rebases them.
            string name = target.BaseName;
            var hardlinks = new Dictionary<(uint, uint, ulong), string>();
            // Under --userns-remap the container's files are seen here with host ids: the archive says the container's.
            Configuration.UsernsRemap? remap = service.RemapOf(entry.Record);
            if (target.Leaf is null) WriteTree(writer, target.Directory, null, name, hardlinks, cancellationToken, remap);
            else WriteTree(writer, target.Directory, target.Leaf, name, hardlinks, cancellationToken, remap);
            return true;
        }, cancellationToken), cancellationToken);

    /// <summary>GET /containers/{id}/export: the whole root filesystem.</summary>
    public static Task<bool> ExportAsync(ContainerService service, ContainerEntry entry, Stream output, CancellationToken cancellationToken)
        => service.WithStoredRootfsAsync(entry, rootfs => BlockingWork.RunAsync(() =>
        {
            using var root = OpenRoot(rootfs);
            using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
            var hardlinks = new Dictionary<(uint, uint, ulong), string>();
            using SafeFileHandle dir = Native.OpenAt(root, ".", Native.O_RDONLY | Native.O_DIRECTORY, "/");
            foreach (string child in ListDirectory(dir))
                WriteTree(writer, dir, child, child, hardlinks, cancellationToken);
            return true;
        }, cancellationToken), cancellationToken);

    /// <summary>
    /// PUT /containers/{id}/archive: unpacks <paramref name="tar"/> into the directory
    /// <paramref name="path"/> (symlinks followed inside the rootfs).
    /// </summary>
    public static Task<bool> ExtractAsync(ContainerService service, ContainerEntry entry, string path, Stream tar, bool noOverwriteDirNonDir, CancellationToken cancellationToken)
        => service.WithContainerRootAsync(entry, async root =>
        {
            string relative = Relative(path);
            SafeFileHandle target = Native.TryOpenAt2(root, relative.Length == 0 ? "." : relative, Native.O_PATH, Native.RESOLVE_IN_ROOT | Native.RESOLVE_NO_MAGICLINKS, out int errno)
                ?? throw NotFoundOr(errno, entry.Record.Id, path);
            using (target)
            {
                Native.Statx st = Native.Stat(target, "", Native.AT_EMPTY_PATH, path);
                if (st.Type != Native.S_IFDIR)
                    throw ApiException.BadRequest("extraction point is not a directory");
                // A running container's /proc or /sys (reached through a symlink it made): berthd is root out
                // here, and must not write kernel settings the container itself may not.
                if (Native.IsKernelFileSystem(target)) throw ApiException.BadRequest($"cannot copy into {path}: it is on a kernel file system (proc, sysfs…)");
                // As dockerd (both 500): a read-only volume or bind mount refuses, and so does a read-only
                // root filesystem, where a volume or bind mount on it takes the files.
                if (PathInRoot(root, target) is { } inContainer && ContainerService.IsInReadOnlyMount(entry.Record, inContainer))
                    throw new ApiException(500, "mounted volume is marked read-only");
                if (entry.Record.HostConfig.ReadonlyRootfs && st.MountId == Native.Stat(root, "", Native.AT_EMPTY_PATH, "/").MountId)
                    throw new ApiException(500, "container rootfs is marked read-only");
                await ExtractIntoAsync(tar, target, noOverwriteDirNonDir, cancellationToken, service.RemapOf(entry.Record));
            }
            return true;
        }, cancellationToken);

    /// <summary>
    /// Checks each entry (no device nodes, no whiteout names, Docker's noOverwriteDirNonDir) while
    /// passing the archive on, through a pipe, to <see cref="LayerApplier"/>, which does the
    /// writing with its path defences. The check runs at most one pipe's worth ahead of the writes.
    /// </summary>
    private static async Task ExtractIntoAsync(Stream tar, SafeFileHandle target, bool noOverwriteDirNonDir, CancellationToken cancellationToken, Configuration.UsernsRemap? remap = null)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 1 << 19, useSynchronizationContext: false));
        Task producer = BlockingWork.RunAsync(() =>
        {
            try
            {
                using Stream output = pipe.Writer.AsStream(leaveOpen: true);
                Recheck(tar, output, target, noOverwriteDirNonDir, cancellationToken, remap);
                pipe.Writer.Complete();
            }
            catch (Exception e)
            {
                pipe.Writer.Complete(e);
                throw;
            }
        }, cancellationToken);
        Task consumer = BlockingWork.RunAsync(() =>
        {
            try
            {
                using Stream input = pipe.Reader.AsStream(leaveOpen: true);
                // The resolved directory, reopened through its fd: the applier works beneath that inode.
                LayerApplier.Apply(input, Native.ProcFdPath(target), new LayerApplyOptions { AllowDeviceNodes = false, PreserveOwnership = true }, cancellationToken);
                pipe.Reader.Complete();
            }
            catch (Exception e)
            {
                pipe.Reader.Complete(e);
                throw;
            }
        }, cancellationToken);
        try
        {
            await Task.WhenAll(producer, consumer);
        }
        catch
        {
            // The refusal that stopped the other side is the one to report.
            if (producer.Exception?.InnerException is ApiException refused) throw refused;
            if (consumer.Exception?.InnerException is { } applied) throw applied;
            throw;
        }
    }

    private static void Recheck(Stream input, Stream output, SafeFileHandle target, bool noOverwriteDirNonDir, CancellationToken cancellationToken, Configuration.UsernsRemap? remap)
    {
        try
        {
            // A compressed archive (gzip, zstd) is unpacked as dockerd's untar does, whose DecompressStream takes them.
            using Stream tar = LayerDecompression.Open(input, out _);
            RecheckEntries(tar, output, target, noOverwriteDirNonDir, cancellationToken, remap);
        }
        catch (Exception e) when (MalformedArchive.Is(e))
        {
            // A truncated or garbled tar is the client's mistake: a 400 naming it, not the .NET parser's words in a 500.
            throw ApiException.BadRequest(MalformedArchive.Error(e).Message);
        }
    }

    private static void RecheckEntries(Stream input, Stream output, SafeFileHandle target, bool noOverwriteDirNonDir, CancellationToken cancellationToken, Configuration.UsernsRemap? remap)
    {
        using var reader = new TarReader(input, leaveOpen: true);
        using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        while (reader.GetNextEntry() is { } e)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (e.EntryType is TarEntryType.ExtendedAttributes or TarEntryType.GlobalExtendedAttributes) continue;
            string name = e.Name;
            string clean = string.Join('/', name.Split('/').Where(p => p is not ("" or ".")));
            string leaf = clean[(clean.LastIndexOf('/') + 1)..];
            if (e.EntryType is TarEntryType.CharacterDevice or TarEntryType.BlockDevice)
                throw ApiException.BadRequest($"archive entry `{name}` refused: device nodes cannot be copied into a container");
            if (leaf.StartsWith(".wh.", StringComparison.Ordinal))
                throw ApiException.BadRequest($"archive entry `{name}` refused: `.wh.` names are reserved for layer whiteouts");
            if (OnKernelFileSystem(target, clean))
                throw ApiException.BadRequest($"archive entry `{name}` refused: it leads into a kernel file system (proc, sysfs…)");
            if (noOverwriteDirNonDir && clean.Length > 0 && ExistingType(target, clean) is { } existing)
            {
                bool isDir = e.EntryType == TarEntryType.Directory;
                if (existing == Native.S_IFDIR && !isDir) throw ApiException.BadRequest($"cannot overwrite directory \"/{clean}\" with non-directory \"{name}\"");
                if (existing != Native.S_IFDIR && isDir) throw ApiException.BadRequest($"cannot overwrite non-directory \"/{clean}\" with directory \"{name}\"");
            }
            var copy = new PaxTarEntry(e.EntryType is TarEntryType.V7RegularFile ? TarEntryType.RegularFile : e.EntryType, name)
            {
                Mode = e.Mode,
                Uid = remap is null ? e.Uid : HostId(remap.UidMap, e.Uid),
                Gid = remap is null ? e.Gid : HostId(remap.GidMap, e.Gid),
                ModificationTime = e.ModificationTime,
            };
            if (e.EntryType is TarEntryType.SymbolicLink or TarEntryType.HardLink) copy.LinkName = e.LinkName;
            if (e is PosixTarEntry posix && e.EntryType is TarEntryType.Fifo)
            {
                copy.DeviceMajor = posix.DeviceMajor;
                copy.DeviceMinor = posix.DeviceMinor;
            }
            if (e.DataStream is { } data && e.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                copy.DataStream = new FixedLengthStream(data, e.Length);
            writer.WriteEntry(copy);
        }
    }

    private const uint OverflowId = 65534;

    /// <summary>An archive's owner under --userns-remap: the host id of the container's, refused in dockerd's words when there is none.</summary>
    private static int HostId(IReadOnlyList<Berth.Oci.LinuxIdMapping> map, int id) =>
        id >= 0 && Configuration.UsernsRemap.ToHost(map, (uint)id) is { } host ? (int)host
            : throw ApiException.BadRequest($"Error processing tar file: Container ID {id} cannot be mapped to a host ID");

    /// <summary>Whether the directory <paramref name="relative"/> goes into exists beneath the target and is on proc, sysfs or the like.</summary>
    private static bool OnKernelFileSystem(SafeFileHandle target, string relative)
    {
        int slash = relative.LastIndexOf('/');
        using SafeFileHandle? dir = Native.TryOpenAt2(target, slash < 0 ? "." : relative[..slash], Native.O_PATH | Native.O_DIRECTORY, Native.RESOLVE_BENEATH | Native.RESOLVE_NO_MAGICLINKS, out _);
        return dir is not null && Native.IsKernelFileSystem(dir);
    }

    /// <summary>The type of what <paramref name="relative"/> names beneath the target now, or null (missing or unresolvable: the applier decides).</summary>
    private static uint? ExistingType(SafeFileHandle target, string relative)
    {
        int slash = relative.LastIndexOf('/');
        string parent = slash < 0 ? "." : relative[..slash];
        using SafeFileHandle? dir = Native.TryOpenAt2(target, parent, Native.O_PATH | Native.O_DIRECTORY, Native.RESOLVE_BENEATH | Native.RESOLVE_NO_MAGICLINKS, out _);
        if (dir is null) return null;
        return Native.TryStat(dir, relative[(slash + 1)..], Native.AT_SYMLINK_NOFOLLOW, out Native.Statx st) ? st.Type : null;
    }

    // ---- changes -------------------------------------------------------------------------------

    /// <summary>
    /// GET /containers/{id}/changes, as dockerd's overlay driver computes them: every name in the
    /// writable layer is an addition, or a modification when the image's layers have it too (a
    /// directory only copied up because something below it changed, with its size, mode and mtime
    /// unchanged, is left out but its parent rule still applies); an overlay whiteout is a
    /// deletion; the parent of an addition or deletion is reported modified. Null when none.
    /// </summary>
    public static async Task<List<ContainerChange>?> ChangesAsync(ContainerService service, ContainerEntry entry, CancellationToken cancellationToken)
    {
        await entry.Lock.WaitAsync(cancellationToken);
        try
        {
            if (entry.Removed) throw ApiException.NotFound($"No such container: {entry.Record.Id}");
            string upper = service.WritableLayer(entry);
            IReadOnlyList<string> lowers = LowerDirectories(service.Snapshotter.Mounts("container-" + entry.Record.Id));
            var changes = new List<ContainerChange>();
            var changedDirs = new HashSet<string>(StringComparer.Ordinal);
            var lowerFds = new List<SafeFileHandle>();
            try
            {
                foreach (string lower in lowers) lowerFds.Add(Native.Open(lower, Native.O_PATH | Native.O_DIRECTORY));
                using SafeFileHandle top = Native.Open(upper, Native.O_RDONLY | Native.O_DIRECTORY);
                WalkChanges(top, "", lowerFds, changes, changedDirs, cancellationToken);
                if (service.InitLayerMade(entry.Record.Id)) AddInitLayerDeletions(top, lowerFds, changes, changedDirs);
            }
            finally
            {
                foreach (SafeFileHandle fd in lowerFds) fd.Dispose();
            }
            LeaveOutMountPoints(changes);
            return changes.Count == 0 ? null : changes;
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    // What dockerd keeps in a container's init layer (below the writable one, so never a change):
    // the files the engine bind-mounts and the mount points of /dev, /proc and /sys. Berth has no
    // separate init layer: the runtime creates these mount points in the writable layer when the
    // image lacks them, and they are left out here as dockerd's diff leaves them out.
    private static readonly string[] InitLayerFiles = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/mtab", "/.dockerenv", "/dev/console"];
    private static readonly string[] InitLayerDirectories = ["/dev/pts", "/dev/shm", "/dev", "/proc", "/sys", "/etc"]; // children first

    /// <summary>
    /// Leaves the init layer's paths out of <paramref name="changes"/>: its files unless the
    /// container deleted them (dockerd's whiteout over its init layer is a deletion), its
    /// directories unless something below them changed, and then as modified (they exist below).
    /// </summary>
    private static void LeaveOutMountPoints(List<ContainerChange> changes)
    {
        changes.RemoveAll(c => c.Kind != 2 && InitLayerFiles.Contains(c.Path, StringComparer.Ordinal));
        foreach (string dir in InitLayerDirectories)
        {
            int i = changes.FindIndex(c => c.Path == dir);
            if (i < 0) continue;
            if (!changes.Any(c => c.Path.StartsWith(dir + "/", StringComparison.Ordinal))) changes.RemoveAt(i);
            else if (changes[i].Kind == 1) changes[i] = changes[i] with { Kind = 0 };
        }
    }

    private static void WalkChanges(SafeFileHandle dir, string prefix, List<SafeFileHandle> lowers, List<ContainerChange> changes, HashSet<string> changedDirs, CancellationToken cancellationToken)
    {
        foreach (string name in ListDirectory(dir))
        {
            cancellationToken.ThrowIfCancellationRequested();
            string path = prefix + "/" + name;
            Native.Statx st = Native.Stat(dir, name, Native.AT_SYMLINK_NOFOLLOW, path);
            int kind;
            if (st.Type == Native.S_IFCHR && st.RdevMajor == 0 && st.RdevMinor == 0)
            {
                kind = 2;
            }
            else
            {
                kind = 1;
                Native.Statx? lower = StatInLowers(lowers, path[1..]);
                if (lower is { } l)
                {
                    if (l.Type == Native.S_IFDIR && st.Type == Native.S_IFDIR && l.Size == st.Size && l.Mode == st.Mode && SameTime(l, st))
                        kind = -1;
                    else kind = 0;
                }
            }
            if (st.Type == Native.S_IFDIR) changedDirs.Add(path);
            if (kind is 1 or 2 && prefix.Length > 0 && changedDirs.Add(prefix))
                changes.Add(new ContainerChange(prefix, 0));
            if (kind >= 0) changes.Add(new ContainerChange(path, kind));
            if (st.Type == Native.S_IFDIR)
            {
                using SafeFileHandle child = Native.OpenAt(dir, name, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW, path);
                WalkChanges(child, path, lowers, changes, changedDirs, cancellationToken);
            }
        }
    }

    // Go's sameFsTime: equal, or equal seconds when either side lacks nanoseconds.
    private static bool SameTime(Native.Statx a, Native.Statx b)
        => a.MtimeSec == b.MtimeSec && (a.MtimeNsec == b.MtimeNsec || a.MtimeNsec == 0 || b.MtimeNsec == 0);

    /// <summary>The entry in the topmost image layer that has it (no symlink followed: lower layers are walked beneath their roots).</summary>
    private static Native.Statx? StatInLowers(List<SafeFileHandle> lowers, string relative)
    {
        int slash = relative.LastIndexOf('/');
        string parent = slash < 0 ? "." : relative[..slash];
        foreach (SafeFileHandle lower in lowers)
        {
            using SafeFileHandle? dir = Native.TryOpenAt2(lower, parent, Native.O_PATH | Native.O_DIRECTORY, Native.RESOLVE_BENEATH | Native.RESOLVE_NO_SYMLINKS, out _);
            if (dir is not null && Native.TryStat(dir, relative[(slash + 1)..], Native.AT_SYMLINK_NOFOLLOW, out Native.Statx st)) return st;
        }
        return null;
    }

    private static IReadOnlyList<string> LowerDirectories(IReadOnlyList<Mount> mounts)
    {
        foreach (Mount m in mounts)
            foreach (string option in m.Options)
                if (option.StartsWith("lowerdir=", StringComparison.Ordinal))
                    return option["lowerdir=".Length..].Split(':', StringSplitOptions.RemoveEmptyEntries);
        return [];
    }

    // ---- commit --------------------------------------------------------------------------------

    /// <summary>POST /commit: the writable layer (without the engine's /etc files) on top of the container's image.</summary>
    public static async Task<string> CommitAsync(ContainerService service, ContainerEntry entry, CommitRequest request, CancellationToken cancellationToken)
    {
        string? reference = null;
        if (!string.IsNullOrEmpty(request.Repo))
        {
            ImageReference repo;
            try
            {
                repo = ImageReference.ParseNormalized(request.Repo);
            }
            catch (ImagesException e)
            {
                throw ApiException.BadRequest(e.Message);
            }
            reference = (string.IsNullOrEmpty(request.Tag) ? repo.WithDefaultTag() : repo.WithTag(request.Tag)).ToString();
        }
        else if (!string.IsNullOrEmpty(request.Tag))
        {
            throw ApiException.BadRequest("refusing to create a tag with no repository");
        }
        ContainerConfig? changes = ImportChanges.Apply(request.Changes);

        bool paused = false;
        if (request.Pause && entry.Record.State.Running && !entry.Record.State.Paused)
        {
            await service.PauseAsync(entry.Record.Id, true, cancellationToken);
            paused = true;
        }
        try
        {
            await entry.Lock.WaitAsync(cancellationToken);
            try
            {
                if (entry.Removed) throw ApiException.NotFound($"No such container: {entry.Record.Id}");
                Berth.Images.Store.Image baseImage;
                try
                {
                    baseImage = service.Images.Get(entry.Record.ImageId);
                }
                catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
                {
                    throw ApiException.NotFound($"No such image: {entry.Record.ImageId}");
                }
                Berth.Images.Store.Image image = await service.Images.CommitAsync(service.WritableLayer(entry), baseImage, new CommitOptions
                {
                    ContainerConfig = ToImageConfig(entry.Record.Config),
                    Changes = ImageCommitter.MergeChanges(changes, request.Config),
                    Author = request.Author,
                    Message = request.Comment,
                    Container = entry.Record.Id,
                    Reference = reference,
                    KeepUntagged = true,
                    TimeProvider = service.Time,
                }, cancellationToken);
                // dockerd's Parent of a committed image: the container's image (inspect, history).
                service.Images.SetParent(image.Id, baseImage.Id);
                return image.Id.Value;
            }
            finally
            {
                entry.Lock.Release();
            }
        }
        finally
        {
            if (paused && entry.Record.State.Paused) await service.PauseAsync(entry.Record.Id, false, CancellationToken.None);
        }
    }

    /// <summary>The container's config as the image config records it.</summary>
    internal static ContainerConfig ToImageConfig(ContainerConfigJson c) => new()
    {
        User = string.IsNullOrEmpty(c.User) ? null : c.User,
        ExposedPorts = c.ExposedPorts is { Count: > 0 } p ? p.Keys.ToDictionary(k => k, _ => new EmptyObject(), StringComparer.Ordinal) : null,
        Env = c.Env,
        Entrypoint = c.Entrypoint,
        Cmd = c.Cmd,
        Volumes = c.Volumes is { Count: > 0 } v ? v.Keys.ToDictionary(k => k, _ => new EmptyObject(), StringComparer.Ordinal) : null,
        WorkingDir = string.IsNullOrEmpty(c.WorkingDir) ? null : c.WorkingDir,
        Labels = c.Labels is { Count: > 0 } l ? l : null,
        StopSignal = c.StopSignal,
        Shell = c.Shell,
        OnBuild = c.OnBuild,
        ArgsEscaped = c.ArgsEscaped ?? false,
    };

    // ---- path resolution -----------------------------------------------------------------------

    /// <summary>A path resolved in the rootfs: a directory fd and, unless the path names that directory itself, the last element in it (not followed).</summary>
    private sealed class ResolvedPath(SafeFileHandle directory, string? leaf, string baseName) : IDisposable
    {
        public SafeFileHandle Directory { get; } = directory;
        public string? Leaf { get; } = leaf;
        /// <summary>filepath.Base of the absolute path asked for: the name the archive's entries start with.</summary>
        public string BaseName { get; } = baseName;
        public void Dispose() => Directory.Dispose();
    }

    internal static SafeFileHandle OpenRoot(string rootfs) => Native.Open(Path.GetFullPath(rootfs), Native.O_PATH | Native.O_DIRECTORY);

    /// <summary>
    /// /proc/<paramref name="pid"/>/root opened, if it is the root of the container whose root filesystem
    /// <paramref name="rootfs"/> is (the same overlay directory: its processes see the same superblock and
    /// inode); null otherwise — a PID that has exited and been reused names another process's root, which
    /// must never be written to. Once opened, the fd stays on that tree whatever becomes of the PID.
    /// </summary>
    internal static SafeFileHandle? OpenProcessRoot(int pid, SafeFileHandle rootfs)
    {
        SafeFileHandle? root = Native.TryOpen($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/root", Native.O_PATH | Native.O_DIRECTORY);
        if (root is null) return null;
        Native.Statx mine = Native.Stat(root, "", Native.AT_EMPTY_PATH, "/proc/PID/root");
        Native.Statx view = Native.Stat(rootfs, "", Native.AT_EMPTY_PATH, "rootfs");
        if ((mine.DevMajor, mine.DevMinor, mine.Ino) == (view.DevMajor, view.DevMinor, view.Ino)) return root;
        root.Dispose();
        return null;
    }

    /// <summary><paramref name="path"/> (an fd's kernel path) relative to <paramref name="root"/>'s: "" for the root itself, null when not below it.</summary>
    private static string? Below(string path, string root)
        => path == root ? "" : root == "/" ? path[1..] : path.StartsWith(root + "/", StringComparison.Ordinal) ? path[(root.Length + 1)..] : null;

    /// <summary>Where <paramref name="fd"/> is in the container ("/data/x"): its kernel path below <paramref name="root"/>'s; null when not below it.</summary>
    private static string? PathInRoot(SafeFileHandle root, SafeFileHandle fd)
        => Native.ReadLink(Native.ProcFdPath(root)) is { } rootPath && Native.ReadLink(Native.ProcFdPath(fd)) is { } path && Below(path, rootPath) is { } inRoot
            ? "/" + inRoot : null;

    private static string Relative(string path) => string.Join('/', path.Split('/').Where(p => p is not ""));

    /// <summary>
    /// dockerd's ResolvePath: the directory part is resolved following symlinks (inside the root),
    /// the last element is not, unless the path ends in `/` or `/.`, which asks for the directory.
    /// </summary>
    private static ResolvedPath ResolveNoFollowLast(SafeFileHandle root, string id, string path)
    {
        if (string.IsNullOrEmpty(path)) throw ApiException.BadRequest("Path cannot be empty");
        string abs = "/" + path.TrimStart('/');
        bool wantsDirectory = abs.EndsWith('/') || abs.EndsWith("/.", StringComparison.Ordinal);
        string trimmed = abs.TrimEnd('/');
        string baseName = trimmed.Length == 0 ? "." : trimmed[(trimmed.LastIndexOf('/') + 1)..];
        ulong resolve = Native.RESOLVE_IN_ROOT | Native.RESOLVE_NO_MAGICLINKS;
        if (wantsDirectory || trimmed.Length == 0)
        {
            string rel = Relative(abs);
            SafeFileHandle dir = Native.TryOpenAt2(root, rel.Length == 0 ? "." : rel, Native.O_PATH | Native.O_DIRECTORY, resolve, out int errno)
                ?? throw NotFoundOr(errno, id, path);
            return new ResolvedPath(dir, null, baseName);
        }
        int slash = trimmed.LastIndexOf('/');
        string parent = Relative(trimmed[..slash]);
        string leaf = trimmed[(slash + 1)..];
        SafeFileHandle parentFd = Native.TryOpenAt2(root, parent.Length == 0 ? "." : parent, Native.O_PATH | Native.O_DIRECTORY, resolve, out int e2)
            ?? throw NotFoundOr(e2, id, path);
        if (leaf == ".." || !Native.TryStat(parentFd, leaf, Native.AT_SYMLINK_NOFOLLOW, out _))
        {
            // `..` as the last element: resolve it in the root (it never climbs above it) and take the directory.
            if (leaf == "..")
            {
                SafeFileHandle up = Native.TryOpenAt2(parentFd, "..", Native.O_PATH | Native.O_DIRECTORY, resolve, out int e3) ?? throw NotFoundOr(e3, id, path);
                parentFd.Dispose();
                return new ResolvedPath(up, null, baseName);
            }
            parentFd.Dispose();
            throw ApiException.NotFound($"Could not find the file {path} in container {id}");
        }
        // Inside a running container's /proc or /sys: dockerd's view has the mount points only.
        if (Native.IsKernelFileSystem(parentFd))
        {
            parentFd.Dispose();
            throw ApiException.NotFound($"Could not find the file {path} in container {id}");
        }
        return new ResolvedPath(parentFd, leaf, baseName);
    }

    private static ApiException NotFoundOr(int errno, string id, string path) => errno switch
    {
        Native.ENOENT or Native.ENOTDIR => ApiException.NotFound($"Could not find the file {path} in container {id}"),
        Native.ELOOP => ApiException.BadRequest($"{path}: too many levels of symbolic links"),
        _ => new ApiException(500, $"resolving {path} in container {id}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})"),
    };

    private static ContainerPathStat Stat(SafeFileHandle root, ResolvedPath target)
    {
        Native.Statx st = target.Leaf is null
            ? Native.Stat(target.Directory, "", Native.AT_EMPTY_PATH, target.BaseName)
            : Native.Stat(target.Directory, target.Leaf, Native.AT_SYMLINK_NOFOLLOW, target.BaseName);
        string linkTarget = "";
        if (st.Type == Native.S_IFLNK)
        {
            // Where the link leads inside the container, as dockerd's GetResourcePath finds it;
            // the link's own text when it dangles.
            linkTarget = Native.ReadLinkAt(target.Directory, target.Leaf!);
            using SafeFileHandle? full = ResolveFollowingInRoot(root, target.Directory, target.Leaf!);
            if (full is not null && Native.ReadLink(Native.ProcFdPath(root)) is { } rootPath
                && Native.ReadLink(Native.ProcFdPath(full)) is { } host && Below(host, rootPath) is { } inRoot)
                linkTarget = "/" + inRoot;
        }
        return new ContainerPathStat(target.BaseName, (long)st.Size, GoFileMode(st), GoTime(st.MtimeSec, st.MtimeNsec), linkTarget);
    }

    /// <summary>The symlink <paramref name="leaf"/> in <paramref name="dir"/> resolved completely inside the root; null when dangling.</summary>
    private static SafeFileHandle? ResolveFollowingInRoot(SafeFileHandle root, SafeFileHandle dir, string leaf)
    {
        string? dirHost = Native.ReadLink(Native.ProcFdPath(dir));
        string? rootHost = Native.ReadLink(Native.ProcFdPath(root));
        if (dirHost is null || rootHost is null) return null;
        string dirInRoot = Below(dirHost, rootHost) ?? "";
        string rel = dirInRoot.Length == 0 ? leaf : dirInRoot + "/" + leaf;
        return Native.TryOpenAt2(root, rel, Native.O_PATH, Native.RESOLVE_IN_ROOT | Native.RESOLVE_NO_MAGICLINKS, out _);
    }

    /// <summary>Go's os.FileMode: permission bits plus type and set-id/sticky flags in the high bits.</summary>
    internal static uint GoFileMode(Native.Statx st)
    {
        uint mode = st.Mode & 0x1FFu;
        mode |= st.Type switch
        {
            Native.S_IFDIR => 1u << 31,
            Native.S_IFLNK => 1u << 27,
            Native.S_IFBLK => 1u << 26,
            Native.S_IFCHR => (1u << 26) | (1u << 21),
            Native.S_IFIFO => 1u << 25,
            Native.S_IFSOCK => 1u << 24,
            _ => 0u,
        };
        if ((st.Mode & 0x800) != 0) mode |= 1u << 23; // setuid
        if ((st.Mode & 0x400) != 0) mode |= 1u << 22; // setgid
        if ((st.Mode & 0x200) != 0) mode |= 1u << 20; // sticky
        return mode;
    }

    /// <summary>Go's time.Time JSON (RFC 3339 with nanoseconds, trailing zeros dropped), in UTC.</summary>
    internal static string GoTime(long seconds, uint nanoseconds)
    {
        string text = DateTimeOffset.FromUnixTimeSeconds(seconds).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        if (nanoseconds != 0) text += "." + nanoseconds.ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0');
        return text + "Z";
    }

    // ---- tar writing ---------------------------------------------------------------------------

    /// <summary>Names in a directory fd, ordinal order, listed through the fd (never by a path that could be swapped).</summary>
    private static List<string> ListDirectory(SafeFileHandle dir)
    {
        var names = new List<string>();
        foreach (string p in Directory.EnumerateFileSystemEntries(Native.ProcFdPath(dir)))
            names.Add(Path.GetFileName(p));
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>
    /// Archives <paramref name="leaf"/> of <paramref name="parent"/> (or <paramref name="parent"/>
    /// itself when null) under <paramref name="name"/>, and a directory's contents below it.
    /// </summary>
    private static void WriteTree(TarWriter writer, SafeFileHandle parent, string? leaf, string name,
        Dictionary<(uint, uint, ulong), string> hardlinks, CancellationToken cancellationToken, Configuration.UsernsRemap? remap = null)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Native.Statx st = leaf is null
            ? Native.Stat(parent, "", Native.AT_EMPTY_PATH, name)
            : Native.Stat(parent, leaf, Native.AT_SYMLINK_NOFOLLOW, name);
        PaxTarEntry Entry(TarEntryType type, string entryName) => new(type, entryName)
        {
            Mode = (UnixFileMode)(st.Mode & 0xFFFu),
            // A host id outside the container's ranges is nobody there (the kernel's overflow id).
            Uid = remap is null ? (int)st.Uid : (int)(Configuration.UsernsRemap.ToContainer(remap.UidMap, st.Uid) ?? OverflowId),
            Gid = remap is null ? (int)st.Gid : (int)(Configuration.UsernsRemap.ToContainer(remap.GidMap, st.Gid) ?? OverflowId),
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(st.MtimeSec),
        };
        switch (st.Type)
        {
            case Native.S_IFDIR:
                using (SafeFileHandle dir = Native.OpenAt(parent, leaf ?? ".", Native.O_RDONLY | Native.O_DIRECTORY | Native.O_NOFOLLOW, name))
                {
                    writer.WriteEntry(Entry(TarEntryType.Directory, name.TrimEnd('/') + "/"));
                    if (Native.IsKernelFileSystem(dir)) break; // a running container's /proc, /sys…: the mount point only
                    string prefix = name.TrimEnd('/') + "/";
                    foreach (string child in ListDirectory(dir))
                        WriteTree(writer, dir, child, prefix + child, hardlinks, cancellationToken, remap);
                }
                break;

            case Native.S_IFREG:
                if (st.Nlink > 1)
                {
                    var key = (st.DevMajor, st.DevMinor, st.Ino);
                    if (hardlinks.TryGetValue(key, out string? first))
                    {
                        PaxTarEntry link = Entry(TarEntryType.HardLink, name);
                        link.LinkName = first;
                        writer.WriteEntry(link);
                        break;
                    }
                    hardlinks[key] = name;
                }
                // O_NONBLOCK: if the name was swapped for a FIFO since the stat, opening must not hang.
                using (SafeFileHandle file = Native.OpenAt(parent, leaf ?? ".", Native.O_RDONLY | Native.O_NOFOLLOW | Native.O_NONBLOCK | Native.O_NOCTTY, name))
                {
                    Native.Statx opened = Native.Stat(file, "", Native.AT_EMPTY_PATH, name);
                    if (opened.Type != Native.S_IFREG || opened.Ino != st.Ino) throw new ApiException(409, $"{name} changed while being archived");
                    using var data = new FileStream(file, FileAccess.Read, bufferSize: 0);
                    PaxTarEntry entry = Entry(TarEntryType.RegularFile, name);
                    // The size is fixed at the stat: a file growing or shrinking meanwhile cannot corrupt the archive.
                    entry.DataStream = new FixedLengthStream(data, (long)st.Size);
                    writer.WriteEntry(entry);
                }
                break;

            case Native.S_IFLNK:
            {
                PaxTarEntry entry = Entry(TarEntryType.SymbolicLink, name);
                entry.LinkName = Native.ReadLinkAt(parent, leaf ?? "");
                writer.WriteEntry(entry);
                break;
            }

            case Native.S_IFCHR or Native.S_IFBLK or Native.S_IFIFO:
            {
                PaxTarEntry entry = Entry(st.Type switch
                {
                    Native.S_IFCHR => TarEntryType.CharacterDevice,
                    Native.S_IFBLK => TarEntryType.BlockDevice,
                    _ => TarEntryType.Fifo,
                }, name);
                if (st.Type != Native.S_IFIFO)
                {
                    entry.DeviceMajor = (int)st.RdevMajor;
                    entry.DeviceMinor = (int)st.RdevMinor;
                }
                writer.WriteEntry(entry);
                break;
            }

            default:
                break; // sockets, as Docker
        }
    }

    /// <summary>Exactly <c>length</c> bytes of the inner stream: cut if it grew, zero-padded if it shrank; seekable only to report its length.</summary>
    private sealed class FixedLengthStream(Stream inner, long length) : Stream
    {
        private long _position;
        private bool _innerEnded;

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;

        public override long Position
        {
            get => _position;
            set
            {
                if (value != _position) throw new NotSupportedException();
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            long left = length - _position;
            if (left <= 0) return 0;
            Span<byte> want = buffer[..(int)Math.Min(buffer.Length, left)];
            int n = _innerEnded ? 0 : inner.Read(want);
            if (n == 0)
            {
                _innerEnded = true;
                want.Clear();
                n = want.Length;
            }
            _position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            long target = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => length + offset,
            };
            if (target != _position) throw new NotSupportedException();
            return _position;
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    // ---- native calls --------------------------------------------------------------------------

    internal static unsafe partial class Native
    {
        private const string Libc = "libc";
        public const int ENOENT = 2, ENOTDIR = 20, ELOOP = 40, EINTR = 4, EAGAIN = 11, EXDEV = 18, ENOSYS = 38;
        public const int O_RDONLY = 0, O_NOCTTY = 0x100, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000, O_PATH = 0x200000;
        private static readonly bool IsArm = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm;
        public static readonly int O_DIRECTORY = IsArm ? 0x4000 : 0x10000;
        public static readonly int O_NOFOLLOW = IsArm ? 0x8000 : 0x20000;
        public const int AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000;
        public const ulong RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_NO_SYMLINKS = 0x04, RESOLVE_BENEATH = 0x08, RESOLVE_IN_ROOT = 0x10;
        public const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000, S_IFLNK = 0xA000, S_IFREG = 0x8000, S_IFBLK = 0x6000, S_IFDIR = 0x4000, S_IFCHR = 0x2000, S_IFIFO = 0x1000;
        private const long SYS_openat2 = 437;
        private const uint STATX_BASIC_STATS = 0x7ff, STATX_MNT_ID = 0x1000;

        [StructLayout(LayoutKind.Sequential)]
        private struct OpenHow
        {
            public ulong Flags;
            public ulong Mode;
            public ulong Resolve;
        }

        [StructLayout(LayoutKind.Explicit, Size = 256)]
        public struct Statx
        {
            [FieldOffset(16)] public uint Nlink;
            [FieldOffset(20)] public uint Uid;
            [FieldOffset(24)] public uint Gid;
            [FieldOffset(28)] public ushort Mode;
            [FieldOffset(32)] public ulong Ino;
            [FieldOffset(40)] public ulong Size;
            [FieldOffset(112)] public long MtimeSec;
            [FieldOffset(120)] public uint MtimeNsec;
            [FieldOffset(128)] public uint RdevMajor;
            [FieldOffset(132)] public uint RdevMinor;
            [FieldOffset(136)] public uint DevMajor;
            [FieldOffset(140)] public uint DevMinor;
            [FieldOffset(144)] public ulong MountId;

            public readonly uint Type => Mode & S_IFMT;
        }

        [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
        private static partial long syscall_openat2(long number, int dirfd, byte* path, OpenHow* how, nuint size);

        [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int open(string path, int flags, uint mode);

        [LibraryImport(Libc, EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int openat(SafeFileHandle dirfd, string path, int flags, uint mode);

        [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int statx(SafeFileHandle dirfd, string path, int flags, uint mask, Statx* buf);

        [LibraryImport(Libc, EntryPoint = "readlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial nint readlinkat(SafeFileHandle dirfd, string path, byte* buf, nuint size);

        [LibraryImport(Libc, EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial nint readlink(string path, byte* buf, nuint size);

        [LibraryImport(Libc, EntryPoint = "fchownat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int fchownat(SafeFileHandle dirfd, string path, uint owner, uint group, int flags);

        public static void ChownAt(SafeFileHandle dir, string path, uint uid, uint gid, int flags, string display)
        {
            if (fchownat(dir, path, uid, gid, flags) < 0) throw Error($"chown to {uid}:{gid}", display);
        }

        public static string ProcFdPath(SafeFileHandle fd) => "/proc/self/fd/" + fd.DangerousGetHandle().ToInt32().ToString(CultureInfo.InvariantCulture);

        private static Exception Error(string op, string path)
        {
            int errno = Marshal.GetLastPInvokeError();
            return new IOException($"{op} `{path}`: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }

        public static SafeFileHandle Open(string path, int flags) => TryOpen(path, flags) ?? throw Error("open", path);

        [LibraryImport(Libc, EntryPoint = "fstatfs", SetLastError = true)]
        private static partial int fstatfs(SafeFileHandle fd, byte* buf);

        // statfs f_type of the kernel's own file systems, whose contents are no files to archive.
        private static readonly HashSet<long> KernelFileSystems =
        [
            0x9fa0, 0x62656572, 0x1cd1, 0x19800202, 0x27e0eb, 0x63677270, // proc, sysfs, devpts, mqueue, cgroup, cgroup2
            0xcafe4a11, 0x64626720, 0x74726163, 0x73636673, 0x62656570, 0x65735543, // bpf, debugfs, tracefs, securityfs, configfs, fusectl
        ];

        /// <summary>Whether the directory <paramref name="dir"/> is on proc, sysfs, devpts, mqueue, a cgroup file system or the like.</summary>
        public static bool IsKernelFileSystem(SafeFileHandle dir)
        {
            byte* buf = stackalloc byte[128]; // struct statfs: f_type (a long on 64-bit Linux) comes first
            return fstatfs(dir, buf) == 0 && KernelFileSystems.Contains(*(long*)buf);
        }

        public static SafeFileHandle? TryOpen(string path, int flags)
        {
            int fd = open(path, flags | O_CLOEXEC, 0);
            return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
        }

        public static SafeFileHandle OpenAt(SafeFileHandle dir, string path, int flags, string display, uint mode = 0)
        {
            int fd = openat(dir, path, flags | O_CLOEXEC, mode);
            return fd < 0 ? throw Error("openat", display) : new SafeFileHandle(fd, ownsHandle: true);
        }

        public static SafeFileHandle? TryOpenAt2(SafeFileHandle dir, string path, int flags, ulong resolve, out int errno)
        {
            OpenHow how = new() { Flags = (ulong)(flags | O_CLOEXEC), Resolve = resolve };
            byte[] bytes = Encoding.UTF8.GetBytes(path + "\0");
            bool added = false;
            try
            {
                dir.DangerousAddRef(ref added);
                long fd;
                fixed (byte* p = bytes)
                {
                    do fd = syscall_openat2(SYS_openat2, (int)dir.DangerousGetHandle(), p, &how, (nuint)sizeof(OpenHow));
                    while (fd < 0 && Marshal.GetLastPInvokeError() is EINTR or EAGAIN);
                }
                errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
                return fd < 0 ? null : new SafeFileHandle((nint)fd, ownsHandle: true);
            }
            finally
            {
                if (added) dir.DangerousRelease();
            }
        }

        public static bool TryStat(SafeFileHandle dir, string path, int flags, out Statx st)
        {
            Statx s;
            int r = statx(dir, path, flags, STATX_BASIC_STATS | STATX_MNT_ID, &s);
            st = s;
            return r == 0;
        }

        public static Statx Stat(SafeFileHandle dir, string path, int flags, string display)
            => TryStat(dir, path, flags, out Statx st) ? st : throw Error("statx", display);

        public static string ReadLinkAt(SafeFileHandle dir, string path)
        {
            byte[] buf = new byte[4096];
            nint n;
            fixed (byte* p = buf) n = readlinkat(dir, path, p, (nuint)buf.Length);
            return n < 0 ? throw Error("readlinkat", path) : Encoding.UTF8.GetString(buf, 0, (int)n);
        }

        public static string? ReadLink(string path)
        {
            byte[] buf = new byte[4096];
            nint n;
            fixed (byte* p = buf) n = readlink(path, p, (nuint)buf.Length);
            return n < 0 ? null : Encoding.UTF8.GetString(buf, 0, (int)n);
        }
    }
}
