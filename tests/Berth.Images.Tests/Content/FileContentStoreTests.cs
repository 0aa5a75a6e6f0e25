using Berth.Images.Content;

namespace Berth.Images.Tests.Content;

public sealed class FileContentStoreTests : ContentStoreConformanceTests
{
    protected override (IContentStore Store, IDisposable Cleanup) CreateStore()
    {
        var dir = new TempDirectory("content");
        return (new FileContentStore(dir.Path), dir);
    }

    [Fact]
    public async Task Blobs_live_under_blobs_sha256_and_are_read_only()
    {
        using var dir = new TempDirectory("content");
        var store = new FileContentStore(dir.Path);
        byte[] data = RandomBytes(10);
        Digest digest = Digest.Compute(data);
        await store.WriteAsync(new MemoryStream(data), digest, 10);

        string path = dir.Combine("blobs", "sha256", digest.Hex);
        Assert.Equal(path, store.BlobPath(digest));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(path));
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Combine("ingest")));
    }

    [Fact]
    public async Task A_blob_corrupted_on_disk_fails_when_read_to_the_end()
    {
        using var dir = new TempDirectory("content");
        var store = new FileContentStore(dir.Path);
        byte[] data = RandomBytes(5000);
        Digest digest = Digest.Compute(data);
        await store.WriteAsync(new MemoryStream(data), digest, data.Length);
        string path = store.BlobPath(digest);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write)) { f.Position = 100; f.WriteByte((byte)(data[100] ^ 0xff)); }

        using Stream s = store.OpenRead(digest);
        var e = await Assert.ThrowsAsync<ImagesException>(() => s.CopyToAsync(Stream.Null));
        Assert.Equal(ImagesErrorKind.DataLoss, e.Kind);
        Assert.Contains(digest.ToString(), e.Message);
    }

    [Fact]
    public async Task Leftovers_of_a_crashed_ingest_do_not_count_and_are_cleaned_at_open()
    {
        using var dir = new TempDirectory("content");
        var store = new FileContentStore(dir.Path);
        byte[] data = RandomBytes(1000);
        Digest digest = Digest.Compute(data);
        // What a kill -9 in the middle of WriteAsync leaves: a partial data file and its lock file.
        File.WriteAllBytes(dir.Combine("ingest", digest.Hex + ".data"), data[..500]);
        File.WriteAllBytes(dir.Combine("ingest", digest.Hex + ".lock"), []);
        File.WriteAllBytes(dir.Combine("ingest", "garbage.tmp"), []);

        Assert.False(store.Exists(digest));
        Assert.Empty(store.List());

        var reopened = new FileContentStore(dir.Path);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Combine("ingest")));
        await reopened.WriteAsync(new MemoryStream(data), digest, data.Length);
        Assert.True(reopened.Exists(digest));
    }

    [Fact]
    public async Task An_ingest_in_progress_is_not_cleaned_by_a_second_opener()
    {
        using var dir = new TempDirectory("content");
        var store = new FileContentStore(dir.Path);
        byte[] data = RandomBytes(4000);
        Digest digest = Digest.Compute(data);
        var gate = new GatedStream(data, gateAt: 2000);
        Task write = store.WriteAsync(gate, digest, data.Length);
        await gate.ReachedGate.Task.WaitAsync(TimeSpan.FromSeconds(10));

        _ = new FileContentStore(dir.Path);
        Assert.True(File.Exists(dir.Combine("ingest", digest.Hex + ".data")));

        gate.Open.SetResult();
        await write;
        Assert.True(store.Exists(digest));
    }

    [Fact]
    public void Files_in_blobs_that_are_not_digests_are_not_listed()
    {
        using var dir = new TempDirectory("content");
        var store = new FileContentStore(dir.Path);
        File.WriteAllText(dir.Combine("blobs", "sha256", "not-a-digest"), "x");
        Assert.Empty(store.List());
    }
}
