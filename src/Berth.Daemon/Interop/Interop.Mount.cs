namespace Berth.Daemon;

/// <summary>mount(2), umount2(2) and the ownership calls the volume store needs.</summary>
internal static partial class Interop
{
    internal const ulong MS_RDONLY = 0x1, MS_NOSUID = 0x2, MS_NODEV = 0x4, MS_NOEXEC = 0x8, MS_SYNCHRONOUS = 0x10, MS_REMOUNT = 0x20,
        MS_MANDLOCK = 0x40, MS_DIRSYNC = 0x80, MS_NOATIME = 0x400, MS_NODIRATIME = 0x800, MS_BIND = 0x1000, MS_REC = 0x4000,
        MS_PRIVATE = 0x40000, MS_SLAVE = 0x80000, MS_SHARED = 0x100000, MS_RELATIME = 0x200000, MS_STRICTATIME = 0x1000000;

    internal const int MNT_DETACH = 2, UMOUNT_NOFOLLOW = 8;
    internal const int EINVAL = 22, EBUSY = 16, ENOENT = 2;

    [LibraryImport(Libc, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mount(string source, string target, string? fstype, ulong flags, string? data);

    [LibraryImport(Libc, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int umount2(string target, int flags);

    [LibraryImport(Libc, EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int lchown(string path, int owner, int group);

    internal const uint STATX_UID = 0x8, STATX_GID = 0x10;

    /// <summary>The owner of <paramref name="path"/> (not following a last symlink); null when it cannot be read.</summary>
    internal static unsafe (int Uid, int Gid)? Owner(string path)
    {
        byte* buffer = stackalloc byte[256];
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_UID | STATX_GID, buffer) < 0) return null;
        // struct statx: stx_mask u32, stx_blksize u32, stx_attributes u64, stx_nlink u32, stx_uid u32, stx_gid u32
        return (*(int*)(buffer + 20), *(int*)(buffer + 24));
    }

    private const uint STATX_BASIC_STATS = 0x7ff;
    private const ulong STATX_ATTR_MOUNT_ROOT = 0x2000;

    /// <summary>
    /// Whether <paramref name="path"/> is the root of a mount (statx's STATX_ATTR_MOUNT_ROOT,
    /// Linux 5.8): one syscall instead of reading and splitting /proc/self/mountinfo, which
    /// grows with every container and was read at each container's start and exit. False when
    /// the path does not exist; null when the kernel does not report the attribute.
    /// </summary>
    internal static unsafe bool? IsMountRoot(string path)
    {
        byte* buffer = stackalloc byte[256];
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, buffer) < 0) return false;
        // struct statx: stx_attributes u64 at 8, stx_attributes_mask u64 at 56.
        ulong attributes = *(ulong*)(buffer + 8), supported = *(ulong*)(buffer + 56);
        if ((supported & STATX_ATTR_MOUNT_ROOT) == 0) return null;
        return (attributes & STATX_ATTR_MOUNT_ROOT) != 0;
    }
}
