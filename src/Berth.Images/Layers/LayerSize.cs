using System.Text;

namespace Berth.Images.Layers;

/// <summary>
/// A layer's size as Docker reports it (image Size, <c>docker images</c>, history): what the layer
/// holds once unpacked, as dockerd's graph driver measures its diff directory (moby's
/// directory.Size): regular files by length, symlinks by the length of their target, a hard link's
/// data once, directories, devices and whiteouts nothing. Counted from the tar's entries, so the
/// same figure comes from unpacking the layer, importing it or measuring its blob.
/// </summary>
public static class LayerSize
{
    internal static long Of(TarHeader entry) => entry.Kind switch
    {
        TarEntryKind.File => entry.Size,
        TarEntryKind.Symlink => Encoding.UTF8.GetByteCount(entry.LinkName),
        _ => 0,
    };

    /// <summary>The unpacked size of the layer tar <paramref name="layer"/> (plain, gzip or zstd), read to its end.</summary>
    /// <exception cref="ImagesException">InvalidArgument: not a tar.</exception>
    public static long Measure(Stream layer, CancellationToken cancellationToken = default)
    {
        using Stream uncompressed = LayerDecompression.Open(layer, out _);
        var reader = new LayerTarReader(uncompressed);
        long size = 0;
        while (reader.Next() is { } entry)
        {
            cancellationToken.ThrowIfCancellationRequested();
            size += Of(entry);
        }
        return size;
    }
}
