using System.CommandLine;
using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

/// <summary><c>docker inspect [-f F] [-s] [--type container|image] NAME|ID...</c> and <c>container/image inspect</c>.</summary>
internal static class InspectCommand
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, IndentSize = 4, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create(string? only = null)
    {
        var names = new Argument<string[]>("NAME|ID") { Arity = ArgumentArity.OneOrMore };
        var format = new Option<string?>("--format", "-f") { Description = "format the output using a Go template" };
        var size = new Option<bool>("--size", "-s") { Description = "display total file sizes if the type is container" };
        var type = new Option<string?>("--type") { Description = "return JSON for specified type (container, image)" };
        var command = new Command("inspect", only is null ? "Return low-level information on Docker objects" : $"Display detailed information on one or more {only}s") { names, format, size };
        if (only is null) command.Options.Add(type);
        Runner.SetClientAction(command, (parse, client, ct) =>
        {
            string? kind = only ?? parse.GetValue(type);
            if (kind is not (null or "container" or "image")) throw new UsageException($"\"{kind}\" is not a valid value for --type");
            return InspectAsync(client, parse.GetValue(names)!, kind, parse.GetValue(format), parse.GetValue(size), ct);
        });
        return command;
    }

    /// <summary>Prints the objects found (JSON array, or the template per object), then an error line for each not found; exit 1 if any.</summary>
    public static async Task<int> InspectAsync(DaemonClient client, IEnumerable<string> names, string? kind, string? format, bool size, CancellationToken ct)
    {
        var found = new JsonArray();
        var errors = new List<string>();
        foreach (string name in names)
        {
            JsonNode? node = null;
            if (kind is null or "container")
                node = await TryGetAsync(client, $"/containers/{name}/json", new Query().Add("size", size), ct).ConfigureAwait(false);
            if (node is null && kind is null or "image")
                node = await TryGetAsync(client, $"/images/{name}/json", null, ct).ConfigureAwait(false);
            if (node is null)
                errors.Add(kind switch
                {
                    "image" => $"Error: No such image: {name}",
                    "container" => $"Error: No such container: {name}",
                    _ => $"Error: No such object: {name}",
                });
            else found.Add(node);
        }
        return Print(found, errors, format);
    }

    /// <summary>
    /// <c>network inspect</c>, <c>volume inspect</c>: GET <paramref name="pathOf"/>(name) for each
    /// name; a 404 becomes the daemon's message on stderr (exit 1), as docker prints it.
    /// </summary>
    public static async Task<int> InspectObjectsAsync(DaemonClient client, IEnumerable<string> names, Func<string, string> pathOf, string? format, CancellationToken ct)
    {
        var found = new JsonArray();
        var errors = new List<string>();
        foreach (string name in names)
        {
            try
            {
                found.Add(await client.GetJsonAsync(pathOf(Uri.EscapeDataString(name)), ct: ct).ConfigureAwait(false));
            }
            catch (DaemonException e) when (e.Status == HttpStatusCode.NotFound)
            {
                errors.Add(Runner.Describe(e).Message);
            }
        }
        return Print(found, errors, format);
    }

    /// <summary>The objects found (a JSON array, or the template per object), then an error line for each not found; exit 1 if any.</summary>
    private static int Print(JsonArray found, List<string> errors, string? format)
    {
        if (format is { Length: > 0 } f && f != "json")
        {
            GoTemplate template = GoTemplate.Parse(f);
            foreach (JsonNode? node in found) Console.Out.WriteLine(template.Render(node));
        }
        else
        {
            Console.Out.WriteLine(GoTemplate.GoJson(found.ToJsonString(Indented)));
        }
        Console.Out.Flush();
        foreach (string e in errors) Console.Error.WriteLine(e);
        return errors.Count > 0 ? Runner.Failure : 0;
    }

    private static async Task<JsonNode?> TryGetAsync(DaemonClient client, string path, Query? query, CancellationToken ct)
    {
        try
        {
            return await client.GetJsonAsync(path, query, ct).ConfigureAwait(false);
        }
        catch (DaemonException e) when (e.Status == HttpStatusCode.NotFound)
        {
            return null;
        }
    }
}
