using System.Diagnostics;
using Berth.Oci;
using Berth.Runtime.Hooks;

namespace Berth.Runtime.Tests.Hooks;

/// <summary>HookRunner spawns real hook processes (through the native executor) with the state on stdin.</summary>
public sealed class HookRunnerTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("berth-hooks-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [NativeFact]
    public void The_state_arrives_on_stdin_with_the_hook_args_and_exactly_its_env()
    {
        var output = Path.Combine(_dir, "out");
        var hook = new Hook
        {
            Path = "/bin/sh",
            Args = ["hook-name", "-c", $"cat > {output}; echo \"argv0=$0 env=$(env | grep -v '^PWD=\\|^SHLVL=\\|^_=' | sort | tr '\\n' ' ')\" >> {output}"],
            Env = ["HOOK_A=1", "HOOK_B=two"],
        };
        HookRunner.Run(hook, "{\"ociVersion\":\"1.2.0\",\"id\":\"x\"}");
        var lines = File.ReadAllLines(output);
        Assert.Equal("{\"ociVersion\":\"1.2.0\",\"id\":\"x\"}argv0=hook-name env=HOOK_A=1 HOOK_B=two ", lines[0]);
    }

    [NativeFact]
    public void A_failing_hook_throws_with_its_exit_status()
    {
        var e = Assert.Throws<RuntimeException>(() => HookRunner.Run(new Hook { Path = "/bin/sh", Args = ["sh", "-c", "exit 3"] }, "{}"));
        Assert.Contains("exited with status 3", e.Message);
        var killed = Assert.Throws<RuntimeException>(() => HookRunner.Run(new Hook { Path = "/bin/sh", Args = ["sh", "-c", "kill -9 $$"] }, "{}"));
        Assert.Contains("signal 9", killed.Message);
    }

    [NativeFact]
    public void A_hook_that_outlives_its_timeout_is_killed()
    {
        var watch = Stopwatch.StartNew();
        var e = Assert.Throws<RuntimeException>(() => HookRunner.Run(new Hook { Path = "/bin/sleep", Args = ["sleep", "30"], Timeout = 1 }, "{}"));
        Assert.Contains("timed out", e.Message);
        // Under 25 s: the `sleep 30` was killed (a loaded machine may be slow, but not 29 s slow).
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(25), $"the timeout took {watch.Elapsed}");
    }

    [NativeFact]
    public void A_hook_that_does_not_read_stdin_still_succeeds()
    {
        HookRunner.Run(new Hook { Path = "/bin/true" }, new string('x', 1 << 20));
    }

    [NativeFact]
    public void A_missing_hook_binary_fails()
    {
        Assert.ThrowsAny<RuntimeException>(() => HookRunner.Run(new Hook { Path = "/nonexistent/hook" }, "{}"));
    }
}

/// <summary>Hooks that run "in the container namespace" join the namespaces of a real process.</summary>
public sealed class HookRunnerNamespaceTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("berth-hookns-").FullName;
    System.Diagnostics.Process? _target;

    public void Dispose()
    {
        if (_target is { HasExited: false }) _target.Kill(entireProcessTree: true);
        _target?.WaitForExit();
        Directory.Delete(_dir, recursive: true);
    }

    [RootNativeFact]
    public void A_hook_joins_the_mount_uts_and_ipc_namespaces_of_a_process_in_its_own_pid_namespace()
    {
        // A process in new mount, uts, ipc and pid namespaces with its own /proc, like a started container.
        var start = new System.Diagnostics.ProcessStartInfo("unshare", ["--fork", "--pid", "--mount-proc", "-m", "-u", "-i", "sh", "-c", "hostname ns-target; exec sleep 30"]);
        _target = System.Diagnostics.Process.Start(start)!;
        int pid = 0;
        RuntimeHarness.WaitUntil(() =>
        {
            var children = File.ReadAllText($"/proc/{_target.Id}/task/{_target.Id}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return children.Length == 1 && int.TryParse(children[0], out pid) && File.ReadAllText($"/proc/{pid}/cmdline").StartsWith("sleep", StringComparison.Ordinal);
        }, "the namespaced sleep runs");

        var output = Path.Combine(_dir, "out");
        // After joining the mount namespace, /proc is the target's procfs, where /proc/<host pid>/ns/* does not
        // exist: every namespace file must be opened before the first setns (as InitCompiler does).
        HookRunner.Run(new Hook { Path = "/bin/sh", Args = ["sh", "-c", $"hostname > {output}"] }, "{}", namespacePid: pid);
        Assert.Equal("ns-target", File.ReadAllText(output).Trim());
    }
}
