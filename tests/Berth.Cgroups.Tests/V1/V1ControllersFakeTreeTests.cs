using Berth.Cgroups.Tests.Support;

namespace Berth.Cgroups.Tests.V1;

/// <summary>The newer v1 resource fields, devices, freezer and stats on a fake hybrid tree.</summary>
public class V1ControllersFakeTreeTests
{
    private static (FakeCgroupTree Tree, ICgroupManager Manager) NewGroup()
    {
        var tree = FakeCgroupTree.V1("blkio", "cpu,cpuacct", "devices", "freezer", "memory", "pids");
        tree.AddGroup("blkio/c1", "blkio.bfq.weight", "blkio.bfq.weight_device", "blkio.throttle.read_bps_device", "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive");
        tree.AddGroup("cpu,cpuacct/c1", "cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.rt_period_us", "cpu.rt_runtime_us", "cpuacct.usage", "cpuacct.usage_percpu", "cpuacct.stat", "cpu.stat");
        tree.AddGroup("devices/c1", "devices.allow", "devices.deny");
        tree.AddGroup("freezer/c1", "freezer.state");
        tree.AddGroup("memory/c1", "memory.limit_in_bytes", "memory.oom_control", "memory.stat", "memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt");
        tree.AddGroup("pids/c1", "pids.max", "pids.current");
        // Hybrid: hugetlb only in the cgroup2 tree.
        tree.Write("unified/cgroup.controllers", "hugetlb");
        tree.AddGroup("unified/c1", "cgroup.controllers", "hugetlb.2MB.max", "hugetlb.2MB.current");
        tree.Write("unified/c1/cgroup.controllers", "hugetlb");
        return (tree, CgroupManager.Create(new CgroupLayout(tree.Root), "/c1"));
    }

    [Fact]
    public void Apply_Blkio_PrefersBfq_Cpu_Realtime_Burst_Hugetlb_InHybridCgroup2()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            Assert.Equal(CgroupMode.Hybrid, manager.Mode);
            manager.Apply(new CgroupResources
            {
                BlockIo = new() { Weight = 700, WeightDevice = [new(8, 0, 300)], ThrottleReadBpsDevice = [new(8, 0, 1024)] },
                Cpu = new() { Quota = 20000, Burst = 5000, RealtimePeriod = 1000000, RealtimeRuntime = 5000 },
                HugepageLimits = [new("2MB", 2 << 20)],
            });
            Assert.Equal("700", tree.Read("blkio/c1/blkio.bfq.weight"));
            Assert.Equal("8:0 300", tree.Read("blkio/c1/blkio.bfq.weight_device"));
            Assert.Equal("8:0 1024", tree.Read("blkio/c1/blkio.throttle.read_bps_device"));
            Assert.Equal("5000", tree.Read("cpu,cpuacct/c1/cpu.cfs_burst_us"));
            Assert.Equal("1000000", tree.Read("cpu,cpuacct/c1/cpu.rt_period_us"));
            Assert.Equal("5000", tree.Read("cpu,cpuacct/c1/cpu.rt_runtime_us"));
            Assert.Equal("2097152", tree.Read("unified/c1/hugetlb.2MB.max"));
        }
    }

    [Fact]
    public void Apply_FieldsWithoutController_OrKernelFile_AreUnavailable_AndNothingIsWritten()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources
            {
                Pids = new() { Limit = 5 },
                Network = new() { Priorities = [new("eth0", 5)] },
            }));
            Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
            Assert.StartsWith("network.priorities requested but the net_prio controller is not available", e.Message);
            Assert.Equal("", tree.Read("pids/c1/pids.max"));

            e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Memory = new() { Kernel = 1 << 20 } }));
            Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
            Assert.StartsWith("memory.kernel requested but this kernel has no memory.kmem.limit_in_bytes", e.Message);

            e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Cpu = new() { Idle = 1 } }));
            Assert.StartsWith("cpu.idle requested but this kernel has no cpu.idle", e.Message);

            e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Rdma = new Dictionary<string, RdmaLimit> { ["mlx5_0"] = new(1, 1) } }));
            Assert.StartsWith("rdma limit requested but the rdma controller is not available", e.Message);
        }
    }

    [Fact]
    public void Apply_Devices_DenyAll_ThenRulesToAllowOrDeny()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            var deny = Path.Combine(tree.Root, "devices/c1/devices.deny");
            var allow = Path.Combine(tree.Root, "devices/c1/devices.allow");
            // An empty list denies everything.
            manager.Apply(new CgroupResources { Devices = [] });
            Assert.Equal("a", File.ReadAllText(deny));

            manager.Apply(new CgroupResources { Devices = [new DeviceRule(true, 'c', 1, 3, "rwm"), new DeviceRule(false, 'c', 1, 3, "m")] });
            Assert.Equal("c 1:3 rwm", File.ReadAllText(allow));
            Assert.Equal("c 1:3 m", File.ReadAllText(deny));
        }
    }

    [Fact]
    public void Freezer_V1_FrozenOnceTheKernelSaysSo()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            tree.Write("freezer/c1/freezer.state", "THAWED\n");
            Assert.Equal(FreezerState.Thawed, manager.GetFreezerState());
            manager.Freeze(); // the fake file reads back what was written: FROZEN at once
            Assert.Equal(FreezerState.Frozen, manager.GetFreezerState());
            manager.Thaw();
            Assert.Equal("THAWED", tree.Read("freezer/c1/freezer.state"));
        }
    }

    [Fact]
    public void Stats_V1_CpuacctMemoryPidsBlkioAndHugetlbFromCgroup2()
    {
        var (tree, manager) = NewGroup();
        using (tree)
        {
            tree.Write("cpu,cpuacct/c1/cpuacct.usage", "3000\n");
            tree.Write("cpu,cpuacct/c1/cpuacct.usage_percpu", "1000 2000 \n");
            tree.Write("cpu,cpuacct/c1/cpuacct.stat", "user 2\nsystem 1\n");
            tree.Write("cpu,cpuacct/c1/cpu.stat", "nr_periods 5\nnr_throttled 1\nthrottled_time 777\n");
            tree.Write("memory/c1/memory.stat", "cache 4096\nrss 8192\n");
            tree.Write("memory/c1/memory.usage_in_bytes", "12288\n");
            tree.Write("memory/c1/memory.max_usage_in_bytes", "16384\n");
            tree.Write("memory/c1/memory.limit_in_bytes", "1048576\n");
            tree.Write("memory/c1/memory.failcnt", "2\n");
            tree.Write("memory/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
            tree.Write("pids/c1/pids.current", "2\n");
            tree.Write("pids/c1/pids.max", "10\n");
            tree.Write("blkio/c1/blkio.throttle.io_service_bytes_recursive", "8:0 Read 10\n8:0 Write 20\nTotal 30\n");
            tree.Write("blkio/c1/blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 2\nTotal 3\n");
            tree.Write("unified/c1/hugetlb.2MB.current", "4194304\n");

            var stats = manager.Stats();

            Assert.Equal(3000UL, stats.Cpu.Usage.Total);
            Assert.Equal([1000UL, 2000UL], stats.Cpu.Usage.Percpu);
            Assert.Equal(20_000_000UL, stats.Cpu.Usage.User);
            Assert.Equal(10_000_000UL, stats.Cpu.Usage.Kernel);
            Assert.Equal(777UL, stats.Cpu.Throttling.ThrottledTime);
            Assert.Equal(4096UL, stats.Memory.Cache);
            Assert.Equal(8192UL, stats.Memory.Raw!["rss"]);
            Assert.Equal(12288UL, stats.Memory.Usage.Usage);
            Assert.Equal(16384UL, stats.Memory.Usage.Max);
            Assert.Equal(1048576UL, stats.Memory.Usage.Limit);
            Assert.Equal(2UL, stats.Memory.Usage.Failcnt);
            Assert.Equal(2UL, stats.Pids.Current);
            Assert.Equal(10UL, stats.Pids.Limit);
            Assert.Equal([new BlkioEntry(8, 0, "Read", 10), new BlkioEntry(8, 0, "Write", 20)], stats.Blkio.IoServiceBytesRecursive);
            Assert.Equal(4194304UL, stats.Hugetlb["2MB"].Usage);
            Assert.Equal(3UL, manager.OomKillCount());
        }
    }
}
