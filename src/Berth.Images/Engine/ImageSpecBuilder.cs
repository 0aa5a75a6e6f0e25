using System.Globalization;
using Berth.Images.Manifests;
using Berth.Oci;
using OciMount = Berth.Oci.Mount;

namespace Berth.Images.Engine;

/// <summary>
/// The image config turned into an OCI runtime spec, as dockerd does (daemon/oci_linux.go over
/// moby's oci.DefaultSpec) and containerd's oci.WithImageConfig: Docker's defaults (capabilities,
/// masked and read-only paths, the standard mounts, namespaces, the device cgroup rules), then
/// the image's Entrypoint+Cmd, Env, WorkingDir and User (resolved in the rootfs), then the
/// overrides. Seccomp and AppArmor profiles, cgroupsPath and networking are the engine's to add.
/// </summary>
public static class ImageSpecBuilder
{
    public const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>moby's oci/caps DefaultCapabilities.</summary>
    public static IReadOnlyList<string> DefaultCapabilities { get; } =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    /// <summary>moby's oci.DefaultLinuxSpec masked paths.</summary>
    public static IReadOnlyList<string> DefaultMaskedPaths { get; } =
    [
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ];

    public static IReadOnlyList<string> DefaultReadonlyPaths { get; } = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    /// <summary>Builds the spec for <paramref name="image"/> with its root filesystem at <paramref name="rootfs"/> (mounted, for the user lookup).</summary>
    /// <exception cref="ImagesException">InvalidArgument: no command, an unknown user or group, a relative working directory, an unknown capability.</exception>
    public static ImageSpec Build(ImageConfig image, string rootfs, ContainerOverrides? overrides = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ContainerConfig config = image.Config ?? new ContainerConfig();
        var o = overrides ?? new ContainerOverrides();
        Spec spec = DefaultSpec(o.Privileged);

        // Command: daemon/commit.go merge() and the run-time rules of `docker run`.
        spec.Process!.Args = Command(config, o);
        spec.Process.Terminal = o.Tty;

        // Hostname: --hostname, or the container ID's first 12 characters.
        string? hostname = o.Hostname ?? (o.ContainerId is { Length: > 0 } id ? id[..Math.Min(12, id.Length)] : null);
        spec.Hostname = hostname;
        spec.Domainname = o.Domainname;

        // Env: PATH, HOSTNAME, TERM as dockerd's CreateDaemonEnvironment, then the image's, then -e.
        var env = new List<string> { DefaultPath };
        if (hostname is not null) env.Add("HOSTNAME=" + hostname);
        if (o.Tty) env.Add("TERM=xterm");
        if (!o.EnvIncludesImageEnv) env = MergeEnv(env, config.Env);
        env = MergeEnv(env, o.Env);

        spec.Process.Cwd = WorkingDir(o.WorkingDir, config.WorkingDir);

        ResolvedUser user = UserResolver.Resolve(rootfs, o.User ?? config.User, o.GroupAdd);
        // runc's init sets HOME from the user's passwd entry ("/" without one) when the env has none.
        if (!env.Any(e => e.StartsWith("HOME=", StringComparison.Ordinal))) env.Add("HOME=" + user.Home);
        spec.Process.Env = env;
        spec.Process.User = new User
        {
            Uid = user.Uid,
            Gid = user.Gid,
            AdditionalGids = user.ProcessAdditionalGids,
        };

        List<string> caps = TweakCapabilities(o.CapAdd, o.CapDrop, o.Privileged);
        spec.Process.Capabilities = new LinuxCapabilities { Bounding = [.. caps], Effective = [.. caps], Permitted = [.. caps] };

        spec.Root = new Root { Path = Path.GetFullPath(rootfs), Readonly = o.ReadonlyRootfs };
        ApplyMounts(spec, o);
        ApplyResources(spec, o);
        if (o.Privileged) ApplyPrivileged(spec, o);

        spec.Annotations = Annotations(image, config, o);

        return new ImageSpec(
            spec,
            user,
            string.IsNullOrEmpty(config.StopSignal) ? "SIGTERM" : config.StopSignal,
            (config.ExposedPorts?.Keys ?? []).Order(StringComparer.Ordinal).ToList(),
            (config.Volumes?.Keys ?? []).Order(StringComparer.Ordinal).ToList(),
            config.Labels?.ToDictionary(StringComparer.Ordinal) ?? new Dictionary<string, string>(StringComparer.Ordinal));
    }

    /// <summary>moby's oci.DefaultLinuxSpec (with the 64 MiB /dev/shm dockerd gives by default).</summary>
    public static Spec DefaultSpec(bool privileged = false) => new()
    {
        OciVersion = Spec.SupportedVersion,
        Process = new Process
        {
            Cwd = "/",
            User = new User(),
            Capabilities = new LinuxCapabilities
            {
                Bounding = [.. DefaultCapabilities], Effective = [.. DefaultCapabilities], Permitted = [.. DefaultCapabilities],
            },
        },
        Root = new Root { Path = "rootfs" },
        Mounts =
        [
            new OciMount { Destination = "/proc", Type = "proc", Source = "proc", Options = ["nosuid", "noexec", "nodev"] },
            new OciMount { Destination = "/dev", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            new OciMount { Destination = "/dev/pts", Type = "devpts", Source = "devpts", Options = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            new OciMount { Destination = "/sys", Type = "sysfs", Source = "sysfs", Options = ["nosuid", "noexec", "nodev", privileged ? "rw" : "ro"] },
            new OciMount { Destination = "/sys/fs/cgroup", Type = "cgroup", Source = "cgroup", Options = [privileged ? "rw" : "ro", "nosuid", "noexec", "nodev"] },
            new OciMount { Destination = "/dev/mqueue", Type = "mqueue", Source = "mqueue", Options = ["nosuid", "noexec", "nodev"] },
            new OciMount { Destination = "/dev/shm", Type = "tmpfs", Source = "shm", Options = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
        ],
        Linux = new Linux
        {
            MaskedPaths = [.. DefaultMaskedPaths],
            ReadonlyPaths = [.. DefaultReadonlyPaths],
            Namespaces =
            [
                new LinuxNamespace { Type = NamespaceType.Mount },
                new LinuxNamespace { Type = NamespaceType.Network },
                new LinuxNamespace { Type = NamespaceType.Uts },
                new LinuxNamespace { Type = NamespaceType.Pid },
                new LinuxNamespace { Type = NamespaceType.Ipc },
                new LinuxNamespace { Type = NamespaceType.Cgroup },
            ],
            Devices = [],
            Resources = new LinuxResources { Devices = DefaultDeviceRules() },
        },
    };

    /// <summary>
    /// moby's default device cgroup rules (deny all, the standard nodes, fuse denied) followed by what runc
    /// appends to every container's (mknod of anything; tty, ptmx, /dev/pts/*, tun), which berth-runtime does
    /// not add by itself. In this order, as moby and runc give it: runc refuses a deny after the mknod
    /// wildcard ("cannot punch hole in existing wildcard rule"), so `--runtime runc` needs fuse's deny first.
    /// </summary>
    private static List<LinuxDeviceCgroup> DefaultDeviceRules() =>
    [
        new() { Allow = false, Access = "rwm" },
        Char(1, 5), Char(1, 3), Char(1, 9), Char(1, 8), Char(5, 0), Char(5, 1),
        new() { Allow = false, Type = "c", Major = 10, Minor = 229, Access = "rwm" },
        new() { Allow = true, Type = "c", Access = "m" },
        new() { Allow = true, Type = "b", Access = "m" },
        Char(1, 7), Char(5, 2), Char(136, null), Char(10, 200),
    ];

    private static LinuxDeviceCgroup Char(long major, long? minor) => new() { Allow = true, Type = "c", Major = major, Minor = minor, Access = "rwm" };

    private static List<string> Command(ContainerConfig config, ContainerOverrides o)
    {
        IReadOnlyList<string> entrypoint, cmd;
        if (o.Entrypoint is { Count: > 0 })
        {
            // --entrypoint X: the image's Cmd goes too; only the run arguments follow. The docker CLI
            // sends --entrypoint "" as [""], which moby's mergeAndVerifyConfig then resets to none.
            entrypoint = o.Entrypoint is [""] ? [] : o.Entrypoint;
            cmd = o.Cmd ?? [];
        }
        else
        {
            entrypoint = o.Entrypoint ?? config.Entrypoint ?? []; // an empty Entrypoint clears it
            if (entrypoint is [""]) entrypoint = [];
            cmd = o.Cmd is { Count: > 0 } ? o.Cmd : config.Cmd ?? [];
        }
        List<string> args = [.. entrypoint, .. cmd];
        if (args.Count == 0)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, "no command specified: the image has no Entrypoint or Cmd and none was given");
        return args;
    }

    /// <summary>
    /// Docker's ReplaceOrAppendEnvValues: <c>K=V</c> replaces K in place or appends; a bare <c>K</c>
    /// removes K. Keys are case-sensitive.
    /// </summary>
    public static List<string> MergeEnv(IReadOnlyList<string> defaults, IReadOnlyList<string>? overrides)
    {
        var result = new List<string>(defaults);
        foreach (string kv in overrides ?? [])
        {
            int eq = kv.IndexOf('=');
            string key = eq < 0 ? kv : kv[..eq];
            int at = result.FindIndex(e => (e.IndexOf('=') is var i && i >= 0 ? e[..i] : e) == key);
            if (eq < 0)
            {
                if (at >= 0) result.RemoveAt(at);
            }
            else if (at >= 0)
            {
                result[at] = kv;
            }
            else
            {
                result.Add(kv);
            }
        }
        return result;
    }

    private static string WorkingDir(string? overridden, string? image)
    {
        if (!string.IsNullOrEmpty(overridden))
        {
            if (!overridden.StartsWith('/'))
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"the working directory '{overridden}' is invalid, it needs to be an absolute path");
            return Clean(overridden);
        }
        return string.IsNullOrEmpty(image) ? "/" : Clean("/" + image);
    }

    private static string Clean(string path)
    {
        var parts = new List<string>();
        foreach (string p in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (p == ".") continue;
            if (p == "..")
            {
                if (parts.Count > 0) parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(p);
        }
        return "/" + string.Join('/', parts);
    }

    /// <summary>
    /// What "all capabilities" means (--privileged, --cap-add ALL): those this process holds in its
    /// bounding set, as moby's GetAllCapabilities. A process cannot give what it lacks — root without
    /// CAP_SYS_RESOURCE in its bounding set, as on some hosts, had every privileged container and
    /// exec refused by capset (EPERM).
    /// </summary>
    public static IReadOnlyList<string> AllAvailableCapabilities => s_available.Value;

    private static readonly Lazy<IReadOnlyList<string>> s_available = new(() =>
        Capabilities.OwnBoundingSet() is { } bounding ? Capabilities.NamesOf(bounding) : Capabilities.Names);

    /// <summary>moby's caps.TweakCapabilities.</summary>
    public static List<string> TweakCapabilities(IReadOnlyList<string>? add, IReadOnlyList<string>? drop, bool privileged)
    {
        List<string> all = [.. AllAvailableCapabilities];
        if (privileged) return all;
        List<string> adds = Normalize(add), drops = Normalize(drop);
        if (adds.Count == 0 && drops.Count == 0) return [.. DefaultCapabilities];
        // moby's TweakCapabilities: an added capability must be one berthd can give.
        if (adds.FirstOrDefault(c => c != "ALL" && !all.Contains(c)) is { } missing)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"capability not supported by your kernel or not available in the current environment: \"{missing}\"");
        List<string> caps;
        if (adds.Contains("ALL"))
            caps = all.Where(c => !drops.Contains(c)).ToList();
        else if (drops.Contains("ALL"))
            caps = adds;
        else
            caps = [.. DefaultCapabilities.Where(c => !drops.Contains(c)), .. adds];
        return caps.Distinct().ToList();
    }

    private static List<string> Normalize(IReadOnlyList<string>? names)
    {
        var result = new List<string>();
        foreach (string raw in names ?? [])
        {
            string name = raw.Trim().ToUpperInvariant();
            if (name == "ALL")
            {
                result.Add(name);
                continue;
            }
            if (!name.StartsWith("CAP_", StringComparison.Ordinal)) name = "CAP_" + name;
            if (!Capabilities.TryParse(name, out _))
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"unknown capability: \"{raw}\"");
            result.Add(name);
        }
        return result;
    }

    private static void ApplyMounts(Spec spec, ContainerOverrides o)
    {
        var user = new List<OciMount>();
        foreach (var (destination, options) in o.Tmpfs ?? new Dictionary<string, string>())
        {
            List<string> given = options.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
            // Docker's tmpfs defaults (noexec, nosuid, nodev) unless the user says otherwise.
            var opts = new List<string>();
            if (!given.Any(g => g is "exec" or "noexec")) opts.Add("noexec");
            if (!given.Any(g => g is "suid" or "nosuid")) opts.Add("nosuid");
            if (!given.Any(g => g is "dev" or "nodev")) opts.Add("nodev");
            opts.AddRange(given);
            user.Add(new OciMount { Destination = AbsoluteDestination(destination, "tmpfs"), Type = "tmpfs", Source = "tmpfs", Options = opts });
        }
        foreach (BindMount bind in o.Binds ?? [])
        {
            if (!Path.IsPathRooted(bind.Source))
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"bind mount source `{bind.Source}` must be an absolute path");
            user.Add(new OciMount
            {
                Destination = AbsoluteDestination(bind.Destination, "bind mount"),
                Type = "bind",
                Source = bind.Source,
                Options = ["rbind", bind.Propagation, bind.ReadOnly ? "ro" : "rw"],
            });
        }
        var duplicate = user.GroupBy(m => m.Destination).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"duplicate mount point: {duplicate.Key}");
        // Parents before what is mounted inside them (dockerd sorts by path depth), whatever order
        // the binds, volumes and tmpfs came in: a bind on /data given after a volume on /data/sub
        // would otherwise hide the volume.
        user = [.. user.OrderBy(m => m.Destination == "/" ? 0 : m.Destination.Count(c => c == '/'))];

        // A user mount replaces the default at the same place; one on /dev replaces /dev/*.
        bool userDev = user.Any(m => m.Destination == "/dev");
        spec.Mounts = [.. spec.Mounts!.Where(d => !user.Any(u => u.Destination == d.Destination) && !(userDev && d.Destination.StartsWith("/dev/", StringComparison.Ordinal))), .. user];
    }

    private static string AbsoluteDestination(string destination, string what)
    {
        if (!destination.StartsWith('/'))
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"invalid {what} destination `{destination}`: it must be an absolute path");
        string clean = Clean(destination);
        if (clean == "/") throw new ImagesException(ImagesErrorKind.InvalidArgument, $"invalid {what} destination `/`");
        return clean;
    }

    private static void ApplyResources(Spec spec, ContainerOverrides o)
    {
        LinuxResources r = spec.Linux!.Resources!;
        if (o.Memory is not null || o.MemorySwap is not null)
            // dockerd: with a memory limit and no swap setting, memory+swap is twice the limit.
            r.Memory = new LinuxMemory { Limit = o.Memory, Swap = o.MemorySwap ?? (o.Memory is > 0 ? o.Memory * 2 : null) };
        if (o.Cpus is not null || o.CpuShares is not null || o.CpusetCpus is not null)
        {
            r.Cpu = new LinuxCpu { Shares = o.CpuShares, Cpus = o.CpusetCpus };
            if (o.Cpus is double cpus)
            {
                if (cpus <= 0 || double.IsNaN(cpus) || cpus > Environment.ProcessorCount * 1024.0)
                    throw new ImagesException(ImagesErrorKind.InvalidArgument, $"invalid --cpus value {cpus.ToString(CultureInfo.InvariantCulture)}");
                const ulong period = 100_000;
                r.Cpu.Period = period;
                r.Cpu.Quota = (long)Math.Round(cpus * period);
            }
        }
        if (o.PidsLimit is long pids) r.Pids = new LinuxPids { Limit = pids <= 0 ? -1 : pids };
    }

    private static void ApplyPrivileged(Spec spec, ContainerOverrides o)
    {
        Linux linux = spec.Linux!;
        linux.MaskedPaths = null;
        linux.ReadonlyPaths = null;
        linux.Resources!.Devices = [new LinuxDeviceCgroup { Allow = true, Access = "rwm" }];
        linux.Devices = [.. (o.HostDevices ?? HostDevices.Scan)()];
    }

    /// <summary>
    /// The image-spec's conversion annotations (org.opencontainers.image.*) and the image's Labels
    /// (which win over them), then the caller's annotations.
    /// </summary>
    private static Dictionary<string, string>? Annotations(ImageConfig image, ContainerConfig config, ContainerOverrides o)
    {
        var a = new Dictionary<string, string>(StringComparer.Ordinal);
        void Set(string key, string? value)
        {
            if (!string.IsNullOrEmpty(value)) a["org.opencontainers.image." + key] = value;
        }
        Set("os", image.OS);
        Set("architecture", image.Architecture);
        Set("variant", image.Variant);
        Set("os.version", image.OSVersion);
        Set("author", image.Author);
        Set("created", image.Created?.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", CultureInfo.InvariantCulture));
        Set("stopSignal", config.StopSignal);
        if (config.ExposedPorts is { Count: > 0 } ports) Set("exposedPorts", string.Join(',', ports.Keys.Order(StringComparer.Ordinal)));
        foreach (var (k, v) in config.Labels ?? new Dictionary<string, string>()) a[k] = v;
        foreach (var (k, v) in o.Annotations ?? new Dictionary<string, string>()) a[k] = v;
        return a.Count > 0 ? a : null;
    }
}
