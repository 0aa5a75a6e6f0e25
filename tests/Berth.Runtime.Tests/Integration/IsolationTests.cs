namespace Berth.Runtime.Tests.Integration;

/// <summary>The container's isolation as seen from inside and from the host.</summary>
public sealed class IsolationTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    [IntegrationFact]
    public void Init_is_pid_1_with_its_own_hostname_and_ps_sees_only_its_own_processes()
    {
        var bundle = _h.NewBundle().Script("echo pid=$$; hostname; ps -o pid,comm; true");
        bundle.Spec.Hostname = "isolated-box";
        var output = _h.Run(bundle).ShouldSucceed().Stdout.Split('\n', StringSplitOptions.TrimEntries);
        Assert.Equal("pid=1", output[0]);
        Assert.Equal("isolated-box", output[1]);
        // sh itself and ps: nothing of the host.
        var processes = output.Skip(3).Where(l => l.Length > 0).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.True(processes.Count == 2, $"ps inside saw other processes than sh and ps:\n{string.Join('\n', output)}");
        Assert.Equal(["1", "sh"], processes[0]);
        Assert.NotEqual("isolated-box", Environment.MachineName);
    }

    [IntegrationFact]
    public void Host_sees_the_real_pid_in_state_and_different_namespaces()
    {
        var bundle = _h.NewBundle("sleep", "30");
        var id = _h.NewId("iso");
        var pidFile = _h.NewPath("pid");
        _h.CreateAndStart(id, bundle, "--pid-file", pidFile);
        var state = _h.State(id);
        var pid = state.GetProperty("pid").GetInt32();
        Assert.True(pid > 1, $"state pid {pid} is not a host pid");
        Assert.Equal(pid.ToString(), File.ReadAllText(pidFile).Trim());
        // start returns once the init has its go-ahead; its execve follows a moment later (which
        // can be seconds on a loaded machine: the loop ends as soon as it happened).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.ReadAllText($"/proc/{pid}/cmdline").Contains("sleep") && DateTime.UtcNow < deadline) Thread.Sleep(5);
        Assert.Contains("sleep", File.ReadAllText($"/proc/{pid}/cmdline"));
        foreach (var ns in new[] { "pid", "net", "ipc", "uts", "mnt" })
            Assert.NotEqual(new FileInfo($"/proc/self/ns/{ns}").LinkTarget, new FileInfo($"/proc/{pid}/ns/{ns}").LinkTarget);
        // NSpid: the host pid, then 1 in the container's pid namespace.
        var nspid = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("NSpid:", StringComparison.Ordinal));
        Assert.Equal(["NSpid:", pid.ToString(), "1"], nspid.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries));
    }
}
