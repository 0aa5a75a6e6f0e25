using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Berth.Runtime.Native;

namespace Berth.Runtime.Tests.Integration;

/// <summary>terminal: true with --console-socket: the pty master arrives over SCM_RIGHTS.</summary>
public sealed partial class ConsoleTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    [IntegrationFact]
    public async Task The_pty_master_is_sent_to_the_console_socket_and_carries_the_container_output()
    {
        var socketPath = _h.NewPath("console.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        listener.Listen(1);
        var received = Task.Run(async () =>
        {
            using var connection = await listener.AcceptAsync();
            return ReceiveFd(connection);
        });

        var bundle = _h.NewBundle().Script("echo tty=$(tty); stty size; echo pid=$$; stat -c 'console=%t:%T' /dev/console; stat -L -c 'stdin=%t:%T' /proc/self/fd/0; echo done");
        bundle.Process.Terminal = true;
        bundle.Process.ConsoleSize = new Berth.Oci.ConsoleSize { Height = 33, Width = 101 };
        var id = _h.NewId("console");
        _h.Runtime("create", "--console-socket", socketPath, "--bundle", bundle.Save().Dir, id).ShouldSucceed();
        Assert.True(received.Wait(TimeSpan.FromSeconds(30)), "no fd arrived on the console socket");
        var (master, name) = await received;
        Assert.True(master >= 0, "SCM_RIGHTS message without an fd");
        try
        {
            _h.Runtime("start", id).ShouldSucceed();
            var output = ReadUntil(master, "done", TimeSpan.FromSeconds(30));
            output = output.Replace("\r", "");
            // As with runc: stdio is the pty slave from the container's own devpts, and /dev/console is that pty too.
            Assert.Contains("tty=/dev/pts/0", output);
            var console = output.Split('\n').Single(l => l.StartsWith("console=", StringComparison.Ordinal))[8..];
            var stdin = output.Split('\n').Single(l => l.StartsWith("stdin=", StringComparison.Ordinal))[6..];
            Assert.Equal(stdin, console);
            Assert.Contains("33 101", output);
            Assert.Contains("pid=1", output);
        }
        finally { LibC.close(master); }
    }

    [IntegrationFact]
    public void Terminal_without_a_console_socket_is_refused_and_leaves_nothing()
    {
        var bundle = _h.NewBundle("sh");
        bundle.Process.Terminal = true;
        var id = _h.NewId("noconsole");
        var result = _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldFail();
        Assert.Contains("console-socket", result.Stderr);
        Assert.False(Directory.Exists(Path.Combine(_h.Root, id)));
    }

    static string ReadUntil(int fd, string marker, TimeSpan timeout)
    {
        var text = new StringBuilder();
        var deadline = DateTime.UtcNow + timeout;
        var buffer = new byte[4096];
        while (DateTime.UtcNow < deadline && !text.ToString().Contains(marker))
        {
            Span<LibC.PollFd> poll = [new LibC.PollFd { Fd = fd, Events = LibC.POLLIN }];
            if (LibC.poll(poll, 1, 200) <= 0) continue;
            var n = LibC.read(fd, buffer, buffer.Length);
            if (n <= 0) break; // EIO once the slave side is closed
            text.Append(Encoding.UTF8.GetString(buffer, 0, (int)n));
        }
        return text.ToString();
    }

    [StructLayout(LayoutKind.Sequential)]
    struct MsgHdr
    {
        public nint Name; public uint NameLen; public nint Iov; public nuint IovLen; public nint Control; public nuint ControlLen; public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    struct IoVec { public nint Base; public nuint Len; }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvmsg(nint fd, ref MsgHdr message, int flags);

    /// <summary>recvmsg with room for one SCM_RIGHTS fd; returns the fd and the message's payload (runc sends the pty's name).</summary>
    static unsafe (int Fd, string Name) ReceiveFd(Socket connection)
    {
        var data = new byte[256];
        var control = new byte[64];
        fixed (byte* dataPtr = data)
        fixed (byte* controlPtr = control)
        {
            var iov = new IoVec { Base = (nint)dataPtr, Len = (nuint)data.Length };
            var message = new MsgHdr { Iov = (nint)(&iov), IovLen = 1, Control = (nint)controlPtr, ControlLen = (nuint)control.Length };
            var n = recvmsg(connection.Handle, ref message, 0x40000000 /* MSG_CMSG_CLOEXEC */);
            if (n < 0) throw new IOException($"recvmsg: errno {Marshal.GetLastPInvokeError()}");
            var level = BitConverter.ToInt32(control, 8);
            var type = BitConverter.ToInt32(control, 12);
            if (message.ControlLen < 20 || level != 1 /* SOL_SOCKET */ || type != 1 /* SCM_RIGHTS */) return (-1, "");
            return (BitConverter.ToInt32(control, 16), Encoding.UTF8.GetString(data, 0, (int)n));
        }
    }
}
