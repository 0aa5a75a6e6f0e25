using System.Text.Json;
using System.Text.RegularExpressions;

namespace Berth.Oci;

/// <summary>Reads config.json, turning every JSON problem into a <see cref="SpecException"/> that names the field.</summary>
public static partial class SpecLoader
{
    public const string ConfigFileName = "config.json";

    public static Spec LoadFromBundle(string bundleDir)
    {
        var path = Path.Combine(bundleDir, ConfigFileName);
        byte[] json;
        try
        {
            json = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw SpecException.Unreadable($"{ConfigFileName} not found in bundle {bundleDir}", inner: e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw SpecException.Unreadable($"{ConfigFileName}: cannot read {path}: {e.Message}", inner: e);
        }
        return Parse(json);
    }

    public static Spec Parse(string json, string fileName = ConfigFileName) =>
        Parse(System.Text.Encoding.UTF8.GetBytes(json), fileName);

    public static Spec Parse(ReadOnlySpan<byte> utf8Json, string fileName = ConfigFileName)
    {
        try
        {
            return JsonSerializer.Deserialize(utf8Json, SpecJsonContext.Default.Spec)
                ?? throw new SpecException(null, "the document is null", fileName);
        }
        catch (JsonException e)
        {
            throw FromJsonException(e, fileName);
        }
    }

    /// <summary>Maps System.Text.Json's error to "file: field: line N: problem".</summary>
    public static SpecException FromJsonException(JsonException e, string fileName = ConfigFileName)
    {
        int? line = e.LineNumber is long l ? (int)l + 1 : null;
        var problem = StripPosition(e.Message);
        // A syntax error comes from the reader (wrapped as the inner exception); the path then says
        // little, the line says it all.
        if (e.InnerException is JsonException)
            return new SpecException(null, problem, fileName, line, e);
        return new SpecException(ToFieldPath(e.Path), Describe(problem), fileName, line, e);
    }

    private static string StripPosition(string message)
    {
        var at = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (at < 0) at = message.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        var text = (at < 0 ? message : message[..at]).TrimEnd();
        // The reader's advice is for the programmer, not for whoever wrote config.json.
        const string advice = " Change the reader options.";
        return text.EndsWith(advice, StringComparison.Ordinal) ? text[..^advice.Length] : text;
    }

    private static string? ToFieldPath(string? jsonPath)
    {
        if (string.IsNullOrEmpty(jsonPath) || jsonPath == "$") return null;
        return jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : jsonPath.TrimStart('$');
    }

    private static string Describe(string problem)
    {
        if (problem.Contains("doesn't allow setting null values", StringComparison.Ordinal))
            return "must not be null";
        var m = ConversionError().Match(problem);
        return m.Success ? $"expected {JsonKind(m.Groups[1].Value)}" : problem;
    }

    private static string JsonKind(string clrType)
    {
        var nullable = NullableOf().Match(clrType);
        if (nullable.Success) clrType = nullable.Groups[1].Value;
        return clrType switch
        {
            "System.Boolean" => "a boolean",
            "System.String" => "a string",
            "System.Int16" or "System.Int32" or "System.Int64" => $"an integer ({RangeOf(clrType)})",
            "System.UInt16" or "System.UInt32" or "System.UInt64" => $"a non-negative integer ({RangeOf(clrType)})",
            "System.DateTimeOffset" => "an RFC 3339 time string",
            _ when clrType.StartsWith("System.Collections.Generic.List", StringComparison.Ordinal) => "an array",
            _ when clrType.StartsWith("System.Collections.Generic.Dictionary", StringComparison.Ordinal) => "an object",
            _ when clrType.StartsWith("Berth.Oci.ContainerStatus", StringComparison.Ordinal) => "one of creating, created, running, stopped, paused",
            _ when clrType.StartsWith("Berth.Oci.", StringComparison.Ordinal) => "an object",
            _ => clrType,
        };
    }

    private static string RangeOf(string clrType) => clrType switch
    {
        "System.Int16" => "16 bit",
        "System.Int32" => "32 bit",
        "System.Int64" => "64 bit",
        "System.UInt16" => "16 bit",
        "System.UInt32" => "32 bit",
        _ => "64 bit",
    };

    [GeneratedRegex(@"could not be converted to (\S+?)\.?$")]
    private static partial Regex ConversionError();

    [GeneratedRegex(@"^System\.Nullable`1\[(.+)\]$")]
    private static partial Regex NullableOf();
}
