using System.Globalization;
using Berth.Oci;

namespace Berth.Daemon.Containers;

/// <summary>How a container's log file is kept: rotated at <see cref="MaxSize"/> bytes into at most
/// <see cref="MaxFiles"/> files, the rotated ones gzip-compressed when <see cref="Compress"/>.</summary>
public sealed record LogSettings(long MaxSize, int MaxFiles, bool Compress);

/// <summary>
/// The options of the file-backed logging drivers, checked and read as dockerd does:
/// <list type="bullet">
/// <item>json-file: <c>max-size</c> (a <see cref="ByteSize"/>, 1024-based) and <c>max-file</c>. Unlike dockerd, whose
/// json-file logs grow without bound unless told, a container's log is capped at 3 files of 10 MiB by default.</item>
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

    /// <summary>The settings a container's log config asks for (defaults for what it leaves out); values were checked at create.</summary>
    public static LogSettings Of(LogConfigJson log)
    {
        ArgumentNullException.ThrowIfNull(log);
        string? Get(string key) => log.Config?.GetValueOrDefault(key) is { Length: > 0 } v ? v : null;
        if (log.Type == LocalDriver)
        {
            long size = Get("max-size") is { } s && ParseDecimalSize(s) is long n and > 0 ? n : LocalDefaultMaxSize;
            // max-file 0 keeps one file, as in dockerd (its rotation then only truncates).
            int files = Get("max-file") is { } f && ParseAtoi(f) is int c and >= 0 ? Math.Clamp(c, 1, 1000) : LocalDefaultMaxFiles;
            bool compress = Get("compress") is not { } z || ParseGoBool(z) != false;
            return new LogSettings(size, files, compress && files > 1);
        }
        long jsonSize = Get("max-size") is { } js ? ParseSize(js) ?? DefaultMaxSize : DefaultMaxSize;
        int jsonFiles = Get("max-file") is { } jf && ParseCount(jf) is int jn ? jn : DefaultMaxFiles;
        return new LogSettings(jsonSize, jsonFiles, false);
    }

    /// <summary>The first error in <paramref name="options"/> of <paramref name="driver"/> (json-file or local) in dockerd's
    /// wording, or null when they are good.</summary>
    public static string? Check(string driver, IReadOnlyDictionary<string, string> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (driver == LocalDriver) return CheckLocal(options);
        foreach (var (key, value) in options.OrderBy(o => o.Key, StringComparer.Ordinal))
        {
            if (key is not ("max-size" or "max-file")) return $"unknown log opt '{key}' for json-file log driver";
            if (key == "max-size" && ParseSize(value) is null) return $"invalid log opt max-size `{value}`: give a size such as 10m";
            if (key == "max-file" && ParseCount(value) is null) return $"invalid log opt max-file `{value}`: give a count of 1 or more";
        }
        return null;
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

    private static int? ParseCount(string text)
        => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1 ? n : null;

    /// <summary>A size as dockerd's json-file driver takes max-size: go-units, and above zero.</summary>
    private static long? ParseSize(string text) => ByteSize.TryParse(text, out long bytes) && bytes > 0 ? bytes : null;

    private static long? ParseDecimalSize(string text) => ByteSize.TryParseDecimal(text, out long bytes) ? bytes : null;

    /// <summary>Go's strconv.Atoi: an optional sign, then decimal digits.</summary>
    private static int? ParseAtoi(string text)
        => int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) && !text.Contains(' ') ? n : null;

    /// <summary>Go's strconv.ParseBool.</summary>
    private static bool? ParseGoBool(string text) => text switch
    {
        "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
        "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
        _ => null,
    };
}
