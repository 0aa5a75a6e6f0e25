using System.CommandLine;
using System.Text.Json.Nodes;
using Berth.Cli.Output;
using Berth.Images.References;
using Berth.Images.Store;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    private static readonly Dictionary<string, string> ImageTitles = new(StringComparer.Ordinal)
    {
        ["Repository"] = "REPOSITORY", ["Tag"] = "TAG", ["ID"] = "IMAGE ID", ["Digest"] = "DIGEST",
        ["CreatedSince"] = "CREATED", ["CreatedAt"] = "CREATED AT", ["Size"] = "SIZE", ["VirtualSize"] = "SIZE",
        ["SharedSize"] = "SHARED SIZE", ["UniqueSize"] = "UNIQUE SIZE", ["Containers"] = "CONTAINERS",
    };

    /// <summary><c>docker images [-a] [-q] [--digests] [--no-trunc] [--format F] [REPOSITORY[:TAG]]</c>.</summary>
    private static Command Images(string name, string? alias = null)
    {
        var filter = new Argument<string?>("REPOSITORY[:TAG]") { Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all", "-a") { Description = "show all images (default hides intermediate images)" };
        var quiet = QuietOption("only show image IDs");
        var digests = new Option<bool>("--digests") { Description = "show digests" };
        var noTrunc = NoTruncOption();
        var format = FormatOption("{{.Repository}}, {{.Tag}}, {{.ID}}, {{.Digest}}, {{.CreatedSince}}, {{.CreatedAt}}, {{.Size}}, {{json .}}");
        var command = new Command(name, "List images") { filter, all, quiet, digests, noTrunc, format };
        if (alias is not null) command.Aliases.Add(alias);
        Runner.SetEngineAction(command, (parse, engine, _) =>
        {
            bool trunc = !parse.GetValue(noTrunc);
            DateTimeOffset now = DateTimeOffset.UtcNow;
            (string Repo, string? Tag)? wanted = parse.GetValue(filter) is { } f ? SplitFilter(f) : null;
            var rows = new List<JsonObject>();
            foreach (ImageSummary s in engine.Images.List())
            {
                string id = trunc ? Units.ShortId(s.Id.Value) : s.Id.Value;
                var repoTags = s.RepoTags.Select(SplitRepoTag).ToList();
                var repoDigests = s.RepoDigests.Select(d => (Repo: d[..d.LastIndexOf('@')], Digest: d[(d.LastIndexOf('@') + 1)..])).ToList();
                var entries = new List<(string Repo, string Tag, string Digest)>();
                foreach (var (repo, tag) in repoTags)
                    entries.Add((repo, tag, repoDigests.FirstOrDefault(d => d.Repo == repo).Digest ?? "<none>"));
                foreach (var (repo, digest) in repoDigests.Where(d => repoTags.All(t => t.Repo != d.Repo)))
                    entries.Add((repo, "<none>", digest));
                if (entries.Count == 0) entries.Add(("<none>", "<none>", "<none>"));
                foreach (var (repo, tag, digest) in entries)
                {
                    if (wanted is { } w && (w.Repo != repo || (w.Tag is not null && w.Tag != tag))) continue;
                    string size = Units.HumanSize(s.Size);
                    rows.Add(new JsonObject
                    {
                        ["Containers"] = "N/A",
                        ["CreatedAt"] = Units.GoTime(s.Created),
                        ["CreatedSince"] = Units.Since(s.Created, now),
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

            if (parse.GetValue(quiet))
            {
                foreach (string id in rows.Select(r => (string)r["ID"]!).Distinct()) Console.Out.WriteLine(id);
                return Task.FromResult(0);
            }
            string template = parse.GetValue(format) switch
            {
                null or "" or "table" => parse.GetValue(digests)
                    ? "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                    : "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
                "json" => "{{json .}}",
                var t => t,
            };
            Console.Out.Write(GoTemplate.Parse(template).RenderAll(rows, ImageTitles));
            return Task.FromResult(0);
        });
        return command;
    }

    private static (string Repo, string Tag) SplitRepoTag(string familiar)
    {
        int colon = familiar.LastIndexOf(':');
        return colon > familiar.LastIndexOf('/') ? (familiar[..colon], familiar[(colon + 1)..]) : (familiar, "<none>");
    }

    private static (string Repo, string? Tag) SplitFilter(string text)
    {
        ImageReference r = ImageReference.ParseNormalized(text);
        string familiar = r.WithTag("x").FamiliarName;
        return (familiar[..^2], r.Tag);
    }
}
