using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Cli.Output;

namespace Berth.Cli.Client;

/// <summary>
/// Docker's <c>jsonmessage.DisplayJSONMessagesStream</c>: the progress stream of pull, push, load
/// and import. On a terminal each ID keeps one line that is redrawn in place (cursor up, erase,
/// progress bar); otherwise lines with a progress bar are dropped and every other message is a
/// plain line. An <c>error</c> message ends the display with that error.
/// </summary>
internal sealed class JsonMessageDisplay(TextWriter output, bool terminal)
{
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

    /// <summary>Aux messages (push digests, load's image names) go here instead of the screen.</summary>
    public Action<JsonObject>? Aux { get; init; }

    public async Task DisplayAsync(Stream stream, CancellationToken ct)
    {
        using var reader = new StreamReader(stream);
        // The daemon writes one JSON object per line (dockerd and berthd both do).
        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            if (line.Trim().Length == 0) continue;
            JsonObject? message;
            try
            {
                message = JsonNode.Parse(line) as JsonObject;
            }
            catch (JsonException)
            {
                continue;
            }
            if (message is not null) Display(message);
        }
        output.Flush();
    }

    public void Display(JsonObject m)
    {
        if (m["aux"] is JsonObject aux)
        {
            Aux?.Invoke(aux);
            return;
        }
        string id = Str(m, "id"), status = Str(m, "status"), streamText = Str(m, "stream"), progressMessage = Str(m, "progress");
        JsonObject? progress = m["progressDetail"] as JsonObject;
        int diff = 0;
        if (id.Length > 0 && (progress is not null || progressMessage.Length > 0))
        {
            if (!_ids.TryGetValue(id, out int line))
            {
                line = _ids.Count;
                _ids[id] = line;
                if (terminal) output.Write('\n');
            }
            diff = _ids.Count - line;
            if (terminal) output.Write($"\x1b[{diff}A");
        }
        else
        {
            _ids.Clear();
        }

        if (m["errorDetail"] is JsonObject || m["error"] is not null)
        {
            string text = m["errorDetail"]?["message"]?.GetValue<string>() ?? Str(m, "error");
            int code = m["errorDetail"] is JsonObject detail ? (int)Num(detail, "code") : 0;
            output.Flush();
            throw new StreamErrorException(text, code);
        }

        string bar = progress is null ? "" : ProgressString(progress);
        string endl = "";
        bool skip = false;
        if (terminal && streamText.Length == 0 && progress is not null)
        {
            output.Write("\x1b[2K");
            endl = "\r";
            output.Write(endl);
        }
        else if (progress is not null && bar.Length > 0)
        {
            skip = true;
        }
        if (!skip)
        {
            if (id.Length > 0) output.Write($"{id}: ");
            if (Str(m, "from") is { Length: > 0 } from) output.Write($"(from {from}) ");
            if (progress is not null && terminal) output.Write($"{status} {bar}{endl}");
            else if (progressMessage.Length > 0) output.Write($"{status} {progressMessage}{endl}");
            else if (streamText.Length > 0) output.Write($"{streamText}{endl}");
            else output.Write($"{status}{endl}\n");
        }
        if (id.Length > 0 && terminal && diff > 0) output.Write($"\x1b[{diff}B");
        output.Flush();
    }

    private static string Str(JsonObject o, string key) => o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : "";

    private static long Num(JsonObject o, string key) => o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<long>() : 0;

    /// <summary>Docker's <c>JSONProgress.String</c> for a terminal wider than 110 columns.</summary>
    public static string ProgressString(JsonObject p)
    {
        long current = Num(p, "current"), total = Num(p, "total");
        if (current <= 0 && total <= 0) return "";
        if (total <= 0) return $"{Units.HumanSize(current),8}";
        int percentage = Math.Min(50, (int)((double)current / total * 100) / 2);
        int width = Console.IsOutputRedirected ? 200 : Interop.Libc.WindowSize(1)?.Cols ?? 200;
        string box = width > 110 ? $"[{new string('=', percentage)}>{new string(' ', Math.Max(0, 50 - percentage))}] " : "";
        string numbers = current > total ? $"{Units.HumanSize(current),8}" : $"{Units.HumanSize(current),8}/{Units.HumanSize(total)}";
        return box + numbers;
    }
}

/// <summary>An error reported inside a progress stream (after the 200 status).</summary>
internal sealed class StreamErrorException(string message, int code = 0) : Exception(message)
{
    /// <summary>errorDetail.code (a failed build step's exit code), 0 when the daemon gave none.</summary>
    public int Code { get; } = code;
}
