using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

internal static partial class ContainerCommands
{
    private static readonly Dictionary<string, string> PsTitles = new(StringComparer.Ordinal)
    {
        ["ID"] = "CONTAINER ID", ["Image"] = "IMAGE", ["Command"] = "COMMAND", ["CreatedAt"] = "CREATED AT", ["RunningFor"] = "CREATED",
        ["Ports"] = "PORTS", ["Status"] = "STATUS", ["Size"] = "SIZE", ["Names"] = "NAMES", ["Labels"] = "LABELS", ["Mounts"] = "MOUNTS",
        ["Networks"] = "NETWORKS", ["State"] = "STATE", ["LocalVolumes"] = "LOCAL VOLUMES",
    };

    /// <summary><c>docker ps [-a] [-q] [-n N] [-l] [-s] [--no-trunc] [-f F] [--format F]</c>: <c>GET /containers/json</c>.</summary>
    private static Command Ps(string name, params string[] aliases)
    {
        var all = new Option<bool>("--all", "-a") { Description = "show all containers (default shows just running)" };
        var quiet = ImageCommands.QuietOption("only display container IDs");
        var last = new Option<int>("--last", "-n") { Description = "show n last created containers (includes all states)", DefaultValueFactory = _ => -1 };
        var latest = new Option<bool>("--latest", "-l") { Description = "show the latest created container (includes all states)" };
        var size = new Option<bool>("--size", "-s") { Description = "display total file sizes" };
        var filters = new Option<string[]>("--filter", "-f") { Description = "filter output based on conditions provided" };
        var noTrunc = ImageCommands.NoTruncOption();
        var format = ImageCommands.FormatOption("{{.ID}}, {{.Image}}, {{.Command}}, {{.RunningFor}}, {{.Status}}, {{.Ports}}, {{.Names}}, {{json .}}");
        var command = new Command(name, "List containers") { all, quiet, last, latest, size, filters, noTrunc, format };
        foreach (string a in aliases) command.Aliases.Add(a);
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            int limit = parse.GetValue(latest) ? 1 : parse.GetValue(last);
            string? template = parse.GetValue(format);
            bool withSize = parse.GetValue(size) || (template?.Contains(".Size", StringComparison.Ordinal) ?? false);
            var query = new Query().Add("all", parse.GetValue(all)).Add("limit", limit > 0 ? limit.ToString(CultureInfo.InvariantCulture) : null)
                .Add("size", withSize).Add("filters", Filters.Json(parse.GetValue(filters) ?? []));
            JsonArray list = await client.GetJsonAsync("/containers/json", query, ct).ConfigureAwait(false) as JsonArray ?? [];
            bool trunc = !parse.GetValue(noTrunc);
            var rows = list.OfType<JsonObject>().Select(c => PsRow(c, trunc)).ToList();
            return ListOutput.Write(rows, parse.GetValue(quiet), "ID", template,
                "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}" + (withSize ? "\t{{.Size}}" : ""), PsTitles);
        });
        return command;
    }

    /// <summary>One row as docker's ContainerContext renders it (the fields <c>{{json .}}</c> shows).</summary>
    private static JsonObject PsRow(JsonObject c, bool trunc)
    {
        string id = c["Id"]?.GetValue<string>() ?? "";
        string image = c["Image"]?.GetValue<string>() ?? "";
        if (trunc && image.StartsWith("sha256:", StringComparison.Ordinal)) image = Units.ShortId(image);
        string cmd = c["Command"]?.GetValue<string>() ?? "";
        if (trunc) cmd = Units.Ellipsis(cmd, 20);
        var names = ImageCommands.Strings(c["Names"]).Select(n => n.TrimStart('/')).Where(n => !trunc || !n.Contains('/')).ToList();
        if (trunc && names.Count > 1) names = names.Take(1).ToList();
        var created = DateTimeOffset.FromUnixTimeSeconds(c["Created"]?.GetValue<long>() ?? 0);
        var labels = c["Labels"] as JsonObject ?? [];
        var networks = (c["NetworkSettings"]?["Networks"] as JsonObject ?? []).Select(kv => kv.Key).Order(StringComparer.Ordinal);
        var mounts = (c["Mounts"] as JsonArray ?? []).Select(m => m?["Name"]?.GetValue<string>() is { Length: > 0 } n ? n : m?["Source"]?.GetValue<string>() ?? "");
        long sizeRw = c["SizeRw"]?.GetValue<long>() ?? 0, sizeRoot = c["SizeRootFs"]?.GetValue<long>() ?? 0;
        string sizeText = c["SizeRootFs"] is null && c["SizeRw"] is null ? "0B" : $"{Units.HumanSize(sizeRw)} (virtual {Units.HumanSize(sizeRoot)})";
        var row = new JsonObject
        {
            ["Command"] = Quote(cmd),
            ["CreatedAt"] = Units.GoTime(created),
            ["ID"] = trunc ? Units.ShortId(id) : id,
            ["Image"] = image,
            ["Labels"] = "", // below: the text, and {{.Label "k"}}
            ["LocalVolumes"] = (c["Mounts"] as JsonArray ?? []).Count(m => m?["Driver"]?.GetValue<string>() == "local").ToString(CultureInfo.InvariantCulture),
            ["Mounts"] = string.Join(',', mounts),
            ["Names"] = string.Join(',', names),
            ["Networks"] = string.Join(',', networks),
            ["Ports"] = FormatPorts(c["Ports"] as JsonArray ?? []),
            ["RunningFor"] = Units.Since(created, DateTimeOffset.UtcNow),
            ["Size"] = sizeText,
            ["State"] = c["State"]?.GetValue<string>() ?? "",
            ["Status"] = c["Status"]?.GetValue<string>() ?? "",
        };
        row["Labels"] = GoTemplate.Labels(row, labels);
        return row;
    }

    /// <summary>Go's <c>strconv.Quote</c> for the printable text a command line is.</summary>
    private static string Quote(string s)
    {
        var sb = new System.Text.StringBuilder("\"");
        foreach (char ch in s)
            sb.Append(ch switch
            {
                '"' => "\\\"", '\\' => "\\\\", '\n' => "\\n", '\t' => "\\t", '\r' => "\\r",
                < ' ' => $"\\x{(int)ch:x2}",
                _ => ch.ToString(),
            });
        return sb.Append('"').ToString();
    }

    /// <summary>docker's DisplayablePorts: <c>0.0.0.0:8080-&gt;80/tcp, 443/tcp</c> (ranges not merged).</summary>
    private static string FormatPorts(JsonArray ports)
    {
        var items = new List<string>();
        foreach (JsonObject p in ports.OfType<JsonObject>())
        {
            string proto = p["Type"]?.GetValue<string>() ?? "tcp";
            long priv = p["PrivatePort"]?.GetValue<long>() ?? 0;
            if (p["PublicPort"]?.GetValue<long>() is { } pub && pub != 0)
            {
                string ip = p["IP"]?.GetValue<string>() ?? "";
                string host = ip.Contains(':') ? $"[{ip}]" : ip;
                items.Add($"{host}:{pub}->{priv}/{proto}");
            }
            else items.Add($"{priv}/{proto}");
        }
        return string.Join(", ", items.Distinct());
    }
}
