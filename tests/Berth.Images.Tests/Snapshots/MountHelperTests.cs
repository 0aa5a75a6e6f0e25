using Berth.Images.Snapshots;

namespace Berth.Images.Tests.Snapshots;

public sealed class MountHelperTests
{
    [Fact]
    public void Native_failures_carry_errno_operation_and_path()
    {
        using var dir = new TempDirectory("mnt");
        var e = Assert.Throws<NativeCallException>(() => MountHelper.Unmount(dir.Path));
        Assert.Equal((22, "umount2", dir.Path), (e.Errno, e.Operation, e.Path)); // EINVAL: not a mount point
        Assert.Contains(dir.Path, e.Message);
        Assert.Contains("errno 22", e.Message);
    }

    [Fact]
    public void A_failed_overlay_mount_names_the_target_and_leaves_nothing_mounted()
    {
        using var dir = new TempDirectory("mnt");
        var e = Assert.Throws<NativeCallException>(() => MountHelper.MountAll(
            [new Mount("overlay", "overlay", [$"lowerdir={dir.Path}/missing-a:{dir.Path}/missing-b"])], dir.Path));
        Assert.Equal("mount (overlay)", e.Operation);
        Assert.Equal(dir.Path, e.Path);
        Assert.DoesNotContain(dir.Path, File.ReadAllText("/proc/self/mounts"));
    }

    [Fact]
    public void Writable_directory_is_the_upperdir_or_a_writable_bind_source()
    {
        Assert.Equal("/u", MountHelper.WritableDirectory([new Mount("overlay", "overlay", ["lowerdir=/l", "upperdir=/u", "workdir=/w"])]));
        Assert.Equal("/s", MountHelper.WritableDirectory([new Mount("bind", "/s", ["rbind", "rw"])]));
        Assert.Throws<ImagesException>(() => MountHelper.WritableDirectory([new Mount("bind", "/s", ["rbind", "ro"])]));
        Assert.Throws<ImagesException>(() => MountHelper.WritableDirectory([new Mount("overlay", "overlay", ["lowerdir=/a:/b"])]));
    }
}
