using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Daemon.Containers;

namespace Berth.Daemon.Api;

// Responses of /containers and /exec (moby api/types), as Docker spells them.

public sealed record ContainerCreateResponse(string Id, IReadOnlyList<string> Warnings);

/// <summary>POST /containers/{id}/update's answer.</summary>
public sealed record ContainerUpdateResponse(IReadOnlyList<string> Warnings);

public sealed record WaitError(string Message);

public sealed record WaitResponse(long StatusCode, WaitError? Error);

public sealed record GraphDriverJson(string Name, IReadOnlyDictionary<string, string> Data);

public sealed record MountPointJson(string Type, string Source, string Destination, string Mode, bool RW, string Propagation)
{
    /// <summary>The volume's name (volumes only).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Name { get; init; }

    /// <summary>The volume's driver (volumes only).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Driver { get; init; }
}

public sealed record PortBindingJson(string HostIp, string HostPort);

public sealed record EndpointSettingsJson
{
    public JsonElement? IPAMConfig { get; init; }
    public IReadOnlyList<string>? Links { get; init; }
    public IReadOnlyList<string>? Aliases { get; init; }
    public string NetworkID { get; init; } = "";
    public string EndpointID { get; init; } = "";
    public string Gateway { get; init; } = "";
    public string IPAddress { get; init; } = "";
    public int IPPrefixLen { get; init; }
    public string IPv6Gateway { get; init; } = "";
    public string GlobalIPv6Address { get; init; } = "";
    public int GlobalIPv6PrefixLen { get; init; }
    public string MacAddress { get; init; } = "";
    /// <summary>Always null: berthd refuses endpoint driver options at create and connect.</summary>
    public IReadOnlyDictionary<string, string>? DriverOpts { get; init; }
    /// <summary>The names peers resolve the container by on a user network (API 1.44).</summary>
    public IReadOnlyList<string>? DNSNames { get; init; }
}

/// <summary>EndpointSettings.IPAMConfig as inspect shows what was asked (omitempty, as moby's).</summary>
public sealed record EndpointIpamJson(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? IPv4Address,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? IPv6Address = null);

/// <summary>Inspect's NetworkSettings, every field dockerd 20.10 shows (the legacy ones included: clients of API ≤ 1.43 read them).</summary>
public sealed record NetworkSettingsJson
{
    public string Bridge { get; init; } = "";
    public string SandboxID { get; init; } = "";
    public bool HairpinMode { get; init; }
    public string LinkLocalIPv6Address { get; init; } = "";
    public int LinkLocalIPv6PrefixLen { get; init; }
    public Dictionary<string, IReadOnlyList<PortBindingJson>?> Ports { get; init; } = [];
    public string SandboxKey { get; init; } = "";
    public IReadOnlyList<string>? SecondaryIPAddresses { get; init; }
    public IReadOnlyList<string>? SecondaryIPv6Addresses { get; init; }
    public string EndpointID { get; init; } = "";
    public string Gateway { get; init; } = "";
    public string IPAddress { get; init; } = "";
    public int IPPrefixLen { get; init; }
    public string MacAddress { get; init; } = "";
    public string GlobalIPv6Address { get; init; } = "";
    public int GlobalIPv6PrefixLen { get; init; }
    public string IPv6Gateway { get; init; } = "";
    public Dictionary<string, EndpointSettingsJson> Networks { get; init; } = [];
}

/// <summary>A port in GET /containers/json.</summary>
public sealed record SummaryPortJson
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? IP { get; init; }
    public int PrivatePort { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int PublicPort { get; init; }
    public string Type { get; init; } = "tcp";
}

public sealed record ContainerInspectJson
{
    public string Id { get; init; } = "";
    public string Created { get; init; } = "";
    public string Path { get; init; } = "";
    public IReadOnlyList<string> Args { get; init; } = [];
    public ContainerStateJson State { get; init; } = new();
    public string Image { get; init; } = "";
    public string ResolvConfPath { get; init; } = "";
    public string HostnamePath { get; init; } = "";
    public string HostsPath { get; init; } = "";
    public string LogPath { get; init; } = "";
    public string Name { get; init; } = "";
    public int RestartCount { get; init; }
    public string Driver { get; init; } = "overlayfs";
    public string Platform { get; init; } = "linux";
    public string MountLabel { get; init; } = "";
    public string ProcessLabel { get; init; } = "";
    public string AppArmorProfile { get; init; } = "";
    public IReadOnlyList<string>? ExecIDs { get; init; }
    public HostConfigJson HostConfig { get; init; } = new();
    public GraphDriverJson GraphDriver { get; init; } = new("overlayfs", new Dictionary<string, string>());
    /// <summary>Only with size=1 (<c>inspect -s</c>), as dockerd.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? SizeRw { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? SizeRootFs { get; init; }
    public IReadOnlyList<MountPointJson> Mounts { get; init; } = [];
    public ContainerConfigJson Config { get; init; } = new();
    public NetworkSettingsJson NetworkSettings { get; init; } = new();
}

public sealed record SummaryHostConfig(string NetworkMode);

public sealed record SummaryNetworkSettings(Dictionary<string, EndpointSettingsJson> Networks);

public sealed record ContainerSummaryJson
{
    public string Id { get; init; } = "";
    public IReadOnlyList<string> Names { get; init; } = [];
    public string Image { get; init; } = "";
    public string ImageID { get; init; } = "";
    public string Command { get; init; } = "";
    public long Created { get; init; }
    public IReadOnlyList<SummaryPortJson> Ports { get; init; } = [];
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? SizeRw { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? SizeRootFs { get; init; }
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public string State { get; init; } = "";
    public string Status { get; init; } = "";
    public SummaryHostConfig HostConfig { get; init; } = new("none");
    public SummaryNetworkSettings NetworkSettings { get; init; } = new([]);
    public IReadOnlyList<MountPointJson> Mounts { get; init; } = [];

    /// <summary>size=1's figures, left out when 0 as moby's omitempty does.</summary>
    public ContainerSummaryJson WithSizes(long rw, long rootFs) => this with { SizeRw = rw == 0 ? null : rw, SizeRootFs = rootFs == 0 ? null : rootFs };
}

public sealed record ContainerTopResponse(IReadOnlyList<string> Titles, IReadOnlyList<IReadOnlyList<string>> Processes);

public sealed record ContainersPruneReport(IReadOnlyList<string>? ContainersDeleted, long SpaceReclaimed);

public sealed record ContainerChange(string Path, int Kind);

public sealed record IdResponse(string Id);

/// <summary>POST /containers/{id}/exec.</summary>
public sealed class ExecCreateBody
{
    public bool AttachStdin { get; set; }
    public bool AttachStdout { get; set; }
    public bool AttachStderr { get; set; }
    public List<int>? ConsoleSize { get; set; }
    public string? DetachKeys { get; set; }
    public bool Tty { get; set; }
    public List<string>? Env { get; set; }
    public List<string>? Cmd { get; set; } // an array only: unlike a container's Cmd (a strslice), dockerd refuses a string here
    public bool Privileged { get; set; }
    public string? User { get; set; }
    public string? WorkingDir { get; set; }
}

/// <summary>POST /exec/{id}/start.</summary>
public sealed class ExecStartBody
{
    public bool Detach { get; set; }
    public bool Tty { get; set; }
    public List<int>? ConsoleSize { get; set; }
}

/// <summary>moby's ExecProcessConfig: user omitempty.</summary>
public sealed record ExecProcessConfigJson(bool tty, string entrypoint, IReadOnlyList<string> arguments, bool privileged,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? user);

public sealed record ExecInspectJson
{
    public bool CanRemove { get; init; }
    public string DetachKeys { get; init; } = "";
    public string ID { get; init; } = "";
    public bool Running { get; init; }
    public int? ExitCode { get; init; }
    public ExecProcessConfigJson ProcessConfig { get; init; } = new(false, "", [], false, null);
    public bool OpenStdin { get; init; }
    public bool OpenStderr { get; init; }
    public bool OpenStdout { get; init; }
    public string ContainerID { get; init; } = "";
    public int Pid { get; init; }
}

/// <summary>
/// One sample of GET /containers/{id}/stats, moby's types.StatsJSON field for field and in its order
/// (what dockerd 20.10 sends on this cgroup layout): omitempty where moby has it, so a stopped
/// container's sample is the zero one dockerd sends (empty pids_stats and memory_stats).
/// </summary>
public sealed record StatsJson
{
    public string read { get; init; } = ContainerStateJson.ZeroTime;
    public string preread { get; init; } = ContainerStateJson.ZeroTime;
    public PidsStatsJson pids_stats { get; init; } = new();
    public BlkioStatsJson blkio_stats { get; init; } = new();
    public uint num_procs { get; init; }
    public StorageStatsJson storage_stats { get; init; } = new();
    public CpuStatsJson cpu_stats { get; init; } = new();
    public CpuStatsJson precpu_stats { get; init; } = new();
    public MemoryStatsJson memory_stats { get; init; } = new();
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public string? name { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public string? id { get; init; }
    /// <summary>Per interface of the container's own network namespace (lo left out); absent without one.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Dictionary<string, NetworkStatsJson>? networks { get; init; }
}

public sealed record PidsStatsJson
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong current { get; init; }
    /// <summary>0 (left out) when unlimited.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong limit { get; init; }
}

/// <summary>Windows' figures in moby: every field omitempty, so Linux sends {}.</summary>
public sealed record StorageStatsJson;

public sealed record CpuUsageJson
{
    public ulong total_usage { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<ulong>? percpu_usage { get; init; }
    public ulong usage_in_kernelmode { get; init; }
    public ulong usage_in_usermode { get; init; }
}

public sealed record ThrottlingDataJson(ulong periods, ulong throttled_periods, ulong throttled_time);

public sealed record CpuStatsJson
{
    public CpuUsageJson cpu_usage { get; init; } = new();
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong system_cpu_usage { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public uint online_cpus { get; init; }
    public ThrottlingDataJson throttling_data { get; init; } = new(0, 0, 0);
}

public sealed record MemoryStatsJson
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong usage { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong max_usage { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Dictionary<string, ulong>? stats { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong failcnt { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong limit { get; init; }
}

public sealed record BlkioEntryJson(ulong major, ulong minor, string op, ulong value);

/// <summary>
/// Every list is sent, null when not read: dockerd fills all eight on cgroup v1 ([] where the
/// kernel has no such file) and only the bytes on v2.
/// </summary>
public sealed record BlkioStatsJson
{
    public IReadOnlyList<BlkioEntryJson>? io_service_bytes_recursive { get; init; }
    public IReadOnlyList<BlkioEntryJson>? io_serviced_recursive { get; init; }
    public IReadOnlyList<BlkioEntryJson>? io_queue_recursive { get; init; }
    public IReadOnlyList<BlkioEntryJson>? io_service_time_recursive { get; init; }
    public IReadOnlyList<BlkioEntryJson>? io_wait_time_recursive { get; init; }
    public IReadOnlyList<BlkioEntryJson>? io_merged_recursive { get; init; }
    public IReadOnlyList<BlkioEntryJson>? io_time_recursive { get; init; }
    public IReadOnlyList<BlkioEntryJson>? sectors_recursive { get; init; }
}

public sealed record NetworkStatsJson(ulong rx_bytes, ulong rx_packets, ulong rx_errors, ulong rx_dropped, ulong tx_bytes, ulong tx_packets, ulong tx_errors, ulong tx_dropped);

/// <summary>GET /networks entries (api/types/network.Inspect).</summary>
public sealed record NetworkJson
{
    public string Name { get; init; } = "";
    public string Id { get; init; } = "";
    public string Created { get; init; } = "";
    public string Scope { get; init; } = "local";
    public string Driver { get; init; } = "bridge";
    public bool EnableIPv6 { get; init; }
    public NetworkIpamJson IPAM { get; init; } = new();
    public bool Internal { get; init; }
    public bool Attachable { get; init; }
    public bool Ingress { get; init; }
    /// <summary>Swarm's config-only networks: berthd has none, so always the empty reference and false, as dockerd shows a local network.</summary>
    public ConfigReferenceJson ConfigFrom { get; init; } = new("");
    public bool ConfigOnly { get; init; }
    public Dictionary<string, NetworkContainerJson> Containers { get; init; } = [];
    public Dictionary<string, string> Options { get; init; } = [];
    public Dictionary<string, string> Labels { get; init; } = [];
}

public sealed record ConfigReferenceJson(string Network);

public sealed record NetworkIpamJson
{
    public string Driver { get; init; } = "default";
    public Dictionary<string, string>? Options { get; init; }
    public IReadOnlyList<IpamPoolJson> Config { get; init; } = [];
}

/// <summary>One IPAM.Config entry as dockerd shows it: IPRange, Gateway and AuxiliaryAddresses only when set.</summary>
public sealed record IpamPoolJson
{
    public IpamPoolJson(string subnet, string? gateway, string? ipRange = null, Dictionary<string, string>? auxiliaryAddresses = null)
    {
        Subnet = subnet;
        Gateway = gateway;
        IPRange = ipRange;
        AuxiliaryAddresses = auxiliaryAddresses;
    }

    public string Subnet { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? IPRange { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Gateway { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Dictionary<string, string>? AuxiliaryAddresses { get; init; }
}

public sealed record NetworkContainerJson(string Name, string EndpointID, string MacAddress, string IPv4Address, string IPv6Address);

/// <summary>POST /networks/create.</summary>
public sealed class NetworkCreateBody
{
    public string Name { get; set; } = "";
    public string? Driver { get; set; }
    public bool Internal { get; set; }
    public bool? CheckDuplicate { get; set; }
    public bool Attachable { get; set; }
    /// <summary>A *bool in moby's API (null: the daemon's default, IPv4 only here).</summary>
    public bool? EnableIPv6 { get; set; }
    public NetworkCreateIpam? IPAM { get; set; }
    public Dictionary<string, string>? Options { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
}

public sealed class NetworkCreateIpam
{
    public string? Driver { get; set; }
    /// <summary>Kept and shown back as given (null and {} differ, as in dockerd's inspect).</summary>
    public Dictionary<string, string>? Options { get; set; }
    public List<NetworkCreatePool>? Config { get; set; }
}

public sealed class NetworkCreatePool
{
    public string? Subnet { get; set; }
    public string? Gateway { get; set; }
    public string? IPRange { get; set; }
    public Dictionary<string, string>? AuxiliaryAddresses { get; set; }
}

public sealed record NetworkCreateResponse(string Id, string Warning);

public sealed record NetworksPruneReport(IReadOnlyList<string>? NetworksDeleted);

/// <summary>POST /networks/{id}/connect (api/types/network.ConnectOptions).</summary>
public sealed class NetworkConnectBody
{
    public string Container { get; set; } = "";
    public EndpointConfigBody? EndpointConfig { get; set; }
}

/// <summary>The endpoint settings connect takes: aliases and --ip are served; the rest must be empty.</summary>
public sealed class EndpointConfigBody
{
    public List<string>? Aliases { get; set; }
    public EndpointIpamBody? IPAMConfig { get; set; }
    public List<string>? Links { get; set; }
    public string? MacAddress { get; set; }
    public Dictionary<string, string>? DriverOpts { get; set; }
    public List<string>? DNSNames { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Unknown { get; set; }
}

public sealed class EndpointIpamBody
{
    public string? IPv4Address { get; set; }
    public string? IPv6Address { get; set; }
    public List<string>? LinkLocalIPs { get; set; }
}

/// <summary>POST /networks/{id}/disconnect (api/types/network.DisconnectOptions).</summary>
public sealed class NetworkDisconnectBody
{
    public string Container { get; set; } = "";
    public bool Force { get; set; }
}
