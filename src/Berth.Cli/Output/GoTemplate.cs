using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Cli.Output;

/// <summary>
/// The subset of Go's text/template that <c>--format</c> is used with: literal text, <c>{{.Field}}</c>
/// and <c>{{.A.B}}</c>, <c>{{.}}</c>, <c>{{json .}}</c> / <c>{{json .Field}}</c>, <c>{{upper …}}</c>,
/// <c>{{lower …}}</c>, <c>{{println …}}</c>, and a leading <c>table</c> (a header row and aligned
/// columns). <c>\t</c> and <c>\n</c> written literally are turned into tab and newline, as the docker
/// CLI does. Values are JSON trees, printed the way Go prints the matching values.
/// </summary>
internal sealed class GoTemplate
{
    private static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly List<Part> _parts;

    private GoTemplate(string text, bool table)
    {
        IsTable = table;
        _parts = ParseParts(text);
    }

    public bool IsTable { get; }

    /// <exception cref="FormatException">The template does not parse.</exception>
    public static GoTemplate Parse(string format)
    {
        string text = format;
        bool table = false;
        if (text.StartsWith("table", StringComparison.Ordinal))
        {
            table = true;
            text = text[5..];
        }
        text = text.Trim(' ').Replace("\\t", "\t").Replace("\\n", "\n");
        return new GoTemplate(text, table);
    }

    /// <summary>Renders one value (a row).</summary>
    public string Render(JsonNode? data)
    {
        var sb = new StringBuilder();
        foreach (Part p in _parts)
        {
            if (p.Literal is not null)
            {
                sb.Append(p.Literal);
                continue;
            }
            JsonNode? value = Resolve(data, p.Path!, p.Source!);
            sb.Append(p.Function switch
            {
                "json" => value is null ? "null" : GoJson(value.ToJsonString(JsonOptions)),
                "upper" => GoString(value).ToUpperInvariant(),
                "lower" => GoString(value).ToLowerInvariant(),
                "println" => GoString(value) + "\n",
                _ => GoString(value),
            });
        }
        return sb.ToString();
    }

    /// <summary>Renders the header row of a table: each field replaced by its column title.</summary>
    public string RenderHeader(IReadOnlyDictionary<string, string> titles)
    {
        var sb = new StringBuilder();
        foreach (Part p in _parts)
        {
            if (p.Literal is not null) sb.Append(p.Literal);
            else if (p.Path!.Length == 1 && titles.TryGetValue(p.Path[0], out string? title)) sb.Append(title);
            else sb.Append(p.Path.Length == 0 ? "" : p.Path[^1].ToUpperInvariant());
        }
        return sb.ToString();
    }

    /// <summary>Renders every row; a table gets its header and Docker's column alignment.</summary>
    public string RenderAll(IEnumerable<JsonNode?> rows, IReadOnlyDictionary<string, string> titles)
    {
        var lines = new List<string>();
        if (IsTable) lines.Add(RenderHeader(titles));
        lines.AddRange(rows.Select(Render));
        if (!IsTable) return string.Concat(lines.Select(l => l + "\n"));
        return TabWriter.Format(lines);
    }

    private static JsonNode? Resolve(JsonNode? data, string[] path, string source)
    {
        JsonNode? node = data;
        foreach (string field in path)
        {
            if (node is not JsonObject obj || !obj.TryGetPropertyValue(field, out JsonNode? next))
                throw new FormatException($"template: executing \"\" at <{source}>: can't evaluate field {field}");
            node = next;
        }
        return node;
    }

    /// <summary>Go's encoding/json escapes &lt;, &gt; and &amp; (and nothing else that is printable); they only occur inside strings.</summary>
    public static string GoJson(string json) => json.Replace("<", "\\u003c").Replace(">", "\\u003e").Replace("&", "\\u0026");

    /// <summary>How Go's fmt prints a decoded JSON value.</summary>
    public static string GoString(JsonNode? value) => value switch
    {
        null => "<nil>",
        JsonArray a => "[" + string.Join(' ', a.Select(GoString)) + "]",
        JsonObject o => "map[" + string.Join(' ', o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + ":" + GoString(p.Value))) + "]",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v => v.ToJsonString(),
        _ => value.ToJsonString(),
    };

    private sealed record Part(string? Literal, string? Function, string[]? Path, string? Source);

    private static List<Part> ParseParts(string text)
    {
        var parts = new List<Part>();
        int i = 0;
        while (i < text.Length)
        {
            int open = text.IndexOf("{{", i, StringComparison.Ordinal);
            if (open < 0)
            {
                parts.Add(new Part(text[i..], null, null, null));
                break;
            }
            if (open > i) parts.Add(new Part(text[i..open], null, null, null));
            int close = text.IndexOf("}}", open + 2, StringComparison.Ordinal);
            if (close < 0) throw new FormatException($"template parsing error: template: :1: unclosed action");
            string action = text[(open + 2)..close];
            bool trimLeft = action.StartsWith('-'), trimRight = action.EndsWith('-');
            action = action.Trim('-').Trim();
            if (trimLeft && parts.Count > 0 && parts[^1].Literal is { } prev) parts[^1] = parts[^1] with { Literal = prev.TrimEnd() };
            string[] words = action.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            string? function = null;
            string operand;
            if (words.Length == 2 && words[0] is "json" or "upper" or "lower" or "println")
            {
                function = words[0];
                operand = words[1];
            }
            else if (words.Length == 1)
            {
                operand = words[0];
            }
            else
            {
                throw new FormatException($"template parsing error: template: :1: unsupported action {{{{{action}}}}}");
            }
            if (!operand.StartsWith('.'))
                throw new FormatException($"template parsing error: template: :1: function \"{operand}\" not defined");
            string[] path = operand == "." ? [] : operand[1..].Split('.');
            parts.Add(new Part(null, function, path, operand));
            i = close + 2;
            if (trimRight)
                while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
        }
        return parts;
    }
}
