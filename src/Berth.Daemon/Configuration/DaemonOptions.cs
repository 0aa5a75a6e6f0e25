namespace Berth.Daemon.Configuration;

/// <summary>Where berthd keeps its state and where it listens: dockerd's flags and daemon.json keys.</summary>
public sealed partial record DaemonOptions
{
    public const string DefaultDataRoot = "/var/lib/berth";
    public const string DefaultExecRoot = "/run/berth";
    public const string DefaultHost = "unix:///run/berth/berth.sock";

    /// <summary>Persistent state: content store, snapshots, image names (later containers).</summary>
    public string DataRoot { get; init; } = DefaultDataRoot;

    /// <summary>Runtime state that does not survive a reboot (later the runtime's state, monitors' sockets).</summary>
    public string ExecRoot { get; init; } = DefaultExecRoot;

    /// <summary>Listen addresses: <c>unix:///path</c> or <c>tcp://host:port</c> (TLS required).</summary>
    public IReadOnlyList<string> Hosts { get; init; } = [DefaultHost];

    public string? PidFile { get; init; }

    /// <summary>Registries (host[:port]) spoken to over plain HTTP.</summary>
    public IReadOnlyList<string> InsecureRegistries { get; init; } = [];

    /// <summary>debug, info, warn, error, fatal (dockerd's names).</summary>
    public string LogLevel { get; init; } = "info";

    /// <summary>The group given the unix sockets (mode 0660), when it exists.</summary>
    public string SocketGroup { get; init; } = "berth";

    public TlsOptions Tls { get; init; } = new();

    /// <summary>The default network's bridge; "none": no bridge network (containers default to --network none).</summary>
    public string Bridge { get; init; } = "berth0";

    /// <summary>The default bridge's subnet (--bip); null: chosen to avoid the host's routes.</summary>
    public string? BridgeSubnet { get; init; }

    /// <summary>The network namespace bridges, NAT and port rules live in; null: berthd's own (tests use a private one).</summary>
    public string? BridgeNetns { get; init; }

    /// <summary>Where berth-runtime and berth-monitor are; null: next to berthd, then PATH.</summary>
    public string? BinDirectory { get; init; }

    /// <summary>Extra OCI runtimes by name (dockerd's --add-runtime name=path and daemon.json's "runtimes").</summary>
    public IReadOnlyDictionary<string, AddedRuntime> Runtimes { get; init; } = new Dictionary<string, AddedRuntime>();

    /// <summary>--init-path: the init run as PID 1 with --init; null: docker-init (Debian's tini) on PATH.</summary>
    public string? InitPath { get; init; }

    /// <summary>--cgroup-parent: the parent cgroup of containers that name none; null: /berth.</summary>
    public string? CgroupParent { get; init; }

    /// <summary>--default-shm-size in bytes: /dev/shm of containers that name no size; 0: <see cref="DockerShmSize"/>.</summary>
    public long DefaultShmSize { get; init; }

    /// <summary>dockerd's default /dev/shm size, 64 MiB.</summary>
    public const long DockerShmSize = 64L << 20;

    /// <summary>--default-ulimit: rlimits of containers that do not set them.</summary>
    public IReadOnlyList<DefaultUlimit> DefaultUlimits { get; init; } = [];

    /// <summary>--dns, --dns-search, --dns-opt: resolv.conf of containers that name none (else the host's).</summary>
    public IReadOnlyList<string> Dns { get; init; } = [];
    public IReadOnlyList<string> DnsSearch { get; init; } = [];
    public IReadOnlyList<string> DnsOptions { get; init; } = [];

    /// <summary>
    /// --cpu-rt-period / --cpu-rt-runtime (µs): the real-time budget written into every parent of
    /// a container that asks for one (cgroup v1; a child cannot have more than its parent); 0: none.
    /// </summary>
    public long CpuRealtimePeriod { get; init; }
    public long CpuRealtimeRuntime { get; init; }

    public const string DefaultLogDriver = "json-file";

    /// <summary>--log-driver: the logging driver of containers that name none (json-file, local, syslog, gelf, fluentd, journald or none).</summary>
    public string LogDriver { get; init; } = DefaultLogDriver;

    /// <summary>journald's native socket, where the journald driver sends (systemd's path; tests point it elsewhere).</summary>
    public string JournalSocket { get; init; } = "/run/systemd/journal/socket";

    /// <summary>--userns-remap as given (USER[:GROUP], UID[:GID] or default); null: containers share the host's user namespace.</summary>
    public string? UsernsRemapSetting { get; init; }

    /// <summary>
    /// The mapping <see cref="UsernsRemapSetting"/> resolves to, set by the host at start (with <see cref="DataRoot"/>
    /// moved to its UID.GID directory); null without remapping.
    /// </summary>
    public UsernsRemap? Remap { get; init; }

    /// <summary>The mapping a container with this HostConfig.UsernsMode runs with: <see cref="Remap"/>, unless it opted out with --userns=host.</summary>
    public UsernsRemap? RemapFor(string usernsMode) => usernsMode == "host" ? null : Remap;

    /// <summary>The user, group and subordinate id databases --userns-remap reads (tests point them at files of their own).</summary>
    public string PasswdFile { get; init; } = "/etc/passwd";
    public string GroupFile { get; init; } = "/etc/group";
    public string SubuidFile { get; init; } = "/etc/subuid";
    public string SubgidFile { get; init; } = "/etc/subgid";

    /// <summary>--log-opt: options of <see cref="LogDriver"/> given to containers of that driver that do not set them.</summary>
    public IReadOnlyDictionary<string, string> LogOpts { get; init; } = new Dictionary<string, string>();

    public const string BuiltinSeccompProfile = "builtin";
    public const string UnconfinedSeccompProfile = "unconfined";

    /// <summary>
    /// --seccomp-profile: the filter of containers that name none (or <c>seccomp=builtin</c>):
    /// "builtin" (Docker's default profile), "unconfined" (none), or the path of a profile in
    /// Docker's format, held read and checked in <see cref="SeccompProfile"/>.
    /// </summary>
    public string SeccompProfilePath { get; init; } = BuiltinSeccompProfile;

    /// <summary>The profile at <see cref="SeccompProfilePath"/>; null for builtin and unconfined.</summary>
    public Berth.Seccomp.DockerSeccompProfile? SeccompProfile { get; init; }

    // ---- registry mirrors, transfers, container defaults (dockerd's registry-mirrors, max-concurrent-*, init, …) ----

    /// <summary>
    /// --registry-mirror: Docker Hub mirrors as dockerd normalises them (<c>http(s)://host[:port]/</c>),
    /// tried in order before Docker Hub by pulls of docker.io images.
    /// </summary>
    public IReadOnlyList<string> RegistryMirrors { get; init; } = [];

    /// <summary>--max-concurrent-downloads: layers downloaded at once, all pulls together (0: no limit, as in dockerd).</summary>
    public int MaxConcurrentDownloads { get; init; } = 3;

    /// <summary>--max-concurrent-uploads: blobs uploaded at once, all pushes together (0: no limit).</summary>
    public int MaxConcurrentUploads { get; init; } = 5;

    /// <summary>--max-download-attempts: attempts of each layer download (network errors and 5xx are retried, 4xx not).</summary>
    public int MaxDownloadAttempts { get; init; } = 5;

    /// <summary>--init: containers that do not say (<c>HostConfig.Init</c> null) run with the init as PID 1.</summary>
    public bool Init { get; init; }

    /// <summary>--no-new-privileges: containers get no_new_privs unless their security options say <c>no-new-privileges=false</c>.</summary>
    public bool NoNewPrivileges { get; init; }

    /// <summary>--default-cgroupns-mode: host or private; null: dockerd's default, private on cgroup v2 and host on v1.</summary>
    public string? DefaultCgroupnsMode { get; init; }

    /// <summary>--default-ipc-mode: private (dockerd 20.10's default) or shareable.</summary>
    public string DefaultIpcMode { get; init; } = "private";

    /// <summary>--label: the daemon's labels (key=value, no key twice), shown by docker info.</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];

    /// <summary>--experimental: reported as dockerd reports it (info ExperimentalBuild, version, Docker-Experimental).</summary>
    public bool Experimental { get; init; }

    /// <summary>
    /// --shutdown-timeout in seconds: how long a stopping berthd lets API requests in progress run
    /// before it closes them (containers are never stopped by it: they outlive berthd, as dockerd's
    /// with --live-restore); negative: as long as they take, as dockerd waits for ever then.
    /// </summary>
    public int ShutdownTimeout { get; init; } = DefaultShutdownTimeout;

    public const int DefaultShutdownTimeout = 15;

    /// <summary>The cgroup namespace mode of containers that name none (and are not privileged on cgroup v1).</summary>
    public string CgroupnsModeFor(bool cgroupV2) => DefaultCgroupnsMode ?? (cgroupV2 ? "private" : "host");

    // ---- end of registry mirrors, transfers, container defaults ----

    /// <summary>The binary --init runs (dockerd's docker-init, which is tini), null when there is none.</summary>
    public string? InitBinary()
    {
        if (InitPath is not null) return File.Exists(InitPath) ? InitPath : null;
        return Api.RuntimeFinder.Find("docker-init") ?? Api.RuntimeFinder.Find("tini-static");
    }

    /// <summary>The runtimes berthd knows without configuration; their names cannot be taken by an added one.</summary>
    public static readonly IReadOnlyList<string> BuiltInRuntimes = ["berth-runtime", "berth", "runc", "crun"];

    /// <summary>"berth" is another name of berth-runtime (one state directory, one name in records).</summary>
    public static string CanonicalRuntimeName(string name) => name == "berth" ? "berth-runtime" : name;

    /// <summary>The runtime a container gets when it names none (canonical, see <see cref="CanonicalRuntimeName"/>).</summary>
    public string DefaultRuntime { get; init; } = "berth-runtime";

    /// <summary>A helper binary of Berth's (berth-runtime, berth-monitor): <see cref="BinDirectory"/>, next to berthd, then PATH.</summary>
    public string? BerthBinary(string name)
    {
        if (BinDirectory is not null)
        {
            string candidate = System.IO.Path.Combine(BinDirectory, name);
            return File.Exists(candidate) ? candidate : null;
        }
        return Api.RuntimeFinder.Find(name);
    }

    /// <summary>The binary of runtime <paramref name="name"/> (berth-runtime, runc, crun or an added one), null when unknown or missing.</summary>
    public string? RuntimePath(string name)
    {
        if (Runtimes.TryGetValue(name, out AddedRuntime? added))
            return System.IO.Path.IsPathRooted(added.Path) ? (File.Exists(added.Path) ? added.Path : null) : Api.RuntimeFinder.Find(added.Path);
        return name switch
        {
            "berth-runtime" or "berth" => BerthBinary("berth-runtime"),
            "runc" or "crun" => Api.RuntimeFinder.Find(name),
            _ => null,
        };
    }
}

/// <summary>TLS for TCP listeners (dockerd's --tlscert/--tlskey/--tlscacert/--tlsverify).</summary>
public sealed record TlsOptions
{
    public string? CertFile { get; init; }
    public string? KeyFile { get; init; }
    public string? CaCertFile { get; init; }

    /// <summary>Require client certificates signed by <see cref="CaCertFile"/>.</summary>
    public bool Verify { get; init; }

    public bool Configured => CertFile is not null && KeyFile is not null;
}

/// <summary>
/// A runtime added by configuration: its binary (an absolute path, or a name looked up on PATH)
/// and the global arguments it gets before each command (daemon.json's runtimeArgs).
/// </summary>
public sealed record AddedRuntime(string Path, IReadOnlyList<string> Args);

/// <summary>A --default-ulimit: an rlimit by docker's name (nofile, nproc, …).</summary>
public sealed record DefaultUlimit(string Name, long Soft, long Hard);
