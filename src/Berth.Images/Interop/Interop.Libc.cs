using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;

namespace Berth.Images;

/// <summary>
/// Every native call of Berth.Images, in one place (the dotnet/runtime Interop.Sys pattern).
/// Raw entry points return -1 and set errno; the <c>Checked</c> helpers below turn that into a
/// <see cref="NativeCallException"/> naming the operation and the path.
/// </summary>
internal static unsafe partial class Interop
{
    private const string Libc = "libc";

    internal static class Errno
    {
        public const int EPERM = 1, ENOENT = 2, EINTR = 4, E2BIG = 7, EBADF = 9, EAGAIN = 11, EACCES = 13, EBUSY = 16,
            EEXIST = 17, EXDEV = 18, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENOSPC = 28, ENOSYS = 38, ENOTEMPTY = 39,
            ELOOP = 40, ENODATA = 61, EOPNOTSUPP = 95;
    }

    // open(2) flags. O_DIRECTORY and O_NOFOLLOW differ between x86-64 and the asm-generic architectures.
    internal const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_NOCTTY = 0x100,
        O_TRUNC = 0x200, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000, O_PATH = 0x200000;
    internal static readonly int O_DIRECTORY = IsArm ? 0x4000 : 0x10000;
    internal static readonly int O_NOFOLLOW = IsArm ? 0x8000 : 0x20000;
    private static bool IsArm => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm;

    internal const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200, AT_EMPTY_PATH = 0x1000;

    // openat2(2) resolve flags.
    internal const ulong RESOLVE_NO_XDEV = 0x01, RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_NO_SYMLINKS = 0x04,
        RESOLVE_BENEATH = 0x08, RESOLVE_IN_ROOT = 0x10;

    internal const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000, S_IFLNK = 0xA000, S_IFREG = 0x8000, S_IFBLK = 0x6000,
        S_IFDIR = 0x4000, S_IFCHR = 0x2000, S_IFIFO = 0x1000;

    internal const int LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    internal const ulong MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_REMOUNT = 32, MS_BIND = 4096, MS_REC = 16384;
    internal const int MNT_DETACH = 2, UMOUNT_NOFOLLOW = 8;
    internal const int CLONE_FS = 0x200;
    internal const long UTIME_OMIT = (1L << 30) - 2;

    private const long SYS_openat2 = 437; // the same number on every architecture (asm-generic table, kernel >= 5.6)

    [StructLayout(LayoutKind.Sequential)]
    internal struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct Timespec
    {
        public long Sec;
        public long Nsec;
    }

    /// <summary>struct statx: the same layout on every architecture, unlike struct stat.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    internal struct Statx
    {
        [FieldOffset(0)] public uint Mask;
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

        public readonly uint Type => Mode & S_IFMT;
        public readonly uint Permissions => Mode & 0xFFFu;
        public readonly bool IsDirectory => Type == S_IFDIR;
    }

    internal const uint STATX_BASIC_STATS = 0x7ff;

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, uint mode);

    [LibraryImport(Libc, EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int openat(SafeFileHandle dirfd, string path, int flags, uint mode);

    [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall_openat2(long number, int dirfd, byte* path, OpenHow* how, nuint size);

    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    private static partial int ioctl_flags(SafeFileHandle fd, nuint request, int* flags);

    // FS_IOC_GETFLAGS / FS_IOC_SETFLAGS (_IOR/_IOW('f', 1/2, long): the kernel reads an int) and
    // FS_TOPDIR_FL, chattr's +T.
    private const nuint FS_IOC_GETFLAGS = 0x80086601, FS_IOC_SETFLAGS = 0x40086602;
    internal const int FS_TOPDIR_FL = 0x00020000;

    /// <summary>The directory's inode flags (chattr's), or null where the filesystem has none (tmpfs, overlayfs…).</summary>
    internal static int? GetInodeFlags(string directory)
    {
        using SafeFileHandle fd = Open(directory, O_RDONLY | O_DIRECTORY);
        int flags;
        return ioctl_flags(fd, FS_IOC_GETFLAGS, &flags) < 0 ? null : flags;
    }

    /// <summary>Sets chattr's +T on a directory; false where the filesystem does not take it (nothing changes then).</summary>
    internal static bool TrySetTopDirectory(string directory)
    {
        using SafeFileHandle fd = Open(directory, O_RDONLY | O_DIRECTORY);
        int flags;
        if (ioctl_flags(fd, FS_IOC_GETFLAGS, &flags) < 0) return false;
        if ((flags & FS_TOPDIR_FL) != 0) return true;
        flags |= FS_TOPDIR_FL;
        return ioctl_flags(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }

    [LibraryImport(Libc, EntryPoint = "mkdirat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mkdirat(SafeFileHandle dirfd, string path, uint mode);

    [LibraryImport(Libc, EntryPoint = "mknodat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mknodat(SafeFileHandle dirfd, string path, uint mode, ulong dev);

    [LibraryImport(Libc, EntryPoint = "symlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int symlinkat(string target, SafeFileHandle dirfd, string path);

    [LibraryImport(Libc, EntryPoint = "linkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int linkat(SafeFileHandle olddirfd, string oldpath, SafeFileHandle newdirfd, string newpath, int flags);

    [LibraryImport(Libc, EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int unlinkat(SafeFileHandle dirfd, string path, int flags);

    [LibraryImport(Libc, EntryPoint = "renameat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int renameat(SafeFileHandle olddirfd, string oldpath, SafeFileHandle newdirfd, string newpath);

    [LibraryImport(Libc, EntryPoint = "readlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint readlinkat(SafeFileHandle dirfd, string path, byte* buf, nuint size);

    [LibraryImport(Libc, EntryPoint = "fchownat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int fchownat(SafeFileHandle dirfd, string path, uint uid, uint gid, int flags);

    [LibraryImport(Libc, EntryPoint = "fchmod", SetLastError = true)]
    internal static partial int fchmod(SafeFileHandle fd, uint mode);

    [LibraryImport(Libc, EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int chmod(string path, uint mode);

    [LibraryImport(Libc, EntryPoint = "utimensat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int utimensat(SafeFileHandle dirfd, string path, Timespec* times, int flags);

    [LibraryImport(Libc, EntryPoint = "futimens", SetLastError = true)]
    internal static partial int futimens(SafeFileHandle fd, Timespec* times);

    [LibraryImport(Libc, EntryPoint = "fchmodat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int fchmodat(SafeFileHandle dirfd, string path, uint mode, int flags = 0);

    /// <summary>Sets atime and mtime to <paramref name="unixNanoseconds"/>: of the fd itself when <paramref name="leaf"/> is empty.</summary>
    internal static int SetTimes(SafeFileHandle dir, string leaf, long unixNanoseconds, int flags)
    {
        Timespec* times = stackalloc Timespec[2];
        times[0] = times[1] = new Timespec { Sec = Math.DivRem(unixNanoseconds, 1_000_000_000, out long ns), Nsec = ns };
        if (times[0].Nsec < 0)
        {
            times[0].Sec--;
            times[0].Nsec += 1_000_000_000;
            times[1] = times[0];
        }
        return leaf.Length == 0 ? futimens(dir, times) : utimensat(dir, leaf, times, flags & AT_SYMLINK_NOFOLLOW);
    }

    [LibraryImport(Libc, EntryPoint = "fsetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int fsetxattr(SafeFileHandle fd, string name, byte* value, nuint size, int flags);

    [LibraryImport(Libc, EntryPoint = "setxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int setxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport(Libc, EntryPoint = "listxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint listxattr(string path, byte* list, nuint size);

    [LibraryImport(Libc, EntryPoint = "getxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint getxattr(string path, string name, byte* value, nuint size);

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int statx(SafeFileHandle dirfd, string path, int flags, uint mask, Statx* buf);

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int statx(int dirfd, string path, int flags, uint mask, Statx* buf);

    [LibraryImport(Libc, EntryPoint = "getdents64", SetLastError = true)]
    internal static partial nint getdents64(SafeFileHandle fd, byte* buf, nuint count);

    [LibraryImport(Libc, EntryPoint = "fsync", SetLastError = true)]
    internal static partial int fsync(SafeFileHandle fd);

    [LibraryImport(Libc, EntryPoint = "syncfs", SetLastError = true)]
    internal static partial int syncfs(SafeFileHandle fd);

    [LibraryImport(Libc, EntryPoint = "flock", SetLastError = true)]
    internal static partial int flock(SafeFileHandle fd, int operation);

    [LibraryImport(Libc, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mount(string source, string target, string? fstype, ulong flags, string? data);

    [LibraryImport(Libc, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int umount2(string target, int flags);

    [LibraryImport(Libc, EntryPoint = "unshare", SetLastError = true)]
    internal static partial int unshare(int flags);

    [LibraryImport(Libc, EntryPoint = "chdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int chdir(string path);

    internal static int LastErrno => Marshal.GetLastPInvokeError();

    internal static NativeCallException Error(string operation, string path, string? context = null)
        => new(LastErrno, operation, path, context);

    /// <summary>open(2) an absolute host path, always O_CLOEXEC.</summary>
    internal static SafeFileHandle Open(string path, int flags, uint mode = 0)
    {
        int fd;
        do fd = open(path, flags | O_CLOEXEC, mode); while (fd < 0 && LastErrno == Errno.EINTR);
        if (fd < 0) throw Error("open", path);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>openat(2) relative to a directory fd, always O_CLOEXEC. Returns null and the errno on failure.</summary>
    internal static SafeFileHandle? TryOpenAt(SafeFileHandle dir, string path, int flags, uint mode, out int errno)
    {
        int fd;
        do fd = openat(dir, path, flags | O_CLOEXEC, mode); while (fd < 0 && LastErrno == Errno.EINTR);
        errno = fd < 0 ? LastErrno : 0;
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }

    internal static SafeFileHandle OpenAt(SafeFileHandle dir, string path, int flags, uint mode, string displayPath)
        => TryOpenAt(dir, path, flags, mode, out int errno) ?? throw new NativeCallException(errno, "openat", displayPath);

    /// <summary>openat2(2): the kernel resolves <paramref name="path"/> under the given resolve restrictions.</summary>
    internal static SafeFileHandle? TryOpenAt2(SafeFileHandle dir, string path, int flags, ulong resolve, out int errno)
    {
        OpenHow how = new() { Flags = (ulong)(flags | O_CLOEXEC), Mode = 0, Resolve = resolve };
        byte[] bytes = Utf8Z(path);
        bool added = false;
        try
        {
            dir.DangerousAddRef(ref added);
            int dirfd = (int)dir.DangerousGetHandle();
            long fd;
            fixed (byte* p = bytes)
            {
                do fd = syscall_openat2(SYS_openat2, dirfd, p, &how, (nuint)sizeof(OpenHow));
                while (fd < 0 && (LastErrno == Errno.EINTR || LastErrno == Errno.EAGAIN));
            }
            errno = fd < 0 ? LastErrno : 0;
            return fd < 0 ? null : new SafeFileHandle((nint)fd, ownsHandle: true);
        }
        finally
        {
            if (added) dir.DangerousRelease();
        }
    }

    internal static bool TryStatAt(SafeFileHandle dir, string path, out Statx st, out int errno)
    {
        Statx buf;
        int rc = statx(dir, path, AT_SYMLINK_NOFOLLOW | (path.Length == 0 ? AT_EMPTY_PATH : 0), STATX_BASIC_STATS, &buf);
        errno = rc < 0 ? LastErrno : 0;
        st = buf;
        return rc == 0;
    }

    internal static Statx StatAt(SafeFileHandle dir, string path, string displayPath)
        => TryStatAt(dir, path, out Statx st, out int errno) ? st : throw new NativeCallException(errno, "statx", displayPath);

    internal static Statx Stat(SafeFileHandle fd, string displayPath) => StatAt(fd, "", displayPath);

    /// <summary>stat(2): symlinks followed.</summary>
    internal static Statx Stat(string path)
    {
        Statx buf;
        if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &buf) < 0) throw Error("statx", path);
        return buf;
    }

    internal static Statx LStat(string path)
    {
        Statx buf;
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &buf) < 0) throw Error("statx", path);
        return buf;
    }

    internal static string ReadLinkAt(SafeFileHandle dir, string name, string displayPath)
    {
        byte[] buf = new byte[4096];
        nint n;
        fixed (byte* p = buf) n = readlinkat(dir, name, p, (nuint)buf.Length);
        if (n < 0) throw Error("readlinkat", displayPath);
        return Strict.GetString(buf, 0, (int)n);
    }

    internal static void Fsync(SafeFileHandle fd, string displayPath)
    {
        if (fsync(fd) < 0) throw Error("fsync", displayPath);
    }

    /// <summary>fsync a directory so that a rename or unlink inside it is durable.</summary>
    internal static void FsyncDirectory(string path)
    {
        using SafeFileHandle dir = Open(path, O_RDONLY | O_DIRECTORY);
        Fsync(dir, path);
    }

    /// <summary>The path through which an fd (including an O_PATH fd) can be reached without resolving anything.</summary>
    internal static string ProcFdPath(SafeFileHandle fd) => $"/proc/self/fd/{fd.DangerousGetHandle()}";

    internal static void SetXattr(SafeFileHandle fd, bool isOPath, string name, ReadOnlySpan<byte> value, string displayPath)
    {
        int rc;
        fixed (byte* p = value)
        {
            // f*xattr does not accept O_PATH fds on older kernels; /proc/self/fd/N names the very inode
            // the fd holds (a magic link is not re-resolved), so no path walk can be raced here.
            rc = isOPath
                ? setxattr(ProcFdPath(fd), name, p, (nuint)value.Length, 0)
                : fsetxattr(fd, name, p, (nuint)value.Length, 0);
        }
        if (rc < 0) throw Error($"setxattr {name}", displayPath);
    }

    /// <summary>All extended attributes of the inode an fd (O_PATH or not) refers to.</summary>
    internal static List<KeyValuePair<string, byte[]>> ListXattrs(SafeFileHandle fd, string displayPath)
    {
        string path = ProcFdPath(fd);
        var result = new List<KeyValuePair<string, byte[]>>();
        nint size = listxattr(path, null, 0);
        if (size < 0)
        {
            if (LastErrno is Errno.EOPNOTSUPP) return result;
            throw Error("listxattr", displayPath);
        }
        if (size == 0) return result;
        byte[] names = new byte[size];
        fixed (byte* p = names) size = listxattr(path, p, (nuint)names.Length);
        if (size < 0) throw Error("listxattr", displayPath);
        int start = 0;
        for (int i = 0; i < size; i++)
        {
            if (names[i] != 0) continue;
            string name = Strict.GetString(names, start, i - start);
            start = i + 1;
            byte[]? value = GetXattr(path, name, displayPath);
            if (value is not null) result.Add(new(name, value));
        }
        return result;
    }

    internal static byte[]? GetXattr(string path, string name, string displayPath)
    {
        while (true)
        {
            nint size = getxattr(path, name, null, 0);
            if (size < 0) return LastErrno == Errno.ENODATA ? null : throw Error($"getxattr {name}", displayPath);
            byte[] value = new byte[size];
            fixed (byte* p = value) size = getxattr(path, name, p, (nuint)value.Length);
            if (size >= 0) return size == value.Length ? value : value[..(int)size];
            if (LastErrno != Errno.E2BIG && LastErrno != 34 /* ERANGE: grew meanwhile */) throw Error($"getxattr {name}", displayPath);
        }
    }

    /// <summary>Names in a directory (without . and ..), read with getdents64 from an fd.</summary>
    internal static List<string> ReadDirectory(SafeFileHandle dir, string displayPath)
    {
        var names = new List<string>();
        byte[] buf = new byte[32 * 1024];
        while (true)
        {
            nint n;
            fixed (byte* p = buf) n = getdents64(dir, p, (nuint)buf.Length);
            if (n < 0) throw Error("getdents64", displayPath);
            if (n == 0) return names;
            int off = 0;
            while (off < n)
            {
                ushort reclen = BitConverter.ToUInt16(buf, off + 16);
                int nameStart = off + 19;
                int nameEnd = Array.IndexOf(buf, (byte)0, nameStart);
                string name = Strict.GetString(buf, nameStart, nameEnd - nameStart);
                if (name is not "." and not "..") names.Add(name);
                off += reclen;
            }
        }
    }

    internal static ulong MakeDev(uint major, uint minor)
        => (minor & 0xffUL) | ((major & 0xfffUL) << 8) | ((minor & ~0xffUL) << 12) | ((major & ~0xfffUL) << 32);

    /// <summary>UTF-8 that refuses invalid bytes instead of silently replacing them.</summary>
    internal static readonly System.Text.UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static byte[] Utf8Z(string s)
    {
        byte[] bytes = new byte[Strict.GetByteCount(s) + 1];
        Strict.GetBytes(s, 0, s.Length, bytes, 0);
        return bytes;
    }
}
