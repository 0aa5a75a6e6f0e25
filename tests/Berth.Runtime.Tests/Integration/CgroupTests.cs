using Berth.Oci;
using Berth.Runtime.Container;

namespace Berth.Runtime.Tests.Integration;

/// <summary>cgroups (v1 here, hybrid layout): limits seen from the host and from inside; the group removed on delete.</summary>
public sealed class CgroupTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    static bool IsV1 => Directory.Exists("/sys/fs/cgroup/memory");

    static string Host(string controller, string group, string file) =>
        IsV1 ? Path.Combine("/sys/fs/cgroup", controller, group.Trim('/'), file) : Path.Combine("/sys/fs/cgroup", group.Trim('/'), file);

    static Bundle Limited(Bundle b)
    {
        b.Linux.Resources ??= new LinuxResources();
        b.Linux.Resources.Memory = new LinuxMemory { Limit = 64L * 1024 * 1024 };
        b.Linux.Resources.Cpu = new LinuxCpu { Shares = 512, Quota = 50_000, Period = 100_000 };
        b.Linux.Resources.Pids = new LinuxPids { Limit = 42 };
        return b;
    }

    [IntegrationFact]
    public void Limits_are_visible_from_the_host_and_inside_and_the_group_goes_with_delete()
    {
        var bundle = Limited(_h.NewBundle().Script(IsV1
            ? "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max; echo ready; exec sleep 30"
            : "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max; echo ready; exec sleep 30"));
        var id = _h.NewId("cg");
        var created = _h.CreateAndStart(id, bundle);
        var inside = RuntimeHarness.WaitForOutput(created, "ready").Split('\n');
        var group = $"/berth/{id}";
        var pid = _h.State(id).GetProperty("pid").GetInt32();
        if (IsV1)
        {
            Assert.Equal("67108864", File.ReadAllText(Host("memory", group, "memory.limit_in_bytes")).Trim());
            Assert.Equal("512", File.ReadAllText(Host("cpu", group, "cpu.shares")).Trim());
            Assert.Equal("50000", File.ReadAllText(Host("cpu", group, "cpu.cfs_quota_us")).Trim());
            Assert.Equal("100000", File.ReadAllText(Host("cpu", group, "cpu.cfs_period_us")).Trim());
            Assert.Equal("42", File.ReadAllText(Host("pids", group, "pids.max")).Trim());
            Assert.Equal(["67108864", "512", "50000", "42"], inside[..4]);
            foreach (var controller in new[] { "memory", "cpu", "pids", "freezer", "devices" })
                Assert.Contains(pid.ToString(), File.ReadAllLines(Host(controller, group, "cgroup.procs")));
        }
        else
        {
            Assert.Equal("67108864", File.ReadAllText(Host("", group, "memory.max")).Trim());
            Assert.Equal("50000 100000", File.ReadAllText(Host("", group, "cpu.max")).Trim());
            Assert.Equal("42", File.ReadAllText(Host("", group, "pids.max")).Trim());
        }
        _h.Runtime("delete", "--force", id).ShouldSucceed();
        Assert.False(Directory.Exists(Host("memory", group, "")), "delete must remove the container's cgroup");
        Assert.False(Directory.Exists(Host("pids", group, "")), "delete must remove the container's cgroup");
    }

    /// <summary>
    /// The runtime's default parent (/berth, here a parent of this test's own) goes with its last
    /// container — after a delete, and after a create that failed once the groups were made (a
    /// createRuntime hook runs then), which left /berth in every hierarchy before.
    /// </summary>
    [IntegrationFact]
    public void The_default_parent_goes_after_a_delete_and_after_a_failed_create()
    {
        var parent = $"/berthtest-parent-{Guid.NewGuid():N}"[..32];
        var runtime = new ContainerRuntime(Path.Combine(_h.Root, "in-process")) { CgroupParent = parent };
        var id = _h.NewId("prune");
        try
        {
            var bundle = _h.NewBundle("true");
            runtime.Create(id, new CreateOptions { Bundle = bundle.Dir });
            Assert.True(Directory.Exists(Host("pids", parent, "")), "the create makes the default parent");
            runtime.Delete(id, force: true);
            Assert.False(Directory.Exists(Host("pids", parent, "")), "the delete of its last container removes the default parent");

            bundle.Spec.Hooks = new Berth.Oci.Hooks { CreateRuntime = [new Hook { Path = "/bin/false" }] };
            bundle.Save();
            var failing = _h.NewId("prune-failed");
            Assert.ThrowsAny<RuntimeException>(() => runtime.Create(failing, new CreateOptions { Bundle = bundle.Dir }));
            Assert.False(Directory.Exists(Host("pids", parent, failing)), "the failed create removes its group");
            Assert.False(Directory.Exists(Host("pids", parent, "")), "the failed create removes the default parent it made");
            Assert.False(Directory.Exists(Host("memory", parent, "")), "the failed create removes the default parent it made");
        }
        finally
        {
            try { runtime.Delete(id, force: true); } catch (RuntimeException) { }
            // What a failed assertion left: the groups under the test's parent, then the parent, in every hierarchy.
            foreach (var dir in Directory.GetDirectories("/sys/fs/cgroup").Select(h => Path.Combine(h, parent.Trim('/'))).Prepend(Path.Combine("/sys/fs/cgroup", parent.Trim('/'))))
            {
                if (!Directory.Exists(dir)) continue;
                foreach (var child in Directory.GetDirectories(dir)) Directory.Delete(child);
                Directory.Delete(dir);
            }
        }
    }

    [IntegrationFact]
    public void A_configured_cgroups_path_is_used_and_removed()
    {
        var id = _h.NewId("cgpath");
        var path = $"/berthtest-{Guid.NewGuid():N}"[..24] + $"/{id}";
        _h.TrackCgroupPath(path);
        var bundle = Limited(_h.NewBundle("sleep", "30"));
        bundle.Linux.CgroupsPath = path;
        _h.CreateAndStart(id, bundle);
        Assert.Equal("42", File.ReadAllText(Host("pids", path, "pids.max")).Trim());
        Assert.False(Directory.Exists(Host("pids", $"/berth/{id}", "")), "the default group must not be made when cgroupsPath is set");
        _h.Runtime("delete", "--force", id).ShouldSucceed();
        Assert.False(Directory.Exists(Host("pids", path, "")));
    }

    [IntegrationFact]
    public void The_pids_limit_is_enforced()
    {
        // busybox sh exits when fork fails: "ready" first, then as many children as the limit lets it make.
        var bundle = _h.NewBundle().Script("echo ready; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done; wait");
        bundle.Linux.Resources ??= new LinuxResources();
        bundle.Linux.Resources.Pids = new LinuxPids { Limit = 4 };
        var id = _h.NewId("pids");
        var created = _h.CreateAndStart(id, bundle);
        RuntimeHarness.WaitForOutput(created, "ready");
        var group = $"/berth/{id}";
        RuntimeHarness.WaitUntil(() => System.Text.RegularExpressions.Regex.IsMatch(File.ReadAllText(Host("pids", group, "pids.events")), "max [1-9]"),
            "a fork was refused by pids.max (pids.events counts it)");
        Assert.True(int.Parse(File.ReadAllText(Host("pids", group, "pids.current"))) <= 4, "more processes than pids.max");
    }

    [IntegrationFact]
    public void A_process_over_the_memory_limit_is_oom_killed()
    {
        // 16 MiB limit, no swap; tail buffers its whole input (/dev/zero has no newline) in memory.
        // tail raises its own oom_score_adj to 1000 so the OOM killer picks it, not the shell that
        // reports the status (with equal scores the kernel sometimes took sh). It reads /dev/zero
        // itself: with a `head | tail` pipe, head went on allocating pipe pages while tail's memory
        // was being freed, and a second OOM kill took the shell once in CI (exit 137, no output).
        var b = _h.NewBundle().Script(
            "sh -c 'echo 1000 > /proc/self/oom_score_adj && exec tail /dev/zero' > /dev/null; echo exit=$?");
        b.Linux.Resources ??= new LinuxResources();
        b.Linux.Resources.Memory = new LinuxMemory { Limit = 16L * 1024 * 1024, Swap = 16L * 1024 * 1024 };
        var limited = _h.Run(b, "oom").ShouldSucceed();
        Assert.Contains("exit=137", limited.Stdout); // tail got SIGKILL from the OOM killer
    }
}
