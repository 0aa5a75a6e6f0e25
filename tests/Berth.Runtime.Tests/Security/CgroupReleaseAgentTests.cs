using Berth.Oci;

namespace Berth.Runtime.Tests.Security;

/// <summary>
/// CVE-2022-0492: a container that could write a cgroup v1 release_agent ran any program as root
/// on the host (unshare -UrmC, mount a fresh cgroupfs, write release_agent, notify_on_release).
/// Inside a container cgroupfs is read-only and nothing in it is writable, with and without a
/// cgroup namespace; and the host's release_agent files are unchanged afterwards.
/// </summary>
public sealed class CgroupReleaseAgentTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    const string Attack = """
        grep ' /sys/fs/cgroup' /proc/self/mountinfo | awk '{print "mount", $5, $6}'
        for f in $(find /sys/fs/cgroup -name release_agent -o -name notify_on_release -o -name cgroup.procs -o -name tasks 2>/dev/null); do
          (echo /evil > $f) 2>/dev/null && echo "WROTE $f"
        done
        for d in /sys/fs/cgroup/*/; do mkdir $d/escape 2>/dev/null && echo "MKDIR $d/escape"; done
        mkdir -p /tmp/cg
        mount -t cgroup -o memory cgroup /tmp/cg 2>/dev/null && echo "MOUNTED cgroup"
        mount -o remount,rw /sys/fs/cgroup 2>/dev/null && echo "REMOUNTED rw"
        # The published exploit: a new user and cgroup namespace, a fresh v1 hierarchy, release_agent.
        unshare -U -r -C -m sh -c 'mkdir -p /tmp/x && mount -t cgroup -o rdma cgroup /tmp/x && echo /evil > /tmp/x/release_agent && echo WROTE-unshare' 2>/dev/null
        echo done
        """;

    static Dictionary<string, string> HostReleaseAgents() =>
        Directory.EnumerateDirectories("/sys/fs/cgroup")
            .Select(d => Path.Combine(d, "release_agent")).Where(File.Exists)
            .ToDictionary(f => f, f => File.ReadAllText(f));

    [IntegrationTheory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Cgroupfs_is_read_only_and_release_agent_unreachable(bool cgroupNamespace, bool allCapsButSysAdmin)
    {
        var before = HostReleaseAgents();
        var bundle = _h.NewBundle().Writable().Script(Attack);
        if (cgroupNamespace) bundle.Linux.Namespaces!.Add(new LinuxNamespace { Type = NamespaceType.Cgroup });
        if (allCapsButSysAdmin)
        {
            var caps = HostCapabilities.All.Where(c => c != "CAP_SYS_ADMIN").ToList();
            bundle.Process.Capabilities = new LinuxCapabilities { Bounding = [.. caps], Effective = [.. caps], Permitted = [.. caps] };
        }
        var output = _h.Run(bundle).ShouldSucceed().Stdout;
        Assert.Contains("done", output);
        foreach (var line in output.Split('\n').Where(l => l.StartsWith("mount ", StringComparison.Ordinal)))
            Assert.True(line.Split(' ')[2].Split(',').Contains("ro"), $"cgroupfs mounted writable inside the container: {line}\n{output}");
        foreach (var bad in new[] { "WROTE", "MKDIR", "MOUNTED", "REMOUNTED" })
            Assert.False(output.Contains(bad, StringComparison.Ordinal), $"the container changed cgroupfs ({bad}):\n{output}");
        Assert.Equal(before, HostReleaseAgents());
    }

    /// <summary>With a cgroup namespace, the container's /proc/self/cgroup shows "/" (its own group is its root): the host's hierarchy is not visible.</summary>
    [IntegrationFact]
    public void A_cgroup_namespace_hides_the_hosts_hierarchy()
    {
        var bundle = _h.NewBundle().Script("cat /proc/self/cgroup");
        bundle.Linux.Namespaces!.Add(new LinuxNamespace { Type = NamespaceType.Cgroup });
        var output = _h.Run(bundle).ShouldSucceed().Stdout;
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Assert.True(line.EndsWith(":/", StringComparison.Ordinal), $"the container sees a host cgroup path: {line}\n{output}");
    }
}
