using Berth.Oci;

namespace Berth.Runtime.Tests.Integration;

/// <summary>
/// The six hooks at the points the runtime spec puts them, each with the state on stdin. Every
/// hook appends "NAME STATUS PID" to a log. The hooks' folder is bind-mounted into the container
/// at the same path, so hooks that run in the container's mount namespace find it too.
/// </summary>
public sealed class HookTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    (string Dir, string Script, string Log) HookFiles()
    {
        var dir = _h.NewDir("hooks");
        var script = Path.Combine(dir, "hook.sh");
        var log = Path.Combine(dir, "log");
        File.WriteAllText(script, """
            #!/bin/sh
            state=$(cat | tr -d '\n\t ')
            status=$(echo "$state" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
            pid=$(echo "$state" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
            echo "$1 $status $pid" >> "$2"
            """.Replace("\r", ""));
        File.SetUnixFileMode(script, (UnixFileMode)0x1ed);
        File.WriteAllText(log, "");
        return (dir, script, log);
    }

    static Hook H(string script, string name, string log, int? timeout = null) =>
        new() { Path = script, Args = ["hook.sh", name, log], Timeout = timeout };

    [IntegrationFact]
    public void Every_hook_runs_at_its_point_with_the_state_on_stdin()
    {
        var (dir, script, log) = HookFiles();
        var bundle = _h.NewBundle().Script($"echo container-ran >> {log}; exec sleep 30");
        bundle.Spec.Mounts!.Add(new Mount { Destination = dir, Type = "bind", Source = dir, Options = ["rbind", "rw"] });
        bundle.Spec.Hooks = new Berth.Oci.Hooks
        {
            Prestart = [H(script, "prestart", log)],
            CreateRuntime = [H(script, "createRuntime", log)],
            CreateContainer = [H(script, "createContainer", log)],
            StartContainer = [H(script, "startContainer", log)],
            Poststart = [H(script, "poststart", log)],
            Poststop = [H(script, "poststop", log)],
        };
        var id = _h.NewId("hooks");
        _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldSucceed();
        var pid = _h.State(id).GetProperty("pid").GetInt32().ToString();
        var afterCreate = File.ReadAllLines(log);
        // createRuntime, then createContainer; prestart (deprecated) with them, before pivot_root.
        // Hooks in the container's namespaces get "the pid as seen by the container": 1 here.
        Assert.Equal(["createRuntime creating " + pid, "createContainer creating 1"],
            afterCreate.Where(l => !l.StartsWith("prestart", StringComparison.Ordinal)));
        Assert.Contains("prestart creating " + pid, afterCreate);
        Assert.True(Array.IndexOf(afterCreate, "prestart creating " + pid) < Array.IndexOf(afterCreate, "createContainer creating 1"),
            "prestart hooks run before createContainer");

        var start = _h.Runtime("start", id);
        Assert.True(start.Code == 0, "start failed: a startContainer hook runs in the container's namespaces and must find its path there " +
            $"(HookRunner opens /proc/PID/ns/* after joining the mount namespace, where that PID does not exist):\n{start}");
        RuntimeHarness.WaitUntil(() => File.ReadAllText(log).Contains("container-ran"), "the container ran");
        var afterStart = File.ReadAllLines(log)[afterCreate.Length..];
        // startContainer before the user process; poststart after it started, before start returned.
        Assert.Equal("startContainer created 1", afterStart[0]);
        Assert.Contains("poststart running " + pid, afterStart);
        Assert.True(Array.IndexOf(afterStart, "container-ran") > 0, string.Join('\n', afterStart));

        _h.Runtime("delete", "--force", id).ShouldSucceed();
        var poststop = File.ReadAllLines(log)[^1];
        Assert.StartsWith("poststop stopped", poststop);
    }

    [IntegrationFact]
    public void Create_container_and_start_container_hooks_run_in_the_container_namespaces()
    {
        var (dir, _, log) = HookFiles();
        var script = Path.Combine(dir, "ns.sh");
        // /proc/self/ns/mnt: a hook runs in the host's pid namespace, so this is readable while the host's
        // /proc is still visible (createRuntime, createContainer before pivot_root); after pivot_root
        // (startContainer) the hostname set by then tells the namespace.
        File.WriteAllText(script, $"#!/bin/sh\necho \"$1 $(hostname) $(readlink /proc/self/ns/mnt)\" >> {log}\n");
        File.SetUnixFileMode(script, (UnixFileMode)0x1ed);
        var bundle = _h.NewBundle("sleep", "30");
        bundle.Spec.Hostname = "hook-box";
        bundle.Spec.Mounts!.Add(new Mount { Destination = dir, Type = "bind", Source = dir, Options = ["rbind", "rw"] });
        bundle.Spec.Hooks = new Berth.Oci.Hooks
        {
            CreateRuntime = [new Hook { Path = script, Args = ["ns.sh", "createRuntime"] }],
            CreateContainer = [new Hook { Path = script, Args = ["ns.sh", "createContainer"] }],
            StartContainer = [new Hook { Path = script, Args = ["ns.sh", "startContainer"] }],
        };
        var id = _h.NewId("hookns");
        _h.CreateAndStart(id, bundle);
        var pid = _h.State(id).GetProperty("pid").GetInt32();
        var containerMnt = new FileInfo($"/proc/{pid}/ns/mnt").LinkTarget;
        var lines = File.ReadAllLines(log).Select(l => l.Split(' ')).ToDictionary(l => l[0]);
        Assert.NotEqual("hook-box", lines["createRuntime"][1]); // the runtime's namespaces
        Assert.NotEqual(containerMnt, lines["createRuntime"][2]);
        Assert.Equal(containerMnt, lines["createContainer"][2]); // the container's mount namespace, before pivot_root
        Assert.Equal("hook-box", lines["startContainer"][1]); // the container's uts namespace, hostname set
    }

    [IntegrationFact]
    public void A_failing_create_runtime_hook_fails_create_and_leaves_nothing_behind()
    {
        var (_, script, log) = HookFiles();
        var bundle = _h.NewBundle("sleep", "30");
        bundle.Spec.Hooks = new Berth.Oci.Hooks
        {
            CreateRuntime = [H(script, "first", log), new Hook { Path = "/bin/sh", Args = ["sh", "-c", "exit 9"] }],
            Poststop = [H(script, "poststop", log)],
        };
        var id = _h.NewId("hookfail");
        var result = _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldFail();
        Assert.Contains("createRuntime", result.Stderr);
        Assert.Contains("status 9", result.Stderr);
        Assert.False(Directory.Exists(Path.Combine(_h.Root, id)), "no state directory may remain");
        Assert.False(Directory.Exists($"/sys/fs/cgroup/pids/berth/{id}"), "no cgroup may remain");
        Assert.Equal("", _h.Runtime("list", "-q").ShouldSucceed().Stdout);
    }

    [IntegrationFact]
    public void A_hook_past_its_timeout_fails_create()
    {
        var bundle = _h.NewBundle("sleep", "30");
        bundle.Spec.Hooks = new Berth.Oci.Hooks { CreateRuntime = [new Hook { Path = "/bin/sleep", Args = ["sleep", "30"], Timeout = 1 }] };
        var id = _h.NewId("hooktimeout");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        // The bound is about the `sleep 30` hook being killed, not about how fast a create is: 25 s
        // leaves room for a create on a loaded machine and still fails if the hook ran its 30 s
        // (hence also the longer limit for the runtime call than its 20 s default).
        var result = _h.Runtime(["create", "--bundle", bundle.Save().Dir, id], timeoutMs: 60_000).ShouldFail();
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(25), $"create took {watch.Elapsed} with a 1 s hook timeout");
        Assert.Contains("timed out", result.Stderr);
        Assert.False(Directory.Exists(Path.Combine(_h.Root, id)));
    }

    [IntegrationFact]
    public void A_failing_poststart_hook_only_warns()
    {
        var bundle = _h.NewBundle("sleep", "30");
        bundle.Spec.Hooks = new Berth.Oci.Hooks { Poststart = [new Hook { Path = "/bin/false" }] };
        var id = _h.NewId("poststart");
        _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldSucceed();
        var start = _h.Runtime("start", id);
        Assert.Equal("running", _h.Status(id));
        _ = start;
    }
}
