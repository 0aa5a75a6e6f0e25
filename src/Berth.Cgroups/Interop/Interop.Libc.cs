using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Berth.Cgroups.Interop;

/// <summary>
/// The libc calls Berth.Cgroups needs beyond System.IO, in one place (dotnet/runtime
/// <c>Interop.Sys</c> style). Every descriptor comes back as an owned
/// <see cref="SafeFileHandle"/> opened O_CLOEXEC; failures carry errno, operation and path.
/// </summary>
internal static unsafe partial class Libc
{
    internal const int O_RDONLY = 0;
    internal const int O_DIRECTORY = 0x10000;
    internal const int O_CLOEXEC = 0x80000;
    internal const int EFD_CLOEXEC = 0x80000;
    internal const int IN_CLOEXEC = 0x80000;
    internal const uint IN_MODIFY = 0x2;
    internal const uint IN_DELETE_SELF = 0x400;
    internal const uint IN_IGNORED = 0x8000;
    internal const short POLLIN = 0x1;
    internal const int EINTR = 4;

    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenRaw(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFdRaw(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "inotify_init1", SetLastError = true)]
    private static partial int InotifyInitRaw(int flags);

    [LibraryImport("libc", EntryPoint = "inotify_add_watch", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int InotifyAddWatchRaw(SafeFileHandle fd, string path, uint mask);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int PollRaw(PollFd* fds, nuint nfds, int timeout);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadRaw(SafeFileHandle fd, byte* buf, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteRaw(SafeFileHandle fd, byte* buf, nuint count);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long a1, void* a2, long a3);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenFd(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int CloseFd(int fd);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteFd(int fd, byte* buf, nuint count);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadFd(int fd, byte* buf, nuint count);

    private const int O_WRONLY = 1, O_TRUNC = 0x200;

    /// <summary>
    /// open(O_WRONLY|O_TRUNC), one write, close: what a cgroupfs write is. Plain syscalls, not
    /// FileStream, which adds fstat, flock and lseek to each of the dozens of writes a
    /// container start makes. Returns 0 or errno.
    /// </summary>
    internal static int WriteWhole(string path, ReadOnlySpan<byte> data)
    {
        var fd = OpenFd(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0) return Marshal.GetLastPInvokeError();
        try
        {
            fixed (byte* p = data)
            {
                var n = WriteFd(fd, p, (nuint)data.Length);
                if (n < 0) return Marshal.GetLastPInvokeError();
                return n == data.Length ? 0 : 5 /* EIO: cgroupfs takes a value in one write */;
            }
        }
        finally { CloseFd(fd); }
    }

    /// <summary>
    /// One open(O_WRONLY|O_TRUNC), then one write per value, then close: for a cgroup file that
    /// takes one entry per write (v1 devices.allow), where reopening it for each of a container's
    /// ~20 rules was a visible share of its start. Returns 0, or errno and the index of the value that failed.
    /// </summary>
    internal static int WriteEach(string path, IReadOnlyList<byte[]> values, out int failedAt)
    {
        failedAt = 0;
        var fd = OpenFd(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0) return Marshal.GetLastPInvokeError();
        try
        {
            for (failedAt = 0; failedAt < values.Count; failedAt++)
            {
                fixed (byte* p = values[failedAt])
                {
                    var n = WriteFd(fd, p, (nuint)values[failedAt].Length);
                    if (n < 0) return Marshal.GetLastPInvokeError();
                    if (n != values[failedAt].Length) return 5; // EIO: cgroupfs takes a value in one write
                }
            }
            return 0;
        }
        finally { CloseFd(fd); }
    }

    /// <summary>Reads a whole (small, pseudo-) file with plain syscalls. Returns the text, or null and errno.</summary>
    internal static string? ReadWhole(string path, out int errno)
    {
        errno = 0;
        var fd = OpenFd(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) { errno = Marshal.GetLastPInvokeError(); return null; }
        try
        {
            // Most cgroup and /proc files fit the stack buffer; a fresh 4 KiB array per read was a
            // visible share of a runtime process's page faults.
            Span<byte> buffer = stackalloc byte[4096];
            var length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    var larger = new byte[buffer.Length * 2];
                    buffer.CopyTo(larger);
                    buffer = larger;
                }
                nint n;
                fixed (byte* p = &buffer[length]) n = ReadFd(fd, p, (nuint)(buffer.Length - length));
                if (n < 0)
                {
                    errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR) continue;
                    return null;
                }
                if (n == 0) return System.Text.Encoding.UTF8.GetString(buffer[..length]);
                length += (int)n;
            }
        }
        finally { CloseFd(fd); }
    }

    internal static CgroupException Error(string operation, string? path = null)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new CgroupException($"{operation}: {Marshal.GetPInvokeErrorMessage(errno)}", CgroupErrorKind.Io, errno, path);
    }

    internal static SafeFileHandle Open(string path, int flags)
    {
        var fd = OpenRaw(path, flags | O_CLOEXEC, 0);
        return fd < 0 ? throw Error($"open {path}", path) : new SafeFileHandle(fd, ownsHandle: true);
    }

    internal static SafeFileHandle EventFd()
    {
        var fd = EventFdRaw(0, EFD_CLOEXEC);
        return fd < 0 ? throw Error("eventfd") : new SafeFileHandle(fd, ownsHandle: true);
    }

    internal static SafeFileHandle InotifyInit()
    {
        var fd = InotifyInitRaw(IN_CLOEXEC);
        return fd < 0 ? throw Error("inotify_init1") : new SafeFileHandle(fd, ownsHandle: true);
    }

    internal static void InotifyAddWatch(SafeFileHandle inotify, string path, uint mask)
    {
        if (InotifyAddWatchRaw(inotify, path, mask) < 0)
        {
            throw Error($"inotify_add_watch {path}", path);
        }
    }

    /// <summary>Waits until one of <paramref name="fds"/> is readable; returns its index, or -1 on timeout.</summary>
    internal static int PollReadable(ReadOnlySpan<SafeFileHandle> fds, int timeoutMs)
    {
        var set = stackalloc PollFd[fds.Length];
        for (var i = 0; i < fds.Length; i++)
        {
            set[i] = new PollFd { Fd = (int)fds[i].DangerousGetHandle(), Events = POLLIN };
        }
        while (true)
        {
            var n = PollRaw(set, (nuint)fds.Length, timeoutMs);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == EINTR)
                {
                    continue;
                }
                throw Error("poll");
            }
            for (var i = 0; i < fds.Length; i++)
            {
                if (set[i].Revents != 0)
                {
                    return i;
                }
            }
            return -1;
        }
    }

    internal static int Read(SafeFileHandle fd, Span<byte> buffer, string what)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = ReadRaw(fd, p, (nuint)buffer.Length);
                if (n >= 0)
                {
                    return (int)n;
                }
                if (Marshal.GetLastPInvokeError() != EINTR)
                {
                    throw Error($"read {what}");
                }
            }
        }
    }

    /// <summary>Adds 1 to an eventfd's counter (wakes whoever polls it).</summary>
    internal static void SignalEventFd(SafeFileHandle fd)
    {
        ulong one = 1;
        WriteRaw(fd, (byte*)&one, sizeof(ulong));
    }
}
