using static Berth.Oci.MountFlags;

namespace Berth.Oci.Tests;

public class MountOptionsTests
{
    [Fact]
    public void Constants_HaveTheKernelValues()
    {
        Assert.Equal(1UL, MS_RDONLY);
        Assert.Equal(2UL, MS_NOSUID);
        Assert.Equal(4UL, MS_NODEV);
        Assert.Equal(8UL, MS_NOEXEC);
        Assert.Equal(16UL, MS_SYNCHRONOUS);
        Assert.Equal(32UL, MS_REMOUNT);
        Assert.Equal(64UL, MS_MANDLOCK);
        Assert.Equal(128UL, MS_DIRSYNC);
        Assert.Equal(1024UL, MS_NOATIME);
        Assert.Equal(2048UL, MS_NODIRATIME);
        Assert.Equal(4096UL, MS_BIND);
        Assert.Equal(8192UL, MS_MOVE);
        Assert.Equal(16384UL, MS_REC);
        Assert.Equal(32768UL, MS_SILENT);
        Assert.Equal(131072UL, MS_UNBINDABLE);
        Assert.Equal(262144UL, MS_PRIVATE);
        Assert.Equal(524288UL, MS_SLAVE);
        Assert.Equal(1048576UL, MS_SHARED);
        Assert.Equal(2097152UL, MS_RELATIME);
        Assert.Equal(16777216UL, MS_STRICTATIME);
        Assert.Equal(33554432UL, MS_LAZYTIME);
    }

    [Theory]
    [InlineData("ro", MS_RDONLY)]
    [InlineData("nosuid", MS_NOSUID)]
    [InlineData("nodev", MS_NODEV)]
    [InlineData("noexec", MS_NOEXEC)]
    [InlineData("sync", MS_SYNCHRONOUS)]
    [InlineData("dirsync", MS_DIRSYNC)]
    [InlineData("remount", MS_REMOUNT)]
    [InlineData("mand", MS_MANDLOCK)]
    [InlineData("noatime", MS_NOATIME)]
    [InlineData("nodiratime", MS_NODIRATIME)]
    [InlineData("bind", MS_BIND)]
    [InlineData("rbind", MS_BIND | MS_REC)]
    [InlineData("relatime", MS_RELATIME)]
    [InlineData("strictatime", MS_STRICTATIME)]
    [InlineData("lazytime", MS_LAZYTIME)]
    [InlineData("silent", MS_SILENT)]
    public void SettingOptions_SetTheirFlag(string option, ulong flag)
    {
        var parsed = MountOptions.Parse([option]);

        Assert.Equal(flag, parsed.Flags);
        Assert.Equal(0UL, parsed.ClearFlags);
        Assert.Equal("", parsed.Data);
    }

    [Theory]
    [InlineData("ro", "rw", MS_RDONLY)]
    [InlineData("nosuid", "suid", MS_NOSUID)]
    [InlineData("nodev", "dev", MS_NODEV)]
    [InlineData("noexec", "exec", MS_NOEXEC)]
    [InlineData("sync", "async", MS_SYNCHRONOUS)]
    [InlineData("mand", "nomand", MS_MANDLOCK)]
    [InlineData("noatime", "atime", MS_NOATIME)]
    [InlineData("nodiratime", "diratime", MS_NODIRATIME)]
    [InlineData("relatime", "norelatime", MS_RELATIME)]
    [InlineData("strictatime", "nostrictatime", MS_STRICTATIME)]
    [InlineData("lazytime", "nolazytime", MS_LAZYTIME)]
    [InlineData("silent", "loud", MS_SILENT)]
    public void ClearingOptions_WinWhenLast_AndAreRemembered(string set, string clear, ulong flag)
    {
        var cleared = MountOptions.Parse([set, clear]);
        Assert.Equal(0UL, cleared.Flags & flag);
        Assert.Equal(flag, cleared.ClearFlags);

        var setAgain = MountOptions.Parse([clear, set]);
        Assert.Equal(flag, setAgain.Flags);
        Assert.Equal(0UL, setAgain.ClearFlags);
    }

    [Fact]
    public void UnknownOptions_GoToData_InOrder()
    {
        var parsed = MountOptions.Parse(["nosuid", "strictatime", "mode=755", "size=65536k"]);

        Assert.Equal(MS_NOSUID | MS_STRICTATIME, parsed.Flags);
        Assert.Equal("mode=755,size=65536k", parsed.Data);
    }

    [Fact]
    public void Defaults_IsANoOp()
    {
        var parsed = MountOptions.Parse(["defaults"]);

        Assert.Equal(0UL, parsed.Flags);
        Assert.Equal("", parsed.Data);
    }

    [Fact]
    public void Rbind_IsBindAndRecursive()
    {
        var parsed = MountOptions.Parse(["rbind", "ro"]);

        Assert.True(parsed.Bind);
        Assert.True(parsed.Recursive);
        Assert.Equal(MS_BIND | MS_REC | MS_RDONLY, parsed.Flags);
        Assert.False(MountOptions.Parse(["bind"]).Recursive);
        Assert.False(MountOptions.Parse(null).Bind);
    }

    [Theory]
    [InlineData("private", MS_PRIVATE)]
    [InlineData("rprivate", MS_PRIVATE | MS_REC)]
    [InlineData("shared", MS_SHARED)]
    [InlineData("rshared", MS_SHARED | MS_REC)]
    [InlineData("slave", MS_SLAVE)]
    [InlineData("rslave", MS_SLAVE | MS_REC)]
    [InlineData("unbindable", MS_UNBINDABLE)]
    [InlineData("runbindable", MS_UNBINDABLE | MS_REC)]
    public void Propagation_IsKeptApartFromFlags(string option, ulong flags)
    {
        var parsed = MountOptions.Parse(["bind", option]);

        Assert.Equal(MS_BIND, parsed.Flags);
        Assert.Equal(flags, parsed.PropagationFlags);
        Assert.Equal([flags], parsed.Propagations);
    }

    [Fact]
    public void SeveralPropagations_AreKeptInOrder()
    {
        var parsed = MountOptions.Parse(["rshared", "rslave"]);

        Assert.Equal([MS_SHARED | MS_REC, MS_SLAVE | MS_REC], parsed.Propagations);
        Assert.Equal(MS_SLAVE | MS_REC, parsed.PropagationFlags);
    }

    [Theory]
    [InlineData("rro", MOUNT_ATTR_RDONLY, 0UL)]
    [InlineData("rrw", 0UL, MOUNT_ATTR_RDONLY)]
    [InlineData("rnosuid", MOUNT_ATTR_NOSUID, 0UL)]
    [InlineData("rsuid", 0UL, MOUNT_ATTR_NOSUID)]
    [InlineData("rnodev", MOUNT_ATTR_NODEV, 0UL)]
    [InlineData("rdev", 0UL, MOUNT_ATTR_NODEV)]
    [InlineData("rnoexec", MOUNT_ATTR_NOEXEC, 0UL)]
    [InlineData("rexec", 0UL, MOUNT_ATTR_NOEXEC)]
    [InlineData("rnodiratime", MOUNT_ATTR_NODIRATIME, 0UL)]
    [InlineData("rdiratime", 0UL, MOUNT_ATTR_NODIRATIME)]
    [InlineData("rnoatime", MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME)]
    [InlineData("ratime", 0UL, MOUNT_ATTR_NOATIME)]
    [InlineData("rrelatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME)]
    [InlineData("rnorelatime", 0UL, MOUNT_ATTR_RELATIME)]
    [InlineData("rstrictatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME)]
    public void RecursiveAttributes_AreAMountSetattrPair(string option, ulong set, ulong clear)
    {
        var parsed = MountOptions.Parse([option]);

        Assert.Equal(set, parsed.RecAttrSet);
        Assert.Equal(clear, parsed.RecAttrClear);
        Assert.Equal(0UL, parsed.Flags);
        Assert.Equal("", parsed.Data);
    }

    [Fact]
    public void RecursiveAttributes_LaterOptionWins()
    {
        var parsed = MountOptions.Parse(["rro", "rrw"]);

        Assert.Equal(0UL, parsed.RecAttrSet);
        Assert.Equal(MOUNT_ATTR_RDONLY, parsed.RecAttrClear);
    }

    [Fact]
    public void Extensions_AreRecognised()
    {
        Assert.True(MountOptions.Parse(["tmpcopyup"]).CopyUp);
        var idmap = MountOptions.Parse(["bind", "idmap"]);
        Assert.True(idmap.IdMap);
        Assert.False(idmap.RecursiveIdMap);
        var ridmap = MountOptions.Parse(["rbind", "ridmap"]);
        Assert.True(ridmap.IdMap);
        Assert.True(ridmap.RecursiveIdMap);
        Assert.Equal("", ridmap.Data);
    }

    [Fact]
    public void IsBind_FollowsTypeOrOption()
    {
        Assert.True(MountOptions.IsBind(new Mount { Destination = "/a", Type = "bind" }));
        Assert.True(MountOptions.IsBind(new Mount { Destination = "/a", Type = "none", Options = ["rbind"] }));
        Assert.False(MountOptions.IsBind(new Mount { Destination = "/a", Type = "tmpfs", Options = ["mode=755"] }));
    }

    [Fact]
    public void Known_IncludesEveryTableName()
    {
        foreach (var option in new[] { "ro", "rbind", "rprivate", "rro", "tmpcopyup", "ridmap", "nosymfollow" })
            Assert.Contains(option, MountOptions.Known);
        Assert.True(MountOptions.IsKnown("relatime"));
        Assert.False(MountOptions.IsKnown("mode=755"));
    }
}
