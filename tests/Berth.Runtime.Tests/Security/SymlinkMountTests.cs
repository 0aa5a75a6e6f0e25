using Berth.Oci;

namespace Berth.Runtime.Tests.Security;

/// <summary>
/// CVE-2021-30465 / CVE-2018-15664 class: a path inside the rootfs (a mount destination, /dev,
/// the cwd, a parent component of any of them) that is a symlink to / , to ../../.., or to an
/// absolute host path. Resolved on the host, the mount lands on the host's tree; resolved inside
/// the root (openat2 RESOLVE_IN_ROOT), it lands in the rootfs at the link's in-root target.
/// Each test pre-creates that in-root target so a correct runtime succeeds, and checks both
/// sides: the container sees the mount where the in-root resolution says, and the host
/// directory the link names is untouched (no file, no mount, no device node).
/// </summary>
public sealed class SymlinkMountTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    (string Host, SortedDictionary<string, string> Before) HostTarget(string name)
    {
        var host = _h.NewDir(name);
        File.WriteAllText(Path.Combine(host, "host-file"), "host");
        return (host, SecurityHelpers.Snapshot(host));
    }

    void AssertHostUntouched(string host, SortedDictionary<string, string> before, RuntimeResult result)
    {
        var after = SecurityHelpers.Snapshot(host);
        Assert.True(before.SequenceEqual(after),
            $"the host directory {host} changed:\nbefore:\n{SecurityHelpers.Describe(before)}\nafter:\n{SecurityHelpers.Describe(after)}\n{result}");
        Assert.DoesNotContain(SecurityHelpers.HostMountPoints(), m => m == host || m.StartsWith(host + "/", StringComparison.Ordinal));
    }

    string Payload()
    {
        var source = _h.NewDir("payload");
        File.WriteAllText(Path.Combine(source, "PAYLOAD"), "payload");
        return source;
    }

    /// <summary>link target → the host path it would reach if followed outside the root.</summary>
    public static TheoryData<string> LinkKinds => new() { "absolute-host-path", "dotdot-to-host-path", "parent-component" };

    [IntegrationTheory]
    [MemberData(nameof(LinkKinds))]
    public void A_bind_mount_onto_a_symlinked_destination_lands_inside_the_rootfs(string kind)
    {
        var (host, before) = HostTarget("host-target");
        var payload = Payload();
        var bundle = _h.NewBundle().Writable();
        var hostInRoot = Path.Combine(bundle.Rootfs, host.TrimStart('/'));
        Directory.CreateDirectory(hostInRoot); // where the link resolves inside the root
        string destination;
        switch (kind)
        {
            case "absolute-host-path":
                File.CreateSymbolicLink(Path.Combine(bundle.Rootfs, "link"), host);
                destination = "/link";
                break;
            case "dotdot-to-host-path":
                Directory.CreateDirectory(Path.Combine(bundle.Rootfs, "a/b"));
                File.CreateSymbolicLink(Path.Combine(bundle.Rootfs, "a/b/link"), string.Concat(Enumerable.Repeat("../", 20)) + host.TrimStart('/'));
                destination = "/a/b/link";
                break;
            default: // a symlink in a parent component: /up -> the host's parent dir, destination /up/<leaf>
                File.CreateSymbolicLink(Path.Combine(bundle.Rootfs, "up"), Path.GetDirectoryName(host)!);
                destination = "/up/" + Path.GetFileName(host);
                break;
        }
        bundle.Spec.Mounts!.Add(new Mount { Destination = destination, Type = "bind", Source = payload, Options = ["rbind", "rw"] });
        bundle.Script($"cat {destination}/PAYLOAD && echo written > {destination}/from-container && echo ok");
        var result = _h.Run(bundle);
        AssertHostUntouched(host, before, result);
        if (result.Code != 0)
        {
            Assert.Contains("berth-runtime:", result.Stderr);
            return;
        }
        Assert.Equal("payloadok\n", result.Stdout);
        Assert.True(File.Exists(Path.Combine(payload, "from-container")), $"the container did not write through its mount:\n{result}");
    }

    /// <summary>A destination that is a symlink to "/" (absolute and relative): the mount covers the rootfs's root at most, never the host's.</summary>
    [IntegrationTheory]
    [InlineData("/")]
    [InlineData("../../../../../../..")]
    public void A_mount_onto_a_symlink_to_root_never_reaches_the_hosts_root(string target)
    {
        var hostMountsBefore = SecurityHelpers.HostMountPoints();
        var bundle = _h.NewBundle().Writable().Script("ls /; echo done");
        File.CreateSymbolicLink(Path.Combine(bundle.Rootfs, "evil"), target);
        bundle.Spec.Mounts!.Add(new Mount { Destination = "/evil", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid"] });
        var result = _h.Run(bundle);
        Assert.True(result.Code == 0 || result.Stderr.Contains("berth-runtime:"), result.ToString());
        // Other tests make host mounts in their own directories meanwhile (propagation tests).
        var otherTests = Path.GetDirectoryName(_h.Dir.TrimEnd('/'))! + "/";
        var added = SecurityHelpers.HostMountPoints().Except(hostMountsBefore)
            .Where(m => m.StartsWith(_h.Dir, StringComparison.Ordinal) || !m.StartsWith(otherTests, StringComparison.Ordinal)).ToList();
        Assert.True(added.Count == 0, $"new mounts on the host: {string.Join(", ", added)}\n{result}");
        Assert.True(File.Exists("/etc/passwd") && Directory.EnumerateFileSystemEntries("/").Any(), "the host's / is no longer visible");
    }

    /// <summary>/dev a symlink to a host directory: the tmpfs and device nodes go to the in-root target, none is created on the host.</summary>
    [IntegrationTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_symlinked_dev_does_not_create_nodes_on_the_host(bool absolute)
    {
        var (host, before) = HostTarget("host-dev");
        var bundle = _h.NewBundle().Script("ls /dev; echo x > /dev/null && echo null-ok");
        Directory.Delete(Path.Combine(bundle.Rootfs, "dev"));
        Directory.CreateDirectory(Path.Combine(bundle.Rootfs, host.TrimStart('/')));
        File.CreateSymbolicLink(Path.Combine(bundle.Rootfs, "dev"), absolute ? host : "../../../../../../.." + host);
        var result = _h.Run(bundle);
        AssertHostUntouched(host, before, result);
        if (result.Code == 0) Assert.Contains("null-ok", result.Stdout);
        else Assert.Contains("berth-runtime:", result.Stderr);
    }

    /// <summary>process.cwd through a symlink to a host path (and a missing component below it): nothing is created on the host.</summary>
    [IntegrationTheory]
    [InlineData("/wd")]
    [InlineData("/wd/created-by-runtime")]
    public void A_symlinked_cwd_stays_inside_the_rootfs(string cwd)
    {
        var (host, before) = HostTarget("host-cwd");
        var bundle = _h.NewBundle().Writable().Script("pwd; ls");
        File.CreateSymbolicLink(Path.Combine(bundle.Rootfs, "wd"), host);
        Directory.CreateDirectory(Path.Combine(bundle.Rootfs, host.TrimStart('/')));
        File.WriteAllText(Path.Combine(bundle.Rootfs, host.TrimStart('/'), "inside-file"), "inside");
        bundle.Process.Cwd = cwd;
        var result = _h.Run(bundle);
        AssertHostUntouched(host, before, result);
        if (result.Code != 0) { Assert.Contains("berth-runtime:", result.Stderr); return; }
        Assert.DoesNotContain("host-file", result.Stdout);
        if (cwd == "/wd") Assert.Contains("inside-file", result.Stdout);
    }
}
