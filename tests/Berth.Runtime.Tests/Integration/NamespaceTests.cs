using Berth.Oci;

namespace Berth.Runtime.Tests.Integration;

/// <summary>User and time namespaces, joining namespaces by path.</summary>
public sealed class NamespaceTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    static void AddUserNamespace(Bundle b, uint hostId, uint size = 65536)
    {
        b.Linux.Namespaces!.Add(new LinuxNamespace { Type = NamespaceType.User });
        b.Linux.UidMappings = [new LinuxIdMapping { ContainerId = 0, HostId = hostId, Size = size }];
        b.Linux.GidMappings = [new LinuxIdMapping { ContainerId = 0, HostId = hostId, Size = size }];
    }

    [IntegrationFact]
    public void User_namespace_maps_container_root_to_the_host_id()
    {
        const uint hostId = 200000;
        var shared = _h.NewDir("userns-shared");
        // The mapped root must be able to reach the rootfs and the shared directory.
        TestEnvironment.Sh($"chmod 755 '{_h.Dir}'; chmod 777 '{shared}'");
        var output = _h.RunScript("id -u; cat /proc/self/uid_map; touch /shared/made-inside; echo ok", b =>
        {
            AddUserNamespace(b, hostId);
            b.Spec.Mounts!.Add(new Mount { Destination = "/shared", Type = "bind", Source = shared, Options = ["rbind", "rw"] });
            b.Spec.Mounts.RemoveAll(m => m.Type == "cgroup");
            TestEnvironment.Sh($"chown -R {hostId}:{hostId} '{b.Rootfs}'; chmod 755 '{b.Dir}'");
        });
        var lines = output.Split('\n');
        Assert.Equal("0", lines[0]);
        Assert.Equal(["0", hostId.ToString(), "65536"], lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var owner = TestEnvironment.Sh($"stat -c '%u:%g' '{shared}/made-inside'").Output.Trim();
        Assert.Equal($"{hostId}:{hostId}", owner);
    }

    /// <summary>
    /// An id-mapped bind with mappings of its own (containerID 1000 → hostID 0): files stored as
    /// uid/gid 1000 show as root's, the unmapped as nobody, and what root writes is stored as 1000.
    /// </summary>
    [IntegrationFact]
    public void An_idmapped_bind_shows_mapped_owners_and_stores_writes_through_the_mapping()
    {
        var data = _h.NewDir("idmapped");
        Assert.Equal(0, TestEnvironment.Sh($"cd '{data}' && touch mine other && chown 1000:1000 . mine && chown 5:5 other").Code);
        LinuxIdMapping[] map = [new LinuxIdMapping { ContainerId = 1000, HostId = 0, Size = 1 }];
        var output = _h.RunScript("stat -c '%u:%g' /data /data/mine /data/other; touch /data/made; stat -c '%u:%g' /data/made; grep ' /data ' /proc/self/mountinfo | grep -c idmapped", b =>
            b.Spec.Mounts!.Add(new Mount { Destination = "/data", Type = "bind", Source = data, Options = ["rbind"], UidMappings = [.. map], GidMappings = [.. map] }));
        Assert.Equal("0:0\n0:0\n65534:65534\n0:0\n1\n", output);
        Assert.Equal("1000:1000", TestEnvironment.Sh($"stat -c '%u:%g' '{data}/made'").Output.Trim());
    }

    /// <summary>
    /// The idmap option without mappings of its own takes the container's: a host directory owned by
    /// root is root's inside a user namespace (without idmap it shows as nobody there).
    /// </summary>
    [IntegrationFact]
    public void The_idmap_option_maps_a_bind_with_the_containers_user_namespace()
    {
        const uint hostId = 400000;
        var data = _h.NewDir("idmap-userns");
        File.WriteAllText(Path.Combine(data, "file"), "x");
        var output = _h.RunScript("stat -c '%u:%g' /mapped/file /plain/file; touch /mapped/made && echo wrote", b =>
        {
            AddUserNamespace(b, hostId);
            b.Spec.Mounts!.RemoveAll(m => m.Type == "cgroup");
            b.Spec.Mounts.Add(new Mount { Destination = "/mapped", Type = "bind", Source = data, Options = ["rbind", "idmap"] });
            b.Spec.Mounts.Add(new Mount { Destination = "/plain", Type = "bind", Source = data, Options = ["rbind"] });
            TestEnvironment.Sh($"chmod 755 '{_h.Dir}' '{b.Dir}'; chown -R {hostId}:{hostId} '{b.Rootfs}'");
        });
        Assert.Equal("0:0\n65534:65534\nwrote\n", output);
        Assert.Equal("0:0", TestEnvironment.Sh($"stat -c '%u:%g' '{data}/made'").Output.Trim());
    }

    [IntegrationFact]
    public void User_namespace_process_is_seen_from_the_host_as_the_mapped_id()
    {
        const uint hostId = 300000;
        var bundle = _h.NewBundle("sleep", "30");
        AddUserNamespace(bundle, hostId);
        bundle.Spec.Mounts!.RemoveAll(m => m.Type == "cgroup");
        TestEnvironment.Sh($"chmod 755 '{_h.Dir}' '{bundle.Dir}'; chown -R {hostId}:{hostId} '{bundle.Rootfs}'");
        var id = _h.NewId("userns-host");
        _h.CreateAndStart(id, bundle);
        var pid = _h.State(id).GetProperty("pid").GetInt32();
        var uid = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        Assert.Equal(hostId.ToString(), uid.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
        Assert.NotEqual(new FileInfo("/proc/self/ns/user").LinkTarget, new FileInfo($"/proc/{pid}/ns/user").LinkTarget);
    }

    [IntegrationFact]
    public void Time_namespace_offsets_change_uptime_inside()
    {
        var output = _h.RunScript("cut -d. -f1 /proc/uptime", b =>
        {
            b.Linux.Namespaces!.Add(new LinuxNamespace { Type = NamespaceType.Time });
            b.Linux.TimeOffsets = new() { ["boottime"] = new LinuxTimeOffset { Secs = 10 * 86400 } };
        });
        var inside = long.Parse(output.Trim());
        var host = long.Parse(File.ReadAllText("/proc/uptime").Split('.')[0]);
        Assert.InRange(inside - host, 10 * 86400 - 60, 10 * 86400 + 60);
    }

    [IntegrationFact]
    public void Joining_the_uts_and_network_namespaces_of_another_container_by_path()
    {
        var first = _h.NewBundle("sleep", "30");
        first.Spec.Hostname = "first-box";
        var firstId = _h.NewId("ns-owner");
        _h.CreateAndStart(firstId, first);
        var pid = _h.State(firstId).GetProperty("pid").GetInt32();
        // Give the first container's network namespace something recognisable.
        Assert.Equal(0, TestEnvironment.Sh($"nsenter -t {pid} -n ip link set lo up").Code);

        var second = _h.NewBundle().Script("hostname; cat /sys/class/net/lo/operstate; readlink /proc/self/ns/net; readlink /proc/self/ns/uts; echo pid=$$");
        second.Spec.Hostname = null;
        foreach (var ns in second.Linux.Namespaces!.Where(n => n.Type is NamespaceType.Uts or NamespaceType.Network))
            ns.Path = $"/proc/{pid}/ns/{(ns.Type == NamespaceType.Network ? "net" : "uts")}";
        var lines = _h.Run(second, "ns-joiner").ShouldSucceed().Stdout.Split('\n');
        Assert.Equal("first-box", lines[0]);
        Assert.Equal("unknown", lines[1]); // lo is up ("unknown" is what lo reports when up); down would say "down"
        Assert.Equal(new FileInfo($"/proc/{pid}/ns/net").LinkTarget, lines[2]);
        Assert.Equal(new FileInfo($"/proc/{pid}/ns/uts").LinkTarget, lines[3]);
        Assert.Equal("pid=1", lines[4]); // its own new pid namespace: the init was forked into it
    }

    [IntegrationFact]
    public void Joining_the_pid_namespace_of_another_container()
    {
        var firstId = _h.NewId("pid-owner");
        _h.CreateAndStart(firstId, _h.NewBundle("sleep", "30"));
        var pid = _h.State(firstId).GetProperty("pid").GetInt32();
        var second = _h.NewBundle().Script("ps -o pid,comm | grep -c sleep; echo me=$$");
        second.Linux.Namespaces!.Single(n => n.Type == NamespaceType.Pid).Path = $"/proc/{pid}/ns/pid";
        var lines = _h.Run(second, "pid-joiner").ShouldSucceed().Stdout.Split('\n');
        Assert.Equal("1", lines[0]); // sees the first container's sleep
        Assert.NotEqual("me=1", lines[1]);
    }

    [IntegrationFact]
    public void Cgroup_namespace_shows_the_container_group_as_root()
    {
        var output = _h.RunScript("cat /proc/self/cgroup | grep -E '^[0-9]+:memory:'",
            b => b.Linux.Namespaces!.Add(new LinuxNamespace { Type = NamespaceType.Cgroup }));
        Assert.EndsWith(":memory:/", output.Trim());
    }
}
