using Berth.Cgroups.Tests.Support;

namespace Berth.Cgroups.Tests.V2;

/// <summary>The newer resource fields, freezer, stats and OOM watching of the v2 manager, on a fake tree (youki set_fixture style).</summary>
public class V2ControllersTests
{
    private static readonly string[] AllFiles =
    [
        .. FakeCgroupTree.V2GroupFiles, "cgroup.controllers", "cgroup.freeze", "cgroup.events", "cpu.max.burst", "cpu.idle", "cpu.stat",
        "io.weight", "io.max", "io.stat", "hugetlb.2MB.max", "hugetlb.1GB.max", "hugetlb.2MB.current", "hugetlb.2MB.events",
        "rdma.max", "memory.current", "memory.stat", "memory.events", "memory.swap.current", "memory.peak", "pids.current",
    ];

    private static (FakeCgroupTree Tree, ICgroupManager Manager, string Group) NewGroup(params string[] skipFiles)
    {
        var tree = FakeCgroupTree.V2("cpuset", "cpu", "io", "memory", "pids", "hugetlb", "rdma");
        tree.AddGroup("berth", "cgroup.controllers", "cgroup.subtree_control", "cgroup.procs");
        var group = tree.AddGroup("berth/c1", [.. AllFiles.Except(skipFiles)]);
        File.WriteAllText(Path.Combine(group, "cgroup.controllers"), "cpuset cpu io memory pids hugetlb rdma");
        return (tree, CgroupManager.Create(new CgroupLayout(tree.Root), "/berth/c1"), group);
    }

    [Fact]
    public void Apply_Io_WeightConvertedAndOneIoMaxLinePerDevice()
    {
        var (tree, manager, _) = NewGroup();
        using (tree)
        {
            manager.Apply(new CgroupResources
            {
                BlockIo = new()
                {
                    Weight = 500,
                    ThrottleReadBpsDevice = [new(8, 0, 1048576)],
                    ThrottleWriteBpsDevice = [new(8, 0, 2097152)],
                    ThrottleReadIopsDevice = [new(8, 16, 100)],
                    ThrottleWriteIopsDevice = [new(8, 0, 0)],
                },
            });
            Assert.Equal("4950", tree.Read("berth/c1/io.weight"));
            // The fake file keeps only the last write: check the lines themselves.
            Assert.Equal("8:16 riops=100", tree.Read("berth/c1/io.max"));
            Assert.Equal(
                ["8:0 rbps=1048576 wbps=2097152 wiops=max", "8:16 riops=100"],
                Cgroups.V2.IoController.IoMaxLines(new BlockIoResources
                {
                    ThrottleReadBpsDevice = [new(8, 0, 1048576)], ThrottleWriteBpsDevice = [new(8, 0, 2097152)],
                    ThrottleReadIopsDevice = [new(8, 16, 100)], ThrottleWriteIopsDevice = [new(8, 0, 0)],
                }));
        }
    }

    [Fact]
    public void Apply_Io_BfqWeightWhenPresent_LeafWeightUnavailable()
    {
        var (tree, manager, group) = NewGroup();
        using (tree)
        {
            File.WriteAllText(Path.Combine(group, "io.bfq.weight"), "");
            manager.Apply(new CgroupResources { BlockIo = new() { Weight = 300 } });
            Assert.Equal("300", tree.Read("berth/c1/io.bfq.weight"));
            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { BlockIo = new() { LeafWeight = 300 } }));
            Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
            Assert.StartsWith("blockIO.leafWeight", e.Message);
        }
    }

    [Fact]
    public void Apply_Hugetlb_Rdma_Cpu()
    {
        var (tree, manager, _) = NewGroup();
        using (tree)
        {
            manager.Apply(new CgroupResources
            {
                HugepageLimits = [new("2MB", 8 << 20), new("1GB", 0)],
                Rdma = new Dictionary<string, RdmaLimit> { ["mlx5_1"] = new(3, null) },
                Cpu = new() { Quota = 50000, Burst = 10000, Idle = 1 },
            });
            Assert.Equal("8388608", tree.Read("berth/c1/hugetlb.2MB.max"));
            Assert.Equal("0", tree.Read("berth/c1/hugetlb.1GB.max"));
            Assert.Equal("mlx5_1 hca_handle=3 hca_object=max", tree.Read("berth/c1/rdma.max"));
            Assert.Equal("50000 100000", tree.Read("berth/c1/cpu.max"));
            Assert.Equal("10000", tree.Read("berth/c1/cpu.max.burst"));
            Assert.Equal("1", tree.Read("berth/c1/cpu.idle"));
        }
    }

    [Theory]
    [InlineData("hugepage", "hugepageLimits pageSize 64KB requested but this kernel has no hugetlb.64KB.max")]
    [InlineData("realtime", "cpu.realtimeRuntime requested but cgroup v2 has no real-time group scheduling")]
    [InlineData("kernel", "memory.kernel requested but cgroup v2 has no separate kernel memory limit")]
    [InlineData("network", "network.classID requested but cgroup v2 has no net_cls/net_prio controller")]
    [InlineData("idle", "cpu.idle requested but this kernel has no cpu.idle")]
    public void Apply_FieldsV2CannotApply_AreUnavailableNamingTheField(string field, string message)
    {
        var (tree, manager, _) = NewGroup("cpu.idle");
        using (tree)
        {
            var resources = field switch
            {
                "hugepage" => new CgroupResources { HugepageLimits = [new("64KB", 1)] },
                "realtime" => new CgroupResources { Cpu = new() { RealtimeRuntime = 1000 } },
                "kernel" => new CgroupResources { Memory = new() { Kernel = 1 << 20 } },
                "network" => new CgroupResources { Network = new() { ClassId = 1 } },
                _ => new CgroupResources { Cpu = new() { Idle = 1 } },
            };
            var e = Assert.Throws<CgroupException>(() => manager.Apply(resources));
            Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
            Assert.StartsWith(message, e.Message);
        }
    }

    [Fact]
    public void Apply_Unified_WrittenAsGiven_RefusesPathsAndDisabledControllers()
    {
        var (tree, manager, group) = NewGroup();
        using (tree)
        {
            File.WriteAllText(Path.Combine(group, "memory.high"), "");
            manager.Apply(new CgroupResources
            {
                Memory = new() { Limit = 1 << 20 },
                Unified = new Dictionary<string, string> { ["memory.high"] = "524288", ["memory.max"] = "2097152" },
            });
            Assert.Equal("524288", tree.Read("berth/c1/memory.high"));
            Assert.Equal("2097152", tree.Read("berth/c1/memory.max")); // unified goes last and wins

            foreach (var key in new[] { "../memory.max", "memory/x", "..", "nodot" })
            {
                var bad = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Unified = new Dictionary<string, string> { [key] = "1" } }));
                Assert.Equal(CgroupErrorKind.InvalidArgument, bad.Kind);
            }
            File.WriteAllText(Path.Combine(group, "cgroup.controllers"), "cpu pids");
            var disabled = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Unified = new Dictionary<string, string> { ["memory.high"] = "1" } }));
            Assert.Equal(CgroupErrorKind.Unavailable, disabled.Kind);
            Assert.StartsWith("unified: key \"memory.high\" can't be set: controller \"memory\" is not enabled", disabled.Message);
        }
    }

    [Fact]
    public void Apply_Memory_CheckBeforeUpdate_RefusesALimitBelowUsage()
    {
        var (tree, manager, _) = NewGroup();
        using (tree)
        {
            tree.Write("berth/c1/memory.current", "10485760\n");
            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Memory = new() { Limit = 1 << 20, CheckBeforeUpdate = true } }));
            Assert.Equal(CgroupErrorKind.InvalidArgument, e.Kind);
            Assert.Equal("", tree.Read("berth/c1/memory.max"));
            manager.Apply(new CgroupResources { Memory = new() { Limit = 32 << 20, CheckBeforeUpdate = true } });
            Assert.Equal("33554432", tree.Read("berth/c1/memory.max"));
        }
    }

    [Fact]
    public async Task Freeze_WritesCgroupFreeze_AndWaitsForFrozen()
    {
        var (tree, manager, _) = NewGroup();
        using (tree)
        {
            tree.Write("berth/c1/cgroup.freeze", "0\n");
            tree.Write("berth/c1/cgroup.events", "populated 1\nfrozen 0\n");
            Assert.Equal(FreezerState.Thawed, manager.GetFreezerState());

            // The "kernel" reports frozen a little later.
            var kernel = Task.Run(async () =>
            {
                await Task.Delay(50);
                tree.Write("berth/c1/cgroup.events", "populated 1\nfrozen 1\n");
            });
            manager.Freeze();
            await kernel;
            Assert.Equal("1", tree.Read("berth/c1/cgroup.freeze"));
            Assert.Equal(FreezerState.Frozen, manager.GetFreezerState());

            tree.Write("berth/c1/cgroup.events", "populated 1\nfrozen 0\n");
            manager.Thaw();
            Assert.Equal("0", tree.Read("berth/c1/cgroup.freeze"));
            Assert.Equal(FreezerState.Thawed, manager.GetFreezerState());
        }
    }

    [Fact]
    public void Stats_ReadCpuMemoryPidsIoHugetlb()
    {
        var (tree, manager, _) = NewGroup();
        using (tree)
        {
            tree.Write("berth/c1/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 300\n");
            tree.Write("berth/c1/memory.stat", "anon 4096\nfile 8192\n");
            tree.Write("berth/c1/memory.current", "12288\n");
            tree.Write("berth/c1/memory.max", "max\n");
            tree.Write("berth/c1/memory.peak", "20000\n");
            tree.Write("berth/c1/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
            tree.Write("berth/c1/memory.swap.current", "100\n");
            tree.Write("berth/c1/memory.swap.max", "max\n");
            tree.Write("berth/c1/pids.current", "4\n");
            tree.Write("berth/c1/pids.max", "max\n");
            tree.Write("berth/c1/io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n");
            tree.Write("berth/c1/hugetlb.2MB.current", "2097152\n");
            tree.Write("berth/c1/hugetlb.2MB.events", "max 5\n");

            var stats = manager.Stats();

            Assert.Equal(1_500_000UL, stats.Cpu.Usage.Total);
            Assert.Equal(1_000_000UL, stats.Cpu.Usage.User);
            Assert.Equal(500_000UL, stats.Cpu.Usage.Kernel);
            Assert.Null(stats.Cpu.Usage.Percpu);
            Assert.Equal(2UL, stats.Cpu.Throttling.ThrottledPeriods);
            Assert.Equal(300_000UL, stats.Cpu.Throttling.ThrottledTime);
            Assert.Equal(8192UL, stats.Memory.Cache);
            Assert.Equal(12288UL, stats.Memory.Usage.Usage);
            Assert.Equal(ulong.MaxValue, stats.Memory.Usage.Limit);
            Assert.Equal(20000UL, stats.Memory.Usage.Max);
            Assert.Equal(3UL, stats.Memory.Usage.Failcnt);
            Assert.Equal(12388UL, stats.Memory.Swap.Usage);
            Assert.Equal(4UL, stats.Pids.Current);
            Assert.Equal(0UL, stats.Pids.Limit);
            Assert.Equal([new BlkioEntry(8, 0, "Read", 100), new BlkioEntry(8, 0, "Write", 200), new BlkioEntry(8, 0, "Discard", 0)], stats.Blkio.IoServiceBytesRecursive);
            Assert.Equal(2UL, stats.Blkio.IoServicedRecursive![1].Value);
            Assert.Equal(2097152UL, stats.Hugetlb["2MB"].Usage);
            Assert.Equal(5UL, stats.Hugetlb["2MB"].Failcnt);
            Assert.Equal(1UL, manager.OomKillCount());
        }
    }

    [Fact]
    public async Task OomWatcher_ReportsOomKillIncrements_Cancels_AndEndsWhenTheGroupGoes()
    {
        var (tree, manager, group) = NewGroup();
        using (tree)
        {
            tree.Write("berth/c1/memory.events", "oom 0\noom_kill 0\n");
            using var watcher = manager.WatchOom();

            using (var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50)))
            {
                Assert.ThrowsAny<OperationCanceledException>(() => watcher.WaitForOom(cancel.Token));
            }

            var kernel = Task.Run(async () =>
            {
                await Task.Delay(50);
                // Another figure changes first: not an OOM kill.
                File.AppendAllText(Path.Combine(group, "memory.events"), "");
                await Task.Delay(20);
                File.WriteAllText(Path.Combine(group, "memory.events"), "oom 1\noom_kill 1\n");
            });
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            Assert.True(watcher.WaitForOom(timeout.Token));
            await kernel;

            File.Delete(Path.Combine(group, "memory.events"));
            Assert.False(watcher.WaitForOom(timeout.Token));
        }
    }
}
