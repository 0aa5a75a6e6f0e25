namespace Berth.Runtime.Tests.Conformance;

/// <summary>
/// OCI runtime spec, runtime.md "Errors": "Unless otherwise stated, generating an error MUST leave
/// the state of the environment as if the operation were never performed - modulo any possible
/// trivial ancillary changes such as logging."
/// </summary>
public sealed class ErrorsConformanceTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    [IntegrationFact]
    public void A_create_that_errors_leaves_nothing_behind()
    {
        var bundle = _h.NewBundle("sleep", "30");
        bundle.Spec.Mounts!.Add(new Berth.Oci.Mount { Destination = "/data", Type = "bind", Source = Path.Combine(_h.Dir, "no-such-source"), Options = ["rbind"] });
        var id = _h.NewId("badcreate");
        // "If the runtime cannot apply a property as specified in the configuration, it MUST generate an error and a new container MUST NOT be created."
        _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldFail();
        // "generating an error MUST leave the state of the environment as if the operation were never performed"
        _h.Runtime("state", id).ShouldFail();
        Assert.False(Directory.Exists(Path.Combine(_h.Root, id)), "a state directory remains");
        Assert.Empty(SpecHost.CgroupDirs(id));
        Assert.Empty(RuntimeHarness.MountPointsUnder(bundle.Dir));
        Assert.Equal("", _h.Runtime("list", "-q").ShouldSucceed().Stdout.Trim());
        // ... so the id is still free.
        var ok = _h.NewBundle("sleep", "30");
        _h.Runtime("create", "--bundle", ok.Dir, id).ShouldSucceed();
    }

    [IntegrationFact]
    public void Operations_refused_in_the_wrong_state_leave_the_container_as_it_was()
    {
        var id = _h.NewId("refused");
        _h.CreateAndStart(id, _h.NewBundle("sleep", "30"));
        var before = _h.State(id).ToString();
        var cgroups = SpecHost.CgroupDirs(id);

        // "generating an error MUST leave the state of the environment as if the operation were never performed"
        _h.Runtime("start", id).ShouldFail();
        _h.Runtime("delete", id).ShouldFail();
        _h.Runtime("create", "--bundle", _h.NewBundle("true").Dir, id).ShouldFail();
        _h.Runtime("kill", id, "NOSUCHSIGNAL").ShouldFail();

        Assert.Equal(before, _h.State(id).ToString());
        Assert.All(cgroups, dir => Assert.True(Directory.Exists(dir), $"{dir} was removed"));
        Assert.True(SpecHost.Alive(_h.State(id).GetProperty("pid").GetInt32()));
    }
}
