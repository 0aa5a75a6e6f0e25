using System.Text.Json.Nodes;

namespace Berth.Cli.Output;

/// <summary>
/// What docker's list commands (ps, images, network ls, volume ls) print: with -q one key per row
/// (each once), else the rows through --format: none or "table" for the command's own table,
/// "json" for <c>{{json .}}</c>, anything else a template.
/// </summary>
internal static class ListOutput
{
    public static int Write(IReadOnlyList<JsonObject> rows, bool quiet, string quietKey, string? format, string defaultTable,
        IReadOnlyDictionary<string, string> titles)
    {
        if (quiet)
        {
            foreach (string key in rows.Select(r => (string)r[quietKey]!).Distinct()) Console.Out.WriteLine(key);
            return 0;
        }
        string template = format switch
        {
            null or "" or "table" => defaultTable,
            "json" => "{{json .}}",
            var t => t,
        };
        Console.Out.Write(GoTemplate.Parse(template).RenderAll(rows, titles));
        return 0;
    }
}
