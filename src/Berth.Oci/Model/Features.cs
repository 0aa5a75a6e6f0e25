using System.Text.Json.Serialization;

namespace Berth.Oci;

/// <summary>The document <c>features</c> prints (runtime-spec features.md).</summary>
public sealed class Features
{
    [JsonPropertyName("ociVersionMin")] public string OciVersionMin { get; set; } = "";
    [JsonPropertyName("ociVersionMax")] public string OciVersionMax { get; set; } = "";
    [JsonPropertyName("hooks")] public List<string>? Hooks { get; set; }
    [JsonPropertyName("mountOptions")] public List<string>? MountOptions { get; set; }
    [JsonPropertyName("linux")] public LinuxFeatures? Linux { get; set; }
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; set; }
    [JsonPropertyName("potentiallyUnsafeConfigAnnotations")] public List<string>? PotentiallyUnsafeConfigAnnotations { get; set; }

    /// <summary>Describes what the runtime supports; pass what is really implemented.</summary>
    public static Features Describe(FeatureSupport? support = null)
    {
        support ??= new FeatureSupport();
        return new Features
        {
            OciVersionMin = "1.0.0",
            OciVersionMax = Spec.SupportedVersion,
            Hooks = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
            MountOptions = [.. Oci.MountOptions.Known.Order(StringComparer.Ordinal)],
            Linux = new LinuxFeatures
            {
                Namespaces = [.. support.Namespaces.Order(StringComparer.Ordinal)],
                Capabilities = [.. Capabilities.Names],
                Cgroup = new CgroupFeatures
                {
                    V1 = support.CgroupV1,
                    V2 = support.CgroupV2,
                    Systemd = support.Systemd,
                    SystemdUser = support.SystemdUser,
                    Rdma = support.Rdma,
                },
                Seccomp = support.Seccomp
                    ? new SeccompFeatures
                    {
                        Enabled = true,
                        Actions = [.. SeccompNames.Actions.Order(StringComparer.Ordinal)],
                        Operators = [.. SeccompNames.Operators.Order(StringComparer.Ordinal)],
                        Archs = [.. SeccompNames.Architectures.Order(StringComparer.Ordinal)],
                        KnownFlags = [.. SeccompNames.Flags],
                        SupportedFlags = [.. support.SeccompFlags],
                    }
                    : new SeccompFeatures { Enabled = false },
                Apparmor = new EnabledFeature { Enabled = support.Apparmor },
                Selinux = new EnabledFeature { Enabled = support.Selinux },
                IntelRdt = new EnabledFeature { Enabled = support.IntelRdt },
                MountExtensions = new MountExtensionsFeatures { Idmap = new EnabledFeature { Enabled = support.IdmappedMounts } },
            },
            Annotations = support.Annotations is null ? null : new Dictionary<string, string>(support.Annotations),
        };
    }
}

/// <summary>What the runtime really implements; the defaults describe today's berth-runtime.</summary>
public sealed record FeatureSupport
{
    public IReadOnlyList<string> Namespaces { get; init; } = NamespaceType.All;
    public bool CgroupV1 { get; init; } = true;
    public bool CgroupV2 { get; init; } = true;
    public bool Systemd { get; init; }
    public bool SystemdUser { get; init; }
    public bool Rdma { get; init; }
    public bool Seccomp { get; init; }
    public IReadOnlyList<string> SeccompFlags { get; init; } = [];
    public bool Apparmor { get; init; }
    public bool Selinux { get; init; }
    public bool IntelRdt { get; init; }
    public bool IdmappedMounts { get; init; }
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

public sealed class LinuxFeatures
{
    [JsonPropertyName("namespaces")] public List<string>? Namespaces { get; set; }
    [JsonPropertyName("capabilities")] public List<string>? Capabilities { get; set; }
    [JsonPropertyName("cgroup")] public CgroupFeatures? Cgroup { get; set; }
    [JsonPropertyName("seccomp")] public SeccompFeatures? Seccomp { get; set; }
    [JsonPropertyName("apparmor")] public EnabledFeature? Apparmor { get; set; }
    [JsonPropertyName("selinux")] public EnabledFeature? Selinux { get; set; }
    [JsonPropertyName("intelRdt")] public EnabledFeature? IntelRdt { get; set; }
    [JsonPropertyName("mountExtensions")] public MountExtensionsFeatures? MountExtensions { get; set; }
}

public sealed class CgroupFeatures
{
    [JsonPropertyName("v1")] public bool? V1 { get; set; }
    [JsonPropertyName("v2")] public bool? V2 { get; set; }
    [JsonPropertyName("systemd")] public bool? Systemd { get; set; }
    [JsonPropertyName("systemdUser")] public bool? SystemdUser { get; set; }
    [JsonPropertyName("rdma")] public bool? Rdma { get; set; }
}

public sealed class SeccompFeatures
{
    [JsonPropertyName("enabled")] public bool? Enabled { get; set; }
    [JsonPropertyName("actions")] public List<string>? Actions { get; set; }
    [JsonPropertyName("operators")] public List<string>? Operators { get; set; }
    [JsonPropertyName("archs")] public List<string>? Archs { get; set; }
    [JsonPropertyName("knownFlags")] public List<string>? KnownFlags { get; set; }
    [JsonPropertyName("supportedFlags")] public List<string>? SupportedFlags { get; set; }
}

public sealed class EnabledFeature
{
    [JsonPropertyName("enabled")] public bool? Enabled { get; set; }
}

public sealed class MountExtensionsFeatures
{
    [JsonPropertyName("idmap")] public EnabledFeature? Idmap { get; set; }
}
