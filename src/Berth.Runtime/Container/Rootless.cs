using System.Diagnostics;
using System.Runtime.InteropServices;
using Berth.Oci;

namespace Berth.Runtime.Container;

/// <summary>
/// What an unprivileged caller (euid != 0) can and cannot ask for, checked before anything is
/// created, and the id maps written for it: a single mapping of the caller's own uid/gid is
/// written directly (setgroups "deny" first for the gid map, as the kernel requires); anything
/// else goes through the setuid helpers newuidmap/newgidmap (Debian's uidmap), which check
/// /etc/subuid and /etc/subgid themselves. The same check is done here first, so that the error
/// names the missing range instead of newuidmap's "write to uid_map failed".
/// </summary>
public static partial class Rootless
{
    [LibraryImport("libc")] private static partial uint geteuid();
    [LibraryImport("libc")] private static partial uint getegid();
    [LibraryImport("libc", SetLastError = true)] private static partial int getrlimit(int resource, out RLimit limit);

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit { public ulong Current, Max; }

    public static uint EffectiveUid => geteuid();
    public static uint EffectiveGid => getegid();
    public static bool IsUnprivileged => geteuid() != 0;

    /// <summary>runc's default --root for an unprivileged user: $XDG_RUNTIME_DIR/berth-runtime, else /tmp/berth-runtime-UID.</summary>
    public static string DefaultRoot()
    {
        if (!IsUnprivileged) return ContainerRuntime.DefaultRoot;
        var xdg = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return !string.IsNullOrEmpty(xdg) ? Path.Combine(xdg, "berth-runtime") : $"/tmp/berth-runtime-{geteuid()}";
    }

    /// <summary>--rootless true|false|auto (auto, the default: rootless when euid != 0, as runc).</summary>
    public static bool ParseMode(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => IsUnprivileged,
        "true" or "1" or "yes" => true,
        "false" or "0" or "no" => false,
        _ => throw new RuntimeException($"--rootless: \"{value}\" is not true, false or auto"),
    };

    /// <summary>The /etc/subuid (or /etc/subgid) ranges of the caller, by name or number.</summary>
    public static List<(uint Start, uint Count)> SubordinateRanges(string file, uint id, string? name)
    {
        var ranges = new List<(uint, uint)>();
        string[] lines;
        try { lines = File.ReadAllLines(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ranges; }
        foreach (var line in lines)
        {
            var parts = line.Trim().Split(':');
            if (parts.Length != 3 || line.TrimStart().StartsWith('#')) continue;
            if (parts[0] != name && parts[0] != id.ToString()) continue;
            if (uint.TryParse(parts[1], out var start) && uint.TryParse(parts[2], out var count) && count > 0) ranges.Add((start, count));
        }
        return ranges;
    }

    static string? UserName(uint uid)
    {
        try
        {
            foreach (var line in File.ReadLines("/etc/passwd"))
            {
                var parts = line.Split(':');
                if (parts.Length > 2 && parts[2] == uid.ToString()) return parts[0];
            }
        }
        catch (IOException) { }
        return null;
    }

    static string? GroupName(uint gid)
    {
        try
        {
            foreach (var line in File.ReadLines("/etc/group"))
            {
                var parts = line.Split(':');
                if (parts.Length > 2 && parts[2] == gid.ToString()) return parts[0];
            }
        }
        catch (IOException) { }
        return null;
    }

    static bool IsOwnOnly(List<LinuxIdMapping>? mappings, uint own) =>
        mappings is [{ Size: 1 } m] && m.HostId == own;

    /// <summary>
    /// Refuses, with a message naming the field, what an unprivileged user cannot do. Called
    /// only when euid != 0, before the state directory, the cgroup or the child exist.
    /// </summary>
    public static void Validate(Spec spec)
    {
        var linux = spec.Linux ?? new Linux();
        var userNs = linux.FindNamespace(NamespaceType.User);
        if (userNs is null)
            throw new RuntimeException("rootless: an unprivileged user needs a user namespace (linux.namespaces: {\"type\": \"user\"} with uid/gid mappings); `berth-runtime spec --rootless` writes such a config");
        var ownUserNs = string.IsNullOrEmpty(userNs.Path);

        // setns into a namespace needs CAP_SYS_ADMIN in the user namespace that owns it: that is
        // only possible after joining that user namespace too (joined first, see JoinOrder).
        if (ownUserNs)
        {
            foreach (var ns in (linux.Namespaces ?? []).Where(n => n.Type != NamespaceType.User && !string.IsNullOrEmpty(n.Path)))
                throw new RuntimeException($"rootless: cannot join the {ns.Type} namespace {ns.Path}: joining a namespace needs privilege over the user namespace that owns it " +
                    "(a namespace of the host is owned by the host's); join its user namespace too (linux.namespaces[user].path), or create a new one (remove \"path\")");
        }

        if (ownUserNs)
        {
            ValidateMappings("uid", linux.UidMappings, "/etc/subuid", geteuid(), UserName(geteuid()), "newuidmap");
            ValidateMappings("gid", linux.GidMappings, "/etc/subgid", getegid(), UserName(geteuid()) ?? GroupName(getegid()), "newgidmap");
            var user = spec.Process?.User;
            if (user is not null)
            {
                if (!Maps(linux.UidMappings, user.Uid))
                    throw new RuntimeException($"rootless: process.user.uid {user.Uid} is not mapped in the user namespace ({Describe(linux.UidMappings)}); add it to linux.uidMappings (subordinate uids from /etc/subuid) or run as uid 0");
                if (!Maps(linux.GidMappings, user.Gid))
                    throw new RuntimeException($"rootless: process.user.gid {user.Gid} is not mapped in the user namespace ({Describe(linux.GidMappings)}); add it to linux.gidMappings (subordinate gids from /etc/subgid)");
                foreach (var gid in user.AdditionalGids ?? [])
                {
                    if (IsOwnOnly(linux.GidMappings, getegid()))
                        throw new RuntimeException($"rootless: process.user.additionalGids ({gid}): supplementary groups cannot be set when the only gid mapping is your own gid (the kernel requires setgroups \"deny\" then); map subordinate gids from /etc/subgid or drop additionalGids");
                    if (!Maps(linux.GidMappings, gid))
                        throw new RuntimeException($"rootless: process.user.additionalGids: gid {gid} is not mapped in the user namespace ({Describe(linux.GidMappings)})");
                }
            }
            foreach (var mount in spec.Mounts ?? [])
            {
                foreach (var option in mount.Options ?? [])
                {
                    if (option.StartsWith("uid=", StringComparison.Ordinal) && uint.TryParse(option[4..], out var uid) && !Maps(linux.UidMappings, uid))
                        throw new RuntimeException($"rootless: mount {mount.Destination}: option {option} names a uid that is not mapped in the user namespace ({Describe(linux.UidMappings)}); remove it (`spec --rootless` does) or map that uid");
                    if (option.StartsWith("gid=", StringComparison.Ordinal) && uint.TryParse(option[4..], out var gid) && !Maps(linux.GidMappings, gid))
                        throw new RuntimeException($"rootless: mount {mount.Destination}: option {option} names a gid that is not mapped in the user namespace ({Describe(linux.GidMappings)}); remove it (`spec --rootless` does) or map that gid");
                }
            }
        }

        foreach (var mount in spec.Mounts ?? [])
        {
            var options = mount.Options ?? [];
            if (IdmappedMounts.IsIdmapped(mount, MountOptions.Parse(options)))
                throw new RuntimeException($"rootless: mount {mount.Destination}: an id-mapped mount needs CAP_SYS_ADMIN in the host's user namespace (mount_setattr MOUNT_ATTR_IDMAP)");
            var bind = mount.Type == "bind" || options.Contains("bind") || options.Contains("rbind");
            if (bind || mount.Type is null) continue;
            if (!UserNamespaceMountable(mount.Type))
                throw new RuntimeException($"rootless: mount {mount.Destination}: a \"{mount.Type}\" filesystem can only be mounted with privilege in the host's user namespace; " +
                    "bind-mount it from the host instead (type \"bind\", options [\"rbind\"])");
        }

        if (spec.Process?.OomScoreAdj is { } adj && int.TryParse(File.ReadAllText("/proc/self/oom_score_adj").Trim(), out var current) && adj < current)
            throw new RuntimeException($"rootless: process.oomScoreAdj {adj} is below the current value {current}: lowering it needs CAP_SYS_RESOURCE in the host's user namespace");

        foreach (var rlimit in spec.Process?.Rlimits ?? [])
        {
            if (!Rlimits.TryParse(rlimit.Type, out var resource) || getrlimit(resource, out var limit) != 0) continue;
            if (limit.Max != Rlimits.Infinity && rlimit.Hard > limit.Max)
                throw new RuntimeException($"rootless: process.rlimits {rlimit.Type}: hard limit {Format(rlimit.Hard)} is above the current hard limit {Format(limit.Max)}: raising it needs CAP_SYS_RESOURCE in the host's user namespace");
        }
    }

    // Filesystems whose kernel driver sets FS_USERNS_MOUNT (sysfs needs the network namespace,
    // mqueue the ipc namespace, proc the pid namespace to be owned: the kernel checks those).
    static bool UserNamespaceMountable(string type) =>
        type is "proc" or "sysfs" or "tmpfs" or "devpts" or "mqueue" or "cgroup" or "cgroup2" or "overlay" or "ramfs" or "binfmt_misc" or "none"
        || type.StartsWith("fuse", StringComparison.Ordinal);

    static string Format(ulong value) => value == Rlimits.Infinity ? "unlimited" : value.ToString();

    static bool Maps(List<LinuxIdMapping>? mappings, uint containerId) =>
        (mappings ?? []).Any(m => containerId >= m.ContainerId && (ulong)containerId < (ulong)m.ContainerId + m.Size);

    static string Describe(List<LinuxIdMapping>? mappings) =>
        mappings is not { Count: > 0 } ? "no mappings"
        : "container ids " + string.Join(", ", mappings.Select(m => m.Size == 1 ? $"{m.ContainerId}" : $"{m.ContainerId}-{(ulong)m.ContainerId + m.Size - 1}"));

    static void ValidateMappings(string kind, List<LinuxIdMapping>? mappings, string file, uint own, string? name, string helper)
    {
        if (mappings is not { Count: > 0 })
            throw new RuntimeException($"rootless: linux.{kind}Mappings is empty: map at least your own {kind} {own} (e.g. {{\"containerID\": 0, \"hostID\": {own}, \"size\": 1}})");
        if (IsOwnOnly(mappings, own)) return;
        var ranges = SubordinateRanges(file, own, name);
        var who = name is null ? $"{kind} {own}" : $"{name} ({kind} {own})";
        foreach (var m in mappings)
        {
            if (m.Size == 0) continue;
            var end = (ulong)m.HostId + m.Size; // exclusive
            if (m.Size == 1 && m.HostId == own) continue;
            if (ranges.Any(r => m.HostId >= r.Start && end <= (ulong)r.Start + r.Count)) continue;
            var granted = ranges.Count == 0 ? $"{file} grants {who} no subordinate ids"
                : $"{file} grants {who} only " + string.Join(", ", ranges.Select(r => $"{r.Start}-{(ulong)r.Start + r.Count - 1}"));
            throw new RuntimeException($"rootless: linux.{kind}Mappings: host {kind}s {m.HostId}-{end - 1} (container {m.ContainerId}-{(ulong)m.ContainerId + m.Size - 1}) are not yours: " +
                $"{granted}; add \"{name ?? own.ToString()}:{m.HostId}:{m.Size}\" to {file} (as root), or map only your own {kind} {own}");
        }
        if (FindHelper(helper) is null)
            throw new RuntimeException($"rootless: linux.{kind}Mappings maps more than your own {kind}: that needs {helper} (Debian package uidmap), which is not installed");
    }

    static string? FindHelper(string name) => ExecutableSearch.Find(name);

    /// <summary>
    /// Writes the child's uid_map and gid_map as an unprivileged parent: directly for a single
    /// mapping of our own id (setgroups "deny" first, the kernel's rule for an unprivileged gid
    /// map), through newuidmap/newgidmap otherwise.
    /// </summary>
    public static void WriteIdMaps(int pid, Linux linux)
    {
        if (IsOwnOnly(linux.UidMappings, geteuid())) LibCWrite(pid, "uid_map", Format(linux.UidMappings!));
        else RunHelper("newuidmap", pid, linux.UidMappings!);
        if (IsOwnOnly(linux.GidMappings, getegid()))
        {
            LibCWrite(pid, "setgroups", "deny");
            LibCWrite(pid, "gid_map", Format(linux.GidMappings!));
        }
        else RunHelper("newgidmap", pid, linux.GidMappings!);
    }

    static string Format(List<LinuxIdMapping> mappings) => string.Concat(mappings.Select(m => $"{m.ContainerId} {m.HostId} {m.Size}\n"));

    static void LibCWrite(int pid, string name, string content) => Native.LibC.WriteSmallFile($"/proc/{pid}/{name}", content);

    static void RunHelper(string helper, int pid, List<LinuxIdMapping> mappings)
    {
        var path = FindHelper(helper) ?? throw new RuntimeException($"rootless: {helper} not found (Debian package uidmap)");
        var start = new ProcessStartInfo(path) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(pid.ToString());
        foreach (var m in mappings)
        {
            start.ArgumentList.Add(m.ContainerId.ToString());
            start.ArgumentList.Add(m.HostId.ToString());
            start.ArgumentList.Add(m.Size.ToString());
        }
        using var process = System.Diagnostics.Process.Start(start) ?? throw new RuntimeException($"rootless: could not start {path}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(10_000))
        {
            try { process.Kill(); } catch (InvalidOperationException) { }
            throw new RuntimeException($"rootless: {helper} {string.Join(' ', start.ArgumentList)} did not finish within 10 s");
        }
        if (process.ExitCode != 0)
            throw new RuntimeException($"rootless: {helper} {string.Join(' ', start.ArgumentList)} failed (exit {process.ExitCode}): {(stderr.Result + stdout.Result).Trim()}");
    }
}
