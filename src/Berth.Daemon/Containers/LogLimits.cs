using System.Globalization;
using System.Text.RegularExpressions;
using Berth.Oci;

namespace Berth.Daemon.Containers;

/// <summary>How a container's log file is kept: rotated at <see cref="MaxSize"/> bytes into at most
/// <see cref="MaxFiles"/> files, the rotated ones gzip-compressed when <see cref="Compress"/>.</summary>
public sealed record LogSettings(long MaxSize, int MaxFiles, bool Compress);

/// <summary>
/// The options of the file-backed logging drivers, checked and read as dockerd does:
/// <list type="bullet">
/// <item>json-file: <c>max-size</c> (a <see cref="ByteSize"/>, 1024-based), <c>max-file</c> and <c>compress</c>
/// (rotated files gzip'ed); <c>labels</c>, <c>labels-regex</c>, <c>env</c> and <c>env-regex</c> choose the attributes
/// written into every entry (<see cref="Attributes"/>); <c>tag</c> is taken and unused, as by dockerd's json-file.
/// Unlike dockerd, whose json-file logs grow without bound unless told, a container's log is capped at 3 files of
/// 10 MiB by default.</item>
/// <item>local: <c>max-size</c> (go-units FromHumanSize, 1000-based, as dockerd's local driver reads it), <c>max-file</c>
/// and <c>compress</c>; dockerd's defaults: 20 MiB, 5 files, compressed.</item>
/// </list>
/// </summary>
public static class LogLimits
{
    public const string JsonFileDriver = "json-file", LocalDriver = "local";

    public const long DefaultMaxSize = 10 * 1024 * 1024;
    public const int DefaultMaxFiles = 3;
    public const long LocalDefaultMaxSize = 20 * 1024 * 1024;
    public const int LocalDefaultMaxFiles = 5;
    /// <summary>The most files berth-monitor rotates a log through (dockerd sets no bound; beyond this is refused at create).</summary>
    public const int MaxFilesLimit = 1000;

    /// <summary>The settings a container's log config asks for (defaults for what it leaves out); values were checked at create.</summary>
    public static LogSettings Of(LogConfigJson log)
    {
        ArgumentNullException.ThrowIfNull(log);
        string? Get(string key) => log.Config?.GetValueOrDefault(key) is { Length: > 0 } v ? v : null;
        if (log.Type == LocalDriver)
        {
            long size = Get("max-size") is { } s && ParseDecimalSize(s) is long n and > 0 ? n : LocalDefaultMaxSize;
            // max-file 0 keeps one file, as in dockerd (its rotation then only truncates).
            int files = Get("max-file") is { } f && ParseAtoi(f) is int c and >= 0 ? Math.Max(c, 1) : LocalDefaultMaxFiles;
            bool compress = Get("compress") is not { } z || ParseGoBool(z) != false;
            return new LogSettings(size, files, compress && files > 1);
        }
        long jsonSize = Get("max-size") is { } js ? ParseSize(js) ?? DefaultMaxSize : DefaultMaxSize;
        int jsonFiles = Get("max-file") is { } jf && ParseCount(jf) is int jn ? jn : DefaultMaxFiles;
        bool jsonCompress = Get("compress") is { } jz && ParseGoBool(jz) == true;
        return new LogSettings(jsonSize, jsonFiles, jsonCompress && jsonFiles > 1);
    }

    /// <summary>
    /// The attributes json-file writes into every entry (<c>"attrs"</c>) and <c>docker logs --details</c> shows, as
    /// dockerd's logger.Info.ExtraAttributes: the container's labels named by <c>labels</c> (comma-separated) or
    /// matched by <c>labels-regex</c>, and its environment variables named by <c>env</c> or matched by <c>env-regex</c>.
    /// Null when there are none (or the driver is not json-file: the local driver keeps no attributes).
    /// </summary>
    public static SortedDictionary<string, string>? Attributes(LogConfigJson log, IReadOnlyDictionary<string, string>? labels, IEnumerable<string>? env)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (log.Type != JsonFileDriver) return null;
        SortedDictionary<string, string> result = ExtraAttributes(log, labels, env);
        return result.Count > 0 ? result : null;
    }

    /// <summary>dockerd's logger.Info.ExtraAttributes for any driver (gelf and fluentd send them with every message); empty when there are none.</summary>
    public static SortedDictionary<string, string> ExtraAttributes(LogConfigJson log, IReadOnlyDictionary<string, string>? labels, IEnumerable<string>? env)
    {
        ArgumentNullException.ThrowIfNull(log);
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (log.Config is not { Count: > 0 } config) return result;
        labels ??= new Dictionary<string, string>();
        if (config.GetValueOrDefault("labels") is { Length: > 0 } names)
            foreach (string name in names.Split(','))
                if (labels.TryGetValue(name, out string? v)) result[name] = v;
        if (config.GetValueOrDefault("labels-regex") is { Length: > 0 } labelsRegex)
        {
            var re = new Regex(labelsRegex, RegexOptions.CultureInvariant, RegexTimeout);
            foreach (var (k, v) in labels) if (re.IsMatch(k)) result[k] = v;
        }
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string e in env ?? [])
            if (e.IndexOf('=') is int eq and > 0) variables[e[..eq]] = e[(eq + 1)..];
        if (config.GetValueOrDefault("env") is { Length: > 0 } envNames)
            foreach (string name in envNames.Split(','))
                if (variables.TryGetValue(name, out string? v)) result[name] = v;
        if (config.GetValueOrDefault("env-regex") is { Length: > 0 } envRegex)
        {
            var re = new Regex(envRegex, RegexOptions.CultureInvariant, RegexTimeout);
            foreach (var (k, v) in variables) if (re.IsMatch(k)) result[k] = v;
        }
        return result;
    }

    private static readonly TimeSpan RegexTimeout = TimeSpan.FromSeconds(1);

    /// <summary>dockerd's log mode that puts a ring buffer between the container and its driver (see <see cref="Mode"/>).</summary>
    public const string NonBlockingMode = "non-blocking";

    /// <summary>dockerd's ring buffer size when max-buffer-size is not given (moby's defaultRingMaxSize, 1e6 bytes).</summary>
    public const long DefaultMaxBufferSize = 1_000_000;

    /// <summary>
    /// The log mode: null for blocking (dockerd's default: the container's writes wait for the driver), or the
    /// non-blocking mode's buffer in bytes (what does not fit is dropped, never waited for). berth-monitor applies it
    /// to the log servers it sends to (syslog, gelf and fluentd over stream sockets); the log file and dockerd's cache
    /// are written as the output comes in either mode, as dockerd writes its cache outside the ring buffer.
    /// </summary>
    public static long? Mode(LogConfigJson log)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (log.Config?.GetValueOrDefault("mode") != NonBlockingMode) return null;
        return log.Config.GetValueOrDefault("max-buffer-size") is { } s && ByteSize.TryParse(s, out long bytes) ? bytes : DefaultMaxBufferSize;
    }

    /// <summary>The first error in <paramref name="options"/> of <paramref name="driver"/> (json-file, local, syslog, gelf, fluentd or journald) in dockerd's
    /// wording, or null when they are good.</summary>
    public static string? Check(string driver, IReadOnlyDictionary<string, string> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        // dockerd's options of every driver (logger.ValidateLogOpts), taken out before the driver's own check.
        string mode = options.GetValueOrDefault("mode") ?? "";
        if (mode is not ("" or "blocking" or NonBlockingMode)) return $"logger: logging mode not supported: {mode}";
        if (options.TryGetValue("max-buffer-size", out string? bufferSize))
        {
            if (mode != NonBlockingMode) return "logger: max-buffer-size option is only supported with 'mode=non-blocking'";
            if (!ByteSize.TryParse(bufferSize, out _)) return $"error parsing option max-buffer-size: invalid size: '{bufferSize}'";
        }
        if (options.ContainsKey("mode") || options.ContainsKey("max-buffer-size"))
            options = options.Where(o => o.Key is not ("mode" or "max-buffer-size")).ToDictionary(o => o.Key, o => o.Value, StringComparer.Ordinal);
        if (driver == LocalDriver) return CheckLocal(options);
        if (driver == SyslogDriver.Name) return SyslogDriver.Check(options);
        if (driver == GelfDriver.Name) return GelfDriver.Check(options);
        if (driver == FluentdDriver.Name) return FluentdDriver.Check(options);
        if (driver == JournaldDriver.Name) return JournaldDriver.Check(options);
        // moby daemon/logger/jsonfilelog: ValidateLogOpt's keys (tag is accepted and, as there, unused), then New's checks.
        foreach (var (key, value) in options.OrderBy(o => o.Key, StringComparer.Ordinal))
        {
            if (key is not ("max-size" or "max-file" or "compress" or "labels" or "labels-regex" or "env" or "env-regex" or "tag"))
                return $"unknown log opt '{key}' for json-file log driver";
            if (key == "max-size" && ParseSize(value) is null) return $"invalid log opt max-size `{value}`: give a size such as 10m";
            if (key == "max-file" && ParseCount(value) is null) return $"invalid log opt max-file `{value}`: give a count of 1 or more";
            if (key == "max-file" && ParseCount(value) > MaxFilesLimit) return TooManyFiles(value);
            if (key == "compress" && ParseGoBool(value) is null)
                return $"invalid boolean value for compress: strconv.ParseBool: parsing \"{value}\": invalid syntax";
            if (key is "labels-regex" or "env-regex" && value.Length > 0 && RegexError(value) is { } error)
                return $"invalid log opt {key} `{value}`: {error}";
        }
        if (options.TryGetValue("compress", out string? z) && ParseGoBool(z) == true
            && (options.TryGetValue("max-file", out string? f) ? ParseCount(f) : DefaultMaxFiles) < 2)
            return "compress cannot be true when max-file is less than 2 or max-size is not set";
        return null;
    }

    internal static string? RegexError(string pattern)
    {
        try
        {
            _ = new Regex(pattern, RegexOptions.CultureInvariant, RegexTimeout);
            return null;
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
    }

    // moby daemon/logger/local: ValidateLogOpt, then newConfig and validateConfig.
    private static string? CheckLocal(IReadOnlyDictionary<string, string> options)
    {
        foreach (string key in options.Keys.Order(StringComparer.Ordinal))
            if (key is not ("max-size" or "max-file" or "compress")) return $"unknown log opt '{key}' for log driver {LocalDriver}";
        int files = LocalDefaultMaxFiles;
        bool compress = true;
        if (options.TryGetValue("max-size", out string? size))
        {
            if (ParseDecimalSize(size) is not long bytes) return $"invalid value for max-size: {size}: invalid size: '{size}'";
            // dockerd takes 0 and then rotates before every entry; berthd asks for a size that keeps something.
            if (bytes == 0) return "invalid value for max-size: 0: give a size above zero, such as 20m";
        }
        if (options.TryGetValue("max-file", out string? count))
        {
            if (ParseAtoi(count) is not int n) return $"invalid value for max-file: {count}: strconv.Atoi: parsing \"{count}\": invalid syntax";
            if (n < 0) return "max-file must not be negative";
            if (n > MaxFilesLimit) return TooManyFiles(count);
            files = n;
        }
        if (options.TryGetValue("compress", out string? text))
        {
            if (ParseGoBool(text) is not bool b) return $"invalid boolean value for compress: strconv.ParseBool: parsing \"{text}\": invalid syntax";
            compress = b;
        }
        if (compress && files <= 1) return "compression cannot be enabled when max file count is 1";
        return null;
    }

    private static string TooManyFiles(string value) => $"invalid log opt max-file `{value}`: berthd keeps at most {MaxFilesLimit} log files per container";

    private static int? ParseCount(string text)
        => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1 ? n : null;

    /// <summary>A size as dockerd's json-file driver takes max-size: go-units, and above zero.</summary>
    private static long? ParseSize(string text) => ByteSize.TryParse(text, out long bytes) && bytes > 0 ? bytes : null;

    private static long? ParseDecimalSize(string text) => ByteSize.TryParseDecimal(text, out long bytes) ? bytes : null;

    /// <summary>Go's strconv.Atoi: an optional sign, then decimal digits.</summary>
    private static int? ParseAtoi(string text)
        => int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) && !text.Contains(' ') ? n : null;

    /// <summary>Go's strconv.ParseBool.</summary>
    internal static bool? ParseGoBool(string text) => text switch
    {
        "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
        "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
        _ => null,
    };
}
