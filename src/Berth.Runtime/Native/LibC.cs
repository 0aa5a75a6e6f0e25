using System.Runtime.InteropServices;

namespace Berth.Runtime.Native;

/// <summary>libc calls made by the runtime process itself (never by the child: see ChildProgram).</summary>
public static partial class LibC
{
    const string Lib = "libc";

    [LibraryImport(Lib, SetLastError = true)] public static partial int socketpair(int domain, int type, int protocol, Span<int> fds);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint read(int fd, Span<byte> buffer, nint count);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint write(int fd, ReadOnlySpan<byte> buffer, nint count);
    [LibraryImport(Lib, SetLastError = true)] public static partial int close(int fd);
    [LibraryImport(Lib, SetLastError = true)] public static partial int kill(int pid, int signal);
    [LibraryImport(Lib, SetLastError = true)] public static partial int waitpid(int pid, out int status, int options);
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial int mkfifo(string path, uint mode);
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial int open(string path, int flags, uint mode);
    [LibraryImport(Lib, SetLastError = true)] public static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
    [LibraryImport(Lib, SetLastError = true)] public static partial int flock(int fd, int operation);
    [LibraryImport(Lib, SetLastError = true)] public static partial int poll(Span<PollFd> fds, nuint count, int timeoutMs);
    [LibraryImport(Lib, SetLastError = true)] public static partial int getuid();
    [LibraryImport(Lib, SetLastError = true)] public static partial int getgid();
    [LibraryImport(Lib, SetLastError = true)] public static partial int getpid();
    [LibraryImport(Lib, SetLastError = true)] public static partial int dup(int fd);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fcntl(int fd, int cmd, int arg);
    [LibraryImport(Lib, SetLastError = true)] public static partial int isatty(int fd);
    [LibraryImport(Lib, SetLastError = true)] public static partial int ioctl(int fd, nuint request, ref WinSize ws);
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial int umount2(string target, int flags);
    /// <summary>With a null buffer: a malloc'ed resolved path (free it) or 0.</summary>
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial nint realpath(string path, nint resolved);

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd { public int Fd; public short Events; public short Revents; }
    [StructLayout(LayoutKind.Sequential)]
    public struct WinSize { public ushort Rows, Cols, XPixel, YPixel; }

    public const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_SEQPACKET = 5, SOCK_CLOEXEC = 0x80000;
    public const int WNOHANG = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8, POLLIN = 1, F_GETFD = 1, F_SETFD = 2;

    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>
    /// "operation not permitted (EPERM)": lower case as Go (and so runc) prints errno, because
    /// callers match runc's text (dockerd maps "no such file or directory" to exit code 127).
    /// </summary>
    public static string Describe(int errno)
    {
        var text = Marshal.GetPInvokeErrorMessage(errno);
        if (text.Length > 1 && char.IsUpper(text[0]) && !char.IsUpper(text[1])) text = char.ToLowerInvariant(text[0]) + text[1..];
        return $"{text} ({ErrnoName(errno)})";
    }

    public static string ErrnoName(int errno) => errno switch
    {
        1 => "EPERM", 2 => "ENOENT", 3 => "ESRCH", 4 => "EINTR", 5 => "EIO", 8 => "ENOEXEC", 9 => "EBADF",
        10 => "ECHILD", 11 => "EAGAIN", 12 => "ENOMEM", 13 => "EACCES", 14 => "EFAULT", 16 => "EBUSY",
        17 => "EEXIST", 18 => "EXDEV", 19 => "ENODEV", 20 => "ENOTDIR", 21 => "EISDIR", 22 => "EINVAL",
        24 => "EMFILE", 28 => "ENOSPC", 30 => "EROFS", 32 => "EPIPE", 38 => "ENOSYS", 40 => "ELOOP",
        75 => "EOVERFLOW", 95 => "EOPNOTSUPP", 110 => "ETIMEDOUT", _ => $"errno {errno}",
    };

    /// <summary>Throws a RuntimeException naming the operation, the path and the errno.</summary>
    public static RuntimeException Error(string operation, int errno) =>
        new($"{operation}: {Describe(errno)}", errno);

    public static void Check(int result, string operation)
    {
        if (result < 0) throw Error(operation, Errno);
    }

    public static (int Exited, int Signal) DecodeWaitStatus(int status) =>
        (status & 0x7f) == 0 ? ((status >> 8) & 0xff, 0) : (-1, status & 0x7f);
}

public static partial class LibC
{
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial int mkdir(string path, uint mode);
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial int connect(int fd, ref SockaddrUn address, int length);
    [LibraryImport(Lib, SetLastError = true)] public static partial int socket(int domain, int type, int protocol);
    [LibraryImport(Lib, SetLastError = true)] public static partial int bind(int fd, ref SockaddrUn address, int length);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint recv(int fd, Span<byte> buffer, nint length, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint send(int fd, ReadOnlySpan<byte> buffer, nint length, int flags);

    public const int SOCK_DGRAM = 2, MSG_DONTWAIT = 0x40;

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct SockaddrUn { public ushort Family; public fixed byte Path[108]; }

    /// <summary>Connects a SOCK_STREAM unix socket (close-on-exec) to <paramref name="path"/>.</summary>
    public static int ConnectUnix(string path)
    {
        var address = UnixAddress(path, out var length);
        var fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        Check(fd, "socket");
        if (connect(fd, ref address, length) != 0)
        {
            var errno = Errno;
            close(fd);
            throw Error($"connect to {path}", errno);
        }
        return fd;
    }

    /// <summary>connect(2) of a datagram socket to <paramref name="path"/> ("@name": an abstract address); 0 or -1 with errno.</summary>
    public static int ConnectUnixDatagram(int fd, string path)
    {
        var address = UnixAddress(path, out var length);
        return connect(fd, ref address, length);
    }

    /// <summary>bind(2) to <paramref name="path"/>; 0 or -1 with errno.</summary>
    public static int BindUnix(int fd, string path)
    {
        var address = UnixAddress(path, out var length);
        return bind(fd, ref address, length);
    }

    /// <summary>
    /// sockaddr_un for a path, or for an abstract name when it begins with '@' (as Go's net
    /// package, and so runc and systemd's NOTIFY_SOCKET, spell it): a leading NUL and no terminator.
    /// </summary>
    static unsafe SockaddrUn UnixAddress(string path, out int length)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(path);
        var isAbstract = bytes.Length > 0 && bytes[0] == (byte)'@';
        if (bytes.Length >= 108) throw new RuntimeException($"socket path too long (at most 107 bytes): {path}");
        var address = new SockaddrUn { Family = AF_UNIX };
        for (var i = 0; i < bytes.Length; i++) address.Path[i] = bytes[i];
        if (isAbstract) address.Path[0] = 0;
        length = 2 + bytes.Length + (isAbstract ? 0 : 1);
        return address;
    }
}

public static partial class LibC
{
    [LibraryImport(Lib, SetLastError = true)] public static partial int pipe2(Span<int> fds, int flags);
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] public static partial int rmdir(string path);
}

public static partial class LibC
{
    [LibraryImport(Lib, SetLastError = true)] public static partial nint recvmsg(int fd, ref MsgHdr message, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint sendmsg(int fd, ref MsgHdr message, int flags);

    /// <summary>Sends <paramref name="payload"/> with one fd (SCM_RIGHTS) on a connected unix socket, all of it or an exception.</summary>
    public static unsafe void SendWithFd(int socket, ReadOnlySpan<byte> payload, int fdToSend, string what)
    {
        var control = stackalloc byte[24];
        *(long*)control = 20; // CMSG_LEN(sizeof(int))
        *(int*)(control + 8) = 1; // SOL_SOCKET
        *(int*)(control + 12) = 1; // SCM_RIGHTS
        *(int*)(control + 16) = fdToSend;
        fixed (byte* data = payload)
        {
            var iov = new IoVec { Base = (nint)data, Length = (nuint)payload.Length };
            var message = new MsgHdr { Iov = (nint)(&iov), IovLength = 1, Control = (nint)control, ControlLength = 24 };
            nint n;
            do n = sendmsg(socket, ref message, 0x4000 /* MSG_NOSIGNAL */);
            while (n < 0 && Errno == Sys.EINTR);
            if (n < 0) throw Error(what, Errno);
            // The fd went with the first byte; a stream socket may take the rest in more writes.
            for (var sent = (int)n; sent < payload.Length;)
            {
                var more = write(socket, payload[sent..], payload.Length - sent);
                if (more < 0 && Errno == Sys.EINTR) continue;
                if (more <= 0) throw Error(what, Errno);
                sent += (int)more;
            }
        }
    }
    [LibraryImport(Lib, SetLastError = true)] public static partial int tcgetattr(int fd, Span<byte> termios);
    [LibraryImport(Lib, SetLastError = true)] public static partial int tcsetattr(int fd, int when, ReadOnlySpan<byte> termios);
    [LibraryImport(Lib)] public static partial void cfmakeraw(Span<byte> termios);

    public const uint TIOCGWINSZ = 0x5413, TIOCSWINSZ = 0x5414;
    /// <summary>sizeof(struct termios) is 60 on glibc; a little more is harmless.</summary>
    public const int TermiosSize = 64;

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public nint Name; public uint NameLength; public nint Iov; public nuint IovLength;
        public nint Control; public nuint ControlLength; public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec { public nint Base; public nuint Length; }

    /// <summary>Receives one fd sent with SCM_RIGHTS (the console socket protocol of runc).</summary>
    public static unsafe int ReceiveFd(int socket)
    {
        var payload = stackalloc byte[4096];
        var control = stackalloc byte[64];
        var iov = new IoVec { Base = (nint)payload, Length = 4096 };
        var message = new MsgHdr { Iov = (nint)(&iov), IovLength = 1, Control = (nint)control, ControlLength = 64 };
        nint n;
        do n = recvmsg(socket, ref message, 0x40000000 /* MSG_CMSG_CLOEXEC */);
        while (n < 0 && Errno == Sys.EINTR);
        if (n < 0) throw Error("receive the pty master", Errno);
        // struct cmsghdr { size_t len; int level; int type; } then the fd.
        if (message.ControlLength < 20 || *(int*)(control + 8) != 1 || *(int*)(control + 12) != 1)
            throw new RuntimeException("the console socket sent no file descriptor");
        return *(int*)(control + 16);
    }
}

public static partial class LibC
{
    /// <summary>Reads a small (pseudo-) file with open/read/close; null if it cannot be opened or read.</summary>
    public static string? ReadSmallFile(string path)
    {
        var fd = open(path, Sys.O_RDONLY | Sys.O_CLOEXEC, 0);
        if (fd < 0) return null;
        try
        {
            Span<byte> buffer = stackalloc byte[4096];
            var length = 0;
            while (length < buffer.Length)
            {
                var n = read(fd, buffer[length..], buffer.Length - length);
                if (n < 0 && Errno == Sys.EINTR) continue;
                if (n < 0) return null;
                if (n == 0) break;
                length += (int)n;
            }
            return System.Text.Encoding.UTF8.GetString(buffer[..length]);
        }
        finally { close(fd); }
    }

    /// <summary>open(O_WRONLY), one write, close, for /proc and cgroupfs files; throws naming path and errno.</summary>
    public static void WriteSmallFile(string path, string content)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(content);
        var fd = open(path, Sys.O_WRONLY | Sys.O_CLOEXEC, 0);
        if (fd < 0) throw Error($"open {path}", Errno);
        try
        {
            var n = write(fd, bytes, bytes.Length);
            if (n < 0) throw Error($"write {content.Trim().Replace('\n', ',')} to {path}", Errno);
        }
        finally { close(fd); }
    }
}
