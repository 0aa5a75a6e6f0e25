namespace Berth.Oci;

/// <summary>
/// A config.json that cannot be used. The message names the file and the JSON path of the field,
/// e.g. <c>config.json: linux.namespaces[2].type: unknown namespace type "foo"</c>.
/// </summary>
public sealed class SpecException : Exception
{
    public const string DefaultFile = "config.json";

    public SpecException(string? field, string problem, string file = DefaultFile, int? line = null, Exception? inner = null)
        : base(Format(file, field, line, problem), inner)
    {
        File = file;
        Field = field;
        Line = line;
        Problem = problem;
    }

    private SpecException(string message, string file, Exception? inner)
        : base(message, inner)
    {
        File = file;
        Problem = message;
    }

    /// <summary>The bundle has no config.json (or it cannot be read).</summary>
    public static SpecException Unreadable(string message, string file = DefaultFile, Exception? inner = null) =>
        new(message, file, inner);

    /// <summary>The file name the message starts with (not a full path).</summary>
    public string File { get; }

    /// <summary>The JSON path of the field at fault (<c>process.args</c>), or null for the whole document.</summary>
    public string? Field { get; }

    /// <summary>The 1-based line of a JSON syntax or type error.</summary>
    public int? Line { get; }

    /// <summary>The message without the file and field prefix.</summary>
    public string Problem { get; }

    private static string Format(string file, string? field, int? line, string problem)
    {
        var prefix = file;
        if (!string.IsNullOrEmpty(field)) prefix += ": " + field;
        if (line is int l) prefix += $": line {l}";
        return $"{prefix}: {problem}";
    }
}
