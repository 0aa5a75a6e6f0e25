using System.Text.Json;

namespace Berth.Runtime.Tests.Integration;

/// <summary>create → start → kill → delete, and state as the OCI runtime spec describes it.</summary>
public sealed class LifecycleTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    [IntegrationFact]
    public void State_moves_created_running_stopped_with_the_spec_fields()
    {
        var bundle = _h.NewBundle().Script("echo started; exec sleep 30");
        bundle.Spec.Annotations = new() { ["org.example.key"] = "value" };
        bundle.Save();
        var id = _h.NewId("life");
        var created = _h.Runtime("create", "--bundle", bundle.Dir, id).ShouldSucceed();

        var state = _h.State(id);
        Assert.Equal("created", state.GetProperty("status").GetString());
        Assert.Equal(id, state.GetProperty("id").GetString());
        Assert.False(string.IsNullOrEmpty(state.GetProperty("ociVersion").GetString()));
        Assert.Equal(bundle.Dir, state.GetProperty("bundle").GetString());
        Assert.Equal("value", state.GetProperty("annotations").GetProperty("org.example.key").GetString());
        var pid = state.GetProperty("pid").GetInt32();
        Assert.True(pid > 0, "a created container's state must carry the init's pid");

        // create leaves the init waiting: the command has not run yet.
        Thread.Sleep(200);
        Assert.Equal("", created.CurrentStdout());
        Assert.DoesNotContain("sleep", File.ReadAllText($"/proc/{pid}/cmdline"));
        Assert.Equal("created", _h.Status(id));

        _h.Runtime("start", id).ShouldSucceed();
        RuntimeHarness.WaitForOutput(created, "started");
        state = _h.State(id);
        Assert.Equal("running", state.GetProperty("status").GetString());
        Assert.Equal(pid, state.GetProperty("pid").GetInt32());
        RuntimeHarness.WaitUntil(() => File.ReadAllText($"/proc/{pid}/cmdline").Contains("sleep"), "the init exec'd sleep");

        // A second start is refused: the container is not created any more.
        _h.Runtime("start", id).ShouldFail();

        _h.Runtime("kill", id, "KILL").ShouldSucceed();
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the container is stopped");
        _h.Runtime("delete", id).ShouldSucceed();
        Assert.False(Directory.Exists(Path.Combine(_h.Root, id)), "delete must remove the state directory");
        var gone = _h.Runtime("state", id).ShouldFail();
        Assert.Contains(id, gone.Stderr);
    }

    [IntegrationFact]
    public void A_start_cut_short_after_releasing_the_init_leaves_a_running_container_not_a_created_one()
    {
        // What `start` does, stopped where a kill -9 of its caller can stop it: the byte written
        // into the exec fifo (the init goes on to exec) and the fifo not yet removed.
        var id = _h.NewId("cut");
        var bundle = _h.NewBundle().Script("echo started; exec sleep 30");
        bundle.Save();
        var created = _h.Runtime("create", "--bundle", bundle.Dir, id).ShouldSucceed();
        Assert.Equal("created", _h.Status(id));
        var fifo = Path.Combine(_h.Root, id, "exec.fifo");
        using (var writer = new FileStream(fifo, FileMode.Open, FileAccess.Write)) writer.WriteByte(0);
        RuntimeHarness.WaitForOutput(created, "started");
        Assert.True(File.Exists(fifo));

        Assert.Equal("running", _h.Status(id));
        _h.Runtime("start", id).ShouldFail(); // not created any more
        _h.Runtime("delete", "--force", id).ShouldSucceed();
    }

    [IntegrationFact]
    public void Delete_of_a_running_container_fails_without_force_and_kills_it_with_force()
    {
        var id = _h.NewId("del");
        _h.CreateAndStart(id, _h.NewBundle("sleep", "30"));
        var pid = _h.State(id).GetProperty("pid").GetInt32();
        var refused = _h.Runtime("delete", id).ShouldFail();
        Assert.Contains("running", refused.Stderr);
        Assert.Equal("running", _h.Status(id));

        _h.Runtime("delete", "--force", id).ShouldSucceed();
        RuntimeHarness.WaitUntil(() => !File.Exists($"/proc/{pid}/cmdline") || File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2] is "Z" or "X", "the init is gone");
        _h.Runtime("state", id).ShouldFail();
    }

    [IntegrationFact]
    public void A_created_container_can_be_deleted_before_start()
    {
        var id = _h.NewId("created-del");
        _h.Runtime("create", "--bundle", _h.NewBundle("sleep", "30").Dir, id).ShouldSucceed();
        var pid = _h.State(id).GetProperty("pid").GetInt32();
        _h.Runtime("delete", id).ShouldSucceed();
        RuntimeHarness.WaitUntil(() => !File.Exists($"/proc/{pid}/cmdline") || File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2] is "Z" or "X", "the waiting init is gone");
    }

    [IntegrationFact]
    public void Kill_by_name_and_by_number_delivers_that_signal()
    {
        var bundle = _h.NewBundle().Script("trap 'echo got-usr1' USR1; trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.05; done");
        var id = _h.NewId("kill");
        var created = _h.CreateAndStart(id, bundle);
        RuntimeHarness.WaitForOutput(created, "ready");
        _h.Runtime("kill", id, "SIGUSR1").ShouldSucceed();
        RuntimeHarness.WaitForOutput(created, "got-usr1");
        _h.Runtime("kill", id, "10").ShouldSucceed();
        RuntimeHarness.WaitUntil(() => created.CurrentStdout().Split("got-usr1").Length == 3, "the second USR1 arrived");
        _h.Runtime("kill", id).ShouldSucceed(); // SIGTERM by default
        RuntimeHarness.WaitForOutput(created, "got-term");
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the container stopped after SIGTERM");
        var notRunning = _h.Runtime("kill", id, "KILL").ShouldFail();
        Assert.Contains("not running", notRunning.Stderr);
        _h.Runtime("kill", id, "NOSUCHSIG").ShouldFail();
    }

    [IntegrationFact]
    public void Kill_all_signals_every_process_of_the_container()
    {
        var bundle = _h.NewBundle().Script("sleep 30 & sleep 30 & echo ready; wait");
        var id = _h.NewId("killall");
        var created = _h.CreateAndStart(id, bundle);
        RuntimeHarness.WaitForOutput(created, "ready");
        var cgroupProcs = $"/sys/fs/cgroup/pids/berth/{id}/cgroup.procs";
        RuntimeHarness.WaitUntil(() => File.Exists(cgroupProcs) && File.ReadAllLines(cgroupProcs).Length == 3, "three processes are in the container's cgroup");
        var pids = File.ReadAllLines(cgroupProcs).Select(int.Parse).ToList();
        _h.Runtime("kill", "--all", id, "KILL").ShouldSucceed();
        RuntimeHarness.WaitUntil(() => pids.All(p => !File.Exists($"/proc/{p}/stat") || File.ReadAllText($"/proc/{p}/stat").Split(' ')[2] is "Z" or "X"), "every process of the container died");
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the container is stopped");
    }

    [IntegrationFact]
    public void List_shows_a_table_and_json()
    {
        var a = _h.NewId("list-a");
        var b = _h.NewId("list-b");
        _h.Runtime("create", "--bundle", _h.NewBundle("sleep", "30").Dir, a).ShouldSucceed();
        _h.CreateAndStart(b, _h.NewBundle("sleep", "30"));

        var table = _h.Runtime("list").ShouldSucceed().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], table[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var rows = table.Skip(1).Select(r => r.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToDictionary(r => r[0]);
        Assert.Equal("created", rows[a][2]);
        Assert.Equal("running", rows[b][2]);
        Assert.Equal(_h.State(b).GetProperty("pid").GetInt32().ToString(), rows[b][1]);
        Assert.Equal("root", rows[b][5]);

        using var json = JsonDocument.Parse(_h.Runtime("list", "--format", "json").ShouldSucceed().Stdout);
        var byId = json.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("id").GetString()!);
        Assert.Equal(2, byId.Count);
        Assert.Equal("created", byId[a].GetProperty("status").GetString());
        Assert.Equal("running", byId[b].GetProperty("status").GetString());

        Assert.Equal([a, b], _h.Runtime("list", "-q").ShouldSucceed().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
        _h.Runtime("list", "--format", "yaml").ShouldFail();
    }
}
