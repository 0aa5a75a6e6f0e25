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
