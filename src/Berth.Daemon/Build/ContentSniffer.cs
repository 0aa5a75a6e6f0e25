using System.Text;

namespace Berth.Daemon.Build;

/// <summary>The part of Go's http.DetectContentType a build context can meet: HTML/XML, gzip, zip, text, else binary.</summary>
internal static class ContentSniffer
{
    public static string Detect(ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<byte> trimmed = data;
        while (trimmed.Length > 0 && trimmed[0] is (byte)'\t' or (byte)'\n' or 0x0c or (byte)'\r' or (byte)' ') trimmed = trimmed[1..];
        foreach (string tag in (string[])["<!DOCTYPE HTML", "<HTML", "<HEAD", "<SCRIPT", "<IFRAME", "<H1", "<DIV", "<FONT", "<TABLE", "<A", "<STYLE", "<TITLE", "<B", "<BODY", "<BR", "<P", "<!--"])
        {
            if (trimmed.Length > tag.Length && Encoding.ASCII.GetString(trimmed[..tag.Length]).Equals(tag, StringComparison.OrdinalIgnoreCase)
                && trimmed[tag.Length] is (byte)' ' or (byte)'>')
                return "text/html; charset=utf-8";
        }
        if (trimmed.StartsWith("<?xml"u8)) return "text/xml; charset=utf-8";
        if (data.StartsWith("%PDF-"u8)) return "application/pdf";
        if (data.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x8b, 0x08])) return "application/x-gzip";
        if (data.StartsWith("PK\u0003\u0004"u8)) return "application/zip";
        if (data.StartsWith((ReadOnlySpan<byte>)[0xef, 0xbb, 0xbf])) return "text/plain; charset=utf-8";
        foreach (byte b in data)
            if (b <= 0x08 || b == 0x0b || b is >= 0x0e and <= 0x1a || b is >= 0x1c and <= 0x1f)
                return "application/octet-stream";
        return "text/plain; charset=utf-8";
    }
}
