using System.Text.Json.Serialization;

namespace Berth.Oci;

/// <summary>The bundle's <c>config.json</c> (OCI runtime-spec, Linux parts).</summary>
public sealed class Spec
{
    /// <summary>The runtime-spec version Berth implements and writes into new configs.</summary>
    public const string SupportedVersion = "1.2.0";

    [JsonPropertyName("ociVersion")] public string OciVersion { get; set; } = "";
    [JsonPropertyName("process")] public Process? Process { get; set; }
    [JsonPropertyName("root")] public Root? Root { get; set; }
    [JsonPropertyName("hostname")] public string? Hostname { get; set; }
    [JsonPropertyName("domainname")] public string? Domainname { get; set; }
    [JsonPropertyName("mounts")] public List<Mount>? Mounts { get; set; }
    [JsonPropertyName("hooks")] public Hooks? Hooks { get; set; }
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; set; }
    [JsonPropertyName("linux")] public Linux? Linux { get; set; }

    /// <summary>
    /// The absolute rootfs path: <c>root.path</c> as is when absolute, otherwise relative to the bundle.
    /// Symlinks are not resolved here; the runtime opens the rootfs by this path and resolves inside it.
    /// </summary>
    public string ResolveRootfs(string bundleDir)
    {
        var path = Root?.Path;
        if (string.IsNullOrEmpty(path))
            throw new SpecException("root.path", "must be set");
        return Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(Path.GetFullPath(bundleDir), path));
    }
}

public sealed class Root
{
    [JsonPropertyName("path")] public string Path { get; set; } = "";

    [JsonPropertyName("readonly")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Readonly { get; set; }
}

public sealed class Mount
{
    [JsonPropertyName("destination")] public string Destination { get; set; } = "";
    [JsonPropertyName("type")] public string? Type { get; set; }
    [JsonPropertyName("source")] public string? Source { get; set; }
    [JsonPropertyName("options")] public List<string>? Options { get; set; }
    [JsonPropertyName("uidMappings")] public List<LinuxIdMapping>? UidMappings { get; set; }
    [JsonPropertyName("gidMappings")] public List<LinuxIdMapping>? GidMappings { get; set; }
}

public sealed class Hooks
{
    /// <summary>Deprecated by the spec in favour of createRuntime/createContainer/startContainer, still honoured.</summary>
    [JsonPropertyName("prestart")] public List<Hook>? Prestart { get; set; }
    [JsonPropertyName("createRuntime")] public List<Hook>? CreateRuntime { get; set; }
    [JsonPropertyName("createContainer")] public List<Hook>? CreateContainer { get; set; }
    [JsonPropertyName("startContainer")] public List<Hook>? StartContainer { get; set; }
    [JsonPropertyName("poststart")] public List<Hook>? Poststart { get; set; }
    [JsonPropertyName("poststop")] public List<Hook>? Poststop { get; set; }

    /// <summary>Each hook list with its JSON name, in the order the spec lists them.</summary>
    public IEnumerable<(string Name, List<Hook>? Hooks)> All()
    {
        yield return ("prestart", Prestart);
        yield return ("createRuntime", CreateRuntime);
        yield return ("createContainer", CreateContainer);
        yield return ("startContainer", StartContainer);
        yield return ("poststart", Poststart);
        yield return ("poststop", Poststop);
    }
}

public sealed class Hook
{
    [JsonPropertyName("path")] public string Path { get; set; } = "";
    [JsonPropertyName("args")] public List<string>? Args { get; set; }
    [JsonPropertyName("env")] public List<string>? Env { get; set; }
    /// <summary>Seconds; must be greater than zero when set.</summary>
    [JsonPropertyName("timeout")] public int? Timeout { get; set; }
}
