namespace Berth.Images.Content;

/// <summary>What the store knows about one blob.</summary>
public sealed record ContentInfo(Digest Digest, long Size, DateTimeOffset CreatedAt);

/// <summary>
/// A content-addressed blob store (containerd's core/content). Blobs are immutable and named by
/// their sha256 digest; every write is verified against the digest it claims before it becomes
/// visible, and every full read is verified again.
/// </summary>
public interface IContentStore
{
    /// <summary>
    /// Stores <paramref name="content"/> as the blob <paramref name="expected"/>. The bytes are
    /// hashed while written; on a digest or size mismatch nothing is stored and an
    /// <see cref="ImagesException"/> of kind <see cref="ImagesErrorKind.DataLoss"/> names both digests.
    /// If the blob is already present the stream is not read. Concurrent writes of the same digest
    /// store it once: the later writer waits and then finds it present.
    /// </summary>
    /// <param name="expectedSize">The size the descriptor announces, or null when unknown.</param>
    Task<ContentInfo> WriteAsync(Stream content, Digest expected, long? expectedSize = null, CancellationToken cancellationToken = default);

    /// <summary>Opens a blob for reading. Reading to the end verifies the digest and throws on mismatch.</summary>
    /// <exception cref="ImagesException">NotFound when the blob is absent.</exception>
    Stream OpenRead(Digest digest);

    /// <summary>Whether the blob is present (fully written and committed).</summary>
    bool Exists(Digest digest);

    /// <summary>Size and creation time of a blob.</summary>
    /// <exception cref="ImagesException">NotFound when the blob is absent.</exception>
    ContentInfo Info(Digest digest);

    /// <summary>Deletes a blob; returns false when it was not present.</summary>
    bool Delete(Digest digest);

    /// <summary>Every committed blob, in no particular order.</summary>
    IEnumerable<ContentInfo> List();
}
