using Berth.Images.Manifests;

namespace Berth.Images.Registry;

/// <summary>
/// Sees a blob's bytes as they download, in order, beside the content store that keeps them (an
/// image store unpacks a layer while it downloads). Security: the bytes arrive before the store has
/// checked them against the digest, so a sink must treat them as untrusted and make nothing of them
/// visible until <see cref="Finish"/> says the download completed and was verified.
/// </summary>
public interface IBlobSink
{
    /// <summary>The next bytes (the buffer is reused after the call: copy what you keep). Returns false when the sink wants no more.</summary>
    ValueTask<bool> WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>
    /// The download is over. <paramref name="complete"/>: every byte of the blob went through
    /// <see cref="WriteAsync"/> in one attempt and the store verified them against the digest; false
    /// when the download failed, was retried, was not needed (the blob was already there or another
    /// pull fetched it) or the sink gave up. Called at least once; calls after the first are ignored.
    /// </summary>
    void Finish(bool complete);
}

/// <summary>Chooses, once a pull has read the image config, which layers get a sink (null for none).</summary>
public delegate IBlobSink? LayerSinkFactory(int index, Descriptor layer, ImageConfig config);

/// <summary>Passes what is read through it on to a sink until the sink declines more.</summary>
internal sealed class TeeStream(Stream inner, IBlobSink sink) : ReadOnlyStream
{
    private bool _sinking = true;

    /// <summary>Bytes passed to the sink.</summary>
    public long Delivered { get; private set; }

    /// <summary>Whether the sink took every byte read.</summary>
    public bool SinkTookAll => _sinking;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (n > 0 && _sinking)
        {
            _sinking = await sink.WriteAsync(buffer[..n], cancellationToken).ConfigureAwait(false);
            if (_sinking) Delivered += n;
        }
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // The content store reads asynchronously; a synchronous reader would block on the sink here.
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
