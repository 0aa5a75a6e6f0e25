namespace Berth.Daemon.Containers;

/// <summary>
/// dockerd's dual logging (moby daemon/logger/loggerutils/cache): a driver that cannot be read back (syslog, gelf,
/// fluentd; and journald, which dockerd reads from the journal and berthd does not) is paired with a local-format file, <c>container-cached-logs/container.log</c>, that <c>docker logs</c>
/// reads. Its options are the local driver's, prefixed: <c>cache-max-size</c>, <c>cache-max-file</c>,
/// <c>cache-compress</c>, and <c>cache-disabled</c> leaves it out.
/// </summary>
internal static class LogCache
{
    /// <summary>The drivers that send the output away and keep the cache beside.</summary>
    public static bool IsRemote(string driver) => driver is SyslogDriver.Name or GelfDriver.Name or FluentdDriver.Name or JournaldDriver.Name;

    public static bool IsOption(string key) => key is "cache-disabled" or "cache-max-size" or "cache-max-file" or "cache-compress";

    /// <summary>The first error in the cache's options, or null.</summary>
    public static string? Check(IReadOnlyDictionary<string, string> options)
    {
        if (options.GetValueOrDefault("cache-disabled") is { } disabled && LogLimits.ParseGoBool(disabled) is null)
            return $"invalid value for cache-disabled: strconv.ParseBool: parsing \"{disabled}\": invalid syntax";
        var cache = LocalOptions(options);
        return cache.Count > 0 ? LogLimits.Check(LogLimits.LocalDriver, cache) : null;
    }

    /// <summary>Whether docker logs can read the container's output (the cache is kept).</summary>
    public static bool Cached(LogConfigJson log) => log.Config?.GetValueOrDefault("cache-disabled") is not { } v || LogLimits.ParseGoBool(v) != true;

    /// <summary>The cache's rotation, read as the local driver reads its own options (dockerd's cache defaults are the local driver's).</summary>
    public static LogSettings Settings(LogConfigJson log)
        => LogLimits.Of(new LogConfigJson { Type = LogLimits.LocalDriver, Config = LocalOptions(log.Config ?? []) });

    private static Dictionary<string, string> LocalOptions(IReadOnlyDictionary<string, string> options)
        => options.Where(o => o.Key is "cache-max-size" or "cache-max-file" or "cache-compress")
            .ToDictionary(o => o.Key["cache-".Length..], o => o.Value, StringComparer.Ordinal);
}
