using System.CommandLine;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;
using Berth.Images.References;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    /// <summary><c>docker tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]</c>: <c>POST /images/{name}/tag?repo=&amp;tag=</c>.</summary>
    private static Command Tag(string name)
    {
        var source = new Argument<string>("SOURCE_IMAGE[:TAG]");
        var target = new Argument<string>("TARGET_IMAGE[:TAG]");
        var command = new Command(name, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE") { source, target };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            ImageReference to = ImageReference.ParseNormalized(parse.GetValue(target)!);
            if (to.Digest is not null) throw new UsageException("refusing to create a tag with a digest reference");
            var query = new Query().Add("repo", Repo(to)).Add("tag", to.Tag ?? ImageReference.DefaultTag);
            await client.PostAsync($"/images/{parse.GetValue(source)}/tag", query, ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary><c>docker rmi [-f] [--no-prune] IMAGE…</c>: <c>DELETE /images/{name}</c>, one error line per image that fails.</summary>
    private static Command Rmi(string name, string? alias = null)
    {
        var images = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var force = new Option<bool>("--force", "-f") { Description = "force removal of the image" };
        var noPrune = new Option<bool>("--no-prune") { Description = "do not delete untagged parents" };
        var command = new Command(name, "Remove one or more images") { images, force, noPrune };
        if (alias is not null) command.Aliases.Add(alias);
        Runner.SetClientAction(command, (parse, client, ct) => Runner.ForEachAsync(parse.GetValue(images)!, async image =>
        {
            var query = new Query().Add("force", parse.GetValue(force)).Add("noprune", parse.GetValue(noPrune));
            using HttpResponseMessage response = await client.SendAsync(HttpMethod.Delete, $"/images/{image}", query, ct: ct).ConfigureAwait(false);
            foreach (JsonObject r in (await DaemonClient.ReadJsonAsync(response, ct).ConfigureAwait(false) as JsonArray ?? []).OfType<JsonObject>())
            {
                if (r["Untagged"]?.GetValue<string>() is { } u) Console.Out.WriteLine($"Untagged: {u}");
                if (r["Deleted"]?.GetValue<string>() is { } d) Console.Out.WriteLine($"Deleted: {d}");
            }
            return null;
        }));
        return command;
    }

    /// <summary><c>docker image prune [-a] [-f] [--filter]</c>: <c>POST /images/prune</c>.</summary>
    private static Command Prune()
    {
        var all = new Option<bool>("--all", "-a") { Description = "remove all unused images, not just dangling ones" };
        var force = new Option<bool>("--force", "-f") { Description = "do not prompt for confirmation" };
        var filters = new Option<string[]>("--filter") { Description = "provide filter values (e.g. 'until=<timestamp>')" };
        var command = new Command("prune", "Remove unused images") { all, force, filters };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            bool removeAll = parse.GetValue(all);
            if (!parse.GetValue(force))
            {
                Console.Out.WriteLine(removeAll
                    ? "WARNING! This will remove all images without at least one container associated to them."
                    : "WARNING! This will remove all dangling images.");
                Console.Out.Write("Are you sure you want to continue? [y/N] ");
                Console.Out.Flush();
                string? answer = Console.In.ReadLine();
                if (answer?.Trim().ToLowerInvariant() is not ("y" or "yes")) return 0;
            }
            var pairs = (parse.GetValue(filters) ?? []).ToList();
            pairs.Add(removeAll ? "dangling=false" : "dangling=true");
            JsonNode? result = await client.PostJsonAsync("/images/prune", new Query().Add("filters", Filters.Json(pairs)), ct: ct).ConfigureAwait(false);
            var lines = new List<string>();
            foreach (JsonObject r in (result?["ImagesDeleted"] as JsonArray ?? []).OfType<JsonObject>())
            {
                if (r["Untagged"]?.GetValue<string>() is { } u) lines.Add($"untagged: {u}");
                if (r["Deleted"]?.GetValue<string>() is { } d) lines.Add($"deleted: {d}");
            }
            if (lines.Count > 0)
            {
                Console.Out.WriteLine("Deleted Images:");
                foreach (string l in lines) Console.Out.WriteLine(l);
                Console.Out.WriteLine();
            }
            Console.Out.WriteLine($"Total reclaimed space: {Units.HumanSize(result?["SpaceReclaimed"]?.GetValue<long>() ?? 0)}");
            return 0;
        });
        return command;
    }
}
