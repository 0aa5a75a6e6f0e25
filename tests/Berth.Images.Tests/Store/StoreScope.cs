using Berth.Images.Content;
using Berth.Images.Snapshots;
using Berth.Images.Store;

namespace Berth.Images.Tests.Store;

/// <summary>A content store, a snapshotter and an image store in one temp directory, removed on Dispose.</summary>
internal sealed class StoreScope : IDisposable
{
    private readonly TempDirectory _dir = new("images");

    public StoreScope(IImageUsage? usage = null)
    {
        Content = new FileContentStore(_dir.Combine("content"));
        Snapshotter = new OverlaySnapshotter(_dir.Combine("snapshots"));
        Images = new ImageStore(_dir.Combine("images"), Content, Snapshotter, usage);
    }

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
    public IReadOnlyCollection<Digest> ImagesInUse() => InUse;
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
