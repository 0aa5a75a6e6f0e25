namespace Berth.Images.Layers;

/// <summary>
/// What System.Formats.Tar and the decompressors throw on a client's malformed archive (a truncated
/// tar, a header that does not parse, gzip that is not gzip), as an InvalidArgument naming the problem
/// in dockerd's words ("Error processing tar file…") instead of a bare .NET message answered as a 500.
/// </summary>
public static class MalformedArchive
{
    public static bool Is(Exception e) => e is InvalidDataException or FormatException or EndOfStreamException or ZstdSharp.ZstdException;

    /// <param name="what">What the archive is, for the message ("Error processing tar file" when null).</param>
    public static ImagesException Error(Exception e, string? what = null)
    {
        string problem = e switch
        {
            EndOfStreamException => "unexpected EOF: the archive is truncated",
            // TarReader's failures on a header (a number field that does not parse, a bad checksum); the decompressors'
            // own InvalidDataException never gets here, DecompressionGuardStream names those.
            FormatException or InvalidDataException => "archive/tar: invalid tar header",
            _ => e.Message,
        };
        return new ImagesException(ImagesErrorKind.InvalidArgument, $"{what ?? "Error processing tar file"}: {problem}", e);
    }

    /// <summary>Runs a read of the archive, turning a malformed-archive failure into <see cref="Error"/>.</summary>
    public static T Guard<T>(Func<T> read, string? what = null)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (Is(e))
        {
            throw Error(e, what);
        }
    }
}

/// <summary>
/// A decompressing stream whose corrupt input (gzip, zstd, bzip2 or xz data that does not decode; SharpCompress's
/// xz reader says a truncated header with an ArgumentOutOfRangeException) fails as
/// InvalidArgument "Error processing tar file(gzip): …", whoever reads it.
/// </summary>
internal sealed class DecompressionGuardStream(Stream inner, string format) : ReadOnlyStream
{
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        try
        {
            return inner.Read(buffer);
        }
        catch (Exception e) when (e is InvalidDataException or ZstdSharp.ZstdException or SharpCompress.Common.SharpCompressException or ArgumentOutOfRangeException)
        {
            throw Corrupt(e);
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidDataException or ZstdSharp.ZstdException or SharpCompress.Common.SharpCompressException or ArgumentOutOfRangeException)
        {
            throw Corrupt(e);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    private ImagesException Corrupt(Exception e)
        => new(ImagesErrorKind.InvalidArgument, $"Error processing tar file({format}): corrupt compressed data: {e.Message}", e);
}
