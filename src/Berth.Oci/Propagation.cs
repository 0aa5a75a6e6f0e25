namespace Berth.Oci;

/// <summary>Propagation names (rootfsPropagation, mount options) to MS_* flags.</summary>
public static class Propagation
{
    private static readonly Dictionary<string, ulong> s_flags = new(StringComparer.Ordinal)
    {
        ["private"] = MountFlags.MS_PRIVATE,
        ["rprivate"] = MountFlags.MS_PRIVATE | MountFlags.MS_REC,
        ["shared"] = MountFlags.MS_SHARED,
        ["rshared"] = MountFlags.MS_SHARED | MountFlags.MS_REC,
        ["slave"] = MountFlags.MS_SLAVE,
        ["rslave"] = MountFlags.MS_SLAVE | MountFlags.MS_REC,
        ["unbindable"] = MountFlags.MS_UNBINDABLE,
        ["runbindable"] = MountFlags.MS_UNBINDABLE | MountFlags.MS_REC,
    };

    public static IReadOnlyCollection<string> Names => s_flags.Keys;

    /// <summary>What runc applies to the rootfs's parent mounts when rootfsPropagation is absent.</summary>
    public const ulong RootfsDefault = MountFlags.MS_SLAVE | MountFlags.MS_REC;

    /// <summary>An empty or null value means "not set" and gives 0.</summary>
    public static bool TryParse(string? name, out ulong flags)
    {
        if (string.IsNullOrEmpty(name))
        {
            flags = 0;
            return true;
        }
        return s_flags.TryGetValue(name, out flags);
    }

    public static ulong Parse(string? name) =>
        TryParse(name, out var flags) ? flags : throw new ArgumentException($"unknown propagation \"{name}\"", nameof(name));
}
