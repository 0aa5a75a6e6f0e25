using System.IO.Compression;

namespace Berth.Images.Layers;

/// <summary>How a layer blob is compressed.</summary>
public enum LayerCompression
{
    None,
    Gzip,
    Zstd,
}

internal static class LayerDecompression
{
    private static ReadOnlySpan<byte> GzipMagic => [0x1f, 0x8b];
    private static ReadOnlySpan<byte> ZstdMagic => [0x28, 0xb5, 0x2f, 0xfd];
    private static ReadOnlySpan<byte> XzMagic => [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
    private static ReadOnlySpan<byte> Bzip2Magic => "BZh"u8;

    /// <summary>Detects the compression by its magic bytes and returns the uncompressed stream.</summary>
    public static Stream Open(Stream layer, out LayerCompression compression)
    {
        byte[] head = new byte[6];
        int n = layer.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var rest = new PrefixedStream(head.AsMemory(0, n), layer);
        ReadOnlySpan<byte> magic = head.AsSpan(0, n);
        if (magic.StartsWith(GzipMagic))
        {
            compression = LayerCompression.Gzip;
            return new GZipStream(rest, CompressionMode.Decompress);
        }
        if (magic.StartsWith(ZstdMagic))
        {
            compression = LayerCompression.Zstd;
            return new ZstdSharp.DecompressionStream(rest);
        }
        if (magic.StartsWith(XzMagic) || magic.StartsWith(Bzip2Magic))
            throw new ImagesException(ImagesErrorKind.InvalidArgument,
                "layer is compressed with xz or bzip2; only uncompressed, gzip and zstd layers are supported");
        compression = LayerCompression.None;
        return rest;
    }

    /// <summary>Replays bytes already read for sniffing, then the rest of the stream.</summary>
    private sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream inner) : ReadOnlyStream
    {
        private ReadOnlyMemory<byte> _prefix = prefix;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_prefix.IsEmpty) return inner.Read(buffer);
            int n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_prefix.IsEmpty) return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            return Read(buffer.Span);
        }

    }
}
