using System.Security.Cryptography;

namespace Berth.Images.Content;

/// <summary>
/// Hashes what is read and, on reaching the end, throws if the bytes were not the expected digest
/// (a blob corrupted on disk is never handed on as good once read to the end). Not seekable, so
/// the hash always covers every byte returned.
/// </summary>
internal sealed class VerifyingReadStream(Stream inner, Digest expected, long length) : ReadOnlyStream
{
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _position;
    private bool _verified;

    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        return Account(buffer[..n], buffer.Length);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Account(buffer.Span[..n], buffer.Length);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private int Account(ReadOnlySpan<byte> data, int requested)
    {
        _sha.AppendData(data);
        _position += data.Length;
        if (data.Length == 0 && requested > 0 && !_verified)
        {
            _verified = true;
            Digest actual = Digest.FromSha256(_sha.GetHashAndReset());
            if (actual != expected)
                throw new ImagesException(ImagesErrorKind.DataLoss,
                    $"blob {expected} is corrupt: its content is {actual} ({_position} bytes)");
        }
        return data.Length;
    }


    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            _sha.Dispose();
        }
        base.Dispose(disposing);
    }
}
