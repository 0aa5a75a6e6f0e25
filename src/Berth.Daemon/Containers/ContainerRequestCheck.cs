using System.Text.Json;
using Berth.Daemon.Api;
using Berth.Daemon.Configuration;
using Berth.Seccomp;

namespace Berth.Daemon.Containers;

/// <summary>
/// Refuses, at create, what berthd cannot do: a field it does not implement that carries a
/// non-zero value gets a 400 naming the field, never a container that silently lacks it. Docker's
/// clients send every field, mostly zero, so only values that ask for something count.
/// </summary>
public static class ContainerRequestCheck
{
    public static void Check(ContainerCreateBody body, HostConfigJson host, List<string> warnings, DaemonOptions options)
    {
        RefuseUnknown("", body.Unknown);
        RefuseUnknown("HostConfig.", host.Unknown);
        CheckHealthcheck(body.Healthcheck);
        // dockerd's verifyContainerSettings and verifyPlatformContainerSettings, in their words.
        if (!string.IsNullOrEmpty(body.WorkingDir) && !body.WorkingDir.StartsWith('/'))
            throw BadRequest($"the working directory '{body.WorkingDir}' is invalid, it needs to be an absolute path");
        if (!string.IsNullOrEmpty(body.StopSignal) && !ContainerService.IsSignal(body.StopSignal)) throw BadRequest($"Invalid signal: {body.StopSignal}");
        if (host.OomScoreAdj is < -1000 or > 1000) throw BadRequest($"Invalid value {host.OomScoreAdj}, range for oom score adj is [-1000, 1000]");
        if (host.ShmSize < 0) throw BadRequest("SHM size can not be less than 0");
        CheckCapabilities("CapAdd", host.CapAdd);
        CheckCapabilities("CapDrop", host.CapDrop);
        if (body.OnBuild is { Count: > 0 }) throw NotSupported("OnBuild", "ONBUILD triggers on a container");
        if (body.NetworkDisabled == true) throw NotSupported("NetworkDisabled", "disabling the network this way (--network none is)");
        body.NetworkDisabled = null; // false: dockerd leaves the field out (omitempty)
        foreach (string path in body.Volumes?.Keys ?? Enumerable.Empty<string>())
            if (!path.StartsWith('/')) throw BadRequest($"invalid volume specification: '{path}': destination must be an absolute path");

        foreach (string link in host.Links ?? []) ContainerService.ParseLink(link);
        if (!string.IsNullOrEmpty(body.MacAddress)) body.MacAddress = CheckMacAddress(body.MacAddress);
        foreach (string from in host.VolumesFrom ?? []) ParseVolumesFrom(from);
        if (!string.IsNullOrEmpty(host.VolumeDriver)) throw NotSupported("HostConfig.VolumeDriver", "volume drivers");
        if (host.Init == true && options.InitBinary() is null)
            throw BadRequest("--init needs docker-init (tini) on berthd's PATH or --init-path: apt-get install tini");
        CheckRestartPolicy(host.RestartPolicy);
        if (host.AutoRemove && host.RestartPolicy.Name is not ("" or "no"))
            throw BadRequest("conflicting options: cannot specify both --restart and --rm");
        // Without --userns-remap every container shares the host's user namespace, so "host" asks for what is there.
        // With it, dockerd 20.10 takes any other value as "a namespace of its own" and refuses what cannot share one.
        if (options.Remap is null && host.UsernsMode is not ("" or "host"))
            throw NotSupported("HostConfig.UsernsMode", $"user namespace mode `{host.UsernsMode}` (berthd runs without --userns-remap; only host is)");
        if (options.RemapFor(host.UsernsMode) is not null)
        {
            if (host.Privileged)
                throw BadRequest("privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode");
            if (host.NetworkMode == "host") throw BadRequest("cannot share the host's network namespace when user namespaces are enabled");
            if (host.PidMode == "host") throw BadRequest("cannot share the host PID namespace when user namespaces are enabled");
        }
        if (!string.IsNullOrEmpty(host.Cgroup)) throw NotSupported("HostConfig.Cgroup", "joining another container's cgroup");
        if (host.Isolation is not ("" or "default")) throw NotSupported("HostConfig.Isolation", $"isolation `{host.Isolation}`");
        if (host.IpcMode is not ("" or "private" or "shareable" or "host" or "none") && IpcModeContainer(host.IpcMode) is null)
            throw BadRequest($"invalid IPC mode: {host.IpcMode}");
        if (host.PidMode is not ("" or "host") && PidModeContainer(host.PidMode) is null)
            throw BadRequest($"invalid --pid: \"{host.PidMode}\"");
        if (host.UTSMode is not ("" or "host")) throw NotSupported("HostConfig.UTSMode", $"uts mode `{host.UTSMode}`");
        if (host.CgroupnsMode is not ("" or "private" or "host")) throw BadRequest($"invalid cgroup namespace mode: {host.CgroupnsMode}");
        // The driver and options the container will have: dockerd's mergeAndVerifyLogConfig gives one that names no
        // driver the daemon's, and one of the daemon's driver the daemon's options it does not set (ContainerService.CreateAsync).
        string logDriver = host.LogConfig.Type is "" ? options.LogDriver : host.LogConfig.Type;
        if (logDriver is not (LogLimits.JsonFileDriver or LogLimits.LocalDriver or SyslogDriver.Name or GelfDriver.Name or FluentdDriver.Name or JournaldDriver.Name or ContainerService.NoLogDriver))
            throw NotSupported("HostConfig.LogConfig.Type", $"the `{host.LogConfig.Type}` logging driver (json-file, local, syslog, gelf, fluentd, journald and none are served)");
        // dockerd validates no options for "none" (they have nothing to act on) and neither does berthd.
        if (logDriver != ContainerService.NoLogDriver)
        {
            var logOpts = new Dictionary<string, string>(host.LogConfig.Config ?? [], StringComparer.Ordinal);
            if (logDriver == options.LogDriver)
                foreach (var (key, value) in options.LogOpts) logOpts.TryAdd(key, value);
            if (LogLimits.Check(logDriver, logOpts) is { } error) throw BadRequest(error);
        }
        if (host.Mounts is not null)
            foreach (MountJson m in host.Mounts)
            {
                RefuseUnknown("HostConfig.Mounts[].", m.Unknown);
                if (m.Type is not ("bind" or "tmpfs" or "volume")) throw NotSupported("HostConfig.Mounts", $"mounts of type `{m.Type}` (bind, volume and tmpfs are served)");
                if (string.IsNullOrEmpty(m.Target)) throw BadRequest("Mounts: Target must not be empty");
                if (!m.Target.StartsWith('/')) throw BadRequest($"invalid mount config for type \"{m.Type}\": invalid mount path: '{m.Target}' mount path must be absolute");
                if (m.Type != "volume" && m.VolumeOptions is not null) throw BadRequest($"invalid mount config for type \"{m.Type}\": VolumeOptions must not be specified");
                if (m.Type == "volume") CheckVolumeMount(m);
                if (m.Type == "bind" && !Path.IsPathRooted(m.Source)) throw BadRequest($"invalid mount config for type \"bind\": invalid mount path: '{m.Source}' mount path must be absolute");
                if (m.Type == "bind" && !Path.Exists(m.Source)) throw BadRequest($"invalid mount config for type \"bind\": bind source path does not exist: {m.Source}");
                if (m.Type == "bind") _ = BindPropagation(m);
            }
        foreach (string dns in host.Dns ?? [])
            if (!System.Net.IPAddress.TryParse(dns, out _)) throw BadRequest($"invalid DNS server address `{dns}`");
        // Each is one word of a resolv.conf line: a space or newline would write other lines.
        foreach (string word in (host.DnsSearch ?? []).Concat(host.DnsOptions ?? []))
            if (word.Length == 0 || word.Any(char.IsWhiteSpace)) throw BadRequest($"invalid DNS search domain or option `{word}`: empty or with white space");
        try
        {
            ContainerSpecFactory.ExtraHosts(host);
        }
        catch (Berth.Images.ImagesException e)
        {
            throw BadRequest(e.Message);
        }
        CheckDevices(host);
        foreach (string bind in host.Binds ?? [])
            ParseBind(bind);
        foreach (string opt in host.SecurityOpt ?? [])
            ParseSecurityOpt(opt, checkProfile: true);
        if (host.Runtime is { Length: > 0 } runtime && options.RuntimePath(runtime) is null)
            throw BadRequest($"unknown or invalid runtime name: {runtime}");
        CheckResources(host);
        CheckBlockIo(host, warnings, ContainerStats.BlockIo);
        CheckCpuRealtime(host, warnings, CpuRealtimeSupported.Value);
        if ((host.CgroupParent ?? "").Split('/').Any(part => part is "." or ".."))
            throw BadRequest($"invalid cgroup parent `{host.CgroupParent}`: `.` and `..` are not allowed in it");
    }

    /// <summary>
    /// --blkio-weight, --blkio-weight-device and the --device-{read,write}-{bps,iops} throttles: ranges and
    /// device paths checked; what the host's cgroups cannot do is discarded with dockerd's warning
    /// (weights need CFQ or BFQ on cgroup v1, which virtual disks on mq-deadline do not have).
    /// </summary>
    public static void CheckBlockIo(HostConfigJson host, List<string> warnings, Berth.Cgroups.BlockIoSupport support)
    {
        if (host.BlkioWeight is > 0 and (< 10 or > 1000)) throw BadRequest("Range of blkio weight is from 10 to 1000");
        foreach (WeightDeviceJson d in host.BlkioWeightDevice ?? [])
        {
            if (d.Weight is < 10 or > 1000) throw BadRequest($"invalid weight for device {d.Path}: range of blkio weight is from 10 to 1000");
            BlockDevice(d.Path);
        }
        foreach (ThrottleDeviceJson d in new[] { host.BlkioDeviceReadBps, host.BlkioDeviceWriteBps, host.BlkioDeviceReadIOps, host.BlkioDeviceWriteIOps }.SelectMany(l => l ?? []))
            BlockDevice(d.Path);

        if (!support.Weight)
        {
            if (host.BlkioWeight > 0)
            {
                warnings.Add("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.");
                host.BlkioWeight = 0;
            }
            if (host.BlkioWeightDevice is { Count: > 0 })
            {
                warnings.Add("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.");
                host.BlkioWeightDevice = null;
            }
        }
        if (!support.Throttle)
        {
            // dockerd's wording for each throttle it discards.
            if (host.BlkioDeviceReadBps is { Count: > 0 }) warnings.Add(ThrottleDiscarded("BPS Block I/O read limit", "Block I/O BPS read limit"));
            if (host.BlkioDeviceWriteBps is { Count: > 0 }) warnings.Add(ThrottleDiscarded("BPS Block I/O write limit", "Block I/O BPS write limit"));
            if (host.BlkioDeviceReadIOps is { Count: > 0 }) warnings.Add(ThrottleDiscarded("IOPS Block read limit", "Block I/O IOPS read limit"));
            if (host.BlkioDeviceWriteIOps is { Count: > 0 }) warnings.Add(ThrottleDiscarded("IOPS Block write limit", "Block I/O IOPS write limit"));
            (host.BlkioDeviceReadBps, host.BlkioDeviceWriteBps, host.BlkioDeviceReadIOps, host.BlkioDeviceWriteIOps) = (null, null, null, null);
        }
    }

    private static string ThrottleDiscarded(string what, string limit)
        => $"Your kernel does not support {what} or the cgroup is not mounted. {limit} discarded.";

    /// <summary>A MAC address as docker takes it (six hex pairs separated by colons), or a 400.</summary>
    public static string CheckMacAddress(string text)
    {
        string[] parts = text.Split(':');
        if (parts.Length != 6 || parts.Any(p => p.Length != 2 || !p.All(char.IsAsciiHexDigit)))
            throw BadRequest($"invalid MAC address: {text}");
        if ((Convert.ToByte(parts[0], 16) & 1) != 0) throw BadRequest($"invalid MAC address: {text}: a multicast address cannot be an interface's");
        return text.ToLowerInvariant();
    }

    /// <summary>The major and minor numbers of the block device at <paramref name="path"/> (symlinks followed), or a 400 naming it.</summary>
    public static (long Major, long Minor) BlockDevice(string path)
    {
        try
        {
            return Berth.Images.Engine.HostDevices.BlockDeviceNumbers(path);
        }
        catch (Berth.Images.ImagesException e)
        {
            throw BadRequest($"invalid device path for a blkio limit: {e.Message}");
        }
    }

    /// <summary>
    /// --device and --device-cgroup-rule: the permissions, the rules' format, and that each host
    /// path is a device node (or a directory of them) now, so that a typo fails the create and
    /// leaves no container; the start looks again, as the node may have gone since.
    /// </summary>
    private static void CheckDevices(HostConfigJson host)
    {
        try
        {
            foreach (DeviceMappingJson d in host.Devices ?? [])
            {
                if (string.IsNullOrEmpty(d.PathOnHost)) throw BadRequest("invalid device mapping: PathOnHost is empty");
                if (d.CgroupPermissions.Any(c => c is not ('r' or 'w' or 'm')))
                    throw BadRequest($"invalid device permissions \"{d.CgroupPermissions}\" for {d.PathOnHost}: only r, w and m");
                Berth.Images.Engine.HostDevices.FromPath(d.PathOnHost, string.IsNullOrEmpty(d.PathInContainer) ? d.PathOnHost : d.PathInContainer);
            }
            foreach (string rule in host.DeviceCgroupRules ?? [])
                Berth.Images.Engine.HostDevices.ParseCgroupRule(rule);
        }
        catch (Berth.Images.ImagesException e)
        {
            throw BadRequest(e.Message);
        }
    }

    /// <summary>
    /// dockerd's caps.NormalizeLegacyCapabilities: ALL, or a known capability with or without CAP_, in any case;
    /// an unknown one is refused at create rather than failing the start.
    /// </summary>
    private static void CheckCapabilities(string field, List<string>? capabilities)
    {
        foreach (string capability in capabilities ?? [])
        {
            string name = capability.ToUpperInvariant();
            if (name == "ALL") continue;
            if (!name.StartsWith("CAP_", StringComparison.Ordinal)) name = "CAP_" + name;
            if (!Berth.Oci.Capabilities.TryParse(name, out _)) throw BadRequest($"invalid {field}: unknown capability: \"{name}\"");
        }
    }

    /// <summary>dockerd's restart policy rules (create and update).</summary>
    public static void CheckRestartPolicy(RestartPolicyJson policy)
    {
        if (policy.Name is not ("" or "no" or "always" or "unless-stopped" or "on-failure"))
            throw BadRequest($"invalid restart policy '{policy.Name}'");
        if (policy.MaximumRetryCount < 0) throw BadRequest("invalid restart policy: maximum retry count cannot be negative");
        if (policy.MaximumRetryCount > 0 && policy.Name != "on-failure")
            throw BadRequest($"invalid restart policy: maximum retry count can only be used with 'on-failure'");
    }

    /// <summary>dockerd's checks of the cgroup limits (create, and update on the merged result).</summary>
    /// <param name="update">An update: a swap limit without a memory limit is let through (dockerd checks that at create only).</param>
    public static void CheckResources(HostConfigJson host, bool update = false)
    {
        if (host.Memory < 0 || host.MemorySwap < -1) throw BadRequest("invalid memory limit");
        if (host.Memory is > 0 and < 6 * 1024 * 1024) throw BadRequest("Minimum memory limit allowed is 6MB");
        if (host.Memory == 0 && host.MemorySwap > 0 && !update)
            throw BadRequest("You should always set the Memory limit when using Memoryswap limit, see usage");
        CheckCpuset(host.CpusetCpus, "cpus", "CPUs", CpusetAvailable.Value.Cpus);
        CheckCpuset(host.CpusetMems, "mems", "memory nodes", CpusetAvailable.Value.Mems);
        if (host.Memory > 0 && host.MemorySwap > 0 && host.MemorySwap < host.Memory)
            throw BadRequest("Minimum memoryswap limit should be larger than memory limit, see usage");
        if (host.MemoryReservation < 0) throw BadRequest("invalid memory reservation");
        if (host.NanoCpus < 0) throw BadRequest("invalid CPU count");
        if (host.NanoCpus > 0 && (host.CpuPeriod > 0 || host.CpuQuota > 0))
            throw BadRequest("Conflicting options: Nano CPUs and CPU Period cannot both be set");
        if (host.NanoCpus > (long)Environment.ProcessorCount * 1_000_000_000)
            throw BadRequest($"Range of CPUs is from 0.01 to {Environment.ProcessorCount}.00, as there are only {Environment.ProcessorCount} CPUs available");
        if (host.CpuShares < 0 || host.CpuPeriod < 0 || host.CpuQuota < -1) throw BadRequest("invalid CPU shares, period or quota");
        // The kernel's CFS bounds, refused here as dockerd does rather than by the cgroup write at start.
        if (host.CpuPeriod != 0 && host.CpuPeriod is < 1000 or > 1_000_000)
            throw BadRequest("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
        if (host.CpuQuota is > 0 and < 1000) throw BadRequest("CPU cfs quota can not be less than 1ms (i.e. 1000)");
        if (host.MemorySwappiness is < -1 or > 100) throw BadRequest($"Invalid value: {host.MemorySwappiness}, valid memory swappiness range is 0-100");
    }

    /// <summary>
    /// The CPUs and memory nodes containers may be given (dockerd's sysinfo: the root cpuset group's,
    /// <c>cpuset.cpus</c>/<c>cpuset.mems</c> on cgroup v1, the <c>.effective</c> files on v2; the
    /// system's online lists when neither is there).
    /// </summary>
    internal static readonly Lazy<(string Cpus, string Mems)> CpusetAvailable = new(() =>
    {
        static string First(params string[] paths)
            => paths.Where(File.Exists).Select(p => File.ReadAllText(p).Trim()).FirstOrDefault(t => t.Length > 0) ?? "";
        return (First("/sys/fs/cgroup/cpuset/cpuset.cpus", "/sys/fs/cgroup/cpuset.cpus.effective", "/sys/devices/system/cpu/online"),
            First("/sys/fs/cgroup/cpuset/cpuset.mems", "/sys/fs/cgroup/cpuset.mems.effective", "/sys/devices/system/node/online") is { Length: > 0 } mems ? mems : "0");
    });

    /// <summary>
    /// --cpuset-cpus/--cpuset-mems as dockerd checks them at create and update: a list of numbers
    /// and ranges (parsers.ParseUintList), each of them available; a runtime's cgroup write error
    /// at start otherwise.
    /// </summary>
    internal static void CheckCpuset(string? requested, string what, string noun, string available)
    {
        if (string.IsNullOrEmpty(requested)) return;
        HashSet<int> have = ParseUintList(available) ?? [];
        List<(int Low, int High)> ranges = ParseUintRanges(requested)
            ?? throw BadRequest($"Invalid value {requested} for cpuset {what}: invalid format: {requested}");
        foreach ((int low, int high) in ranges)
            if (high - low > have.Count || Enumerable.Range(low, high - low + 1).Any(n => !have.Contains(n)))
                throw BadRequest($"Requested {noun} are not available - requested {requested}, available: {available}");
    }

    private static HashSet<int>? ParseUintList(string list)
        => ParseUintRanges(list)?.SelectMany(r => Enumerable.Range(r.Low, Math.Min(r.High - r.Low, 1 << 16) + 1)).ToHashSet();

    /// <summary>Go's parsers.ParseUintList: comma-separated <c>N</c> or <c>N-M</c> (N ≤ M); null when malformed.</summary>
    private static List<(int Low, int High)>? ParseUintRanges(string list)
    {
        var ranges = new List<(int, int)>();
        foreach (string item in list.Split(','))
        {
            string[] bounds = item.Split('-', 2);
            if (!int.TryParse(bounds[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int low)) return null;
            int high = low;
            if (bounds.Length == 2 && !int.TryParse(bounds[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out high)) return null;
            if (high < low) return null;
            ranges.Add((low, high));
        }
        return ranges;
    }

    /// <summary>Where cgroup v1's cpu controller is mounted on this host (the real-time files live there).</summary>
    public const string CpuHierarchy = "/sys/fs/cgroup/cpu";

    /// <summary>Real-time group scheduling is there (probed once, as BlockIoSupport is).</summary>
    internal static readonly Lazy<bool> CpuRealtimeSupported = new(() => File.Exists(Path.Combine(CpuHierarchy, "cpu.rt_runtime_us")));

    /// <summary>
    /// dockerd's checks of --cpu-rt-period/--cpu-rt-runtime: a host without real-time group
    /// scheduling (cgroup v2, or a kernel without CONFIG_RT_GROUP_SCHED) discards them with its
    /// warning; a runtime above the period is refused.
    /// </summary>
    public static void CheckCpuRealtime(HostConfigJson host, List<string> warnings, bool supported)
    {
        if (host.CpuRealtimePeriod < 0 || host.CpuRealtimeRuntime < -1) throw BadRequest("invalid CPU real-time period or runtime");
        if (host.CpuRealtimePeriod > 0 && !supported)
        {
            warnings.Add("Your kernel does not support cgroup cpu real-time period. Period discarded.");
            host.CpuRealtimePeriod = 0;
        }
        if (host.CpuRealtimeRuntime > 0 && !supported)
        {
            warnings.Add("Your kernel does not support cgroup cpu real-time runtime. Runtime discarded.");
            host.CpuRealtimeRuntime = 0;
        }
        if (host.CpuRealtimePeriod != 0 && host.CpuRealtimeRuntime != 0 && host.CpuRealtimeRuntime > host.CpuRealtimePeriod)
            throw BadRequest("cpu real-time runtime cannot be higher than cpu real-time period");
    }

    /// <summary>dockerd's validateHealthCheck: each duration 0 (inherit) or at least 1ms, no negative retries.</summary>
    private static void CheckHealthcheck(HealthConfigJson? health)
    {
        if (health is null) return;
        RefuseUnknown("Healthcheck.", health.Unknown);
        const long minimum = 1_000_000; // containertypes.MinimumDuration, 1ms
        if (health.Interval != 0 && health.Interval < minimum) throw BadRequest("Interval in Healthcheck cannot be less than 1ms");
        if (health.Timeout != 0 && health.Timeout < minimum) throw BadRequest("Timeout in Healthcheck cannot be less than 1ms");
        if (health.Retries < 0) throw BadRequest("Retries in Healthcheck cannot be negative");
        if (health.StartPeriod != 0 && health.StartPeriod < minimum) throw BadRequest("StartPeriod in Healthcheck cannot be less than 1ms");
        if (health.StartInterval != 0 && health.StartInterval < minimum) throw BadRequest("StartInterval in Healthcheck cannot be less than 1ms");
    }

    /// <summary>A Mounts entry of type volume (moby's mount validation): a volume name or none, no bind or tmpfs options, the local driver, a subpath that stays inside a named volume.</summary>
    private static void CheckVolumeMount(MountJson m)
    {
        if (m.BindOptions is { } b && IsSet(b)) throw BadRequest("invalid mount config for type \"volume\": BindOptions must not be specified");
        if (m.TmpfsOptions is not null) throw BadRequest("invalid mount config for type \"volume\": TmpfsOptions must not be specified");
        if (m.Source.Length > 0) Volumes.VolumeService.CheckName(m.Source);
        if (m.VolumeOptions is not { } o) return;
        if (!string.IsNullOrEmpty(o.Subpath))
        {
            // moby's words; the subpath is resolved (safely) inside the volume only at start.
            if (m.Source.Length == 0) throw BadRequest("invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes");
            if (!Volumes.VolumeSubpath.IsLocal(o.Subpath)) throw BadRequest("invalid mount config for type \"volume\": subpath must be a relative path within the volume");
        }
        if (o.DriverConfig is { } d)
        {
            if (d.Name is not ("" or Volumes.VolumeService.LocalDriver))
                throw ApiException.NotFound($"{(m.Source.Length > 0 ? $"create {m.Source}: " : "")}error looking up volume plugin {d.Name}: plugin \"{d.Name}\" not found"); // dockerd's: no plugins here
            Volumes.LocalVolumeMount.Validate(d.Options);
        }
    }

    /// <summary>True when a <c>-v</c> spec names a volume (its source is not an absolute host path).</summary>
    public static bool IsVolumeBind(string bind) => !bind.StartsWith('/');

    /// <summary>
    /// <c>--volumes-from CONTAINER[:ro|rw]</c> (z/Z accepted and ignored, as in binds); propagation
    /// and nocopy are refused as dockerd refuses them there.
    /// </summary>
    public static (string Container, bool ReadOnly) ParseVolumesFrom(string spec)
    {
        int colon = spec.IndexOf(':');
        string container = colon < 0 ? spec : spec[..colon];
        if (container.Length == 0) throw BadRequest($"invalid --volumes-from '{spec}': no container");
        bool readOnly = false;
        if (colon >= 0)
            foreach (string mode in spec[(colon + 1)..].Split(','))
                switch (mode)
                {
                    case "ro": readOnly = true; break;
                    case "rw" or "z" or "Z": break;
                    case "private" or "rprivate" or "shared" or "rshared" or "slave" or "rslave":
                        throw BadRequest($"invalid --volumes-from '{spec}': propagation property is not allowed when importing volumes from another container");
                    case "nocopy": throw BadRequest($"invalid --volumes-from '{spec}': copy mode is not allowed when importing volumes from another container");
                    default: throw BadRequest($"invalid mode: {mode}");
                }
        return (container, readOnly);
    }

    /// <summary><c>/src:/dst[:ro|rw][,propagation]</c> with an absolute source, or <c>name:/dst[:ro|rw|nocopy]</c> for a named volume.</summary>
    /// <param name="createMissingSource">At start (not at create, so a refused create leaves nothing): a missing source directory is made, as dockerd's -v does.</param>
    public static (string Source, string Destination, bool ReadOnly, string Propagation) ParseBind(string bind, bool createMissingSource = false)
    {
        string[] parts = bind.Split(':');
        if (parts.Length is < 2 or > 3) throw BadRequest($"invalid volume specification: '{bind}'");
        string source = parts[0], destination = parts[1];
        bool volume = !source.StartsWith('/');
        if (volume) Volumes.VolumeService.CheckName(source);
        if (!destination.StartsWith('/')) throw BadRequest($"invalid volume specification: '{bind}': destination must be an absolute path");
        bool readOnly = false;
        string propagation = "rprivate";
        if (parts.Length == 3)
            foreach (string mode in parts[2].Split(','))
                switch (mode)
                {
                    case "ro": readOnly = true; break;
                    case "rw": readOnly = false; break;
                    case "z" or "Z": break; // SELinux relabel: no SELinux on a host where berthd runs without it
                    case "private" or "rprivate" or "shared" or "rshared" or "slave" or "rslave" when volume:
                        throw BadRequest($"invalid mode: {mode}: propagation cannot be set on a volume ('{bind}')");
                    case "private" or "rprivate" or "shared" or "rshared" or "slave" or "rslave": propagation = mode; break;
                    case "nocopy": break;
                    default: throw BadRequest($"invalid mode: {mode}");
                }
        if (createMissingSource && !volume && !Directory.Exists(source) && !File.Exists(source))
            Directory.CreateDirectory(source);
        return (source, destination, readOnly, propagation);
    }

    private static readonly string[] PropagationModes = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

    /// <summary>A Mounts entry of type bind: BindOptions.Propagation (<c>--mount bind-propagation=</c>), rprivate when not given.</summary>
    public static string BindPropagation(MountJson m)
    {
        if (m.BindOptions is not { ValueKind: JsonValueKind.Object } options
            || !options.TryGetProperty("Propagation", out JsonElement value) || value.ValueKind == JsonValueKind.Null)
            return "rprivate";
        string? mode = value.ValueKind == JsonValueKind.String ? value.GetString() : value.ToString();
        if (string.IsNullOrEmpty(mode)) return "rprivate";
        return PropagationModes.Contains(mode) ? mode : throw BadRequest($"invalid mount config for type \"bind\": invalid propagation mode: {mode}");
    }

    /// <summary>The container named by <c>--pid container:NAME</c>, null for another mode.</summary>
    public static string? PidModeContainer(string? mode) => ContainerOfMode(mode);

    /// <summary>The container named by <c>--ipc container:NAME</c>, null for another mode.</summary>
    public static string? IpcModeContainer(string? mode) => ContainerOfMode(mode);

    private static string? ContainerOfMode(string? mode)
        => mode is not null && mode.StartsWith("container:", StringComparison.Ordinal) && mode.Length > "container:".Length ? mode["container:".Length..] : null;

    /// <summary>
    /// seccomp=unconfined|builtin|PROFILE-JSON, no-new-privileges[=true|false], apparmor=unconfined,
    /// label=disable. <c>Seccomp</c> is false for unconfined, null when not given; <c>SeccompProfile</c>
    /// is a profile of the request's own (the docker CLI sends the file's JSON, not its path);
    /// <c>NoNewPrivileges</c> is null when not given (the daemon's --no-new-privileges then decides).
    /// </summary>
    public static (bool? Seccomp, DockerSeccompProfile? SeccompProfile, bool? NoNewPrivileges) ParseSecurityOpts(IEnumerable<string>? opts)
    {
        bool? seccomp = null;
        DockerSeccompProfile? profile = null;
        bool? nnp = null;
        foreach (string opt in opts ?? [])
        {
            var (key, value) = ParseSecurityOpt(opt, checkProfile: false);
            if (key == "seccomp")
            {
                seccomp = value != "unconfined";
                profile = value is "unconfined" or "builtin" ? null : ParseSeccompProfile(value);
            }
            if (key == "no-new-privileges") nnp = value is "" or "true";
        }
        return (seccomp, profile, nnp);
    }

    private static DockerSeccompProfile ParseSeccompProfile(string json)
    {
        try
        {
            return DockerSeccompProfile.Parse(json);
        }
        catch (SeccompException e)
        {
            string hint = json.TrimStart().StartsWith('{') ? "" : " (seccomp= takes the profile's JSON; the docker and berth CLIs read the file named by --security-opt seccomp=PATH and send its contents)";
            throw BadRequest($"invalid seccomp profile: {e.Message}{hint}");
        }
    }

    /// <param name="checkProfile">
    /// At create: a seccomp profile is compiled for this host with all of its rules, whatever their
    /// conditions, so that a bad action, operator, architecture or flag is refused now rather than
    /// at a start (where the rules that apply are chosen by the container's capabilities).
    /// </param>
    private static (string Key, string Value) ParseSecurityOpt(string opt, bool checkProfile)
    {
        int sep = opt.IndexOfAny(['=', ':']);
        string key = sep < 0 ? opt : opt[..sep], value = sep < 0 ? "" : opt[(sep + 1)..];
        switch (key)
        {
            case "no-new-privileges" when value is "" or "true" or "false":
                return (key, value);
            case "seccomp" when value is "unconfined" or "builtin":
                return (key, value);
            case "seccomp":
                if (checkProfile)
                {
                    DockerSeccompProfile profile = ParseSeccompProfile(value);
                    try
                    {
                        SeccompCompiler.Compile(profile.AllRules(ContainerSpecFactory.HostArch()), ContainerSpecFactory.HostArch());
                    }
                    catch (SeccompException e)
                    {
                        // The compiler names fields as in an OCI spec; the profile has them at its top level.
                        const string specPrefix = "linux.seccomp.";
                        throw BadRequest($"invalid seccomp profile: {(e.Message.StartsWith(specPrefix, StringComparison.Ordinal) ? e.Message[specPrefix.Length..] : e.Message)}");
                    }
                }
                return (key, value);
            case "apparmor" when value == "unconfined":
                return (key, value);
            case "apparmor":
                throw BadRequest($"apparmor profile `{value}` cannot be applied: AppArmor is not enabled on this host");
            case "label" when value == "disable":
                return (key, value);
            case "label":
                throw BadRequest($"SELinux label `{value}` cannot be applied: SELinux is not enabled on this host");
            default:
                throw BadRequest($"invalid --security-opt: \"{opt}\"");
        }
    }

    internal static void RefuseUnknown(string prefix, Dictionary<string, JsonElement>? unknown)
    {
        if (unknown is null) return;
        foreach (var (name, value) in unknown)
            if (IsSet(value))
                throw NotSupported(prefix + name, "this setting");
    }

    /// <summary>True when a JSON value asks for something: not null, false, 0, "", [] or {} (recursively).</summary>
    public static bool IsSet(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined or JsonValueKind.False => false,
        JsonValueKind.Number => value.GetDouble() != 0,
        JsonValueKind.String => value.GetString()!.Length > 0,
        JsonValueKind.Array => value.EnumerateArray().Any(IsSet),
        JsonValueKind.Object => value.EnumerateObject().Any(p => IsSet(p.Value)),
        _ => true,
    };

    private static ApiException NotSupported(string field, string what)
        => ApiException.BadRequest($"{field}: {what} not supported by this version of berthd");

    private static ApiException BadRequest(string message) => ApiException.BadRequest(message);
}
