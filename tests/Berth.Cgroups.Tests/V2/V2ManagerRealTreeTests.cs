using Berth.Cgroups.Tests.Support;

namespace Berth.Cgroups.Tests.V2;

/// <summary>The v2 manager on a real cgroup v2 host, as root (skipped on v1 and hybrid hosts).</summary>
public class V2ManagerRealTreeTests
{
    [RealCgroupV2Fact]
    public void Create_Apply_AddProcess_Destroy()
    {
        using var scope = new RealCgroupScope();
        var manager = CgroupManager.Create(scope.Layout, scope.PathFor("c1"));
        manager.Create();
        var path = manager.Paths[CgroupManager.UnifiedKey];
        var enabled = File.ReadAllText(Path.Combine(path, "cgroup.controllers")).Split();

        var resources = new CgroupResources
        {
            Memory = enabled.Contains("memory") ? new() { Limit = 100 << 20 } : null,
            Pids = enabled.Contains("pids") ? new() { Limit = 42 } : null,
            Cpu = enabled.Contains("cpu") ? new() { Shares = 1024, Quota = 50000 } : null,
        };
        manager.Apply(resources);
        if (resources.Memory is not null)
        {
            Assert.Equal("104857600", File.ReadAllText(Path.Combine(path, "memory.max")).Trim());
        }
        if (resources.Pids is not null)
        {
            Assert.Equal("42", File.ReadAllText(Path.Combine(path, "pids.max")).Trim());
        }
        if (resources.Cpu is not null)
        {
            Assert.Equal("39", File.ReadAllText(Path.Combine(path, "cpu.weight")).Trim());
            Assert.Equal("50000 100000", File.ReadAllText(Path.Combine(path, "cpu.max")).Trim());
        }

        var sleep = scope.StartSleep();
        manager.AddProcess(sleep.Id);
        Assert.Equal([sleep.Id], manager.GetPids());
        Assert.Contains($"0::{scope.PathFor("c1")}", File.ReadAllText($"/proc/{sleep.Id}/cgroup"));

        RealCgroupScope.Kill(sleep);
        manager.Destroy();
        Assert.False(Directory.Exists(path));
    }
}
