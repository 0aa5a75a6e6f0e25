using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Berth.Network.Interop;

/// <summary>
/// The libc calls the network layer needs, in one place (dotnet/runtime <c>Interop.Sys</c> style).
/// Source-generated <c>LibraryImport</c> only: NativeAOT-safe, no runtime marshalling stubs.
/// Every descriptor is an owned <see cref="SafeFileHandle"/> opened close-on-exec.
/// </summary>
internal static unsafe partial class Libc
{
    internal const int ENOENT = 2, ESRCH = 3, EINTR = 4, EAGAIN = 11, EBUSY = 16, EEXIST = 17, ENODEV = 19,
        EINVAL = 22, ERANGE = 34, EPROTONOSUPPORT = 93, EOPNOTSUPP = 95, EADDRINUSE = 98;

    internal const int AF_NETLINK = 16, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000, NETLINK_ROUTE = 0;
    internal const int SOL_SOCKET = 1, SO_RCVBUF = 8, SO_SNDBUF = 7, SOL_NETLINK = 270;
    internal const int NETLINK_EXT_ACK = 11, NETLINK_CAP_ACK = 10, NETLINK_GET_STRICT_CHK = 12;
    internal const int O_RDONLY = 0, O_CLOEXEC = 0x80000;
    internal const int CLONE_NEWNET = 0x40000000;

    [StructLayout(LayoutKind.Sequential)]
    internal struct SockaddrNl
    {
        public ushort Family;
        public ushort Pad;
        public uint Pid;
        public uint Groups;
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int SocketRaw(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    private static partial int BindRaw(SafeFileHandle fd, SockaddrNl* addr, int len);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int SetSockOptRaw(SafeFileHandle fd, int level, int name, int* value, int len);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static partial nint SendRaw(SafeFileHandle fd, byte* buf, nuint len, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static partial nint RecvRaw(SafeFileHandle fd, byte* buf, nuint len, int flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenRaw(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetnsRaw(SafeFileHandle fd, int nstype);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncRaw(SafeFileHandle fd);

    internal static void FsyncDirectory(string path)
    {
        const int O_DIRECTORY = 0x10000;
        var fd = OpenRaw(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0) throw new NetworkException(NetworkErrorKind.Internal, $"open {path}: {Marshal.GetPInvokeErrorMessage(LastErrno)}");
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (FsyncRaw(handle) < 0) throw new NetworkException(NetworkErrorKind.Internal, $"fsync {path}: {Marshal.GetPInvokeErrorMessage(LastErrno)}");
    }

    private static int LastErrno => Marshal.GetLastPInvokeError();

    internal static SafeFileHandle NetlinkSocket(string context)
    {
        var fd = SocketRaw(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0) throw new NetlinkException($"socket(AF_NETLINK, NETLINK_ROUTE) {context}", LastErrno);
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var addr = new SockaddrNl { Family = AF_NETLINK };
        if (BindRaw(handle, &addr, sizeof(SockaddrNl)) < 0)
        {
            var errno = LastErrno;
            handle.Dispose();
            throw new NetlinkException($"bind netlink socket {context}", errno);
        }
        // Best effort: the kernel's error text (extack) and no echo of our request in errors.
        SetIntOption(handle, SOL_NETLINK, NETLINK_EXT_ACK, 1);
        SetIntOption(handle, SOL_NETLINK, NETLINK_CAP_ACK, 1);
        SetIntOption(handle, SOL_SOCKET, SO_RCVBUF, 1 << 20);
        return handle;
    }

    private static void SetIntOption(SafeFileHandle fd, int level, int name, int value) => SetSockOptRaw(fd, level, name, &value, sizeof(int));

    internal static void Send(SafeFileHandle fd, ReadOnlySpan<byte> data, string operation)
    {
        fixed (byte* p = data)
        {
            while (true)
            {
                var n = SendRaw(fd, p, (nuint)data.Length, 0);
                if (n >= 0) return;
                var errno = LastErrno;
                if (errno != EINTR) throw new NetlinkException($"send {operation}", errno);
            }
        }
    }

    internal static int Receive(SafeFileHandle fd, Span<byte> buffer, string operation)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = RecvRaw(fd, p, (nuint)buffer.Length, 0);
                if (n >= 0) return (int)n;
                var errno = LastErrno;
                if (errno != EINTR) throw new NetlinkException($"recv {operation}", errno);
            }
        }
    }

    internal static SafeFileHandle OpenReadOnly(string path, string operation)
    {
        var fd = OpenRaw(path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) throw new NetlinkException($"{operation}: open {path}", LastErrno);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>setns(fd, CLONE_NEWNET) for the calling thread only; returns 0 or errno.</summary>
    internal static int SetNetns(SafeFileHandle fd) => SetnsRaw(fd, CLONE_NEWNET) < 0 ? LastErrno : 0;
}
