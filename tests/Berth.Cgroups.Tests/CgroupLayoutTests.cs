using Berth.Cgroups.Tests.Support;

namespace Berth.Cgroups.Tests;

public class CgroupLayoutTests
{
    // Debian 10 / Ubuntu 20.04 style hybrid host (systemd "hybrid" hierarchy).
    private const string HybridMountinfo = """
        22 27 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
        25 22 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
        26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
        27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
        30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
        31 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
        32 25 0:30 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio
        33 25 0:31 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,cpuset,clone_children
        34 25 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
        """;

    private const string HybridProcSelfCgroup = """
        12:pids:/user.slice/user-1000.slice
        4:memory:/user.slice/user-1000.slice/session-2.scope
        3:cpu,cpuacct:/user.slice
        1:name=systemd:/user.slice/user-1000.slice/session-2.scope
        0::/user.slice/user-1000.slice/session-2.scope
        """;

    // CentOS 7 style pure v1.
    private const string LegacyMountinfo = """
        24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
        25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:5 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
        28 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpuacct,cpu
        29 24 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory
        30 24 0:26 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,pids
        """;

    // Fedora / Debian 11+ / Ubuntu 22.04+: pure v2.
    private const string UnifiedMountinfo = """
        23 29 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
        26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
        """;

    // Inside a container: the memory hierarchy is bind-mounted from below its root.
    private const string ContainerMountinfo = """
        700 690 0:29 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:15 - cgroup cgroup rw,memory
        701 690 0:30 /docker/abc /sys/fs/cgroup/my\040dir rw,relatime - cgroup cgroup rw,pids
        """;

    [Fact]
    public void Parse_Hybrid_FindsEveryV1HierarchyAndTheUnifiedMount()
    {
        var layout = CgroupLayout.Parse(HybridMountinfo, HybridProcSelfCgroup, unifiedControllers: []);

        Assert.Equal(CgroupMode.Hybrid, layout.Mode);
        Assert.Equal("/sys/fs/cgroup/unified", layout.UnifiedMountPoint);
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct", layout.GetV1Hierarchy("cpu")!.MountPoint);
        Assert.Same(layout.GetV1Hierarchy("cpu"), layout.GetV1Hierarchy("cpuacct"));
        Assert.Equal(["cpu", "cpuacct"], layout.GetV1Hierarchy("cpu")!.Controllers);
        Assert.Equal("/sys/fs/cgroup/net_cls,net_prio", layout.GetV1Hierarchy("net_prio")!.MountPoint);
        Assert.Equal("/sys/fs/cgroup/systemd", layout.GetV1Hierarchy("name=systemd")!.MountPoint);
        // "clone_children", "xattr", "rw" are options, not controllers.
        Assert.Equal(["cpuset"], layout.GetV1Hierarchy("cpuset")!.Controllers);
        Assert.Null(layout.GetV1Hierarchy("xattr"));
        Assert.Null(layout.GetV1Hierarchy("blkio"));
        Assert.Equal(6, layout.V1Hierarchies.Count);
    }

    [Fact]
    public void Parse_ReadsOwnCgroupsFromProcSelfCgroup()
    {
        var layout = CgroupLayout.Parse(HybridMountinfo, HybridProcSelfCgroup, unifiedControllers: []);

        Assert.Equal("/user.slice/user-1000.slice/session-2.scope", layout.GetOwnCgroup("memory"));
        Assert.Equal("/user.slice", layout.GetOwnCgroup("cpuacct"));
        Assert.Equal("/user.slice/user-1000.slice/session-2.scope", layout.GetOwnCgroup(CgroupManager.UnifiedKey));
        Assert.Equal("/", layout.GetOwnCgroup("blkio"));
    }

    [Fact]
    public void Parse_Legacy()
    {
        var layout = CgroupLayout.Parse(LegacyMountinfo, "", unifiedControllers: []);

        Assert.Equal(CgroupMode.Legacy, layout.Mode);
        Assert.Null(layout.UnifiedMountPoint);
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct", layout.GetV1Hierarchy("cpu")!.MountPoint);
        Assert.Equal(["cpuacct", "cpu"], layout.GetV1Hierarchy("cpu")!.Controllers);
        Assert.Equal("/sys/fs/cgroup/systemd", layout.GetV1Hierarchy("name=systemd")!.MountPoint);
        Assert.Equal(4, layout.V1Hierarchies.Count);
    }

    [Fact]
    public void Parse_Unified()
    {
        var layout = CgroupLayout.Parse(UnifiedMountinfo, "0::/user.slice\n", unifiedControllers: ["cpu", "io", "memory", "pids"]);

        Assert.Equal(CgroupMode.Unified, layout.Mode);
        Assert.Equal("/sys/fs/cgroup", layout.UnifiedMountPoint);
        Assert.Empty(layout.V1Hierarchies);
        Assert.Equal(["cpu", "io", "memory", "pids"], layout.UnifiedControllers.Order());
        Assert.Equal("cgroup v2 at /sys/fs/cgroup: controllers cpu io memory pids", layout.ToString());
    }

    [Fact]
    public void Parse_KeepsMountRootAndUnescapesMountPoints()
    {
        var layout = CgroupLayout.Parse(ContainerMountinfo, "", unifiedControllers: []);

        Assert.Equal("/docker/abc", layout.GetV1Hierarchy("memory")!.Root);
        Assert.Equal("/sys/fs/cgroup/my dir", layout.GetV1Hierarchy("pids")!.MountPoint);
    }

    [Fact]
    public void Parse_WithoutAnyCgroupMount_IsUnavailable()
    {
        var e = Assert.Throws<CgroupException>(() => CgroupLayout.Parse("23 29 0:21 / /proc rw - proc proc rw\n"));
        Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
    }

    [Fact]
    public void Parse_OnlyNamedV1Hierarchy_WithCgroup2_IsUnified()
    {
        const string text = """
            26 22 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
            27 26 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
            """;
        Assert.Equal(CgroupMode.Unified, CgroupLayout.Parse(text, "", []).Mode);
    }

    [Fact]
    public void FakeTree_V2()
    {
        using var tree = FakeCgroupTree.V2("cpu", "memory");
        var layout = new CgroupLayout(tree.Root);

        Assert.Equal(CgroupMode.Unified, layout.Mode);
        Assert.Equal(tree.Root, layout.UnifiedMountPoint);
        Assert.Equal(["cpu", "memory"], layout.UnifiedControllers.Order());
    }

    [Fact]
    public void FakeTree_V1AndHybrid()
    {
        using var tree = FakeCgroupTree.V1("cpu,cpuacct", "memory", "systemd");
        Assert.Equal(CgroupMode.Legacy, new CgroupLayout(tree.Root).Mode);

        tree.Write("unified/cgroup.controllers", "");
        var layout = new CgroupLayout(tree.Root);
        Assert.Equal(CgroupMode.Hybrid, layout.Mode);
        Assert.Equal(Path.Combine(tree.Root, "cpu,cpuacct"), layout.GetV1Hierarchy("cpuacct")!.MountPoint);
        Assert.NotNull(layout.GetV1Hierarchy("name=systemd"));
        Assert.Equal(Path.Combine(tree.Root, "unified"), layout.UnifiedMountPoint);
    }

    [Fact]
    public void Detect_ReadsThisHost()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        var layout = CgroupLayout.Detect();
        Assert.True(layout.V1Hierarchies.Count > 0 || layout.UnifiedMountPoint is not null);
    }
}
