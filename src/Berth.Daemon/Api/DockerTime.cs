using System.Globalization;

namespace Berth.Daemon.Api;

/// <summary>
/// The times Docker's query parameters and filters take (<c>since</c>, <c>until</c>): what Go's
/// timetypes.GetTimestamp accepts on the client plus what ParseTimestamps accepts on the server,
/// so a raw API client may send any of them: unix seconds with an optional fraction
/// (<c>1700000000.5</c>), a Go duration back from now (<c>10m</c>, <c>1h30m</c>, <c>-5s</c>),
/// RFC 3339 or its shorter forms (<c>2024-01-02</c>, <c>2024-01-02T15:04</c>; UTC without a zone).
/// </summary>
public static class DockerTime
{
    private static readonly string[] LocalFormats =
    [
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd'T'HH", "yyyy-MM-dd",
    ];

    /// <summary>Null for absent, empty or <c>0</c> (no bound).</summary>
    /// <exception cref="ApiException">400 naming <paramref name="name"/>.</exception>
    public static DateTimeOffset? Parse(string? value, DateTimeOffset now, string name)
    {
        if (string.IsNullOrEmpty(value) || value == "0") return null;
        if (TryParseGoDuration(value, out TimeSpan d)) return now - d;
        if (value.Contains('-', StringComparison.Ordinal) && !value.StartsWith('-'))
        {
            // A date: with a zone (Z, +hh:mm, -hh:mm after the time) or, as dockerd reads it in its own zone, UTC here.
            if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowWhiteSpaces, out DateTimeOffset t)
                && (value.Contains('T', StringComparison.Ordinal) || value.Length == 10 || value.Contains('Z', StringComparison.OrdinalIgnoreCase)))
                return t;
            if (DateTime.TryParseExact(value, LocalFormats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out DateTime local))
                return new DateTimeOffset(local, TimeSpan.Zero);
            throw ApiException.BadRequest($"invalid value for {name}: `{value}` is neither a timestamp, an RFC 3339 date nor a duration");
        }
        string[] parts = value.Split('.', 2);
        if (!long.TryParse(parts[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long seconds))
            throw ApiException.BadRequest($"invalid value for {name}: `{value}` is neither a timestamp, an RFC 3339 date nor a duration");
        long nanos = 0;
        if (parts.Length == 2 && parts[1].Length > 0)
        {
            if (parts[1].Length > 9 || !long.TryParse(parts[1].PadRight(9, '0'), NumberStyles.None, CultureInfo.InvariantCulture, out nanos))
                throw ApiException.BadRequest($"invalid value for {name}: `{value}`");
        }
        try
        {
            return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanos / 100);
        }
        catch (ArgumentOutOfRangeException)
        {
            throw ApiException.BadRequest($"invalid value for {name}: `{value}` is out of range");
        }
    }

    /// <summary>Go's time.ParseDuration: <c>[-+]</c> then one or more decimal numbers each with a unit (ns, us, µs, ms, s, m, h).</summary>
    public static bool TryParseGoDuration(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        int i = 0;
        bool negative = false;
        if (i < text.Length && text[i] is '-' or '+')
        {
            negative = text[i] == '-';
            i++;
        }
        if (i >= text.Length) return false;
        if (text[i..] == "0")
            return true;
        decimal totalNanos = 0;
        while (i < text.Length)
        {
            int start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.')) i++;
            if (i == start || !decimal.TryParse(text[start..i], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal number)) return false;
            int unitStart = i;
            while (i < text.Length && !char.IsAsciiDigit(text[i]) && text[i] != '.') i++;
            decimal unit = text[unitStart..i] switch
            {
                "ns" => 1m,
                "us" or "µs" or "μs" => 1_000m,
                "ms" => 1_000_000m,
                "s" => 1_000_000_000m,
                "m" => 60m * 1_000_000_000m,
                "h" => 3600m * 1_000_000_000m,
                _ => -1m,
            };
            if (unit < 0) return false;
            totalNanos += number * unit;
        }
        if (totalNanos / 100 > TimeSpan.MaxValue.Ticks) return false;
        duration = TimeSpan.FromTicks((long)(totalNanos / 100));
        if (negative) duration = -duration;
        return true;
    }
}
