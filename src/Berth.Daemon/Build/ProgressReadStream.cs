namespace Berth.Daemon.Build;

/// <summary>
/// Reports bytes read as dockerd's progress.Reader does: every 512 kB (or 1% of a known size, when
/// smaller), at most ten times a second, and once at the end.
/// </summary>
public sealed class ProgressReadStream(Stream inner, Action<long, bool>? report, long size = 0) : Berth.Images.ReadOnlyStream
{
    private long _current;
    private long _lastUpdate;
    private long _lastReportTicks;
    private bool _finished;

    public long Current => _current;

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        Advance(n);
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await inner.ReadAsync(buffer, cancellationToken);
        Advance(n);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private void Advance(int n)
    {
        _current += n;
        long every = 512 * 1024;
        if (size > 0) every = Math.Min(every, size / 100);
        if (n == 0)
        {
            Finish();
            return;
        }
        if (_current - _lastUpdate <= every) return;
        _lastUpdate = _current;
        long now = Environment.TickCount64;
        if (_current == size || now - _lastReportTicks >= 100)
        {
            _lastReportTicks = now;
            report?.Invoke(_current, false);
        }
    }

    /// <summary>
    /// The last report (once): what was read in all, or, as dockerd's reader says when closed before the
    /// end (a decompressor that stopped short of the body's trailer), the full size.
    /// </summary>
    public void Finish()
    {
        if (_finished) return;
        _finished = true;
        report?.Invoke(Math.Max(_current, size), true);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
