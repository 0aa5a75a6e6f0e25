namespace Berth.Oci;

/// <summary>The starting configs <c>spec</c> writes: runc's, field for field.</summary>
public static class SpecTemplate
{
    private static readonly string[] s_defaultCapabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

    /// <summary>What <c>runc spec</c> prints, stamped with <paramref name="ociVersion"/> (Berth's by default).</summary>
    public static Spec Default(string ociVersion = Spec.SupportedVersion) => new()
    {
        OciVersion = ociVersion,
        Process = new Process
        {
            Terminal = true,
            User = new User { Uid = 0, Gid = 0 },
            Args = ["sh"],
            Env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            Cwd = "/",
            Capabilities = new LinuxCapabilities
            {
                Bounding = [.. s_defaultCapabilities],
                Effective = [.. s_defaultCapabilities],
                Permitted = [.. s_defaultCapabilities],
                Ambient = [.. s_defaultCapabilities],
            },
            Rlimits = [new PosixRlimit { Type = "RLIMIT_NOFILE", Hard = 1024, Soft = 1024 }],
            NoNewPrivileges = true,
        },
        Root = new Root { Path = "rootfs", Readonly = true },
        Hostname = "runc",
        Mounts =
        [
            new Mount { Destination = "/proc", Type = "proc", Source = "proc" },
            new Mount { Destination = "/dev", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            new Mount { Destination = "/dev/pts", Type = "devpts", Source = "devpts", Options = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            new Mount { Destination = "/dev/shm", Type = "tmpfs", Source = "shm", Options = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            new Mount { Destination = "/dev/mqueue", Type = "mqueue", Source = "mqueue", Options = ["nosuid", "noexec", "nodev"] },
            new Mount { Destination = "/sys", Type = "sysfs", Source = "sysfs", Options = ["nosuid", "noexec", "nodev", "ro"] },
            new Mount { Destination = "/sys/fs/cgroup", Type = "cgroup", Source = "cgroup", Options = ["nosuid", "noexec", "nodev", "relatime", "ro"] },
        ],
        Linux = new Linux
        {
            Resources = new LinuxResources { Devices = [new LinuxDeviceCgroup { Allow = false, Access = "rwm" }] },
            Namespaces =
            [
                new LinuxNamespace { Type = NamespaceType.Pid },
                new LinuxNamespace { Type = NamespaceType.Network },
                new LinuxNamespace { Type = NamespaceType.Ipc },
                new LinuxNamespace { Type = NamespaceType.Uts },
                new LinuxNamespace { Type = NamespaceType.Mount },
            ],
            MaskedPaths =
            [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    };

    /// <summary>
    /// Adapts a spec for an unprivileged user, as <c>runc spec --rootless</c> does: a new user namespace
    /// mapping container root to <paramref name="hostUid"/>/<paramref name="hostGid"/>, no network
    /// namespace, /sys bind-mounted, no uid=/gid= mount options, no cgroup resources. Changes
    /// <paramref name="spec"/> in place and returns it.
    /// </summary>
    public static Spec MakeRootless(Spec spec, uint hostUid, uint hostGid)
    {
        var linux = spec.Linux ??= new Linux();
        linux.Namespaces =
        [
            .. (linux.Namespaces ?? []).Where(n => n.Type is not (NamespaceType.Network or NamespaceType.User)),
            new LinuxNamespace { Type = NamespaceType.User },
        ];
        linux.UidMappings = [new LinuxIdMapping { ContainerId = 0, HostId = hostUid, Size = 1 }];
        linux.GidMappings = [new LinuxIdMapping { ContainerId = 0, HostId = hostGid, Size = 1 }];

        if (spec.Mounts is { } mounts)
        {
            spec.Mounts = [.. mounts.Select(RootlessMount)];
        }
        linux.Resources = null;
        return spec;
    }

    private static Mount RootlessMount(Mount mount)
    {
        // sysfs cannot be mounted from a user namespace that does not own the network namespace.
        if (CleanPath(mount.Destination) == "/sys")
            return new Mount { Destination = "/sys", Type = "none", Source = "/sys", Options = ["rbind", "nosuid", "noexec", "nodev", "ro"] };

        // A single-id mapping cannot honour uid=/gid= options such as devpts's gid=5.
        var kept = (mount.Options ?? []).Where(o => !o.StartsWith("uid=", StringComparison.Ordinal) && !o.StartsWith("gid=", StringComparison.Ordinal)).ToList();
        mount.Options = kept.Count > 0 ? kept : null;
        return mount;
    }

    private static string CleanPath(string path) =>
        "/" + string.Join('/', path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != "."));
}
