using System.Globalization;
using System.Text;

namespace Berth.Images.Engine;

/// <summary>The user a container's process runs as, resolved against the image's /etc/passwd and /etc/group.</summary>
/// <param name="AdditionalGids">Supplementary groups: from /etc/group membership when no group was given, then the engine's extra groups.</param>
/// <param name="Name">The passwd entry's name when one matched.</param>
/// <param name="Home">The passwd entry's home (<c>/</c> when none matched).</param>
public sealed record ResolvedUser(uint Uid, uint Gid, IReadOnlyList<uint> AdditionalGids, string? Name, string Home)
{
    /// <summary>
    /// The process's <c>additionalGids</c> as dockerd sets them (daemon/oci_linux.go getUser since
    /// 20.10.18): the primary gid first, then <see cref="AdditionalGids"/>. Without the primary gid
    /// among the supplementary groups, a process that changes its gid would lose that group's
    /// access and escape a negative group permission (GHSA-rc4r-wh2q-q6c4, CVE-2022-36109).
    /// </summary>
    public List<uint> ProcessAdditionalGids => [Gid, .. AdditionalGids];
}

/// <summary>
/// <c>USER</c> / <c>--user</c> resolution, a port of runc's (moby/sys) <c>user.GetExecUser</c> as
/// dockerd calls it: <c>""</c> (root), <c>name</c>, <c>uid</c>, <c>name:group</c>, <c>uid:gid</c> and
/// mixes. A name must be in /etc/passwd (or /etc/group); a number need not be. With no group given,
/// the primary gid is the passwd entry's and the supplementary groups are those listing the user
/// by name in /etc/group; with a group given there are none (besides the engine's extra groups).
/// Missing files count as empty. The files are read through <see cref="RootfsFile"/>, so symlinks
/// in the image's /etc cannot reach the host.
/// </summary>
public static class UserResolver
{
    private const long MaxId = int.MaxValue;

    public static ResolvedUser Resolve(string rootfs, string? userSpec, IReadOnlyList<string>? extraGroups = null)
        => Resolve(userSpec, RootfsFile.TryRead(rootfs, "/etc/passwd"), RootfsFile.TryRead(rootfs, "/etc/group"), extraGroups);

    /// <summary>Resolves against file contents (null = the file does not exist).</summary>
    public static ResolvedUser Resolve(string? userSpec, byte[]? passwd, byte[]? group, IReadOnlyList<string>? extraGroups = null)
    {
        string spec = userSpec ?? "";
        string[] parts = spec.Split(':');
        string userArg = parts[0];
        string groupArg = parts.Length > 1 ? parts[1] : "";
        bool userNumeric = TryId(userArg, out long uidArg);
        bool groupNumeric = TryId(groupArg, out long gidArg);

        long uid = 0, gid = 0;
        string home = "/";
        string? matchedName = null;

        var users = ParsePasswd(passwd).Where(u =>
            userArg.Length == 0 ? u.Uid == 0 : userNumeric ? u.Uid == uidArg : u.Name == userArg).ToList();
        if (users.Count > 0)
        {
            matchedName = users[0].Name;
            uid = users[0].Uid;
            gid = users[0].Gid;
            home = users[0].Home;
        }
        else if (userArg.Length > 0)
        {
            if (!userNumeric)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"unable to find user {userArg}: no matching entries in passwd file");
            uid = uidArg;
            CheckRange(uid, "uid", userArg);
        }

        var sgids = new List<uint>();
        if (groupArg.Length > 0 || matchedName is not null)
        {
            var groups = ParseGroup(group).Where(g =>
                groupArg.Length == 0 ? g.Members.Contains(matchedName!) : groupNumeric ? g.Gid == gidArg : g.Name == groupArg).ToList();
            if (groupArg.Length > 0)
            {
                if (groups.Count > 0)
                {
                    gid = groups[0].Gid;
                }
                else
                {
                    if (!groupNumeric)
                        throw new ImagesException(ImagesErrorKind.InvalidArgument, $"unable to find group {groupArg}: no matching entries in group file");
                    gid = gidArg;
                    CheckRange(gid, "gid", groupArg);
                }
            }
            else
            {
                sgids.AddRange(groups.Select(g => (uint)g.Gid));
            }
        }

        // dockerd's --group-add: names resolved in /etc/group, numbers taken as they are.
        foreach (string extra in extraGroups ?? [])
        {
            if (TryId(extra, out long n))
            {
                CheckRange(n, "gid", extra);
                sgids.Add((uint)n);
                continue;
            }
            var match = ParseGroup(group).FirstOrDefault(g => g.Name == extra)
                ?? throw new ImagesException(ImagesErrorKind.InvalidArgument, $"unable to find group {extra}: no matching entries in group file");
            sgids.Add((uint)match.Gid);
        }
        return new ResolvedUser((uint)uid, (uint)gid, sgids, matchedName, home);
    }

    private static void CheckRange(long id, string what, string text)
    {
        if (id < 0 || id > MaxId)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what} `{text}` is out of range (0-{MaxId})");
    }

    // strconv.Atoi: optional sign, decimal digits.
    private static bool TryId(string text, out long value)
        => long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value) && text.Trim() == text;

    private sealed record PasswdEntry(string Name, long Uid, long Gid, string Home);
    private sealed record GroupEntry(string Name, long Gid, string[] Members);

    // runc's parseLine: lines trimmed, blank ones skipped, fields split on ':'; a field that is not
    // a number counts as 0 (strconv.Atoi's zero value on error), as runc does.
    private static IEnumerable<string[]> Lines(byte[]? file)
    {
        if (file is null) yield break;
        foreach (string raw in Encoding.UTF8.GetString(file).Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0) continue;
            yield return line.Split(':');
        }
    }

    private static long Number(string[] fields, int index)
        => index < fields.Length && long.TryParse(fields[index], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) ? v : 0;

    private static string Field(string[] fields, int index) => index < fields.Length ? fields[index] : "";

    private static IEnumerable<PasswdEntry> ParsePasswd(byte[]? file)
        => Lines(file).Select(f => new PasswdEntry(Field(f, 0), Number(f, 2), Number(f, 3), Field(f, 5)));

    private static IEnumerable<GroupEntry> ParseGroup(byte[]? file)
        => Lines(file).Select(f => new GroupEntry(Field(f, 0), Number(f, 2),
            Field(f, 3).Split(',', StringSplitOptions.RemoveEmptyEntries)));
}
