using Berth.Oci;

namespace Berth.Runtime.Tests.Security;

/// <summary>
/// Capabilities: the five sets the config grants are what /proc/self/status shows inside (for
/// root, after the kernel's execve rules: permitted = effective = bounding ∪ inheritable), and
/// noNewPrivileges stops a setuid-root binary from giving a non-root user euid 0.
/// </summary>
public sealed class CapabilityTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    // Docker's default capability set (moby oci/caps/defaults.go).
    static readonly string[] DockerDefault =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    static ulong Mask(string status, string field) => Convert.ToUInt64(SecurityHelpers.StatusField(status, field), 16);
    static ulong M(IEnumerable<string>? names) => Capabilities.ToMask(names);

    string StatusOf(LinuxCapabilities caps, User user)
    {
        var bundle = _h.NewBundle().Script("cat /proc/$$/status");
        bundle.Process.Capabilities = caps;
        bundle.Process.User = user;
        return _h.Run(bundle).ShouldSucceed().Stdout;
    }

    void AssertSets(string status, ulong bnd, ulong eff, ulong prm, ulong inh, ulong amb)
    {
        var actual = $"CapBnd {Mask(status, "CapBnd"):x} CapEff {Mask(status, "CapEff"):x} CapPrm {Mask(status, "CapPrm"):x} CapInh {Mask(status, "CapInh"):x} CapAmb {Mask(status, "CapAmb"):x}";
        var expected = $"CapBnd {bnd:x} CapEff {eff:x} CapPrm {prm:x} CapInh {inh:x} CapAmb {amb:x}";
        Assert.Equal(expected, actual);
    }

    [IntegrationFact]
    public void Root_with_dockers_default_set_has_exactly_it()
    {
        var caps = new LinuxCapabilities { Bounding = [.. DockerDefault], Effective = [.. DockerDefault], Permitted = [.. DockerDefault] };
        var status = StatusOf(caps, new User { Uid = 0, Gid = 0 });
        AssertSets(status, M(DockerDefault), M(DockerDefault), M(DockerDefault), 0, 0);
    }

    [IntegrationFact]
    public void Root_with_distinct_sets_follows_the_execve_rules_and_nothing_more()
    {
        var caps = new LinuxCapabilities
        {
            Bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"],
            Effective = ["CAP_CHOWN"],
            Permitted = ["CAP_CHOWN", "CAP_KILL"],
            Inheritable = ["CAP_KILL"],
            Ambient = ["CAP_KILL"],
        };
        var status = StatusOf(caps, new User { Uid = 0, Gid = 0 });
        // Bounding, inheritable and ambient are exactly the config's; what root holds after execve
        // (permitted = effective) is never more than bounding ∪ inheritable, and holds what was permitted.
        Assert.Equal(M(caps.Bounding), Mask(status, "CapBnd"));
        Assert.Equal(M(caps.Inheritable), Mask(status, "CapInh"));
        Assert.Equal(M(caps.Ambient), Mask(status, "CapAmb"));
        var permitted = Mask(status, "CapPrm");
        Assert.Equal(permitted, Mask(status, "CapEff"));
        Assert.True((permitted & ~(M(caps.Bounding) | M(caps.Inheritable))) == 0, $"CapPrm {permitted:x} outside bounding ∪ inheritable");
        Assert.True((M(caps.Permitted) & ~permitted) == 0, $"CapPrm {permitted:x} lacks the configured permitted set");
    }

    [IntegrationFact]
    public void A_non_root_user_keeps_only_the_ambient_set()
    {
        var caps = new LinuxCapabilities
        {
            Bounding = [.. DockerDefault], Effective = [.. DockerDefault], Permitted = [.. DockerDefault],
            Inheritable = ["CAP_NET_BIND_SERVICE", "CAP_KILL"], Ambient = ["CAP_NET_BIND_SERVICE"],
        };
        var status = StatusOf(caps, new User { Uid = 1000, Gid = 1000 });
        AssertSets(status, M(DockerDefault), M(caps.Ambient), M(caps.Ambient), M(caps.Inheritable), M(caps.Ambient));
        Assert.StartsWith("1000", SecurityHelpers.StatusField(status, "Uid"));
    }

    [IntegrationFact]
    public void A_non_root_user_without_ambient_has_no_capability()
    {
        var caps = new LinuxCapabilities { Bounding = [.. HostCapabilities.All], Effective = [.. HostCapabilities.All], Permitted = [.. HostCapabilities.All] };
        var status = StatusOf(caps, new User { Uid = 1000, Gid = 1000 });
        AssertSets(status, M(HostCapabilities.All), 0, 0, 0, 0);
    }

    /// <summary>An ambient capability the config does not also permit and make inheritable is not granted (the kernel refuses it; runc goes on without it).</summary>
    [IntegrationFact]
    public void An_ambient_capability_outside_permitted_and_inheritable_is_not_granted()
    {
        var caps = new LinuxCapabilities
        {
            Bounding = [.. DockerDefault], Effective = ["CAP_KILL"], Permitted = ["CAP_KILL"], Inheritable = ["CAP_KILL"],
            Ambient = ["CAP_KILL", "CAP_NET_RAW"],
        };
        var status = StatusOf(caps, new User { Uid = 1000, Gid = 1000 });
        Assert.Equal(M(["CAP_KILL"]), Mask(status, "CapAmb"));
        Assert.Equal(M(["CAP_KILL"]), Mask(status, "CapEff"));
    }

    const string EuidSource = """
        #include <stdio.h>
        #include <unistd.h>
        int main(void) { printf("euid=%d\n", (int)geteuid()); return 0; }
        """;

    /// <summary>A setuid-root static binary in the rootfs: with noNewPrivileges a uid-1000 process stays euid 1000; without it (the control) it becomes 0.</summary>
    [IntegrationTheory]
    [InlineData(true, "euid=1000")]
    [InlineData(false, "euid=0")]
    public void No_new_privileges_stops_a_setuid_gain(bool noNewPrivileges, string expected)
    {
        var bundle = _h.NewBundle();
        var helper = SecurityHelpers.BuildStatic(EuidSource, Path.Combine(bundle.Rootfs, "bin/euid"));
        Assert.True(helper is not null, "gcc -static failed (install gcc and libc6-dev)");
        TestEnvironment.Sh($"chown 0:0 '{helper}' && chmod 4755 '{helper}'");
        // busybox too: a setuid copy; Debian's busybox drops the setuid for `id` by itself, so it only adds to the check.
        bundle.Script("/bin/euid; grep NoNewPrivs /proc/self/status");
        bundle.Process.User = new User { Uid = 1000, Gid = 1000 };
        bundle.Process.NoNewPrivileges = noNewPrivileges;
        var output = _h.Run(bundle).ShouldSucceed().Stdout;
        Assert.Contains(expected, output);
        Assert.Contains($"NoNewPrivs:\t{(noNewPrivileges ? 1 : 0)}", output);
    }
}
