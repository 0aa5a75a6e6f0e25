using System.Security.Cryptography;
using System.Text;
using Berth.Images.Content;

namespace Berth.Images.Tests.Content;

/// <summary>
/// The behaviour every <see cref="IContentStore"/> must have (containerd's core/content/testsuite).
/// A test class per implementation derives from this and supplies <see cref="CreateStore"/>.
/// </summary>
public abstract class ContentStoreConformanceTests : IDisposable
{
    private readonly List<IDisposable> _cleanup = [];

    /// <summary>A fresh, empty store, and whatever must be disposed after the test.</summary>
    protected abstract (IContentStore Store, IDisposable Cleanup) CreateStore();

    private IContentStore NewStore()
    {
        var (store, cleanup) = CreateStore();
        _cleanup.Add(cleanup);
        return store;
    }

    public void Dispose()
    {
        foreach (IDisposable d in _cleanup) d.Dispose();
        GC.SuppressFinalize(this);
    }

    protected static byte[] RandomBytes(int n)
    {
        byte[] data = new byte[n];
        Random.Shared.NextBytes(data);
        return data;
    }

    private static async Task<byte[]> ReadAllAsync(IContentStore store, Digest digest)
    {
        using Stream s = store.OpenRead(digest);
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms);
        return ms.ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(3 * 1024 * 1024 + 17)]
    public async Task Write_then_read_returns_the_same_bytes(int size)
    {
        IContentStore store = NewStore();
        byte[] data = RandomBytes(size);
        Digest digest = Digest.Compute(data);

        ContentInfo info = await store.WriteAsync(new MemoryStream(data), digest, data.Length);

        Assert.Equal(digest, info.Digest);
        Assert.Equal(size, info.Size);
        Assert.True(store.Exists(digest));
        Assert.Equal(data, await ReadAllAsync(store, digest));
        Assert.Equal(size, store.Info(digest).Size);
    }

    [Fact]
    public async Task Write_without_a_known_size_is_verified_by_digest()
    {
        IContentStore store = NewStore();
        byte[] data = RandomBytes(1000);
        ContentInfo info = await store.WriteAsync(new MemoryStream(data), Digest.Compute(data));
        Assert.Equal(1000, info.Size);
    }

    [Fact]
    public async Task Digest_mismatch_stores_nothing_and_names_both_digests()
    {
        IContentStore store = NewStore();
        byte[] data = Encoding.UTF8.GetBytes("the real content");
        Digest claimed = Digest.Compute(Encoding.UTF8.GetBytes("what the manifest said"));

        var e = await Assert.ThrowsAsync<ImagesException>(() => store.WriteAsync(new MemoryStream(data), claimed, data.Length));

        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
        Assert.Contains(claimed.ToString(), e.Message);
        Assert.Contains(Digest.Compute(data).ToString(), e.Message);
        Assert.False(store.Exists(claimed));
        Assert.False(store.Exists(Digest.Compute(data)));
        Assert.Empty(store.List());
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(+1)]
    public async Task Size_mismatch_stores_nothing(int delta)
    {
        IContentStore store = NewStore();
        byte[] data = RandomBytes(500);
        Digest digest = Digest.Compute(data);

        var e = await Assert.ThrowsAsync<ImagesException>(() => store.WriteAsync(new MemoryStream(data), digest, data.Length + delta));

        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
        Assert.Contains("size mismatch", e.Message);
        Assert.Contains(digest.ToString(), e.Message);
        Assert.False(store.Exists(digest));
        Assert.Empty(store.List());
    }

    [Fact]
    public async Task Writing_a_present_blob_does_not_read_the_stream()
    {
        IContentStore store = NewStore();
        byte[] data = RandomBytes(100);
        Digest digest = Digest.Compute(data);
        await store.WriteAsync(new MemoryStream(data), digest, data.Length);

        var second = new CountingStream(new MemoryStream(data));
        ContentInfo info = await store.WriteAsync(second, digest, data.Length);

        Assert.Equal(0, second.BytesRead);
        Assert.Equal(100, info.Size);
    }

    [Fact]
    public async Task A_failing_source_stores_nothing_and_a_retry_succeeds()
    {
        IContentStore store = NewStore();
        byte[] data = RandomBytes(300_000);
        Digest digest = Digest.Compute(data);

        await Assert.ThrowsAsync<IOException>(() => store.WriteAsync(new FailingStream(data, failAfter: 200_000), digest, data.Length));
        Assert.False(store.Exists(digest));

        await store.WriteAsync(new MemoryStream(data), digest, data.Length);
        Assert.Equal(data, await ReadAllAsync(store, digest));
    }

    [Fact]
    public async Task Cancelled_write_stores_nothing()
    {
        IContentStore store = NewStore();
        byte[] data = RandomBytes(10_000);
        Digest digest = Digest.Compute(data);
        using var cts = new CancellationTokenSource();
        var gate = new GatedStream(data, gateAt: 5_000);

        Task write = store.WriteAsync(gate, digest, data.Length, cts.Token);
        await gate.ReachedGate.Task.WaitAsync(TimeSpan.FromSeconds(10));
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => write);

        Assert.False(store.Exists(digest));
    }

    [Fact]
    public async Task Concurrent_writes_of_one_digest_write_it_once()
    {
        IContentStore store = NewStore();
        byte[] data = RandomBytes(64 * 1024);
        Digest digest = Digest.Compute(data);
        var first = new GatedStream(data, gateAt: 1024);
        var second = new CountingStream(new MemoryStream(data));

        Task<ContentInfo> firstWrite = store.WriteAsync(first, digest, data.Length);
        await first.ReachedGate.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Task<ContentInfo> secondWrite = store.WriteAsync(second, digest, data.Length);
        await Task.Delay(100);
        Assert.False(secondWrite.IsCompleted, "the second writer must wait for the first");
        first.Open.SetResult();

        ContentInfo[] infos = await Task.WhenAll(firstWrite, secondWrite).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.All(infos, i => Assert.Equal(data.Length, i.Size));
        Assert.Equal(0, second.BytesRead);
        Assert.Equal(data, await ReadAllAsync(store, digest));
    }

    [Fact]
    public async Task Many_concurrent_writers_of_different_and_equal_digests()
    {
        IContentStore store = NewStore();
        byte[][] blobs = Enumerable.Range(0, 8).Select(_ => RandomBytes(20_000)).ToArray();
        Task[] writes = Enumerable.Range(0, 32)
            .Select(i => Task.Run(() => store.WriteAsync(new MemoryStream(blobs[i % 8]), Digest.Compute(blobs[i % 8]), blobs[i % 8].Length)))
            .ToArray();
        await Task.WhenAll(writes);

        Assert.Equal(blobs.Select(b => Digest.Compute(b)).OrderBy(d => d.Value), store.List().Select(i => i.Digest).OrderBy(d => d.Value));
    }

    [Fact]
    public async Task Delete_removes_and_reports_absence()
    {
        IContentStore store = NewStore();
        byte[] data = RandomBytes(10);
        Digest digest = Digest.Compute(data);
        await store.WriteAsync(new MemoryStream(data), digest, data.Length);

        Assert.True(store.Delete(digest));
        Assert.False(store.Exists(digest));
        Assert.False(store.Delete(digest));
        Assert.Empty(store.List());
    }

    [Fact]
    public void Missing_blob_is_NotFound()
    {
        IContentStore store = NewStore();
        Digest digest = Digest.Compute("nothing"u8);
        Assert.False(store.Exists(digest));
        Assert.Equal(ImagesErrorKind.NotFound, Assert.Throws<ImagesException>(() => store.OpenRead(digest)).Kind);
        Assert.Equal(ImagesErrorKind.NotFound, Assert.Throws<ImagesException>(() => store.Info(digest)).Kind);
    }

    [Fact]
    public async Task List_walks_every_blob()
    {
        IContentStore store = NewStore();
        var expected = new Dictionary<Digest, long>();
        for (int i = 0; i < 5; i++)
        {
            byte[] data = RandomBytes(i * 10);
            expected[Digest.Compute(data)] = data.Length;
            await store.WriteAsync(new MemoryStream(data), Digest.Compute(data), data.Length);
        }

        Assert.Equal(expected.OrderBy(e => e.Key.Value), store.List().Select(i => KeyValuePair.Create(i.Digest, i.Size)).OrderBy(e => e.Key.Value));
    }

    protected sealed class CountingStream(Stream inner) : Stream
    {
        public long BytesRead { get; private set; }
        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = inner.Read(buffer, offset, count);
            BytesRead += n;
            return n;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>Serves its bytes up to <c>gateAt</c>, then waits for <see cref="Open"/> (or cancellation).</summary>
    protected sealed class GatedStream(byte[] data, int gateAt) : Stream
    {
        private int _pos;
        public TaskCompletionSource ReachedGate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Open { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_pos >= gateAt)
            {
                ReachedGate.TrySetResult();
                await Open.Task.WaitAsync(cancellationToken);
            }
            int limit = _pos < gateAt ? gateAt : data.Length;
            int n = Math.Min(buffer.Length, limit - _pos);
            data.AsSpan(_pos, n).CopyTo(buffer.Span);
            _pos += n;
            return n;
        }
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    protected sealed class FailingStream(byte[] data, int failAfter) : Stream
    {
        private int _pos;
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_pos >= failAfter) throw new IOException("connection reset");
            int n = Math.Min(count, failAfter - _pos);
            Array.Copy(data, _pos, buffer, offset, n);
            _pos += n;
            return n;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
