using System.CommandLine;
using System.Net;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

/// <summary><c>berth volume create|ls|inspect|rm|prune</c>: clients of the /volumes endpoints, printed as docker prints them.</summary>
internal static class VolumeCommands
{
    private static readonly Dictionary<string, string> Titles = new(StringComparer.Ordinal)
    {
        ["Driver"] = "DRIVER", ["Name"] = "VOLUME NAME", ["Mountpoint"] = "MOUNTPOINT", ["Scope"] = "SCOPE", ["Labels"] = "LABELS",
        ["CreatedAt"] = "CREATED AT", ["Size"] = "SIZE", ["Links"] = "LINKS",
    };

    public static Command VolumeGroup() => new("volume", "Manage volumes")
    {
        Create(), Ls(), Inspect(), Rm(), Prune(),
    };

    /// <summary><c>docker volume create [-d DRIVER] [-o K=V] [--label K=V] [--name] [VOLUME]</c>: <c>POST /volumes/create</c>, prints the name.</summary>
    private static Command Create()
    {
        var nameArg = new Argument<string?>("VOLUME") { Arity = ArgumentArity.ZeroOrOne };
        var name = new Option<string?>("--name") { Description = "specify volume name" };
        var driver = new Option<string?>("--driver", "-d") { Description = "specify volume driver name", DefaultValueFactory = _ => "local" };
        var opts = new Option<string[]>("--opt", "-o") { Description = "set driver specific options" };
        var labels = new Option<string[]>("--label") { Description = "set metadata for a volume" };
        var command = new Command("create", "Create a volume") { nameArg, name, driver, opts, labels };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string? positional = parse.GetValue(nameArg), flag = parse.GetValue(name);
            if (positional is not null && flag is not null && positional != flag)
                throw new UsageException($"conflicting options: either specify --name or provide positional arg, not both");
            var body = new JsonObject
            {
                ["Name"] = positional ?? flag ?? "",
                ["Driver"] = parse.GetValue(driver) ?? "local",
                ["DriverOpts"] = Pairs(parse.GetValue(opts), "--opt"),
                ["Labels"] = Pairs(parse.GetValue(labels), "--label"),
            };
            JsonNode? created = await client.PostJsonAsync("/volumes/create", body: body, ct: ct).ConfigureAwait(false);
            Console.Out.WriteLine(created?["Name"]?.GetValue<string>() ?? "");
            return 0;
        });
        return command;
    }

    /// <summary><c>K=V</c> flags as a JSON object (a bare <c>K</c> is <c>K=""</c>, as docker's label flags take it).</summary>
    internal static JsonObject Pairs(string[]? values, string flag)
    {
        var result = new JsonObject();
        foreach (string v in values ?? [])
        {
            int eq = v.IndexOf('=');
            if (eq == 0) throw new UsageException($"invalid argument \"{v}\" for \"{flag}\" flag: invalid key-value pair");
            result[eq < 0 ? v : v[..eq]] = eq < 0 ? "" : v[(eq + 1)..];
        }
        return result;
    }

    /// <summary><c>docker volume ls [-q] [-f F] [--format F]</c>: <c>GET /volumes</c>, sorted by name.</summary>
    private static Command Ls()
    {
        var quiet = ImageCommands.QuietOption("only display volume names");
        var filters = new Option<string[]>("--filter", "-f") { Description = "provide filter values (e.g. 'dangling=true')" };
        var format = ImageCommands.FormatOption("{{.Driver}}, {{.Name}}, {{.Mountpoint}}, {{.Labels}}, {{json .}}");
        var command = new Command("ls", "List volumes") { quiet, filters, format };
        command.Aliases.Add("list");
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            var query = new Query().Add("filters", Filters.Json(parse.GetValue(filters) ?? []));
            JsonNode? response = await client.GetJsonAsync("/volumes", query, ct).ConfigureAwait(false);
            var rows = (response?["Volumes"] as JsonArray ?? []).OfType<JsonObject>()
                .OrderBy(v => v["Name"]?.GetValue<string>(), StringComparer.Ordinal)
                .Select(Row).ToList();
            foreach (string w in ImageCommands.Strings(response?["Warnings"])) Console.Error.WriteLine(w);
            return ListOutput.Write(rows, parse.GetValue(quiet), "Name", parse.GetValue(format), "table {{.Driver}}\t{{.Name}}", Titles);
        });
        return command;
    }

    /// <summary>One row as docker's volume formatter renders it.</summary>
    private static JsonObject Row(JsonObject v)
    {
        var labels = v["Labels"] as JsonObject ?? [];
        var row = new JsonObject
        {
            ["Availability"] = "N/A",
            ["Driver"] = v["Driver"]?.GetValue<string>() ?? "",
            ["Group"] = "N/A",
            ["Labels"] = "", // below: the text, and {{.Label "k"}}
            ["Links"] = "N/A",
            ["Mountpoint"] = v["Mountpoint"]?.GetValue<string>() ?? "",
            ["Name"] = v["Name"]?.GetValue<string>() ?? "",
            ["Scope"] = v["Scope"]?.GetValue<string>() ?? "",
            ["Size"] = "N/A",
            ["Status"] = "N/A",
        };
        row["Labels"] = GoTemplate.Labels(row, labels);
        return row;
    }

    /// <summary><c>docker volume inspect [-f F] VOLUME…</c>: the daemon's Volume JSON; an error line per volume not found (exit 1).</summary>
    private static Command Inspect()
    {
        var names = new Argument<string[]>("VOLUME") { Arity = ArgumentArity.OneOrMore };
        var format = new Option<string?>("--format", "-f") { Description = "format the output using a Go template" };
        var command = new Command("inspect", "Display detailed information on one or more volumes") { names, format };
        Runner.SetClientAction(command, (parse, client, ct)
            => InspectCommand.InspectObjectsAsync(client, parse.GetValue(names)!, name => $"/volumes/{name}", parse.GetValue(format), ct));
        return command;
    }

    /// <summary><c>docker volume rm [-f] VOLUME…</c>: <c>DELETE /volumes/{name}</c>; with -f a missing volume is no error.</summary>
    private static Command Rm()
    {
        var names = new Argument<string[]>("VOLUME") { Arity = ArgumentArity.OneOrMore };
        var force = new Option<bool>("--force", "-f") { Description = "force the removal of one or more volumes" };
        var command = new Command("rm", "Remove one or more volumes") { names, force };
        command.Aliases.Add("remove");
        Runner.SetClientAction(command, (parse, client, ct) => Runner.ForEachAsync(parse.GetValue(names)!, async name =>
        {
            bool f = parse.GetValue(force);
            try
            {
                using HttpResponseMessage _ = await client.SendAsync(HttpMethod.Delete, $"/volumes/{Uri.EscapeDataString(name)}", new Query().Add("force", f), ct: ct).ConfigureAwait(false);
            }
            catch (DaemonException e) when (f && e.Status == HttpStatusCode.NotFound)
            {
            }
            return name;
        }));
        return command;
    }

    /// <summary><c>docker volume prune [-a] [-f] [--filter]</c>: <c>POST /volumes/prune</c> (anonymous volumes only unless -a).</summary>
    private static Command Prune()
    {
        var all = new Option<bool>("--all", "-a") { Description = "remove all unused volumes, not just anonymous ones" };
        var force = new Option<bool>("--force", "-f") { Description = "do not prompt for confirmation" };
        var filters = new Option<string[]>("--filter") { Description = "provide filter values (e.g. 'label=<label>')" };
        var command = new Command("prune", "Remove unused local volumes") { all, force, filters };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            bool removeAll = parse.GetValue(all);
            if (!parse.GetValue(force) && !Pruning.Confirm(removeAll
                    ? "WARNING! This will remove all local volumes not used by at least one container.\n"
                    : "WARNING! This will remove anonymous local volumes not used by at least one container.\n"))
                return 0;
            Pruning.Print(await Pruning.VolumesAsync(client, parse.GetValue(filters) ?? [], removeAll, ct).ConfigureAwait(false));
            return 0;
        });
        return command;
    }
}
