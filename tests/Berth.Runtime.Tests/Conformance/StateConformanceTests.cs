using System.Text.Json;

namespace Berth.Runtime.Tests.Conformance;

/// <summary>OCI runtime spec, runtime.md "State": the fields `state` returns.</summary>
public sealed class StateConformanceTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    [IntegrationFact]
    public void State_carries_the_required_fields_at_created_running_and_stopped()
    {
        var bundle = _h.NewBundle().Script("exec sleep 30");
        bundle.Spec.Annotations = new() { ["org.opencontainers.conformance"] = "yes", ["com.example.other"] = "2" };
        bundle.Save();
        var id = _h.NewId("state");
        _h.Runtime("create", "--bundle", bundle.Dir, id).ShouldSucceed();

        var created = _h.State(id);
        AssertCommonFields(created, id, bundle.Dir);
        Assert.Equal("created", created.GetProperty("status").GetString());
        // "pid (int, REQUIRED when status is created or running on Linux) is the ID of the container process."
        var pid = RequiredPid(created, "created");

        // "annotations (map, OPTIONAL) contains the list of annotations associated with the container."
        var annotations = created.GetProperty("annotations");
        Assert.Equal("yes", annotations.GetProperty("org.opencontainers.conformance").GetString());
        Assert.Equal("2", annotations.GetProperty("com.example.other").GetString());

        _h.Runtime("start", id).ShouldSucceed();
        var running = _h.State(id);
        AssertCommonFields(running, id, bundle.Dir);
        Assert.Equal("running", running.GetProperty("status").GetString());
        Assert.Equal(pid, RequiredPid(running, "running"));

        _h.Runtime("kill", id, "KILL").ShouldSucceed();
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the container is stopped");
        var stopped = _h.State(id);
        AssertCommonFields(stopped, id, bundle.Dir);
        // pid is only REQUIRED when created or running; when stopped the container process has exited,
        // so a pid that is still given must not name a live process.
        if (stopped.TryGetProperty("pid", out var stoppedPid) && stoppedPid.GetInt32() > 0)
            Assert.False(SpecHost.Alive(stoppedPid.GetInt32()), $"a stopped container's state names a live pid {stoppedPid}");
    }

    [IntegrationFact]
    public void Bundle_is_absolute_even_when_create_was_given_a_relative_path()
    {
        var bundle = _h.NewBundle("sleep", "30");
        var id = _h.NewId("relbundle");
        // create run from the bundle's parent with a relative --bundle.
        _h.Runtime(["create", "--bundle", Path.GetFileName(bundle.Dir), id], workDir: Path.GetDirectoryName(bundle.Dir)).ShouldSucceed();
        // "bundle (string, REQUIRED) is the absolute path to the container's bundle directory."
        Assert.Equal(bundle.Dir, _h.State(id).GetProperty("bundle").GetString());
    }

    [IntegrationFact]
    public void Without_annotations_the_field_is_absent_or_an_empty_map()
    {
        var bundle = _h.NewBundle("sleep", "30");
        bundle.Spec.Annotations = null;
        var id = _h.NewId("noann");
        _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldSucceed();
        // "If no annotations were provided then this property MAY either be absent or an empty map."
        var state = _h.State(id);
        if (state.TryGetProperty("annotations", out var annotations) && annotations.ValueKind != JsonValueKind.Null)
        {
            Assert.Equal(JsonValueKind.Object, annotations.ValueKind);
            Assert.Empty(annotations.EnumerateObject());
        }
    }

    static void AssertCommonFields(JsonElement state, string id, string bundleDir)
    {
        // "ociVersion (string, REQUIRED) is version of the Open Container Initiative Runtime Specification with which the state complies."
        Assert.True(state.TryGetProperty("ociVersion", out var version) && version.ValueKind == JsonValueKind.String, $"ociVersion missing: {state}");
        Assert.Matches(@"^\d+\.\d+\.\d+", version.GetString());
        // "id (string, REQUIRED) is the container's ID."
        Assert.Equal(id, state.GetProperty("id").GetString());
        // "status (string, REQUIRED) is the runtime state of the container."
        Assert.Equal(JsonValueKind.String, state.GetProperty("status").ValueKind);
        // "bundle (string, REQUIRED) is the absolute path to the container's bundle directory."
        var bundle = state.GetProperty("bundle").GetString()!;
        Assert.True(Path.IsPathFullyQualified(bundle), $"bundle is not absolute: {bundle}");
        Assert.Equal(bundleDir, bundle);
    }

    static int RequiredPid(JsonElement state, string status)
    {
        Assert.True(state.TryGetProperty("pid", out var pid) && pid.ValueKind == JsonValueKind.Number && pid.GetInt32() > 0,
            $"\"pid (int, REQUIRED when status is created or running on Linux)\": the {status} state has none: {state}");
        Assert.True(SpecHost.Alive(pid.GetInt32()), $"the {status} state's pid {pid} is not a live process");
        return pid.GetInt32();
    }
}
