using static Berth.Oci.MountFlags;

namespace Berth.Oci;

/// <summary>A mount's options split the way runc does: mount(2) flags, propagation, recursive attributes, data.</summary>
/// <param name="Flags">MS_* flags to pass to mount(2), MS_BIND/MS_REC included for bind/rbind.</param>
/// <param name="ClearFlags">MS_* flags the options explicitly turned off (rw, suid, dev…); a bind remount must not keep them.</param>
/// <param name="PropagationFlags">The last propagation option (e.g. MS_PRIVATE|MS_REC), 0 if none.</param>
/// <param name="Propagations">Every propagation option, in order; each needs its own mount(2) call.</param>
/// <param name="RecAttrSet">MOUNT_ATTR_* to set recursively with mount_setattr(2) (rro, rnosuid…).</param>
/// <param name="RecAttrClear">MOUNT_ATTR_* to clear recursively (rrw, rsuid…).</param>
/// <param name="Data">Unknown options, comma-joined, for the filesystem (e.g. "mode=755,size=65536k").</param>
/// <param name="CopyUp">tmpcopyup: copy the destination's existing content into the new tmpfs.</param>
/// <param name="IdMap">idmap or ridmap: an id-mapped mount.</param>
/// <param name="RecursiveIdMap">ridmap: the id mapping applies to submounts too.</param>
public sealed record ParsedMountOptions(
    ulong Flags,
    ulong ClearFlags,
    ulong PropagationFlags,
    bool Bind,
    bool Recursive,
    string Data,
    IReadOnlyList<ulong> Propagations,
    ulong RecAttrSet,
    ulong RecAttrClear,
    bool CopyUp,
    bool IdMap,
    bool RecursiveIdMap);

public static class MountOptions
{
    private readonly record struct FlagOption(bool Clear, ulong Flag);

    // runc's mountFlags table (libcontainer/specconv).
    private static readonly Dictionary<string, FlagOption> s_flags = new(StringComparer.Ordinal)
    {
        ["acl"] = new(false, MS_POSIXACL),
        ["async"] = new(true, MS_SYNCHRONOUS),
        ["atime"] = new(true, MS_NOATIME),
        ["bind"] = new(false, MS_BIND),
        ["defaults"] = new(false, 0),
        ["dev"] = new(true, MS_NODEV),
        ["diratime"] = new(true, MS_NODIRATIME),
        ["dirsync"] = new(false, MS_DIRSYNC),
        ["exec"] = new(true, MS_NOEXEC),
        ["iversion"] = new(false, MS_I_VERSION),
        ["lazytime"] = new(false, MS_LAZYTIME),
        ["loud"] = new(true, MS_SILENT),
        ["mand"] = new(false, MS_MANDLOCK),
        ["noacl"] = new(true, MS_POSIXACL),
        ["noatime"] = new(false, MS_NOATIME),
        ["nodev"] = new(false, MS_NODEV),
        ["nodiratime"] = new(false, MS_NODIRATIME),
        ["noexec"] = new(false, MS_NOEXEC),
        ["noiversion"] = new(true, MS_I_VERSION),
        ["nolazytime"] = new(true, MS_LAZYTIME),
        ["nomand"] = new(true, MS_MANDLOCK),
        ["norelatime"] = new(true, MS_RELATIME),
        ["nostrictatime"] = new(true, MS_STRICTATIME),
        ["nosuid"] = new(false, MS_NOSUID),
        ["nosymfollow"] = new(false, MS_NOSYMFOLLOW),
        ["rbind"] = new(false, MS_BIND | MS_REC),
        ["relatime"] = new(false, MS_RELATIME),
        ["remount"] = new(false, MS_REMOUNT),
        ["ro"] = new(false, MS_RDONLY),
        ["rw"] = new(true, MS_RDONLY),
        ["silent"] = new(false, MS_SILENT),
        ["strictatime"] = new(false, MS_STRICTATIME),
        ["suid"] = new(true, MS_NOSUID),
        ["symfollow"] = new(true, MS_NOSYMFOLLOW),
        ["sync"] = new(false, MS_SYNCHRONOUS),
    };

    // runc's recAttrFlags: applied with mount_setattr(AT_RECURSIVE).
    private static readonly Dictionary<string, FlagOption> s_recursiveAttrs = new(StringComparer.Ordinal)
    {
        ["rro"] = new(false, MOUNT_ATTR_RDONLY),
        ["rrw"] = new(true, MOUNT_ATTR_RDONLY),
        ["rnosuid"] = new(false, MOUNT_ATTR_NOSUID),
        ["rsuid"] = new(true, MOUNT_ATTR_NOSUID),
        ["rnodev"] = new(false, MOUNT_ATTR_NODEV),
        ["rdev"] = new(true, MOUNT_ATTR_NODEV),
        ["rnoexec"] = new(false, MOUNT_ATTR_NOEXEC),
        ["rexec"] = new(true, MOUNT_ATTR_NOEXEC),
        ["rnodiratime"] = new(false, MOUNT_ATTR_NODIRATIME),
        ["rdiratime"] = new(true, MOUNT_ATTR_NODIRATIME),
        ["rrelatime"] = new(false, MOUNT_ATTR_RELATIME),
        ["rnorelatime"] = new(true, MOUNT_ATTR_RELATIME),
        ["rnoatime"] = new(false, MOUNT_ATTR_NOATIME),
        ["ratime"] = new(true, MOUNT_ATTR_NOATIME),
        ["rstrictatime"] = new(false, MOUNT_ATTR_STRICTATIME),
        ["rnostrictatime"] = new(true, MOUNT_ATTR_STRICTATIME),
        ["rnosymfollow"] = new(false, MOUNT_ATTR_NOSYMFOLLOW),
        ["rsymfollow"] = new(true, MOUNT_ATTR_NOSYMFOLLOW),
    };

    private static readonly string[] s_extensions = ["tmpcopyup", "idmap", "ridmap"];

    /// <summary>Every option name with a meaning of its own (anything else is filesystem data).</summary>
    public static IReadOnlyCollection<string> Known { get; } =
        [.. s_flags.Keys, .. Propagation.Names, .. s_recursiveAttrs.Keys, .. s_extensions];

    public static bool IsKnown(string option) =>
        s_flags.ContainsKey(option) || s_recursiveAttrs.ContainsKey(option) ||
        Propagation.TryParse(option, out var p) && p != 0 || s_extensions.Contains(option);

    public static ParsedMountOptions Parse(IEnumerable<string>? options)
    {
        ulong flags = 0, cleared = 0, attrSet = 0, attrClear = 0;
        var propagations = new List<ulong>();
        var data = new List<string>();
        bool copyUp = false, idMap = false, recursiveIdMap = false;

        foreach (var option in options ?? [])
        {
            if (s_flags.TryGetValue(option, out var f))
            {
                if (f.Clear)
                {
                    flags &= ~f.Flag;
                    cleared |= f.Flag;
                }
                else
                {
                    flags |= f.Flag;
                    cleared &= ~f.Flag;
                }
            }
            else if (option.Length > 0 && Propagation.TryParse(option, out var propagation))
            {
                propagations.Add(propagation);
            }
            else if (s_recursiveAttrs.TryGetValue(option, out var attr))
            {
                if (attr.Clear)
                {
                    attrClear |= attr.Flag;
                    attrSet &= ~attr.Flag;
                }
                else
                {
                    attrSet |= attr.Flag;
                    attrClear &= ~attr.Flag;
                    // mount_setattr(2): changing the access-time mode requires MOUNT_ATTR__ATIME in attr_clr.
                    if ((attr.Flag & MOUNT_ATTR__ATIME) == attr.Flag)
                        attrClear |= MOUNT_ATTR__ATIME;
                }
            }
            else if (option == "tmpcopyup") copyUp = true;
            else if (option == "idmap") idMap = true;
            else if (option == "ridmap") idMap = recursiveIdMap = true;
            else data.Add(option);
        }

        return new ParsedMountOptions(
            Flags: flags,
            ClearFlags: cleared,
            PropagationFlags: propagations.Count > 0 ? propagations[^1] : 0,
            Bind: (flags & MS_BIND) != 0,
            Recursive: (flags & MS_REC) != 0,
            Data: string.Join(',', data),
            Propagations: propagations,
            RecAttrSet: attrSet,
            RecAttrClear: attrClear,
            CopyUp: copyUp,
            IdMap: idMap,
            RecursiveIdMap: recursiveIdMap);
    }

    /// <summary>True for a bind mount: type "bind" or a bind/rbind option (runc's rule).</summary>
    public static bool IsBind(Mount mount) =>
        mount.Type == "bind" || (mount.Options?.Any(o => o is "bind" or "rbind") ?? false);
}
