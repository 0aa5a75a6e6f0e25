using System.Text.Json.Serialization;

namespace Berth.Images.Snapshots;

/// <summary>The persisted state of an <see cref="OverlaySnapshotter"/> (metadata.json).</summary>
internal sealed class SnapshotMetadata
{
    [JsonPropertyName("nextId")]
    public long NextId { get; set; } = 1;

    [JsonPropertyName("snapshots")]
    public Dictionary<string, SnapshotRecord> Snapshots { get; set; } = new(StringComparer.Ordinal);

    public SnapshotMetadata Clone() => new()
    {
        NextId = NextId,
        Snapshots = Snapshots.ToDictionary(e => e.Key, e => e.Value with { }, StringComparer.Ordinal),
    };
}

internal sealed record SnapshotRecord
{
    [JsonPropertyName("id")]
    public long Id { get; init; }

    [JsonPropertyName("kind")]
    public SnapshotKind Kind { get; init; }

    [JsonPropertyName("parent")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Parent { get; init; }

    [JsonPropertyName("labels")]
    public Dictionary<string, string> Labels { get; init; } = [];

    [JsonPropertyName("created")]
    public DateTimeOffset Created { get; init; }

    [JsonPropertyName("updated")]
    public DateTimeOffset Updated { get; init; }
}

/// <summary>The record of an ephemeral snapshot (ephemeral/&lt;id&gt;.json): its key and what metadata.json would hold.</summary>
internal sealed class EphemeralSnapshot
{
    [JsonPropertyName("key")]
    public string Key { get; set; } = "";

    [JsonPropertyName("record")]
    public SnapshotRecord? Record { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, UseStringEnumConverter = true)]
[JsonSerializable(typeof(SnapshotMetadata))]
[JsonSerializable(typeof(EphemeralSnapshot))]
internal sealed partial class SnapshotJsonContext : JsonSerializerContext;
