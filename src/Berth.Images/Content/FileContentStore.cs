using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Berth.Images.Content;

/// <summary>
/// The content store on a local filesystem:
/// <code>
/// &lt;root&gt;/blobs/sha256/&lt;hex&gt;      committed blobs, read-only (0444)
/// &lt;root&gt;/ingest/&lt;hex&gt;.data      a blob being written
/// &lt;root&gt;/ingest/&lt;hex&gt;.lock      flock held by its writer
/// </code>
/// Atomicity: a blob is written to ingest/, verified, fsynced, and renamed into blobs/ (then the
/// blobs directory is fsynced). Only blobs/ counts as present, so a crash at any point leaves
/// either nothing or the whole verified blob. Stale ingest files (whose lock nobody holds) are
/// removed when the store is opened.
/// Concurrency: writers of one digest serialise on its lock file; the later one finds the blob
/// present and does not read its stream.
/// </summary>
public sealed class FileContentStore : IContentStore
{
    private const int BufferSize = 128 * 1024;
    private readonly string _blobs;
    private readonly string _ingest;

    /// <summary>Opens (creating if needed) a store under <paramref name="root"/> and cleans stale ingests.</summary>
    public FileContentStore(string root)
    {
        Root = Path.GetFullPath(root);
        _blobs = Path.Combine(Root, "blobs", Digest.Sha256Algorithm);
        _ingest = Path.Combine(Root, "ingest");
        Directory.CreateDirectory(_blobs);
        Directory.CreateDirectory(_ingest);
        CleanStaleIngests();
    }

    public string Root { get; }

    /// <summary>Where a committed blob lives (for callers that hand the file to another process).</summary>
    public string BlobPath(Digest digest) => Path.Combine(_blobs, digest.Hex);

    public async Task<ContentInfo> WriteAsync(Stream content, Digest expected, long? expectedSize = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (expectedSize < 0)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"invalid size {expectedSize} for {expected}");

        if (TryInfo(expected) is { } present) return CheckPresentSize(present, expectedSize);

        using FileLock ingestLock = await FileLock.AcquireAsync(Path.Combine(_ingest, expected.Hex + ".lock"), cancellationToken).ConfigureAwait(false);
        if (TryInfo(expected) is { } writtenMeanwhile) return CheckPresentSize(writtenMeanwhile, expectedSize);

        string dataPath = Path.Combine(_ingest, expected.Hex + ".data");
        bool committed = false;
        try
        {
            long size = 0;
            using (SafeFileHandle fd = Interop.Open(dataPath, Interop.O_WRONLY | Interop.O_CREAT | Interop.O_TRUNC | Interop.O_NOFOLLOW, 0x1A4 /* 0644 */))
            using (var file = new FileStream(fd, FileAccess.Write, bufferSize: 0))
            using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                byte[] buffer = new byte[BufferSize];
                int n;
                while ((n = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    size += n;
                    if (size > expectedSize)
                        throw new ImagesException(ImagesErrorKind.DataLoss,
                            $"size mismatch for {expected}: expected {expectedSize} bytes, received more; nothing was stored");
                    sha.AppendData(buffer, 0, n);
                    await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                }
                Digest actual = Digest.FromSha256(sha.GetHashAndReset());
                if (expectedSize is long want && size != want)
                    throw new ImagesException(ImagesErrorKind.DataLoss,
                        $"size mismatch for {expected}: expected {want} bytes, received {size} (content digest {actual}); nothing was stored");
                if (actual != expected)
                    throw new ImagesException(ImagesErrorKind.DataLoss,
                        $"digest mismatch: expected {expected}, content is {actual} ({size} bytes); nothing was stored");
                if (Interop.fchmod(fd, 0x124 /* 0444 */) < 0) throw Interop.Error("fchmod", dataPath);
                Interop.Fsync(fd, dataPath);
            }
            string blobPath = BlobPath(expected);
            File.Move(dataPath, blobPath, overwrite: true);
            committed = true;
            Interop.FsyncDirectory(_blobs);
            return Info(expected);
        }
        finally
        {
            if (!committed) TryDelete(dataPath);
        }
    }

    public Stream OpenRead(Digest digest)
    {
        string path = BlobPath(digest);
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        }
        catch (FileNotFoundException)
        {
            throw NotFound(digest);
        }
        return new VerifyingReadStream(file, digest, file.Length);
    }

    public bool Exists(Digest digest) => File.Exists(BlobPath(digest));

    public ContentInfo Info(Digest digest) => TryInfo(digest) ?? throw NotFound(digest);

    public bool Delete(Digest digest)
    {
        string path = BlobPath(digest);
        if (!File.Exists(path)) return false;
        try
        {
            File.Delete(path);
        }
        catch (FileNotFoundException)
        {
            return false;
        }
        Interop.FsyncDirectory(_blobs);
        return true;
    }

    public IEnumerable<ContentInfo> List()
    {
        foreach (string path in Directory.EnumerateFiles(_blobs))
        {
            if (!Digest.TryParse(Digest.Sha256Algorithm + ":" + Path.GetFileName(path), out Digest digest)) continue;
            if (TryInfo(digest) is { } info) yield return info;
        }
    }

    private ContentInfo? TryInfo(Digest digest)
    {
        var file = new FileInfo(BlobPath(digest));
        if (!file.Exists) return null;
        return new ContentInfo(digest, file.Length, new DateTimeOffset(file.LastWriteTimeUtc));
    }

    private static ContentInfo CheckPresentSize(ContentInfo present, long? expectedSize)
        => expectedSize is null || expectedSize == present.Size
            ? present
            : throw new ImagesException(ImagesErrorKind.DataLoss,
                $"size mismatch for {present.Digest}: expected {expectedSize} bytes, the stored blob has {present.Size}");

    private static ImagesException NotFound(Digest digest) => new(ImagesErrorKind.NotFound, $"blob {digest} not found");

    /// <summary>
    /// Removes what crashed writers left in ingest/. A file is only stale if its lock can be taken:
    /// a writer in another live process still holds its lock and is left alone.
    /// </summary>
    private void CleanStaleIngests()
    {
        foreach (string path in Directory.EnumerateFiles(_ingest))
        {
            string name = Path.GetFileName(path);
            if (!name.EndsWith(".data", StringComparison.Ordinal) && !name.EndsWith(".lock", StringComparison.Ordinal))
            {
                TryDelete(path);
                continue;
            }
            string stem = name[..^5];
            using FileLock? owner = FileLock.TryAcquire(Path.Combine(_ingest, stem + ".lock"));
            if (owner is not null) TryDelete(Path.Combine(_ingest, stem + ".data"));
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }
}
