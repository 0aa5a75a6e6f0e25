using System.Globalization;
using Berth.Oci;

namespace Berth.Daemon.Containers;

/// <summary>
/// The json-file driver's rotation options: <c>max-size</c> (a <see cref="ByteSize"/>: bytes, or with k, m, g…) and
/// <c>max-file</c>. Unlike dockerd, whose logs grow without bound unless told, a container's log is
/// capped at 3 files of 10 MiB by default.
/// </summary>
public static class LogLimits
{
    public const long DefaultMaxSize = 10 * 1024 * 1024;
    public const int DefaultMaxFiles = 3;

    /// <summary>The limits a container's log config asks for (defaults for what it leaves out); values were checked at create.</summary>
    public static (long MaxSize, int MaxFiles) Of(LogConfigJson log)
    {
        ArgumentNullException.ThrowIfNull(log);
        long size = log.Config?.GetValueOrDefault("max-size") is { Length: > 0 } s ? ParseSize(s) ?? DefaultMaxSize : DefaultMaxSize;
        int files = log.Config?.GetValueOrDefault("max-file") is { Length: > 0 } f && ParseCount(f) is int n ? n : DefaultMaxFiles;
        return (size, files);
    }

    /// <summary>An error naming a bad value of <paramref name="key"/>, or null when it is good (or not a rotation option).</summary>
    public static string? Check(string key, string value) => key switch
    {
        "max-size" when ParseSize(value) is null => $"invalid log opt max-size `{value}`: give a size such as 10m",
        "max-file" when ParseCount(value) is null => $"invalid log opt max-file `{value}`: give a count of 1 or more",
        _ => null,
    };

    private static int? ParseCount(string text)
        => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1 ? n : null;

    /// <summary>A size as dockerd's json-file driver takes max-size: go-units, and above zero.</summary>
    private static long? ParseSize(string text) => ByteSize.TryParse(text, out long bytes) && bytes > 0 ? bytes : null;
}
