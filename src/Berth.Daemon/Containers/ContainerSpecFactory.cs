using System.Globalization;
using System.Text;
using Berth.Images;
using Berth.Images.Engine;
using Berth.Network;
using Berth.Oci;
using Berth.Seccomp;
using OciMount = Berth.Oci.Mount;

namespace Berth.Daemon.Containers;

/// <summary>
/// The OCI spec of a container, built at each start from its image and its record (as dockerd
/// does in daemon/oci_linux.go): Berth.Images' ImageSpecBuilder gives Docker's defaults with the
/// image config and the overrides; this adds what is the engine's: namespaces by mode, the
/// hostname/hosts/resolv.conf files, the cgroup path, seccomp, rlimits, sysctls and the rest of
/// HostConfig.
/// </summary>
public static class ContainerSpecFactory
{
    public const string InitDestination = "/sbin/docker-init";

    /// <summary>Whether the host mounts the unified cgroup hierarchy (cgroup v2) at /sys/fs/cgroup.</summary>
    public static bool CgroupV2 { get; } = File.Exists("/sys/fs/cgroup/cgroup.controllers");

    /// <param name="joinedNamespaces">Namespaces of other containers to join, by type (<see cref="NamespaceType"/>): /proc/PID/ns/… paths.</param>
    /// <param name="volumeBinds">The container's volumes, mounted by the volume service: their mountpoints bound at their destinations.</param>
    /// <param name="sharedShm">A host directory bound at /dev/shm instead of the container's own tmpfs (--ipc shareable, container:, host).</param>
    /// <param name="daemon">berthd's defaults for what the container does not set (--seccomp-profile, --dns…); null: none.</param>
    /// <param name="hostGateway">What --add-host NAME:host-gateway stands for (see <see cref="ExtraHosts"/>).</param>
    /// <param name="embeddedDns">The container's namespace has the embedded DNS server (a user-defined network): resolv.conf names 127.0.0.11.</param>
    public static ImageSpec Build(ContainerRecord record, Berth.Images.Store.Image image, string rootfs, string containerDir, string networkMode, IReadOnlyDictionary<string, string>? joinedNamespaces, string? initBinary = null,
        IReadOnlyList<BindMount>? volumeBinds = null, Configuration.DaemonOptions? daemon = null, string? sharedShm = null, Func<System.Net.IPAddress?>? hostGateway = null,
        bool embeddedDns = false)
    {
        ContainerConfigJson c = record.Config;
        HostConfigJson h = record.HostConfig;
        // The order is free: the spec's user mounts are sorted parents first (ImageSpecBuilder).
        List<BindMount> binds = [.. HostBinds(h, createMissingSource: true), .. volumeBinds ?? [], .. record.InheritedBinds ?? []];
        var tmpfs = new Dictionary<string, string>(h.Tmpfs ?? [], StringComparer.Ordinal);
        foreach (MountJson m in h.Mounts ?? [])
        {
            if (m.Type == "tmpfs")
            {
                var opts = new List<string>();
                if (m.TmpfsOptions is { SizeBytes: > 0 } t) opts.Add("size=" + t.SizeBytes.ToString(CultureInfo.InvariantCulture));
                if (m.TmpfsOptions is { Mode: > 0 } t2) opts.Add("mode=" + Convert.ToString(t2.Mode, 8));
                tmpfs[m.Target] = string.Join(',', opts);
            }
        }
        bool hostNetwork = networkMode == "host";
        var overrides = new ContainerOverrides
        {
            ContainerId = record.Id,
            Env = c.Env,
            EnvIncludesImageEnv = true,
            Cmd = c.Cmd,
            Entrypoint = c.Entrypoint,
            WorkingDir = string.IsNullOrEmpty(c.WorkingDir) ? null : c.WorkingDir,
            User = string.IsNullOrEmpty(c.User) ? null : c.User,
            GroupAdd = h.GroupAdd,
            Hostname = !string.IsNullOrEmpty(c.Hostname) ? c.Hostname : hostNetwork ? System.Net.Dns.GetHostName() : null,
            Domainname = string.IsNullOrEmpty(c.Domainname) ? null : c.Domainname,
            Tty = c.Tty,
            ReadonlyRootfs = h.ReadonlyRootfs,
            CapAdd = h.CapAdd,
            CapDrop = h.CapDrop,
            Privileged = h.Privileged,
            Tmpfs = tmpfs,
            Binds = binds,
        };
        ImageSpec built = ImageSpecBuilder.Build(image.Config, rootfs, overrides);
        Spec spec = built.Spec;
        Linux linux = spec.Linux!;
        linux.RootfsPropagation = RootfsPropagation(binds);

        // Namespaces by mode. cgroupns: private on cgroup v2 (Docker's default there), host on v1.
        var drop = new HashSet<string>(StringComparer.Ordinal);
        if (hostNetwork) drop.Add(NamespaceType.Network);
        if (h.PidMode == "host") drop.Add(NamespaceType.Pid);
        if (h.IpcMode == "host") drop.Add(NamespaceType.Ipc);
        if (h.UTSMode == "host") drop.Add(NamespaceType.Uts);
        if (h.CgroupnsMode == "host" || (h.CgroupnsMode == "" && !CgroupV2)) drop.Add(NamespaceType.Cgroup);
        linux.Namespaces = linux.Namespaces!.Where(n => !drop.Contains(n.Type)).ToList();
        // --network, --pid and --ipc container:X: X's namespaces, by their /proc path.
        foreach (LinuxNamespace ns in linux.Namespaces)
            if (joinedNamespaces?.GetValueOrDefault(ns.Type) is { } path) ns.Path = path;
        if (h.UTSMode == "host") spec.Hostname = null;
        // --userns-remap: a user namespace of the container's own with the daemon's ranges, unless it opted out (--userns=host).
        Configuration.UsernsRemap? remap = daemon?.RemapFor(h.UsernsMode);
        if (remap is not null)
        {
            linux.Namespaces.Add(new LinuxNamespace { Type = NamespaceType.User });
            linux.UidMappings = [.. remap.UidMap.Select(m => new LinuxIdMapping { ContainerId = m.ContainerId, HostId = m.HostId, Size = m.Size })];
            linux.GidMappings = [.. remap.GidMap.Select(m => new LinuxIdMapping { ContainerId = m.ContainerId, HostId = m.HostId, Size = m.Size })];
            // As moby's WithNamespaces: a container that joins another's network, IPC or PID namespace joins its user
            // namespace too (the last of them), which owns those; from a user namespace of its own it could not mount
            // their mqueue or proc.
            foreach (string type in new[] { NamespaceType.Network, NamespaceType.Ipc, NamespaceType.Pid })
                if (joinedNamespaces?.GetValueOrDefault(type) is { } joined && joined.StartsWith("/proc/", StringComparison.Ordinal))
                    linux.Namespaces.First(n => n.Type == NamespaceType.User).Path = joined[..(joined.LastIndexOf('/') + 1)] + "user";
        }

        // /etc/hostname, /etc/hosts, /etc/resolv.conf: files of the container's, bind-mounted (dockerd does the same).
        WriteEtcFiles(record, spec.Hostname ?? System.Net.Dns.GetHostName(), containerDir, hostNetwork, daemon, hostGateway, embeddedDns);
        // As dockerd: the container's directory reachable by the remapped root (root:GID 0710) and its /etc files its own.
        if (remap is not null)
        {
            Interop.Chown(containerDir, 0, remap.RootGid);
            File.SetUnixFileMode(containerDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute);
            foreach (string name in new[] { "resolv.conf", "hostname", "hosts" })
                Interop.Chown(Path.Combine(containerDir, name), remap.RootUid, remap.RootGid);
        }
        var etc = new List<OciMount>();
        foreach (string name in new[] { "resolv.conf", "hostname", "hosts" })
            etc.Add(new OciMount
            {
                Destination = "/etc/" + name,
                Type = "bind",
                Source = Path.Combine(containerDir, name),
                Options = ["rbind", "rprivate", h.ReadonlyRootfs ? "ro" : "rw"],
            });
        spec.Mounts = [.. spec.Mounts!.Where(m => !etc.Any(e => e.Destination == m.Destination)), .. etc];

        if (h.ShmSize > 0)
            foreach (OciMount m in spec.Mounts.Where(m => m.Destination == "/dev/shm"))
                m.Options = [.. m.Options!.Where(o => !o.StartsWith("size=", StringComparison.Ordinal)), "size=" + (h.ShmSize / 1024).ToString(CultureInfo.InvariantCulture) + "k"];
        if (h.IpcMode == "none") spec.Mounts = spec.Mounts.Where(m => m.Destination != "/dev/shm").ToList();
        if (sharedShm is not null) // in the tmpfs's place: mounts below /dev/shm come after it
            spec.Mounts = [.. spec.Mounts.Select(m => m.Destination != "/dev/shm" ? m
                : new OciMount { Destination = "/dev/shm", Type = "bind", Source = sharedShm, Options = ["rbind", "rprivate"] })];

        linux.CgroupsPath = ContainerStats.CgroupsPath(record);
        LinuxResources r = linux.Resources ??= new LinuxResources();
        LinuxResources limits = Limits(h);
        (r.Memory, r.Cpu, r.Pids, r.BlockIo) = (limits.Memory, limits.Cpu, limits.Pids, limits.BlockIo);
        if (h.Annotations is { Count: > 0 })
        {
            spec.Annotations ??= new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, value) in h.Annotations) spec.Annotations[key] = value;
        }
        AddDevices(linux, h);
        // -t: the client's terminal size at create (docker 23+ sends it), so that the first output is laid
        // out for it before any resize arrives, as moby's WithConsoleSize passes it to the runtime.
        if (c.Tty && h.ConsoleSize is [int height, int width] && height >= 0 && width >= 0 && (height > 0 || width > 0))
            spec.Process!.ConsoleSize = new ConsoleSize { Height = (uint)height, Width = (uint)width };
        if (h.OomScoreAdj != 0) spec.Process!.OomScoreAdj = h.OomScoreAdj;
        if (h.Sysctls is { Count: > 0 }) linux.Sysctl = new Dictionary<string, string>(h.Sysctls, StringComparer.Ordinal);
        if (h.MaskedPaths is not null) linux.MaskedPaths = [.. h.MaskedPaths];
        if (h.ReadonlyPaths is not null) linux.ReadonlyPaths = [.. h.ReadonlyPaths];
        if (h.Ulimits is { Count: > 0 })
            spec.Process!.Rlimits = h.Ulimits.Select(u => new PosixRlimit
            {
                Type = "RLIMIT_" + u.Name.ToUpperInvariant(),
                Soft = unchecked((ulong)u.Soft),
                Hard = unchecked((ulong)u.Hard),
            }).ToList();

        // --init: tini bind-mounted read-only as /sbin/docker-init runs the command as its child and
        // reaps orphans, as dockerd does it.
        if (initBinary is not null)
        {
            spec.Mounts = [.. spec.Mounts, new OciMount { Destination = InitDestination, Type = "bind", Source = initBinary, Options = ["rbind", "ro"] }];
            spec.Process!.Args = [InitDestination, "--", .. spec.Process.Args!];
        }

        var (seccomp, profile, noNewPrivileges) = ContainerRequestCheck.ParseSecurityOpts(h.SecurityOpt);
        // --no-new-privileges: the daemon's default unless the container says no-new-privileges=false.
        if (noNewPrivileges ?? daemon?.NoNewPrivileges ?? false) spec.Process!.NoNewPrivileges = true;
        // As dockerd's WithSeccomp: a privileged container has no filter whatever the options say;
        // a container's own profile comes first, then the daemon's (which seccomp=builtin also
        // means), then Docker's default. A daemon started with "unconfined" filters only the
        // containers that ask for a profile. Rules are chosen by the capabilities the container ends up with.
        IReadOnlyCollection<string> bounding = spec.Process!.Capabilities!.Bounding ?? [];
        profile ??= daemon?.SeccompProfile;
        bool daemonUnconfined = seccomp is null && daemon?.SeccompProfilePath == Configuration.DaemonOptions.UnconfinedSeccompProfile;
        if (!h.Privileged && seccomp != false && !daemonUnconfined)
            linux.Seccomp = profile is not null ? profile.For(bounding, HostArch()) : DockerDefaultProfile.For(bounding, HostArch());
        return built;
    }

    /// <summary>
    /// The host directories a HostConfig binds: its Binds with an absolute source (the others name
    /// volumes, mounted by the volume service) and its Mounts of type bind.
    /// </summary>
    /// <param name="createMissingSource">At start: a missing Binds source is made, as dockerd's -v does.</param>
    public static IEnumerable<BindMount> HostBinds(HostConfigJson h, bool createMissingSource)
    {
        foreach (string bind in h.Binds ?? [])
        {
            if (ContainerRequestCheck.IsVolumeBind(bind)) continue;
            var (source, destination, readOnly, propagation) = ContainerRequestCheck.ParseBind(bind, createMissingSource);
            yield return new BindMount(source, destination, readOnly, propagation);
        }
        foreach (MountJson m in h.Mounts ?? [])
            if (m.Type == "bind") yield return new BindMount(m.Source, m.Target, m.ReadOnly, ContainerRequestCheck.BindPropagation(m));
    }

    /// <summary>
    /// moby's rule (daemon/oci_linux.go setMounts): a shared bind needs its source on a shared
    /// mount and makes the container's root shared, so that mounts propagate both ways; a slave
    /// bind needs a shared or slave source (berth-runtime's default root propagation is rslave
    /// already). Null: the runtime's default.
    /// </summary>
    internal static string? RootfsPropagation(IEnumerable<BindMount> binds)
    {
        string? root = null;
        foreach (BindMount bind in binds)
        {
            bool shared = bind.Propagation is "shared" or "rshared", slave = bind.Propagation is "slave" or "rslave";
            if (!shared && !slave) continue;
            var (mountPoint, isShared, isSlave) = MountPoints.Holding(bind.Source);
            if (shared && !isShared)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"path {bind.Source} is mounted on {mountPoint} but it is not a shared mount");
            if (slave && !isShared && !isSlave)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"path {bind.Source} is mounted on {mountPoint} but it is not a shared or slave mount");
            if (shared) root = "shared";
        }
        return root;
    }

    /// <summary>
    /// --device and --device-cgroup-rule as dockerd applies them: each mapped node created in the
    /// container with an allow rule of its permissions (rwm when none are given). A privileged
    /// container has every host device and an allow-all rule already: only nodes mapped to another
    /// path are added there, and the rules are moot.
    /// </summary>
    private static void AddDevices(Linux linux, HostConfigJson h)
    {
        List<LinuxDevice> devices = linux.Devices ??= [];
        List<LinuxDeviceCgroup> rules = (linux.Resources ??= new LinuxResources()).Devices ??= [];
        foreach (DeviceMappingJson m in h.Devices ?? [])
        {
            string inContainer = string.IsNullOrEmpty(m.PathInContainer) ? m.PathOnHost : m.PathInContainer;
            if (h.Privileged && inContainer == m.PathOnHost) continue;
            string access = string.IsNullOrEmpty(m.CgroupPermissions) ? "rwm" : m.CgroupPermissions;
            foreach (LinuxDevice d in HostDevices.FromPath(m.PathOnHost, inContainer))
            {
                devices.RemoveAll(x => x.Path == d.Path);
                devices.Add(d);
                if (!h.Privileged) rules.Add(new LinuxDeviceCgroup { Allow = true, Type = d.Type, Major = d.Major, Minor = d.Minor, Access = access });
            }
        }
        if (!h.Privileged)
            foreach (string rule in h.DeviceCgroupRules ?? [])
                rules.Add(HostDevices.ParseCgroupRule(rule));
    }

    /// <summary>
    /// The cgroup limits of a HostConfig: what create puts in the spec and update hands to the
    /// runtime. dockerd's defaults: with a memory limit and no swap setting, memory+swap is twice
    /// the limit; --cpus is a quota over a 100 ms period; a pids limit of -1 is no limit (0 is unset).
    /// </summary>
    public static LinuxResources Limits(HostConfigJson h)
    {
        var r = new LinuxResources();
        if (h.Memory > 0 || h.MemorySwap != 0 || h.MemoryReservation > 0 || h.MemorySwappiness is >= 0 || h.OomKillDisable == true)
            r.Memory = new LinuxMemory
            {
                Limit = h.Memory > 0 ? h.Memory : null,
                Swap = h.MemorySwap != 0 ? h.MemorySwap : h.Memory > 0 ? h.Memory * 2 : null,
                Reservation = h.MemoryReservation > 0 ? h.MemoryReservation : null,
                Swappiness = h.MemorySwappiness is >= 0 ? (ulong)h.MemorySwappiness.Value : null,
                DisableOomKiller = h.OomKillDisable == true ? true : null,
            };
        if (h.CpuShares > 0 || h.NanoCpus > 0 || h.CpuPeriod > 0 || h.CpuQuota != 0 || !string.IsNullOrEmpty(h.CpusetCpus) || !string.IsNullOrEmpty(h.CpusetMems)
            || h.CpuRealtimePeriod > 0 || h.CpuRealtimeRuntime != 0)
        {
            const ulong nanoCpuPeriod = 100_000;
            r.Cpu = new LinuxCpu
            {
                Shares = h.CpuShares > 0 ? (ulong)h.CpuShares : null,
                Period = h.NanoCpus > 0 ? nanoCpuPeriod : h.CpuPeriod > 0 ? (ulong)h.CpuPeriod : null,
                Quota = h.NanoCpus > 0 ? h.NanoCpus * (long)nanoCpuPeriod / 1_000_000_000 : h.CpuQuota != 0 ? h.CpuQuota : null,
                Cpus = string.IsNullOrEmpty(h.CpusetCpus) ? null : h.CpusetCpus,
                Mems = string.IsNullOrEmpty(h.CpusetMems) ? null : h.CpusetMems,
                RealtimePeriod = h.CpuRealtimePeriod > 0 ? (ulong)h.CpuRealtimePeriod : null,
                RealtimeRuntime = h.CpuRealtimeRuntime != 0 ? h.CpuRealtimeRuntime : null,
            };
        }
        if (h.PidsLimit is > 0 or -1) r.Pids = new LinuxPids { Limit = h.PidsLimit.Value };
        if (h.BlkioWeight > 0 || new[] { h.BlkioDeviceReadBps, h.BlkioDeviceWriteBps, h.BlkioDeviceReadIOps, h.BlkioDeviceWriteIOps }.Any(l => l is { Count: > 0 })
            || h.BlkioWeightDevice is { Count: > 0 })
        {
            static List<LinuxThrottleDevice>? Throttles(List<ThrottleDeviceJson>? list) => list is { Count: > 0 }
                ? list.Select(d =>
                {
                    var (major, minor) = ContainerRequestCheck.BlockDevice(d.Path);
                    return new LinuxThrottleDevice { Major = major, Minor = minor, Rate = d.Rate };
                }).ToList()
                : null;
            r.BlockIo = new LinuxBlockIo
            {
                Weight = h.BlkioWeight > 0 ? h.BlkioWeight : null,
                WeightDevice = h.BlkioWeightDevice is { Count: > 0 } weights
                    ? weights.Select(d =>
                    {
                        var (major, minor) = ContainerRequestCheck.BlockDevice(d.Path);
                        return new LinuxWeightDevice { Major = major, Minor = minor, Weight = d.Weight };
                    }).ToList()
                    : null,
                ThrottleReadBpsDevice = Throttles(h.BlkioDeviceReadBps),
                ThrottleWriteBpsDevice = Throttles(h.BlkioDeviceWriteBps),
                ThrottleReadIopsDevice = Throttles(h.BlkioDeviceReadIOps),
                ThrottleWriteIopsDevice = Throttles(h.BlkioDeviceWriteIOps),
            };
        }
        return r;
    }

    internal static SeccompArch HostArch() => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.Arm64 => SeccompArch.Aarch64,
        System.Runtime.InteropServices.Architecture.Arm => SeccompArch.Arm,
        System.Runtime.InteropServices.Architecture.X86 => SeccompArch.X86,
        _ => SeccompArch.X86_64,
    };

    /// <summary>
    /// Writes hostname, hosts and resolv.conf into the container's directory (each atomically):
    /// the host's own files with the host network, else Berth.Network's renderings (resolv.conf
    /// from the host's without loopback resolvers, or naming the embedded DNS server; hosts with
    /// --add-host entries; a bridged container's own address is added once its endpoint exists).
    /// </summary>
    /// <param name="daemon">Its --dns, --dns-search and --dns-opt stand in, each on its own, for what the container leaves empty (as dockerd).</param>
    /// <param name="hostGateway">What --add-host NAME:host-gateway stands for (see <see cref="ExtraHosts"/>).</param>
    public static void WriteEtcFiles(ContainerRecord record, string hostname, string dir, bool hostNetwork, Configuration.DaemonOptions? daemon = null,
        Func<System.Net.IPAddress?>? hostGateway = null, bool embeddedDns = false)
    {
        HostConfigJson h = record.HostConfig;
        Directory.CreateDirectory(dir);
        WriteAtomic(Path.Combine(dir, "hostname"), hostname + "\n");
        string hostHosts = File.Exists("/etc/hosts") ? File.ReadAllText("/etc/hosts") : "";
        List<HostsEntry> extra = ExtraHosts(h, hostGateway ?? (() => null));
        WriteAtomic(Path.Combine(dir, "hosts"), hostNetwork
            ? (hostHosts.Length == 0 || hostHosts.EndsWith('\n') ? hostHosts : hostHosts + "\n") + string.Concat(extra.Select(e => $"{e.Address}\t{string.Join(' ', e.Names)}\n"))
            : HostsFile.Render(hostname, null, null, extra));
        WriteAtomic(Path.Combine(dir, "resolv.conf"), ResolvConfOf(h, daemon, hostNetwork, embeddedDns));
    }

    /// <summary>The container's resolv.conf: see <see cref="WriteEtcFiles"/>.</summary>
    public static string ResolvConfOf(HostConfigJson h, Configuration.DaemonOptions? daemon, bool hostNetwork, bool embeddedDns)
    {
        var (dns, dnsSearch, dnsOptions) = DnsSettings(h, daemon);
        string hostResolv = HostResolvConf();
        if (embeddedDns) return ResolvConf.RenderEmbedded(hostResolv, dnsSearch, dnsOptions);
        return hostNetwork && dns is null && dnsSearch is null && dnsOptions is null ? hostResolv : ResolvConf.Render(hostResolv, dns, dnsSearch, dnsOptions);
    }

    /// <summary>Where the container's embedded DNS server forwards the names it does not know (its --dns, else the host's servers).</summary>
    public static IReadOnlyList<System.Net.IPAddress> UpstreamDns(HostConfigJson h, Configuration.DaemonOptions? daemon)
        => ResolvConf.UpstreamServers(HostResolvConf(), DnsSettings(h, daemon).Dns);

    private static string HostResolvConf() => File.Exists("/etc/resolv.conf") ? File.ReadAllText("/etc/resolv.conf") : "";

    /// <summary>--dns, --dns-search, --dns-option: the container's, else berthd's, each on its own (as dockerd); null when neither gives one.</summary>
    private static (List<string>? Dns, List<string>? Search, List<string>? Options) DnsSettings(HostConfigJson h, Configuration.DaemonOptions? daemon)
        => (h.Dns is { Count: > 0 } ? h.Dns : daemon?.Dns is { Count: > 0 } d ? [.. d] : null,
            h.DnsSearch is { Count: > 0 } ? h.DnsSearch : daemon?.DnsSearch is { Count: > 0 } ds ? [.. ds] : null,
            h.DnsOptions is { Count: > 0 } ? h.DnsOptions : daemon?.DnsOptions is { Count: > 0 } dopt ? [.. dopt] : null);

    /// <summary>The address dockerd's <c>--add-host NAME:host-gateway</c> stands for.</summary>
    public const string HostGatewayName = "host-gateway";

    /// <summary>
    /// --add-host <c>name:ip</c> entries (checked at create, so a bad one is a 400 there).
    /// <c>name:host-gateway</c> is <paramref name="hostGateway"/>, the default bridge's address
    /// (dockerd's default for --host-gateway-ip); without one, dockerd's error at start.
    /// </summary>
    public static List<HostsEntry> ExtraHosts(HostConfigJson h, Func<System.Net.IPAddress?>? hostGateway = null)
    {
        var entries = new List<HostsEntry>();
        foreach (string e in h.ExtraHosts ?? [])
        {
            int sep = e.IndexOf(':');
            string value = sep > 0 ? e[(sep + 1)..] : "";
            System.Net.IPAddress? ip;
            if (value == HostGatewayName)
            {
                if (hostGateway is null) continue; // create: checked only
                ip = hostGateway() ?? throw new ImagesException(ImagesErrorKind.InvalidArgument,
                    $"unable to derive the IP value for {HostGatewayName}: no default bridge (berthd --bridge none) for --add-host {e}");
            }
            else if (sep <= 0 || !System.Net.IPAddress.TryParse(value, out ip))
            {
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"invalid extra host entry `{e}`: want host:ip");
            }
            entries.Add(new HostsEntry(ip, [e[..sep]]));
        }
        return entries;
    }

    private static void WriteAtomic(string path, string text)
    {
        string temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
