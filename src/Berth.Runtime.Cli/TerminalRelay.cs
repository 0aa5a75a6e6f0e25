using System.Runtime.InteropServices;
using Berth.Runtime.Native;

namespace Berth.Runtime.Cli;

/// <summary>
/// `run` of a container with terminal: true and no --console-socket, as runc does it:
/// the runtime receives the pty master itself and relays it to its own stdin/stdout,
/// with the caller's terminal in raw mode and window size changes passed on.
/// </summary>
internal sealed class TerminalRelay : IDisposable
{
    readonly int _master;
    readonly byte[]? _savedTermios;
    readonly PosixSignalRegistration? _winch;

    TerminalRelay(int master)
    {
        _master = master;
        if (LibC.isatty(0) == 1)
        {
            var termios = new byte[LibC.TermiosSize];
            if (LibC.tcgetattr(0, termios) == 0)
            {
                _savedTermios = termios.ToArray();
                LibC.cfmakeraw(termios);
                LibC.tcsetattr(0, 0 /* TCSANOW */, termios);
            }
            CopyWindowSize();
            _winch = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, _ => CopyWindowSize());
        }
    }

    /// <summary>Waits for the master on <paramref name="socket"/> and starts relaying.</summary>
    public static TerminalRelay Start(int socket)
    {
        var relay = new TerminalRelay(LibC.ReceiveFd(socket));
        var input = new Thread(relay.CopyInput) { IsBackground = true, Name = "pty input" };
        input.Start();
        return relay;
    }

    void CopyWindowSize()
    {
        var size = new LibC.WinSize();
        if (LibC.ioctl(1, LibC.TIOCGWINSZ, ref size) == 0 || LibC.ioctl(0, LibC.TIOCGWINSZ, ref size) == 0)
            LibC.ioctl(_master, LibC.TIOCSWINSZ, ref size);
    }

    void CopyInput() => Copy(0, _master);

    /// <summary>Copies the container's output until the pty closes (EIO once its last holder exits).</summary>
    public void CopyOutputToEnd() => Copy(_master, 1);

    static void Copy(int from, int to)
    {
        Span<byte> buffer = stackalloc byte[16 * 1024];
        while (true)
        {
            var n = LibC.read(from, buffer, buffer.Length);
            if (n < 0 && LibC.Errno == Sys.EINTR) continue;
            if (n <= 0) return;
            for (nint done = 0; done < n;)
            {
                var written = LibC.write(to, buffer[(int)done..(int)n], n - done);
                if (written < 0 && LibC.Errno == Sys.EINTR) continue;
                if (written <= 0) return;
                done += written;
            }
        }
    }

    public void Dispose()
    {
        _winch?.Dispose();
        if (_savedTermios is not null) LibC.tcsetattr(0, 0, _savedTermios);
        LibC.close(_master);
    }
}
