using System.Globalization;

namespace Berth.Cgroups;

/// <summary>Parsers for the stat file formats shared by several controllers.</summary>
internal static class StatsParsing
{
    /// <summary>Space-separated numbers on one line (cpuacct.usage_percpu).</summary>
    public static List<ulong> ParseNumberList(string text) =>
        text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Select(s => ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0).ToList();

    /// <summary>v1 blkio "MAJ:MIN Op value" lines; the closing "Total value" line is skipped.</summary>
    public static List<BlkioEntry> ParseBlkio(string text)
    {
        var entries = new List<BlkioEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length != 3 || !TryParseDevice(f[0], out var major, out var minor) || !ulong.TryParse(f[2], out var value))
            {
                continue;
            }
            entries.Add(new BlkioEntry(major, minor, f[1], value));
        }
        return entries;
    }

    /// <summary>v2 io.stat "MAJ:MIN rbytes=… wbytes=… rios=… wios=…" as v1-shaped entries (runc fs2 <c>statIo</c>).</summary>
    public static (List<BlkioEntry> Bytes, List<BlkioEntry> Ios) ParseIoStat(string text)
    {
        var bytes = new List<BlkioEntry>();
        var ios = new List<BlkioEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 2 || !TryParseDevice(f[0], out var major, out var minor))
            {
                continue;
            }
            foreach (var kv in f.Skip(1))
            {
                var eq = kv.IndexOf('=', StringComparison.Ordinal);
                if (eq < 0 || !ulong.TryParse(kv[(eq + 1)..], out var value))
                {
                    continue;
                }
                switch (kv[..eq])
                {
                    case "rbytes": bytes.Add(new(major, minor, "Read", value)); break;
                    case "wbytes": bytes.Add(new(major, minor, "Write", value)); break;
                    case "dbytes": bytes.Add(new(major, minor, "Discard", value)); break;
                    case "rios": ios.Add(new(major, minor, "Read", value)); break;
                    case "wios": ios.Add(new(major, minor, "Write", value)); break;
                    case "dios": ios.Add(new(major, minor, "Discard", value)); break;
                }
            }
        }
        return (bytes, ios);
    }

    private static bool TryParseDevice(string text, out ulong major, out ulong minor)
    {
        minor = 0;
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        return ulong.TryParse(colon < 0 ? "x" : text[..colon], out major) && ulong.TryParse(text[(colon + 1)..], out minor);
    }

    /// <summary>The page sizes for which <paramref name="dir"/> has "hugetlb.&lt;size&gt;.&lt;suffix&gt;" ("2MB", "1GB").</summary>
    public static IEnumerable<string> HugePageSizes(string dir, string suffix)
    {
        if (!Directory.Exists(dir))
        {
            return [];
        }
        return Directory.EnumerateFiles(dir, "hugetlb.*." + suffix)
            .Select(Path.GetFileName)
            .Select(n => n!["hugetlb.".Length..^(suffix.Length + 1)])
            .Where(size => !size.Contains('.'))
            .Order(StringComparer.Ordinal);
    }
}
