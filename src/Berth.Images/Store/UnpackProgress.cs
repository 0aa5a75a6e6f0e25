using Berth.Images.Content;

namespace Berth.Images.Store;

/// <summary>
/// Progress of unpacking one layer: <paramref name="Current"/> bytes of the layer blob (as
/// stored: compressed, like docker's "Extracting" bar) read of <paramref name="Total"/>;
/// <paramref name="Done"/> once it is committed as a snapshot.
/// </summary>
public sealed record UnpackProgress(Digest Layer, long Current, long Total, bool Done);

/// <summary>Counts what is read through it and reports it, at most every 100 ms (and once at the end, by the caller).</summary>
internal sealed class ProgressReadStream(Stream inner, Action<long> report) : ReadOnlyStream
{
    private long _read;
    private long _lastReport = Environment.TickCount64;

    public long BytesRead => _read;

    public override int Read(byte[] buffer, int offset, int count) => Counted(inner.Read(buffer, offset, count));

    public override int Read(Span<byte> buffer) => Counted(inner.Read(buffer));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        => Counted(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    private int Counted(int n)
    {
        _read += n;
        long now = Environment.TickCount64;
        if (n > 0 && now - _lastReport >= 100)
        {
            _lastReport = now;
            report(_read);
        }
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
