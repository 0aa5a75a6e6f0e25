using System.Globalization;

namespace Berth.Cli.Output;

/// <summary>Docker's number and time formats (github.com/docker/go-units).</summary>
internal static class Units
{
    private static readonly string[] DecimalUnits = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

    /// <summary><c>units.HumanSizeWithPrecision(size, 3)</c>: 4261023 → "4.26MB", 0 → "0B".</summary>
    public static string HumanSize(double size)
    {
        int i = 0;
        while (size >= 1000 && i < DecimalUnits.Length - 1)
        {
            size /= 1000;
            i++;
        }
        return size.ToString("G3", CultureInfo.InvariantCulture) + DecimalUnits[i];
    }

    private static readonly string[] BinaryUnits = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

    /// <summary><c>units.BytesSize</c>: binary multiples, 4 significant digits ("1.5MiB", "7.66GiB").</summary>
    public static string BytesSize(double size)
    {
        int i = 0;
        while (size >= 1024 && i < BinaryUnits.Length - 1)
        {
            size /= 1024;
            i++;
        }
        return size.ToString("G4", CultureInfo.InvariantCulture) + BinaryUnits[i];
    }

    /// <summary><c>units.HumanDuration</c>: "Less than a second", "About a minute", "3 hours", "2 weeks" ….</summary>
    public static string HumanDuration(TimeSpan d)
    {
        double seconds = d.TotalSeconds;
        if (seconds < 1) return "Less than a second";
        if ((int)seconds == 1) return "1 second";
        if (seconds < 60) return $"{(int)seconds} seconds";
        int minutes = (int)d.TotalMinutes;
        if (minutes == 1) return "About a minute";
        if (minutes < 60) return $"{minutes} minutes";
        int hours = (int)Math.Round(d.TotalHours, MidpointRounding.AwayFromZero);
        if (hours == 1) return "About an hour";
        if (hours < 48) return $"{hours} hours";
        if (hours < 24 * 7 * 2) return $"{hours / 24} days";
        if (hours < 24 * 30 * 2) return $"{hours / 24 / 7} weeks";
        if (hours < 24 * 365 * 2) return $"{hours / 24 / 30} months";
        return $"{hours / 24 / 365} years";
    }

    public static string Since(DateTimeOffset? created, DateTimeOffset now)
        => created is { } c ? HumanDuration(now - c) + " ago" : "N/A";

    /// <summary>Go's <c>time.Time.String()</c> in UTC: "2024-05-01 12:00:00 +0000 UTC".</summary>
    public static string GoTime(DateTimeOffset? t)
        => t is { } v ? v.UtcDateTime.ToString("yyyy'-'MM'-'dd HH':'mm':'ss '+0000 UTC'", CultureInfo.InvariantCulture) : "";

    /// <summary>RFC 3339 with nanoseconds, as Docker's JSON writes times.</summary>
    public static string Rfc3339(DateTimeOffset? t)
        => t is { } v ? v.UtcDateTime.ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss.FFFFFFF'Z'", CultureInfo.InvariantCulture).Replace(".Z", "Z") : "0001-01-01T00:00:00Z";

    /// <summary>docker's <c>stringid.TruncateID</c>: drop the algorithm, keep 12 hex digits.</summary>
    public static string ShortId(string id)
    {
        int colon = id.IndexOf(':');
        string hex = colon >= 0 ? id[(colon + 1)..] : id;
        return hex.Length > 12 ? hex[..12] : hex;
    }

    /// <summary>docker's <c>stringutils.Ellipsis</c>.</summary>
    public static string Ellipsis(string s, int max)
    {
        if (s.Length <= max) return s;
        return max <= 1 ? s[..max] : s[..(max - 1)] + "…";
    }
}
