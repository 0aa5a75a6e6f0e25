namespace Berth.Runtime.Tests.Integration;

/// <summary>`run`: create + start + wait, the container's exit code, --pid-file, --detach.</summary>
public sealed class RunTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    [IntegrationFact]
    public void Run_exits_with_the_container_exit_code_and_deletes_it()
    {
        var result = _h.Run(_h.NewBundle().Script("echo out; echo err >&2; exit 7"), "exit");
        Assert.Equal(7, result.Code);
        Assert.Equal("out\n", result.Stdout);
        Assert.Contains("err", result.Stderr);
        Assert.Equal(0, _h.Run(_h.NewBundle("true")).Code);
        Assert.Empty(Directory.Exists(_h.Root) ? Directory.GetDirectories(_h.Root) : []);
    }

    [IntegrationFact]
    public void Run_of_a_container_killed_by_a_signal_exits_128_plus_the_signal()
    {
        var id = _h.NewId("sig");
        var bundle = _h.NewBundle().Script("echo up; exec sleep 30").Save();
        var run = Task.Run(() => _h.Runtime("run", "--bundle", bundle.Dir, id));
        RuntimeHarness.WaitUntil(() => Directory.Exists(Path.Combine(_h.Root, id)) && _h.Runtime("state", id) is { Code: 0 } s && s.Stdout.Contains("running"), "the container runs");
        _h.Runtime("kill", id, "KILL").ShouldSucceed();
        Assert.True(run.Wait(TimeSpan.FromSeconds(20)), "run did not return after its container was killed");
        Assert.Equal(128 + 9, run.Result.Code);
        // PID 1 ignores signals it has no handler for, even from inside: SIGTERM to itself does nothing,
        // so the script goes on and exits 3.
        Assert.Equal(3, _h.Run(_h.NewBundle().Script("kill -TERM $$; exit 3"), "sig").Code);
    }

    [IntegrationFact]
    public void Run_detach_leaves_the_container_running_and_writes_the_pid_file()
    {
        var id = _h.NewId("detach");
        var pidFile = _h.NewPath("pid");
        var bundle = _h.NewBundle("sleep", "30").Save();
        _h.Runtime("run", "--detach", "--pid-file", pidFile, "--bundle", bundle.Dir, id).ShouldSucceed();
        var state = _h.State(id);
        Assert.Equal("running", state.GetProperty("status").GetString());
        Assert.Equal(state.GetProperty("pid").GetInt32().ToString(), File.ReadAllText(pidFile));
    }

    [IntegrationFact]
    public void Run_uses_the_current_directory_as_the_bundle_by_default()
    {
        var bundle = _h.NewBundle("echo", "from-cwd").Save();
        var result = _h.Runtime(["run", _h.NewId("cwd")], workDir: bundle.Dir).ShouldSucceed();
        Assert.Equal("from-cwd\n", result.Stdout);
    }
}
