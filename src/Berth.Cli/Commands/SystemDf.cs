using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;
using Berth.Images.References;

namespace Berth.Cli.Commands;

/// <summary><c>berth system df|prune|events|info</c>.</summary>
internal static class SystemGroupCommands
{
    public static Command SystemGroup() => new("system", "Manage the engine")
    {
        Df(), Prune(), EventsCommand.Create(), SystemCommands.Info(),
    };

    /// <summary><c>docker system df [-v] [--format F]</c>: <c>GET /system/df</c>, summed as docker's formatter sums it.</summary>
    private static Command Df()
    {
        var verbose = new Option<bool>("--verbose", "-v") { Description = "show detailed information on space usage" };
        var format = new Option<string?>("--format") { Description = "format the output using a Go template" };
        var command = new Command("df", "Show engine disk usage") { verbose, format };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            JsonNode? df = await client.GetJsonAsync("/system/df", ct: ct).ConfigureAwait(false);
            DateTimeOffset now = DateTimeOffset.UtcNow;
            if (parse.GetValue(verbose))
            {
                Console.Out.Write(Verbose(df, now));
                return 0;
            }
            List<JsonObject> rows = Summary(df);
            string? f = parse.GetValue(format);
            if (f is { Length: > 0 } && !f.StartsWith("table", StringComparison.Ordinal))
            {
                GoTemplate t = GoTemplate.Parse(f == "json" ? "{{json .}}" : f);
                foreach (JsonObject row in rows) Console.Out.WriteLine(t.Render(row));
                return 0;
            }
            var lines = new List<string> { "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE" };
            foreach (JsonObject r in rows)
                lines.Add($"{r["Type"]}\t{r["TotalCount"]}\t{r["Active"]}\t{r["Size"]}\t{r["Reclaimable"]}");
            Console.Out.Write(TabWriter.Format(lines));
            return 0;
        });
        return command;
    }

    private static long L(JsonNode? n) => n is JsonValue v && v.TryGetValue(out long l) ? l : 0;

    private static string Reclaimable(long reclaimable, long total)
        => total > 0 ? $"{Units.HumanSize(reclaimable)} ({reclaimable * 100 / total}%)" : Units.HumanSize(reclaimable);

    private static bool IsActive(JsonNode? c) => S(c?["State"]) is "running" or "paused" or "restarting";

    private static string S(JsonNode? v) => v is JsonValue value && value.TryGetValue(out string? s) ? s : "";

    /// <summary>docker's diskUsage*Context rows: Type, TotalCount, Active, Size, Reclaimable.</summary>
    private static List<JsonObject> Summary(JsonNode? df)
    {
        var images = (df?["Images"] as JsonArray ?? []).ToList();
        var containers = (df?["Containers"] as JsonArray ?? []).ToList();
        var volumes = (df?["Volumes"] as JsonArray ?? []).ToList();
        var cache = (df?["BuildCache"] as JsonArray ?? []).ToList();

        long layers = L(df?["LayersSize"]);
        long usedByImages = images.Where(i => L(i?["Containers"]) != 0 && L(i?["Size"]) != -1 && L(i?["SharedSize"]) != -1)
            .Sum(i => L(i?["Size"]) - L(i?["SharedSize"]));
        long containersSize = containers.Sum(c => L(c?["SizeRw"]));
        long containersReclaimable = containers.Where(c => !IsActive(c)).Sum(c => L(c?["SizeRw"]));
        long volumesSize = volumes.Select(v => L(v?["UsageData"]?["Size"])).Where(s => s != -1).Sum();
        long volumesReclaimable = volumes.Where(v => L(v?["UsageData"]?["RefCount"]) == 0).Select(v => L(v?["UsageData"]?["Size"])).Where(s => s != -1).Sum();
        long cacheSize = cache.Where(b => b?["Shared"]?.GetValue<bool>() != true).Sum(b => L(b?["Size"]));
        long cacheReclaimable = cache.Where(b => b?["InUse"]?.GetValue<bool>() != true && b?["Shared"]?.GetValue<bool>() != true).Sum(b => L(b?["Size"]));

        static JsonObject Row(string type, int total, int active, long size, string reclaimable) => new()
        {
            ["Type"] = type,
            ["TotalCount"] = total.ToString(CultureInfo.InvariantCulture),
            ["Active"] = active.ToString(CultureInfo.InvariantCulture),
            ["Size"] = Units.HumanSize(size),
            ["Reclaimable"] = reclaimable,
        };
        return
        [
            Row("Images", images.Count, images.Count(i => L(i?["Containers"]) > 0), layers, Reclaimable(layers - usedByImages, layers)),
            Row("Containers", containers.Count, containers.Count(IsActive), containersSize, Reclaimable(containersReclaimable, containersSize)),
            Row("Local Volumes", volumes.Count, volumes.Count(v => L(v?["UsageData"]?["RefCount"]) > 0), volumesSize, Reclaimable(volumesReclaimable, volumesSize)),
            Row("Build Cache", cache.Count, cache.Count(b => b?["InUse"]?.GetValue<bool>() == true), cacheSize, Units.HumanSize(cacheReclaimable)),
        ];
    }

    /// <summary>docker system df -v: one table per kind.</summary>
    private static string Verbose(JsonNode? df, DateTimeOffset now)
    {
        var sb = new StringBuilder();
        sb.Append("Images space usage:\n\n");
        var images = new List<string> { "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS" };
        foreach (JsonNode? i in df?["Images"] as JsonArray ?? [])
        {
            string repo = "<none>", tag = "<none>";
            if (ImageCommands.Strings(i?["RepoTags"]).FirstOrDefault(t => t != "<none>:<none>") is { } first
                && ImageReference.TryParse(first, out ImageReference? r) && r is { Tag: { } t })
            {
                string familiar = r.FamiliarName;
                repo = familiar[..^(t.Length + 1)];
                tag = t;
            }
            long size = L(i?["Size"]), shared = L(i?["SharedSize"]);
            DateTimeOffset created = DateTimeOffset.FromUnixTimeSeconds(L(i?["Created"]));
            images.Add($"{repo}\t{tag}\t{Units.ShortId(S(i?["Id"]))}\t{Units.Since(created, now)}\t{Units.HumanSize(size)}\t{Units.HumanSize(shared)}\t{Units.HumanSize(size - shared)}\t{L(i?["Containers"])}");
        }
        sb.Append(TabWriter.Format(images));
        sb.Append("\nContainers space usage:\n\n");
        var containers = new List<string> { "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES" };
        foreach (JsonNode? c in df?["Containers"] as JsonArray ?? [])
        {
            int volumes = (c?["Mounts"] as JsonArray ?? []).Count(m => S(m?["Type"]) == "volume");
            string names = string.Join(",", ImageCommands.Strings(c?["Names"]).Select(n => n.TrimStart('/')));
            DateTimeOffset created = DateTimeOffset.FromUnixTimeSeconds(L(c?["Created"]));
            containers.Add($"{Units.ShortId(S(c?["Id"]))}\t{S(c?["Image"])}\t\"{Units.Ellipsis(S(c?["Command"]), 20)}\"\t{volumes}\t{Units.HumanSize(L(c?["SizeRw"]))}\t{Units.Since(created, now)}\t{S(c?["Status"])}\t{names}");
        }
        sb.Append(TabWriter.Format(containers));
        sb.Append("\nLocal Volumes space usage:\n\n");
        var volumeLines = new List<string> { "VOLUME NAME\tLINKS\tSIZE" };
        foreach (JsonNode? v in df?["Volumes"] as JsonArray ?? [])
            volumeLines.Add($"{S(v?["Name"])}\t{L(v?["UsageData"]?["RefCount"])}\t{Units.HumanSize(L(v?["UsageData"]?["Size"]))}");
        sb.Append(TabWriter.Format(volumeLines));
        long cacheSize = (df?["BuildCache"] as JsonArray ?? []).Sum(b => L(b?["Size"]));
        sb.Append($"\nBuild cache usage: {Units.HumanSize(cacheSize)}\n\n");
        sb.Append(TabWriter.Format(["CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED"]));
        return sb.ToString();
    }

    /// <summary>
    /// <c>docker system prune [-a] [-f] [--volumes] [--filter]</c>: containers, networks, volumes
    /// (with --volumes), images, in docker's order; each report, then the total.
    /// </summary>
    private static Command Prune()
    {
        var all = new Option<bool>("--all", "-a") { Description = "remove all unused images not just dangling ones" };
        var force = Pruning.ForceOption();
        var volumes = new Option<bool>("--volumes") { Description = "prune anonymous volumes" };
        var filters = Pruning.FilterOption();
        var command = new Command("prune", "Remove unused data") { all, force, volumes, filters };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            bool removeAll = parse.GetValue(all), withVolumes = parse.GetValue(volumes);
            if (!parse.GetValue(force))
            {
                var warning = new StringBuilder("WARNING! This will remove:\n");
                warning.Append("  - all stopped containers\n");
                warning.Append("  - all networks not used by at least one container\n");
                if (withVolumes) warning.Append("  - all anonymous volumes not used by at least one container\n");
                warning.Append(removeAll ? "  - all images without at least one container associated to them\n" : "  - all dangling images\n");
                warning.Append("  - all build cache\n");
                warning.Append("\n");
                if (!Pruning.Confirm(warning.ToString())) return 0;
            }
            string[] pairs = parse.GetValue(filters) ?? [];
            long total = 0;
            var steps = new List<Func<Task<(long, string)>>>
            {
                () => Pruning.ContainersAsync(client, pairs, ct),
                () => Pruning.NetworksAsync(client, pairs, ct),
            };
            // Volume prune takes only label filters (dockerd refuses until there).
            if (withVolumes) steps.Add(() => Pruning.VolumesAsync(client, pairs.Where(p => !p.StartsWith("until=", StringComparison.Ordinal)), false, ct));
            steps.Add(() => Pruning.ImagesAsync(client, pairs, removeAll, ct));
            steps.Add(() => Pruning.BuildCacheAsync(client, ct));
            foreach (var step in steps)
            {
                var (reclaimed, output) = await step().ConfigureAwait(false);
                total += reclaimed;
                if (output.Length > 0) Console.Out.WriteLine(output);
            }
            Console.Out.WriteLine($"Total reclaimed space: {Units.HumanSize(total)}");
            return 0;
        });
        return command;
    }
}
