namespace Berth.Runtime.Tests.Conformance;

/// <summary>OCI runtime spec, runtime.md "Lifecycle" (steps 1–13) and the status values of "State".</summary>
public sealed class LifecycleConformanceTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    [IntegrationFact]
    public void Status_is_creating_while_create_runs()
    {
        var log = new SpecHookLog(_h);
        var stateDuringCreate = Path.Combine(log.Dir, "state-during-create");
        var query = Path.Combine(log.Dir, "query.sh");
        // A createRuntime hook asks the runtime for the state while create is still running.
        File.WriteAllText(query, $"#!/bin/sh\ncat >/dev/null\ntimeout 5 {TestEnvironment.RuntimeBinary} --root {_h.Root} state \"$1\" > {stateDuringCreate} 2>&1; echo \"exit $?\" >> {stateDuringCreate}\n");
        File.SetUnixFileMode(query, (UnixFileMode)0x1ed);
        var bundle = _h.NewBundle().Script(log.ProgramScript("sleep 0.5"));
        log.MountInto(bundle);
        var id = _h.NewId("statuses");
        bundle.Spec.Hooks = new Berth.Oci.Hooks { CreateRuntime = [new() { Path = query, Args = ["query.sh", id] }] };
        _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldSucceed();

        // "creating: the container is being created (step 2 in the lifecycle)"
        // The container exists from step 1 on (its id is taken: a second create with it must fail), so `state` must
        // answer, with "creating". (runc 1.1.5 answers "container does not exist" here too.)
        var during = File.ReadAllText(stateDuringCreate);
        Assert.True(during.Contains("\"creating\"", StringComparison.Ordinal),
            $"\"creating: the container is being created (step 2 in the lifecycle)\": `state` queried from a createRuntime hook said:\n{during}");
    }

    [IntegrationFact]
    public void Status_moves_created_running_stopped()
    {
        var log = new SpecHookLog(_h);
        // The program runs until the test creates this file (the log folder is mounted at the same
        // path in the container), so it is certainly still running when "running" is checked.
        var release = Path.Combine(log.Dir, "release");
        var bundle = _h.NewBundle().Script(log.ProgramScript($"while [ ! -e {release} ]; do sleep 0.05; done"));
        log.MountInto(bundle);
        var id = _h.NewId("statuses2");
        _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldSucceed();

        // "created: the runtime has finished the create operation (after step 2 in the lifecycle), and the
        // container process has neither exited nor executed the user-specified program"
        Assert.Equal("created", _h.Status(id));
        Assert.False(log.Ran("program"));

        // "running: the container process has executed the user-specified program but has not exited (after step 8 in the lifecycle)"
        _h.Runtime("start", id).ShouldSucceed();
        Assert.Equal("running", _h.Status(id));
        RuntimeHarness.WaitUntil(() => log.Ran("program"), "the program ran", 30_000);
        Assert.Equal("running", _h.Status(id));

        // "stopped: the container process has exited (step 10 in the lifecycle)"
        File.WriteAllText(release, "");
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the container is stopped after its program exited", 30_000);
    }

    [IntegrationFact]
    public void The_user_program_does_not_run_until_start()
    {
        var log = new SpecHookLog(_h);
        var bundle = _h.NewBundle().Script(log.ProgramScript());
        log.MountInto(bundle);
        var id = _h.NewId("notyet");
        _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldSucceed();
        var pid = _h.State(id).GetProperty("pid").GetInt32();

        // "While the resources requested in the config.json MUST be created, the user-specified program
        // (from process) MUST NOT be run at this time."
        Thread.Sleep(300);
        Assert.False(log.Ran("program"), "the program ran before start");
        Assert.DoesNotContain("sleep", File.ReadAllText($"/proc/{pid}/cmdline"));

        // "The runtime MUST run the user-specified program, as specified by process." (step 8, on start)
        _h.Runtime("start", id).ShouldSucceed();
        RuntimeHarness.WaitUntil(() => log.Ran("program"), "the program ran after start");
    }

    [IntegrationFact]
    public void Changes_to_config_json_after_create_do_not_affect_the_container()
    {
        var log = new SpecHookLog(_h);
        var bundle = _h.NewBundle().Script(log.ProgramScript("echo original >> " + log.OrderFile));
        log.MountInto(bundle);
        var id = _h.NewId("cfgchange");
        _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldSucceed();

        // "Any updates to config.json after this step MUST NOT affect the container."
        bundle.Script($"echo changed >> {log.OrderFile}").Save();
        _h.Runtime("start", id).ShouldSucceed();
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the program finished");
        Assert.Equal(["program", "original"], log.Order());
    }

    [IntegrationFact]
    public void After_the_program_exits_the_container_is_stopped_and_delete_undoes_create()
    {
        var bundle = _h.NewBundle("true");
        var id = _h.NewId("exits");
        _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldSucceed();
        var pid = _h.State(id).GetProperty("pid").GetInt32();
        var cgroups = SpecHost.CgroupDirs(id);
        Assert.NotEmpty(cgroups); // what create made, checked below
        Assert.True(Directory.Exists(Path.Combine(_h.Root, id)));
        var containerMountNs = SpecHost.MountNamespaceOf(pid);

        _h.Runtime("start", id).ShouldSucceed();
        // "The container process exits." (step 10) → "stopped: the container process has exited"
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the container is stopped after `true` exited", 30_000);
        Assert.False(SpecHost.Alive(pid));

        // "The container MUST be destroyed by undoing the steps performed during create phase (step 2)."
        // (runtime.md, delete: "Deleting a container MUST delete the resources that were created during the create step.")
        _h.Runtime("delete", id).ShouldSucceed();
        Assert.DoesNotContain(cgroups, Directory.Exists);
        Assert.False(Directory.Exists(Path.Combine(_h.Root, id)), "the state directory remains");
        Assert.Empty(RuntimeHarness.MountPointsUnder(bundle.Dir));
        Assert.NotEqual(containerMountNs, SpecHost.MountNamespaceOf(Environment.ProcessId));
        _h.Runtime("state", id).ShouldFail();

        // "Note that resources associated with the container, but not created by this container, MUST NOT be deleted."
        Assert.True(File.Exists(bundle.ConfigPath), "delete removed the bundle's config.json");
        Assert.True(File.Exists(Path.Combine(bundle.Rootfs, "bin/busybox")), "delete removed the bundle's rootfs");
    }
}
