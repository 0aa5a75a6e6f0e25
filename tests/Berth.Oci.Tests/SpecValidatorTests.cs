namespace Berth.Oci.Tests;

public sealed class SpecValidatorTests : IDisposable
{
    private readonly TempBundle _bundle = new();

    public void Dispose() => _bundle.Dispose();

    // Each case breaks one rule of a valid spec; the expected field and a fragment of the message follow.
    private static readonly Dictionary<string, Action<Spec>> s_breaks = new()
    {
        ["no-version"] = s => s.OciVersion = "",
        ["version-2"] = s => s.OciVersion = "2.0.0",
        ["no-root"] = s => s.Root = null,
        ["no-root-path"] = s => s.Root!.Path = "",
        ["rootfs-missing"] = s => s.Root!.Path = "nope",
        ["rootfs-file"] = s => s.Root!.Path = "/proc/self/status",
        ["no-process"] = s => s.Process = null,
        ["no-args"] = s => s.Process!.Args = [],
        ["empty-arg0"] = s => s.Process!.Args = [""],
        ["no-cwd"] = s => s.Process!.Cwd = "",
        ["relative-cwd"] = s => s.Process!.Cwd = "work",
        ["env-no-equals"] = s => s.Process!.Env!.Add("FOO"),
        ["env-empty-name"] = s => s.Process!.Env!.Add("=x"),
        ["rlimit-unknown"] = s => s.Process!.Rlimits![0].Type = "RLIMIT_FOO",
        ["rlimit-duplicate"] = s => s.Process!.Rlimits!.Add(new PosixRlimit { Type = "RLIMIT_NOFILE", Hard = 1, Soft = 1 }),
        ["rlimit-soft-over-hard"] = s => s.Process!.Rlimits![0].Soft = 2048,
        ["capability-unknown"] = s => s.Process!.Capabilities!.Ambient!.Add("CAP_FOO"),
        ["capability-lowercase"] = s => s.Process!.Capabilities!.Bounding![0] = "cap_kill",
        ["oom-low"] = s => s.Process!.OomScoreAdj = -1001,
        ["oom-high"] = s => s.Process!.OomScoreAdj = 1001,
        ["ioprio-class"] = s => s.Process!.IoPriority = new IoPriority { Class = "IOPRIO_CLASS_FAST" },
        ["ioprio-level"] = s => s.Process!.IoPriority = new IoPriority { Class = "IOPRIO_CLASS_BE", Priority = 8 },
        ["scheduler-policy"] = s => s.Process!.Scheduler = new Scheduler { Policy = "SCHED_FAST" },
        ["hook-relative"] = s => s.Hooks = new Hooks { Poststart = [new Hook { Path = "hook.sh" }] },
        ["hook-timeout"] = s => s.Hooks = new Hooks { CreateRuntime = [new Hook { Path = "/bin/true", Timeout = 0 }] },
        ["ns-unknown"] = s => s.Linux!.Namespaces!.Add(new LinuxNamespace { Type = "foo" }),
        ["ns-duplicate"] = s => s.Linux!.Namespaces!.Add(new LinuxNamespace { Type = "pid" }),
        ["ns-relative-path"] = s => s.Linux!.Namespaces![1].Path = "proc/1/ns/net",
        ["ns-missing-path"] = s => s.Linux!.Namespaces![1].Path = "/proc/self/ns/nope",
        ["uidmap-without-userns"] = s => s.Linux!.UidMappings = [new LinuxIdMapping { Size = 1 }],
        ["gidmap-without-userns"] = s => s.Linux!.GidMappings = [new LinuxIdMapping { Size = 1 }],
        ["userns-without-uidmap"] = s => AddUserNs(s, uid: false, gid: true),
        ["userns-without-gidmap"] = s => AddUserNs(s, uid: true, gid: false),
        ["mapping-size-zero"] = s => { AddUserNs(s, uid: true, gid: true); s.Linux!.UidMappings![0].Size = 0; },
        ["hostname-without-uts"] = s => RemoveNs(s, NamespaceType.Uts),
        ["domainname-without-uts"] = s => { RemoveNs(s, NamespaceType.Uts); s.Hostname = null; s.Domainname = "example.org"; },
        ["timeoffsets-without-timens"] = s => s.Linux!.TimeOffsets = new() { ["monotonic"] = new LinuxTimeOffset { Secs = 1 } },
        ["timeoffsets-joined-timens"] = s => { AddNs(s, NamespaceType.Time, "/proc/self/ns/time"); s.Linux!.TimeOffsets = new() { ["boottime"] = new LinuxTimeOffset() }; },
        ["timeoffsets-unknown-clock"] = s => { AddNs(s, NamespaceType.Time); s.Linux!.TimeOffsets = new() { ["realtime"] = new LinuxTimeOffset() }; },
        ["sysctl-ipc-without-ipcns"] = s => { RemoveNs(s, NamespaceType.Ipc); s.Linux!.Sysctl = new() { ["kernel.shmmax"] = "1" }; },
        ["sysctl-mqueue-without-ipcns"] = s => { RemoveNs(s, NamespaceType.Ipc); s.Linux!.Sysctl = new() { ["fs.mqueue.msg_max"] = "1" }; },
        ["sysctl-net-without-netns"] = s => { RemoveNs(s, NamespaceType.Network); s.Linux!.Sysctl = new() { ["net.ipv4.ip_forward"] = "1" }; },
        ["sysctl-net-host-netns-path"] = s => { s.Linux!.Namespaces![1].Path = "/proc/self/ns/net"; s.Linux.Sysctl = new() { ["net.ipv4.ip_forward"] = "1" }; },
        ["sysctl-hostname"] = s => s.Linux!.Sysctl = new() { ["kernel.hostname"] = "x" },
        ["sysctl-domainname-without-uts"] = s => { RemoveNs(s, NamespaceType.Uts); s.Hostname = null; s.Linux!.Sysctl = new() { ["kernel.domainname"] = "x" }; },
        ["sysctl-not-namespaced"] = s => s.Linux!.Sysctl = new() { ["vm.swappiness"] = "1" },
        ["mount-no-destination"] = s => s.Mounts!.Add(new Mount { Type = "tmpfs", Source = "tmpfs" }),
        ["mount-escapes"] = s => s.Mounts!.Add(new Mount { Destination = "/../etc", Type = "tmpfs", Source = "tmpfs" }),
        ["mount-in-proc"] = s => s.Mounts!.Add(new Mount { Destination = "/proc/sys/kernel", Type = "tmpfs", Source = "tmpfs" }),
        ["bind-type-no-source"] = s => s.Mounts!.Add(new Mount { Destination = "/data", Type = "bind" }),
        ["bind-option-no-source"] = s => s.Mounts!.Add(new Mount { Destination = "/data", Type = "none", Options = ["rbind"] }),
        ["idmap-not-bind"] = s => s.Mounts!.Add(new Mount { Destination = "/t", Type = "tmpfs", Source = "tmpfs", UidMappings = [new() { Size = 1 }], GidMappings = [new() { Size = 1 }] }),
        ["idmap-half"] = s => s.Mounts!.Add(new Mount { Destination = "/d", Type = "bind", Source = "/srv", UidMappings = [new() { Size = 1 }] }),
        ["propagation-unknown"] = s => s.Linux!.RootfsPropagation = "rprivat",
        ["masked-relative"] = s => s.Linux!.MaskedPaths!.Add("proc/kcore"),
        ["readonly-relative"] = s => s.Linux!.ReadonlyPaths!.Add("sys"),
        ["masked-without-mountns"] = s => RemoveNs(s, NamespaceType.Mount),
        ["device-type"] = s => s.Linux!.Devices = [new LinuxDevice { Path = "/dev/x", Type = "z" }],
        ["device-no-major"] = s => s.Linux!.Devices = [new LinuxDevice { Path = "/dev/x", Type = "c", Minor = 1 }],
        ["device-no-minor"] = s => s.Linux!.Devices = [new LinuxDevice { Path = "/dev/x", Type = "b", Major = 1 }],
        ["device-relative"] = s => s.Linux!.Devices = [new LinuxDevice { Path = "dev/x", Type = "p" }],
        ["cgroup-device-type"] = s => s.Linux!.Resources!.Devices![0].Type = "x",
        ["cgroup-device-access"] = s => s.Linux!.Resources!.Devices![0].Access = "rwx",
        ["memory-swap-below-limit"] = s => s.Linux!.Resources!.Memory = new LinuxMemory { Limit = 200, Swap = 100 },
        ["blkio-weight"] = s => s.Linux!.Resources!.BlockIo = new LinuxBlockIo { Weight = 5 },
        ["seccomp-default-action"] = s => s.Linux!.Seccomp = new LinuxSeccomp { DefaultAction = "SCMP_ACT_MAYBE" },
        ["seccomp-default-notify"] = s => s.Linux!.Seccomp = new LinuxSeccomp { DefaultAction = "SCMP_ACT_NOTIFY", ListenerPath = "/run/l" },
        ["seccomp-arch"] = s => s.Linux!.Seccomp = new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW", Architectures = ["SCMP_ARCH_Z80"] },
        ["seccomp-flag"] = s => s.Linux!.Seccomp = new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW", Flags = ["SECCOMP_FILTER_FLAG_FAST"] },
        ["seccomp-syscall-action"] = s => s.Linux!.Seccomp = Seccomp(new LinuxSyscall { Names = ["read"], Action = "SCMP_ACT_DENY" }),
        ["seccomp-syscall-names"] = s => s.Linux!.Seccomp = Seccomp(new LinuxSyscall { Names = [], Action = "SCMP_ACT_ALLOW" }),
        ["seccomp-op"] = s => s.Linux!.Seccomp = Seccomp(new LinuxSyscall { Names = ["read"], Action = "SCMP_ACT_ALLOW", Args = [new() { Op = "SCMP_CMP_XOR" }] }),
        ["seccomp-arg-index"] = s => s.Linux!.Seccomp = Seccomp(new LinuxSyscall { Names = ["read"], Action = "SCMP_ACT_ALLOW", Args = [new() { Index = 6, Op = "SCMP_CMP_EQ" }] }),
        ["seccomp-errno-on-allow"] = s => s.Linux!.Seccomp = Seccomp(new LinuxSyscall { Names = ["read"], Action = "SCMP_ACT_ALLOW", ErrnoRet = 1 }),
        ["seccomp-notify-no-listener"] = s => s.Linux!.Seccomp = Seccomp(new LinuxSyscall { Names = ["bpf"], Action = "SCMP_ACT_NOTIFY" }),
        ["personality"] = s => s.Linux!.Personality = new LinuxPersonality { Domain = "BSD" },
        ["intelrdt-closid"] = s => s.Linux!.IntelRdt = new LinuxIntelRdt { ClosId = "../x" },
    };

    [Theory]
    [InlineData("no-version", "ociVersion", "must be set")]
    [InlineData("version-2", "ociVersion", "want 1.x")]
    [InlineData("no-root", "root", "must be set")]
    [InlineData("no-root-path", "root.path", "must be set")]
    [InlineData("rootfs-missing", "root.path", "does not exist")]
    [InlineData("rootfs-file", "root.path", "is not a directory")]
    [InlineData("no-process", "process", "must be set")]
    [InlineData("no-args", "process.args", "must not be empty")]
    [InlineData("empty-arg0", "process.args[0]", "must not be empty")]
    [InlineData("no-cwd", "process.cwd", "must be set")]
    [InlineData("relative-cwd", "process.cwd", "absolute")]
    [InlineData("env-no-equals", "process.env[2]", "NAME=value")]
    [InlineData("env-empty-name", "process.env[2]", "empty name")]
    [InlineData("rlimit-unknown", "process.rlimits[0].type", "unknown rlimit type \"RLIMIT_FOO\"")]
    [InlineData("rlimit-duplicate", "process.rlimits[1].type", "duplicate")]
    [InlineData("rlimit-soft-over-hard", "process.rlimits[0]", "soft limit 2048 is greater than hard limit 1024")]
    [InlineData("capability-unknown", "process.capabilities.ambient[3]", "unknown capability \"CAP_FOO\"")]
    [InlineData("capability-lowercase", "process.capabilities.bounding[0]", "unknown capability")]
    [InlineData("oom-low", "process.oomScoreAdj", "out of range")]
    [InlineData("oom-high", "process.oomScoreAdj", "out of range")]
    [InlineData("ioprio-class", "process.ioPriority.class", "unknown class")]
    [InlineData("ioprio-level", "process.ioPriority.priority", "out of range")]
    [InlineData("scheduler-policy", "process.scheduler.policy", "unknown policy")]
    [InlineData("hook-relative", "hooks.poststart[0].path", "absolute")]
    [InlineData("hook-timeout", "hooks.createRuntime[0].timeout", "greater than zero")]
    [InlineData("ns-unknown", "linux.namespaces[5].type", "unknown namespace type \"foo\"")]
    [InlineData("ns-duplicate", "linux.namespaces[5].type", "duplicate namespace \"pid\"")]
    [InlineData("ns-relative-path", "linux.namespaces[1].path", "absolute")]
    [InlineData("ns-missing-path", "linux.namespaces[1].path", "does not exist")]
    [InlineData("uidmap-without-userns", "linux.uidMappings", "need a user namespace")]
    [InlineData("gidmap-without-userns", "linux.gidMappings", "need a user namespace")]
    [InlineData("userns-without-uidmap", "linux.uidMappings", "needs uid mappings")]
    [InlineData("userns-without-gidmap", "linux.gidMappings", "needs gid mappings")]
    [InlineData("mapping-size-zero", "linux.uidMappings[0].size", "greater than zero")]
    [InlineData("hostname-without-uts", "hostname", "uts namespace")]
    [InlineData("domainname-without-uts", "domainname", "uts namespace")]
    [InlineData("timeoffsets-without-timens", "linux.timeOffsets", "need a time namespace")]
    [InlineData("timeoffsets-joined-timens", "linux.timeOffsets", "joined time namespace")]
    [InlineData("timeoffsets-unknown-clock", "linux.timeOffsets.realtime", "unknown clock")]
    [InlineData("sysctl-ipc-without-ipcns", "linux.sysctl['kernel.shmmax']", "ipc namespace")]
    [InlineData("sysctl-mqueue-without-ipcns", "linux.sysctl['fs.mqueue.msg_max']", "ipc namespace")]
    [InlineData("sysctl-net-without-netns", "linux.sysctl['net.ipv4.ip_forward']", "host's network namespace")]
    [InlineData("sysctl-net-host-netns-path", "linux.sysctl['net.ipv4.ip_forward']", "host's network namespace")]
    [InlineData("sysctl-hostname", "linux.sysctl['kernel.hostname']", "conflicts with the \"hostname\" field")]
    [InlineData("sysctl-domainname-without-uts", "linux.sysctl['kernel.domainname']", "not in a separate kernel namespace")]
    [InlineData("sysctl-not-namespaced", "linux.sysctl['vm.swappiness']", "not in a separate kernel namespace")]
    [InlineData("mount-no-destination", "mounts[7].destination", "must be set")]
    [InlineData("mount-escapes", "mounts[7].destination", "escapes")]
    [InlineData("mount-in-proc", "mounts[7].destination", "inside /proc")]
    [InlineData("bind-type-no-source", "mounts[7].source", "needs a source")]
    [InlineData("bind-option-no-source", "mounts[7].source", "needs a source")]
    [InlineData("idmap-not-bind", "mounts[7]", "only supported on bind mounts")]
    [InlineData("idmap-half", "mounts[7]", "both uidMappings and gidMappings")]
    [InlineData("propagation-unknown", "linux.rootfsPropagation", "unknown propagation \"rprivat\"")]
    [InlineData("masked-relative", "linux.maskedPaths[10]", "absolute")]
    [InlineData("readonly-relative", "linux.readonlyPaths[5]", "absolute")]
    [InlineData("masked-without-mountns", "linux.maskedPaths", "mount namespace")]
    [InlineData("device-type", "linux.devices[0].type", "unknown device type")]
    [InlineData("device-no-major", "linux.devices[0].major", "must be set")]
    [InlineData("device-no-minor", "linux.devices[0].minor", "must be set")]
    [InlineData("device-relative", "linux.devices[0].path", "absolute")]
    [InlineData("cgroup-device-type", "linux.resources.devices[0].type", "unknown device type")]
    [InlineData("cgroup-device-access", "linux.resources.devices[0].access", "r, w and m")]
    [InlineData("memory-swap-below-limit", "linux.resources.memory.swap", "less than the memory limit")]
    [InlineData("blkio-weight", "linux.resources.blockIO.weight", "out of range")]
    [InlineData("seccomp-default-action", "linux.seccomp.defaultAction", "unknown action")]
    [InlineData("seccomp-default-notify", "linux.seccomp.defaultAction", "cannot be the default action")]
    [InlineData("seccomp-arch", "linux.seccomp.architectures[0]", "unknown architecture")]
    [InlineData("seccomp-flag", "linux.seccomp.flags[0]", "unknown flag")]
    [InlineData("seccomp-syscall-action", "linux.seccomp.syscalls[0].action", "unknown action")]
    [InlineData("seccomp-syscall-names", "linux.seccomp.syscalls[0].names", "at least one")]
    [InlineData("seccomp-op", "linux.seccomp.syscalls[0].args[0].op", "unknown operator \"SCMP_CMP_XOR\"")]
    [InlineData("seccomp-arg-index", "linux.seccomp.syscalls[0].args[0].index", "out of range")]
    [InlineData("seccomp-errno-on-allow", "linux.seccomp.syscalls[0].errnoRet", "only applies")]
    [InlineData("seccomp-notify-no-listener", "linux.seccomp.listenerPath", "must be set")]
    [InlineData("personality", "linux.personality.domain", "unknown domain")]
    [InlineData("intelrdt-closid", "linux.intelRdt.closID", "not a valid directory name")]
    public void BrokenRule_IsRefused_NamingTheField(string rule, string field, string problem)
    {
        var spec = Fixtures.ValidSpec();
        s_breaks[rule](spec);

        var e = Assert.Throws<SpecException>(() => SpecValidator.Validate(spec, _bundle.Dir));

        Assert.Equal(field, e.Field);
        Assert.Contains(problem, e.Problem);
        Assert.StartsWith($"config.json: {field}: ", e.Message);
    }

    [Fact]
    public void EveryBreakingCase_IsExercised() =>
        Assert.Equal(s_breaks.Count, typeof(SpecValidatorTests).GetMethod(nameof(BrokenRule_IsRefused_NamingTheField))!
            .GetCustomAttributes(typeof(InlineDataAttribute), false).Length);

    // Each case is a valid neighbour of a broken one above.
    private static readonly Dictionary<string, Action<Spec>> s_fine = new()
    {
        ["version-1.0.2-dev"] = s => s.OciVersion = "1.0.2-dev",
        ["version-1.3"] = s => s.OciVersion = "1.3.0",
        ["absolute-cwd"] = s => s.Process!.Cwd = "/work",
        ["env-empty-value"] = s => s.Process!.Env!.Add("EMPTY="),
        ["rlimits-all-known"] = s => s.Process!.Rlimits = [.. Rlimits.Names.Select(n => new PosixRlimit { Type = n, Soft = 1, Hard = 1 })],
        ["rlimit-unlimited"] = s => s.Process!.Rlimits![0] = new PosixRlimit { Type = "RLIMIT_CORE", Soft = Rlimits.Infinity, Hard = Rlimits.Infinity },
        ["capabilities-all-known"] = s => s.Process!.Capabilities!.Bounding = [.. Capabilities.Names],
        ["oom-bounds"] = s => s.Process!.OomScoreAdj = -1000,
        ["ioprio"] = s => s.Process!.IoPriority = new IoPriority { Class = "IOPRIO_CLASS_IDLE", Priority = 7 },
        ["scheduler"] = s => s.Process!.Scheduler = new Scheduler { Policy = "SCHED_BATCH", Nice = 19 },
        ["hooks-absolute"] = s => s.Hooks = new Hooks { Poststop = [new Hook { Path = "/bin/true", Timeout = 1 }] },
        ["all-namespaces"] = s => { foreach (var t in NamespaceType.All) AddNs(s, t); AddUserNs(s, true, true); },
        ["joined-netns"] = s => s.Linux!.Namespaces![1].Path = "/proc/self/ns/net",
        ["joined-userns-without-mappings"] = s => AddNs(s, NamespaceType.User, "/proc/self/ns/user"),
        ["hostname-joined-uts"] = s => s.Linux!.Namespaces![3].Path = "/proc/self/ns/uts",
        ["domainname"] = s => s.Domainname = "example.org",
        ["timeoffsets"] = s => { AddNs(s, NamespaceType.Time); s.Linux!.TimeOffsets = new() { ["monotonic"] = new() { Secs = -5 }, ["boottime"] = new() { Nanosecs = 999_999_999 } }; },
        ["sysctls-namespaced"] = s => s.Linux!.Sysctl = new() { ["kernel.shmmax"] = "1", ["fs.mqueue.msg_max"] = "1", ["net.ipv4.ip_forward"] = "1", ["kernel.domainname"] = "x" },
        ["relative-mount-destination"] = s => s.Mounts!.Add(new Mount { Destination = "tmp", Type = "tmpfs", Source = "tmpfs" }),
        ["dotdot-inside-root"] = s => s.Mounts!.Add(new Mount { Destination = "/a/../b", Type = "tmpfs", Source = "tmpfs" }),
        ["lxcfs-proc-mount"] = s => s.Mounts!.Add(new Mount { Destination = "/proc/meminfo", Type = "bind", Source = "/var/lib/lxcfs/proc/meminfo" }),
        ["bind-with-source"] = s => s.Mounts!.Add(new Mount { Destination = "/data", Type = "none", Source = "/srv", Options = ["rbind", "ro"] }),
        ["idmapped-bind"] = s => s.Mounts!.Add(new Mount { Destination = "/d", Type = "bind", Source = "/srv", UidMappings = [new() { Size = 1 }], GidMappings = [new() { Size = 1 }] }),
        ["every-propagation"] = s => s.Linux!.RootfsPropagation = "runbindable",
        ["no-masked-paths-without-mountns"] = s => { RemoveNs(s, NamespaceType.Mount); s.Linux!.MaskedPaths = null; s.Linux.ReadonlyPaths = null; },
        ["devices"] = s => s.Linux!.Devices = [new LinuxDevice { Path = "/dev/fuse", Type = "c", Major = 10, Minor = 229 }, new LinuxDevice { Path = "/dev/fifo", Type = "p" }],
        ["cgroup-devices"] = s => s.Linux!.Resources!.Devices!.Add(new LinuxDeviceCgroup { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rwm" }),
        ["memory-unlimited-swap"] = s => s.Linux!.Resources!.Memory = new LinuxMemory { Limit = 200, Swap = -1 },
        ["memory-swap-equal"] = s => s.Linux!.Resources!.Memory = new LinuxMemory { Limit = 200, Swap = 200 },
        ["seccomp"] = s => s.Linux!.Seccomp = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            DefaultErrnoRet = 38,
            Architectures = ["SCMP_ARCH_X86_64"],
            Flags = ["SECCOMP_FILTER_FLAG_TSYNC"],
            ListenerPath = "/run/listener.sock",
            Syscalls =
            [
                new() { Names = ["read"], Action = "SCMP_ACT_ALLOW", Args = [new() { Index = 5, Op = "SCMP_CMP_MASKED_EQ" }] },
                new() { Names = ["bpf"], Action = "SCMP_ACT_NOTIFY" },
                new() { Names = ["ptrace"], Action = "SCMP_ACT_TRACE", ErrnoRet = 1 },
            ],
        },
        ["personality"] = s => s.Linux!.Personality = new LinuxPersonality { Domain = "LINUX32" },
    };

    [Fact]
    public void EveryValidCase_IsExercised() =>
        Assert.Equal(s_fine.Count, typeof(SpecValidatorTests).GetMethod(nameof(ValidNeighbour_IsAccepted))!
            .GetCustomAttributes(typeof(InlineDataAttribute), false).Length);

    [Theory]
    [InlineData("version-1.0.2-dev")]
    [InlineData("version-1.3")]
    [InlineData("absolute-cwd")]
    [InlineData("env-empty-value")]
    [InlineData("rlimits-all-known")]
    [InlineData("rlimit-unlimited")]
    [InlineData("capabilities-all-known")]
    [InlineData("oom-bounds")]
    [InlineData("ioprio")]
    [InlineData("scheduler")]
    [InlineData("hooks-absolute")]
    [InlineData("all-namespaces")]
    [InlineData("joined-netns")]
    [InlineData("joined-userns-without-mappings")]
    [InlineData("hostname-joined-uts")]
    [InlineData("domainname")]
    [InlineData("timeoffsets")]
    [InlineData("sysctls-namespaced")]
    [InlineData("relative-mount-destination")]
    [InlineData("dotdot-inside-root")]
    [InlineData("lxcfs-proc-mount")]
    [InlineData("bind-with-source")]
    [InlineData("idmapped-bind")]
    [InlineData("every-propagation")]
    [InlineData("no-masked-paths-without-mountns")]
    [InlineData("devices")]
    [InlineData("cgroup-devices")]
    [InlineData("memory-unlimited-swap")]
    [InlineData("memory-swap-equal")]
    [InlineData("seccomp")]
    [InlineData("personality")]
    public void ValidNeighbour_IsAccepted(string rule)
    {
        var spec = Fixtures.ValidSpec();
        s_fine[rule](spec);

        var result = SpecValidator.Check(spec, _bundle.Dir);

        Assert.True(result.IsValid, string.Join("\n", result.Errors.Select(e => e.Message)));
    }

    [Fact]
    public void AbsoluteRootfs_IsUsedAsIs()
    {
        var spec = Fixtures.ValidSpec();
        spec.Root!.Path = Path.Combine(_bundle.Dir, "rootfs");

        Assert.Empty(SpecValidator.Validate(spec, "/nonexistent-bundle"));
        Assert.Equal(Path.Combine(_bundle.Dir, "rootfs"), spec.ResolveRootfs("/nonexistent-bundle"));
    }

    [Fact]
    public void ResolveRootfs_IsRelativeToTheBundle()
    {
        var spec = Fixtures.ValidSpec();
        spec.Root!.Path = "./layers/../rootfs";

        Assert.Equal(Path.Combine(_bundle.Dir, "rootfs"), spec.ResolveRootfs(_bundle.Dir));
    }

    [Fact]
    public void RelativeMountDestination_IsAWarning()
    {
        var spec = Fixtures.ValidSpec();
        spec.Mounts!.Add(new Mount { Destination = "tmp", Type = "tmpfs", Source = "tmpfs" });

        var warning = Assert.Single(SpecValidator.Validate(spec, _bundle.Dir));
        Assert.StartsWith("config.json: mounts[7].destination: \"tmp\" is not absolute", warning);
    }

    [Fact]
    public void Check_ReportsEveryError()
    {
        var spec = Fixtures.ValidSpec();
        spec.OciVersion = "";
        spec.Process!.Cwd = "relative";
        spec.Linux!.Namespaces!.Add(new LinuxNamespace { Type = "foo" });

        var result = SpecValidator.Check(spec, _bundle.Dir);

        Assert.Equal(["ociVersion", "process.cwd", "linux.namespaces[5].type"], result.Errors.Select(e => e.Field));
    }

    [Fact]
    public void FullConfig_OnlyFailsOnHostSpecificParts()
    {
        var spec = SpecLoader.Parse(Fixtures.FullConfig);

        var result = SpecValidator.Check(spec, _bundle.Dir);

        // The fixture's idmapped bind of /srv/data is fine; everything else in it is valid too.
        Assert.True(result.IsValid, string.Join("\n", result.Errors.Select(e => e.Message)));
    }

    private static void AddNs(Spec spec, string type, string? path = null)
    {
        RemoveNs(spec, type);
        spec.Linux!.Namespaces!.Add(new LinuxNamespace { Type = type, Path = path });
    }

    private static void RemoveNs(Spec spec, string type) => spec.Linux!.Namespaces!.RemoveAll(n => n.Type == type);

    private static void AddUserNs(Spec spec, bool uid, bool gid)
    {
        AddNs(spec, NamespaceType.User);
        spec.Linux!.UidMappings = uid ? [new LinuxIdMapping { ContainerId = 0, HostId = 100000, Size = 65536 }] : null;
        spec.Linux.GidMappings = gid ? [new LinuxIdMapping { ContainerId = 0, HostId = 100000, Size = 65536 }] : null;
    }

    private static LinuxSeccomp Seccomp(LinuxSyscall syscall) =>
        new() { DefaultAction = "SCMP_ACT_ALLOW", Syscalls = [syscall] };
}
