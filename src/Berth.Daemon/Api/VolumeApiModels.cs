using System.Text.Json;
using System.Text.Json.Serialization;

namespace Berth.Daemon.Api;

// The documents of /volumes (moby api/types/volume), field names as Docker spells them.

/// <summary>A volume (volume.Volume).</summary>
public sealed record VolumeJson
{
    public string CreatedAt { get; init; } = "";
    public string Driver { get; init; } = "local";
    public Dictionary<string, string>? Labels { get; init; }
    public string Mountpoint { get; init; } = "";
    public string Name { get; init; } = "";
    public Dictionary<string, string>? Options { get; init; }
    public string Scope { get; init; } = "local";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public VolumeUsageDataJson? UsageData { get; init; }
}

/// <summary>Size in bytes of the content, and the number of containers referring to the volume.</summary>
public sealed record VolumeUsageDataJson(long Size, long RefCount);

/// <summary>GET /volumes (volume.ListResponse).</summary>
public sealed record VolumeListResponse(IReadOnlyList<VolumeJson> Volumes, IReadOnlyList<string>? Warnings);

/// <summary>POST /volumes/create (volume.CreateOptions).</summary>
public sealed class VolumeCreateBody
{
    public string? Name { get; set; }
    public string? Driver { get; set; }
    public Dictionary<string, string>? DriverOpts { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public JsonElement? ClusterVolumeSpec { get; set; }
}

/// <summary>POST /volumes/prune (volume.PruneReport).</summary>
public sealed record VolumesPruneReport(IReadOnlyList<string>? VolumesDeleted, long SpaceReclaimed);
