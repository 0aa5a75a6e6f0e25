namespace Berth.Daemon.Monitor;

/// <summary>The native calls of the monitor client (pidfd watch, file identity for log following). Its own
/// class rather than a part of <c>Berth.Daemon.Interop</c> so the two cannot collide on a name.</summary>
internal static partial class MonitorInterop
{
    private const string Libc = "libc";
    internal const int ESRCH = 3;
    internal const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;
    internal const int ENOSYS = 38;
    internal const short POLLIN = 1;
    internal const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;
    private const long SYS_pidfd_open = 434; // x86_64 and aarch64 (asm-generic) share the number

    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall2(long number, long a0, long a1);

    /// <summary>pidfd_open(2): a descriptor that polls readable when the process exits (any process, not only children).</summary>
    internal static int pidfd_open(int pid) => (int)syscall2(SYS_pidfd_open, pid, 0);

    [LibraryImport(Libc, EntryPoint = "poll", SetLastError = true)]
    internal static unsafe partial int poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport(Libc, EntryPoint = "eventfd", SetLastError = true)]
    internal static partial int eventfd(uint initial, int flags);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    internal static partial int close(int fd);

    [LibraryImport(Libc, EntryPoint = "read", SetLastError = true)]
    internal static unsafe partial nint read(int fd, void* buffer, nuint count);

    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    internal static unsafe partial nint write(int fd, void* buffer, nuint count);

    internal const int AT_EMPTY_PATH = 0x1000;
    internal const uint STATX_INO = 0x100;

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx_fd(Microsoft.Win32.SafeHandles.SafeFileHandle dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>(device, inode) of a path (not following a last symlink), null when it does not exist.</summary>
    internal static unsafe (ulong Dev, ulong Ino)? FileIdentity(string path)
    {
        byte* b = stackalloc byte[256];
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_INO, b) < 0) return null;
        return Identity(b);
    }

    /// <summary>(device, inode) of an open file.</summary>
    internal static unsafe (ulong Dev, ulong Ino)? FileIdentity(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        byte* b = stackalloc byte[256];
        if (statx_fd(handle, "", AT_EMPTY_PATH, STATX_INO, b) < 0) return null;
        return Identity(b);
    }

    // struct statx: stx_ino at 0x20; stx_dev_major/minor at 0x88/0x8C.
    internal static int LastErrno => Marshal.GetLastPInvokeError();

    internal static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";

    private static unsafe (ulong, ulong) Identity(byte* b) =>
        (((ulong)*(uint*)(b + 0x88) << 32) | *(uint*)(b + 0x8C), *(ulong*)(b + 0x20));
}
