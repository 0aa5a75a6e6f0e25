using System.Text;

namespace Berth.Cgroups;

public enum CgroupMode
{
    /// <summary>cgroup v1 only.</summary>
    Legacy,
    /// <summary>cgroup v1 controllers plus a controller-less cgroup2 tree (usually at /sys/fs/cgroup/unified).</summary>
    Hybrid,
    /// <summary>cgroup v2 only.</summary>
    Unified,
}

/// <summary>One mounted cgroup v1 hierarchy: its controllers (co-mounted ones together) and where it is.</summary>
/// <param name="Controllers">e.g. ["cpu", "cpuacct"], or ["name=systemd"] for a named hierarchy.</param>
/// <param name="MountPoint">Where the hierarchy is mounted, e.g. /sys/fs/cgroup/cpu,cpuacct.</param>
/// <param name="Root">The cgroup the mount shows at its mount point ("/" unless bind-mounted from below).</param>
public sealed record CgroupHierarchy(IReadOnlyList<string> Controllers, string MountPoint, string Root);

/// <summary>
/// How cgroups are mounted on this host: the mode, the mount point of every v1 controller, the
/// cgroup2 mount point and the controllers at its root, and the calling process's own cgroups
/// (for relative cgroups paths).
/// </summary>
public sealed class CgroupLayout
{
    /// <summary>The v1 controllers Berth recognises in mount options (others, like "rw", are options).</summary>
    private static readonly HashSet<string> KnownV1Controllers =
    [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
        "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc",
    ];

    private readonly Dictionary<string, CgroupHierarchy> _byController;
    private readonly Dictionary<string, string> _ownCgroups;

    private CgroupLayout(
        IReadOnlyList<CgroupHierarchy> v1, string? unifiedMountPoint, string unifiedRoot,
        IReadOnlySet<string> unifiedControllers, Dictionary<string, string> ownCgroups)
    {
        V1Hierarchies = v1;
        UnifiedMountPoint = unifiedMountPoint;
        UnifiedRoot = unifiedRoot;
        UnifiedControllers = unifiedControllers;
        _ownCgroups = ownCgroups;
        _byController = new Dictionary<string, CgroupHierarchy>(StringComparer.Ordinal);
        foreach (var h in v1)
        {
            foreach (var c in h.Controllers)
            {
                _byController.TryAdd(c, h);
            }
        }

        var hasV1Controllers = v1.Any(h => h.Controllers.Any(c => !c.StartsWith("name=", StringComparison.Ordinal)));
        Mode = (hasV1Controllers, unifiedMountPoint is not null) switch
        {
            (true, true) => CgroupMode.Hybrid,
            (true, false) => CgroupMode.Legacy,
            (false, true) => CgroupMode.Unified,
            _ => throw new CgroupException("no cgroup filesystem is mounted (neither cgroup nor cgroup2 in mountinfo)", CgroupErrorKind.Unavailable),
        };
    }

    /// <summary>
    /// A layout over a fake cgroupfs tree for tests. <paramref name="root"/> holding
    /// <c>cgroup.controllers</c> is a cgroup v2 tree; otherwise each subdirectory is a v1
    /// hierarchy named by its controllers ("cpu,cpuacct"; "systemd" is name=systemd), and a
    /// subdirectory "unified" holding <c>cgroup.controllers</c> makes it hybrid.
    /// </summary>
    public CgroupLayout(string root, string? procSelfCgroup = null)
        : this(ScanFakeTree(root, out var unified), unified, "/",
               ReadControllers(unified), ParseProcSelfCgroup(procSelfCgroup ?? ""))
    {
    }

    public CgroupMode Mode { get; }

    public IReadOnlyList<CgroupHierarchy> V1Hierarchies { get; }

    /// <summary>The cgroup2 mount point (Unified mode: the only tree; Hybrid: usually …/unified), or null.</summary>
    public string? UnifiedMountPoint { get; }

    /// <summary>The cgroup the cgroup2 mount shows at its mount point.</summary>
    public string UnifiedRoot { get; }

    /// <summary>The controllers listed in <c>cgroup.controllers</c> at the cgroup2 mount point.</summary>
    public IReadOnlySet<string> UnifiedControllers { get; }

    /// <summary>The v1 hierarchy holding <paramref name="controller"/>, or null when it is not mounted.</summary>
    public CgroupHierarchy? GetV1Hierarchy(string controller) => _byController.GetValueOrDefault(controller);

    /// <summary>
    /// The calling process's cgroup in the hierarchy of <paramref name="controller"/> ("" for
    /// cgroup2), from /proc/self/cgroup; "/" when unknown.
    /// </summary>
    public string GetOwnCgroup(string controller) => _ownCgroups.GetValueOrDefault(controller, "/");

    /// <summary>Reads /proc/self/mountinfo, /proc/self/cgroup and the cgroup2 root's cgroup.controllers.</summary>
    public static CgroupLayout Detect()
    {
        string mountinfo, procSelfCgroup;
        try
        {
            mountinfo = File.ReadAllText("/proc/self/mountinfo");
        }
        catch (Exception e) when (CgroupFs.IsFileError(e))
        {
            throw CgroupFs.Wrap("read /proc/self/mountinfo", "/proc/self/mountinfo", e);
        }
        procSelfCgroup = CgroupFs.TryRead("/proc/self/cgroup") ?? "";
        return Parse(mountinfo, procSelfCgroup);
    }

    /// <summary>
    /// Builds a layout from the text of a mountinfo file and of a /proc/&lt;pid&gt;/cgroup file.
    /// <paramref name="unifiedControllers"/> overrides reading <c>cgroup.controllers</c> at the
    /// cgroup2 mount point (for tests on sample texts).
    /// </summary>
    public static CgroupLayout Parse(string mountinfo, string procSelfCgroup = "", IEnumerable<string>? unifiedControllers = null)
    {
        var v1 = new List<CgroupHierarchy>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string? unified = null, unifiedRoot = "/";
        foreach (var rawLine in mountinfo.Split('\n'))
        {
            var line = rawLine.Trim();
            if (line.Length == 0)
            {
                continue;
            }
            // id parent major:minor root mountpoint options [optional fields...] - fstype source superoptions
            var fields = line.Split(' ');
            var dash = Array.IndexOf(fields, "-", 6);
            if (fields.Length < 7 || dash < 0 || dash + 3 > fields.Length)
            {
                continue;
            }
            var fstype = fields[dash + 1];
            var root = Unescape(fields[3]);
            var mountPoint = Unescape(fields[4]);
            if (fstype == "cgroup2")
            {
                // With several cgroup2 mounts (bind mounts into containers), the first one wins
                // unless a later one is at the conventional place.
                if (unified is null || mountPoint is "/sys/fs/cgroup" or "/sys/fs/cgroup/unified")
                {
                    unified = mountPoint;
                    unifiedRoot = root;
                }
            }
            else if (fstype == "cgroup")
            {
                var superOptions = dash + 3 < fields.Length ? fields[dash + 3] : "";
                var controllers = superOptions.Split(',')
                    .Where(o => KnownV1Controllers.Contains(o) || o.StartsWith("name=", StringComparison.Ordinal))
                    .ToArray();
                if (controllers.Length == 0)
                {
                    continue;
                }
                // A hierarchy mounted twice (bind mounts) is recorded once, at its first mount.
                if (controllers.Any(c => !seen.Add(c)))
                {
                    continue;
                }
                v1.Add(new CgroupHierarchy(controllers, mountPoint, root));
            }
        }

        IReadOnlySet<string> controllerSet = unifiedControllers is not null
            ? unifiedControllers.ToHashSet(StringComparer.Ordinal)
            : ReadControllers(unified);
        return new CgroupLayout(v1, unified, unifiedRoot, controllerSet, ParseProcSelfCgroup(procSelfCgroup));
    }

    /// <summary>A short description for error messages: "cgroup v2 at /sys/fs/cgroup: controllers cpu io pids".</summary>
    public override string ToString() => Mode switch
    {
        CgroupMode.Unified => $"cgroup v2 at {UnifiedMountPoint}: controllers {string.Join(' ', UnifiedControllers.Order(StringComparer.Ordinal))}",
        _ => $"cgroup v1{(Mode == CgroupMode.Hybrid ? $" (hybrid, cgroup2 at {UnifiedMountPoint})" : "")}: controllers "
             + string.Join(' ', _byController.Keys.Order(StringComparer.Ordinal)),
    };

    /// <summary>Lines "hierarchy-id:controller-list:path"; v2 is "0::path" and is stored under "".</summary>
    private static Dictionary<string, string> ParseProcSelfCgroup(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var parts = line.Trim().Split(':', 3);
            if (parts.Length != 3)
            {
                continue;
            }
            if (parts[1].Length == 0)
            {
                result[""] = parts[2];
                continue;
            }
            foreach (var c in parts[1].Split(','))
            {
                result[c] = parts[2];
            }
        }
        return result;
    }

    private static IReadOnlySet<string> ReadControllers(string? unifiedMountPoint)
    {
        var text = unifiedMountPoint is null ? null : CgroupFs.TryRead(Path.Combine(unifiedMountPoint, "cgroup.controllers"));
        return (text ?? "").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
    }

    private static List<CgroupHierarchy> ScanFakeTree(string root, out string? unified)
    {
        var v1 = new List<CgroupHierarchy>();
        unified = null;
        if (File.Exists(Path.Combine(root, "cgroup.controllers")))
        {
            unified = root;
            return v1;
        }
        foreach (var dir in Directory.GetDirectories(root).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(dir);
            if (name == "unified" && File.Exists(Path.Combine(dir, "cgroup.controllers")))
            {
                unified = dir;
                continue;
            }
            var controllers = name.Split(',').Select(c => c == "systemd" ? "name=systemd" : c).ToArray();
            v1.Add(new CgroupHierarchy(controllers, dir, "/"));
        }
        return v1;
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo octal.</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\'))
        {
            return field;
        }
        var sb = new StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length
                && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                sb.Append((char)(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) | (field[i + 3] - '0')));
                i += 3;
            }
            else
            {
                sb.Append(field[i]);
            }
        }
        return sb.ToString();
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';
}
