using System.CommandLine;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;
using Berth.Images.References;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    private static readonly Dictionary<string, string> ImageTitles = new(StringComparer.Ordinal)
    {
        ["Repository"] = "REPOSITORY", ["Tag"] = "TAG", ["ID"] = "IMAGE ID", ["Digest"] = "DIGEST",
        ["CreatedSince"] = "CREATED", ["CreatedAt"] = "CREATED AT", ["Size"] = "SIZE", ["VirtualSize"] = "SIZE",
        ["SharedSize"] = "SHARED SIZE", ["UniqueSize"] = "UNIQUE SIZE", ["Containers"] = "CONTAINERS",
    };

    /// <summary><c>docker images [-a] [-q] [--digests] [--no-trunc] [-f F] [--format F] [REPOSITORY[:TAG]]</c>: <c>GET /images/json</c>.</summary>
    private static Command Images(string name, string? alias = null)
    {
        var filterArg = new Argument<string?>("REPOSITORY[:TAG]") { Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all", "-a") { Description = "show all images (default hides intermediate images)" };
        var quiet = QuietOption("only show image IDs");
        var digests = new Option<bool>("--digests") { Description = "show digests" };
        var filters = new Option<string[]>("--filter", "-f") { Description = "filter output based on conditions provided" };
        var noTrunc = NoTruncOption();
        var format = FormatOption("{{.Repository}}, {{.Tag}}, {{.ID}}, {{.Digest}}, {{.CreatedSince}}, {{.CreatedAt}}, {{.Size}}, {{json .}}");
        var command = new Command(name, "List images") { filterArg, all, quiet, digests, filters, noTrunc, format };
        if (alias is not null) command.Aliases.Add(alias);
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            bool trunc = !parse.GetValue(noTrunc);
            DateTimeOffset now = DateTimeOffset.UtcNow;
            var filterPairs = (parse.GetValue(filters) ?? []).ToList();
            if (parse.GetValue(filterArg) is { } f)
            {
                ImageReference.ParseNormalized(f); // "invalid reference format" before asking the daemon
                filterPairs.Add("reference=" + f);
            }
            var query = new Query().Add("all", parse.GetValue(all)).Add("filters", Filters.Json(filterPairs));
            JsonArray list = await client.GetJsonAsync("/images/json", query, ct).ConfigureAwait(false) as JsonArray ?? [];
            var rows = new List<JsonObject>();
            foreach (JsonObject s in list.OfType<JsonObject>().OrderByDescending(s => s["Created"]?.GetValue<long>() ?? 0))
            {
                string fullId = s["Id"]?.GetValue<string>() ?? "";
                string id = trunc ? Units.ShortId(fullId) : fullId;
                var repoTags = Strings(s["RepoTags"]).Where(t => t != "<none>:<none>").Select(SplitRepoTag).ToList();
                var repoDigests = Strings(s["RepoDigests"]).Where(d => d != "<none>@<none>")
                    .Select(d => (Repo: d[..d.LastIndexOf('@')], Digest: d[(d.LastIndexOf('@') + 1)..])).ToList();
                var entries = new List<(string Repo, string Tag, string Digest)>();
                foreach (var (repo, tag) in repoTags)
                    entries.Add((repo, tag, repoDigests.FirstOrDefault(d => d.Repo == repo).Digest ?? "<none>"));
                foreach (var (repo, digest) in repoDigests.Where(d => repoTags.All(t => t.Repo != d.Repo)))
                    entries.Add((repo, "<none>", digest));
                if (entries.Count == 0) entries.Add(("<none>", "<none>", "<none>"));
                DateTimeOffset created = DateTimeOffset.FromUnixTimeSeconds(s["Created"]?.GetValue<long>() ?? 0);
                long sizeBytes = s["Size"]?.GetValue<long>() ?? 0;
                foreach (var (repo, tag, digest) in entries)
                {
                    string size = Units.HumanSize(sizeBytes);
                    rows.Add(new JsonObject
                    {
                        ["Containers"] = s["Containers"] is JsonValue c && c.GetValue<long>() >= 0 ? c.GetValue<long>().ToString(System.Globalization.CultureInfo.InvariantCulture) : "N/A",
                        ["CreatedAt"] = Units.GoTime(created),
                        ["CreatedSince"] = Units.Since(created, now),
                        ["Digest"] = digest,
                        ["ID"] = id,
                        ["Repository"] = repo,
                        ["SharedSize"] = "N/A",
                        ["Size"] = size,
                        ["Tag"] = tag,
                        ["UniqueSize"] = "N/A",
                        ["VirtualSize"] = size,
                    });
                }
            }

            string table = parse.GetValue(digests)
                ? "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                : "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
            return ListOutput.Write(rows, parse.GetValue(quiet), "ID", parse.GetValue(format), table, ImageTitles);
        });
        return command;
    }

    internal static IEnumerable<string> Strings(JsonNode? node)
        => node is JsonArray a ? a.Select(x => x?.GetValue<string>() ?? "") : [];

    private static (string Repo, string Tag) SplitRepoTag(string familiar)
    {
        int colon = familiar.LastIndexOf(':');
        return colon > familiar.LastIndexOf('/') ? (familiar[..colon], familiar[(colon + 1)..]) : (familiar, "<none>");
    }
}

/// <summary>Docker's <c>--filter key=value</c> flags as the API's <c>filters</c> JSON: <c>{"key":{"value":true}}</c>.</summary>
internal static class Filters
{
    public static string? Json(IEnumerable<string> pairs)
    {
        var root = new JsonObject();
        foreach (string pair in pairs)
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new UsageException($"bad format of filter (expected name=value)");
            string key = pair[..eq].Trim().ToLowerInvariant(), value = pair[(eq + 1)..];
            if (root[key] is not JsonObject values) root[key] = values = new JsonObject();
            values[value] = true;
        }
        return root.Count == 0 ? null : root.ToJsonString();
    }
}
