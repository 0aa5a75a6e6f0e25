using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    private static readonly Dictionary<string, string> HistoryTitles = new(StringComparer.Ordinal)
    {
        ["ID"] = "IMAGE", ["CreatedSince"] = "CREATED", ["CreatedAt"] = "CREATED AT", ["CreatedBy"] = "CREATED BY",
        ["Size"] = "SIZE", ["Comment"] = "COMMENT",
    };

    private static readonly Dictionary<string, string> SearchTitles = new(StringComparer.Ordinal)
    {
        ["Name"] = "NAME", ["Description"] = "DESCRIPTION", ["StarCount"] = "STARS", ["IsOfficial"] = "OFFICIAL",
    };

    /// <summary>
    /// <c>docker search [-f FILTER]… [--limit N] [--no-trunc] [--format F] TERM</c>: <c>GET /images/search</c>
    /// (the registry's v1 search API: Docker Hub's index, or REGISTRY/TERM's registry).
    /// </summary>
    private static Command Search()
    {
        var term = new Argument<string>("TERM");
        var filters = new Option<string[]>("--filter", "-f") { Description = "filter output based on conditions provided (is-official=true, stars=3)" };
        var limit = new Option<int?>("--limit") { Description = "max number of search results" };
        var noTrunc = NoTruncOption();
        var format = FormatOption("{{.Name}}, {{.Description}}, {{.StarCount}}, {{.IsOfficial}}, {{json .}}");
        var command = new Command("search", "Search Docker Hub (or a registry's index) for images") { term, filters, limit, noTrunc, format };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            var query = new Query().Add("term", parse.GetValue(term)).Add("filters", Filters.Json(parse.GetValue(filters) ?? []));
            if (parse.GetValue(limit) is int n) query.Add("limit", n.ToString(CultureInfo.InvariantCulture));
            JsonArray results = await client.GetJsonAsync("/images/search", query, ct).ConfigureAwait(false) as JsonArray ?? [];
            bool trunc = !parse.GetValue(noTrunc);
            string template = parse.GetValue(format) switch
            {
                null or "" or "table" => "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
                "json" => "{{json .}}",
                var t => t,
            };
            // As docker 28's formatter: {{.IsOfficial}} is "[OK]" or nothing, while {{json .}} shows "true"/"false".
            bool asJson = template.Contains("{{json .}}", StringComparison.Ordinal);
            var rows = new List<JsonObject>();
            foreach (JsonObject r in results.OfType<JsonObject>())
            {
                string description = (r["description"]?.GetValue<string>() ?? "").Replace('\n', ' ');
                bool official = r["is_official"]?.GetValue<bool>() == true;
                rows.Add(new JsonObject
                {
                    ["Description"] = trunc ? Units.Ellipsis(description, 45) : description,
                    ["IsOfficial"] = asJson ? (official ? "true" : "false") : official ? "[OK]" : "",
                    ["Name"] = r["name"]?.GetValue<string>() ?? "",
                    ["StarCount"] = (r["star_count"]?.GetValue<int>() ?? 0).ToString(CultureInfo.InvariantCulture),
                });
            }
            Console.Out.Write(GoTemplate.Parse(template).RenderAll(rows, SearchTitles));
            return 0;
        });
        return command;
    }

    /// <summary><c>docker image inspect [--format F] IMAGE…</c>: the daemon's ImageInspect JSON.</summary>
    private static Command Inspect()
    {
        var images = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var format = new Option<string?>("--format", "-f") { Description = "format the output using a Go template" };
        var command = new Command("inspect", "Display detailed information on one or more images") { images, format };
        Runner.SetClientAction(command, (parse, client, ct)
            => InspectCommand.InspectAsync(client, parse.GetValue(images)!, "image", parse.GetValue(format), false, ct));
        return command;
    }

    /// <summary><c>docker history [-H] [-q] [--no-trunc] [--format F] IMAGE</c>: <c>GET /images/{name}/history</c>.</summary>
    private static Command History(string name)
    {
        var image = new Argument<string>("IMAGE");
        var human = new Option<bool>("--human", "-H") { Description = "print sizes and dates in human readable format", DefaultValueFactory = _ => true };
        var quiet = QuietOption("only show image IDs");
        var noTrunc = NoTruncOption();
        var format = FormatOption("{{.ID}}, {{.CreatedSince}}, {{.CreatedAt}}, {{.CreatedBy}}, {{.Size}}, {{.Comment}}, {{json .}}");
        var command = new Command(name, "Show the history of an image") { image, human, quiet, noTrunc, format };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            bool trunc = !parse.GetValue(noTrunc), h = parse.GetValue(human);
            DateTimeOffset now = DateTimeOffset.UtcNow;
            var rows = new List<JsonObject>();
            JsonArray items = await client.GetJsonAsync($"/images/{parse.GetValue(image)}/history", ct: ct).ConfigureAwait(false) as JsonArray ?? [];
            foreach (JsonObject item in items.OfType<JsonObject>())
            {
                string createdBy = (item["CreatedBy"]?.GetValue<string>() ?? "").Replace('\t', ' ');
                string id = item["Id"]?.GetValue<string>() ?? "<missing>";
                var created = DateTimeOffset.FromUnixTimeSeconds(item["Created"]?.GetValue<long>() ?? 0);
                long size = item["Size"]?.GetValue<long>() ?? 0;
                rows.Add(new JsonObject
                {
                    ["Comment"] = item["Comment"]?.GetValue<string>() ?? "",
                    ["CreatedAt"] = Units.Rfc3339(created),
                    ["CreatedBy"] = trunc ? Units.Ellipsis(createdBy, 45) : createdBy,
                    ["CreatedSince"] = h ? Units.Since(created, now) : Units.Rfc3339(created),
                    ["ID"] = id == "<missing>" || !trunc ? id : Units.ShortId(id),
                    ["Size"] = h ? Units.HumanSize(size) : size.ToString(CultureInfo.InvariantCulture),
                });
            }
            if (parse.GetValue(quiet))
            {
                foreach (JsonObject r in rows) Console.Out.WriteLine((string)r["ID"]!);
                return 0;
            }
            string template = parse.GetValue(format) switch
            {
                null or "" or "table" => "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
                "json" => "{{json .}}",
                var t => t,
            };
            Console.Out.Write(GoTemplate.Parse(template).RenderAll(rows, HistoryTitles));
            return 0;
        });
        return command;
    }
}
