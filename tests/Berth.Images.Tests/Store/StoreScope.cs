using Berth.Images.Content;
using Berth.Images.Snapshots;
using Berth.Images.Store;

namespace Berth.Images.Tests.Store;

/// <summary>A content store, a snapshotter and an image store in one temp directory, removed on Dispose.</summary>
internal sealed class StoreScope : IDisposable
{
    private readonly TempDirectory _dir = new("images");

    /// <param name="countReads">The image store reads its blobs through a <see cref="CountingContentStore"/>.</param>
    public StoreScope(IImageUsage? usage = null, bool countReads = false)
    {
        Content = new FileContentStore(_dir.Combine("content"));
        Snapshotter = new OverlaySnapshotter(_dir.Combine("snapshots"));
        Counting = countReads ? new CountingContentStore(Content) : null;
        Images = new ImageStore(_dir.Combine("images"), (IContentStore?)Counting ?? Content, Snapshotter, usage);
    }

    /// <summary>The image store's content store when the scope counts reads.</summary>
    public CountingContentStore? Counting { get; }

    public string Path => _dir.Path;
    public FileContentStore Content { get; }
    public OverlaySnapshotter Snapshotter { get; }
    public ImageStore Images { get; private set; }

    public void Reopen(IImageUsage? usage = null) => Images = new ImageStore(_dir.Combine("images"), Content, Snapshotter, usage);

    public void Dispose()
    {
        Snapshotter.Dispose();
        _dir.Dispose();
    }
}

/// <summary>An <see cref="IImageUsage"/> a test sets.</summary>
internal sealed class FakeUsage : IImageUsage
{
    public HashSet<Digest> InUse { get; } = [];
    /// <summary>Of <see cref="InUse"/>, the images a running container uses.</summary>
    public HashSet<Digest> Running { get; } = [];
    public IReadOnlyCollection<Digest> ImagesInUse() => InUse;
    public IReadOnlyList<ImageUser> UsersOf(Digest image)
        => InUse.Contains(image) ? [new ImageUser("c0ffee" + image.Hex[..10], Running.Contains(image))] : [];
}

/// <summary>Collects progress reports synchronously (Progress&lt;T&gt; would post them later).</summary>
internal sealed class ListProgress<T> : IProgress<T>
{
    private readonly List<T> _items = [];
    public void Report(T value)
    {
        lock (_items) _items.Add(value);
    }
    public List<T> Items
    {
        get
        {
            lock (_items) return [.. _items];
        }
    }
}

/// <summary>A content store that counts <see cref="OpenRead"/> per blob.</summary>
internal sealed class CountingContentStore(IContentStore inner) : IContentStore
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Digest, int> _reads = new();

    public int Reads(Digest digest) => _reads.TryGetValue(digest, out int n) ? n : 0;

    public Task<ContentInfo> WriteAsync(Stream content, Digest expected, long? expectedSize = null, CancellationToken cancellationToken = default)
        => inner.WriteAsync(content, expected, expectedSize, cancellationToken);

    public Stream OpenRead(Digest digest)
    {
        _reads.AddOrUpdate(digest, 1, (_, n) => n + 1);
        return inner.OpenRead(digest);
    }

    private int _existsCalls;

    /// <summary>How many times the image store asked whether a blob exists.</summary>
    public int ExistsCalls => Volatile.Read(ref _existsCalls);

    public bool Exists(Digest digest)
    {
        Interlocked.Increment(ref _existsCalls);
        return inner.Exists(digest);
    }

    public ContentInfo Info(Digest digest) => inner.Info(digest);
    public bool Delete(Digest digest) => inner.Delete(digest);
    public IEnumerable<ContentInfo> List() => inner.List();
}
