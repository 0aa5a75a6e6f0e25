using Berth.Cgroups.Tests.Support;

namespace Berth.Cgroups.Tests;

public class CgroupManagerTests
{
    private const string Hybrid = """
        26 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
        27 25 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
        30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
        31 25 0:29 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
        """;

    private const string ProcSelf = """
        4:memory:/docker/abc/inner
        3:cpu,cpuacct:/user.slice
        1:name=systemd:/init.scope
        0::/init.scope
        """;

    [Fact]
    public void Create_AbsolutePath_IsBelowEachHierarchyRoot()
    {
        var layout = CgroupLayout.Parse(Hybrid, ProcSelf, []);
        var manager = CgroupManager.Create(layout, "/berth/c1");

        Assert.Equal(CgroupMode.Hybrid, manager.Mode);
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct/berth/c1", manager.Paths["cpu"]);
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct/berth/c1", manager.Paths["cpuacct"]);
        Assert.Equal("/sys/fs/cgroup/memory/berth/c1", manager.Paths["memory"]);
        Assert.Equal("/sys/fs/cgroup/systemd/berth/c1", manager.Paths["name=systemd"]);
        Assert.Equal("/sys/fs/cgroup/unified/berth/c1", manager.Paths[CgroupManager.UnifiedKey]);
    }

    [Fact]
    public void Create_RelativePath_IsBelowTheCallersOwnCgroup()
    {
        var layout = CgroupLayout.Parse(Hybrid, ProcSelf, []);
        var manager = CgroupManager.Create(layout, "berth/c1");

        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct/user.slice/berth/c1", manager.Paths["cpu"]);
        // The memory mount shows /docker/abc at its mount point: the own cgroup is relative to that.
        Assert.Equal("/sys/fs/cgroup/memory/inner/berth/c1", manager.Paths["memory"]);
        Assert.Equal("/sys/fs/cgroup/unified/init.scope/berth/c1", manager.Paths[CgroupManager.UnifiedKey]);
    }

    [Fact]
    public void Create_Unified_HasOnePath()
    {
        var layout = CgroupLayout.Parse("26 22 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/\n", ["memory"]);
        var manager = CgroupManager.Create(layout, "/berth/c1/");

        Assert.Equal(CgroupMode.Unified, manager.Mode);
        Assert.Equal(new Dictionary<string, string> { [""] = "/sys/fs/cgroup/berth/c1" }, manager.Paths);
    }

    [Theory]
    [InlineData("")]
    [InlineData("/")]
    [InlineData("/berth/../etc")]
    [InlineData("./x")]
    public void Create_RefusesBadPaths(string path)
    {
        var layout = CgroupLayout.Parse(Hybrid, ProcSelf, []);
        var e = Assert.Throws<CgroupException>(() => CgroupManager.Create(layout, path));
        Assert.Equal(CgroupErrorKind.InvalidArgument, e.Kind);
    }

    [Fact]
    public void Load_RebuildsFromPersistedPaths()
    {
        var layout = CgroupLayout.Parse(Hybrid, ProcSelf, []);
        var original = CgroupManager.Create(layout, "/berth/c1");

        var loaded = CgroupManager.Load(layout, original.Paths.ToDictionary());

        Assert.Equal(original.Paths.OrderBy(p => p.Key), loaded.Paths.OrderBy(p => p.Key));
    }

    [Theory]
    [InlineData("memory", "/etc")]
    [InlineData("memory", "/sys/fs/cgroup/memory")]
    [InlineData("memory", "/sys/fs/cgroup/memory/../../../etc")]
    [InlineData("blkio", "/sys/fs/cgroup/blkio/berth/c1")]
    public void Load_RefusesPathsOutsideTheirHierarchy(string key, string path)
    {
        var layout = CgroupLayout.Parse(Hybrid, ProcSelf, []);
        var e = Assert.Throws<CgroupException>(() => CgroupManager.Load(layout, new Dictionary<string, string> { [key] = path }));
        Assert.Equal(CgroupErrorKind.InvalidArgument, e.Kind);
    }

    [Fact]
    public void Load_Unified_NeedsTheUnifiedPath()
    {
        using var tree = FakeCgroupTree.V2("memory");
        var layout = new CgroupLayout(tree.Root);
        Assert.Throws<CgroupException>(() => CgroupManager.Load(layout, new Dictionary<string, string>()));
        var m = CgroupManager.Load(layout, new Dictionary<string, string> { [""] = tree.Root + "/berth/x" });
        Assert.Equal(tree.Root + "/berth/x", m.Paths[""]);
    }
}
