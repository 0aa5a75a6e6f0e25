using System.Runtime.InteropServices;
using Berth.Daemon.Api;
using Microsoft.Win32.SafeHandles;

namespace Berth.Daemon.Containers;

public static partial class ContainerFiles
{
    // dockerd's init layer (moby daemon/initlayer): files every container has whatever its image,
    // which programs look for — /.dockerenv is how scripts tell they run in a Docker container,
    // /etc/mtab is what older mount/df read. The mount points of /proc, /sys and the /etc files
    // the engine bind-mounts come from the runtime; these are the rest. /dev/pts, /dev/shm and
    // /dev/console lie under the runtime's /dev tmpfs in a running container and show in `export`.
    private enum InitLayerKind { Directory, File, Symlink }

    private const uint InitLayerMode = 0x1ED; // 0755, before the umask, as dockerd creates them

    private static readonly (string Directory, string Name, InitLayerKind Kind, string? Target)[] InitLayerEntries =
    [
        ("", ".dockerenv", InitLayerKind.File, null),
        ("etc", "mtab", InitLayerKind.Symlink, "/proc/mounts"),
        ("dev", "pts", InitLayerKind.Directory, null),
        ("dev", "shm", InitLayerKind.Directory, null),
        ("dev", "console", InitLayerKind.File, null),
    ];

    /// <summary>
    /// Creates in the mounted rootfs <paramref name="rootfs"/> what dockerd's init layer holds and
    /// the image lacks (root-owned, 0755 as dockerd makes them); what the image has is left as it
    /// is. The writes land in the container's writable layer, so diff and commit leave these paths
    /// out (<see cref="InitLayerFiles"/>, CommitOptions). Done at a container's first mount only
    /// (dockerd makes its init layer once, at create): a path the container deletes afterwards
    /// stays deleted, as below dockerd's whiteout, though deleting a name that only the writable
    /// layer has leaves no whiteout behind (<see cref="AddInitLayerDeletions"/>).
    /// </summary>
    internal static void AddInitLayer(string rootfs)
    {
        using SafeFileHandle root = OpenRoot(rootfs);
        foreach ((string directory, string name, InitLayerKind kind, string? target) in InitLayerEntries)
        {
            // Resolved inside the rootfs: an image whose /etc or /dev is a symlink to a host path
            // gets the entry inside its own tree, never on the host.
            using SafeFileHandle? parent = OpenOrMakeDirectoryInRoot(root, directory);
            if (parent is null || Native.TryStat(parent, name, Native.AT_SYMLINK_NOFOLLOW, out _)) continue;
            string display = "/" + (directory.Length == 0 ? name : directory + "/" + name);
            switch (kind)
            {
                case InitLayerKind.Directory:
                    Native.MakeDirectoryAt(parent, name, InitLayerMode, display);
                    break;
                case InitLayerKind.File:
                    Native.OpenAt(parent, name, Native.O_WRONLY | Native.O_CREAT | Native.O_EXCL | Native.O_NOFOLLOW, display, InitLayerMode).Dispose();
                    break;
                case InitLayerKind.Symlink:
                    Native.SymlinkAt(target!, parent, name, display);
                    break;
            }
        }
    }

    /// <summary>
    /// Under --userns-remap, <see cref="AddInitLayer"/> runs as the host's root, whose files the remapped
    /// container sees as owned by nobody: what it made (owned by 0 in this view) is given to the
    /// container's root, as dockerd's init layer is made owned by the remapped root.
    /// </summary>
    internal static void GiveInitLayerTo(string rootfs, uint uid, uint gid)
    {
        using SafeFileHandle root = OpenRoot(rootfs);
        const ulong resolve = Native.RESOLVE_IN_ROOT | Native.RESOLVE_NO_MAGICLINKS;
        var directories = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string directory, string name, _, _) in InitLayerEntries)
        {
            using SafeFileHandle? parent = Native.TryOpenAt2(root, directory.Length == 0 ? "." : directory, Native.O_PATH | Native.O_DIRECTORY, resolve, out _);
            if (parent is null) continue;
            if (directory.Length > 0 && directories.Add(directory) && Native.Stat(parent, "", Native.AT_EMPTY_PATH, directory).Uid == 0)
                Native.ChownAt(parent, "", uid, gid, Native.AT_EMPTY_PATH, "/" + directory);
            if (Native.TryStat(parent, name, Native.AT_SYMLINK_NOFOLLOW, out Native.Statx st) && st.Uid == 0)
                Native.ChownAt(parent, name, uid, gid, Native.AT_SYMLINK_NOFOLLOW, "/" + (directory.Length == 0 ? name : directory + "/" + name));
        }
    }

    /// <summary>
    /// For changes: an init-layer path made at the container's first mount that neither its
    /// writable layer nor its image has now was deleted by the container, a deletion in dockerd's
    /// diff against its init layer (and its directory changed). <paramref name="upper"/> and
    /// <paramref name="lowers"/> are walked beneath their roots, no symlink followed.
    /// </summary>
    private static void AddInitLayerDeletions(SafeFileHandle upper, List<SafeFileHandle> lowers, List<ContainerChange> changes, HashSet<string> changedDirs)
    {
        const ulong beneath = Native.RESOLVE_BENEATH | Native.RESOLVE_NO_SYMLINKS;
        foreach ((string directory, string name, _, _) in InitLayerEntries)
        {
            string relative = directory.Length == 0 ? name : directory + "/" + name;
            using SafeFileHandle? inUpper = Native.TryOpenAt2(upper, directory.Length == 0 ? "." : directory, Native.O_PATH | Native.O_DIRECTORY, beneath, out _);
            if (inUpper is not null && Native.TryStat(inUpper, name, Native.AT_SYMLINK_NOFOLLOW, out _)) continue; // there, or a whiteout: walked
            if (StatInLowers(lowers, relative) is not null) continue; // the image's, not deleted
            // Its directory must still be there: a deleted directory is the deletion to report.
            if (directory.Length > 0 && inUpper is null && StatInLowers(lowers, directory) is null) continue;
            changes.Add(new ContainerChange("/" + relative, 2));
            if (directory.Length > 0 && changedDirs.Add("/" + directory)) changes.Add(new ContainerChange("/" + directory, 0));
        }
    }

    // null when the directory's path in the image is something other than a directory (a file, a
    // dangling link): dockerd's init layer would shadow it, Berth leaves the image's entry alone.
    private static SafeFileHandle? OpenOrMakeDirectoryInRoot(SafeFileHandle root, string directory)
    {
        const ulong resolve = Native.RESOLVE_IN_ROOT | Native.RESOLVE_NO_MAGICLINKS;
        SafeFileHandle? dir = Native.TryOpenAt2(root, directory.Length == 0 ? "." : directory, Native.O_PATH | Native.O_DIRECTORY, resolve, out int errno);
        if (dir is not null || errno != Native.ENOENT || directory.Contains('/')) return dir;
        if (Native.TryStat(root, directory, Native.AT_SYMLINK_NOFOLLOW, out _)) return null; // a dangling symlink
        Native.MakeDirectoryAt(root, directory, InitLayerMode, "/" + directory);
        return Native.TryOpenAt2(root, directory, Native.O_PATH | Native.O_DIRECTORY, resolve, out _);
    }

    internal static unsafe partial class Native
    {
        public const int O_WRONLY = 1, O_CREAT = 0x40, O_EXCL = 0x80;

        [LibraryImport(Libc, EntryPoint = "mkdirat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int mkdirat(SafeFileHandle dirfd, string path, uint mode);

        [LibraryImport(Libc, EntryPoint = "symlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int symlinkat(string target, SafeFileHandle dirfd, string path);

        public static void MakeDirectoryAt(SafeFileHandle dir, string path, uint mode, string display)
        {
            if (mkdirat(dir, path, mode) < 0) throw Error("mkdirat", display);
        }

        public static void SymlinkAt(string target, SafeFileHandle dir, string path, string display)
        {
            if (symlinkat(target, dir, path) < 0) throw Error("symlinkat", display);
        }
    }
}
