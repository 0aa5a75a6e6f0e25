using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Cli.Output;
using Berth.Images;
using Berth.Images.Manifests;
using Berth.Images.Store;

namespace Berth.Cli.Commands;

internal static partial class ImageCommands
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, IndentSize = 4, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly Dictionary<string, string> HistoryTitles = new(StringComparer.Ordinal)
    {
        ["ID"] = "IMAGE", ["CreatedSince"] = "CREATED", ["CreatedAt"] = "CREATED AT", ["CreatedBy"] = "CREATED BY",
        ["Size"] = "SIZE", ["Comment"] = "COMMENT",
    };

    /// <summary><c>docker image inspect [--format F] IMAGE…</c>: Docker's ImageInspect JSON.</summary>
    private static Command Inspect()
    {
        var images = new Argument<string[]>("IMAGE") { Arity = ArgumentArity.OneOrMore };
        var format = new Option<string?>("--format", "-f") { Description = "format the output using a Go template" };
        var command = new Command("inspect", "Display detailed information on one or more images") { images, format };
        Runner.SetEngineAction(command, (parse, engine, _) =>
        {
            var found = new JsonArray();
            var errors = new List<string>();
            foreach (string image in parse.GetValue(images)!)
            {
                try
                {
                    found.Add((JsonNode)InspectJson(engine.Images, image));
                }
                catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
                {
                    errors.Add($"No such image: {image}");
                }
            }
            if (parse.GetValue(format) is { Length: > 0 } f && f != "json")
            {
                GoTemplate template = GoTemplate.Parse(f);
                foreach (JsonNode? node in found) Console.Out.WriteLine(template.Render(node));
            }
            else
            {
                Console.Out.WriteLine(GoTemplate.GoJson(found.ToJsonString(Indented)));
            }
            Console.Out.Flush();
            foreach (string e in errors) Console.Error.WriteLine("Error: " + e);
            return Task.FromResult(errors.Count > 0 ? Runner.Failure : 0);
        });
        return command;
    }

    private static JsonObject InspectJson(ImageStore store, string nameOrId)
    {
        ImageDetails d = store.Inspect(nameOrId);
        Image image = store.Get(nameOrId);
        JsonNode? config = JsonNode.Parse(ManifestParser.Serialize(image.Config))?["config"];
        var obj = new JsonObject
        {
            ["Id"] = d.Id.Value,
            ["RepoTags"] = new JsonArray(d.RepoTags.Select(t => (JsonNode)t).ToArray()),
            ["RepoDigests"] = new JsonArray(d.RepoDigests.Select(t => (JsonNode)t).ToArray()),
            ["Parent"] = "",
            ["Comment"] = image.Config.History is { Count: > 0 } h ? h[^1].Comment ?? "" : "",
            ["Created"] = Units.Rfc3339(d.Created),
            ["DockerVersion"] = "",
            ["Author"] = d.Author ?? "",
            ["Config"] = config?.DeepClone(),
            ["Architecture"] = d.Platform.Architecture,
        };
        if (!string.IsNullOrEmpty(d.Platform.Variant)) obj["Variant"] = d.Platform.Variant;
        obj["Os"] = d.Platform.OS;
        obj["Size"] = d.Size;
        obj["GraphDriver"] = new JsonObject
        {
            ["Data"] = new JsonObject { ["ChainID"] = image.ChainIds.Count > 0 ? image.ChainIds[^1].Value : "" },
            ["Name"] = "overlayfs",
        };
        obj["RootFS"] = new JsonObject
        {
            ["Type"] = "layers",
            ["Layers"] = new JsonArray(d.DiffIds.Select(x => (JsonNode)x.Value).ToArray()),
        };
        obj["Metadata"] = new JsonObject { ["LastTagTime"] = "0001-01-01T00:00:00Z" };
        obj["Descriptor"] = new JsonObject
        {
            ["mediaType"] = d.Target.MediaType,
            ["digest"] = d.Target.Digest,
            ["size"] = d.Target.Size,
        };
        return obj;
    }

    /// <summary><c>docker history [-H] [-q] [--no-trunc] [--format F] IMAGE</c>.</summary>
    private static Command History(string name)
    {
        var image = new Argument<string>("IMAGE");
        var human = new Option<bool>("--human", "-H") { Description = "print sizes and dates in human readable format", DefaultValueFactory = _ => true };
        var quiet = QuietOption("only show image IDs");
        var noTrunc = NoTruncOption();
        var format = FormatOption("{{.ID}}, {{.CreatedSince}}, {{.CreatedAt}}, {{.CreatedBy}}, {{.Size}}, {{.Comment}}, {{json .}}");
        var command = new Command(name, "Show the history of an image") { image, human, quiet, noTrunc, format };
        Runner.SetEngineAction(command, (parse, engine, _) =>
        {
            bool trunc = !parse.GetValue(noTrunc), h = parse.GetValue(human);
            DateTimeOffset now = DateTimeOffset.UtcNow;
            var rows = new List<JsonObject>();
            foreach (ImageHistoryItem item in engine.Images.History(parse.GetValue(image)!))
            {
                string createdBy = item.CreatedBy.Replace('\t', ' ');
                rows.Add(new JsonObject
                {
                    ["Comment"] = item.Comment,
                    ["CreatedAt"] = Units.Rfc3339(item.Created),
                    ["CreatedBy"] = trunc ? Units.Ellipsis(createdBy, 45) : createdBy,
                    ["CreatedSince"] = h ? Units.Since(item.Created, now) : Units.Rfc3339(item.Created),
                    ["ID"] = item.Id == "<missing>" || !trunc ? item.Id : Units.ShortId(item.Id),
                    ["Size"] = h ? Units.HumanSize(item.Size) : item.Size.ToString(System.Globalization.CultureInfo.InvariantCulture),
                });
            }
            if (parse.GetValue(quiet))
            {
                foreach (JsonObject r in rows) Console.Out.WriteLine((string)r["ID"]!);
                return Task.FromResult(0);
            }
            string template = parse.GetValue(format) switch
            {
                null or "" or "table" => "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
                "json" => "{{json .}}",
                var t => t,
            };
            Console.Out.Write(GoTemplate.Parse(template).RenderAll(rows, HistoryTitles));
            return Task.FromResult(0);
        });
        return command;
    }
}
