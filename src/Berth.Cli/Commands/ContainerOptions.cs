using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Berth.Oci;

namespace Berth.Cli.Commands;

/// <summary>
/// The flags <c>docker create</c> and <c>docker run</c> share, and their translation into the
/// <c>POST /containers/create</c> body (Config + HostConfig + NetworkingConfig) as the docker CLI
/// builds it (cli/command/container/opts.go). Values are checked here, before anything is sent.
/// </summary>
internal sealed class ContainerOptions
{
    public readonly Option<bool> Interactive = new("--interactive", "-i") { Description = "keep STDIN open even if not attached" };
    public readonly Option<bool> Tty = new("--tty", "-t") { Description = "allocate a pseudo-TTY" };
    public readonly Option<bool> Rm = new("--rm") { Description = "automatically remove the container when it exits" };
    public readonly Option<string?> Name = new("--name") { Description = "assign a name to the container" };
    public readonly Option<string[]> Env = new("--env", "-e") { Description = "set environment variables" };
    public readonly Option<string[]> EnvFile = new("--env-file") { Description = "read in a file of environment variables" };
    public readonly Option<string[]> Volume = new("--volume", "-v") { Description = "bind mount a volume" };
    public readonly Option<string[]> Mount = new("--mount") { Description = "attach a filesystem mount to the container (type=volume|bind|tmpfs,source=…,target=…)" };
    public readonly Option<string?> Workdir = new("--workdir", "-w") { Description = "working directory inside the container" };
    public readonly Option<string?> User = new("--user", "-u") { Description = "username or UID (format: <name|uid>[:<group|gid>])" };
    public readonly Option<string?> Memory = new("--memory", "-m") { Description = "memory limit" };
    public readonly Option<string?> MemorySwap = new("--memory-swap") { Description = "swap limit equal to memory plus swap: '-1' to enable unlimited swap" };
    public readonly Option<string?> Cpus = new("--cpus") { Description = "number of CPUs" };
    public readonly Option<long?> CpuShares = new("--cpu-shares", "-c") { Description = "CPU shares (relative weight)" };
    public readonly Option<string?> CpusetCpus = new("--cpuset-cpus") { Description = "CPUs in which to allow execution (0-3, 0,1)" };
    public readonly Option<string?> CpusetMems = new("--cpuset-mems") { Description = "MEMs in which to allow execution (0-3, 0,1)" };
    public readonly Option<long?> CpuPeriod = new("--cpu-period") { Description = "limit CPU CFS (Completely Fair Scheduler) period" };
    public readonly Option<long?> CpuQuota = new("--cpu-quota") { Description = "limit CPU CFS (Completely Fair Scheduler) quota" };
    public readonly Option<long?> CpuRtPeriod = new("--cpu-rt-period") { Description = "limit CPU real-time period in microseconds" };
    public readonly Option<long?> CpuRtRuntime = new("--cpu-rt-runtime") { Description = "limit CPU real-time runtime in microseconds" };
    public readonly Option<string?> MemoryReservation = new("--memory-reservation") { Description = "memory soft limit" };
    public readonly Option<long?> MemorySwappiness = new("--memory-swappiness") { Description = "tune container memory swappiness (0 to 100)" };
    public readonly Option<bool> OomKillDisable = new("--oom-kill-disable") { Description = "disable OOM Killer" };
    public readonly Option<int> OomScoreAdj = new("--oom-score-adj") { Description = "tune host's OOM preferences (-1000 to 1000)" };
    public readonly Option<string?> Cgroupns = new("--cgroupns") { Description = "cgroup namespace to use (host|private)" };
    public readonly Option<string?> Domainname = new("--domainname") { Description = "container NIS domain name" };
    public readonly Option<bool> PublishAll = new("--publish-all", "-P") { Description = "publish all exposed ports to random ports" };
    public readonly Option<long?> PidsLimit = new("--pids-limit") { Description = "tune container pids limit (set -1 for unlimited)" };
    public readonly Option<bool> Init = new("--init") { Description = "run an init inside the container that forwards signals and reaps processes" };
    public readonly Option<bool> ReadOnly = new("--read-only") { Description = "mount the container's root filesystem as read only" };
    public readonly Option<string[]> CapAdd = new("--cap-add") { Description = "add Linux capabilities" };
    public readonly Option<string[]> CapDrop = new("--cap-drop") { Description = "drop Linux capabilities" };
    public readonly Option<string[]> SecurityOpt = new("--security-opt") { Description = "security options" };
    public readonly Option<string[]> Ulimit = new("--ulimit") { Description = "ulimit options" };
    public readonly Option<string?> Entrypoint = new("--entrypoint") { Description = "overwrite the default ENTRYPOINT of the image" };
    public readonly Option<string?> Hostname = new("--hostname", "-h") { Description = "container host name" };
    public readonly Option<bool> Privileged = new("--privileged") { Description = "give extended privileges to this container" };
    public readonly Option<string[]> Tmpfs = new("--tmpfs") { Description = "mount a tmpfs directory" };
    public readonly Option<string[]> Label = new("--label", "-l") { Description = "set meta data on a container" };
    public readonly Option<string?> Network = new("--network") { Description = "connect a container to a network" };
    public readonly Option<string[]> Publish = new("--publish", "-p") { Description = "publish a container's port(s) to the host" };
    public readonly Option<string[]> Expose = new("--expose") { Description = "expose a port or a range of ports" };
    public readonly Option<string?> Restart = new("--restart") { Description = "restart policy to apply when a container exits (no, always, on-failure[:N], unless-stopped)" };
    public readonly Option<string?> StopSignal = new("--stop-signal") { Description = "signal to stop the container" };
    public readonly Option<int?> StopTimeout = new("--stop-timeout") { Description = "timeout (in seconds) to stop a container" };
    public readonly Option<string?> LogDriver = new("--log-driver") { Description = "logging driver for the container" };
    public readonly Option<string[]> LogOpt = new("--log-opt") { Description = "log driver options" };
    public readonly Option<string[]> Attach = new("--attach", "-a") { Description = "attach to STDIN, STDOUT or STDERR" };
    public readonly Option<string?> Platform = new("--platform") { Description = "set platform if server is multi-platform capable" };
    public readonly Option<string?> Pull = new("--pull") { Description = "pull image before running (\"always\", \"missing\", \"never\")", DefaultValueFactory = _ => "missing" };
    public readonly Option<string[]> AddHost = new("--add-host") { Description = "add a custom host-to-IP mapping (host:ip, host=ip, host:host-gateway)" };
    public readonly Option<string[]> Sysctl = new("--sysctl") { Description = "sysctl options" };
    public readonly Option<string?> ShmSize = new("--shm-size") { Description = "size of /dev/shm" };
    public readonly Option<string[]> GroupAdd = new("--group-add") { Description = "add additional groups to join" };
    public readonly Option<string[]> NetworkAlias = new("--network-alias") { Description = "add network-scoped alias for the container" };
    public readonly Option<string?> Ip = new("--ip") { Description = "IPv4 address (e.g., 172.30.100.104)" };
    public readonly Option<string?> CidFile = new("--cidfile") { Description = "write the container ID to the file" };
    public readonly Option<string[]> VolumesFrom = new("--volumes-from") { Description = "mount volumes from the specified container(s) (CONTAINER[:ro|rw])" };
    public readonly Option<string[]> Device = new("--device") { Description = "add a host device to the container (HOST[:CONTAINER][:PERMISSIONS])" };
    public readonly Option<string[]> DeviceCgroupRule = new("--device-cgroup-rule") { Description = "add a rule to the cgroup allowed devices list ('c 42:* rwm')" };
    public readonly Option<string[]> Dns = new("--dns") { Description = "set custom DNS servers" };
    public readonly Option<string[]> DnsSearch = new("--dns-search") { Description = "set custom DNS search domains" };
    public readonly Option<string[]> DnsOption = new("--dns-option") { Description = "set DNS options" };
    public readonly Option<string?> Runtime = new("--runtime") { Description = "runtime to use for this container" };
    public readonly Option<string?> Pid = new("--pid") { Description = "PID namespace to use" };
    public readonly Option<string?> Ipc = new("--ipc") { Description = "IPC mode to use" };
    public readonly Option<string?> Uts = new("--uts") { Description = "UTS namespace to use" };
    public readonly Option<bool> Quiet = new("--quiet", "-q") { Description = "suppress the pull output" };
    public readonly Option<string?> HealthCmd = new("--health-cmd") { Description = "command to run to check health" };
    public readonly Option<string?> HealthInterval = new("--health-interval") { Description = "time between running the check (ms|s|m|h) (default 0s)" };
    public readonly Option<string?> HealthTimeout = new("--health-timeout") { Description = "maximum time to allow one check to run (ms|s|m|h) (default 0s)" };
    public readonly Option<int> HealthRetries = new("--health-retries") { Description = "consecutive failures needed to report unhealthy" };
    public readonly Option<string?> HealthStartPeriod = new("--health-start-period") { Description = "start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)" };
    public readonly Option<string?> HealthStartInterval = new("--health-start-interval") { Description = "time between running the check during the start period (ms|s|m|h) (default 0s)" };
    public readonly Option<bool> NoHealthcheck = new("--no-healthcheck") { Description = "disable any container-specified HEALTHCHECK" };
    public readonly Option<string?> CgroupParent = new("--cgroup-parent") { Description = "optional parent cgroup for the container" };
    public readonly Option<string[]> LabelFile = new("--label-file") { Description = "read in a line delimited file of labels" };
    public readonly Option<string[]> Annotation = new("--annotation") { Description = "add an annotation to the container (passed through to the OCI runtime)" };
    public readonly Option<string?> MacAddress = new("--mac-address") { Description = "container MAC address (e.g., 92:d0:c6:0a:29:33)" };
    public readonly Option<string?> Userns = new("--userns") { Description = "user namespace to use" };
    public readonly Option<ushort?> BlkioWeight = new("--blkio-weight") { Description = "block IO (relative weight), between 10 and 1000, or 0 to disable" };
    public readonly Option<string[]> BlkioWeightDevice = new("--blkio-weight-device") { Description = "block IO weight (relative device weight) (DEVICE:WEIGHT)" };
    public readonly Option<string[]> DeviceReadBps = new("--device-read-bps") { Description = "limit read rate (bytes per second) from a device (DEVICE:RATE)" };
    public readonly Option<string[]> DeviceWriteBps = new("--device-write-bps") { Description = "limit write rate (bytes per second) to a device (DEVICE:RATE)" };
    public readonly Option<string[]> DeviceReadIops = new("--device-read-iops") { Description = "limit read rate (IO per second) from a device (DEVICE:RATE)" };
    public readonly Option<string[]> DeviceWriteIops = new("--device-write-iops") { Description = "limit write rate (IO per second) to a device (DEVICE:RATE)" };
    public readonly Option<string[]> Link = new("--link") { Description = "add link to another container (NAME[:ALIAS])" };
    // Sent as docker sends them; berthd says which it cannot do (a 400 naming the field).
    public readonly Option<string?> Ip6 = new("--ip6") { Description = "IPv6 address (e.g., 2001:db8::33)" };
    public readonly Option<string[]> LinkLocalIp = new("--link-local-ip") { Description = "container IPv4/IPv6 link-local addresses (not supported by berthd)" };
    public readonly Option<string[]> StorageOpt = new("--storage-opt") { Description = "storage driver options for the container (not supported by berthd)" };
    public readonly Option<bool> UseApiSocket = new("--use-api-socket") { Description = "Bind mount the daemon's API socket at /var/run/docker.sock, with the registry credentials this client holds" };
    public readonly Option<string?> Gpus = new("--gpus") { Description = "GPU devices to add to the container ('all' to pass all GPUs; not supported by berthd)" };
    public readonly Option<string?> VolumeDriver = new("--volume-driver") { Description = "optional volume driver for the container (only local)" };
    public readonly Option<bool> DisableContentTrust = new("--disable-content-trust") { Description = "skip image verification (berth does no content trust: always skipped)", DefaultValueFactory = _ => true };

    public IEnumerable<Option> All =>
    [
        Interactive, Tty, Rm, Name, Env, EnvFile, Volume, Mount, Workdir, User, Memory, MemorySwap, Cpus, CpuShares, CpusetCpus, PidsLimit,
        Init, ReadOnly, CapAdd, CapDrop, SecurityOpt, Ulimit, Entrypoint, Hostname, Privileged, Tmpfs, Label, Network, Publish,
        Expose, Restart, StopSignal, StopTimeout, LogDriver, LogOpt, Attach, Platform, Pull, AddHost, Sysctl, ShmSize, GroupAdd,
        Dns, DnsSearch, Runtime, Pid, Ipc, Uts, Quiet, HealthCmd, HealthInterval, HealthTimeout, HealthRetries, HealthStartPeriod,
        HealthStartInterval, NoHealthcheck, Device, DeviceCgroupRule, DnsOption, VolumesFrom, CidFile, NetworkAlias, Ip,
        CpusetMems, CpuPeriod, CpuQuota, CpuRtPeriod, CpuRtRuntime, MemoryReservation, MemorySwappiness, OomKillDisable, OomScoreAdj, Cgroupns, Domainname, PublishAll,
        CgroupParent, LabelFile, Annotation, MacAddress, Userns, BlkioWeight, BlkioWeightDevice, DeviceReadBps, DeviceWriteBps, DeviceReadIops,
        DeviceWriteIops, Link, Ip6, LinkLocalIp, StorageOpt, Gpus, VolumeDriver, DisableContentTrust, UseApiSocket,
    ];

    /// <summary>The create body; <paramref name="detached"/> is run's -d (create never attaches stdin).</summary>
    public JsonObject Build(ParseResult parse, string image, string[] command, bool detached, bool isRun)
    {
        bool interactive = parse.GetValue(Interactive), tty = parse.GetValue(Tty);
        string[] attach = parse.GetValue(Attach) ?? [];
        foreach (string a in attach)
            if (a.ToLowerInvariant() is not ("stdin" or "stdout" or "stderr"))
                throw new UsageException($"invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR");
        if (detached && attach.Length > 0) throw new UsageException("conflicting options: cannot specify both --attach and --detach");
        bool attachStdin = attach.Length > 0 ? attach.Any(a => a.Equals("stdin", StringComparison.OrdinalIgnoreCase)) : interactive && !detached;
        bool attachStdout = attach.Length > 0 ? attach.Any(a => a.Equals("stdout", StringComparison.OrdinalIgnoreCase)) : !detached;
        bool attachStderr = attach.Length > 0 ? attach.Any(a => a.Equals("stderr", StringComparison.OrdinalIgnoreCase)) : !detached;
        if (!isRun) attachStdin = attachStdout = attachStderr = false;
        if (!isRun && attach.Length > 0)
        {
            attachStdin = attach.Any(a => a.Equals("stdin", StringComparison.OrdinalIgnoreCase));
            attachStdout = attach.Any(a => a.Equals("stdout", StringComparison.OrdinalIgnoreCase));
            attachStderr = attach.Any(a => a.Equals("stderr", StringComparison.OrdinalIgnoreCase));
        }

        var env = new JsonArray();
        foreach (string file in parse.GetValue(EnvFile) ?? [])
            foreach (string line in File.ReadAllLines(file))
            {
                string l = line.TrimStart();
                if (l.Length == 0 || l.StartsWith('#')) continue;
                if (EnvValue(l) is { } v) env.Add((JsonNode)(v));
            }
        foreach (string e in parse.GetValue(Env) ?? [])
            if (EnvValue(e) is { } v) env.Add((JsonNode)(v));

        var binds = new JsonArray();
        var volumes = new JsonObject();
        foreach (string v in parse.GetValue(Volume) ?? [])
        {
            string[] parts = v.Split(':');
            if (parts.Length == 1) volumes[v] = new JsonObject();
            else if (parts.Length is 2 or 3 && parts[0].Length > 0 && parts[1].StartsWith('/')) binds.Add((JsonNode)(v));
            else throw new UsageException($"invalid volume specification: '{v}'");
        }

        var mounts = new JsonArray();
        foreach (string spec in parse.GetValue(Mount) ?? []) mounts.Add((JsonNode)ParseMount(spec));

        var exposed = new JsonObject();
        var bindings = new JsonObject();
        foreach (string e in parse.GetValue(Expose) ?? []) exposed[e.Contains('/') ? e : e + "/tcp"] = new JsonObject();
        foreach (string p in parse.GetValue(Publish) ?? [])
        {
            (string port, string hostIp, string hostPort) = ParsePublish(p);
            exposed[port] = new JsonObject();
            if (bindings[port] is not JsonArray list) bindings[port] = list = [];
            list.Add((JsonNode)(new JsonObject { ["HostIp"] = hostIp, ["HostPort"] = hostPort }));
        }

        var labels = new JsonObject();
        foreach (string l in (parse.GetValue(LabelFile) ?? []).SelectMany(ReadLabelFile).Concat(parse.GetValue(Label) ?? []))
        {
            int eq = l.IndexOf('=');
            labels[eq < 0 ? l : l[..eq]] = eq < 0 ? "" : l[(eq + 1)..];
        }

        var ulimits = new JsonArray();
        foreach (string u in parse.GetValue(Ulimit) ?? []) ulimits.Add((JsonNode)(ParseUlimit(u)));

        var tmpfs = new JsonObject();
        foreach (string t in parse.GetValue(Tmpfs) ?? [])
        {
            int colon = t.IndexOf(':');
            tmpfs[colon < 0 ? t : t[..colon]] = colon < 0 ? "" : t[(colon + 1)..];
        }

        var logConfig = new JsonObject { ["Type"] = parse.GetValue(LogDriver) ?? "", ["Config"] = new JsonObject() };
        foreach (string o in parse.GetValue(LogOpt) ?? [])
        {
            int eq = o.IndexOf('=');
            if (eq <= 0) throw new UsageException($"invalid key-value pair for --log-opt: {o}");
            logConfig["Config"]![o[..eq]] = o[(eq + 1)..];
        }

        var sysctls = new JsonObject();
        foreach (string s in parse.GetValue(Sysctl) ?? [])
        {
            int eq = s.IndexOf('=');
            if (eq <= 0) throw new UsageException($"invalid argument \"{s}\" for \"--sysctl\" flag: sysctl '{s}' is not allowed");
            sysctls[s[..eq]] = s[(eq + 1)..];
        }

        var securityOpt = new JsonArray();
        foreach (string s in parse.GetValue(SecurityOpt) ?? []) securityOpt.Add((JsonNode)(SecurityOption(s)));

        JsonArray? entrypoint = null;
        if (parse.GetResult(Entrypoint) is not null)
            entrypoint = [(JsonNode)(parse.GetValue(Entrypoint) ?? "")];

        JsonObject restart = RestartPolicy(parse.GetValue(Restart) is { Length: > 0 } r ? r : "no");
        bool autoRemove = parse.GetValue(Rm);
        if (autoRemove && restart["Name"]!.GetValue<string>() != "no")
            throw new UsageException("conflicting options: cannot specify both --restart and --rm");

        var host = new JsonObject
        {
            ["Binds"] = binds.Count > 0 ? binds : null,
            ["VolumesFrom"] = Array(parse.GetValue(VolumesFrom)),
            ["ContainerIDFile"] = parse.GetValue(CidFile) ?? "",
            ["Mounts"] = mounts.Count > 0 ? mounts : null,
            ["LogConfig"] = logConfig,
            ["NetworkMode"] = parse.GetValue(Network) ?? "default",
            ["PortBindings"] = bindings,
            ["RestartPolicy"] = restart,
            ["AutoRemove"] = autoRemove,
            ["CapAdd"] = Array(parse.GetValue(CapAdd)),
            ["CapDrop"] = Array(parse.GetValue(CapDrop)),
            ["Dns"] = Array(parse.GetValue(Dns)) ?? [],
            ["DnsSearch"] = Array(parse.GetValue(DnsSearch)) ?? [],
            ["DnsOptions"] = Array(parse.GetValue(DnsOption)) ?? [],
            ["ExtraHosts"] = Array(parse.GetValue(AddHost)?.Select(ExtraHost).ToArray()),
            ["GroupAdd"] = Array(parse.GetValue(GroupAdd)),
            ["IpcMode"] = parse.GetValue(Ipc) ?? "",
            ["PidMode"] = parse.GetValue(Pid) ?? "",
            ["UTSMode"] = parse.GetValue(Uts) ?? "",
            ["Privileged"] = parse.GetValue(Privileged),
            ["ReadonlyRootfs"] = parse.GetValue(ReadOnly),
            ["SecurityOpt"] = securityOpt.Count > 0 ? securityOpt : null,
            ["Tmpfs"] = tmpfs.Count > 0 ? tmpfs : null,
            ["Sysctls"] = sysctls.Count > 0 ? sysctls : null,
            ["Memory"] = parse.GetValue(Memory) is { } m ? ParseSize(m, "--memory") : 0,
            ["MemorySwap"] = parse.GetValue(MemorySwap) is { } ms ? (ms == "-1" ? -1 : ParseSize(ms, "--memory-swap")) : 0,
            ["NanoCpus"] = parse.GetValue(Cpus) is { } c ? NanoCpus(c) : 0,
            ["CpuShares"] = parse.GetValue(CpuShares) ?? 0,
            ["CpusetCpus"] = parse.GetValue(CpusetCpus) ?? "",
            ["CpusetMems"] = parse.GetValue(CpusetMems) ?? "",
            ["CpuPeriod"] = parse.GetValue(CpuPeriod) ?? 0,
            ["CpuQuota"] = parse.GetValue(CpuQuota) ?? 0,
            ["CpuRealtimePeriod"] = parse.GetValue(CpuRtPeriod) ?? 0,
            ["CpuRealtimeRuntime"] = parse.GetValue(CpuRtRuntime) ?? 0,
            ["MemoryReservation"] = parse.GetValue(MemoryReservation) is { } mr ? ParseSize(mr, "--memory-reservation") : 0,
            ["MemorySwappiness"] = parse.GetValue(MemorySwappiness),
            ["OomKillDisable"] = parse.GetValue(OomKillDisable),
            ["OomScoreAdj"] = parse.GetValue(OomScoreAdj),
            ["CgroupnsMode"] = parse.GetValue(Cgroupns) ?? "",
            ["PublishAllPorts"] = parse.GetValue(PublishAll),
            ["PidsLimit"] = parse.GetValue(PidsLimit) is { } pl ? pl : null,
            ["Ulimits"] = ulimits.Count > 0 ? ulimits : null,
            ["ShmSize"] = parse.GetValue(ShmSize) is { } shm ? ParseSize(shm, "--shm-size") : 0,
            ["Devices"] = new JsonArray([.. (parse.GetValue(Device) ?? []).Select(d => (JsonNode)DeviceMapping(d))]),
            ["DeviceCgroupRules"] = Array(parse.GetValue(DeviceCgroupRule)?.Select(DeviceCgroupRuleFlag).ToArray()),
        };
        if (parse.GetValue(Init)) host["Init"] = true;
        if (parse.GetValue(Runtime) is { } runtime) host["Runtime"] = runtime;
        if (!parse.GetValue(DisableContentTrust))
            throw new UsageException("--disable-content-trust=false: berth does not verify signed images (Docker Content Trust); pull by digest to pin an image");
        if (parse.GetValue(CgroupParent) is { } cgroupParent) host["CgroupParent"] = cgroupParent;
        if (parse.GetValue(Userns) is { } userns) host["UsernsMode"] = userns;
        if (parse.GetValue(VolumeDriver) is { } volumeDriver) host["VolumeDriver"] = volumeDriver;
        if (KeyValues(parse.GetValue(Annotation), "--annotation") is { } annotations) host["Annotations"] = annotations;
        if (parse.GetValue(BlkioWeight) is { } weight) host["BlkioWeight"] = weight;
        if (DeviceRates(parse.GetValue(BlkioWeightDevice), "--blkio-weight-device", "Weight", WeightValue) is { } weights) host["BlkioWeightDevice"] = weights;
        if (DeviceRates(parse.GetValue(DeviceReadBps), "--device-read-bps", "Rate", BpsValue) is { } readBps) host["BlkioDeviceReadBps"] = readBps;
        if (DeviceRates(parse.GetValue(DeviceWriteBps), "--device-write-bps", "Rate", BpsValue) is { } writeBps) host["BlkioDeviceWriteBps"] = writeBps;
        if (DeviceRates(parse.GetValue(DeviceReadIops), "--device-read-iops", "Rate", IopsValue) is { } readIops) host["BlkioDeviceReadIOps"] = readIops;
        if (DeviceRates(parse.GetValue(DeviceWriteIops), "--device-write-iops", "Rate", IopsValue) is { } writeIops) host["BlkioDeviceWriteIOps"] = writeIops;
        if (Array(parse.GetValue(Link)) is { } links) host["Links"] = links;
        if (KeyValues(parse.GetValue(StorageOpt), "--storage-opt") is { } storageOpt) host["StorageOpt"] = storageOpt;
        if (parse.GetValue(Gpus) is { } gpus)
            host["DeviceRequests"] = new JsonArray(new JsonObject { ["Driver"] = "", ["Count"] = gpus == "all" ? -1 : 0, ["DeviceIDs"] = null, ["Capabilities"] = new JsonArray(new JsonArray("gpu")), ["Options"] = new JsonObject() });

        var body = new JsonObject
        {
            ["Hostname"] = parse.GetValue(Hostname) ?? "",
            ["Domainname"] = parse.GetValue(Domainname) ?? "",
            ["User"] = parse.GetValue(User) ?? "",
            ["AttachStdin"] = attachStdin,
            ["AttachStdout"] = attachStdout,
            ["AttachStderr"] = attachStderr,
            ["ExposedPorts"] = exposed.Count > 0 ? exposed : null,
            ["Tty"] = tty,
            ["OpenStdin"] = interactive,
            ["StdinOnce"] = interactive && attachStdin,
            ["Env"] = env,
            ["Cmd"] = command.Length > 0 ? Array(command) : null,
            ["Image"] = image,
            ["Volumes"] = volumes.Count > 0 ? volumes : null,
            ["WorkingDir"] = parse.GetValue(Workdir) ?? "",
            ["Entrypoint"] = entrypoint,
            ["OnBuild"] = null,
            ["Labels"] = labels,
            ["HostConfig"] = host,
            ["NetworkingConfig"] = new JsonObject { ["EndpointsConfig"] = EndpointsConfig(parse) },
        };
        if (Healthcheck(parse) is { } health) body["Healthcheck"] = health;
        if (parse.GetValue(MacAddress) is { } mac) body["MacAddress"] = mac; // also in EndpointsConfig (API 1.44+); dockerd 20.10 reads it here
        if (parse.GetValue(StopSignal) is { } sig) body["StopSignal"] = sig;
        if (parse.GetValue(StopTimeout) is { } st) body["StopTimeout"] = st;
        return body;
    }

    /// <summary>
    /// Config.Healthcheck from the --health-* flags, as the docker CLI builds it: <c>{"Test":["NONE"]}</c> for
    /// --no-healthcheck, <c>["CMD-SHELL", cmd]</c> for --health-cmd, durations in nanoseconds; null when none is given.
    /// </summary>
    private JsonObject? Healthcheck(ParseResult parse)
    {
        string? cmd = parse.GetValue(HealthCmd);
        long interval = GoDurationFlag(parse, HealthInterval), timeout = GoDurationFlag(parse, HealthTimeout);
        long startPeriod = GoDurationFlag(parse, HealthStartPeriod), startInterval = GoDurationFlag(parse, HealthStartInterval);
        int retries = parse.GetValue(HealthRetries);
        bool any = !string.IsNullOrEmpty(cmd) || interval != 0 || timeout != 0 || startPeriod != 0 || startInterval != 0 || retries != 0;
        if (parse.GetValue(NoHealthcheck))
        {
            if (any) throw new UsageException("--no-healthcheck conflicts with --health-* options");
            return new JsonObject { ["Test"] = new JsonArray("NONE") };
        }
        if (!any) return null;
        if (interval < 0) throw new UsageException("--health-interval cannot be negative");
        if (timeout < 0) throw new UsageException("--health-timeout cannot be negative");
        if (retries < 0) throw new UsageException("--health-retries cannot be negative");
        if (startPeriod < 0) throw new UsageException("--health-start-period cannot be negative");
        if (startInterval < 0) throw new UsageException("--health-start-interval cannot be negative");
        var health = new JsonObject();
        if (!string.IsNullOrEmpty(cmd)) health["Test"] = new JsonArray("CMD-SHELL", cmd);
        if (interval != 0) health["Interval"] = interval;
        if (timeout != 0) health["Timeout"] = timeout;
        if (startPeriod != 0) health["StartPeriod"] = startPeriod;
        if (startInterval != 0) health["StartInterval"] = startInterval;
        if (retries != 0) health["Retries"] = retries;
        return health;
    }

    /// <summary>
    /// --network-alias and --ip, for the network of --network (as docker's client sends them; the
    /// daemon says when that network takes neither, e.g. the default bridge).
    /// </summary>
    private JsonObject EndpointsConfig(ParseResult parse)
    {
        string[] aliases = parse.GetValue(NetworkAlias) ?? [], linkLocal = parse.GetValue(LinkLocalIp) ?? [];
        string? ip = parse.GetValue(Ip), ip6 = parse.GetValue(Ip6), mac = parse.GetValue(MacAddress);
        if (aliases.Length == 0 && ip is null && ip6 is null && linkLocal.Length == 0 && mac is null) return [];
        foreach (var (flag, address) in new[] { ("--ip", ip), ("--ip6", ip6) }.Concat(linkLocal.Select(a => ("--link-local-ip", (string?)a))))
            if (address is not null && !System.Net.IPAddress.TryParse(address, out _))
                throw new UsageException($"invalid argument \"{address}\" for \"{flag}\" flag: invalid IP address: {address}");
        string network = parse.GetValue(Network) is { Length: > 0 } n ? n : "default";
        var endpoint = new JsonObject();
        if (aliases.Length > 0) endpoint["Aliases"] = Array(aliases);
        if (ip is not null || ip6 is not null || linkLocal.Length > 0)
            endpoint["IPAMConfig"] = new JsonObject { ["IPv4Address"] = ip ?? "", ["IPv6Address"] = ip6 ?? "", ["LinkLocalIPs"] = Array(linkLocal) };
        if (mac is not null) endpoint["MacAddress"] = mac;
        return new JsonObject { [network] = endpoint };
    }

    /// <summary><c>KEY=VALUE</c> flags (--annotation, --storage-opt) as an object; null when none is given.</summary>
    private static JsonObject? KeyValues(string[]? values, string flag)
    {
        if (values is not { Length: > 0 }) return null;
        var result = new JsonObject();
        foreach (string v in values)
        {
            int eq = v.IndexOf('=');
            if (eq <= 0) throw new UsageException($"invalid argument \"{v}\" for \"{flag}\" flag: invalid key-value pair: {v}");
            result[v[..eq]] = v[(eq + 1)..];
        }
        return result;
    }

    /// <summary>
    /// <c>DEVICE:VALUE</c> flags as docker's client checks them (opts/throttledevice.go, weightdevice.go): the
    /// device a path under /dev, the value a weight, a size (1mb) or a count. Null when none is given.
    /// </summary>
    private static JsonArray? DeviceRates(string[]? values, string flag, string field, Func<string, JsonNode?> value)
    {
        if (values is not { Length: > 0 }) return null;
        var result = new JsonArray();
        foreach (string v in values)
        {
            int colon = v.LastIndexOf(':');
            if (colon <= 0) throw new UsageException($"invalid argument \"{v}\" for \"{flag}\" flag: bad format: {v}");
            string device = v[..colon];
            if (!device.StartsWith("/dev/", StringComparison.Ordinal))
                throw new UsageException($"invalid argument \"{v}\" for \"{flag}\" flag: bad format for device path: {v}");
            JsonNode parsed = value(v[(colon + 1)..]) ?? throw new UsageException($"invalid argument \"{v}\" for \"{flag}\" flag: invalid {(field == "Weight" ? "weight" : "rate")} for device: {v}");
            result.Add((JsonNode)new JsonObject { ["Path"] = device, [field] = parsed });
        }
        return result;
    }

    private static JsonNode? WeightValue(string text)
        => ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ushort w) && w is >= 10 and <= 1000 ? w : null;

    private static JsonNode? BpsValue(string text)
        => ByteSize.TryParse(text, out long bytes) ? bytes : null;

    private static JsonNode? IopsValue(string text)
        => ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) ? n : null;

    /// <summary>--label-file: one KEY=VALUE (or KEY) per line; blank lines and # comments skipped, as docker reads it.</summary>
    private static IEnumerable<string> ReadLabelFile(string file)
    {
        foreach (string line in File.ReadAllLines(file))
        {
            string l = line.TrimStart();
            if (l.Length > 0 && !l.StartsWith('#')) yield return l;
        }
    }

    /// <summary>docker's <c>--device HOST[:CONTAINER][:PERMISSIONS]</c> (the second part is the permissions when it is only r, w and m).</summary>
    internal static JsonObject DeviceMapping(string spec)
    {
        string[] parts = spec.Split(':');
        if (parts.Length > 3) throw new UsageException($"invalid argument \"{spec}\" for \"--device\" flag: invalid device specification: {spec}");
        static bool IsMode(string s) => s.Length is > 0 and <= 3 && s.All(c => c is 'r' or 'w' or 'm');
        string source = parts[0], target = "", permissions = "rwm";
        if (parts.Length == 3) (target, permissions) = (parts[1], parts[2]);
        else if (parts.Length == 2 && IsMode(parts[1])) permissions = parts[1];
        else if (parts.Length == 2) target = parts[1];
        if (target.Length == 0) target = source;
        foreach (string path in new[] { source, target })
            if (!path.StartsWith('/')) throw new UsageException($"invalid argument \"{spec}\" for \"--device\" flag: bad format for path: {path}");
        if (!IsMode(permissions)) throw new UsageException($"invalid argument \"{spec}\" for \"--device\" flag: bad mode specified: {permissions}");
        return new JsonObject { ["PathOnHost"] = source, ["PathInContainer"] = target, ["CgroupPermissions"] = permissions };
    }

    /// <summary>docker's client checks a <c>--device-cgroup-rule</c> before sending it (dockerd 20.10 would not).</summary>
    private static string DeviceCgroupRuleFlag(string rule)
    {
        try
        {
            Berth.Images.Engine.HostDevices.ParseCgroupRule(rule);
            return rule;
        }
        catch (Berth.Images.ImagesException e)
        {
            throw new UsageException($"invalid argument \"{rule}\" for \"--device-cgroup-rule\" flag: {e.Message}");
        }
    }

    /// <summary>A Go duration flag (<c>30s</c>, <c>1m30s</c>, <c>500ms</c>) in nanoseconds; 0 when not given.</summary>
    private static long GoDurationFlag(ParseResult parse, Option<string?> option)
    {
        if (parse.GetValue(option) is not { Length: > 0 } text) return 0;
        try
        {
            return (long)Berth.Builder.Dockerfile.GoDuration.ParseNanoseconds(text);
        }
        catch (FormatException e)
        {
            throw new UsageException($"invalid argument \"{text}\" for \"{option.Name}\" flag: {e.Message}");
        }
    }

    /// <summary>
    /// --add-host as the docker CLI sends it (opts.ValidateExtraHost): <c>host=ip</c> or <c>host:ip</c>,
    /// an IPv6 address possibly in brackets, always sent as <c>host:ip</c>.
    /// </summary>
    private static string ExtraHost(string value)
    {
        int sep = value.IndexOf('=');
        if (sep <= 0) sep = value.IndexOf(':');
        if (sep <= 0) return value; // the daemon names what is wrong
        string address = value[(sep + 1)..];
        if (address.Length > 2 && address[0] == '[' && address[^1] == ']') address = address[1..^1];
        return value[..sep] + ":" + address;
    }

    private static JsonArray? Array(string[]? values) => values is { Length: > 0 } ? new JsonArray(values.Select(v => (JsonNode)v).ToArray()) : null;

    /// <summary><c>-e KEY=VALUE</c> as is; <c>-e KEY</c> takes KEY's value from berth's environment and is dropped when unset (as docker does).</summary>
    private static string? EnvValue(string e)
    {
        if (e.StartsWith('=')) throw new UsageException($"invalid environment variable: {e}");
        if (e.Contains('=')) return e;
        return Environment.GetEnvironmentVariable(e) is { } value ? $"{e}={value}" : null;
    }

    /// <summary><c>seccomp=PATH</c> sends the profile's JSON, as the docker CLI does; other options pass through.</summary>
    private static string SecurityOption(string s)
    {
        string[] kv = s.Split(s.Contains('=') ? '=' : ':', 2);
        if (kv.Length == 2 && kv[0] == "seccomp" && kv[1] is not ("unconfined" or "builtin"))
        {
            try
            {
                return "seccomp=" + JsonNode.Parse(File.ReadAllText(kv[1]))!.ToJsonString();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"opening seccomp profile ({kv[1]}) failed: {Runner.Describe(e).Message}");
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new UsageException($"compacting json for seccomp profile ({kv[1]}) failed: {e.Message}");
            }
        }
        return s;
    }

    /// <summary><c>--restart no|always|unless-stopped|on-failure[:N]</c> as the API's RestartPolicy.</summary>
    public static JsonObject RestartPolicy(string text)
    {
        var restart = new JsonObject { ["Name"] = "no", ["MaximumRetryCount"] = 0 };
        string[] parts = text.Split(':', 2);
        if (parts[0] is not ("no" or "always" or "on-failure" or "unless-stopped"))
            throw new UsageException($"invalid restart policy '{text}'");
        restart["Name"] = parts[0];
        if (parts.Length == 2)
        {
            if (parts[0] != "on-failure") throw new UsageException($"invalid restart policy format: maximum retry count can only be used with 'on-failure'");
            if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count))
                throw new UsageException($"invalid restart policy format: maximum retry count must be an integer");
            restart["MaximumRetryCount"] = count;
        }
        return restart;
    }

    /// <summary>A size flag (<see cref="ByteSize"/>: 512, 64m, 1.5GiB), refused in the docker CLI's words.</summary>
    public static long ParseSize(string text, string flag)
        => ByteSize.TryParse(text, out long bytes) ? bytes : throw new UsageException($"invalid argument \"{text}\" for \"{flag}\" flag: invalid size: '{text}'");

    public static long NanoCpus(string text)
    {
        if (!decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out decimal cpus) || cpus < 0)
            throw new UsageException($"invalid argument \"{text}\" for \"--cpus\" flag: failed to parse {text} as a rational number");
        return (long)(cpus * 1_000_000_000m);
    }

    private static JsonObject ParseUlimit(string u)
    {
        int eq = u.IndexOf('=');
        if (eq <= 0) throw new UsageException($"invalid argument \"{u}\" for \"--ulimit\" flag: invalid ulimit argument: {u}");
        string[] limits = u[(eq + 1)..].Split(':');
        if (limits.Length > 2 || !long.TryParse(limits[0], CultureInfo.InvariantCulture, out long soft))
            throw new UsageException($"invalid argument \"{u}\" for \"--ulimit\" flag: invalid ulimit argument: {u}");
        long hard = soft;
        if (limits.Length == 2 && !long.TryParse(limits[1], CultureInfo.InvariantCulture, out hard))
            throw new UsageException($"invalid argument \"{u}\" for \"--ulimit\" flag: invalid ulimit argument: {u}");
        if (soft > hard) throw new UsageException($"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
        return new JsonObject { ["Name"] = u[..eq], ["Hard"] = hard, ["Soft"] = soft };
    }

    /// <summary>
    /// <c>--mount type=volume|bind|tmpfs,source=…,target=…[,readonly][,volume-nocopy][,volume-subpath=P][,volume-label=K=V][,volume-driver=D]
    /// [,volume-opt=K=V][,bind-propagation=P][,tmpfs-size=N][,tmpfs-mode=M]</c> as the docker CLI's mount option parses it
    /// (opts/mount.go; type defaults to volume).
    /// </summary>
    private static JsonObject ParseMount(string spec)
    {
        string type = "volume", source = "", target = "";
        bool readOnly = false;
        JsonObject? volumeOptions = null, bindOptions = null, tmpfsOptions = null;
        JsonObject VolumeOptions() => volumeOptions ??= new JsonObject();
        UsageException Bad(string why) => new($"invalid argument \"{spec}\" for \"--mount\" flag: {why}");
        foreach (string field in spec.Split(','))
        {
            int eq = field.IndexOf('=');
            string key = (eq < 0 ? field : field[..eq]).Trim().ToLowerInvariant(), value = eq < 0 ? "" : field[(eq + 1)..];
            static bool Bool(string v, string key, Func<string, UsageException> bad) => v.ToLowerInvariant() switch
            {
                "" or "1" or "true" => true,
                "0" or "false" => false,
                _ => throw bad($"invalid value for {key}: {v}"),
            };
            switch (key)
            {
                case "type": type = value; break;
                case "source" or "src": source = value; break;
                case "target" or "dst" or "destination": target = value; break;
                case "readonly" or "ro": readOnly = Bool(value, key, Bad); break;
                case "volume-nocopy": VolumeOptions()["NoCopy"] = Bool(value, key, Bad); break;
                case "volume-subpath": VolumeOptions()["Subpath"] = value; break;
                case "volume-label":
                {
                    int e = value.IndexOf('=');
                    if (VolumeOptions()["Labels"] is not JsonObject l) volumeOptions!["Labels"] = l = new JsonObject();
                    l[e < 0 ? value : value[..e]] = e < 0 ? "" : value[(e + 1)..];
                    break;
                }
                case "volume-driver":
                    if (VolumeOptions()["DriverConfig"] is not JsonObject driver) volumeOptions!["DriverConfig"] = driver = new JsonObject();
                    driver["Name"] = value;
                    break;
                case "volume-opt":
                {
                    int e = value.IndexOf('=');
                    if (e <= 0) throw Bad($"invalid volume-opt: {value}");
                    if (VolumeOptions()["DriverConfig"] is not JsonObject d) volumeOptions!["DriverConfig"] = d = new JsonObject { ["Name"] = "" };
                    if (d["Options"] is not JsonObject o) d["Options"] = o = new JsonObject();
                    o[value[..e]] = value[(e + 1)..];
                    break;
                }
                case "bind-propagation": (bindOptions ??= new JsonObject())["Propagation"] = value; break;
                case "tmpfs-size": (tmpfsOptions ??= new JsonObject())["SizeBytes"] = ParseSize(value, "--mount"); break;
                case "tmpfs-mode":
                    (tmpfsOptions ??= new JsonObject())["Mode"] = Convert.ToInt32(value, 8);
                    break;
                default: throw Bad($"unexpected key '{key}' in '{field}'");
            }
        }
        if (type is not ("volume" or "bind" or "tmpfs")) throw Bad($"invalid mount type: {type}");
        if (target.Length == 0) throw Bad("target is required");
        if (type != "volume" && volumeOptions is not null) throw Bad($"cannot mix 'volume-*' options with mount type '{type}'");
        if (type != "bind" && bindOptions is not null) throw Bad($"cannot mix 'bind-*' options with mount type '{type}'");
        if (type != "tmpfs" && tmpfsOptions is not null) throw Bad($"cannot mix 'tmpfs-*' options with mount type '{type}'");
        var mount = new JsonObject { ["Type"] = type, ["Source"] = source, ["Target"] = target, ["ReadOnly"] = readOnly };
        if (volumeOptions is not null) mount["VolumeOptions"] = volumeOptions;
        if (bindOptions is not null) mount["BindOptions"] = bindOptions;
        if (tmpfsOptions is not null) mount["TmpfsOptions"] = tmpfsOptions;
        return mount;
    }

    /// <summary><c>-p [ip:][hostPort:]containerPort[/proto]</c> → ("80/tcp", ip, hostPort).</summary>
    private static (string Port, string HostIp, string HostPort) ParsePublish(string p)
    {
        string proto = "tcp", spec = p;
        int slash = spec.LastIndexOf('/');
        if (slash >= 0)
        {
            proto = spec[(slash + 1)..];
            spec = spec[..slash];
        }
        string hostIp = "", hostPort = "", containerPort;
        if (spec.StartsWith('['))
        {
            int close = spec.IndexOf(']');
            hostIp = spec[1..close];
            spec = spec[(close + 1)..].TrimStart(':');
        }
        string[] parts = spec.Split(':');
        switch (parts.Length)
        {
            case 1: containerPort = parts[0]; break;
            case 2: hostPort = parts[0]; containerPort = parts[1]; break;
            case 3: hostIp = parts[0]; hostPort = parts[1]; containerPort = parts[2]; break;
            default: throw new UsageException($"invalid argument \"{p}\" for \"-p, --publish\" flag: invalid port format");
        }
        if (!int.TryParse(containerPort, CultureInfo.InvariantCulture, out _) || proto is not ("tcp" or "udp" or "sctp"))
            throw new UsageException($"invalid argument \"{p}\" for \"-p, --publish\" flag: invalid containerPort: {containerPort}");
        return ($"{containerPort}/{proto}", hostIp, hostPort);
    }
}
