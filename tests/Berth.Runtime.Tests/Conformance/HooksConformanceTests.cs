using System.Text.Json;
using Berth.Oci;

namespace Berth.Runtime.Tests.Conformance;

/// <summary>
/// OCI runtime spec, config.md "POSIX-platform Hooks", and runtime.md "Lifecycle" for what a
/// failing hook does at each point.
/// </summary>
public sealed class HooksConformanceTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    static readonly string[] Phases = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

    Berth.Oci.Hooks AllHooks(SpecHookLog log, string? failing = null, int exit = 7) => new()
    {
        Prestart = [log.Hook("prestart", failing == "prestart" ? exit : 0), log.Hook("prestart2")],
        CreateRuntime = [log.Hook("createRuntime", failing == "createRuntime" ? exit : 0), log.Hook("createRuntime2")],
        CreateContainer = [log.Hook("createContainer", failing == "createContainer" ? exit : 0), log.Hook("createContainer2")],
        StartContainer = [log.Hook("startContainer", failing == "startContainer" ? exit : 0), log.Hook("startContainer2")],
        Poststart = [log.Hook("poststart", failing == "poststart" ? exit : 0), log.Hook("poststart2")],
        Poststop = [log.Hook("poststop", failing == "poststop" ? exit : 0), log.Hook("poststop2")],
    };

    (SpecHookLog Log, Bundle Bundle, string Id) Prepare(string name, string? failing = null, string then = "exec sleep 30")
    {
        var log = new SpecHookLog(_h);
        var bundle = _h.NewBundle().Script(log.ProgramScript(then));
        log.MountInto(bundle);
        bundle.Spec.Hooks = AllHooks(log, failing);
        return (log, bundle.Save(), _h.NewId(name));
    }

    [IntegrationFact]
    public void Hooks_run_in_the_lifecycle_order_each_in_its_listed_order()
    {
        var (log, bundle, id) = Prepare("hookorder");
        _h.Runtime("create", "--bundle", bundle.Dir, id).ShouldSucceed();
        // "The prestart hooks MUST be called before the createRuntime hooks."
        // "The createContainer hooks MUST be called after the createRuntime hooks."
        // "Hooks MUST be called in the listed order."
        Assert.Equal(["prestart", "prestart2", "createRuntime", "createRuntime2", "createContainer", "createContainer2"], log.Order());

        _h.Runtime("start", id).ShouldSucceed();
        // "The startContainer hooks MUST be called before the user-specified process is executed as part of the start operation."
        // "The poststart hooks MUST be called after the user-specified process is executed but before the start operation returns."
        var afterStart = log.Order()[6..];
        Assert.Equal(["startContainer", "startContainer2"], afterStart[..2]);
        Assert.Contains("poststart", afterStart);
        Assert.Contains("poststart2", afterStart);
        Assert.True(Array.IndexOf(afterStart, "poststart") < Array.IndexOf(afterStart, "poststart2"), string.Join(", ", afterStart));
        RuntimeHarness.WaitUntil(() => log.Ran("program"), "the program ran");
        Assert.True(Array.IndexOf(log.Order(), "program") > Array.IndexOf(log.Order(), "startContainer2"), string.Join(", ", log.Order()));

        Assert.False(log.Ran("poststop"));
        _h.Runtime("kill", id, "KILL").ShouldSucceed();
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "stopped");
        var cgroups = SpecHost.CgroupDirs(id);
        _h.Runtime("delete", id).ShouldSucceed();
        // "The poststop hooks MUST be called after the container is deleted but before the delete operation returns."
        Assert.Equal(["poststop", "poststop2"], log.Order()[^2..]);
        Assert.DoesNotContain(cgroups, Directory.Exists);
    }

    [IntegrationFact]
    public void Each_hook_receives_the_state_on_stdin_with_the_status_and_pid_of_its_point()
    {
        var (log, bundle, id) = Prepare("hookstate");
        bundle.Spec.Annotations = new() { ["org.example.hook"] = "seen" };
        bundle.Save();
        _h.Runtime("create", "--bundle", bundle.Dir, id).ShouldSucceed();
        var hostPid = _h.State(id).GetProperty("pid").GetInt32();
        var containerPid = SpecHost.PidInOwnNamespace(hostPid);
        _h.Runtime("start", id).ShouldSucceed();
        _h.Runtime("delete", "--force", id).ShouldSucceed();

        // "The state of the container MUST be passed to hooks over stdin so that they may do work appropriate to the current state of the container."
        var expectedStatus = new Dictionary<string, string>
        {
            ["prestart"] = "creating", ["createRuntime"] = "creating", ["createContainer"] = "creating",
            ["startContainer"] = "created", ["poststart"] = "running", ["poststop"] = "stopped",
        };
        var problems = new List<string>();
        foreach (var phase in Phases)
        {
            var state = log.State(phase);
            if (state.GetProperty("id").GetString() != id) problems.Add($"{phase}: id {state.GetProperty("id")}");
            if (state.GetProperty("bundle").GetString() != bundle.Dir) problems.Add($"{phase}: bundle {state.GetProperty("bundle")}");
            if (string.IsNullOrEmpty(state.GetProperty("ociVersion").GetString())) problems.Add($"{phase}: no ociVersion");
            if (!state.TryGetProperty("annotations", out var a) || a.GetProperty("org.example.hook").GetString() != "seen") problems.Add($"{phase}: annotations missing");
            var status = state.GetProperty("status").GetString();
            if (status != expectedStatus[phase]) problems.Add($"{phase}: status \"{status}\", expected \"{expectedStatus[phase]}\"");
        }
        // "For hooks executed in the runtime namespace, it is the pid as seen by the runtime."
        foreach (var phase in new[] { "prestart", "createRuntime", "poststart" })
        {
            var pid = log.State(phase).TryGetProperty("pid", out var p) ? p.GetInt32() : 0;
            if (pid != hostPid) problems.Add($"{phase} (runtime namespace): pid {pid}, expected the pid as seen by the runtime, {hostPid}");
        }
        // "For hooks executed in the container namespace, it is the pid as seen by the container."
        // (runc 1.1.5 passes 1 to createContainer hooks: its init's getpid() in the new pid namespace.)
        // ("The createContainer hooks MUST be executed in the container namespace." / "The startContainer hooks MUST be executed in the container namespace.")
        foreach (var phase in new[] { "createContainer", "startContainer" })
        {
            var pid = log.State(phase).TryGetProperty("pid", out var p) ? p.GetInt32() : 0;
            if (pid != containerPid)
                problems.Add($"{phase} (container namespace): pid {pid}; \"For hooks executed in the container namespace, it is the pid as seen by the container.\" " +
                             $"The container sees its process as {containerPid} (host pid {hostPid}).");
        }
        Assert.True(problems.Count == 0, "hook states differ from the spec:\n  " + string.Join("\n  ", problems));
    }

    [IntegrationFact]
    public void Hooks_run_in_the_namespace_the_spec_names()
    {
        var (log, bundle, id) = Prepare("hookns");
        _h.Runtime("create", "--bundle", bundle.Dir, id).ShouldSucceed();
        var pid = _h.State(id).GetProperty("pid").GetInt32();
        var containerMnt = SpecHost.MountNamespaceOf(pid);
        var runtimeMnt = SpecHost.MountNamespaceOf(Environment.ProcessId);
        _h.Runtime("start", id).ShouldSucceed();
        _h.Runtime("delete", "--force", id).ShouldSucceed();

        // "The createRuntime hooks MUST be executed in the runtime namespace."
        Assert.Equal(runtimeMnt, log.MountNamespace("createRuntime"));
        // "The createContainer hooks MUST be executed in the container namespace."
        Assert.Equal(containerMnt, log.MountNamespace("createContainer"));
        // "The poststart hooks MUST be executed in the runtime namespace."
        Assert.Equal(runtimeMnt, log.MountNamespace("poststart"));
        // "The poststop hooks MUST be executed in the runtime namespace."
        Assert.Equal(runtimeMnt, log.MountNamespace("poststop"));
        // "The startContainer hooks MUST be executed in the container namespace." — it ran with the container's
        // root: it found hook.sh through the bind mount, which only exists in the container's mount namespace at /.
        Assert.True(log.Ran("startContainer"));
    }

    // runtime.md Lifecycle, steps 3, 4, 5: "If any prestart|createRuntime|createContainer hook fails, the runtime MUST
    // generate an error, stop the container, and continue the lifecycle at step 12."
    // Step 12: "The container MUST be destroyed by undoing the steps performed during create phase (step 2)."
    // Step 13: "The poststop hooks MUST be invoked by the runtime."
    [IntegrationTheory]
    [InlineData("prestart")]
    [InlineData("createRuntime")]
    [InlineData("createContainer")]
    public void A_failing_create_hook_errors_stops_the_container_destroys_it_and_runs_poststop(string phase)
    {
        var (log, bundle, id) = Prepare("hookfail-" + phase.ToLowerInvariant(), failing: phase);
        var result = _h.Runtime("create", "--bundle", bundle.Dir, id);
        var sentence = $"\"If any {phase} hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 12.\"";
        Assert.True(result.Code != 0, $"{sentence} — create succeeded:\n{result}");
        // The remaining hooks of the failed point and of later points do not run, nor does the program.
        var order = log.Order();
        Assert.DoesNotContain(phase + "2", order);
        Assert.DoesNotContain("startContainer", order);
        Assert.DoesNotContain("program", order);
        // Stopped and destroyed (step 12).
        Assert.False(Directory.Exists(Path.Combine(_h.Root, id)), $"{sentence} Step 12 destroys the container, but its state directory remains");
        Assert.Empty(SpecHost.CgroupDirs(id));
        Assert.Empty(RuntimeHarness.MountPointsUnder(bundle.Dir));
        // Step 13.
        Assert.True(log.Ran("poststop") && log.Ran("poststop2"),
            $"{sentence} Step 13: \"The poststop hooks MUST be invoked by the runtime.\" — they did not run; order: {string.Join(", ", order)}");
        Assert.Equal(JsonValueKind.Object, log.State("poststop").ValueKind);
    }

    [IntegrationFact]
    public void A_failing_start_container_hook_errors_stops_the_container_and_runs_poststop()
    {
        var (log, bundle, id) = Prepare("hookfail-startc", failing: "startContainer");
        _h.Runtime("create", "--bundle", bundle.Dir, id).ShouldSucceed();
        var pid = _h.State(id).GetProperty("pid").GetInt32();
        var result = _h.Runtime("start", id);
        const string sentence = "\"If any startContainer hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 12.\"";
        Assert.True(result.Code != 0, $"{sentence} — start succeeded:\n{result}");
        Thread.Sleep(200);
        Assert.DoesNotContain("program", log.Order());
        Assert.DoesNotContain("startContainer2", log.Order());
        Assert.DoesNotContain("poststart", log.Order());
        // "stop the container"
        Assert.False(SpecHost.Alive(pid), $"{sentence} — the container process {pid} is still alive (status {StatusOrGone(id)})");
        // Step 13: "The poststop hooks MUST be invoked by the runtime."
        Assert.True(log.Ran("poststop"), $"{sentence} Step 13: \"The poststop hooks MUST be invoked by the runtime.\" — they did not run; order: {string.Join(", ", log.Order())}");
    }

    [IntegrationFact]
    public void A_failing_poststart_hook_only_warns_and_the_lifecycle_continues()
    {
        var (log, bundle, id) = Prepare("hookfail-poststart", failing: "poststart");
        _h.Runtime("create", "--bundle", bundle.Dir, id).ShouldSucceed();
        var start = _h.Runtime("start", id);
        // "If any poststart hook fails, the runtime MUST log a warning, but the remaining hooks and lifecycle continue as if the hook had succeeded."
        Assert.True(start.Code == 0, $"a failing poststart hook failed start: {start}");
        Assert.True(log.Ran("poststart2"), "the remaining poststart hook did not run");
        Assert.Equal("running", _h.Status(id));
        RuntimeHarness.WaitUntil(() => log.Ran("program"), "the program ran");
    }

    [IntegrationFact]
    public void A_failing_poststop_hook_only_warns_and_delete_completes()
    {
        var (log, bundle, id) = Prepare("hookfail-poststop", failing: "poststop", then: "true");
        _h.Runtime("create", "--bundle", bundle.Dir, id).ShouldSucceed();
        _h.Runtime("start", id).ShouldSucceed();
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "stopped");
        var cgroups = SpecHost.CgroupDirs(id);
        var delete = _h.Runtime("delete", id);
        // "If any poststop hook fails, the runtime MUST log a warning, but the remaining hooks and lifecycle continue as if the hook had succeeded."
        Assert.True(delete.Code == 0, $"a failing poststop hook failed delete: {delete}");
        Assert.True(log.Ran("poststop2"), "the remaining poststop hook did not run");
        _h.Runtime("state", id).ShouldFail();
        Assert.False(Directory.Exists(Path.Combine(_h.Root, id)));
        Assert.DoesNotContain(cgroups, Directory.Exists);
    }

    string StatusOrGone(string id)
    {
        var r = _h.Runtime("state", id);
        return r.Code == 0 ? r.Stdout : "gone";
    }
}
