using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

/// <summary>
/// The prune requests of <c>container prune</c>, <c>network prune</c>, <c>image prune</c>,
/// <c>volume prune</c> and <c>system prune</c>: each returns the space it reclaimed and the report
/// docker prints (empty when nothing went).
/// </summary>
internal static class Pruning
{
    /// <summary>docker's prompt: the warning, then <c>[y/N]</c>; true only for y or yes.</summary>
    public static bool Confirm(string warning)
    {
        Console.Out.Write(warning);
        Console.Out.Write("Are you sure you want to continue? [y/N] ");
        Console.Out.Flush();
        string? answer = Console.In.ReadLine();
        return answer?.Trim().ToLowerInvariant() is "y" or "yes";
    }

    public static async Task<(long Reclaimed, string Output)> ContainersAsync(DaemonClient client, IEnumerable<string> filters, CancellationToken ct)
    {
        JsonNode? result = await client.PostJsonAsync("/containers/prune", new Query().Add("filters", Filters.Json(filters)), ct: ct).ConfigureAwait(false);
        return (result?["SpaceReclaimed"]?.GetValue<long>() ?? 0, Report("Deleted Containers:", ImageCommands.Strings(result?["ContainersDeleted"])));
    }

    public static async Task<(long Reclaimed, string Output)> NetworksAsync(DaemonClient client, IEnumerable<string> filters, CancellationToken ct)
    {
        JsonNode? result = await client.PostJsonAsync("/networks/prune", new Query().Add("filters", Filters.Json(filters)), ct: ct).ConfigureAwait(false);
        return (0, Report("Deleted Networks:", ImageCommands.Strings(result?["NetworksDeleted"])));
    }

    public static async Task<(long Reclaimed, string Output)> VolumesAsync(DaemonClient client, IEnumerable<string> filters, bool all, CancellationToken ct)
    {
        var pairs = filters.ToList();
        if (all) pairs.Add("all=true");
        JsonNode? result = await client.PostJsonAsync("/volumes/prune", new Query().Add("filters", Filters.Json(pairs)), ct: ct).ConfigureAwait(false);
        return (result?["SpaceReclaimed"]?.GetValue<long>() ?? 0, Report("Deleted Volumes:", ImageCommands.Strings(result?["VolumesDeleted"])));
    }

    public static async Task<(long Reclaimed, string Output)> ImagesAsync(DaemonClient client, IEnumerable<string> filters, bool all, CancellationToken ct)
    {
        var pairs = filters.ToList();
        pairs.Add(all ? "dangling=false" : "dangling=true");
        JsonNode? result = await client.PostJsonAsync("/images/prune", new Query().Add("filters", Filters.Json(pairs)), ct: ct).ConfigureAwait(false);
        var lines = new List<string>();
        foreach (JsonObject r in (result?["ImagesDeleted"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (r["Untagged"]?.GetValue<string>() is { } u) lines.Add($"untagged: {u}");
            if (r["Deleted"]?.GetValue<string>() is { } d) lines.Add($"deleted: {d}");
        }
        return (result?["SpaceReclaimed"]?.GetValue<long>() ?? 0, Report("Deleted Images:", lines));
    }

    /// <summary>The build cache: <c>POST /build/prune</c> (every cached step; what only it kept is collected).</summary>
    public static async Task<(long Reclaimed, string Output)> BuildCacheAsync(DaemonClient client, CancellationToken ct)
    {
        JsonNode? result = await client.PostJsonAsync("/build/prune", ct: ct).ConfigureAwait(false);
        long entries = result?["Entries"]?.GetValue<long>() ?? 0;
        return (result?["SpaceReclaimed"]?.GetValue<long>() ?? 0, entries == 0 ? "" : $"Deleted build cache objects: {entries}\n");
    }

    private static string Report(string title, IEnumerable<string> lines)
    {
        var sb = new StringBuilder();
        foreach (string l in lines) sb.Append(l).Append('\n');
        return sb.Length == 0 ? "" : title + "\n" + sb;
    }

    /// <summary>The report, a blank line, then docker's total line (as <c>container prune</c> and the others print it).</summary>
    public static void Print((long Reclaimed, string Output) result, bool total = true)
    {
        if (result.Output.Length > 0) Console.Out.WriteLine(result.Output);
        if (total) Console.Out.WriteLine($"Total reclaimed space: {Units.HumanSize(result.Reclaimed)}");
    }

    public static Option<string[]> FilterOption() => new("--filter") { Description = "provide filter values (e.g. 'until=<timestamp>')" };

    public static Option<bool> ForceOption() => new("--force", "-f") { Description = "do not prompt for confirmation" };
}

internal static partial class ContainerCommands
{
    /// <summary><c>docker container prune [-f] [--filter]</c>: <c>POST /containers/prune</c>.</summary>
    private static Command Prune()
    {
        var force = Pruning.ForceOption();
        var filters = Pruning.FilterOption();
        var command = new Command("prune", "Remove all stopped containers") { force, filters };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            if (!parse.GetValue(force) && !Pruning.Confirm("WARNING! This will remove all stopped containers.\n")) return 0;
            Pruning.Print(await Pruning.ContainersAsync(client, parse.GetValue(filters) ?? [], ct).ConfigureAwait(false));
            return 0;
        });
        return command;
    }
}

internal static partial class NetworkCommands
{
    /// <summary><c>docker network prune [-f] [--filter]</c>: <c>POST /networks/prune</c>.</summary>
    private static Command Prune()
    {
        var force = Pruning.ForceOption();
        var filters = Pruning.FilterOption();
        var command = new Command("prune", "Remove all unused networks") { force, filters };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            if (!parse.GetValue(force) && !Pruning.Confirm("WARNING! This will remove all custom networks not used by at least one container.\n")) return 0;
            Pruning.Print(await Pruning.NetworksAsync(client, parse.GetValue(filters) ?? [], ct).ConfigureAwait(false), total: false);
            return 0;
        });
        return command;
    }
}
