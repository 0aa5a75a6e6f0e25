using System.Text.Json.Serialization;
using Berth.Images.Manifests;

namespace Berth.Daemon.Api;

// The Docker Engine API's JSON documents, field names exactly as Docker spells them
// (github.com/moby/moby api/types). Only what berthd fills is declared; clients ignore the rest.

public sealed record ErrorResponse([property: JsonPropertyName("message")] string Message);

public sealed record ComponentVersion
{
    public string Name { get; init; } = "Engine";
    public string Version { get; init; } = "";
    public Dictionary<string, string> Details { get; init; } = [];
}

public sealed record PlatformName(string Name);

public sealed record SystemVersion
{
    public PlatformName Platform { get; init; } = new("Berth Engine");
    public IReadOnlyList<ComponentVersion> Components { get; init; } = [];
    public string Version { get; init; } = "";
    public string ApiVersion { get; init; } = "";
    public string MinAPIVersion { get; init; } = "";
    public string GitCommit { get; init; } = "";
    public string GoVersion { get; init; } = "";
    public string Os { get; init; } = "linux";
    public string Arch { get; init; } = "";
    public string KernelVersion { get; init; } = "";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool Experimental { get; init; } // omitempty in moby
    public string BuildTime { get; init; } = "";
}

public sealed record RuntimeInfo(
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("runtimeArgs"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? RuntimeArgs = null);

public sealed record IndexInfo(string Name, IReadOnlyList<string> Mirrors, bool Secure, bool Official);

public sealed record RegistryServiceConfig
{
    /// <summary>Sent (empty: berthd pushes no foreign layers) below API 1.49, which dropped them.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<string>? AllowNondistributableArtifactsCIDRs { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<string>? AllowNondistributableArtifactsHostnames { get; init; }
    public IReadOnlyList<string> InsecureRegistryCIDRs { get; init; } = [];
    public Dictionary<string, IndexInfo> IndexConfigs { get; init; } = [];
    public IReadOnlyList<string> Mirrors { get; init; } = [];
}

public sealed record PluginsInfo
{
    public IReadOnlyList<string> Volume { get; init; } = [];
    public IReadOnlyList<string> Network { get; init; } = [];
    public IReadOnlyList<string>? Authorization { get; init; }
    public IReadOnlyList<string> Log { get; init; } = [];
}

public sealed record SwarmInfo
{
    public string NodeID { get; init; } = "";
    public string NodeAddr { get; init; } = "";
    public string LocalNodeState { get; init; } = "inactive";
    public bool ControlAvailable { get; init; }
    public string Error { get; init; } = "";
    public IReadOnlyList<string>? RemoteManagers { get; init; }
}

public sealed record Commit(string ID, string Expected = "");

public sealed record SystemInfo
{
    public string ID { get; init; } = "";
    public int Containers { get; init; }
    public int ContainersRunning { get; init; }
    public int ContainersPaused { get; init; }
    public int ContainersStopped { get; init; }
    public int Images { get; init; }
    public string Driver { get; init; } = "";
    public IReadOnlyList<IReadOnlyList<string>> DriverStatus { get; init; } = [];
    public PluginsInfo Plugins { get; init; } = new();
    public bool MemoryLimit { get; init; }
    public bool SwapLimit { get; init; }
    public bool CpuCfsPeriod { get; init; }
    public bool CpuCfsQuota { get; init; }
    public bool CPUShares { get; init; }
    public bool CPUSet { get; init; }
    public bool PidsLimit { get; init; }
    /// <summary>Below API 1.42 only (moby deprecated kernel memory then; omitempty after): false, berthd sets no kernel memory limits.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? KernelMemory { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? KernelMemoryTCP { get; init; }
    public bool IPv4Forwarding { get; init; }
    /// <summary>Below API 1.49 only (moby omits them from then on).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? BridgeNfIptables { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? BridgeNfIp6tables { get; init; }
    public bool Debug { get; init; }
    public int NFd { get; init; }
    public bool OomKillDisable { get; init; }
    public int NGoroutines { get; init; }
    public string SystemTime { get; init; } = "";
    public string LoggingDriver { get; init; } = "json-file";
    public string CgroupDriver { get; init; } = "";
    public string CgroupVersion { get; init; } = "";
    public int NEventsListener { get; init; }
    public string KernelVersion { get; init; } = "";
    public string OperatingSystem { get; init; } = "";
    public string OSVersion { get; init; } = "";
    public string OSType { get; init; } = "linux";
    public string Architecture { get; init; } = "";
    public string IndexServerAddress { get; init; } = "https://index.docker.io/v1/";
    public RegistryServiceConfig RegistryConfig { get; init; } = new();
    /// <summary>Swarm's generic resources: always null, as a dockerd outside a swarm shows.</summary>
    public IReadOnlyList<System.Text.Json.JsonElement>? GenericResources { get; init; }
    public int NCPU { get; init; }
    public long MemTotal { get; init; }
    public string DockerRootDir { get; init; } = "";
    public string HttpProxy { get; init; } = "";
    public string HttpsProxy { get; init; } = "";
    public string NoProxy { get; init; } = "";
    public string Name { get; init; } = "";
    public IReadOnlyList<string> Labels { get; init; } = [];
    public bool ExperimentalBuild { get; init; }
    public string ServerVersion { get; init; } = "";
    public Dictionary<string, RuntimeInfo> Runtimes { get; init; } = [];
    public string DefaultRuntime { get; init; } = "";
    public SwarmInfo Swarm { get; init; } = new();
    public bool LiveRestoreEnabled { get; init; }
    public string Isolation { get; init; } = "";
    public string InitBinary { get; init; } = "";
    public Commit ContainerdCommit { get; init; } = new("");
    public Commit RuncCommit { get; init; } = new("");
    public Commit InitCommit { get; init; } = new("");
    public IReadOnlyList<string> SecurityOptions { get; init; } = [];
    public IReadOnlyList<string>? Warnings { get; init; }
}

public sealed record ImageSummaryJson
{
    public string Id { get; init; } = "";
    public string ParentId { get; init; } = "";
    public IReadOnlyList<string> RepoTags { get; init; } = [];
    public IReadOnlyList<string> RepoDigests { get; init; } = [];
    public long Created { get; init; }
    public long Size { get; init; }
    public long SharedSize { get; init; } = -1;
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? VirtualSize { get; init; }
    /// <summary>The image config's, null when it has none (dockerd's map as read).</summary>
    public IReadOnlyDictionary<string, string>? Labels { get; init; }
    public long Containers { get; init; } = -1;
}

public sealed record GraphDriverData(string Name, IReadOnlyDictionary<string, string>? Data);

public sealed record RootFSJson(string Type, IReadOnlyList<string> Layers);

public sealed record ImageMetadata(string? LastTagTime);

public sealed record ImageInspectJson
{
    public string Id { get; init; } = "";
    public IReadOnlyList<string> RepoTags { get; init; } = [];
    public IReadOnlyList<string> RepoDigests { get; init; } = [];
    public string Parent { get; init; } = "";
    public string Comment { get; init; } = "";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Created { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Container { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public ImageConfigJson? ContainerConfig { get; init; }
    public string DockerVersion { get; init; } = "";
    public string Author { get; init; } = "";
    public ImageConfigJson? Config { get; init; }
    public string Architecture { get; init; } = "";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Variant { get; init; }
    public string Os { get; init; } = "";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? OsVersion { get; init; }
    public long Size { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? VirtualSize { get; init; }
    public GraphDriverData GraphDriver { get; init; } = new("overlayfs", null);
    public RootFSJson RootFS { get; init; } = new("layers", []);
    public ImageMetadata Metadata { get; init; } = new(null);
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Descriptor? Descriptor { get; init; }
}

/// <summary>
/// An image's Config (and ContainerConfig) as dockerd's inspect shows it: moby's container.Config
/// with every field, zero or null where the image sets none (the image config blob itself leaves
/// them out), so that clients reading <c>Config["Env"]</c> find the key.
/// </summary>
public sealed record ImageConfigJson
{
    public string Hostname { get; init; } = "";
    public string Domainname { get; init; } = "";
    public string User { get; init; } = "";
    public bool AttachStdin { get; init; }
    public bool AttachStdout { get; init; }
    public bool AttachStderr { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyDictionary<string, EmptyObject>? ExposedPorts { get; init; }
    public bool Tty { get; init; }
    public bool OpenStdin { get; init; }
    public bool StdinOnce { get; init; }
    public IReadOnlyList<string>? Env { get; init; }
    public IReadOnlyList<string>? Cmd { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public HealthConfig? Healthcheck { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool ArgsEscaped { get; init; }
    public string Image { get; init; } = "";
    public IReadOnlyDictionary<string, EmptyObject>? Volumes { get; init; }
    public string WorkingDir { get; init; } = "";
    public IReadOnlyList<string>? Entrypoint { get; init; }
    public IReadOnlyList<string>? OnBuild { get; init; }
    public IReadOnlyDictionary<string, string>? Labels { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? StopSignal { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<string>? Shell { get; init; }

    public static ImageConfigJson From(ContainerConfig? c) => c is null ? new() : new()
    {
        User = c.User ?? "",
        ExposedPorts = c.ExposedPorts is { Count: > 0 } ? c.ExposedPorts : null,
        Env = c.Env,
        Cmd = c.Cmd,
        Healthcheck = c.Healthcheck,
        ArgsEscaped = c.ArgsEscaped,
        Volumes = c.Volumes,
        WorkingDir = c.WorkingDir ?? "",
        Entrypoint = c.Entrypoint,
        OnBuild = c.OnBuild,
        Labels = c.Labels,
        StopSignal = string.IsNullOrEmpty(c.StopSignal) ? null : c.StopSignal,
        Shell = c.Shell is { Count: > 0 } ? c.Shell : null,
    };
}

public sealed record HistoryItemJson(string Id, long Created, string CreatedBy, IReadOnlyList<string>? Tags, long Size, string Comment);

/// <summary>One result of GET /images/search (registry.SearchResult; snake_case, as the v1 search API names them).</summary>
public sealed record SearchResultJson(int star_count, bool is_official, string name, bool is_automated, string description);

public sealed record DeleteResponseItem
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Untagged { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Deleted { get; init; }
}

public sealed record ImagesPruneReport(IReadOnlyList<DeleteResponseItem>? ImagesDeleted, long SpaceReclaimed);

/// <summary>One line of Docker's JSON progress stream (pkg/jsonmessage).</summary>
public sealed record JsonMessage
{
    [JsonPropertyName("stream"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Stream { get; init; }
    [JsonPropertyName("status"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Status { get; init; }
    [JsonPropertyName("progressDetail"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public ProgressDetail? ProgressDetail { get; init; }
    [JsonPropertyName("progress"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Progress { get; init; }
    [JsonPropertyName("id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Id { get; init; }
    [JsonPropertyName("errorDetail"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public ErrorDetail? ErrorDetail { get; init; }
    [JsonPropertyName("error"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Error { get; init; }
    [JsonPropertyName("aux"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public AuxMessage? Aux { get; init; }

    public static JsonMessage Failure(string message) => new() { ErrorDetail = new ErrorDetail(message), Error = message };
}

public sealed record ProgressDetail
{
    [JsonPropertyName("current"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long Current { get; init; }
    [JsonPropertyName("total"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long Total { get; init; }
}

public sealed record ErrorDetail([property: JsonPropertyName("message")] string Message)
{
    /// <summary>A failed build step's exit code (errorDetail.code), which the docker CLI exits with.</summary>
    [JsonPropertyName("code"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int Code { get; init; }
}

/// <summary>The <c>aux</c> of a push (Tag, Digest, Size) or of a build (ID).</summary>
public sealed record AuxMessage(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Tag,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Digest,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] long Size)
{
    [JsonPropertyName("ID"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? ID { get; init; }
}

/// <summary>POST /auth's answer (Docker's registry.AuthenticateOKBody).</summary>
public sealed record AuthResponse([property: JsonPropertyName("Status")] string Status, [property: JsonPropertyName("IdentityToken")] string IdentityToken);

/// <summary>The decoded <c>X-Registry-Auth</c> header (Docker's registry.AuthConfig).</summary>
public sealed record AuthConfig
{
    [JsonPropertyName("username")] public string? Username { get; init; }
    [JsonPropertyName("password")] public string? Password { get; init; }
    [JsonPropertyName("auth")] public string? Auth { get; init; }
    [JsonPropertyName("serveraddress")] public string? ServerAddress { get; init; }
    [JsonPropertyName("identitytoken")] public string? IdentityToken { get; init; }
    [JsonPropertyName("registrytoken")] public string? RegistryToken { get; init; }
    [JsonPropertyName("email")] public string? Email { get; init; }
}

/// <summary>
/// The serializer for API bodies: Go's encoding/json escapes only &lt;, &gt; and &amp;, so quotes
/// in messages ("invalid filter 'x'") stay readable, as dockerd writes them.
/// </summary>
public static class ApiJson
{
    public static ApiJsonContext Context { get; } = new(Options());

    private static System.Text.Json.JsonSerializerOptions Options()
    {
        var options = new System.Text.Json.JsonSerializerOptions
        {
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            // Go's encoding/json matches field names case-insensitively; clients rely on it.
            PropertyNameCaseInsensitive = true,
        };
        // And reads null into a number or a bool as its zero value.
        GoNullValueConverters.AddTo(options.Converters);
        return options;
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(SystemVersion))]
[JsonSerializable(typeof(SystemInfo))]
[JsonSerializable(typeof(IReadOnlyList<ImageSummaryJson>))]
[JsonSerializable(typeof(ImageInspectJson))]
[JsonSerializable(typeof(IReadOnlyList<HistoryItemJson>))]
[JsonSerializable(typeof(IReadOnlyList<SearchResultJson>))]
[JsonSerializable(typeof(IReadOnlyList<DeleteResponseItem>))]
[JsonSerializable(typeof(ImagesPruneReport))]
[JsonSerializable(typeof(JsonMessage))]
[JsonSerializable(typeof(AuthConfig))]
[JsonSerializable(typeof(AuthResponse))]
[JsonSerializable(typeof(ContainerConfig))]
[JsonSerializable(typeof(ImageConfigJson))]
[JsonSerializable(typeof(Berth.Daemon.Containers.ContainerCreateBody))]
[JsonSerializable(typeof(ContainerCreateResponse))]
[JsonSerializable(typeof(Berth.Daemon.Containers.ContainerUpdateBody))]
[JsonSerializable(typeof(ContainerUpdateResponse))]
[JsonSerializable(typeof(IReadOnlyList<ContainerSummaryJson>))]
[JsonSerializable(typeof(ContainerInspectJson))]
[JsonSerializable(typeof(WaitResponse))]
[JsonSerializable(typeof(ContainerTopResponse))]
[JsonSerializable(typeof(ContainersPruneReport))]
[JsonSerializable(typeof(IdResponse))]
[JsonSerializable(typeof(ExecCreateBody))]
[JsonSerializable(typeof(ExecStartBody))]
[JsonSerializable(typeof(ExecInspectJson))]
[JsonSerializable(typeof(StatsJson))]
[JsonSerializable(typeof(Berth.Daemon.Containers.ContainerPathStat))]
[JsonSerializable(typeof(List<ContainerChange>))]
[JsonSerializable(typeof(List<NetworkJson>))]
[JsonSerializable(typeof(NetworkJson))]
[JsonSerializable(typeof(NetworkCreateBody))]
[JsonSerializable(typeof(NetworkCreateResponse))]
[JsonSerializable(typeof(NetworksPruneReport))]
[JsonSerializable(typeof(NetworkConnectBody))]
[JsonSerializable(typeof(NetworkDisconnectBody))]
[JsonSerializable(typeof(EndpointIpamJson))]
[JsonSerializable(typeof(VolumeJson))]
[JsonSerializable(typeof(VolumeListResponse))]
[JsonSerializable(typeof(VolumeCreateBody))]
[JsonSerializable(typeof(VolumesPruneReport))]
public sealed partial class ApiJsonContext : JsonSerializerContext;
