using System.Diagnostics;
using Berth.Cgroups.Tests.Support;

namespace Berth.Cgroups.Tests.V1;

/// <summary>
/// Devices, freezer, OOM, stats, update and the newer resource fields on this host's real v1
/// (legacy or hybrid) tree, as root, with real processes. Everything lives below a random
/// "/berth-test-…" parent that <see cref="RealCgroupScope"/> removes even when a test fails.
/// </summary>
public class V1ControllersRealTreeTests
{
    private static string Kernel(ICgroupManager m, string controller, string file) =>
        File.ReadAllText(Path.Combine(m.Paths[controller], file)).Trim();

    private static ICgroupManager NewGroup(RealCgroupScope scope, string id = "c1")
    {
        var manager = CgroupManager.Create(scope.Layout, scope.PathFor(id));
        manager.Create();
        return manager;
    }

    /// <summary>A shell in the group that waits for a line, then runs <paramref name="script"/>.</summary>
    private static Process StartInGroup(RealCgroupScope scope, ICgroupManager manager, string script)
    {
        var p = scope.StartShell("read go; " + script);
        manager.AddProcess(p.Id);
        return p;
    }

    private static void Go(Process p) => p.StandardInput.WriteLine("go");

    [RealCgroupV1Fact]
    public void Devices_DenyAllThenRules_ProcessCannotOpenDevNull()
    {
        using var scope = new RealCgroupScope();
        var manager = NewGroup(scope);
        manager.Apply(new CgroupResources
        {
            Devices = [new DeviceRule(Allow: true, Type: 'c', Major: 1, Minor: 5, Access: "rwm"), new DeviceRule(Allow: true, Type: 'c', Major: 136, Minor: null, Access: "rw")],
        });
        Assert.Equal("c 1:5 rwm\nc 136:* rw", Kernel(manager, "devices", "devices.list"));

        var sh = StartInGroup(scope, manager,
            "if cat /dev/null; then echo null-open; else echo null-denied; fi; if head -c 0 /dev/zero; then echo zero-open; else echo zero-denied; fi");
        Go(sh);
        Assert.Equal("null-denied", sh.StandardOutput.ReadLine());
        Assert.Equal("zero-open", sh.StandardOutput.ReadLine());

        // An update replaces the rules: now /dev/null is allowed too.
        manager.Apply(new CgroupResources { Devices = [new DeviceRule(true, 'c', 1, 3, "rw"), new DeviceRule(true, 'c', 1, 5, "r")] });
        Assert.Equal("c 1:3 rw\nc 1:5 r", Kernel(manager, "devices", "devices.list"));
    }

    [RealCgroupV1Fact]
    public void Freeze_StopsTheProcess_Thaw_LetsItRun()
    {
        var counter = Path.Combine(Path.GetTempPath(), "berth-freeze-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            // The scope (which kills the writer) ends before the files are removed below.
            using var scope = new RealCgroupScope();
            var manager = NewGroup(scope);
            var sh = StartInGroup(scope, manager, $"i=0; while :; do i=$((i+1)); echo $i > {counter}.tmp; mv {counter}.tmp {counter}; done");
            Go(sh);
            SpinUntil(() => File.Exists(counter));
            Assert.Equal(FreezerState.Thawed, manager.GetFreezerState());

            manager.Freeze();

            Assert.Equal(FreezerState.Frozen, manager.GetFreezerState());
            if (manager.Paths.ContainsKey("freezer"))
            {
                Assert.Equal("FROZEN", Kernel(manager, "freezer", "freezer.state"));
            }
            var state = File.ReadAllLines($"/proc/{sh.Id}/status").Single(l => l.StartsWith("State:", StringComparison.Ordinal));
            Assert.Matches(@"State:\s+[DT]", state);
            var before = File.ReadAllText(counter);
            Thread.Sleep(200);
            Assert.Equal(before, File.ReadAllText(counter));

            manager.Thaw();

            Assert.Equal(FreezerState.Thawed, manager.GetFreezerState());
            SpinUntil(() => File.ReadAllText(counter) != before);
        }
        finally
        {
            File.Delete(counter);
            File.Delete(counter + ".tmp");
        }
    }

    [RealCgroupV1Fact]
    public void Oom_ProcessOverTheLimitIsKilled_AndTheWatcherReportsIt()
    {
        using var scope = new RealCgroupScope();
        var manager = NewGroup(scope);
        manager.Apply(new CgroupResources { Memory = new() { Limit = 16 << 20, Swap = 16 << 20 } });
        Assert.Equal(0UL, manager.OomKillCount());
        using var watcher = manager.WatchOom();

        // tail buffers /dev/zero's one endless "line": it really touches ever more memory.
        var hog = StartInGroup(scope, manager, "exec tail /dev/zero");
        Go(hog);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        Assert.True(watcher.WaitForOom(timeout.Token));
        Assert.True(hog.WaitForExit(10_000));
        Assert.Equal(137, hog.ExitCode); // SIGKILL
        Assert.True(manager.OomKillCount() >= 1);
        var memory = manager.Stats().Memory;
        Assert.True(memory.Usage.Max > 8 << 20, $"peak {memory.Usage.Max}");
    }

    [RealCgroupV1Fact]
    public void OomWatcher_Cancellation_And_GroupRemoval()
    {
        using var scope = new RealCgroupScope();
        var manager = NewGroup(scope);
        using var watcher = manager.WatchOom();

        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        Assert.ThrowsAny<OperationCanceledException>(() => watcher.WaitForOom(cancel.Token));

        manager.Destroy();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.False(watcher.WaitForOom(timeout.Token));
    }

    [RealCgroupV1Fact]
    public void Stats_ReportCpuMemoryPidsBlkio()
    {
        using var scope = new RealCgroupScope();
        var manager = NewGroup(scope);
        manager.Apply(new CgroupResources { Memory = new() { Limit = 64 << 20 }, Pids = new() { Limit = 20 } });
        var sh = StartInGroup(scope, manager, "x=$(head -c 4000000 /dev/zero | tr '\\0' a); echo done; exec sleep 30");
        Go(sh);
        Assert.Equal("done", sh.StandardOutput.ReadLine());

        var stats = manager.Stats();

        Assert.True(stats.Cpu.Usage.Total > 0);
        Assert.Equal(Environment.ProcessorCount, stats.Cpu.Usage.Percpu!.Count);
        Assert.Equal(stats.Cpu.Usage.Total, stats.Cpu.Usage.Percpu.Aggregate(0UL, (a, b) => a + b));
        Assert.Equal(64UL << 20, stats.Memory.Usage.Limit);
        Assert.True(stats.Memory.Usage.Usage > 0);
        Assert.True(stats.Memory.Usage.Max >= stats.Memory.Usage.Usage);
        Assert.True(stats.Memory.Raw!.ContainsKey("rss"));
        Assert.Equal(1UL, stats.Pids.Current);
        Assert.Equal(20UL, stats.Pids.Limit);
        Assert.NotNull(stats.Blkio.IoServiceBytesRecursive);
        if (scope.Layout.GetV1Hierarchy("hugetlb") is not null || HugetlbEnabledInCgroup2(manager))
        {
            Assert.Contains("2MB", stats.Hugetlb.Keys);
        }
    }

    [RealCgroupV1Fact]
    public void Update_LiveGroup_MemoryRaisedAndLowered_CheckBeforeUpdateRefusesBelowUsage()
    {
        using var scope = new RealCgroupScope();
        var manager = NewGroup(scope);
        manager.Apply(new CgroupResources { Memory = new() { Limit = 64 << 20, Swap = 64 << 20 }, Cpu = new() { Quota = 20000 } });
        var sh = StartInGroup(scope, manager, "x=$(head -c 8000000 /dev/zero | tr '\\0' a); echo done; read forever");
        Go(sh);
        Assert.Equal("done", sh.StandardOutput.ReadLine());

        manager.Apply(new CgroupResources { Memory = new() { Limit = 256 << 20, Swap = 512 << 20 }, Cpu = new() { Quota = 80000 }, Pids = new() { Limit = 50 } });
        Assert.Equal((256L << 20).ToString(), Kernel(manager, "memory", "memory.limit_in_bytes"));
        Assert.Equal((512L << 20).ToString(), Kernel(manager, "memory", "memory.memsw.limit_in_bytes"));
        Assert.Equal("80000", Kernel(manager, "cpu", "cpu.cfs_quota_us"));

        manager.Apply(new CgroupResources { Memory = new() { Limit = 48 << 20, Swap = 48 << 20 } });
        Assert.Equal((48L << 20).ToString(), Kernel(manager, "memory", "memory.limit_in_bytes"));
        Assert.Equal((48L << 20).ToString(), Kernel(manager, "memory", "memory.memsw.limit_in_bytes"));

        var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Memory = new() { Limit = 1 << 20, CheckBeforeUpdate = true } }));
        Assert.Equal(CgroupErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("below the group's current usage", e.Message);
        Assert.Equal((48L << 20).ToString(), Kernel(manager, "memory", "memory.limit_in_bytes"));
        Assert.False(sh.HasExited);
    }

    /// <summary>
    /// Real-time bandwidth on a live group, as <c>docker update --cpu-rt-*</c> changes it: a period
    /// below the group's current runtime is refused by the kernel until the new runtime is in, so
    /// the runtime goes first and the period after it.
    /// </summary>
    [RealCgroupV1Fact]
    public void Update_RealtimePeriodBelowTheOldRuntime_RuntimeGoesFirst()
    {
        using var scope = new RealCgroupScope();
        var manager = NewGroup(scope);
        string group = manager.Paths["cpu"];
        if (!File.Exists(Path.Combine(group, "cpu.rt_runtime_us")))
        {
            return; // no real-time group scheduling in this kernel (CONFIG_RT_GROUP_SCHED)
        }
        // The parent's budget (a new group has none): 2% of the CPU time.
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(group)!, "cpu.rt_runtime_us"), "20000");
        manager.Apply(new CgroupResources { Cpu = new() { RealtimeRuntime = 15000 } });
        Assert.Equal(("1000000", "15000"), (Kernel(manager, "cpu", "cpu.rt_period_us"), Kernel(manager, "cpu", "cpu.rt_runtime_us")));

        manager.Apply(new CgroupResources { Cpu = new() { RealtimePeriod = 10000, RealtimeRuntime = 100 } });
        Assert.Equal(("10000", "100"), (Kernel(manager, "cpu", "cpu.rt_period_us"), Kernel(manager, "cpu", "cpu.rt_runtime_us")));

        // Alone, such a period is the kernel's refusal, named.
        var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Cpu = new() { RealtimePeriod = 50 } }));
        Assert.Contains("cpu.rt_period_us", e.Message);
        Assert.Equal("10000", Kernel(manager, "cpu", "cpu.rt_period_us"));
    }

    [RealCgroupV1Fact]
    public void NewerFields_AppliedWhereTheKernelHasThem_ReportedWhereNot()
    {
        using var scope = new RealCgroupScope();
        var manager = NewGroup(scope);

        // blkio throttles on a real block device.
        var dev = File.ReadAllText(Directory.GetDirectories("/sys/block").Select(d => Path.Combine(d, "dev")).First(File.Exists)).Trim().Split(':');
        var (major, minor) = (long.Parse(dev[0]), long.Parse(dev[1]));
        manager.Apply(new CgroupResources
        {
            BlockIo = new() { ThrottleReadBpsDevice = [new(major, minor, 1 << 20)], ThrottleWriteIopsDevice = [new(major, minor, 100)] },
            Cpu = new() { Quota = 50000, Burst = 10000, Idle = File.Exists(Path.Combine(manager.Paths["cpu"], "cpu.idle")) ? 1 : null },
            Memory = new() { KernelTcp = 32 << 20 },
        });
        Assert.Equal($"{major}:{minor} 1048576", Kernel(manager, "blkio", "blkio.throttle.read_bps_device"));
        Assert.Equal($"{major}:{minor} 100", Kernel(manager, "blkio", "blkio.throttle.write_iops_device"));
        Assert.Equal("10000", Kernel(manager, "cpu", "cpu.cfs_burst_us"));
        Assert.Equal((32L << 20).ToString(), Kernel(manager, "memory", "memory.kmem.tcp.limit_in_bytes"));

        // Fields this host cannot apply are errors naming the field, never dropped.
        if (!File.Exists(Path.Combine(manager.Paths["blkio"], "blkio.weight")) && !File.Exists(Path.Combine(manager.Paths["blkio"], "blkio.bfq.weight")))
        {
            var weight = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { BlockIo = new() { Weight = 500 } }));
            Assert.Equal(CgroupErrorKind.Unavailable, weight.Kind);
            Assert.StartsWith("blockIO.weight", weight.Message);
        }
        var kmem = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Memory = new() { Kernel = 64 << 20 } }));
        Assert.Equal(CgroupErrorKind.Unavailable, kmem.Kind);
        Assert.StartsWith("memory.kernel requested but this kernel", kmem.Message);
        if (scope.Layout.GetV1Hierarchy("net_cls") is null)
        {
            var net = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Network = new() { ClassId = 0x100001 } }));
            Assert.Equal(CgroupErrorKind.Unavailable, net.Kind);
            Assert.StartsWith("network.classID requested but the net_cls controller is not available", net.Message);
        }
    }

    [RealCgroupV1Fact]
    public void Hugetlb_AppliedInV1OrInTheHybridCgroup2Tree()
    {
        using var scope = new RealCgroupScope();
        var manager = NewGroup(scope);
        if (scope.Layout.GetV1Hierarchy("hugetlb") is { })
        {
            manager.Apply(new CgroupResources { HugepageLimits = [new("2MB", 4 << 20)] });
            Assert.Equal("4194304", Kernel(manager, "hugetlb", "hugetlb.2MB.limit_in_bytes"));
        }
        else if (scope.Layout.UnifiedControllers.Contains("hugetlb") && !HugetlbEnabledInCgroup2(manager))
        {
            // Berth does not enable cgroup2 controllers on a hybrid host (that would change the
            // host's cgroup.subtree_control for everyone): where the host did not, it says so.
            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { HugepageLimits = [new("2MB", 4 << 20)] }));
            Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
            Assert.Contains("hugetlb", e.Message);
        }
        else if (scope.Layout.UnifiedControllers.Contains("hugetlb"))
        {
            manager.Apply(new CgroupResources { HugepageLimits = [new("2MB", 4 << 20)], Unified = new Dictionary<string, string> { ["hugetlb.1GB.max"] = "0" } });
            Assert.Equal("4194304", Kernel(manager, CgroupManager.UnifiedKey, "hugetlb.2MB.max"));
            Assert.Equal("0", Kernel(manager, CgroupManager.UnifiedKey, "hugetlb.1GB.max"));
            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { HugepageLimits = [new("4MB", 1)] }));
            Assert.Equal(CgroupErrorKind.Unavailable, e.Kind);
            Assert.Contains("hugepageLimits pageSize 4MB", e.Message);
        }
        var memory = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Unified = new Dictionary<string, string> { ["memory.max"] = "1" } }));
        Assert.Equal(CgroupErrorKind.Unavailable, memory.Kind);
    }

    private static bool HugetlbEnabledInCgroup2(ICgroupManager manager) =>
        manager.Paths.TryGetValue(CgroupManager.UnifiedKey, out var unified)
        && File.Exists(Path.Combine(unified, "cgroup.controllers"))
        && File.ReadAllText(Path.Combine(unified, "cgroup.controllers")).Split().Contains("hugetlb");

    private static void SpinUntil(Func<bool> condition)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), "condition not reached in 10s");
            Thread.Sleep(5);
        }
    }
}
