using System.Globalization;
using Berth.Oci;

namespace Berth.Daemon.Configuration;

/// <summary>
/// --userns-remap resolved as dockerd 20.10 resolves it (daemon_unix.go parseRemappedRoot and
/// setupRemappedRoot, pkg/idtools): USER, USER:GROUP, UID, UID:GID (a number must name an existing
/// user or group), or "default" (the user and group dockremap). The user's subordinate ids come
/// from /etc/subuid and /etc/subgid: the lines keyed by its uid, or when there are none by its
/// name, every such line in file order; container id 0 maps to the first range's start and each
/// next range continues where the previous ended. The group must exist, but the gid ranges are
/// the user's, as dockerd's.
/// </summary>
public sealed record UsernsRemap(string User, uint Uid, string Group, uint Gid, IReadOnlyList<LinuxIdMapping> UidMap, IReadOnlyList<LinuxIdMapping> GidMap)
{
    public const string DefaultUser = "dockremap";

    /// <summary>The host uid container root runs as.</summary>
    public uint RootUid => UidMap[0].HostId;

    /// <summary>The host gid of container root's group.</summary>
    public uint RootGid => GidMap[0].HostId;

    /// <summary>The directory under the data root that holds everything of this mapping (dockerd's "UID.GID").</summary>
    public string DirectoryName => $"{RootUid}.{RootGid}";

    /// <summary>
    /// The mapping --userns-remap=<paramref name="value"/> asks for; null for root, which dockerd
    /// takes as "user namespaces are OFF" (<paramref name="warning"/> says so). Throws with
    /// dockerd's words when the user, group or ranges are missing.
    /// </summary>
    public static UsernsRemap? Resolve(string value, string passwdFile, string groupFile, string subuidFile, string subgidFile, out string? warning)
    {
        warning = null;
        string userPart = value, groupPart = "";
        int colon = value.IndexOf(':');
        if (colon >= 0) (userPart, groupPart) = (value[..colon], value[(colon + 1)..]);
        if (value == "default") (userPart, groupPart) = (DefaultUser, DefaultUser);
        if (userPart.Length == 0) throw new DaemonConfigException($"Can't create ID mappings: invalid --userns-remap `{value}`: give USER, USER:GROUP, UID, UID:GID or default");

        var users = ReadDatabase(passwdFile);
        var groups = ReadDatabase(groupFile);
        (string Name, uint Id) user;
        if (uint.TryParse(userPart, NumberStyles.None, CultureInfo.InvariantCulture, out uint uid))
            user = users.FirstOrDefault(u => u.Id == uid) is { Name: not null } byId ? byId
                : throw new DaemonConfigException($"Uid {uid} has no entry in /etc/passwd: getent unable to find entry \"{uid}\" in passwd database");
        else
            user = users.FirstOrDefault(u => u.Name == userPart) is { Name: not null } byName ? byName
                : throw new DaemonConfigException(value == "default"
                    ? $"Error during uid lookup for \"{DefaultUser}\": getent unable to find entry \"{DefaultUser}\" in passwd database (berthd does not create the {DefaultUser} user: create it with its ranges in /etc/subuid and /etc/subgid, or name another user)"
                    : $"Error during uid lookup for \"{userPart}\": getent unable to find entry \"{userPart}\" in passwd database");
        // dockerd cannot map root onto itself: it warns and runs without user namespaces.
        if (user.Name == "root")
        {
            warning = "User namespaces: root cannot be remapped with itself; user namespaces are OFF";
            return null;
        }

        (string Name, uint Id) group;
        if (groupPart.Length == 0)
            group = groups.FirstOrDefault(g => g.Name == user.Name) is { Name: not null } same ? same
                : throw new DaemonConfigException($"Error during gid lookup for \"{user.Name}\": getent unable to find entry \"{user.Name}\" in group database");
        else if (uint.TryParse(groupPart, NumberStyles.None, CultureInfo.InvariantCulture, out uint gid))
            // "/etc/passwd" for a group is dockerd 20.10's wording.
            group = groups.FirstOrDefault(g => g.Id == gid) is { Name: not null } byId ? byId
                : throw new DaemonConfigException($"Gid {gid} has no entry in /etc/passwd: getent unable to find entry \"{gid}\" in group database");
        else
            group = groups.FirstOrDefault(g => g.Name == groupPart) is { Name: not null } byName ? byName
                : throw new DaemonConfigException($"Error during groupname lookup for \"{groupPart}\": getent unable to find entry \"{groupPart}\" in group database");

        var uidMap = Ranges(subuidFile, user, "subuid");
        var gidMap = Ranges(subgidFile, user, "subgid");
        return new UsernsRemap(user.Name, user.Id, group.Name, group.Id, uidMap, gidMap);
    }

    /// <summary>The user's ranges: the lines keyed by its uid, else those keyed by its name (idtools' lookupSubUIDRanges).</summary>
    private static List<LinuxIdMapping> Ranges(string file, (string Name, uint Id) user, string kind)
    {
        var lines = ReadSubordinateIds(file, kind);
        string uidKey = user.Id.ToString(CultureInfo.InvariantCulture);
        var chosen = lines.Where(l => l.Key == uidKey).ToList();
        if (chosen.Count == 0) chosen = lines.Where(l => l.Key == user.Name).ToList();
        if (chosen.Count == 0)
            throw new DaemonConfigException($"Can't create ID mappings: no {kind} ranges found for user \"{user.Name}\"");
        var map = new List<LinuxIdMapping>();
        uint containerId = 0;
        foreach (var (_, start, length) in chosen)
        {
            map.Add(new LinuxIdMapping { ContainerId = containerId, HostId = start, Size = length });
            containerId += length;
        }
        return map;
    }

    private static List<(string Key, uint Start, uint Length)> ReadSubordinateIds(string file, string kind)
    {
        var result = new List<(string, uint, uint)>();
        string[] lines;
        try { lines = File.ReadAllLines(file); }
        catch (FileNotFoundException) { return result; }
        catch (IOException e) { throw new DaemonConfigException($"Can't create ID mappings: {file}: {e.Message}"); }
        foreach (string raw in lines)
        {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            string[] parts = line.Split(':');
            if (parts.Length != 3 || !uint.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out uint start)
                || !uint.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint length))
                throw new DaemonConfigException($"Can't create ID mappings: cannot parse {kind} file {file}: invalid line `{line}`");
            result.Add((parts[0], start, length));
        }
        return result;
    }

    /// <summary>name:x:id:… lines of /etc/passwd or /etc/group (users known only to NSS modules are not seen).</summary>
    private static List<(string Name, uint Id)> ReadDatabase(string file)
    {
        var result = new List<(string, uint)>();
        if (!File.Exists(file)) return result;
        foreach (string line in File.ReadLines(file))
        {
            string[] parts = line.Split(':');
            if (parts.Length >= 3 && uint.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint id))
                result.Add((parts[0], id));
        }
        return result;
    }

    /// <summary>The host id of container id <paramref name="id"/>, or null when it is outside the map.</summary>
    public static uint? ToHost(IReadOnlyList<LinuxIdMapping> map, uint id)
    {
        foreach (var m in map)
            if (id >= m.ContainerId && id - m.ContainerId < m.Size) return m.HostId + (id - m.ContainerId);
        return null;
    }

    /// <summary>The container id of host id <paramref name="id"/>, or null when no range holds it.</summary>
    public static uint? ToContainer(IReadOnlyList<LinuxIdMapping> map, uint id)
    {
        foreach (var m in map)
            if (id >= m.HostId && id - m.HostId < m.Size) return m.ContainerId + (id - m.HostId);
        return null;
    }
}
