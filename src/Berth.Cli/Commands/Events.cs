using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

/// <summary><c>berth events</c> (and <c>berth system events</c>): a client of the <c>GET /events</c> stream.</summary>
internal static class EventsCommand
{
    /// <summary><c>docker events [--since T] [--until T] [-f F] [--format F]</c>: one line per event until <c>--until</c> or Ctrl-C.</summary>
    public static Command Create()
    {
        var since = new Option<string?>("--since") { Description = "show all events created since timestamp" };
        var until = new Option<string?>("--until") { Description = "stream events until this timestamp" };
        var filters = new Option<string[]>("--filter", "-f") { Description = "filter output based on conditions provided" };
        var format = new Option<string?>("--format") { Description = "format the output using the given Go template" };
        var command = new Command("events", "Get real time events from the server") { since, until, filters, format };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            DateTimeOffset now = DateTimeOffset.UtcNow;
            GoTemplate? template = parse.GetValue(format) is { Length: > 0 } f ? GoTemplate.Parse(f == "json" ? "{{json .}}" : f) : null;
            var query = new Query()
                .Add("since", parse.GetValue(since) is { } s ? ContainerCommands.Timestamp(s, now) : null)
                .Add("until", parse.GetValue(until) is { } u ? ContainerCommands.Timestamp(u, now) : null)
                .Add("filters", Filters.Json(parse.GetValue(filters) ?? []));
            using HttpResponseMessage response = await client.SendAsync(HttpMethod.Get, "/events", query, ct: ct,
                completion: HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
            await using Stream body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            using var reader = new StreamReader(body);
            try
            {
                while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
                {
                    if (line.Length == 0) continue;
                    JsonNode? e = JsonNode.Parse(line);
                    Console.Out.Write(template is null ? Pretty(e) + "\n" : template.Render(e) + "\n");
                }
            }
            catch (OperationCanceledException)
            {
                // Ctrl-C ends the stream, as with docker
            }
            return 0;
        });
        return command;
    }

    /// <summary>
    /// docker's prettyPrintEvent: <c>TIME TYPE ACTION ID (k=v, …)</c>, the time in the local zone
    /// with nine fraction digits, the attributes sorted by key.
    /// </summary>
    internal static string Pretty(JsonNode? e)
    {
        var parts = new List<string>();
        long nano = e?["timeNano"]?.GetValue<long>() ?? 0;
        if (nano == 0 && e?["time"]?.GetValue<long>() is { } seconds and not 0) nano = seconds * 1_000_000_000;
        string line = "";
        if (nano != 0)
        {
            DateTimeOffset utc = DateTimeOffset.UnixEpoch.AddTicks(nano / 100);
            DateTimeOffset local = TimeZoneInfo.ConvertTime(utc, TimeZoneInfo.Local);
            string zone = local.Offset == TimeSpan.Zero ? "Z" : local.ToString("zzz", CultureInfo.InvariantCulture);
            line = local.ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss", CultureInfo.InvariantCulture) + "." + (nano % 1_000_000_000).ToString("D9", CultureInfo.InvariantCulture) + zone + " ";
        }
        line += $"{S(e?["Type"])} {S(e?["Action"])} {S(e?["Actor"]?["ID"])}";
        if (e?["Actor"]?["Attributes"] is JsonObject attributes && attributes.Count > 0)
            line += " (" + string.Join(", ", attributes.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={S(kv.Value)}")) + ")";
        return line;
    }

    private static string S(JsonNode? v) => v is JsonValue value && value.TryGetValue(out string? s) ? s : v?.ToJsonString() ?? "";
}
