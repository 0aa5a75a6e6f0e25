using System.IO.Compression;

namespace Berth.Images.Layers;

/// <summary>How a layer blob is compressed.</summary>
public enum LayerCompression
{
    None,
    Gzip,
    Zstd,
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
        if (magic.StartsWith(XzMagic) || magic.StartsWith(Bzip2Magic))
            throw new ImagesException(ImagesErrorKind.InvalidArgument,
                "layer is compressed with xz or bzip2; only uncompressed, gzip and zstd layers are supported");
        compression = LayerCompression.None;
        return rest;
    }
}
