using System.Text.Json;
using System.Text.Json.Serialization;

namespace Berth.Daemon.Containers;

// The Engine API's container documents (moby api/types/container), field names as Docker spells
// them. The same types are the persistent record (config.v2.json), so what `inspect` shows is
// what was stored. Fields berthd does not implement are captured by [JsonExtensionData] and
// refused at create when they carry a non-zero value (ContainerRequestCheck), never dropped.
// Fields moby marks omitempty (ExposedPorts, NetworkDisabled, Tmpfs, Sysctls, Mounts, Init…)
// are left out when null, as dockerd's inspect leaves them out.

/// <summary>The container's Config (api/types/container.Config).</summary>
public class ContainerConfigJson
{
    public string Hostname { get; set; } = "";
    public string Domainname { get; set; } = "";
    public string User { get; set; } = "";
    public bool AttachStdin { get; set; }
    public bool AttachStdout { get; set; }
    public bool AttachStderr { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Dictionary<string, JsonElement>? ExposedPorts { get; set; }
    public bool Tty { get; set; }
    public bool OpenStdin { get; set; }
    public bool StdinOnce { get; set; }
    public List<string>? Env { get; set; }
    [JsonConverter(typeof(StringOrListConverter))] public List<string>? Cmd { get; set; }
    public string Image { get; set; } = "";
    public Dictionary<string, JsonElement>? Volumes { get; set; }
    public string WorkingDir { get; set; } = "";
    [JsonConverter(typeof(StringOrListConverter))] public List<string>? Entrypoint { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? NetworkDisabled { get; set; }
    public List<string>? OnBuild { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? StopSignal { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? StopTimeout { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<string>? Shell { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public HealthConfigJson? Healthcheck { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? MacAddress { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? ArgsEscaped { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Unknown { get; set; }
}

/// <summary>
/// POST /containers/create: the Config fields at the top level, plus HostConfig and
/// NetworkingConfig. Stored as the container's Config (serialized as ContainerConfigJson, the
/// declared type, so the two extra fields stay out of it).
/// </summary>
public sealed class ContainerCreateBody : ContainerConfigJson
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public HostConfigJson? HostConfig { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? NetworkingConfig { get; set; }

    /// <summary>
    /// Docker.DotNet.Enhanced (under Testcontainers) sends the `name` query parameter in the body
    /// too. dockerd's create body has no such field and ignores it; the name is the query's. Read
    /// here so that it is not taken for a setting berthd does not serve, and never used.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Name { get; set; }
}

/// <summary>POST /containers/{id}/update's body: dockerd's container.UpdateConfig (the limits it can change, and RestartPolicy).</summary>
public sealed class ContainerUpdateBody
{
    public long CpuShares { get; set; }
    public long Memory { get; set; }
    public long NanoCpus { get; set; }
    public long CpuPeriod { get; set; }
    public long CpuQuota { get; set; }
    public string CpusetCpus { get; set; } = "";
    public string CpusetMems { get; set; } = "";
    public long MemoryReservation { get; set; }
    public long MemorySwap { get; set; }
    public long? PidsLimit { get; set; }
    public long CpuRealtimePeriod { get; set; }
    public long CpuRealtimeRuntime { get; set; }
    public RestartPolicyJson? RestartPolicy { get; set; }
    /// <summary>Every other field of docker's Resources: refused when set (a 400 naming it), as at create.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Unknown { get; set; }
}

public sealed class RestartPolicyJson
{
    /// <summary>"" when the request gave none: dockerd records what it was sent (the docker CLI sends "no").</summary>
    public string Name { get; set; } = "";
    public int MaximumRetryCount { get; set; }
}

public sealed class LogConfigJson
{
    public string Type { get; set; } = "json-file";
    public Dictionary<string, string>? Config { get; set; }
}

/// <summary>HostConfig.BlkioWeightDevice entries (<c>--blkio-weight-device /dev/sda:200</c>).</summary>
public sealed class WeightDeviceJson
{
    public string Path { get; set; } = "";
    public ushort Weight { get; set; }
}

/// <summary>HostConfig.BlkioDevice{Read,Write}{Bps,IOps} entries (<c>--device-read-bps /dev/sda:1mb</c>): bytes or operations per second.</summary>
public sealed class ThrottleDeviceJson
{
    public string Path { get; set; } = "";
    public ulong Rate { get; set; }
}

/// <summary>HostConfig.Devices entries (<c>--device HOST[:CONTAINER[:PERMISSIONS]]</c>).</summary>
public sealed class DeviceMappingJson
{
    public string PathOnHost { get; set; } = "";
    public string PathInContainer { get; set; } = "";
    public string CgroupPermissions { get; set; } = "";
}

public sealed class UlimitJson
{
    public string Name { get; set; } = "";
    public long Hard { get; set; }
    public long Soft { get; set; }
}

/// <summary>
/// HostConfig.Mounts entries (api/types/mount.Mount): bind, volume and tmpfs are served. Recorded and
/// shown by inspect with moby's omitempty fields left out when empty (an anonymous volume has no Source).
/// </summary>
public sealed class MountJson
{
    public string Type { get; set; } = "";
    [JsonIgnore] public string Source { get; set; } = "";

    [JsonPropertyName("Source"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? SourceOrNull { get => Source.Length == 0 ? null : Source; set => Source = value ?? ""; }

    public string Target { get; set; } = "";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool ReadOnly { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? BindOptions { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public VolumeOptionsJson? VolumeOptions { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public TmpfsOptionsJson? TmpfsOptions { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Unknown { get; set; }
}

/// <summary>mount.VolumeOptions: what a volume mount asks of its volume.</summary>
public sealed class VolumeOptionsJson
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool NoCopy { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Dictionary<string, string>? Labels { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public VolumeDriverConfigJson? DriverConfig { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Subpath { get; set; }
}

public sealed class VolumeDriverConfigJson
{
    public string Name { get; set; } = "";
    public Dictionary<string, string>? Options { get; set; }
}

public sealed class TmpfsOptionsJson
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long SizeBytes { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int Mode { get; set; }
}

/// <summary>The container's HostConfig (api/types/container.HostConfig): what berthd applies.</summary>
public sealed class HostConfigJson
{
    public List<string>? Binds { get; set; }
    public string ContainerIDFile { get; set; } = "";
    public LogConfigJson LogConfig { get; set; } = new();
    public string NetworkMode { get; set; } = "";
    public JsonElement? PortBindings { get; set; }
    public RestartPolicyJson RestartPolicy { get; set; } = new();
    public bool AutoRemove { get; set; }
    public string VolumeDriver { get; set; } = "";
    public List<string>? VolumesFrom { get; set; }
    public List<string>? CapAdd { get; set; }
    public List<string>? CapDrop { get; set; }
    public string CgroupnsMode { get; set; } = "";
    public List<string>? Dns { get; set; }
    public List<string>? DnsOptions { get; set; }
    public List<string>? DnsSearch { get; set; }
    public List<string>? ExtraHosts { get; set; }
    public List<string>? GroupAdd { get; set; }
    public string IpcMode { get; set; } = "";
    public string Cgroup { get; set; } = "";
    public List<string>? Links { get; set; }
    public int OomScoreAdj { get; set; }
    public string PidMode { get; set; } = "";
    public bool Privileged { get; set; }
    public bool PublishAllPorts { get; set; }
    public bool ReadonlyRootfs { get; set; }
    public List<string>? SecurityOpt { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Dictionary<string, string>? Tmpfs { get; set; }
    public string UTSMode { get; set; } = "";
    public string UsernsMode { get; set; } = "";
    public long ShmSize { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Dictionary<string, string>? Sysctls { get; set; }
    public string Runtime { get; set; } = "";
    public string Isolation { get; set; } = "";
    public long CpuShares { get; set; }
    public long Memory { get; set; }
    public long NanoCpus { get; set; }
    public string CgroupParent { get; set; } = "";
    public ushort BlkioWeight { get; set; }
    public List<WeightDeviceJson>? BlkioWeightDevice { get; set; }
    public List<ThrottleDeviceJson>? BlkioDeviceReadBps { get; set; }
    public List<ThrottleDeviceJson>? BlkioDeviceWriteBps { get; set; }
    public List<ThrottleDeviceJson>? BlkioDeviceReadIOps { get; set; }
    public List<ThrottleDeviceJson>? BlkioDeviceWriteIOps { get; set; }
    /// <summary>--annotation (API 1.43): added to the OCI spec's annotations.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Dictionary<string, string>? Annotations { get; set; }
    public long CpuPeriod { get; set; }
    public long CpuQuota { get; set; }
    /// <summary>--cpu-rt-period / --cpu-rt-runtime (µs): real-time group scheduling, cgroup v1 only.</summary>
    public long CpuRealtimePeriod { get; set; }
    public long CpuRealtimeRuntime { get; set; }
    public string CpusetCpus { get; set; } = "";
    public string CpusetMems { get; set; } = "";
    public long MemoryReservation { get; set; }
    public long MemorySwap { get; set; }
    public long? MemorySwappiness { get; set; }
    public bool? OomKillDisable { get; set; }
    public long? PidsLimit { get; set; }
    public List<UlimitJson>? Ulimits { get; set; }
    public List<DeviceMappingJson>? Devices { get; set; }
    public List<string>? DeviceCgroupRules { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<MountJson>? Mounts { get; set; }
    public List<string>? MaskedPaths { get; set; }
    public List<string>? ReadonlyPaths { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? Init { get; set; }
    public List<int>? ConsoleSize { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Unknown { get; set; }
}

/// <summary>State in inspect (api/types.ContainerState).</summary>
public sealed class ContainerStateJson
{
    public string Status { get; set; } = "created";
    public bool Running { get; set; }
    public bool Paused { get; set; }
    public bool Restarting { get; set; }
    public bool OOMKilled { get; set; }
    public bool Dead { get; set; }
    public int Pid { get; set; }
    public int ExitCode { get; set; }
    public string Error { get; set; } = "";
    public string StartedAt { get; set; } = ZeroTime;
    public string FinishedAt { get; set; } = ZeroTime;

    /// <summary>
    /// The health check's state (null when the container has no health check). Replaced, never
    /// changed in place: inspect serializes it without the container's lock.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public HealthJson? Health { get; set; }

    /// <summary>Go's zero time.Time, as Docker prints it for "never".</summary>
    public const string ZeroTime = "0001-01-01T00:00:00Z";
}

/// <summary>
/// Config.Healthcheck (api/types/container.HealthConfig): Test is <c>["NONE"]</c>, <c>["CMD", args…]</c>
/// or <c>["CMD-SHELL", command]</c> (empty: inherit the image's); durations in nanoseconds, 0 = inherit.
/// </summary>
public sealed class HealthConfigJson
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<string>? Test { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long Interval { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long Timeout { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long StartPeriod { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long StartInterval { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int Retries { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Unknown { get; set; }
}

/// <summary>State.Health (api/types/container.Health): <c>starting</c>, <c>healthy</c> or <c>unhealthy</c>.</summary>
public sealed class HealthJson
{
    public string Status { get; init; } = HealthStatus.Starting;
    public int FailingStreak { get; init; }
    /// <summary>The last results, oldest first (at most 5).</summary>
    public IReadOnlyList<HealthcheckResultJson> Log { get; init; } = [];
}

/// <summary>One probe (api/types/container.HealthcheckResult); ExitCode -1 when the probe could not run or timed out.</summary>
public sealed class HealthcheckResultJson
{
    public string Start { get; init; } = ContainerStateJson.ZeroTime;
    public string End { get; init; } = ContainerStateJson.ZeroTime;
    public int ExitCode { get; init; }
    public string Output { get; init; } = "";
}

public static class HealthStatus
{
    public const string None = "none", Starting = "starting", Healthy = "healthy", Unhealthy = "unhealthy";
}

/// <summary>
/// One container as berthd persists it (<c>&lt;data-root&gt;/containers/&lt;id&gt;/config.v2.json</c>):
/// the request as given, the image it was made from, its state and the monitor that watches it.
/// </summary>
public sealed class ContainerRecord
{
    public string Id { get; set; } = "";
    /// <summary>With Docker's leading slash.</summary>
    public string Name { get; set; } = "";
    public string Created { get; set; } = "";
    public string ImageId { get; set; } = "";
    public string? ImageTopLayer { get; set; }
    public ContainerConfigJson Config { get; set; } = new();
    public HostConfigJson HostConfig { get; set; } = new();
    /// <summary>The create request's NetworkingConfig (EndpointsConfig: aliases, --ip), as given.</summary>
    public JsonElement? NetworkingConfig { get; set; }
    public ContainerStateJson State { get; set; } = new();
    public int RestartCount { get; set; }
    /// <summary>Stopped or killed by a user: the restart policy holds off until the next start (dockerd's HasBeenManuallyStopped).</summary>
    public bool ManuallyStopped { get; set; }
    /// <summary>The running monitor's PID (0 when none); checked against its state dir before use.</summary>
    public int MonitorPid { get; set; }
    /// <summary>The runtime binary the container was started with (it must delete it too).</summary>
    public string? RuntimePath { get; set; }
    public string StopSignal { get; set; } = "SIGTERM";
    public List<string>? Path { get; set; }

    /// <summary>
    /// The bridge networks the container belongs to, in the order it joins them (the first gets eth0,
    /// the default route and the published ports): dockerd's NetworkSettings.Networks. Set at create
    /// from the network mode and EndpointsConfig, changed by network connect/disconnect, kept while
    /// it is stopped; the endpoint fields are filled while it runs. Empty for none, host, container:.
    /// </summary>
    public List<ContainerNetworkState>? Networks { get; set; }

    /// <summary>Records written before connect/disconnect kept the running endpoint here; read once, then moved into <see cref="Networks"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public ContainerNetworkState? Network { get; set; }

    /// <summary>The volumes it mounts (named, anonymous, the image's), resolved at create; it refers to them until it is removed.</summary>
    public List<ContainerVolumeMount>? Volumes { get; set; }

    /// <summary>The host directories it binds because of --volumes-from (the other containers' binds, resolved at create).</summary>
    public List<Berth.Images.Engine.BindMount>? InheritedBinds { get; set; }

    /// <summary>--link: alias → the linked container's ID, so that a link follows its container through a rename.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Dictionary<string, string>? LinkTargets { get; set; }
}

/// <summary>A volume a container mounts (dockerd's MountPoint with a volume).</summary>
public sealed class ContainerVolumeMount
{
    public string Name { get; set; } = "";
    /// <summary>The volume's mountpoint on the host (its <c>_data</c>), as inspect shows it.</summary>
    public string Source { get; set; } = "";
    public string Destination { get; set; } = "";
    public bool ReadOnly { get; set; }
    /// <summary>No copy-up of the image's content (<c>nocopy</c>, VolumeOptions.NoCopy).</summary>
    public bool NoCopy { get; set; }
    /// <summary>Made for this container without a name (-v /path, an image VOLUME, a Mounts entry without Source): rm -v removes it.</summary>
    public bool Anonymous { get; set; }
    /// <summary>The mode as inspect shows it: the given one, "z" for -v name:/path without one and for a Mounts volume, "" for -v /path and image VOLUMEs (dockerd 20.10's).</summary>
    public string Mode { get; set; } = "";
    /// <summary>Only this path inside the volume is mounted (VolumeOptions.Subpath, as given; resolved safely at each start).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Subpath { get; set; }
}

/// <summary>
/// One network of a container: what was asked (create's EndpointsConfig, network connect) and,
/// while it runs, what the network layer gave it (the endpoint, its interface, address and published ports).
/// </summary>
public sealed class ContainerNetworkState
{
    public string NetworkName { get; set; } = "";
    public string NetworkId { get; set; } = "";
    /// <summary>--network-alias / connect --alias (on user networks the short ID is added when it joins, as dockerd does).</summary>
    public List<string>? Aliases { get; set; }
    /// <summary>--ip / connect --ip (IPAMConfig.IPv4Address); null: the next free address.</summary>
    public string? RequestedAddress { get; set; }
    /// <summary>--ip6 / connect --ip6 (IPAMConfig.IPv6Address) on a dual-stack network; null: the next free IPv6 address.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? RequestedAddress6 { get; set; }
    /// <summary>--mac-address (EndpointsConfig.MacAddress, or Config.MacAddress before API 1.44); null: one derived from the address.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? RequestedMacAddress { get; set; }
    /// <summary>Endpoint links (<c>network connect --link NAME:ALIAS</c>), as <c>name:alias</c>: on this network, ALIAS names NAME for this container only.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<string>? Links { get; set; }

    // The endpoint, while the container runs ("" and 0 otherwise).
    public string EndpointId { get; set; } = "";
    public string Interface { get; set; } = "";
    public string IPAddress { get; set; } = "";
    public int IPPrefixLen { get; set; }
    public string Gateway { get; set; } = "";
    public string MacAddress { get; set; } = "";
    /// <summary>On a dual-stack network: the IPv6 address, its prefix length and the IPv6 gateway ("" on an internal network).</summary>
    public string GlobalIPv6Address { get; set; } = "";
    public int GlobalIPv6PrefixLen { get; set; }
    public string IPv6Gateway { get; set; } = "";
    /// <summary>The names peers resolve it by on a user network: name, aliases, short ID, hostname.</summary>
    public List<string>? DnsNames { get; set; }
    public List<PublishedPort> Ports { get; set; } = [];
    /// <summary>
    /// The endpoint that would carry the container's ports is a macvlan or ipvlan one: that driver neither
    /// publishes nor exposes ports, and dockerd then shows none, not even the exposed ones.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool PortsUnsupported { get; set; }

    [JsonIgnore] public bool Connected => EndpointId.Length > 0;

    /// <summary>
    /// Forgets the endpoint (the container stopped or left), keeps what was asked. The endpoint ID
    /// goes first: a peer rewriting its hosts file reads this state without this container's lock
    /// and must not see it <see cref="Connected"/> without its address (the join sets it last).
    /// </summary>
    public void ClearEndpoint()
    {
        EndpointId = "";
        Interface = IPAddress = Gateway = MacAddress = GlobalIPv6Address = IPv6Gateway = "";
        IPPrefixLen = GlobalIPv6PrefixLen = 0;
        DnsNames = null;
        Ports = [];
        PortsUnsupported = false;
    }
}

/// <summary>A published port as it was bound (the host port resolved when 0 was asked).</summary>
public sealed record PublishedPort(string Protocol, string HostIp, int HostPort, int ContainerPort);

/// <summary>Accepts Docker's strslice: a JSON string or a list of strings.</summary>
public sealed class StringOrListConverter : JsonConverter<List<string>?>
{
    public override List<string>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return [reader.GetString()!];
            case JsonTokenType.StartArray:
                var list = new List<string>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.String) throw new JsonException("want a list of strings");
                    list.Add(reader.GetString()!);
                }
                return list;
            default:
                throw new JsonException("want a string or a list of strings");
        }
    }

    public override void Write(Utf8JsonWriter writer, List<string>? value, JsonSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }
        writer.WriteStartArray();
        foreach (string s in value) writer.WriteStringValue(s);
        writer.WriteEndArray();
    }
}
