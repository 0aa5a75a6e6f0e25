using System.Diagnostics;
using System.Text.Json;
using Berth.Oci;

namespace Berth.Runtime.Tests.Integration;

/// <summary>pause/resume (freezer), update (live limits), events (stats, OOM).</summary>
public sealed class PauseUpdateEventsTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    static bool IsV1 => Directory.Exists("/sys/fs/cgroup/memory");

    static string Host(string controller, string id, string file) =>
        IsV1 ? Path.Combine("/sys/fs/cgroup", controller, "berth", id, file) : Path.Combine("/sys/fs/cgroup/berth", id, file);

    static int Ticks(RuntimeResult created) => created.CurrentStdout().Split('\n').Count(l => l == "tick");

    [IntegrationFact]
    public void A_paused_container_makes_no_progress_until_resumed()
    {
        var bundle = _h.NewBundle().Script("while true; do echo tick; sleep 0.02; done");
        var id = _h.NewId("pause");
        var created = _h.CreateAndStart(id, bundle);
        RuntimeHarness.WaitForOutput(created, "tick");

        _h.Runtime("pause", id).ShouldSucceed();
        Assert.Equal("paused", _h.Status(id));
        Thread.Sleep(100); // output already in flight before the freeze
        var frozenAt = Ticks(created);
        Thread.Sleep(400);
        Assert.Equal(frozenAt, Ticks(created));
        Assert.Contains("not running", _h.Runtime("pause", id).ShouldFail().Stderr);
        Assert.Contains("paused", _h.Runtime("exec", id, "true").ShouldFail().Stderr);

        _h.Runtime("resume", id).ShouldSucceed();
        Assert.Equal("running", _h.Status(id));
        RuntimeHarness.WaitUntil(() => Ticks(created) > frozenAt + 3, "the container went on after resume");
        Assert.Contains("not paused", _h.Runtime("resume", id).ShouldFail().Stderr);
    }

    [IntegrationFact]
    public void Pausing_a_stopped_container_fails()
    {
        var id = _h.NewId("pausestopped");
        _h.CreateAndStart(id, _h.NewBundle("true"));
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the container stopped");
        Assert.Contains("not running", _h.Runtime("pause", id).ShouldFail().Stderr);
    }

    [IntegrationFact]
    public void Update_changes_the_limits_of_the_live_group_and_keeps_them()
    {
        var bundle = _h.NewBundle("sleep", "1000");
        bundle.Linux.Resources = new LinuxResources { Memory = new LinuxMemory { Limit = 32L << 20 }, Pids = new LinuxPids { Limit = 50 } };
        var id = _h.NewId("update");
        _h.CreateAndStart(id, bundle);
        var memoryFile = IsV1 ? Host("memory", id, "memory.limit_in_bytes") : Host("memory", id, "memory.max");
        Assert.Equal((32L << 20).ToString(), File.ReadAllText(memoryFile).Trim());

        _h.Runtime("update", "--memory", "64m", "--pids-limit", "70", "--cpu-quota", "20000", "--cpu-period", "100000", id).ShouldSucceed();
        Assert.Equal((64L << 20).ToString(), File.ReadAllText(memoryFile).Trim());
        Assert.Equal("70", File.ReadAllText(Host("pids", id, "pids.max")).Trim());
        if (IsV1) Assert.Equal("20000", File.ReadAllText(Host("cpu", id, "cpu.cfs_quota_us")).Trim());

        // -r resources.json; what it does not name stays as the last update left it.
        var resources = _h.NewPath("resources.json");
        File.WriteAllText(resources, """{"pids":{"limit":80}}""");
        _h.Runtime("update", "-r", resources, id).ShouldSucceed();
        Assert.Equal("80", File.ReadAllText(Host("pids", id, "pids.max")).Trim());
        Assert.Equal((64L << 20).ToString(), File.ReadAllText(memoryFile).Trim());
        var kept = SpecLoader.Parse(File.ReadAllBytes(Path.Combine(_h.Root, id, "config.json")));
        Assert.Equal((64L << 20, 80L), (kept.Linux!.Resources!.Memory!.Limit!.Value, kept.Linux.Resources.Pids!.Limit!.Value));

        Assert.Contains("invalid", _h.Runtime("update", "--memory", "lots", id).ShouldFail().Stderr);
    }

    [IntegrationFact]
    public void Events_stats_prints_one_line_in_runcs_shape()
    {
        var bundle = _h.NewBundle("sleep", "1000");
        bundle.Linux.Resources = new LinuxResources { Memory = new LinuxMemory { Limit = 64L << 20 }, Pids = new LinuxPids { Limit = 40 } };
        var id = _h.NewId("stats");
        _h.CreateAndStart(id, bundle);
        var result = _h.Runtime("events", "--stats", id).ShouldSucceed();
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        using var doc = JsonDocument.Parse(lines[0]);
        var root = doc.RootElement;
        Assert.Equal("stats", root.GetProperty("type").GetString());
        Assert.Equal(id, root.GetProperty("id").GetString());
        var data = root.GetProperty("data");
        foreach (var key in new[] { "cpu", "memory", "pids", "blkio", "hugetlb" }) Assert.True(data.TryGetProperty(key, out _), $"no {key} in {lines[0]}");
        Assert.True(data.GetProperty("cpu").GetProperty("usage").GetProperty("total").GetUInt64() > 0);
        Assert.Equal((ulong)(64L << 20), data.GetProperty("memory").GetProperty("usage").GetProperty("limit").GetUInt64());
        Assert.Equal(1UL, data.GetProperty("pids").GetProperty("current").GetUInt64());
        Assert.Equal(40UL, data.GetProperty("pids").GetProperty("limit").GetUInt64());
    }

    [IntegrationFact]
    public void An_oom_kill_is_reported_as_an_oom_event_and_exit_137()
    {
        // 16 MiB, no swap: tail buffers all of /dev/zero, with oom_score_adj 1000 so that the OOM
        // killer takes it and not the shell that reports the status (see CgroupTests' OOM test: in
        // CI runs the shell was taken once here and once there).
        // The allocation waits for /go, which the test makes once `events` is watching (a fixed
        // sleep lost the race on a loaded machine).
        var bundle = _h.NewBundle().Script("while [ ! -e /go ]; do sleep 0.05; done; " +
            "sh -c 'echo 1000 > /proc/self/oom_score_adj && exec tail /dev/zero' > /dev/null; echo exit=$?; exec sleep 60");
        bundle.Linux.Resources = new LinuxResources { Memory = new LinuxMemory { Limit = 16L << 20, Swap = 16L << 20 } };
        var id = _h.NewId("oom");
        var created = _h.CreateAndStart(id, bundle);

        var eventsOut = _h.NewPath("events.out");
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"exec \"$0\" --root \"$1\" events --interval 200ms \"$2\" > \"$3\" 2>&1");
        foreach (var a in new[] { TestEnvironment.RuntimeBinary!, _h.Root, id, eventsOut }) start.ArgumentList.Add(a);
        using var events = System.Diagnostics.Process.Start(start)!;
        try
        {
            RuntimeHarness.WaitUntil(() => RuntimeHarness.SafeRead(eventsOut).Contains("\"type\":\"stats\""), "events is running", timeoutMs: 30_000);
            File.WriteAllText(Path.Combine(bundle.Rootfs, "go"), "");
            RuntimeHarness.WaitForOutput(created, "exit=", timeoutMs: 60_000);
            Assert.Contains("exit=137", created.CurrentStdout());
            RuntimeHarness.WaitUntil(() => RuntimeHarness.SafeRead(eventsOut).Contains($"{{\"type\":\"oom\",\"id\":\"{id}\"}}"), "events reported the OOM kill", timeoutMs: 30_000);
            Assert.Contains("\"type\":\"stats\"", RuntimeHarness.SafeRead(eventsOut));
        }
        finally
        {
            if (!events.HasExited) { events.Kill(); events.WaitForExit(); }
        }

        // The init itself OOM-killed: run exits 137.
        var init = _h.NewBundle().Script("exec tail /dev/zero");
        init.Linux.Resources = new LinuxResources { Memory = new LinuxMemory { Limit = 16L << 20, Swap = 16L << 20 } };
        Assert.Equal(137, _h.Run(init, "oominit").Code);
    }
}
