using System.Text;
using Berth.Oci;
using Berth.Runtime.Native;

namespace Berth.Runtime.Container;

/// <summary>
/// runc 1.1's sd_notify proxy, for a runtime run with NOTIFY_SOCKET in its environment (a
/// systemd unit of Type=notify, podman's <c>--sdnotify=container</c>, conmon).
/// <list type="bullet">
/// <item>create makes &lt;root&gt;/&lt;id&gt;/notify (0755), binds it read-only (nosuid, nodev,
/// noexec) at /run/notify in the container and sets the process's NOTIFY_SOCKET to
/// /run/notify/notify.sock, whatever the config's env said (<see cref="AddToSpec"/>);</item>
/// <item>start (and run) bind a datagram socket there (0777, so that any user of the container may
/// send) before the process starts (<see cref="Listen"/>), and wait for a message beginning with
/// "READY=": its first line goes to the host's socket, then "MAINPID=&lt;pid&gt;", and the wait
/// ends (<see cref="RelayReady"/>). Every other message is dropped, as runc drops it.</item>
/// </list>
/// exec gets neither the variable nor a socket of its own (runc's exec reads the bundle's
/// config.json, which has neither); delete removes the directory with the rest of the state.
/// </summary>
public sealed class NotifySocket : IDisposable
{
    public const string DirectoryName = "notify";
    public const string SocketName = "notify.sock";
    public const string DirectoryInContainer = "/run/notify";
    public const string PathInContainer = DirectoryInContainer + "/" + SocketName;
    public const string EnvironmentVariable = "NOTIFY_SOCKET";

    /// <summary>runc reads one datagram into 4096 bytes; a longer one is cut there.</summary>
    const int MaxMessage = 4096;
    /// <summary>How often the wait checks that the container's init is still there (runc's ticker).</summary>
    const int LivenessIntervalMs = 100;

    public static string DirectoryIn(string stateDir) => Path.Combine(stateDir, DirectoryName);

    /// <summary>
    /// create's part on the spec about to be compiled: the bind mount of the state's notify
    /// directory, appended after the config's mounts (so that it lands on a /run tmpfs the config
    /// may have), and NOTIFY_SOCKET in the process's env. runc appends the variable and its init
    /// sets the env in order, so the value is runc's at the place of the config's first
    /// NOTIFY_SOCKET; the same is done here, leaving one entry.
    /// </summary>
    public static void AddToSpec(Spec spec, string stateDir)
    {
        spec.Mounts = [.. spec.Mounts ?? [], new Mount
        {
            Destination = DirectoryInContainer,
            Source = DirectoryIn(stateDir),
            Options = ["bind", "nosuid", "noexec", "nodev", "ro"],
        }];
        if (spec.Process is not { } process) return;
        const string prefix = EnvironmentVariable + "=";
        var env = new List<string>();
        var placed = false;
        foreach (var entry in process.Env ?? [])
        {
            if (!entry.StartsWith(prefix, StringComparison.Ordinal)) env.Add(entry);
            else if (!placed) { env.Add(prefix + PathInContainer); placed = true; }
        }
        if (!placed) env.Add(prefix + PathInContainer);
        process.Env = env;
    }

    /// <summary>create's part on the host: the directory the container sees at /run/notify (mode 0755 less the umask, as runc's os.Mkdir).</summary>
    public static void CreateDirectory(string stateDir)
    {
        var dir = DirectoryIn(stateDir);
        if (LibC.mkdir(dir, 0x1ed) != 0) throw LibC.Error($"mkdir {dir}", LibC.Errno);
    }

    readonly int _fd;
    readonly string _host;
    readonly int _initPid;
    readonly ulong _initStartTime;

    NotifySocket(int fd, string host, int initPid, ulong initStartTime) =>
        (_fd, _host, _initPid, _initStartTime) = (fd, host, initPid, initStartTime);

    /// <summary>The socket's path on the host.</summary>
    public string SocketPath { get; private init; } = "";

    /// <summary>
    /// Binds &lt;state&gt;/notify/notify.sock for the container whose init is
    /// <paramref name="initPid"/>, to relay to <paramref name="hostSocket"/> (the runtime's own
    /// NOTIFY_SOCKET; "@name" is an abstract socket, as for systemd).
    /// </summary>
    public static NotifySocket Listen(string stateDir, string hostSocket, int initPid, ulong initStartTime)
    {
        var path = Path.Combine(DirectoryIn(stateDir), SocketName);
        var fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
        LibC.Check(fd, "socket");
        try
        {
            if (LibC.BindUnix(fd, path) != 0)
            {
                var errno = LibC.Errno;
                // runc's message for a container created without NOTIFY_SOCKET and started with it.
                throw errno == Sys.ENOENT && !Directory.Exists(DirectoryIn(stateDir))
                    ? new RuntimeException($"bind the notify socket {path}: {LibC.Describe(errno)}: the container was created without NOTIFY_SOCKET", errno)
                    : LibC.Error($"bind the notify socket {path}", errno);
            }
            File.SetUnixFileMode(path, (UnixFileMode)0x1ff);
            return new NotifySocket(fd, hostSocket, initPid, initStartTime) { SocketPath = path };
        }
        catch
        {
            LibC.close(fd);
            throw;
        }
    }

    /// <summary>
    /// Waits until the container sends READY=… and passes it on to the host's socket with
    /// MAINPID=<paramref name="mainPid"/> (default: the container's init; run in the foreground
    /// gives its own pid, since it stays the service's main process). Returns false, having
    /// relayed nothing, once the init is gone without READY; what the container sent before it
    /// went is still read. The host's socket is connected first: a host socket that is not there
    /// fails at once (for start, after the container was started, as with runc).
    /// </summary>
    public bool RelayReady(int? mainPid = null)
    {
        var host = LibC.socket(LibC.AF_UNIX, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
        LibC.Check(host, "socket");
        try
        {
            if (LibC.ConnectUnixDatagram(host, _host) != 0) throw LibC.Error($"connect to NOTIFY_SOCKET {_host}", LibC.Errno);
            var buffer = new byte[MaxMessage];
            while (true)
            {
                Span<LibC.PollFd> poll = [new LibC.PollFd { Fd = _fd, Events = LibC.POLLIN }];
                var ready = LibC.poll(poll, 1, LivenessIntervalMs);
                if (ready < 0 && LibC.Errno != Sys.EINTR) throw LibC.Error($"poll {SocketPath}", LibC.Errno);
                if (ready > 0)
                {
                    if (TryReceive(buffer, out var line) && line is not null) return Relay(host, line, mainPid ?? _initPid);
                    continue;
                }
                if (ProcessInfo.IsAlive(_initPid, _initStartTime)) continue;
                // Gone: what it sent before going is still queued.
                while (TryReceive(buffer, out var last))
                    if (last is not null) return Relay(host, last, mainPid ?? _initPid);
                return false;
            }
        }
        finally { LibC.close(host); }
    }

    /// <summary>Reads one queued datagram without blocking (false when there is none); <paramref name="line"/> is its READY line, if it has one.</summary>
    bool TryReceive(byte[] buffer, out byte[]? line)
    {
        line = null;
        var n = LibC.recv(_fd, buffer, buffer.Length, LibC.MSG_DONTWAIT);
        if (n < 0)
        {
            var errno = LibC.Errno;
            if (errno == Sys.EAGAIN) return false;
            if (errno == Sys.EINTR) return true;
            throw LibC.Error($"read {SocketPath}", errno);
        }
        line = ReadyLineOf(buffer.AsSpan(0, (int)n));
        return true;
    }

    /// <summary>
    /// runc's rule: a datagram that begins with "READY=" counts, and its first line is what is
    /// passed on; "STATUS=…\nREADY=1" does not count.
    /// </summary>
    internal static byte[]? ReadyLineOf(ReadOnlySpan<byte> message)
    {
        if (!message.StartsWith("READY="u8)) return null;
        var end = message.IndexOf((byte)'\n');
        return (end < 0 ? message : message[..end]).ToArray();
    }

    static bool Relay(int host, byte[] readyLine, int mainPid)
    {
        Send(host, [.. readyLine, (byte)'\n']);
        Send(host, Encoding.ASCII.GetBytes($"MAINPID={mainPid}\n"));
        return true;
    }

    static void Send(int host, ReadOnlySpan<byte> message)
    {
        nint n;
        do n = LibC.send(host, message, message.Length, 0x4000 /* MSG_NOSIGNAL */);
        while (n < 0 && LibC.Errno == Sys.EINTR);
        if (n < 0) throw LibC.Error("send to NOTIFY_SOCKET", LibC.Errno);
    }

    int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) LibC.close(_fd);
    }
}
