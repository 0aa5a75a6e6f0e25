using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Cli.Output;

/// <summary>
/// The part of Go's text/template that <c>--format</c> is used with, over JSON trees: literal text;
/// fields (<c>{{.A.B}}</c>, <c>{{.}}</c>), variables (<c>$</c>, <c>$v.A</c>) and parenthesized
/// pipelines (<c>{{(index .Ports "80/tcp").HostPort}}</c>); pipes (<c>{{.Name | upper}}</c>);
/// <c>range</c> (with <c>$v :=</c> or <c>$k, $v :=</c>), <c>if</c>/<c>else if</c>/<c>else</c>,
/// <c>with</c>; docker's functions (json, join, split, upper, lower, title, pad, truncate,
/// println) and Go's builtins (index, len, eq, ne, lt, le, gt, ge, and, or, not, print, printf
/// with %s %v %d %q); <c>{{- trim -}}</c> markers; and a leading <c>table</c> (a header row and
/// aligned columns). <c>\t</c> and <c>\n</c> written literally become tab and newline, as the
/// docker CLI does. Values print as Go prints the matching decoded values.
/// </summary>
internal sealed class GoTemplate
{
    private static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly List<Node> _nodes;

    private GoTemplate(string text, bool table)
    {
        IsTable = table;
        _nodes = new Parser(text).ParseTemplate();
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
    /// <exception cref="FormatException">A field is missing or a function gets what it cannot take.</exception>
    public string Render(JsonNode? data)
    {
        var sb = new StringBuilder();
        Execute(_nodes, data, new Scope(data), sb);
        return sb.ToString();
    }

    /// <summary>Renders the header row of a table: each top-level field replaced by its column title.</summary>
    public string RenderHeader(IReadOnlyDictionary<string, string> titles)
    {
        var sb = new StringBuilder();
        foreach (Node n in _nodes)
        {
            if (n is TextNode t) sb.Append(t.Text);
            else if (n is ActionNode { Pipe: [{ Args: [FieldArg { Variable: null, Path: [var method] }, LiteralArg] }] })
                sb.Append(titles.TryGetValue(method, out string? title) ? title : method.ToUpperInvariant()); // {{.Label "k"}}: LABEL
            else if (n is ActionNode { Pipe: [{ Args: var args }] } && args[^1] is FieldArg { Variable: null } f)
                sb.Append(f.Path.Length == 1 && titles.TryGetValue(f.Path[0], out string? title) ? title : f.Path.Length == 0 ? "" : f.Path[^1].ToUpperInvariant());
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

    /// <summary>
    /// The one-argument methods of docker's formatting contexts (<c>{{.Label "com.example.k"}}</c> in ps,
    /// volume ls and network ls), kept beside a row rather than in it so that <c>{{json .}}</c> shows what
    /// docker's shows: by row, method name to the map the argument is looked up in.
    /// </summary>
    private static readonly ConditionalWeakTable<JsonNode, Dictionary<string, JsonObject>> LookupMethods = new();

    /// <summary>Gives <paramref name="row"/> a method <paramref name="name"/>: <c>{{.name "key"}}</c> is <paramref name="map"/>'s key, "" when absent (docker's Label).</summary>
    public static void AddLookupMethod(JsonNode row, string name, JsonObject map) => LookupMethods.GetOrCreateValue(row)[name] = map;

    /// <summary>A labels map as docker's list rows show it in <c>.Labels</c> (k=v, sorted, comma-separated), and <c>{{.Label "k"}}</c> on the row.</summary>
    public static string Labels(JsonObject row, JsonObject? labels)
    {
        labels ??= [];
        AddLookupMethod(row, "Label", labels);
        return string.Join(',', labels.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value?.GetValue<string>()}"));
    }

    /// <summary>Go's encoding/json escapes &lt;, &gt; and &amp; (and nothing else that is printable); they only occur inside strings.</summary>
    public static string GoJson(string json) => json.Replace("<", "\\u003c").Replace(">", "\\u003e").Replace("&", "\\u0026");

    /// <summary>
    /// The value as Go's json.Marshal writes what the docker CLI decoded into maps: object keys sorted,
    /// at every depth (<c>{{json .Config}}</c> lists Env after Cmd whatever order the daemon sent).
    /// </summary>
    public static string SortedJson(JsonNode node)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JsonOptions.Encoder }))
            WriteSorted(writer, node);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteSorted(Utf8JsonWriter writer, JsonNode? node)
    {
        switch (node)
        {
            case null:
                writer.WriteNullValue();
                break;
            case JsonObject o:
                writer.WriteStartObject();
                foreach (var (key, value) in o.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(key);
                    WriteSorted(writer, value);
                }
                writer.WriteEndObject();
                break;
            case JsonArray a:
                writer.WriteStartArray();
                foreach (JsonNode? item in a) WriteSorted(writer, item);
                writer.WriteEndArray();
                break;
            default:
                node.WriteTo(writer, JsonOptions);
                break;
        }
    }

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

    // ---- the tree ------------------------------------------------------------------------------

    private abstract record Node;
    private sealed record TextNode(string Text) : Node;
    private sealed record ActionNode(List<Command> Pipe, string Source) : Node;
    /// <summary>range, if and with: Kind is the keyword; Else is the else branch (an "else if" is one IfNode in it).</summary>
    private sealed record BranchNode(string Kind, List<Command> Pipe, string Source, string? KeyVariable, string? ValueVariable, List<Node> Body, List<Node>? Else) : Node;

    private sealed record Command(List<Arg> Args);
    private abstract record Arg;
    /// <summary><c>.A.B</c> (Variable null: the dot), <c>$x.A</c>, <c>$</c>.</summary>
    private sealed record FieldArg(string? Variable, string[] Path, string Source) : Arg;
    private sealed record LiteralArg(JsonNode? Value) : Arg;
    private sealed record FunctionArg(string Name) : Arg;
    private sealed record SubPipeArg(List<Command> Pipe, string[] Path, string Source) : Arg;

    private sealed class Scope(JsonNode? root)
    {
        private readonly List<(string Name, JsonNode? Value)> _variables = [("$", root)];
        public int Mark => _variables.Count;
        public void Set(string name, JsonNode? value) => _variables.Add((name, value));
        public void Reset(int mark) => _variables.RemoveRange(mark, _variables.Count - mark);
        public JsonNode? Get(string name, string source)
        {
            for (int i = _variables.Count - 1; i >= 0; i--)
                if (_variables[i].Name == name) return _variables[i].Value;
            throw new FormatException($"template parsing error: template: :1: undefined variable \"{name}\" in {source}");
        }
    }

    // ---- execution -----------------------------------------------------------------------------

    private static void Execute(List<Node> nodes, JsonNode? dot, Scope scope, StringBuilder sb)
    {
        foreach (Node node in nodes)
        {
            switch (node)
            {
                case TextNode t:
                    sb.Append(t.Text);
                    break;
                case ActionNode a:
                    sb.Append(GoString(EvaluatePipe(a.Pipe, dot, scope, a.Source)));
                    break;
                case BranchNode { Kind: "if" } b:
                    Execute(Truth(EvaluatePipe(b.Pipe, dot, scope, b.Source)) ? b.Body : b.Else ?? [], dot, scope, sb);
                    break;
                case BranchNode { Kind: "with" } b:
                    JsonNode? value = EvaluatePipe(b.Pipe, dot, scope, b.Source);
                    if (Truth(value)) Execute(b.Body, value, scope, sb);
                    else Execute(b.Else ?? [], dot, scope, sb);
                    break;
                case BranchNode b:
                    Range(b, EvaluatePipe(b.Pipe, dot, scope, b.Source), dot, scope, sb);
                    break;
            }
        }
    }

    private static void Range(BranchNode b, JsonNode? over, JsonNode? dot, Scope scope, StringBuilder sb)
    {
        // Go ranges over a map in key order.
        IEnumerable<(JsonNode? Key, JsonNode? Value)> items = over switch
        {
            null => [],
            JsonArray a => a.Select((v, i) => ((JsonNode?)JsonValue.Create(i), v)),
            JsonObject o => o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => ((JsonNode?)JsonValue.Create(p.Key), p.Value)),
            JsonValue v when v.TryGetValue(out long n) && n >= 0 => Enumerable.Range(0, (int)Math.Min(n, int.MaxValue)).Select(i => ((JsonNode?)JsonValue.Create(i), (JsonNode?)JsonValue.Create(i))),
            _ => throw new FormatException($"template: executing \"\" at <{b.Source}>: range can't iterate over {GoString(over)}"),
        };
        bool any = false;
        foreach (var (key, value) in items)
        {
            any = true;
            int mark = scope.Mark;
            if (b.KeyVariable is not null) scope.Set(b.KeyVariable, key);
            if (b.ValueVariable is not null) scope.Set(b.ValueVariable, value);
            Execute(b.Body, value, scope, sb);
            scope.Reset(mark);
        }
        if (!any && b.Else is not null) Execute(b.Else, dot, scope, sb);
    }

    /// <summary>Go's truth: false, 0, nil and empty strings, arrays and maps are false.</summary>
    private static bool Truth(JsonNode? value) => value switch
    {
        null => false,
        JsonArray a => a.Count > 0,
        JsonObject o => o.Count > 0,
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.False or JsonValueKind.Null => false,
            JsonValueKind.String => v.GetValue<string>().Length > 0,
            JsonValueKind.Number => Number(v) != 0,
            _ => true,
        },
        _ => true,
    };

    private static JsonNode? EvaluatePipe(List<Command> pipe, JsonNode? dot, Scope scope, string source)
    {
        JsonNode? result = null;
        for (int i = 0; i < pipe.Count; i++)
            result = EvaluateCommand(pipe[i].Args, i == 0 ? null : [result], dot, scope, source);
        return result;
    }

    private static JsonNode? EvaluateCommand(List<Arg> args, List<JsonNode?>? piped, JsonNode? dot, Scope scope, string source)
    {
        if (args[0] is FunctionArg f)
        {
            var values = args.Skip(1).Select(a => EvaluateArg(a, dot, scope, source)).ToList();
            if (piped is not null) values.AddRange(piped);
            return Call(f.Name, values, source);
        }
        if (args is [FieldArg { Variable: null, Path: [var method] }, var argument] && piped is null && dot is not null
            && LookupMethods.TryGetValue(dot, out Dictionary<string, JsonObject>? methods) && methods.TryGetValue(method, out JsonObject? map))
        {
            if (EvaluateArg(argument, dot, scope, source) is not JsonValue key || !key.TryGetValue(out string? name))
                throw new FormatException($"template: executing \"\" at <{source}>: wrong type for value; expected string");
            return map.TryGetPropertyValue(name, out JsonNode? value) ? value?.DeepClone() : JsonValue.Create("");
        }
        if (args.Count > 1 || piped is not null)
            throw new FormatException($"template: executing \"\" at <{source}>: can't give argument to non-function {Describe(args[0])}");
        return EvaluateArg(args[0], dot, scope, source);
    }

    private static string Describe(Arg a) => a switch
    {
        FieldArg f => f.Source,
        SubPipeArg s => s.Source,
        LiteralArg l => GoString(l.Value),
        _ => a.ToString() ?? "",
    };

    private static JsonNode? EvaluateArg(Arg arg, JsonNode? dot, Scope scope, string source) => arg switch
    {
        LiteralArg l => l.Value?.DeepClone(),
        FieldArg { Variable: null } f => Walk(dot, f.Path, f.Source),
        FieldArg f => Walk(scope.Get(f.Variable, source), f.Path, f.Source),
        SubPipeArg s => Walk(EvaluatePipe(s.Pipe, dot, scope, source), s.Path, s.Source),
        FunctionArg f => Call(f.Name, [], source),
        _ => throw new InvalidOperationException("unknown template argument"),
    };

    private static JsonNode? Walk(JsonNode? node, string[] path, string source)
    {
        foreach (string field in path)
        {
            if (node is not JsonObject obj || !obj.TryGetPropertyValue(field, out JsonNode? next))
                throw new FormatException($"template: executing \"\" at <{source}>: can't evaluate field {field}");
            node = next;
        }
        return node;
    }

    private static readonly HashSet<string> Functions = new(StringComparer.Ordinal)
    {
        "json", "upper", "lower", "title", "println", "print", "printf", "join", "split", "pad", "truncate",
        "len", "index", "not", "and", "or", "eq", "ne", "lt", "le", "gt", "ge",
    };

    private static JsonNode? Call(string name, List<JsonNode?> a, string source)
    {
        FormatException Bad(string why) => new($"template: executing \"\" at <{name}>: error calling {name}: {why}");
        void Count(int min, int max = int.MaxValue)
        {
            if (a.Count < min || a.Count > max)
                throw new FormatException($"template: executing \"\" at <{name}>: wrong number of args for {name}: want {(min == max ? min.ToString(CultureInfo.InvariantCulture) : "at least " + min.ToString(CultureInfo.InvariantCulture))} got {a.Count}");
        }
        string Str(int i) => a[i] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : GoString(a[i]);
        long Int(int i) => Number(a[i]) is double x && x == Math.Floor(x) ? (long)x : throw Bad($"{GoString(a[i])} is not an integer");
        int Count0(int i) => Int(i) is long n and >= 0 and <= 1 << 20 ? (int)n : throw Bad($"{GoString(a[i])} is not a count");
        switch (name)
        {
            case "json":
                Count(1, 1);
                return JsonValue.Create(a[0] is null ? "null" : GoJson(SortedJson(a[0]!)));
            case "upper": Count(1, 1); return JsonValue.Create(Str(0).ToUpperInvariant());
            case "lower": Count(1, 1); return JsonValue.Create(Str(0).ToLowerInvariant());
            case "title":
                Count(1, 1);
                return JsonValue.Create(string.Join(' ', Str(0).Split(' ').Select(w => w.Length == 0 ? w : char.ToUpperInvariant(w[0]) + w[1..])));
            case "println": return JsonValue.Create(string.Join(' ', a.Select(GoString)) + "\n");
            case "print": return JsonValue.Create(Sprint(a));
            case "printf":
                Count(1);
                return JsonValue.Create(Sprintf(Str(0), a.Skip(1).ToList(), Bad));
            case "join":
                Count(2, 2);
                return JsonValue.Create(string.Join(Str(1), (a[0] as JsonArray ?? throw Bad("not a list")).Select(GoString)));
            case "split":
                Count(2, 2);
                return new JsonArray([.. Str(0).Split(Str(1)).Select(s => (JsonNode)JsonValue.Create(s)!)]);
            case "pad":
                Count(3, 3);
                return JsonValue.Create(new string(' ', Count0(1)) + Str(0) + new string(' ', Count0(2)));
            case "truncate":
                Count(2, 2);
                string text = Str(0);
                return JsonValue.Create(text.Length > Count0(1) ? text[..Count0(1)] : text);
            case "len":
                Count(1, 1);
                return JsonValue.Create(a[0] switch
                {
                    JsonArray arr => arr.Count,
                    JsonObject obj => obj.Count,
                    JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>().Length,
                    _ => throw Bad($"len of {GoString(a[0])}"),
                });
            case "index":
                Count(1);
                JsonNode? item = a[0];
                for (int k = 1; k < a.Count; k++)
                    item = item switch
                    {
                        JsonArray arr => Int(k) is long i && i >= 0 && i < arr.Count ? arr[(int)i] : throw Bad($"index out of range: {GoString(a[k])}"),
                        JsonObject obj => obj.TryGetPropertyValue(GoString(a[k]), out JsonNode? found) ? found : null,
                        null => throw Bad("index of untyped nil"),
                        _ => throw Bad($"can't index item of type {item.GetValueKind()}"),
                    };
                return item?.DeepClone();
            case "not": Count(1, 1); return JsonValue.Create(!Truth(a[0]));
            case "and":
                Count(1);
                foreach (JsonNode? v in a) if (!Truth(v)) return v?.DeepClone();
                return a[^1]?.DeepClone();
            case "or":
                Count(1);
                foreach (JsonNode? v in a) if (Truth(v)) return v?.DeepClone();
                return a[^1]?.DeepClone();
            case "eq":
                Count(2);
                return JsonValue.Create(a.Skip(1).Any(v => Compare(a[0], v, Bad) == 0));
            case "ne": Count(2, 2); return JsonValue.Create(Compare(a[0], a[1], Bad) != 0);
            case "lt": Count(2, 2); return JsonValue.Create(Compare(a[0], a[1], Bad) < 0);
            case "le": Count(2, 2); return JsonValue.Create(Compare(a[0], a[1], Bad) <= 0);
            case "gt": Count(2, 2); return JsonValue.Create(Compare(a[0], a[1], Bad) > 0);
            case "ge": Count(2, 2); return JsonValue.Create(Compare(a[0], a[1], Bad) >= 0);
            default:
                throw new FormatException($"template parsing error: template: :1: function \"{name}\" not defined");
        }
    }

    private static int Compare(JsonNode? x, JsonNode? y, Func<string, FormatException> bad)
    {
        if (x is JsonValue a && y is JsonValue b)
        {
            if (Number(a) is double m && Number(b) is double n) return m.CompareTo(n);
            if (a.GetValueKind() == JsonValueKind.String && b.GetValueKind() == JsonValueKind.String)
                return string.CompareOrdinal(a.GetValue<string>(), b.GetValue<string>());
            if (a.GetValueKind() is JsonValueKind.True or JsonValueKind.False && b.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                return a.GetValueKind() == b.GetValueKind() ? 0 : 1;
        }
        if (x is null && y is null) return 0;
        throw bad("incompatible types for comparison");
    }

    /// <summary>
    /// A number's value, however the node holds it (a parsed document's element, or a long or an int
    /// made here: JsonValue.TryGetValue converts neither between them).
    /// </summary>
    private static double? Number(JsonNode? node)
        => node is JsonValue v && v.GetValueKind() == JsonValueKind.Number
            && double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : null;

    /// <summary>Go's fmt.Sprint: a space between operands when neither is a string.</summary>
    private static string Sprint(List<JsonNode?> values)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < values.Count; i++)
        {
            bool isString = values[i] is JsonValue v && v.GetValueKind() == JsonValueKind.String;
            bool previousString = i > 0 && values[i - 1] is JsonValue p && p.GetValueKind() == JsonValueKind.String;
            if (i > 0 && !isString && !previousString) sb.Append(' ');
            sb.Append(GoString(values[i]));
        }
        return sb.ToString();
    }

    private static string Sprintf(string format, List<JsonNode?> values, Func<string, FormatException> bad)
    {
        var sb = new StringBuilder();
        int next = 0;
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char verb = format[++i];
            if (verb == '%')
            {
                sb.Append('%');
                continue;
            }
            if (next >= values.Count)
            {
                sb.Append("%!").Append(verb).Append("(MISSING)");
                continue;
            }
            JsonNode? v = values[next++];
            sb.Append(verb switch
            {
                's' or 'v' => GoString(v),
                'd' => Number(v) is double d && d == Math.Floor(d) ? ((long)d).ToString(CultureInfo.InvariantCulture) : $"%!d({GoString(v)})",
                'q' => JsonValue.Create(GoString(v)).ToJsonString(JsonOptions),
                _ => throw bad($"unsupported verb %{verb}"),
            });
        }
        return sb.ToString();
    }

    // ---- parsing -------------------------------------------------------------------------------

    private sealed class Parser(string text)
    {
        private int _position;

        public List<Node> ParseTemplate()
        {
            List<Node> nodes = ParseList(out string? end);
            if (end is not null) throw Error($"unexpected {{{{{end}}}}}");
            return nodes;
        }

        private static FormatException Error(string why) => new($"template parsing error: template: :1: {why}");

        /// <summary>Nodes up to {{end}} or {{else…}} (returned in <paramref name="terminator"/>) or the end of the text (null).</summary>
        private List<Node> ParseList(out string? terminator)
        {
            var nodes = new List<Node>();
            while (_position < text.Length)
            {
                int open = text.IndexOf("{{", _position, StringComparison.Ordinal);
                string literal = open < 0 ? text[_position..] : text[_position..open];
                if (open < 0)
                {
                    if (literal.Length > 0) nodes.Add(new TextNode(literal));
                    _position = text.Length;
                    break;
                }
                int close = text.IndexOf("}}", open + 2, StringComparison.Ordinal);
                if (close < 0) throw Error("unclosed action");
                string action = text[(open + 2)..close];
                bool trimLeft = action.StartsWith("- ", StringComparison.Ordinal) || action == "-";
                bool trimRight = action.EndsWith(" -", StringComparison.Ordinal);
                if (trimLeft) literal = literal.TrimEnd();
                if (literal.Length > 0) nodes.Add(new TextNode(literal));
                action = action[(trimLeft ? 1 : 0)..(action.Length - (trimRight ? 1 : 0))].Trim();
                _position = close + 2;
                if (trimRight)
                    while (_position < text.Length && char.IsWhiteSpace(text[_position])) _position++;

                if (action.StartsWith("/*", StringComparison.Ordinal) && action.EndsWith("*/", StringComparison.Ordinal)) continue;
                string keyword = action.Split(' ', 2)[0];
                if (keyword is "end" or "else")
                {
                    terminator = action;
                    return nodes;
                }
                if (keyword is "range" or "if" or "with")
                    nodes.Add(ParseBranch(keyword, action[keyword.Length..].Trim(), action));
                else
                    nodes.Add(new ActionNode(ParsePipe(action), action));
            }
            terminator = null;
            return nodes;
        }

        private BranchNode ParseBranch(string keyword, string rest, string source)
        {
            string? keyVariable = null, valueVariable = null;
            if (keyword == "range" && rest.IndexOf(":=", StringComparison.Ordinal) is int assign and >= 0)
            {
                string[] names = rest[..assign].Split(',', StringSplitOptions.TrimEntries);
                if (names.Length is < 1 or > 2 || names.Any(n => n.Length < 2 || n[0] != '$')) throw Error($"bad variable declaration in {{{{{source}}}}}");
                (keyVariable, valueVariable) = names.Length == 2 ? (names[0], names[1]) : (null, names[0]);
                rest = rest[(assign + 2)..].Trim();
            }
            if (rest.Length == 0) throw Error($"missing value for {keyword}");
            List<Command> pipe = ParsePipe(rest);
            List<Node> body = ParseList(out string? end);
            List<Node>? otherwise = null;
            if (end is null) throw Error($"unexpected EOF: {{{{{keyword}}}}} has no {{{{end}}}}");
            if (end.StartsWith("else", StringComparison.Ordinal))
            {
                string elseRest = end[4..].Trim();
                if (elseRest.StartsWith("if ", StringComparison.Ordinal))
                {
                    // {{else if …}} is an if inside the else that shares this {{end}}.
                    otherwise = [ParseBranch("if", elseRest[3..].Trim(), end)];
                    return new BranchNode(keyword, pipe, source, keyVariable, valueVariable, body, otherwise);
                }
                if (elseRest.Length > 0) throw Error($"unexpected {{{{{end}}}}}");
                otherwise = ParseList(out end);
                if (end != "end") throw Error($"expected {{{{end}}}} after {{{{else}}}} of {keyword}");
            }
            else if (end != "end")
            {
                throw Error($"unexpected {{{{{end}}}}}");
            }
            return new BranchNode(keyword, pipe, source, keyVariable, valueVariable, body, otherwise);
        }

        private static List<Command> ParsePipe(string source)
        {
            var tokens = Tokenize(source);
            int i = 0;
            List<Command> pipe = ParsePipeTokens(tokens, ref i, source);
            if (i != tokens.Count) throw Error($"unexpected \"{tokens[i]}\" in {{{{{source}}}}}");
            return pipe;
        }

        private static List<Command> ParsePipeTokens(List<string> tokens, ref int i, string source)
        {
            var pipe = new List<Command>();
            var args = new List<Arg>();
            while (i < tokens.Count && tokens[i] != ")")
            {
                string t = tokens[i++];
                if (t == "|")
                {
                    if (args.Count == 0) throw Error($"missing command before | in {{{{{source}}}}}");
                    pipe.Add(new Command(args));
                    args = [];
                    continue;
                }
                args.Add(ParseArg(t, tokens, ref i, source));
            }
            if (args.Count == 0) throw Error($"missing value in {{{{{source}}}}}");
            pipe.Add(new Command(args));
            return pipe;
        }

        private static Arg ParseArg(string t, List<string> tokens, ref int i, string source)
        {
            if (t == "(")
            {
                List<Command> inner = ParsePipeTokens(tokens, ref i, source);
                if (i >= tokens.Count || tokens[i] != ")") throw Error($"unclosed left paren in {{{{{source}}}}}");
                i++;
                string[] path = [];
                if (i < tokens.Count && tokens[i].StartsWith('.') && tokens[i].Length > 1)
                    path = tokens[i++][1..].Split('.');
                return new SubPipeArg(inner, path, source);
            }
            if (t == ".") return new FieldArg(null, [], t);
            if (t[0] == '.') return new FieldArg(null, t[1..].Split('.'), t);
            if (t[0] == '$')
            {
                int dot = t.IndexOf('.');
                return dot < 0 ? new FieldArg(t, [], t) : new FieldArg(t[..dot], t[(dot + 1)..].Split('.'), t);
            }
            if (t[0] is '"' or '`') return new LiteralArg(JsonValue.Create(Unquote(t, source)));
            if (t is "true" or "false") return new LiteralArg(JsonValue.Create(t == "true"));
            if (t == "nil") return new LiteralArg(null);
            if (long.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n)) return new LiteralArg(JsonValue.Create(n));
            if (t.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                return Functions.Contains(t) ? new FunctionArg(t) : throw Error($"function \"{t}\" not defined");
            throw Error($"unexpected \"{t}\" in {{{{{source}}}}}");
        }

        private static string Unquote(string t, string source)
        {
            if (t[0] == '`') return t[1..^1];
            try
            {
                return JsonSerializer.Deserialize(t, StringJsonContext.Default.String) ?? "";
            }
            catch (JsonException)
            {
                throw Error($"bad string {t} in {{{{{source}}}}}");
            }
        }

        /// <summary>Words, quoted strings, parentheses and pipes.</summary>
        private static List<string> Tokenize(string s)
        {
            var tokens = new List<string>();
            int i = 0;
            while (i < s.Length)
            {
                char c = s[i];
                if (char.IsWhiteSpace(c))
                {
                    i++;
                }
                else if (c is '(' or ')' or '|')
                {
                    tokens.Add(c.ToString());
                    i++;
                }
                else if (c is '"' or '`')
                {
                    int j = i + 1;
                    while (j < s.Length && s[j] != c) j += s[j] == '\\' && c == '"' ? 2 : 1;
                    if (j >= s.Length) throw Error($"unterminated quoted string in {{{{{s}}}}}");
                    tokens.Add(s[i..(j + 1)]);
                    i = j + 1;
                }
                else
                {
                    int j = i;
                    while (j < s.Length && !char.IsWhiteSpace(s[j]) && s[j] is not ('(' or ')' or '|')) j++;
                    // "(…).Field": the field sticks to the paren.
                    tokens.Add(s[i..j]);
                    i = j;
                }
            }
            return tokens;
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class StringJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
