using Microsoft.Win32.SafeHandles;

namespace Berth.Daemon;

/// <summary>Every native call of berthd, in one place (the dotnet/runtime Interop.Sys pattern).</summary>
internal static partial class Interop
{
    private const string Libc = "libc";

    internal const int EINTR = 4, EAGAIN = 11;
    internal const int LOCK_EX = 2, LOCK_NB = 4;

    internal const int O_RDWR = 2, O_CREAT = 0x40, O_CLOEXEC = 0x80000;

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SafeFileHandle open(string path, int flags, uint mode);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int flock(SafeFileHandle fd, int operation);

    [LibraryImport(Libc, EntryPoint = "umask")]
    internal static partial uint umask(uint mask);

    [LibraryImport(Libc, EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int chown(string path, int owner, int group);

    /// <summary>chown(2) that throws an IOException naming the path, the owner and the errno.</summary>
    internal static void Chown(string path, uint owner, uint group)
    {
        if (chown(path, (int)owner, (int)group) != 0) throw new IOException($"chown {path} to {owner}:{group}: {Describe(LastErrno)}");
    }

    internal const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;
    internal const uint STATX_TYPE = 1, S_IFMT = 0xF000, S_IFSOCK = 0xC000;

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>The file type bits (S_IFMT) of <paramref name="path"/>, not following a last symlink; null when it does not exist.</summary>
    internal static unsafe uint? FileType(string path)
    {
        byte* buffer = stackalloc byte[256];
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, buffer) < 0) return null;
        ushort mode = *(ushort*)(buffer + 0x1C); // struct statx: stx_mode follows mask, blksize, attributes, nlink, uid, gid
        return mode & S_IFMT;
    }

    internal const int O_RDONLY = 0, O_DIRECTORY = 0x10000;

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open_fd(string path, int flags, int mode);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int fsync(int fd);

    [LibraryImport(Libc)]
    internal static partial int close(int fd);

    [LibraryImport(Libc, SetLastError = true)]
    internal static partial int kill(int pid, int signal);

    internal static int LastErrno => Marshal.GetLastPInvokeError();

    internal static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
