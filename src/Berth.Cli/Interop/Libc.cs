using System.Runtime.InteropServices;

namespace Berth.Cli.Interop;

/// <summary>The few libc calls the CLI makes: raw reads and writes on the standard descriptors, termios, window size.</summary>
internal static partial class Libc
{
    public const int EINTR = 4, EAGAIN = 11;
    private const uint TIOCGWINSZ = 0x5413;
    private const int TCSANOW = 0;

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint write(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int isatty(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int tcgetattr(int fd, byte* termios);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int tcsetattr(int fd, int action, byte* termios);

    [LibraryImport("libc")]
    private static unsafe partial void cfmakeraw(byte* termios);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int ioctl(int fd, nuint request, ushort* winsize);

    public static bool IsTerminal(int fd) => isatty(fd) == 1;

    /// <summary>read(2), retried on EINTR; 0 at end of file; throws IOException with errno otherwise.</summary>
    public static unsafe int Read(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = read(fd, p, buffer.Length);
                if (n >= 0) return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != EINTR) throw new IOException($"read fd {fd}: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
    }

    /// <summary>write(2) of the whole buffer, retried on EINTR and short writes.</summary>
    public static unsafe void WriteAll(int fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                nint n = write(fd, p + done, buffer.Length - done);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR) continue;
                    throw new IOException($"write fd {fd}: {Marshal.GetPInvokeErrorMessage(errno)}");
                }
                done += (int)n;
            }
        }
    }

    /// <summary>The terminal's settings as an opaque blob (struct termios is 60 bytes on Linux).</summary>
    public static unsafe byte[]? GetTermios(int fd)
    {
        var t = new byte[64];
        fixed (byte* p = t)
            return tcgetattr(fd, p) == 0 ? t : null;
    }

    public static unsafe void SetTermios(int fd, byte[] termios)
    {
        fixed (byte* p = termios)
            if (tcsetattr(fd, TCSANOW, p) != 0)
                throw new IOException($"tcsetattr fd {fd}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
    }

    /// <summary>cfmakeraw: what Docker's term.MakeRaw does (no echo, no canonical mode, no signals, 8-bit, no output processing).</summary>
    public static unsafe byte[] MakeRaw(byte[] termios)
    {
        byte[] raw = (byte[])termios.Clone();
        fixed (byte* p = raw) cfmakeraw(p);
        return raw;
    }

    /// <summary>TIOCGWINSZ: (rows, columns), or null when fd is not a terminal.</summary>
    public static unsafe (int Rows, int Cols)? WindowSize(int fd)
    {
        ushort* ws = stackalloc ushort[4];
        if (ioctl(fd, TIOCGWINSZ, ws) != 0) return null;
        return (ws[0], ws[1]);
    }
}
