using System.Globalization;

namespace Berth.Builder.Dockerfile;

/// <summary>Go's <c>time.ParseDuration</c> syntax (<c>30s</c>, <c>1m30s</c>, <c>1.5h</c>, <c>-2ms</c>, <c>0</c>), as Docker reads HEALTHCHECK durations.</summary>
public static class GoDuration
{
    private static readonly (string Unit, decimal Nanoseconds)[] Units =
    [
        ("ns", 1m),
        ("us", 1_000m),
        ("\u00b5s", 1_000m),
        ("\u03bcs", 1_000m),
        ("ms", 1_000_000m),
        ("s", 1_000_000_000m),
        ("m", 60_000_000_000m),
        ("h", 3_600_000_000_000m),
    ];

    /// <summary>Parses <paramref name="text"/> to nanoseconds; throws <see cref="FormatException"/> with Go's message on bad input.</summary>
    public static decimal ParseNanoseconds(string text)
    {
        var s = text;
        var negative = false;
        if (s.Length > 0 && s[0] is '-' or '+')
        {
            negative = s[0] == '-';
            s = s[1..];
        }
        if (s == "0")
        {
            return 0;
        }
        if (s.Length == 0)
        {
            throw Invalid(text);
        }
        decimal totalNs = 0;
        var i = 0;
        while (i < s.Length)
        {
            var numberStart = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }
            var number = s[numberStart..i];
            if (number.Length == 0 || number == "." || number.Count(c => c == '.') > 1)
            {
                throw Invalid(text);
            }
            var unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.')
            {
                i++;
            }
            var unit = s[unitStart..i];
            if (unit.Length == 0)
            {
                throw new FormatException($"time: missing unit in duration \"{text}\"");
            }
            var scale = Array.Find(Units, u => u.Unit == unit).Nanoseconds;
            if (scale == 0)
            {
                throw new FormatException($"time: unknown unit \"{unit}\" in duration \"{text}\"");
            }
            if (!decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
            {
                throw Invalid(text);
            }
            totalNs += value * scale;
            if (totalNs > long.MaxValue)
            {
                throw Invalid(text);
            }
        }
        return negative ? -totalNs : totalNs;
    }

    /// <summary>TimeSpan ticks are 100ns; finer precision is dropped.</summary>
    public static TimeSpan ToTimeSpan(decimal nanoseconds) => TimeSpan.FromTicks((long)(nanoseconds / 100m));

    private static FormatException Invalid(string text) => new($"time: invalid duration \"{text}\"");
}
