using Berth.Cgroups.Tests.Support;

namespace Berth.Cgroups.Tests.V1;

/// <summary>
/// The v1 manager on this host's real cgroup tree (legacy or hybrid), as root. Every test
/// works below a random "/berth-test-…" parent that <see cref="RealCgroupScope"/> removes
/// from every hierarchy, with any process it started, even when the test fails.
/// </summary>
public class V1ManagerRealTreeTests
{
    private static string Kernel(ICgroupManager m, string controller, string file) =>
        File.ReadAllText(Path.Combine(m.Paths[controller], file)).Trim();

    [RealCgroupV1Fact]
    public void Create_Apply_ReadBackFromTheKernel()
    {
        using var scope = new RealCgroupScope();
        var manager = CgroupManager.Create(scope.Layout, scope.PathFor("c1"));
        manager.Create();

        foreach (var path in manager.Paths.Values)
        {
            Assert.True(Directory.Exists(path), path);
        }
        Assert.Equal(
            File.ReadAllText(Path.Combine(scope.Layout.GetV1Hierarchy("cpuset")!.MountPoint, "cpuset.cpus")).Trim(),
            Kernel(manager, "cpuset", "cpuset.cpus"));
        if (scope.Layout.Mode == CgroupMode.Hybrid)
        {
            Assert.True(Directory.Exists(manager.Paths[CgroupManager.UnifiedKey]));
        }

        var hasSwap = File.Exists(Path.Combine(manager.Paths["memory"], "memory.memsw.limit_in_bytes"));
        manager.Apply(new CgroupResources
        {
            Memory = new() { Limit = 100 << 20, Swap = hasSwap ? 200 << 20 : null, Reservation = 50 << 20, Swappiness = 10, DisableOomKiller = true },
            Cpu = new() { Shares = 512, Quota = 50000, Period = 100000, Cpus = "0", Mems = "0" },
            Pids = new() { Limit = 42 },
        });

        Assert.Equal("104857600", Kernel(manager, "memory", "memory.limit_in_bytes"));
        if (hasSwap)
        {
            Assert.Equal("209715200", Kernel(manager, "memory", "memory.memsw.limit_in_bytes"));
        }
        Assert.Equal("52428800", Kernel(manager, "memory", "memory.soft_limit_in_bytes"));
        Assert.Equal("10", Kernel(manager, "memory", "memory.swappiness"));
        Assert.Contains("oom_kill_disable 1", Kernel(manager, "memory", "memory.oom_control"));
        Assert.Equal("512", Kernel(manager, "cpu", "cpu.shares"));
        Assert.Equal("50000", Kernel(manager, "cpu", "cpu.cfs_quota_us"));
        Assert.Equal("100000", Kernel(manager, "cpu", "cpu.cfs_period_us"));
        Assert.Equal("0", Kernel(manager, "cpuset", "cpuset.cpus"));
        Assert.Equal("0", Kernel(manager, "cpuset", "cpuset.mems"));
        Assert.Equal("42", Kernel(manager, "pids", "pids.max"));

        manager.Apply(new CgroupResources { Cpu = new() { Quota = -1 }, Pids = new() { Limit = 0 } });
        Assert.Equal("-1", Kernel(manager, "cpu", "cpu.cfs_quota_us"));
        Assert.Equal("max", Kernel(manager, "pids", "pids.max"));

        manager.Destroy();
        Assert.All(manager.Paths.Values, p => Assert.False(Directory.Exists(p), p));
    }

    [RealCgroupV1Fact]
    public void Apply_MemoryAndSwap_CanBeRaisedAndLowered()
    {
        using var scope = new RealCgroupScope();
        var manager = CgroupManager.Create(scope.Layout, scope.PathFor("c1"));
        manager.Create();
        if (!File.Exists(Path.Combine(manager.Paths["memory"], "memory.memsw.limit_in_bytes")))
        {
            return; // no swap accounting on this kernel: nothing to order
        }

        // The kernel wants limit <= memsw at every step: raising needs memsw first, lowering limit first.
        foreach (var (limit, swap) in new (long, long)[] { (100 << 20, 200 << 20), (300 << 20, 400 << 20), (50 << 20, 60 << 20) })
        {
            manager.Apply(new CgroupResources { Memory = new() { Limit = limit, Swap = swap } });
            Assert.Equal(limit.ToString(), Kernel(manager, "memory", "memory.limit_in_bytes"));
            Assert.Equal(swap.ToString(), Kernel(manager, "memory", "memory.memsw.limit_in_bytes"));
        }

        manager.Apply(new CgroupResources { Memory = new() { Limit = -1 } });
        Assert.Equal("9223372036854771712", Kernel(manager, "memory", "memory.limit_in_bytes"));
        Assert.Equal("9223372036854771712", Kernel(manager, "memory", "memory.memsw.limit_in_bytes"));
    }

    [RealCgroupV1Fact]
    public void AddProcess_GetPids_Destroy_LeaveNothingBehind()
    {
        using var scope = new RealCgroupScope();
        var manager = CgroupManager.Create(scope.Layout, scope.PathFor("c1"));
        manager.Create();
        manager.Apply(new CgroupResources { Memory = new() { Limit = 64 << 20 }, Pids = new() { Limit = 10 } });
        var sleep = scope.StartSleep();

        manager.AddProcess(sleep.Id);

        Assert.Equal([sleep.Id], manager.GetPids());
        var procCgroup = File.ReadAllText($"/proc/{sleep.Id}/cgroup");
        Assert.Contains($":memory:{scope.PathFor("c1")}\n", procCgroup);
        Assert.Contains($":pids:{scope.PathFor("c1")}\n", procCgroup);
        if (scope.Layout.Mode == CgroupMode.Hybrid)
        {
            Assert.Contains($"0::{scope.PathFor("c1")}\n", procCgroup);
        }

        // A live process keeps the group busy: Destroy says so, after its retries.
        var busy = Assert.Throws<CgroupException>(manager.Destroy);
        Assert.Equal(16, busy.Errno);
        Assert.Matches("^rmdir /sys/fs/cgroup/.*/c1: Device or resource busy$", busy.Message);

        RealCgroupScope.Kill(sleep);
        manager.Destroy();

        Assert.All(manager.Paths.Values, p => Assert.False(Directory.Exists(p), p));
        Assert.Empty(manager.GetPids());
        manager.Destroy(); // already gone is fine
    }

    [RealCgroupV1Fact]
    public void Load_FromPersistedPaths_CanDestroy()
    {
        using var scope = new RealCgroupScope();
        var created = CgroupManager.Create(scope.Layout, scope.PathFor("c1"));
        created.Create();
        var persisted = created.Paths.ToDictionary();

        var loaded = CgroupManager.Load(CgroupLayout.Detect(), persisted);
        loaded.Apply(new CgroupResources { Pids = new() { Limit = 7 } });
        Assert.Equal("7", Kernel(created, "pids", "pids.max"));
        loaded.Destroy();

        Assert.All(persisted.Values, p => Assert.False(Directory.Exists(p), p));
    }

    [RealCgroupV1Fact]
    public void KernelErrors_NameTheWriteTheFileAndTheReason()
    {
        using var scope = new RealCgroupScope();
        var manager = CgroupManager.Create(scope.Layout, scope.PathFor("c1"));
        manager.Create();

        var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Cpu = new() { Cpus = "x" } }));
        Assert.Equal($"write x to {manager.Paths["cpuset"]}/cpuset.cpus: Invalid argument", e.Message);
        Assert.Equal(22, e.Errno);

        var clamped = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Cpu = new() { Shares = 1 } }));
        Assert.Equal(CgroupErrorKind.InvalidArgument, clamped.Kind);
        Assert.Contains("minimum allowed cpu-shares is 2", clamped.Message);
    }

    [RealCgroupV1Fact]
    public void MemoryLimitBelowUsage_ReportsUsage()
    {
        using var scope = new RealCgroupScope();
        var manager = CgroupManager.Create(scope.Layout, scope.PathFor("c1"));
        manager.Create();
        // v1 leaves old charges behind when a task moves: the process allocates once inside.
        var hog = scope.StartShell("read go; x=$(head -c 4000000 /dev/zero | tr '\\0' a); echo ready; sleep 30");
        manager.AddProcess(hog.Id);
        hog.StandardInput.WriteLine("go");
        Assert.Equal("ready", hog.StandardOutput.ReadLine());

        // With the OOM killer off, a limit below what the group uses cannot be enforced and the
        // kernel answers EBUSY (no swap here to reclaim into).
        manager.Apply(new CgroupResources { Memory = new() { DisableOomKiller = true } });
        try
        {
            var usage = long.Parse(Kernel(manager, "memory", "memory.usage_in_bytes"));
            Assert.True(usage > 4096, $"usage {usage}");
            var e = Assert.Throws<CgroupException>(() => manager.Apply(new CgroupResources { Memory = new() { Limit = 4096 } }));
            Assert.Equal(16, e.Errno);
            Assert.Contains($"write 4096 to {manager.Paths["memory"]}/memory.limit_in_bytes: Device or resource busy", e.Message);
            Assert.Contains("below current usage", e.Message);
        }
        finally
        {
            RealCgroupScope.Kill(hog);
        }
    }
}
