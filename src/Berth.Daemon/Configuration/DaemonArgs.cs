using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Oci;
using Berth.Seccomp;

namespace Berth.Daemon.Configuration;

/// <summary>The result of parsing the command line: options to run with, or help/version to print.</summary>
public sealed record ParsedArgs(DaemonOptions Options, bool ShowHelp = false, bool ShowVersion = false);

/// <summary>
/// dockerd's command line (<c>--flag value</c>, <c>--flag=value</c>, <c>-H value</c>) and its
/// config file. As dockerd does, a setting given both as a flag and in the file is refused, and so
/// is an unknown key in the file.
/// </summary>
public static partial class DaemonArgs
{
    public const string Usage = """
        Usage:  berthd [OPTIONS]

        The Berth engine: serves the Docker Engine API.

        Options:
              --config-file string        Daemon configuration file (JSON, like dockerd's daemon.json)
              --data-root string          Root directory of persistent state (default "/var/lib/berth")
              --exec-root string          Root directory of runtime state (default "/run/berth")
          -H, --host list                 Listen address(es): unix:///path, tcp://addr:port (TLS only)
                                          (default unix:///run/berth/berth.sock)
              --insecure-registry list    Registries reached over plain HTTP
              --registry-mirror list      Docker Hub mirror (http(s)://host[:port]): pulls of docker.io images
                                          try the mirrors in order, then Docker Hub
              --max-concurrent-downloads int
                                          Layers downloaded at once, all pulls together (default 3; 0: no limit)
              --max-concurrent-uploads int
                                          Blobs uploaded at once, all pushes together (default 5; 0: no limit)
              --max-download-attempts int
                                          Attempts of each layer download: network errors and 5xx answers are
                                          retried with back-off, 4xx answers are not (default 5)
          -l, --log-level string          debug, info, warn, error, fatal (default "info")
          -D, --debug                     Log at debug level
          -p, --pidfile string            Path of the PID file (default: <exec-root>/berthd.pid)
              --group string              Group of the unix sockets (default "berth", when it exists)
          -b, --bridge string             The default network's bridge, or "none" for no networks at all
                                          (containers then default to --network none; no user bridge,
                                          macvlan or ipvlan network can be made) (default "berth0")
              --bip string                The default bridge's subnet (CIDR; default: the first of Docker's
                                          pools that no host route overlaps)
              --bridge-netns string       Make bridges, NAT and port rules in this network namespace
                                          (a path such as /run/netns/x) rather than berthd's own; the
                                          parents of macvlan and ipvlan networks are its links
              --default-address-pool pool-options
                                          Where networks without a subnet (and the default bridge without
                                          --bip) take theirs: base=CIDR,size=N, repeatable, in order
                                          (default: Docker's, 172.17-31.0.0/16 and 192.168.0.0/16 in /20s)
              --fixed-cidr string         The default bridge hands out addresses from this range of its subnet
                                          only (without --bip: the subnet too)
              --mtu int                   MTU of the default bridge and its containers (default: the uplink's)
              --icc                       Containers of the default bridge may talk to each other (default true;
                                          --icc=false isolates them, not from the gateway or published ports)
              --ip ip                     Host address of the default bridge's published ports that name none
                                          (default 0.0.0.0: every address)
              --ipv6                      The default bridge is dual stack (IPv6 beside IPv4)
              --fixed-cidr-v6 string      The default bridge's IPv6 subnet, with --ipv6 (default: a /64 of the
                                          daemon's ULA prefix)
              --userland-proxy            Published ports' host sockets relay what NAT does not take: IPv6 to
                                          a container without IPv6, and ::1 (default true; false: they only
                                          keep the port reserved)
              --init-path string          The init --init runs as PID 1 (default: docker-init, i.e. tini, on PATH)
              --log-driver string         Default logging driver of containers: json-file, local, syslog,
                                          gelf, fluentd, journald or none (default "json-file")
              --log-opt map               Default options of that driver: max-size=SIZE, max-file=N,
                                          compress=BOOL (json-file: default 10m, 3, false; local:
                                          20m, 5, true); json-file also labels, labels-regex, env,
                                          env-regex (attributes of every entry) and tag; syslog, gelf,
                                          fluentd and journald their own (syslog-address=…,
                                          gelf-address=…, fluentd-address=…, as dockerd's) and cache-*
                                          for the cache docker logs reads; every driver mode=blocking|
                                          non-blocking and max-buffer-size=SIZE (non-blocking: what a
                                          log server does not take beyond it is dropped; default 1MB)
              --cgroup-parent string      Parent cgroup of containers that name none (default "/berth")
              --cpu-rt-period int         Real-time period (µs) of the parent cgroup of real-time containers
              --cpu-rt-runtime int        Real-time runtime (µs) of that parent: what --cpu-rt-runtime of
                                          containers can share (cgroup v1 with RT group scheduling)
              --default-shm-size bytes    /dev/shm size of containers that name none (default 64MiB)
              --default-ulimit list       Ulimits of containers that do not set them: name=soft[:hard]
              --dns list                  DNS servers of containers that name none
              --dns-search list           DNS search domains of containers that name none
              --dns-opt list              DNS options of containers that name none
              --live-restore              Accepted: berthd's containers always outlive it (cannot be off)
          -s, --storage-driver string     overlay2 (the only one; "overlay" is another name of it)
              --exec-opt list             native.cgroupdriver=cgroupfs (the only cgroup driver)
              --seccomp-profile string    Path to a seccomp profile (Docker's format) for containers that name
                                          none; "unconfined" for no filter (default "builtin")
              --add-runtime list          Register an OCI runtime: name=path (path absolute or on PATH)
              --default-runtime string    The runtime containers run with unless they name one
                                          (default "berth-runtime"; also runc, crun or an added one)
              --userns-remap string       User namespace remapping: USER, USER:GROUP, UID, UID:GID or
                                          "default" (user dockremap, which berthd does not create). Container
                                          root runs as the user's first subordinate id (/etc/subuid,
                                          /etc/subgid); state lives in <data-root>/UID.GID; --userns=host
                                          opts a container out
              --init                      Run an init (--init-path) as PID 1 in containers that do not say --init=false
              --no-new-privileges         Set no_new_privs in containers that do not say no-new-privileges=false
              --default-cgroupns-mode string
                                          Cgroup namespace of containers that name none: host or private
                                          (default: private on cgroup v2, host on v1)
              --default-ipc-mode string   IPC mode of containers that name none: private or shareable
                                          (default "private")
              --label list                Labels of the daemon (key=value), shown by docker info
              --experimental              Say that experimental features are on (info, version); berthd has
                                          no features that need it
              --shutdown-timeout int      Seconds a stopping berthd lets API requests in progress (a load, a
                                          pull, a build) run before it closes them; negative: no limit
                                          (default 15). Containers are never stopped: they outlive berthd
              --tlscert string            TLS certificate (PEM) for tcp:// hosts
              --tlskey string             TLS key (PEM) for tcp:// hosts
              --tlscacert string          Trust client certificates signed by this CA (PEM)
              --tlsverify                 Require client certificates (with --tlscacert)
          -v, --version                   Print the version and exit
          -h, --help                      Print this help and exit
        """;

    public static ParsedArgs Parse(IReadOnlyList<string> args)
    {
        var flags = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        bool help = false, version = false, tlsVerify = false, debug = false, liveRestore = true;
        var boolFlags = new Dictionary<string, bool>(StringComparer.Ordinal); // registry mirrors, transfers, container defaults
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string name = arg;
            string? value = null;
            int eq = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                name = arg[..eq];
                value = arg[(eq + 1)..];
            }
            if (NetworkBoolFlag(name, value, flags)) continue;
            switch (name)
            {
                case "-h" or "--help":
                    help = true;
                    continue;
                case "-v" or "--version":
                    version = true;
                    continue;
                case "--tlsverify":
                    tlsVerify = value is null || bool.TryParse(value, out bool v) && v;
                    continue;
                case "-D" or "--debug":
                    debug = BoolFlag(name, value);
                    continue;
                case "--live-restore":
                    liveRestore = BoolFlag(name, value);
                    continue;
                // registry mirrors, transfers, container defaults
                case "--init" or "--no-new-privileges" or "--experimental":
                    boolFlags[name[2..]] = BoolFlag(name, value);
                    continue;
            }
            string key = name switch
            {
                "-H" or "--host" => "hosts",
                "--data-root" => "data-root",
                "--exec-root" => "exec-root",
                "-p" or "--pidfile" => "pidfile",
                "--config-file" => "config-file",
                "--insecure-registry" or "--insecure-registries" => "insecure-registries",
                "-l" or "--log-level" => "log-level",
                "--group" or "-G" => "group",
                "--tlscert" => "tlscert",
                "--tlskey" => "tlskey",
                "--tlscacert" => "tlscacert",
                "-b" or "--bridge" => "bridge",
                "--bip" => "bip",
                "--bridge-netns" => "bridge-netns",
                "--init-path" => "init-path",
                "--seccomp-profile" => "seccomp-profile",
                "--log-driver" => "log-driver",
                "--cgroup-parent" => "cgroup-parent",
                "--cpu-rt-period" => "cpu-rt-period",
                "--cpu-rt-runtime" => "cpu-rt-runtime",
                "--default-shm-size" => "default-shm-size",
                "--default-ulimit" => "default-ulimits",
                "--dns" => "dns",
                "--dns-search" => "dns-search",
                "--dns-opt" => "dns-opts",
                "-s" or "--storage-driver" => "storage-driver",
                "--exec-opt" => "exec-opts",
                "--log-opt" or "--log-opts" => "log-opts",
                "--add-runtime" => "add-runtime",
                "--default-runtime" => "default-runtime",
                "--userns-remap" => "userns-remap",
                // registry mirrors, transfers, container defaults
                "--registry-mirror" => "registry-mirrors",
                "--max-concurrent-downloads" => "max-concurrent-downloads",
                "--max-concurrent-uploads" => "max-concurrent-uploads",
                "--max-download-attempts" => "max-download-attempts",
                "--default-cgroupns-mode" => "default-cgroupns-mode",
                "--default-ipc-mode" => "default-ipc-mode",
                "--label" => "labels",
                "--shutdown-timeout" => "shutdown-timeout",
                _ => NetworkFlagKey(name) ?? throw new DaemonConfigException($"unknown flag: {name}\nSee 'berthd --help'."),
            };
            if (value is null)
            {
                if (i + 1 >= args.Count) throw new DaemonConfigException($"flag needs an argument: {name}");
                value = args[++i];
            }
            if (!flags.TryGetValue(key, out List<string>? list)) flags[key] = list = [];
            list.Add(value);
        }

        DaemonConfigFile file = new();
        if (flags.TryGetValue("config-file", out List<string>? cf))
            file = DaemonConfigFile.Load(cf[^1]);

        var conflicts = new List<string>();
        string? Single(string key, string? fromFile)
        {
            if (flags.TryGetValue(key, out List<string>? v))
            {
                if (fromFile is not null) conflicts.Add($"{key}: (from flag: {v[^1]}, from file: {fromFile})");
                return v[^1];
            }
            return fromFile;
        }
        IReadOnlyList<string>? Many(string key, IReadOnlyList<string>? fromFile)
        {
            if (flags.TryGetValue(key, out List<string>? v))
            {
                if (fromFile is not null) conflicts.Add($"{key}: (from flag: [{string.Join(' ', v)}], from file: [{string.Join(' ', fromFile)}])");
                return v;
            }
            return fromFile;
        }

        string dataRoot = Single("data-root", file.DataRoot) ?? DaemonOptions.DefaultDataRoot;
        string execRoot = Single("exec-root", file.ExecRoot) ?? DaemonOptions.DefaultExecRoot;
        IReadOnlyList<string> hosts = Many("hosts", file.Hosts) ?? [DaemonOptions.DefaultHost];
        string? pidFile = Single("pidfile", file.PidFile);
        IReadOnlyList<string> insecure = Many("insecure-registries", file.InsecureRegistries) ?? [];
        string logLevel = debug || file.Debug == true ? "debug" : Single("log-level", file.LogLevel) ?? "info";
        if (!liveRestore || file.LiveRestore == false)
            throw new DaemonConfigException("live-restore cannot be turned off: berthd's containers always keep running when it stops or restarts");
        if (Single("storage-driver", file.StorageDriver) is { } storage && storage is not ("overlay2" or "overlay"))
            throw new DaemonConfigException($"storage-driver `{storage}` is not served: berthd stores containers on overlayfs (overlay2)");
        foreach (string opt in Many("exec-opts", file.ExecOpts) ?? [])
            if (opt.Replace(" ", "", StringComparison.Ordinal) is not ("native.cgroupdriver=cgroupfs"))
                throw new DaemonConfigException(opt.StartsWith("native.cgroupdriver=", StringComparison.Ordinal)
                    ? $"exec-opt `{opt}`: berthd manages cgroups through cgroupfs (native.cgroupdriver=cgroupfs is the only driver)"
                    : $"unknown exec-opt `{opt}`: only native.cgroupdriver=cgroupfs is served");
        string? cgroupParent = Single("cgroup-parent", file.CgroupParent);
        long rtPeriod = Microseconds("cpu-rt-period", Single("cpu-rt-period", file.CpuRtPeriod?.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        long rtRuntime = Microseconds("cpu-rt-runtime", Single("cpu-rt-runtime", file.CpuRtRuntime?.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (rtPeriod > 0 && rtRuntime > rtPeriod) throw new DaemonConfigException($"cpu-rt-runtime {rtRuntime} is above cpu-rt-period {rtPeriod}");
        string? shmText = Single("default-shm-size", file.DefaultShmSize);
        long shmSize = shmText is null ? 0 : ByteSize.TryParse(shmText, out long shmBytes) && shmBytes > 0 ? shmBytes : throw new DaemonConfigException($"invalid default-shm-size `{shmText}`: give a size such as 64m");
        IReadOnlyList<string> dns = Many("dns", file.Dns) ?? [];
        IReadOnlyList<string> dnsSearch = Many("dns-search", file.DnsSearch) ?? [];
        IReadOnlyList<string> dnsOpts = Many("dns-opts", file.DnsOpts) ?? [];
        IReadOnlyList<DefaultUlimit> ulimits = DefaultUlimits(flags.GetValueOrDefault("default-ulimits"), file.DefaultUlimits, conflicts);
        string group = Single("group", file.Group) ?? "berth";
        string bridge = Single("bridge", file.Bridge) ?? "berth0";
        string? bip = Single("bip", file.Bip);
        string? bridgeNetns = Single("bridge-netns", file.BridgeNetns);
        string? initPath = Single("init-path", file.InitPath);
        string seccompProfile = Single("seccomp-profile", file.SeccompProfile) ?? DaemonOptions.BuiltinSeccompProfile;
        string logDriver = Single("log-driver", file.LogDriver) ?? DaemonOptions.DefaultLogDriver;
        IReadOnlyDictionary<string, string> logOpts = LogOpts(flags.GetValueOrDefault("log-opts"), file.LogOpts, conflicts);
        string defaultRuntime = Single("default-runtime", file.DefaultRuntime) ?? "berth-runtime";
        string? usernsRemap = Single("userns-remap", file.UsernsRemap);
        var tls = new TlsOptions
        {
            CertFile = Single("tlscert", file.TlsCert),
            KeyFile = Single("tlskey", file.TlsKey),
            CaCertFile = Single("tlscacert", file.TlsCaCert),
            Verify = tlsVerify || file.TlsVerify == true,
        };
        IReadOnlyDictionary<string, AddedRuntime> runtimes = Runtimes(flags.GetValueOrDefault("add-runtime") ?? [], file.Runtimes);
        // registry mirrors, transfers, container defaults
        IReadOnlyList<string> mirrors = RegistryMirrors(flags.ContainsKey("registry-mirrors"), Many("registry-mirrors", file.RegistryMirrors) ?? []);
        int maxDownloads = IntSetting("max-concurrent-downloads", Single("max-concurrent-downloads", Invariant(file.MaxConcurrentDownloads))) ?? 3;
        int maxUploads = IntSetting("max-concurrent-uploads", Single("max-concurrent-uploads", Invariant(file.MaxConcurrentUploads))) ?? 5;
        int downloadAttempts = IntSetting("max-download-attempts", Single("max-download-attempts", Invariant(file.MaxDownloadAttempts))) ?? 5;
        // dockerd's checks and words (daemon/config Validate).
        if (maxDownloads < 0) throw new DaemonConfigException($"invalid max concurrent downloads: {maxDownloads}");
        if (maxUploads < 0) throw new DaemonConfigException($"invalid max concurrent uploads: {maxUploads}");
        if (downloadAttempts <= 0) throw new DaemonConfigException($"invalid max download attempts: {downloadAttempts}");
        bool? Bool(string key, bool? fromFile)
        {
            if (!boolFlags.TryGetValue(key, out bool v)) return fromFile;
            if (fromFile is not null) conflicts.Add($"{key}: (from flag: {(v ? "true" : "false")}, from file: {(fromFile.Value ? "true" : "false")})");
            return v;
        }
        bool init = Bool("init", file.Init) ?? false;
        bool noNewPrivileges = Bool("no-new-privileges", file.NoNewPrivileges) ?? false;
        bool experimental = Bool("experimental", file.Experimental) ?? false;
        string? cgroupnsMode = Single("default-cgroupns-mode", file.DefaultCgroupnsMode);
        if (cgroupnsMode is not (null or "host" or "private"))
            throw new DaemonConfigException($"default cgroup namespace mode ({cgroupnsMode}) is invalid; use \"host\" or \"private\"");
        string ipcMode = Single("default-ipc-mode", file.DefaultIpcMode) ?? "private";
        if (ipcMode is not ("private" or "shareable"))
            throw new DaemonConfigException($"default IPC mode setting ({ipcMode}) is invalid; use \"shareable\" or \"private\"");
        IReadOnlyList<string> labels = Labels(flags.ContainsKey("labels"), Many("labels", file.Labels) ?? []);
        int shutdownTimeout = IntSetting("shutdown-timeout", Single("shutdown-timeout", Invariant(file.ShutdownTimeout))) ?? DaemonOptions.DefaultShutdownTimeout;
        CheckFeatures(file.Features);
        NetworkDefaults networkDefaults = ParseNetworkDefaults(flags, file, conflicts);
        if (conflicts.Count > 0)
            throw new DaemonConfigException("the following directives are specified both as a flag and in the configuration file: " + string.Join(", ", conflicts));

        var options = new DaemonOptions
        {
            DataRoot = Absolute(dataRoot, "data-root"),
            ExecRoot = Absolute(execRoot, "exec-root"),
            Hosts = hosts.Count == 0 ? [DaemonOptions.DefaultHost] : hosts,
            PidFile = pidFile is null ? null : Absolute(pidFile, "pidfile"),
            InsecureRegistries = insecure,
            LogLevel = logLevel,
            SocketGroup = group,
            Tls = tls,
            Bridge = bridge,
            BridgeSubnet = bip,
            BridgeNetns = bridgeNetns is null ? null : Absolute(bridgeNetns, "bridge-netns"),
            InitPath = initPath is null ? null : Absolute(initPath, "init-path"),
            SeccompProfilePath = seccompProfile is DaemonOptions.BuiltinSeccompProfile or DaemonOptions.UnconfinedSeccompProfile
                ? seccompProfile : Absolute(seccompProfile, "seccomp-profile"),
            SeccompProfile = LoadSeccompProfile(seccompProfile),
            LogDriver = logDriver,
            LogOpts = logOpts,
            CgroupParent = cgroupParent,
            CpuRealtimePeriod = rtPeriod,
            CpuRealtimeRuntime = rtRuntime,
            DefaultShmSize = shmSize,
            DefaultUlimits = ulimits,
            Dns = dns,
            DnsSearch = dnsSearch,
            DnsOptions = dnsOpts,
            Runtimes = runtimes,
            DefaultRuntime = DaemonOptions.CanonicalRuntimeName(defaultRuntime),
            UsernsRemapSetting = string.IsNullOrEmpty(usernsRemap) ? null : usernsRemap,
            // registry mirrors, transfers, container defaults
            RegistryMirrors = mirrors,
            MaxConcurrentDownloads = maxDownloads,
            MaxConcurrentUploads = maxUploads,
            MaxDownloadAttempts = downloadAttempts,
            Init = init,
            NoNewPrivileges = noNewPrivileges,
            DefaultCgroupnsMode = cgroupnsMode,
            DefaultIpcMode = ipcMode,
            Labels = labels,
            Experimental = experimental,
            ShutdownTimeout = shutdownTimeout,
        };
        options = networkDefaults.ApplyTo(options);
        Validate(options);
        return new ParsedArgs(options, help, version);
    }

    /// <summary>Refuses bad settings before anything is created.</summary>
    public static void Validate(DaemonOptions options)
    {
        if (options.LogLevel is not ("debug" or "info" or "warn" or "error" or "fatal"))
            throw new DaemonConfigException($"invalid log-level `{options.LogLevel}`: use debug, info, warn, error or fatal");
        if (options.Tls.Verify && options.Tls.CaCertFile is null)
            throw new DaemonConfigException("--tlsverify needs --tlscacert");
        if ((options.Tls.CertFile is null) != (options.Tls.KeyFile is null))
            throw new DaemonConfigException("--tlscert and --tlskey go together");
        foreach (string host in options.Hosts) ListenAddress.Parse(host, options.Tls);
        if (options.Bridge != "none" && (options.Bridge.Length is 0 or > 15 || options.Bridge.Any(c => c is '/' or ' ' or ':')))
            throw new DaemonConfigException($"invalid bridge name `{options.Bridge}`: at most 15 characters, no '/', ':' or spaces");
        if (options.BridgeNetns is not null && !File.Exists(options.BridgeNetns))
            throw new DaemonConfigException($"bridge-netns `{options.BridgeNetns}` does not exist");
        if (!DaemonOptions.BuiltInRuntimes.Contains(options.DefaultRuntime) && !options.Runtimes.ContainsKey(options.DefaultRuntime))
            throw new DaemonConfigException($"default-runtime `{options.DefaultRuntime}` is not a known runtime (berth-runtime, runc, crun or one added with --add-runtime)");
        if (options.LogDriver is not (DaemonOptions.DefaultLogDriver or Containers.LogLimits.LocalDriver or Containers.SyslogDriver.Name
            or Containers.GelfDriver.Name or Containers.FluentdDriver.Name or Containers.JournaldDriver.Name or "none"))
            throw new DaemonConfigException($"the `{options.LogDriver}` logging driver is not served by berthd (json-file, local, syslog, gelf, fluentd, journald and none are)");
        if (options.LogDriver == "none" && options.LogOpts.Count > 0)
            throw new DaemonConfigException($"log-opt `{options.LogOpts.Keys.Order(StringComparer.Ordinal).First()}`: the none driver takes no options");
        if (options.LogDriver != "none" && Containers.LogLimits.Check(options.LogDriver, options.LogOpts) is { } error)
            throw new DaemonConfigException(error);
        foreach (string server in options.Dns)
            if (!System.Net.IPAddress.TryParse(server, out _)) throw new DaemonConfigException($"invalid dns `{server}`: give an IP address");
        if (options.CgroupParent is { } parent && (parent.Length == 0 || parent.Split('/').Contains("..")))
            throw new DaemonConfigException($"invalid cgroup-parent `{parent}`");
        foreach (string registry in options.InsecureRegistries)
            if (registry.Length == 0 || registry.Contains('/') && !registry.Contains("://"))
                throw new DaemonConfigException($"invalid insecure-registry `{registry}`: give host[:port]");
        // registry mirrors, transfers, container defaults
        if (options.Init && options.InitBinary() is null)
            throw new DaemonConfigException("--init needs docker-init (tini) on PATH or --init-path: apt-get install tini");
        ValidateNetworkDefaults(options);
    }

    /// <summary>
    /// --registry-mirror (repeatable) or daemon.json's "registry-mirrors": each checked and
    /// normalised as dockerd's ValidateMirror does (http or https, no path, query, fragment or
    /// credentials; a trailing "/" added), refused in its words.
    /// </summary>
    private static IReadOnlyList<string> RegistryMirrors(bool fromFlags, IReadOnlyList<string> mirrors)
    {
        var result = new List<string>();
        foreach (string mirror in mirrors)
        {
            string? problem = MirrorProblem(mirror);
            if (problem is not null)
                throw new DaemonConfigException(fromFlags ? $"invalid argument \"{mirror}\" for \"--registry-mirror\" flag: {problem}\nSee 'berthd --help'." : problem);
            string normalized = mirror.EndsWith('/') ? mirror : mirror + "/";
            if (!result.Contains(normalized, StringComparer.Ordinal)) result.Add(normalized);
        }
        return result;
    }

    /// <summary>
    /// --label key=value (repeatable) or daemon.json's "labels", as dockerd's ValidateLabel and
    /// GetConflictFreeLabels take them: an entry without "=" is refused, a key given twice with
    /// different values too, the same pair twice is kept once.
    /// </summary>
    private static IReadOnlyList<string> Labels(bool fromFlags, IReadOnlyList<string> labels)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var result = new List<string>();
        foreach (string label in labels)
        {
            int eq = label.IndexOf('=');
            if (eq < 0)
                throw new DaemonConfigException(fromFlags ? $"invalid argument \"{label}\" for \"--label\" flag: bad attribute format: {label}\nSee 'berthd --help'." : $"bad attribute format: {label}");
            string key = label[..eq], value = label[(eq + 1)..];
            if (values.TryGetValue(key, out string? earlier))
            {
                if (earlier != value) throw new DaemonConfigException($"conflict labels for {key}={value} and {key}={earlier}");
                continue;
            }
            values[key] = value;
            result.Add(label);
        }
        return result;
    }

    /// <summary>
    /// daemon.json's "features": berthd has the classic builder only, so "buildkit": true is refused
    /// (false is what berthd is anyway); any other feature may be named off, not on.
    /// </summary>
    private static void CheckFeatures(IReadOnlyDictionary<string, bool>? features)
    {
        foreach (var (name, on) in features ?? new Dictionary<string, bool>())
        {
            if (!on) continue;
            throw new DaemonConfigException(name == "buildkit"
                ? "features: buildkit is not available: berthd has only the classic builder (docker build with DOCKER_BUILDKIT=0); remove \"buildkit\": true or set it to false"
                : $"features: `{name}` is not a feature of berthd; it can only be false");
        }
    }

    private static string? Invariant(int? value) => value?.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>An integer setting (a flag's text or the file's number); null when not given.</summary>
    private static int? IntSetting(string key, string? text)
        => text is null ? null
            : int.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out int n) ? n
            : throw new DaemonConfigException($"invalid argument \"{text}\" for \"--{key}\" flag: give a whole number");

    private static string? MirrorProblem(string mirror)
    {
        int colon = mirror.IndexOf(':');
        string scheme = colon > 0 && char.IsAsciiLetter(mirror[0]) && mirror[..colon].All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '-' or '.') ? mirror[..colon] : "";
        if (scheme is not ("http" or "https")) return $"invalid mirror: unsupported scheme \"{scheme}\" in \"{mirror}\"";
        if (!Uri.TryCreate(mirror, UriKind.Absolute, out Uri? uri) || uri.Host.Length == 0) return $"invalid mirror: \"{mirror}\" is not a valid URI";
        if (uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0)
            return $"invalid mirror: path, query, or fragment at end of the URI \"{mirror}\"";
        if (uri.UserInfo.Length > 0)
            return $"invalid mirror: username/password not allowed in URI \"{mirror.Replace(uri.UserInfo + "@", uri.UserInfo.Split(':')[0] + ":xxxxx@", StringComparison.Ordinal)}\"";
        return null;
    }

    /// <summary>
    /// The added runtimes, from --add-runtime name=path and the file's "runtimes" together (as
    /// dockerd merges them); a name given twice, a built-in one, or one that cannot be a directory
    /// name (the runtime's state lives in &lt;exec-root&gt;/runtime/&lt;name&gt;) is refused.
    /// </summary>
    private static IReadOnlyDictionary<string, AddedRuntime> Runtimes(List<string> flags, IReadOnlyDictionary<string, DaemonConfigRuntime>? fromFile)
    {
        var runtimes = new Dictionary<string, AddedRuntime>(StringComparer.Ordinal);
        void Add(string name, string? path, IReadOnlyList<string>? args)
        {
            if (!ValidRuntimeName.IsMatch(name))
                throw new DaemonConfigException($"invalid runtime name `{name}`: letters, digits, '_', '.' and '-', starting with a letter or digit");
            if (DaemonOptions.BuiltInRuntimes.Contains(name))
                throw new DaemonConfigException($"runtime name '{name}' is reserved");
            if (string.IsNullOrEmpty(path)) throw new DaemonConfigException($"runtime `{name}`: no path given");
            if (!runtimes.TryAdd(name, new AddedRuntime(path, args ?? [])))
                throw new DaemonConfigException($"runtime `{name}` is configured more than once");
        }
        foreach (string flag in flags)
        {
            int eq = flag.IndexOf('=');
            if (eq <= 0) throw new DaemonConfigException($"invalid --add-runtime `{flag}`: give name=path");
            Add(flag[..eq], flag[(eq + 1)..], null);
        }
        foreach (var (name, runtime) in fromFile ?? new Dictionary<string, DaemonConfigRuntime>())
            Add(name, runtime.Path, runtime.RuntimeArgs);
        return runtimes;
    }

    /// <summary>
    /// --default-ulimit name=soft[:hard] (repeatable) or daemon.json's "default-ulimits" ({"nofile":
    /// {"Name": "nofile", "Soft": 1024, "Hard": 2048}}), as dockerd takes them.
    /// </summary>
    private static IReadOnlyList<DefaultUlimit> DefaultUlimits(List<string>? flags, IReadOnlyDictionary<string, DaemonConfigUlimit>? fromFile, List<string> conflicts)
    {
        var result = new List<DefaultUlimit>();
        if (flags is not null && fromFile is not null) conflicts.Add($"default-ulimits: (from flag: [{string.Join(' ', flags)}], from file: [{string.Join(' ', fromFile.Keys)}])");
        foreach (string flag in flags ?? [])
        {
            int eq = flag.IndexOf('=');
            string[] values = eq > 0 ? flag[(eq + 1)..].Split(':') : [];
            if (eq <= 0 || values.Length is < 1 or > 2
                || !long.TryParse(values[0], System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out long soft)
                || !long.TryParse(values[^1], System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out long hard))
                throw new DaemonConfigException($"invalid default-ulimit `{flag}`: give name=soft[:hard]");
            result.Add(Ulimit(flag[..eq], soft, hard));
        }
        foreach (var (key, u) in fromFile ?? new Dictionary<string, DaemonConfigUlimit>())
            result.Add(Ulimit(string.IsNullOrEmpty(u.Name) ? key : u.Name, u.Soft, u.Hard));
        return result;

        static DefaultUlimit Ulimit(string name, long soft, long hard)
        {
            if (!UlimitNames.Contains(name)) throw new DaemonConfigException($"invalid default-ulimit name `{name}`");
            if (soft > hard && hard != -1) throw new DaemonConfigException($"default-ulimit {name}: soft limit {soft} is above the hard limit {hard}");
            return new DefaultUlimit(name, soft, hard);
        }
    }

    /// <summary>The rlimit names docker's --ulimit takes (go-units' ulimit table).</summary>
    private static readonly HashSet<string> UlimitNames = new(StringComparer.Ordinal)
    {
        "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
    };

    /// <summary>A boolean flag: alone it is true; <c>--flag=true|false</c> says which; anything else is refused.</summary>
    private static bool BoolFlag(string name, string? value)
        => value is null || (bool.TryParse(value, out bool b) ? b : throw new DaemonConfigException($"invalid value \"{value}\" for flag {name}: give true or false"));

    private static long Microseconds(string what, string? text)
        => text is null ? 0
            : long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n) ? n
            : throw new DaemonConfigException($"invalid {what} `{text}`: give microseconds");

    /// <summary>--log-opt key=value (repeatable) or daemon.json's "log-opts" (both: refused, as dockerd does).</summary>
    private static IReadOnlyDictionary<string, string> LogOpts(List<string>? flags, IReadOnlyDictionary<string, string>? fromFile, List<string> conflicts)
    {
        if (flags is null) return fromFile ?? new Dictionary<string, string>();
        if (fromFile is not null) conflicts.Add($"log-opts: (from flag: [{string.Join(' ', flags)}], from file: {{{string.Join(' ', fromFile.Select(kv => kv.Key + ":" + kv.Value))}}})");
        var opts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string flag in flags)
        {
            int eq = flag.IndexOf('=');
            if (eq <= 0) throw new DaemonConfigException($"invalid --log-opt `{flag}`: give key=value");
            opts[flag[..eq]] = flag[(eq + 1)..];
        }
        return opts;
    }

    /// <summary>
    /// --seccomp-profile's file, read and checked once at start as dockerd does (every rule compiled
    /// for this host, whatever its conditions); null for "builtin" and "unconfined".
    /// </summary>
    private static DockerSeccompProfile? LoadSeccompProfile(string path)
    {
        if (path is DaemonOptions.BuiltinSeccompProfile or DaemonOptions.UnconfinedSeccompProfile) return null;
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DaemonConfigException($"opening seccomp profile ({path}) failed: {e.Message}", e);
        }
        try
        {
            DockerSeccompProfile profile = DockerSeccompProfile.Parse(json);
            SeccompArch arch = Containers.ContainerSpecFactory.HostArch();
            SeccompCompiler.Compile(profile.AllRules(arch), arch);
            return profile;
        }
        catch (SeccompException e)
        {
            throw new DaemonConfigException($"invalid seccomp profile ({path}): {e.Message}", e);
        }
    }

    private static readonly System.Text.RegularExpressions.Regex ValidRuntimeName =
        new("^[A-Za-z0-9][A-Za-z0-9_.-]*$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    private static string Absolute(string path, string what)
    {
        if (path.Length == 0) throw new DaemonConfigException($"{what} is empty");
        return Path.GetFullPath(path);
    }
}

/// <summary>The config file: dockerd's daemon.json keys that berthd knows.</summary>
public sealed partial record DaemonConfigFile
{
    [JsonPropertyName("data-root")] public string? DataRoot { get; init; }
    [JsonPropertyName("exec-root")] public string? ExecRoot { get; init; }
    [JsonPropertyName("hosts")] public IReadOnlyList<string>? Hosts { get; init; }
    [JsonPropertyName("pidfile")] public string? PidFile { get; init; }
    [JsonPropertyName("insecure-registries")] public IReadOnlyList<string>? InsecureRegistries { get; init; }
    [JsonPropertyName("log-level")] public string? LogLevel { get; init; }
    [JsonPropertyName("group")] public string? Group { get; init; }
    [JsonPropertyName("tlscert")] public string? TlsCert { get; init; }
    [JsonPropertyName("tlskey")] public string? TlsKey { get; init; }
    [JsonPropertyName("tlscacert")] public string? TlsCaCert { get; init; }
    [JsonPropertyName("tlsverify")] public bool? TlsVerify { get; init; }
    [JsonPropertyName("bridge")] public string? Bridge { get; init; }
    [JsonPropertyName("bip")] public string? Bip { get; init; }
    [JsonPropertyName("bridge-netns")] public string? BridgeNetns { get; init; }
    [JsonPropertyName("init-path")] public string? InitPath { get; init; }
    [JsonPropertyName("seccomp-profile")] public string? SeccompProfile { get; init; }
    [JsonPropertyName("debug")] public bool? Debug { get; init; }
    [JsonPropertyName("live-restore")] public bool? LiveRestore { get; init; }
    [JsonPropertyName("storage-driver")] public string? StorageDriver { get; init; }
    [JsonPropertyName("exec-opts")] public IReadOnlyList<string>? ExecOpts { get; init; }
    [JsonPropertyName("cgroup-parent")] public string? CgroupParent { get; init; }
    [JsonPropertyName("cpu-rt-period")] public long? CpuRtPeriod { get; init; }
    [JsonPropertyName("cpu-rt-runtime")] public long? CpuRtRuntime { get; init; }
    [JsonPropertyName("default-shm-size")] public string? DefaultShmSize { get; init; }
    [JsonPropertyName("default-ulimits")] public IReadOnlyDictionary<string, DaemonConfigUlimit>? DefaultUlimits { get; init; }
    [JsonPropertyName("dns")] public IReadOnlyList<string>? Dns { get; init; }
    [JsonPropertyName("dns-search")] public IReadOnlyList<string>? DnsSearch { get; init; }
    [JsonPropertyName("dns-opts")] public IReadOnlyList<string>? DnsOpts { get; init; }
    [JsonPropertyName("log-driver")] public string? LogDriver { get; init; }
    [JsonPropertyName("log-opts")] public IReadOnlyDictionary<string, string>? LogOpts { get; init; }
    [JsonPropertyName("default-runtime")] public string? DefaultRuntime { get; init; }
    [JsonPropertyName("runtimes")] public IReadOnlyDictionary<string, DaemonConfigRuntime>? Runtimes { get; init; }
    [JsonPropertyName("userns-remap")] public string? UsernsRemap { get; init; }

    // registry mirrors, transfers, container defaults
    [JsonPropertyName("registry-mirrors")] public IReadOnlyList<string>? RegistryMirrors { get; init; }
    [JsonPropertyName("max-concurrent-downloads")] public int? MaxConcurrentDownloads { get; init; }
    [JsonPropertyName("max-concurrent-uploads")] public int? MaxConcurrentUploads { get; init; }
    [JsonPropertyName("max-download-attempts")] public int? MaxDownloadAttempts { get; init; }
    [JsonPropertyName("init")] public bool? Init { get; init; }
    [JsonPropertyName("no-new-privileges")] public bool? NoNewPrivileges { get; init; }
    [JsonPropertyName("default-cgroupns-mode")] public string? DefaultCgroupnsMode { get; init; }
    [JsonPropertyName("default-ipc-mode")] public string? DefaultIpcMode { get; init; }
    [JsonPropertyName("labels")] public IReadOnlyList<string>? Labels { get; init; }
    [JsonPropertyName("experimental")] public bool? Experimental { get; init; }
    [JsonPropertyName("shutdown-timeout")] public int? ShutdownTimeout { get; init; }
    [JsonPropertyName("features")] public IReadOnlyDictionary<string, bool>? Features { get; init; }

    public static DaemonConfigFile Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DaemonConfigException($"unable to read config file `{path}`: {e.Message}", e);
        }
        try
        {
            return JsonSerializer.Deserialize(bytes, ConfigJsonContext.Default.DaemonConfigFile)
                ?? throw new DaemonConfigException($"config file `{path}` is `null`");
        }
        catch (JsonException e)
        {
            throw new DaemonConfigException($"unable to configure the daemon with file `{path}`: {e.Message}", e);
        }
    }
}

/// <summary>One entry of the config file's "default-ulimits" (dockerd's shape: go-units' Ulimit).</summary>
public sealed record DaemonConfigUlimit
{
    [JsonPropertyName("Name")] public string? Name { get; init; }
    [JsonPropertyName("Soft")] public long Soft { get; init; }
    [JsonPropertyName("Hard")] public long Hard { get; init; }
}

/// <summary>One entry of the config file's "runtimes" (dockerd's shape).</summary>
public sealed record DaemonConfigRuntime
{
    [JsonPropertyName("path")] public string? Path { get; init; }
    [JsonPropertyName("runtimeArgs")] public IReadOnlyList<string>? RuntimeArgs { get; init; }
}

[JsonSourceGenerationOptions(UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(DaemonConfigFile))]
internal sealed partial class ConfigJsonContext : JsonSerializerContext;
