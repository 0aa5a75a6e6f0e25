using System.Text.Json;
using System.Text.RegularExpressions;

namespace Berth.Images;

/// <summary>
/// System.Text.Json's failure messages for a client's JSON, without the .NET type names they carry
/// ("could not be converted to System.Collections.Generic.List`1[System.String]"): the JSON path, the
/// position and the kind of value wanted, as Go's "json: cannot unmarshal … into … of type []string" says.
/// </summary>
public static partial class JsonErrorText
{
    [GeneratedRegex(@"^The JSON value could not be converted to (?<type>\S+)\. Path: (?<path>\S+) \| LineNumber: (?<line>\d+) \| BytePositionInLine: (?<byte>\d+)\.")]
    private static partial Regex ConversionFailure();

    /// <summary>A syntax error: the reader's words, then where (LineNumber and BytePositionInLine count from 0).</summary>
    [GeneratedRegex(@"^(?<what>.*?)(?: Path: (?<path>\S+) \|)? LineNumber: (?<line>\d+) \| BytePositionInLine: (?<byte>\d+)\.$", RegexOptions.Singleline)]
    private static partial Regex SyntaxError();

    public static string Describe(JsonException e) => Describe(e.Message);

    /// <summary><see cref="Describe(JsonException)"/> for a message (a JsonException's, or a JsonReaderException's that the parser threw).</summary>
    public static string Describe(string message)
    {
        Match m = ConversionFailure().Match(message);
        if (!m.Success)
        {
            // "'n' is an invalid start of a property name. Expected a '"'. Path: $ | LineNumber: 0 | BytePositionInLine: 1."
            // becomes "line 1, byte 2: 'n' is an invalid start of a property name. Expected a '"'." (callers say what it was)
            Match syntax = SyntaxError().Match(message);
            if (!syntax.Success) return message;
            int l = int.Parse(syntax.Groups["line"].Value, System.Globalization.CultureInfo.InvariantCulture) + 1;
            int b = int.Parse(syntax.Groups["byte"].Value, System.Globalization.CultureInfo.InvariantCulture) + 1;
            return $"line {l}, byte {b}: {syntax.Groups["what"].Value.Trim()}";
        }
        int line = int.Parse(m.Groups["line"].Value, System.Globalization.CultureInfo.InvariantCulture) + 1;
        int position = int.Parse(m.Groups["byte"].Value, System.Globalization.CultureInfo.InvariantCulture) + 1;
        return $"cannot unmarshal the value at {m.Groups["path"].Value} (line {line}, byte {position}): want {Kind(m.Groups["type"].Value)}";
    }

    private static string Kind(string type)
    {
        if (type.StartsWith("System.Nullable`1[", StringComparison.Ordinal)) type = type["System.Nullable`1[".Length..^1];
        if (type.EndsWith("[System.String]", StringComparison.Ordinal) && IsList(type) || type == "System.String[]") return "an array of strings";
        if (IsList(type) || type.EndsWith("[]", StringComparison.Ordinal)) return "an array";
        if (type.Contains("Dictionary`2", StringComparison.Ordinal)) return "an object";
        return type switch
        {
            "System.String" => "a string",
            "System.Boolean" => "a boolean",
            "System.Int64" => "an integer (64-bit)",
            "System.Int32" => "an integer (32-bit)",
            "System.UInt64" or "System.UInt32" or "System.UInt16" => "a non-negative integer",
            "System.Double" or "System.Single" or "System.Decimal" => "a number",
            "System.Text.Json.JsonElement" => "a JSON value",
            _ => "an object",
        };
    }

    private static bool IsList(string type)
        => type.Contains("List`1", StringComparison.Ordinal) || type.Contains("IEnumerable`1", StringComparison.Ordinal) || type.Contains("Collection`1", StringComparison.Ordinal);
}
