using System.Globalization;

namespace Berth.Oci;

/// <summary>
/// A size as Docker's tools read one (go-units <c>RAMInBytes</c>): a decimal number, at most one
/// space, then an optional k, m, g, t or p (1024-based, any case), an optional i and an optional b:
/// "512", "64m", "1.5GiB", "10 kb". Exactly the strings go-units' pattern
/// <c>^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$</c> matches whose number parses, read as
/// <c>int64(number * multiplier)</c>; scanned by hand so that berth-runtime links no Regex.
/// </summary>
public static class ByteSize
{
    /// <summary>
    /// The size <paramref name="text"/> names, or false when it is not one. Nothing around it is
    /// trimmed, a sign is never a size, and neither is a size of 2^63 bytes or more (Go's int64
    /// conversion of such a value is undefined; here it is refused). Callers keep their own special
    /// values ("-1" for unlimited swap) and their own lower bounds.
    /// </summary>
    public static bool TryParse(string? text, out long bytes) => TryParse(text, 1024, out bytes);

    /// <summary>
    /// As <see cref="TryParse(string?, out long)"/> with 1000-based units (go-units <c>FromHumanSize</c>:
    /// "20m" is 20,000,000 bytes), as dockerd reads the local log driver's max-size.
    /// </summary>
    public static bool TryParseDecimal(string? text, out long bytes) => TryParse(text, 1000, out bytes);

    private static bool TryParse(string? text, long unit, out long bytes)
    {
        bytes = 0;
        if (text is null) return false;
        int i = 0;
        if (!SkipDigits(text, ref i)) return false;
        int dots = 0;
        while (i + 1 < text.Length && text[i] == '.' && char.IsAsciiDigit(text[i + 1]))
        {
            i++;
            SkipDigits(text, ref i);
            dots++;
        }
        int numberEnd = i;
        if (i < text.Length && text[i] == ' ') i++;
        long multiplier = i < text.Length ? Multiplier(text[i], unit) : 1;
        if (multiplier > 1) i++;
        if (i < text.Length && text[i] is 'i' or 'I') i++;
        if (i < text.Length && text[i] is 'b' or 'B') i++;
        if (i != text.Length) return false;

        // The pattern takes "1.2.3"; Go's ParseFloat does not, nor a number beyond float64 (ErrRange).
        if (dots > 1) return false;
        if (!double.TryParse(text.AsSpan(0, numberEnd), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number)
            || double.IsInfinity(number))
            return false;
        double size = number * multiplier;
        if (size >= 9223372036854775808.0) return false;
        bytes = (long)size;
        return true;
    }

    private static bool SkipDigits(string text, ref int i)
    {
        int start = i;
        while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
        return i > start;
    }

    private static long Multiplier(char c, long unit) => c switch
    {
        'k' or 'K' => unit,
        'm' or 'M' => unit * unit,
        'g' or 'G' => unit * unit * unit,
        't' or 'T' => unit * unit * unit * unit,
        'p' or 'P' => unit * unit * unit * unit * unit,
        _ => 1,
    };
}
