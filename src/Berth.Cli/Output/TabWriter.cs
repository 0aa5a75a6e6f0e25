using System.Text;

namespace Berth.Cli.Output;

/// <summary>
/// The column layout of Docker's tables: Go's <c>tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)</c>.
/// Cells end at tabs; each column is as wide as its widest cell plus 3 (at least 10); the text after
/// a line's last tab is not padded.
/// </summary>
internal static class TabWriter
{
    public static string Format(IEnumerable<string> lines, int minWidth = 10, int padding = 3)
    {
        var rows = lines.Select(l => l.Split('\t')).ToList();
        var widths = new List<int>();
        foreach (string[] row in rows)
        {
            for (int i = 0; i < row.Length - 1; i++)
            {
                if (widths.Count <= i) widths.Add(0);
                widths[i] = Math.Max(widths[i], Math.Max(minWidth, Width(row[i]) + padding));
            }
        }
        var sb = new StringBuilder();
        foreach (string[] row in rows)
        {
            for (int i = 0; i < row.Length; i++)
            {
                sb.Append(row[i]);
                if (i < row.Length - 1) sb.Append(' ', widths[i] - Width(row[i]));
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private static int Width(string s) => s.EnumerateRunes().Count();
}
