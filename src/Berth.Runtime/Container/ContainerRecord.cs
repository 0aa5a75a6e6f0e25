using System.Text.Json.Serialization;
using Berth.Oci;

namespace Berth.Runtime.Container;

/// <summary>What the runtime keeps about a container in &lt;root&gt;/&lt;id&gt;/state.json.</summary>
public sealed class ContainerRecord
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("initPid")] public int InitPid { get; set; }
    /// <summary>The init's start time (field 22 of /proc/pid/stat): a recycled pid is not our init.</summary>
    [JsonPropertyName("initStartTime")] public ulong InitStartTime { get; set; }
    [JsonPropertyName("bundle")] public string Bundle { get; set; } = "";
    [JsonPropertyName("rootfs")] public string Rootfs { get; set; } = "";
    [JsonPropertyName("created")] public DateTimeOffset Created { get; set; }
    [JsonPropertyName("owner")] public string Owner { get; set; } = "";
    [JsonPropertyName("cgroupPaths")] public Dictionary<string, string> CgroupPaths { get; set; } = [];
    // Only the parts of config.json later operations need: a whole Spec here would make
    // every state.json read and write build the JSON metadata of the entire OCI model.
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; set; }
    [JsonPropertyName("hooks")] public Berth.Oci.Hooks? Hooks { get; set; }
    /// <summary>Saved while create runs its hooks, so that `state` answers "creating" then.</summary>
    [JsonPropertyName("creating")] public bool Creating { get; set; }
    /// <summary>The runtime's default cgroup parent this container was placed under, removed on delete once empty.</summary>
    [JsonPropertyName("cgroupParentToPrune")] public string? CgroupParentToPrune { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ContainerRecord))]
internal sealed partial class RuntimeJsonContext : JsonSerializerContext;
