using System.Runtime.InteropServices;
using Berth.Cli.Interop;

namespace Berth.Cli.Terminal;

/// <summary>
/// Puts the terminal on stdin into raw mode (as Docker's <c>term.SetRawTerminal</c>) for <c>-it</c>
/// and restores it on every way out: Dispose, process exit, and SIGTERM/SIGHUP/SIGQUIT (the
/// handlers restore, then let the default action end the process). In raw mode ctrl-c reaches
/// the container as a byte, so SIGINT does not arrive from the keyboard.
/// </summary>
internal sealed class RawTerminal : IDisposable
{
    private static RawTerminal? s_active;
    private readonly byte[] _saved;
    private readonly List<PosixSignalRegistration> _signals = [];
    private int _restored;

    private RawTerminal(byte[] saved)
    {
        _saved = saved;
        s_active = this;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Restore();
        foreach (PosixSignal s in new[] { PosixSignal.SIGTERM, PosixSignal.SIGHUP, PosixSignal.SIGQUIT })
            _signals.Add(PosixSignalRegistration.Create(s, _ => Restore()));
    }

    /// <summary>Raw mode on fd 0 when it is a terminal; null otherwise.</summary>
    public static RawTerminal? Enter()
    {
        if (!Libc.IsTerminal(StdIn)) return null;
        byte[]? saved = Libc.GetTermios(StdIn);
        if (saved is null) return null;
        var t = new RawTerminal(saved);
        Libc.SetTermios(StdIn, Libc.MakeRaw(saved));
        return t;
    }

    private const int StdIn = 0;

    public void Restore()
    {
        if (Interlocked.Exchange(ref _restored, 1) != 0) return;
        try
        {
            Libc.SetTermios(StdIn, _saved);
        }
        catch (IOException)
        {
        }
        if (s_active == this) s_active = null;
    }

    public void Dispose()
    {
        Restore();
        foreach (PosixSignalRegistration r in _signals) r.Dispose();
    }
}

/// <summary>Sends the terminal's size at start and on every SIGWINCH (<c>POST …/resize?h=&amp;w=</c>).</summary>
internal sealed class ResizeMonitor : IDisposable
{
    private readonly Func<int, int, Task> _resize;
    private readonly PosixSignalRegistration? _registration;

    public ResizeMonitor(Func<int, int, Task> resize)
    {
        _resize = resize;
        _registration = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, ctx =>
        {
            ctx.Cancel = true;
            _ = SendAsync();
        });
    }

    /// <summary>
    /// One resize at a time, the size read once it is this one's turn: `stty rows 50 cols 120` changes the size
    /// twice (two SIGWINCHes), and two requests in flight at once could reach berthd in either order, leaving the
    /// container at 50×(old cols). Read under the lock, the last request always carries the last size.
    /// </summary>
    private readonly SemaphoreSlim _sending = new(1, 1);

    public async Task SendAsync()
    {
        await _sending.WaitAsync().ConfigureAwait(false);
        try
        {
            if ((Libc.WindowSize(1) ?? Libc.WindowSize(0)) is not var (rows, cols) || (rows == 0 && cols == 0)) return;
            await _resize(rows, cols).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A resize that fails (the container just exited) is not worth an error, as in docker.
        }
        finally
        {
            _sending.Release();
        }
    }

    public void Dispose() => _registration?.Dispose();
}
