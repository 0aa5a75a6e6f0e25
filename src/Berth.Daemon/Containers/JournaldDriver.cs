using System.Text;
using Berth.Daemon.Api;

namespace Berth.Daemon.Containers;

/// <summary>
/// dockerd's journald logging driver (moby daemon/logger/journald with go-systemd's journal.Send): berth-monitor sends
/// every entry to journald's native socket with dockerd's fields, and keeps the dual-logging cache beside it for
/// <c>docker logs</c> (dockerd reads the journal back; berthd, which does not read journal files, reads the cache,
/// which holds the same lines; <c>cache-*</c> options are taken as dockerd takes them). Options: <c>tag</c>
/// (CONTAINER_TAG and SYSLOG_IDENTIFIER, <c>{{.ID}}</c> by default), <c>labels</c>, <c>labels-regex</c>,
/// <c>env</c>, <c>env-regex</c> (fields named as dockerd's sanitizeKeyMod names them). Without journald's socket
/// the start fails with dockerd's "journald is not enabled on this host".
/// </summary>
public static class JournaldDriver
{
    public const string Name = "journald";

    /// <summary>The first error in the options, in dockerd's words; null when they are good.</summary>
    public static string? Check(IReadOnlyDictionary<string, string> options)
    {
        foreach (var (key, value) in options.OrderBy(o => o.Key, StringComparer.Ordinal))
        {
            if (key is not ("labels" or "labels-regex" or "env" or "env-regex" or "tag") && !LogCache.IsOption(key))
                return $"unknown log opt '{key}' for journald log driver";
            if (key is "labels-regex" or "env-regex" && value.Length > 0 && LogLimits.RegexError(value) is { } regexError)
                return $"invalid log opt {key} `{value}`: {regexError}";
        }
        if (options.GetValueOrDefault("tag") is { Length: > 0 } tag && LogTag.Error(tag) is { } tagError) return tagError;
        return LogCache.Check(options);
    }

    /// <summary>The socket and the fields of every entry, in dockerd's names.</summary>
    /// <exception cref="ApiException">500 in dockerd's words when journald's socket is not there (the start fails).</exception>
    public static JournaldTarget Target(ContainerRecord r, string socket)
    {
        if (!File.Exists(socket)) throw new ApiException(500, "failed to initialize logging driver: journald is not enabled on this host");
        string tag = LogTag.Of(r);
        var fields = new List<KeyValuePair<string, string>>
        {
            new("CONTAINER_ID", r.Id[..12]),
            new("CONTAINER_ID_FULL", r.Id),
            new("CONTAINER_NAME", r.Name.TrimStart('/')),
            new("CONTAINER_TAG", tag),
            new("IMAGE_NAME", r.Config.Image ?? ""),
            new("SYSLOG_IDENTIFIER", tag),
        };
        foreach (var (key, value) in LogLimits.ExtraAttributes(r.HostConfig.LogConfig, r.Config.Labels, r.Config.Env))
        {
            string name = SanitizeKey(key);
            int at = fields.FindIndex(f => f.Key == name);       // one map in dockerd: an attribute replaces a field of its name
            if (at >= 0) fields[at] = new(name, value);
            else fields.Add(new(name, value));
        }
        if (fields.Sum(f => Encoding.UTF8.GetByteCount(f.Key) + Encoding.UTF8.GetByteCount(f.Value) + 32) > 16384 || fields.Count > 256)
            throw ApiException.BadRequest("log opts labels/env: the journald fields would be over 16 KiB (berth-monitor's bound)");
        return new JournaldTarget(socket, fields);
    }

    /// <summary>dockerd's sanitizeKeyMod: letters upper-cased, anything but A-Z and 0-9 an underscore, no leading underscores.</summary>
    internal static string SanitizeKey(string key)
    {
        var b = new StringBuilder();
        foreach (Rune r in key.EnumerateRunes())
        {
            Rune v = r.Value is >= 'a' and <= 'z' ? new Rune(r.Value - 32) : r.Value is (>= 'A' and <= 'Z') or (>= '0' and <= '9') ? r : new Rune('_');
            if (!(b.Length == 0 && v.Value == '_')) b.Append(v.ToString());
        }
        return b.ToString();
    }
}

/// <summary>The journald socket berth-monitor sends to and the fields of every entry: see <see cref="JournaldDriver.Target"/>.</summary>
public sealed record JournaldTarget(string Socket, IReadOnlyList<KeyValuePair<string, string>> Fields);
