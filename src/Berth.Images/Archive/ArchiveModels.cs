using System.Text.Json.Serialization;
using Berth.Images.Manifests;

namespace Berth.Images.Archive;

/// <summary>One entry of a <c>docker save</c> archive's manifest.json.</summary>
internal sealed record DockerArchiveEntry
{
    [JsonPropertyName("Config")] public string Config { get; init; } = "";
    [JsonPropertyName("RepoTags")] public IReadOnlyList<string>? RepoTags { get; init; }
    [JsonPropertyName("Layers")] public IReadOnlyList<string> Layers { get; init; } = [];
}

/// <summary>The <c>oci-layout</c> file.</summary>
internal sealed record OciLayoutFile
{
    [JsonPropertyName("imageLayoutVersion")] public string ImageLayoutVersion { get; init; } = "1.0.0";
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(List<DockerArchiveEntry>))]
[JsonSerializable(typeof(OciLayoutFile))]
[JsonSerializable(typeof(Dictionary<string, Dictionary<string, string>>))]
[JsonSerializable(typeof(ImageIndex))]
internal sealed partial class ArchiveJsonContext : JsonSerializerContext;

/// <summary>What <c>import</c> sets on the new image.</summary>
public sealed record ImportOptions
{
    /// <summary>The container config (Cmd, Env, …) of the image; none by default.</summary>
    public ContainerConfig? Config { get; init; }

    /// <summary>The platform recorded in the config; the host's by default.</summary>
    public Platform? Platform { get; init; }

    /// <summary>The history comment (<c>docker import -m</c>).</summary>
    public string? Message { get; init; }

    /// <summary>
    /// Unpack the layer before the image is named, as dockerd applies it first: a tar the layer applier
    /// refuses (paths outside the root, a hardlink to nothing) then leaves no image behind.
    /// </summary>
    public bool Unpack { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
