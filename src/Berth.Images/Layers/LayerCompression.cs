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
        var rest = new PrefixedStream(head.AsMemory(0, n), layer);
        ReadOnlySpan<byte> magic = head.AsSpan(0, n);
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
