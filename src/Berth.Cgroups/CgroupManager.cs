namespace Berth.Cgroups;

/// <summary>Makes the <see cref="ICgroupManager"/> that fits the host's <see cref="CgroupLayout"/>.</summary>
public static class CgroupManager
{
    /// <summary>The <see cref="ICgroupManager.Paths"/> key of the cgroup2 group (runc uses "" too).</summary>
    public const string UnifiedKey = "";

    /// <summary>
    /// A manager for the group <paramref name="cgroupsPath"/> (e.g. "/berth/&lt;id&gt;"). An
    /// absolute path is taken from each hierarchy's root; a relative one is placed under the
    /// calling process's own cgroup, as runc does. Nothing is created until <see cref="ICgroupManager.Create"/>.
    /// </summary>
    public static ICgroupManager Create(CgroupLayout layout, string cgroupsPath)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var normalized = ValidateCgroupsPath(cgroupsPath);
        return layout.Mode == CgroupMode.Unified
            ? new V2.V2Manager(layout, Resolve(layout.UnifiedMountPoint!, layout.UnifiedRoot, layout.GetOwnCgroup(UnifiedKey), normalized))
            : V1.V1Manager.ForPath(layout, normalized);
    }

    /// <summary>
    /// Removes the group <paramref name="cgroupsPath"/> from every hierarchy where it holds no
    /// process and no child group: how an engine takes away the parent group its containers'
    /// groups went under (runc and the runtimes remove only the container's own group).
    /// </summary>
    public static void RemoveIfEmpty(CgroupLayout layout, string cgroupsPath)
    {
        foreach (var path in Create(layout, cgroupsPath).Paths.Values.Distinct(StringComparer.Ordinal))
        {
            CgroupFs.RemoveIfEmpty(path);
        }
    }

    /// <summary>
    /// Rebuilds a manager from <see cref="ICgroupManager.Paths"/> persisted by an earlier
    /// process (for <c>delete</c>, <c>kill --all</c>). Every path must lie strictly below a
    /// cgroup mount of <paramref name="layout"/>: a corrupt state file must not make
    /// <see cref="ICgroupManager.Destroy"/> remove anything else.
    /// </summary>
    public static ICgroupManager Load(CgroupLayout layout, IReadOnlyDictionary<string, string> paths)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(paths);
        foreach (var (key, path) in paths)
        {
            var mount = key == UnifiedKey ? layout.UnifiedMountPoint : layout.GetV1Hierarchy(key)?.MountPoint;
            if (mount is null)
            {
                throw new CgroupException($"load cgroup paths: \"{key}\" ({path}) is not a cgroup hierarchy mounted on this host ({layout})",
                    CgroupErrorKind.InvalidArgument, path: path);
            }
            if (!IsStrictlyBelow(path, mount))
            {
                throw new CgroupException($"load cgroup paths: {path} for \"{key}\" is not below its mount point {mount}",
                    CgroupErrorKind.InvalidArgument, path: path);
            }
        }
        if (layout.Mode == CgroupMode.Unified)
        {
            if (!paths.TryGetValue(UnifiedKey, out var unified) || paths.Count != 1)
            {
                throw new CgroupException("load cgroup paths: a cgroup v2 host needs exactly the unified (\"\") path", CgroupErrorKind.InvalidArgument);
            }
            return new V2.V2Manager(layout, unified);
        }
        return new V1.V1Manager(layout, paths);
    }

    internal static string ValidateCgroupsPath(string cgroupsPath)
    {
        ArgumentNullException.ThrowIfNull(cgroupsPath);
        var parts = cgroupsPath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || parts.Any(p => p is "." or "..") || cgroupsPath.Contains('\0'))
        {
            throw new CgroupException($"invalid cgroups path \"{cgroupsPath}\": needs at least one component and no \".\" or \"..\"",
                CgroupErrorKind.InvalidArgument);
        }
        return (cgroupsPath.StartsWith('/') ? "/" : "") + string.Join('/', parts);
    }

    /// <summary>The group directory for <paramref name="cgroupsPath"/> in the hierarchy mounted at <paramref name="mountPoint"/>.</summary>
    internal static string Resolve(string mountPoint, string mountRoot, string ownCgroup, string cgroupsPath)
    {
        if (cgroupsPath.StartsWith('/'))
        {
            return mountPoint.TrimEnd('/') + cgroupsPath;
        }
        // /proc/self/cgroup paths are relative to the hierarchy's root; the mount shows mountRoot.
        var own = ownCgroup;
        if (mountRoot != "/" && (own == mountRoot || own.StartsWith(mountRoot + "/", StringComparison.Ordinal)))
        {
            own = own[mountRoot.Length..];
        }
        return Path.Join(mountPoint.TrimEnd('/'), own.Trim('/'), cgroupsPath).Replace("//", "/", StringComparison.Ordinal);
    }

    internal static bool IsStrictlyBelow(string path, string mountPoint)
    {
        var full = Path.GetFullPath(path);
        var mount = Path.GetFullPath(mountPoint).TrimEnd('/');
        return full.Length > mount.Length + 1 && full.StartsWith(mount + "/", StringComparison.Ordinal);
    }

    internal static CgroupException Unavailable(string controller, CgroupLayout layout) =>
        new($"{FieldOf(controller)} requested but the {controller} controller is not available ({layout})", CgroupErrorKind.Unavailable);

    /// <summary>The OCI <c>linux.resources</c> field a controller carries, for error messages.</summary>
    internal static string FieldOf(string controller) => controller switch
    {
        "blkio" or "io" => "blockIO limit",
        "hugetlb" => "hugepageLimits",
        "devices" => "devices rules",
        "net_cls" => "network.classID",
        "net_prio" => "network.priorities",
        "rdma" => "rdma limit",
        _ => controller + " limit",
    };

    internal static IReadOnlyList<int> ReadPids(IEnumerable<string> groups)
    {
        var pids = new SortedSet<int>();
        foreach (var group in groups)
        {
            foreach (var line in CgroupFs.Read(group, "cgroup.procs").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (int.TryParse(line, out var pid))
                {
                    pids.Add(pid);
                }
            }
        }
        return [.. pids];
    }

    internal static void WriteProcs(string group, int pid)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        CgroupFs.Write(group, "cgroup.procs", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Removes every group; one failure does not stop the others, the first is rethrown.</summary>
    internal static void RemoveAll(IEnumerable<string> groups)
    {
        CgroupException? first = null;
        foreach (var group in groups)
        {
            try
            {
                CgroupFs.RemoveTree(group);
            }
            catch (CgroupException e)
            {
                first ??= e;
            }
        }
        if (first is not null)
        {
            throw first;
        }
    }
}
