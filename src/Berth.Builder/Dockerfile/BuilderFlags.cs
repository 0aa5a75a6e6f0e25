namespace Berth.Builder.Dockerfile;

/// <summary>
/// The <c>--name=value</c> flags of one instruction, checked against the flags that instruction accepts
/// (Docker's <c>instructions/bflag.go</c>): unknown, duplicate, value-less and non-boolean flags are refused.
/// </summary>
internal sealed class BuilderFlags
{
    public enum Kind
    {
        Bool,
        String,
        Strings,
    }

    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
    private readonly Dictionary<string, bool> _bools = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _lists = new(StringComparer.Ordinal);

    private BuilderFlags()
    {
    }

    public static BuilderFlags Parse(IReadOnlyList<string> args, params (string Name, Kind Kind)[] accepted)
    {
        var flags = new BuilderFlags();
        var kinds = accepted.ToDictionary(a => a.Name, a => a.Kind, StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in args)
        {
            if (!raw.StartsWith("--", StringComparison.Ordinal))
            {
                throw new DockerfileSyntaxException($"Arg should start with -- : {raw}");
            }
            if (raw == "--")
            {
                break;
            }
            var arg = raw[2..];
            string? value = null;
            var eq = arg.IndexOf('=');
            if (eq >= 0)
            {
                value = arg[(eq + 1)..];
                arg = arg[..eq];
            }
            if (!kinds.TryGetValue(arg, out var kind))
            {
                throw new DockerfileSyntaxException($"Unknown flag: {arg}");
            }
            if (!used.Add(arg) && kind != Kind.Strings)
            {
                throw new DockerfileSyntaxException($"Duplicate flag specified: {arg}");
            }
            switch (kind)
            {
                case Kind.Bool:
                    if (value is "")
                    {
                        throw new DockerfileSyntaxException($"Missing a value on flag: {arg}");
                    }
                    flags._bools[arg] = value?.ToLowerInvariant() switch
                    {
                        null or "true" => true,
                        "false" => false,
                        _ => throw new DockerfileSyntaxException($"Expecting boolean value for flag {arg}, not: {value}"),
                    };
                    break;
                case Kind.String:
                    flags._strings[arg] = value ?? throw new DockerfileSyntaxException($"Missing a value on flag: {arg}");
                    break;
                case Kind.Strings:
                    if (value is null)
                    {
                        throw new DockerfileSyntaxException($"Missing a value on flag: {arg}");
                    }
                    if (!flags._lists.TryGetValue(arg, out var list))
                    {
                        flags._lists[arg] = list = [];
                    }
                    list.Add(value);
                    break;
            }
        }
        return flags;
    }

    /// <summary>The flag's value, or null when it was not given.</summary>
    public string? String(string name) => _strings.GetValueOrDefault(name);

    public bool Bool(string name) => _bools.GetValueOrDefault(name);

    public IReadOnlyList<string> Strings(string name) => _lists.TryGetValue(name, out var list) ? list : [];
}
