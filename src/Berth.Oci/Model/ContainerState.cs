using System.Text.Json.Serialization;

namespace Berth.Oci;

/// <summary>
/// The spec's State: what hooks read on stdin and what <c>state</c> prints.
/// <see cref="Rootfs"/>, <see cref="Created"/> and <see cref="Owner"/> are runc's additions to its
/// <c>state</c> output, which containerd's go-runc reads; hooks get them too, harmlessly.
/// </summary>
public sealed class ContainerState
{
    [JsonPropertyName("ociVersion")] public string OciVersion { get; set; } = Spec.SupportedVersion;
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("status")] public ContainerStatus Status { get; set; }
    /// <summary>The container process's pid as the host sees it; 0 when there is none.</summary>
    [JsonPropertyName("pid")] public int Pid { get; set; }
    /// <summary>Absolute path of the bundle.</summary>
    [JsonPropertyName("bundle")] public string Bundle { get; set; } = "";
    [JsonPropertyName("rootfs")] public string? Rootfs { get; set; }
    [JsonPropertyName("created")] public DateTimeOffset? Created { get; set; }
    [JsonPropertyName("owner")] public string? Owner { get; set; }
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; set; }
}

[JsonConverter(typeof(JsonStringEnumConverter<ContainerStatus>))]
public enum ContainerStatus
{
    [JsonStringEnumMemberName("creating")] Creating,
    [JsonStringEnumMemberName("created")] Created,
    [JsonStringEnumMemberName("running")] Running,
    [JsonStringEnumMemberName("stopped")] Stopped,
    /// <summary>Not in the spec; runc reports it for a frozen container.</summary>
    [JsonStringEnumMemberName("paused")] Paused,
}

/// <summary>
/// The State written by hand: hooks get it on stdin at every step of a container's life (dockerd
/// sets a prestart hook on every container), and System.Text.Json's metadata for it cost ~0.5 ms
/// per runtime process. Same output as <see cref="SpecJsonContext"/> (tests hold them equal).
/// </summary>
public static class ContainerStateWriter
{
    public static string Write(ContainerState state, bool indented = false)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(512);
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer, HandWrittenJson.Options(indented)))
            Write(w, state);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static void Write(System.Text.Json.Utf8JsonWriter w, ContainerState state)
    {
        w.WriteStartObject();
        w.WriteString("ociVersion", state.OciVersion);
        w.WriteString("id", state.Id);
        w.WriteString("status", Name(state.Status));
        w.WriteNumber("pid", state.Pid);
        w.WriteString("bundle", state.Bundle);
        if (state.Rootfs is { } rootfs) w.WriteString("rootfs", rootfs);
        if (state.Created is { } created) w.WriteString("created", created);
        if (state.Owner is { } owner) w.WriteString("owner", owner);
        if (state.Annotations is { } annotations)
        {
            w.WriteStartObject("annotations");
            foreach (var (key, value) in annotations) w.WriteString(key, value);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    public static string Name(ContainerStatus status) => status switch
    {
        ContainerStatus.Creating => "creating",
        ContainerStatus.Created => "created",
        ContainerStatus.Running => "running",
        ContainerStatus.Stopped => "stopped",
        ContainerStatus.Paused => "paused",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };
}
