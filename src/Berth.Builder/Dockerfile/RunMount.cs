using System.Globalization;

namespace Berth.Builder.Dockerfile;

/// <summary>
/// One <c>RUN --mount=…</c> as BuildKit's Dockerfile frontend reads it (instructions/commands_runmount.go):
/// comma-separated <c>key=value</c> fields, <c>type</c> bind (the default), cache or tmpfs. Secrets and SSH
/// agents come from BuildKit's client session, which the classic build API has no channel for: refused by name.
/// </summary>
/// <param name="Source">bind: a path in the build context, or in <paramref name="From"/>'s files (default the root); cache: unused.</param>
/// <param name="From">bind: an earlier stage (name or index) or an image whose files are bound instead of the context's.</param>
/// <param name="Id">cache: which cache (default the target).</param>
/// <param name="Sharing">cache: shared (default), private or locked.</param>
public sealed record RunMount(string Type, string Target, string? Source, bool ReadWrite, string? Id, string Sharing, uint? Mode, uint? Uid, uint? Gid, long? Size, string? From = null)
{
    /// <exception cref="DockerfileSyntaxException">An unknown type or field, a missing target, a bad number.</exception>
    public static RunMount Parse(string value)
    {
        string type = "bind";
        string? target = null, source = null, id = null, from = null, sharing = null;
        bool? readWrite = null;
        uint? mode = null, uid = null, gid = null;
        long? size = null;
        foreach (string field in value.Split(','))
        {
            if (field.Length == 0) continue;
            int eq = field.IndexOf('=');
            string key = (eq < 0 ? field : field[..eq]).Trim().ToLowerInvariant();
            string? v = eq < 0 ? null : field[(eq + 1)..].Trim();
            switch (key)
            {
                case "type": type = Required(key, v).ToLowerInvariant(); break;
                case "target" or "dst" or "destination": target = Required(key, v); break;
                case "source" or "src": source = Required(key, v); break;
                case "from": from = Required(key, v); break;
                case "id": id = Required(key, v); break;
                case "sharing": sharing = Required(key, v).ToLowerInvariant(); break;
                case "readonly" or "ro": readWrite = !Bool(key, v); break;
                case "readwrite" or "rw": readWrite = Bool(key, v); break;
                case "mode": mode = Octal(key, Required(key, v)); break;
                case "uid": uid = Number(key, Required(key, v)); break;
                case "gid": gid = Number(key, Required(key, v)); break;
                case "size": size = ParseSize(Required(key, v)); break;
                default: throw new DockerfileSyntaxException($"unexpected key '{key}' in '{field}'");
            }
        }
        switch (type)
        {
            case "secret" or "ssh":
                throw new DockerfileSyntaxException($"--mount=type={type} needs BuildKit's client session, which this builder (the classic build API) does not have");
            case not ("bind" or "cache" or "tmpfs"):
                throw new DockerfileSyntaxException($"unsupported mount type \"{type}\"");
        }
        if (string.IsNullOrEmpty(target)) throw new DockerfileSyntaxException("mount destination not set");
        // BuildKit seeds a cache mount from another stage's directory; this builder binds other stages' files only.
        if (from is not null && type != "bind") throw new DockerfileSyntaxException($"from is for --mount=type=bind in this builder, not type={type}");
        if (sharing is not (null or "shared" or "private" or "locked")) throw new DockerfileSyntaxException($"unsupported sharing value \"{sharing}\"");
        if (type != "cache" && (id is not null || sharing is not null || mode is not null || uid is not null || gid is not null))
            throw new DockerfileSyntaxException($"id, sharing, mode, uid and gid are for --mount=type=cache, not type={type}");
        if (type != "tmpfs" && size is not null) throw new DockerfileSyntaxException($"size is for --mount=type=tmpfs, not type={type}");
        if (type == "cache" && source is not null) throw new DockerfileSyntaxException("source is for --mount=type=bind (a cache has no source without from, which this builder does not take)");
        // A bind is read-only unless rw; a cache is writable (that is its point); a tmpfs always writable.
        return new RunMount(type, target, source, type == "bind" ? readWrite ?? false : true, id ?? (type == "cache" ? target : null),
            sharing ?? "shared", mode, uid, gid, size, from);
    }

    private static string Required(string key, string? value) =>
        value is { Length: > 0 } ? value : throw new DockerfileSyntaxException($"invalid value for {key}: empty");

    private static bool Bool(string key, string? value) => value switch
    {
        null => true,
        _ when bool.TryParse(value, out bool b) => b,
        _ => throw new DockerfileSyntaxException($"invalid value for {key}: {value}"),
    };

    private static uint Number(string key, string value) =>
        uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out uint n) ? n : throw new DockerfileSyntaxException($"invalid value for {key}: {value}");

    private static uint Octal(string key, string value)
    {
        try
        {
            uint mode = Convert.ToUInt32(value, 8);
            return mode <= 0xFFF ? mode : throw new DockerfileSyntaxException($"invalid value for {key}: {value}");
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new DockerfileSyntaxException($"invalid value for {key}: {value}");
        }
    }

    /// <summary>A size as docker's units.RAMInBytes reads it: a number with an optional b, k, m or g (binary).</summary>
    private static long ParseSize(string value)
    {
        string v = value.Trim().ToLowerInvariant();
        if (v.EndsWith('b') && v.Length > 1 && !char.IsDigit(v[^2])) v = v[..^1];
        long unit = v.Length == 0 ? 1 : v[^1] switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, 't' => 1L << 40, _ => 1 };
        if (unit != 1) v = v[..^1];
        else if (v.EndsWith('b')) v = v[..^1];
        return long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out long n) && n > 0 && n <= long.MaxValue / unit
            ? n * unit
            : throw new DockerfileSyntaxException($"invalid value for size: {value}");
    }
}
