using Berth.Cgroups.Tests.Support;

namespace Berth.Cgroups.Tests.V1;

/// <summary>The cgroup v1 manager on a fake tree: which file each limit goes to, errors.</summary>
public class V1ManagerFakeTreeTests
{
    private static readonly string[] MemoryFiles =
    [
        "cgroup.procs", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
        "memory.swappiness", "memory.oom_control", "memory.usage_in_bytes",
    ];

    [Fact]
    public void Apply_WritesV1Files()
    {
        using var tree = FakeCgroupTree.V1("cpu,cpuacct", "memory", "pids", "cpuset");
        tree.AddGroup("memory/berth/c1", MemoryFiles);
        tree.Write("memory/berth/c1/memory.limit_in_bytes", "9223372036854771712");
        tree.AddGroup("cpu,cpuacct/berth/c1", "cgroup.procs", "cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us");
        tree.AddGroup("pids/berth/c1", "cgroup.procs", "pids.max");
        tree.AddGroup("cpuset/berth/c1", "cgroup.procs", "cpuset.cpus", "cpuset.mems");
        var manager = CgroupManager.Create(new CgroupLayout(tree.Root), "/berth/c1");
        tree.Write("cpu,cpuacct/berth/c1/cpu.shares", "512"); // what the kernel would echo back

        manager.Apply(new CgroupResources
        {
            Memory = new() { Limit = 100 << 20, Swap = 200 << 20, Reservation = 50 << 20, Swappiness = 0, DisableOomKiller = true },
            Cpu = new() { Shares = 512, Quota = 25000, Period = 50000, Cpus = "1", Mems = "0" },
            Pids = new() { Limit = -1 },
        });

        Assert.Equal("104857600", tree.Read("memory/berth/c1/memory.limit_in_bytes"));
        Assert.Equal("209715200", tree.Read("memory/berth/c1/memory.memsw.limit_in_bytes"));
        Assert.Equal("52428800", tree.Read("memory/berth/c1/memory.soft_limit_in_bytes"));
        Assert.Equal("0", tree.Read("memory/berth/c1/memory.swappiness"));
        Assert.Equal("1", tree.Read("memory/berth/c1/memory.oom_control"));
        Assert.Equal("512", tree.Read("cpu,cpuacct/berth/c1/cpu.shares"));
        Assert.Equal("25000", tree.Read("cpu,cpuacct/berth/c1/cpu.cfs_quota_us"));
        Assert.Equal("50000", tree.Read("cpu,cpuacct/berth/c1/cpu.cfs_period_us"));
        Assert.Equal("1", tree.Read("cpuset/berth/c1/cpuset.cpus"));
        Assert.Equal("max", tree.Read("pids/berth/c1/pids.max"));
        Assert.Same(manager.Paths["cpu"], manager.Paths["cpuacct"]);
    }

    [Fact]
    public void RemoveIfEmpty_RemovesTheParentOnlyWhereNoChildGroupIsLeft()
    {
        // An engine's parent group (/berth) goes at its shutdown from the hierarchies where no
        // container group is left; where one is, it stays. (A fake tree's groups are plain
        // directories: "empty" here means no child directory, as rmdir sees it on cgroupfs.)
        using var tree = FakeCgroupTree.V1("cpu,cpuacct", "memory", "pids");
        Directory.CreateDirectory(Path.Combine(tree.Root, "memory/berth"));
        Directory.CreateDirectory(Path.Combine(tree.Root, "pids/berth"));
        Directory.CreateDirectory(Path.Combine(tree.Root, "cpu,cpuacct/berth/still-running"));

        CgroupManager.RemoveIfEmpty(new CgroupLayout(tree.Root), "/berth");

        Assert.False(Directory.Exists(Path.Combine(tree.Root, "memory/berth")));
        Assert.False(Directory.Exists(Path.Combine(tree.Root, "pids/berth")));
        Assert.True(Directory.Exists(Path.Combine(tree.Root, "cpu,cpuacct/berth/still-running")));
        CgroupManager.RemoveIfEmpty(new CgroupLayout(tree.Root), "/berth"); // nothing left to do is fine
    }

    [Fact]
    public void Apply_ControllerNotMounted_IsAClearError()
    {
        using var tree = FakeCgroupTree.V1("cpu,cpuacct", "pids");
        var manager = CgroupManager.Create(new CgroupLayout(tree.Root), "/berth/c1");

        var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Memory = new() { Limit = 1 << 20 } }));

        Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
        Assert.StartsWith("memory limit requested but the memory controller is not available (cgroup v1: controllers cpu cpuacct pids)", e.Message);
    }

    [Fact]
    public void Apply_SwapWithoutSwapAccounting_IsAClearError()
    {
        using var tree = FakeCgroupTree.V1("memory");
        tree.AddGroup("memory/berth/c1", MemoryFiles.Where(f => !f.Contains("memsw")).ToArray());
        var manager = CgroupManager.Create(new CgroupLayout(tree.Root), "/berth/c1");

        var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Memory = new() { Limit = 1 << 20, Swap = 2 << 20 } }));
        Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
        Assert.Contains("swap accounting is not enabled", e.Message);

        // -1 without swap accounting: only the memory limit is written.
        manager.Apply(new CgroupResources { Memory = new() { Limit = -1 } });
        Assert.Equal("-1", tree.Read("memory/berth/c1/memory.limit_in_bytes"));
    }

    [Fact]
    public void Apply_Shares_WrittenAndReadBack()
    {
        using var tree = FakeCgroupTree.V1("cpu");
        tree.AddGroup("cpu/berth/c1", "cpu.shares");
        var manager = CgroupManager.Create(new CgroupLayout(tree.Root), "/berth/c1");

        manager.Apply(new CgroupResources { Cpu = new() { Shares = 100 } });
        Assert.Equal("100", tree.Read("cpu/berth/c1/cpu.shares"));
    }

    [Fact]
    public void Create_CopiesCpusetParentsDown()
    {
        using var tree = FakeCgroupTree.V1("cpuset", "memory", "systemd");
        tree.Write("cpuset/cpuset.cpus", "0-3");
        tree.Write("cpuset/cpuset.mems", "0");
        tree.AddGroup("cpuset/berth", "cpuset.cpus", "cpuset.mems");
        tree.AddGroup("cpuset/berth/c1", "cpuset.cpus", "cpuset.mems");
        tree.Write("cpuset/berth/cpuset.mems", "0"); // already set: kept
        var manager = CgroupManager.Create(new CgroupLayout(tree.Root), "/berth/c1");

        manager.Create();

        Assert.Equal("0-3", tree.Read("cpuset/berth/cpuset.cpus"));
        Assert.Equal("0-3", tree.Read("cpuset/berth/c1/cpuset.cpus"));
        Assert.Equal("0", tree.Read("cpuset/berth/c1/cpuset.mems"));
        Assert.True(Directory.Exists(Path.Combine(tree.Root, "memory/berth/c1")));
        Assert.True(Directory.Exists(Path.Combine(tree.Root, "systemd/berth/c1")));
    }

    [Fact]
    public void Hybrid_AlsoCreatesTheGroupInTheUnifiedTree()
    {
        using var tree = FakeCgroupTree.V1("memory");
        tree.Write("unified/cgroup.controllers", "");
        var manager = CgroupManager.Create(new CgroupLayout(tree.Root), "/berth/c1");

        manager.Create();

        Assert.Equal(CgroupMode.Hybrid, manager.Mode);
        Assert.True(Directory.Exists(Path.Combine(tree.Root, "unified/berth/c1")));
        Assert.Equal(Path.Combine(tree.Root, "unified/berth/c1"), manager.Paths[CgroupManager.UnifiedKey]);
        Assert.False(File.Exists(Path.Combine(tree.Root, "unified/cgroup.subtree_control")));
    }
}
