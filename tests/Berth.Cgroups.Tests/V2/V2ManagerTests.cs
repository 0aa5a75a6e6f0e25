using Berth.Cgroups.Tests.Support;

namespace Berth.Cgroups.Tests.V2;

/// <summary>The cgroup v2 manager on a fake tree: directories, subtree_control, the files written.</summary>
public class V2ManagerTests
{
    private static (FakeCgroupTree Tree, ICgroupManager Manager) NewGroup(params string[] controllers)
    {
        var tree = FakeCgroupTree.V2(controllers.Length == 0 ? ["cpuset", "cpu", "io", "memory", "pids"] : controllers);
        // What the kernel would show: the intermediate group and the leaf with its interface files.
        tree.AddGroup("berth", "cgroup.controllers", "cgroup.subtree_control", "cgroup.procs");
        tree.AddGroup("berth/c1", FakeCgroupTree.V2GroupFiles);
        var manager = CgroupManager.Create(new CgroupLayout(tree.Root), "/berth/c1");
        return (tree, manager);
    }

    [Fact]
    public void Create_MakesTheGroupAndEnablesControllersInEveryAncestor()
    {
        using var tree = FakeCgroupTree.V2("cpu", "memory", "pids");
        tree.AddGroup("berth", "cgroup.controllers", "cgroup.subtree_control");
        tree.Write("berth/cgroup.controllers", "memory pids");
        var manager = CgroupManager.Create(new CgroupLayout(tree.Root), "/berth/c1");

        manager.Create();

        Assert.True(Directory.Exists(Path.Combine(tree.Root, "berth/c1")));
        Assert.Equal(Path.Combine(tree.Root, "berth/c1"), manager.Paths[CgroupManager.UnifiedKey]);
        // Each ancestor enables what it has; the leaf's own subtree_control is left alone.
        Assert.Equal("+cpu +memory +pids", tree.Read("cgroup.subtree_control"));
        Assert.Equal("+memory +pids", tree.Read("berth/cgroup.subtree_control"));
        Assert.False(File.Exists(Path.Combine(tree.Root, "berth/c1/cgroup.subtree_control")));
    }

    [Fact]
    public void Create_IsIdempotent()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            manager.Create();
            manager.Create();
            Assert.True(Directory.Exists(manager.Paths[""]));
        }
    }

    [Fact]
    public void Apply_WritesEveryFile()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            manager.Apply(new CgroupResources
            {
                Memory = new() { Limit = 100 << 20, Swap = 300 << 20, Reservation = 50 << 20 },
                Cpu = new() { Shares = 1024, Quota = 50000, Period = 200000, Cpus = "0-1", Mems = "0" },
                Pids = new() { Limit = 42 },
            });

            Assert.Equal("104857600", tree.Read("berth/c1/memory.max"));
            Assert.Equal("209715200", tree.Read("berth/c1/memory.swap.max"));
            Assert.Equal("52428800", tree.Read("berth/c1/memory.low"));
            Assert.Equal("39", tree.Read("berth/c1/cpu.weight"));
            Assert.Equal("50000 200000", tree.Read("berth/c1/cpu.max"));
            Assert.Equal("0-1", tree.Read("berth/c1/cpuset.cpus"));
            Assert.Equal("0", tree.Read("berth/c1/cpuset.mems"));
            Assert.Equal("42", tree.Read("berth/c1/pids.max"));
        }
    }

    [Fact]
    public void Apply_UnlimitedValues()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            manager.Apply(new CgroupResources
            {
                Memory = new() { Limit = -1 },
                Cpu = new() { Quota = -1 },
                Pids = new() { Limit = 0 },
            });

            Assert.Equal("max", tree.Read("berth/c1/memory.max"));
            Assert.Equal("max", tree.Read("berth/c1/memory.swap.max"));
            Assert.Equal("max 100000", tree.Read("berth/c1/cpu.max"));
            Assert.Equal("max", tree.Read("berth/c1/pids.max"));
        }
    }

    [Fact]
    public void Apply_SwapEqualToLimit_DisablesSwap()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            manager.Apply(new CgroupResources { Memory = new() { Limit = 4096, Swap = 4096 } });
            Assert.Equal("0", tree.Read("berth/c1/memory.swap.max"));
        }
    }

    [Fact]
    public void Apply_LeavesUnsetFilesAlone()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            tree.Write("berth/c1/cpu.max", "untouched");
            manager.Apply(new CgroupResources { Cpu = new() { Shares = 2 } });
            Assert.Equal("1", tree.Read("berth/c1/cpu.weight"));
            Assert.Equal("untouched", tree.Read("berth/c1/cpu.max"));
            Assert.Equal("", tree.Read("berth/c1/memory.max"));
        }
    }

    [Fact]
    public void Apply_MissingController_IsAClearError()
    {
        var (tree, manager) = NewGroup("cpu", "io", "pids");
        using (tree)
        {
            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources
            {
                Pids = new() { Limit = 10 },
                Memory = new() { Limit = 1 << 20 },
            }));

            Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
            Assert.Equal($"memory limit requested but the memory controller is not available (cgroup v2 at {tree.Root}: controllers cpu io pids)", e.Message);
            // Refused before anything was written.
            Assert.Equal("", tree.Read("berth/c1/pids.max"));
        }
    }

    [Fact]
    public void Apply_ControllerNotEnabledForTheGroup_IsAClearError()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            tree.Write("berth/c1/cgroup.controllers", "cpu pids");
            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Memory = new() { Limit = 1 << 20 } }));
            Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
            Assert.Contains("memory controller is not enabled", e.Message);
        }
    }

    [Fact]
    public void Apply_SwapWithoutSwapAccounting_IsAClearError()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            File.Delete(Path.Combine(tree.Root, "berth/c1/memory.swap.max"));

            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Memory = new() { Limit = 1 << 20, Swap = 2 << 20 } }));
            Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
            Assert.Contains("swap accounting", e.Message);

            // Unlimited memory implies unlimited swap only where swap can be set: no error.
            manager.Apply(new CgroupResources { Memory = new() { Limit = -1 } });
            Assert.Equal("max", tree.Read("berth/c1/memory.max"));
        }
    }

    [Theory]
    [InlineData(true, null)]
    [InlineData(null, 10UL)]
    public void Apply_V1OnlyMemorySettings_AreRefused(bool? disableOom, ulong? swappiness)
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources
            {
                Memory = new() { DisableOomKiller = disableOom, Swappiness = swappiness },
            }));
            Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
            Assert.Contains("cgroup v2", e.Message);
        }
    }

    [Fact]
    public void Apply_MissingFile_NamesTheWriteTheFileAndErrno()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            File.Delete(Path.Combine(tree.Root, "berth/c1/pids.max"));
            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Pids = new() { Limit = 5 } }));
            Assert.Equal($"write 5 to {tree.Root}/berth/c1/pids.max: No such file or directory", e.Message);
            Assert.Equal(2, e.Errno);
            Assert.Equal(CgroupErrorKind.Io, e.Kind);
        }
    }

    [Fact]
    public void AddProcess_GetPids_Destroy()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            manager.AddProcess(1234);
            Assert.Equal("1234", tree.Read("berth/c1/cgroup.procs"));

            tree.Write("berth/c1/cgroup.procs", "7\n3\n");
            Assert.Equal([3, 7], manager.GetPids());

            // A fake group holds regular files, which a real rmdir would not see: drop them first.
            foreach (var f in Directory.GetFiles(manager.Paths[""]))
            {
                File.Delete(f);
            }
            manager.Destroy();
            Assert.False(Directory.Exists(manager.Paths[""]));
            Assert.True(Directory.Exists(Path.Combine(tree.Root, "berth")));
            manager.Destroy(); // already gone is fine
            Assert.Empty(manager.GetPids());
        }
    }
}
