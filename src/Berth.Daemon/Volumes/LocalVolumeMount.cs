using Berth.Daemon.Api;

namespace Berth.Daemon.Volumes;

/// <summary>
/// The <c>local</c> driver's options (moby volume/local): <c>type</c>, <c>device</c> and <c>o</c>
/// make the volume a mount of its own (<c>type=tmpfs,device=tmpfs,o=size=10m</c>,
/// <c>type=none,o=bind,device=/path</c>, <c>type=nfs,…</c>), made with mount(2) on the volume's
/// <c>_data</c> when a container that uses it starts.
/// </summary>
public static class LocalVolumeMount
{
    private static readonly string[] Valid = ["type", "device", "o", "size"];

    /// <summary>Each option needs the others listed (dockerd's mandatoryOpts).</summary>
    private static readonly (string Option, string[] Needs)[] Mandatory =
    [
        ("device", ["type"]),
        ("type", ["device"]),
        ("o", ["device", "type"]),
    ];

    /// <summary>Refuses options the local driver does not take, with dockerd's messages (400).</summary>
    public static void Validate(IReadOnlyDictionary<string, string>? options)
    {
        if (options is null || options.Count == 0) return;
        foreach (string key in options.Keys)
            if (!Valid.Contains(key)) throw ApiException.BadRequest($"invalid option: \"{key}\"");
        if (options.ContainsKey("size"))
            throw ApiException.BadRequest("quota size requested but no quota support: size= is served by dockerd on xfs with project quotas only");
        foreach (var (option, needs) in Mandatory)
            if (options.ContainsKey(option))
                foreach (string need in needs)
                    if (!options.ContainsKey(need)) throw ApiException.BadRequest($"missing required option: \"{need}\"");
        Parse(options.GetValueOrDefault("o") ?? "");
    }

    /// <summary>Whether the volume is a mount of its own (it has a device).</summary>
    public static bool HasMount(IReadOnlyDictionary<string, string>? options) => options?.ContainsKey("device") == true;

    /// <summary>Mounts the volume's device on <paramref name="target"/> (its <c>_data</c>).</summary>
    public static void Mount(IReadOnlyDictionary<string, string> options, string target)
    {
        string device = options["device"];
        string type = options.GetValueOrDefault("type") ?? "none";
        var (flags, data) = Parse(options.GetValueOrDefault("o") ?? "");
        bool bind = (flags & Interop.MS_BIND) != 0;
        string? fstype = bind ? null : type;
        // A bind mount ignores every flag but MS_REC on creation; the others take a remount.
        ulong first = bind ? flags & (Interop.MS_BIND | Interop.MS_REC) : flags;
        if (Interop.mount(device, target, fstype, first, bind ? null : string.Join(',', data)) < 0)
            throw Failure("mount", target, $"mount -t {type} -o {string.Join(',', data)} {device}");
        const ulong remountable = Interop.MS_RDONLY | Interop.MS_NOSUID | Interop.MS_NODEV | Interop.MS_NOEXEC | Interop.MS_NOATIME | Interop.MS_NODIRATIME | Interop.MS_RELATIME | Interop.MS_STRICTATIME;
        if (bind && (flags & remountable) != 0
            && Interop.mount("", target, null, Interop.MS_BIND | Interop.MS_REMOUNT | (flags & remountable), null) < 0)
        {
            ApiException error = Failure("mount (remount)", target, $"options {options["o"]}");
            Interop.umount2(target, Interop.MNT_DETACH);
            throw error;
        }
        ulong propagation = flags & (Interop.MS_PRIVATE | Interop.MS_SLAVE | Interop.MS_SHARED);
        if (propagation != 0 && Interop.mount("", target, null, propagation | (flags & Interop.MS_REC), null) < 0)
        {
            ApiException error = Failure("mount (propagation)", target, $"options {options["o"]}");
            Interop.umount2(target, Interop.MNT_DETACH);
            throw error;
        }
    }

    /// <summary>Unmounts <paramref name="target"/>; a busy mount is detached (it goes when its last user does).</summary>
    public static void Unmount(string target)
    {
        if (Interop.umount2(target, Interop.UMOUNT_NOFOLLOW) == 0) return;
        int errno = Interop.LastErrno;
        if (errno == Interop.EINVAL) return; // not a mount point (any more)
        if (errno == Interop.EBUSY && Interop.umount2(target, Interop.UMOUNT_NOFOLLOW | Interop.MNT_DETACH) == 0) return;
        throw Failure("umount2", target, null, errno);
    }

    /// <summary>The <c>o</c> option as moby/sys/mount parses it: flags, and what goes to the filesystem as data.</summary>
    private static (ulong Flags, List<string> Data) Parse(string o)
    {
        ulong flags = 0;
        var data = new List<string>();
        foreach (string option in o.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            (bool clear, ulong flag) = option switch
            {
                "defaults" or "rw" => (true, Interop.MS_RDONLY),
                "ro" => (false, Interop.MS_RDONLY),
                "suid" => (true, Interop.MS_NOSUID),
                "nosuid" => (false, Interop.MS_NOSUID),
                "dev" => (true, Interop.MS_NODEV),
                "nodev" => (false, Interop.MS_NODEV),
                "exec" => (true, Interop.MS_NOEXEC),
                "noexec" => (false, Interop.MS_NOEXEC),
                "sync" => (false, Interop.MS_SYNCHRONOUS),
                "async" => (true, Interop.MS_SYNCHRONOUS),
                "dirsync" => (false, Interop.MS_DIRSYNC),
                "mand" => (false, Interop.MS_MANDLOCK),
                "nomand" => (true, Interop.MS_MANDLOCK),
                "atime" => (true, Interop.MS_NOATIME),
                "noatime" => (false, Interop.MS_NOATIME),
                "diratime" => (true, Interop.MS_NODIRATIME),
                "nodiratime" => (false, Interop.MS_NODIRATIME),
                "relatime" => (false, Interop.MS_RELATIME),
                "norelatime" => (true, Interop.MS_RELATIME),
                "strictatime" => (false, Interop.MS_STRICTATIME),
                "nostrictatime" => (true, Interop.MS_STRICTATIME),
                "bind" => (false, Interop.MS_BIND),
                "rbind" => (false, Interop.MS_BIND | Interop.MS_REC),
                "private" => (false, Interop.MS_PRIVATE),
                "rprivate" => (false, Interop.MS_PRIVATE | Interop.MS_REC),
                "shared" => (false, Interop.MS_SHARED),
                "rshared" => (false, Interop.MS_SHARED | Interop.MS_REC),
                "slave" => (false, Interop.MS_SLAVE),
                "rslave" => (false, Interop.MS_SLAVE | Interop.MS_REC),
                "remount" => throw ApiException.BadRequest("invalid option: \"o=remount\" cannot be used on a volume"),
                _ => (false, 0UL),
            };
            if (flag == 0) data.Add(option);
            else if (clear) flags &= ~flag;
            else flags |= flag;
        }
        return (flags, data);
    }

    private static ApiException Failure(string operation, string target, string? what, int? errno = null)
        => new(500, $"error while mounting volume '{target}': {operation} {target}{(what is null ? "" : $" ({what})")}: {Interop.Describe(errno ?? Interop.LastErrno)}");
}
