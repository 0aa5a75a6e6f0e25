using Berth.Daemon.Api;
using Berth.Daemon.Volumes;
using Microsoft.Extensions.Logging.Abstractions;

namespace Berth.Daemon.Tests.Volumes;

/// <summary>The volume store and service on a temp directory: what a restart finds, what a crash leaves, references.</summary>
public sealed class VolumeStoreTests : IDisposable
{
    private readonly TempDirectory _dir = new("volumes");

    public void Dispose()
    {
        DaemonScope.DetachMountsUnder(_dir.Path);
        _dir.Dispose();
    }

    private VolumeService NewService()
    {
        var service = new VolumeService(_dir.Combine("volumes"), NullLogger.Instance);
        service.Load();
        return service;
    }

    [Fact]
    public void A_new_service_reads_the_volumes_back_and_removes_what_a_crash_left()
    {
        VolumeService first = NewService();
        first.Create("kept", null, new Dictionary<string, string> { ["type"] = "tmpfs", ["device"] = "tmpfs" }, new Dictionary<string, string> { ["a"] = "b" });
        VolumeRecord anonymous = first.Create(null, "local", null, null);
        File.WriteAllText(_dir.Combine("volumes", "kept", "_data", "content"), "x");

        // A create cut short before its metadata, a temp file of an interrupted write.
        Directory.CreateDirectory(_dir.Combine("volumes", "halfmade", "_data"));
        File.WriteAllText(_dir.Combine("volumes", "kept", "volume.json.tmp"), "{torn");

        VolumeService second = NewService();
        Assert.Equal(new[] { anonymous.Name, "kept" }.Order(StringComparer.Ordinal), second.List().Select(v => v.Name));
        VolumeRecord kept = second.Get("kept");
        Assert.Equal("b", kept.Labels!["a"]);
        Assert.Equal("tmpfs", kept.Options!["type"]);
        Assert.True(second.Get(anonymous.Name).IsAnonymous);
        Assert.False(Directory.Exists(_dir.Combine("volumes", "halfmade")));
        Assert.False(File.Exists(_dir.Combine("volumes", "kept", "volume.json.tmp")));
        Assert.Equal("x", File.ReadAllText(_dir.Combine("volumes", "kept", "_data", "content")));
    }

    [Fact]
    public void References_block_removal_until_released_and_prune_takes_only_unreferenced_anonymous_volumes()
    {
        VolumeService service = NewService();
        service.Acquire("named", "c1");
        VolumeRecord anon = service.Acquire(null, "c1");
        VolumeRecord loose = service.Create(null, null, null, null);
        ApiException e = Assert.Throws<ApiException>(() => service.Remove("named"));
        Assert.Equal(409, e.StatusCode);
        Assert.Equal("remove named: volume is in use - [c1]", e.Message);

        var (deleted, _) = service.Prune(_ => true, all: false);
        Assert.Equal([loose.Name], deleted);
        (deleted, _) = service.Prune(_ => true, all: true);
        Assert.Empty(deleted);

        service.Release("named", "c1");
        service.Release(anon.Name, "c1");
        service.Remove("named");
        Assert.Equal(404, Assert.Throws<ApiException>(() => service.Get("named")).StatusCode);
        Assert.False(Directory.Exists(_dir.Combine("volumes", "named")));
        (deleted, _) = service.Prune(_ => true, all: false);
        Assert.Equal([anon.Name], deleted);
    }

    [Fact]
    public void A_tmpfs_volume_is_mounted_by_its_first_user_and_unmounted_by_its_last()
    {
        VolumeService service = NewService();
        service.Create("scratch", null, new Dictionary<string, string> { ["type"] = "tmpfs", ["device"] = "tmpfs", ["o"] = "size=1m" }, null);
        string data = service.MountpointOf("scratch");
        int populated = 0;
        service.Mount("scratch", "c1", "/data", false, _ => populated++);
        service.Mount("scratch", "c2", "/data", false, _ => populated++);
        Assert.Equal(1, populated); // copy-up only at the first mount
        Assert.True(IsMountPoint(data));
        service.Unmount("scratch", "c1");
        Assert.True(IsMountPoint(data));
        service.Unmount("scratch", "c2");
        Assert.False(IsMountPoint(data));

        // A restart finds a mount with no running user (its containers exited meanwhile): unmounted.
        service.Mount("scratch", "c3", "/data", false, null);
        VolumeService restarted = NewService();
        restarted.ReconcileMounts(new Dictionary<string, IReadOnlyList<string>>());
        Assert.False(IsMountPoint(data));
    }

    [Theory]
    [InlineData("io")]
    [InlineData("other")]
    public void A_failed_copy_up_unmounts_the_device_it_mounted_for_the_start(string failure)
    {
        VolumeService service = NewService();
        service.Create("scratch", null, new Dictionary<string, string> { ["type"] = "tmpfs", ["device"] = "tmpfs", ["o"] = "size=1m" }, null);
        string data = service.MountpointOf("scratch");
        Action<string> populate = _ => throw (failure == "io" ? new IOException("disk gone") : new InvalidOperationException("bad image"));

        Exception e = Assert.ThrowsAny<Exception>(() => service.Mount("scratch", "c1", "/data", false, populate));
        if (failure == "io") Assert.Equal("copying the image's content into volume scratch: disk gone", Assert.IsType<ApiException>(e).Message);
        else Assert.IsType<InvalidOperationException>(e);
        Assert.False(IsMountPoint(data));

        // The volume is not held: the next start mounts it again and can use it.
        service.Mount("scratch", "c2", "/data", false, null);
        Assert.True(IsMountPoint(data));
        service.Unmount("scratch", "c2");
        Assert.False(IsMountPoint(data));
    }

    private static bool IsMountPoint(string path)
        => File.ReadAllLines("/proc/self/mountinfo").Any(l => l.Split(' ')[4] == path);
}
