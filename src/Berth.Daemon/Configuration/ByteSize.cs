using System.Globalization;

namespace Berth.Daemon.Configuration;

/// <summary>A size as dockerd's options take it (Go's units.RAMInBytes): bytes, or a number with b, k, m or g (1024-based).</summary>
public static class ByteSize
{
    public static long? Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = text.Trim().ToLowerInvariant();
        long unit = 1;
        if (text.EndsWith('b')) text = text[..^1];
        if (text.EndsWith('k')) { unit = 1024; text = text[..^1]; }
        else if (text.EndsWith('m')) { unit = 1024 * 1024; text = text[..^1]; }
        else if (text.EndsWith('g')) { unit = 1024L * 1024 * 1024; text = text[..^1]; }
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long n) && n > 0 ? n * unit : null;
    }
}
