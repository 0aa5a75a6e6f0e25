using System.IO.Compression;

namespace Berth.Images.Layers;

/// <summary>How a layer blob is compressed.</summary>
public enum LayerCompression
{
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

public static class LayerDecompression
{
    private static ReadOnlySpan<byte> GzipMagic => [0x1f, 0x8b];
    private static ReadOnlySpan<byte> ZstdMagic => [0x28, 0xb5, 0x2f, 0xfd];
    private static ReadOnlySpan<byte> XzMagic => [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
    private static ReadOnlySpan<byte> Bzip2Magic => "BZh"u8;

    /// <summary>Whether <paramref name="head"/> (a stream's first bytes) starts like gzip, zstd, xz or bzip2.</summary>
    public static bool IsCompressed(ReadOnlySpan<byte> head)
        => head.StartsWith(GzipMagic) || head.StartsWith(ZstdMagic) || head.StartsWith(XzMagic) || head.StartsWith(Bzip2Magic);

    /// <summary>Detects the compression by its magic bytes and returns the uncompressed stream.</summary>
    internal static Stream Open(Stream layer, out LayerCompression compression)
    {
        byte[] head = new byte[6];
        int n = layer.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return Open(layer, head.AsMemory(0, n), out compression);
    }

    /// <summary>
    /// <see cref="Open(Stream, out LayerCompression)"/> for a stream that may be slow to give its first
    /// bytes (a request body): the magic is read without holding a thread, so clients sending a byte a
    /// second cannot starve the thread pool (each blocked read held one pool thread).
    /// </summary>
    internal static async Task<Stream> OpenAsync(Stream layer, CancellationToken cancellationToken)
    {
        byte[] head = new byte[6];
        int n = await layer.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        return Open(layer, head.AsMemory(0, n), out _);
    }

    private static Stream Open(Stream layer, ReadOnlyMemory<byte> head, out LayerCompression compression)
    {
        var rest = new PrefixedStream(head, layer);
        ReadOnlySpan<byte> magic = head.Span;
        if (magic.StartsWith(GzipMagic))
        {
            compression = LayerCompression.Gzip;
            return new DecompressionGuardStream(new GZipStream(rest, CompressionMode.Decompress), "gzip");
        }
        if (magic.StartsWith(ZstdMagic))
        {
            compression = LayerCompression.Zstd;
            return new DecompressionGuardStream(new ZstdSharp.DecompressionStream(rest), "zstd");
        }
        // dockerd's archive.DecompressStream takes these two as well (import, build contexts); registries never serve them.
        if (magic.StartsWith(XzMagic))
        {
            compression = LayerCompression.Xz;
            // XZStream asks its input for Position (block sizes); a network stream has none, so it is counted.
            return new DecompressionGuardStream(new SharpCompress.Compressors.Xz.XZStream(new PositionCountingStream(rest)), "xz");
        }
        if (magic.StartsWith(Bzip2Magic))
        {
            compression = LayerCompression.Bzip2;
            try
            {
                return new DecompressionGuardStream(SharpCompress.Compressors.BZip2.BZip2Stream.Create(rest, SharpCompress.Compressors.CompressionMode.Decompress,
                    decompressConcatenated: true, leaveOpen: false, tolerateTruncatedStream: false), "bzip2");
            }
            catch (SharpCompress.Common.SharpCompressException e)
            {
                // BZip2Stream reads its first block as it is made, before DecompressionGuardStream can name a failure.
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"Error processing tar file(bzip2): corrupt compressed data: {e.Message}", e);
            }
        }
        compression = LayerCompression.None;
        return rest;
    }
}

/// <summary>A forward-only stream that knows its <see cref="Position"/>: the bytes read so far (xz's
/// decoder asks for it; the build context's tar reader checks where an archive ended).</summary>
public sealed class PositionCountingStream(Stream inner) : ReadOnlyStream
{
    private long _position;

    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        _position += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        _position += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
