using System.Text.Json.Serialization;

namespace Berth.Daemon.Events;

/// <summary>The object an event is about (moby api/types/events.Actor).</summary>
public sealed record EventActor(
    [property: JsonPropertyName("ID")] string Id,
    [property: JsonPropertyName("Attributes")] IReadOnlyDictionary<string, string> Attributes);

/// <summary>
/// One event as <c>GET /events</c> writes it, field for field moby's events.Message: the deprecated
/// <c>status</c>, <c>id</c>, <c>from</c> are filled for container and image events only, as dockerd
/// fills them; <c>from</c> is the container's <c>image</c> attribute.
/// </summary>
public sealed record EventMessage
{
    [JsonPropertyName("status"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Status { get; init; }

    [JsonPropertyName("id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Id { get; init; }

    [JsonPropertyName("from"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? From { get; init; }

    [JsonPropertyName("Type")] public required string Type { get; init; }
    [JsonPropertyName("Action")] public required string Action { get; init; }
    [JsonPropertyName("Actor")] public required EventActor Actor { get; init; }
    [JsonPropertyName("scope")] public string Scope { get; init; } = "local";
    [JsonPropertyName("time")] public long Time { get; init; }
    [JsonPropertyName("timeNano")] public long TimeNano { get; init; }
}

/// <summary>Go's encoding/json escapes only &lt;, &gt; and &amp;; so does this (as <c>ApiJson</c>).</summary>
public static class EventsJson
{
    public static EventsJsonContext Context { get; } = new(new System.Text.Json.JsonSerializerOptions
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNameCaseInsensitive = true,
    });
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(EventMessage))]
public sealed partial class EventsJsonContext : JsonSerializerContext;
