using Berth.Oci;

namespace Berth.Runtime.Tests.Integration;

/// <summary>Bad input is refused with a message naming the problem, a non-zero exit, and no leftover.</summary>
public sealed class ErrorTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    RuntimeResult CreateFails(Bundle bundle, string id, bool save = true)
    {
        if (save) bundle.Save();
        var result = _h.Runtime("create", "--bundle", bundle.Dir, id).ShouldFail();
        Assert.False(Directory.Exists(Path.Combine(_h.Root, id)), $"a failed create left its state directory: {result}");
        foreach (var controller in new[] { "memory", "pids", "cpu", "freezer" })
            Assert.False(Directory.Exists($"/sys/fs/cgroup/{controller}/berth/{id}"), $"a failed create left its {controller} cgroup: {result}");
        Assert.Empty(RuntimeHarness.MountPointsUnder(bundle.Dir));
        return result;
    }

    [IntegrationFact]
    public void An_invalid_field_is_named()
    {
        var bundle = _h.NewBundle("sh");
        var json = File.ReadAllText(bundle.Save().ConfigPath).Replace("\"terminal\"", "\"x\"");
        // A number where the spec wants a string.
        File.WriteAllText(bundle.ConfigPath, json.Replace("\"cwd\": \"/\"", "\"cwd\": 5"));
        var result = CreateFails(bundle, _h.NewId("badfield"), save: false);
        Assert.Contains("cwd", result.Stderr);
    }

    [IntegrationFact]
    public void A_relative_cwd_is_refused_by_validation()
    {
        var bundle = _h.NewBundle("sh");
        bundle.Process.Cwd = "relative/dir";
        var result = CreateFails(bundle, _h.NewId("relcwd"));
        Assert.Contains("cwd", result.Stderr);
    }

    [IntegrationFact]
    public void A_missing_rootfs_is_named()
    {
        var bundle = _h.NewBundle("sh");
        bundle.Spec.Root!.Path = "no-such-rootfs";
        var result = CreateFails(bundle, _h.NewId("norootfs"));
        Assert.Contains("no-such-rootfs", result.Stderr);
    }

    [IntegrationFact]
    public void An_unknown_namespace_type_is_named()
    {
        var bundle = _h.NewBundle("sh");
        bundle.Linux.Namespaces!.Add(new Berth.Oci.LinuxNamespace { Type = "bogusns" });
        var result = CreateFails(bundle, _h.NewId("badns"));
        Assert.Contains("bogusns", result.Stderr);
    }

    [IntegrationFact]
    public void A_missing_executable_fails_create_not_start()
    {
        var result = CreateFails(_h.NewBundle("no-such-command"), _h.NewId("noexec"));
        Assert.Contains("no-such-command", result.Stderr);
    }

    [IntegrationFact]
    public void A_failing_setup_step_is_named_and_cleaned_up()
    {
        var bundle = _h.NewBundle("sh");
        bundle.Linux.Sysctl = new() { ["kernel.no_such_sysctl"] = "1" };
        var result = CreateFails(bundle, _h.NewId("badsysctl"));
        Assert.Contains("kernel.no_such_sysctl", result.Stderr);
    }

    [IntegrationFact]
    public void A_duplicate_id_is_refused_and_the_first_container_survives()
    {
        var id = _h.NewId("dup");
        _h.CreateAndStart(id, _h.NewBundle("sleep", "30"));
        var pid = _h.State(id).GetProperty("pid").GetInt32();
        var result = _h.Runtime("create", "--bundle", _h.NewBundle("sh").Save().Dir, id).ShouldFail();
        Assert.Contains("already exists", result.Stderr);
        Assert.Equal("running", _h.Status(id));
        Assert.Equal(pid, _h.State(id).GetProperty("pid").GetInt32());
    }

    [IntegrationFact]
    public void Operations_on_a_missing_container_name_it()
    {
        foreach (var command in new[] { "state", "start", "kill", "delete" })
        {
            var result = _h.Runtime(command, "bt-missing-container").ShouldFail();
            Assert.Contains("bt-missing-container", result.Stderr);
        }
        _h.Runtime("delete", "--force", "bt-missing-container").ShouldSucceed();
        _h.Runtime("create", "--bundle", _h.NewBundle("sh").Save().Dir, "bad/id").ShouldFail();
    }

    [IntegrationFact]
    public void Log_file_receives_the_error_in_json()
    {
        var log = _h.NewPath("log.json");
        var bundle = _h.NewBundle("sh");
        bundle.Spec.Root!.Path = "missing-root";
        var id = _h.NewId("log");
        _h.Runtime("--log", log, "--log-format", "json", "create", "--bundle", bundle.Save().Dir, id).ShouldFail();
        var line = File.ReadAllLines(log).Last();
        using var doc = System.Text.Json.JsonDocument.Parse(line);
        Assert.Equal("error", doc.RootElement.GetProperty("level").GetString());
        Assert.Contains("missing-root", doc.RootElement.GetProperty("msg").GetString());
    }

    /// <summary>
    /// A capability the runtime itself cannot hold (outside its bounding set: run here under setpriv without
    /// CAP_SYS_RESOURCE, as root is on some hosts) makes capset fail with a bare EPERM; the error names it.
    /// </summary>
    [IntegrationFact]
    public void A_capability_outside_the_runtimes_bounding_set_is_named()
    {
        var bundle = _h.NewBundle("true");
        string[] caps = ["CAP_KILL", "CAP_SYS_RESOURCE"];
        bundle.Process.Capabilities = new LinuxCapabilities { Bounding = [.. caps], Effective = [.. caps], Permitted = [.. caps] };
        bundle.Save();
        var result = _h.Runtime(["run", "--bundle", bundle.Dir, _h.NewId("capbnd")], wrapper: "setpriv --bounding-set -sys_resource").ShouldFail();
        Assert.Contains("set capabilities (effective, permitted, inheritable): operation not permitted (EPERM): CAP_SYS_RESOURCE is not in the runtime's bounding set", result.Stderr);
    }
}
