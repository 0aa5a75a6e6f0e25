using System.Globalization;
using System.Text.RegularExpressions;
using static Berth.Builder.Dockerfile.BuilderFlags;

namespace Berth.Builder.Dockerfile;

/// <summary>
/// Turns one logical line into a typed <see cref="Instruction"/>, validating arguments and flags the way
/// Docker's <c>instructions/parse.go</c> does. Throws <see cref="DockerfileSyntaxException"/>; the parser adds the location.
/// </summary>
internal static partial class InstructionBuilder
{
    [GeneratedRegex(@"^[a-z][a-z0-9_.\-]*$")]
    private static partial Regex StageName();

    [GeneratedRegex(@"^\s*ONBUILD\s*", RegexOptions.IgnoreCase)]
    private static partial Regex OnbuildPrefix();

    private static readonly decimal MinimumDurationNs = 1_000_000m;

    public static Instruction Build(string line, string keyword, IReadOnlyList<string> flags, string args, IReadOnlyList<RawHeredoc> heredocs, int lineNumber, char escapeToken)
    {
        var original = line.Trim();
        Instruction instruction = keyword.ToLowerInvariant() switch
        {
            "from" => From(flags, args),
            "run" => Run(flags, args, heredocs),
            "cmd" => new CmdInstruction(CommandLineOf(NoFlags(flags, args))) { Line = lineNumber, Original = original },
            "entrypoint" => new EntrypointInstruction(CommandLineOf(NoFlags(flags, args))) { Line = lineNumber, Original = original },
            "copy" => Copy(flags, args, heredocs),
            "add" => Add(flags, args, heredocs),
            "env" => new EnvInstruction(LineParsers.ParseNameValue(NoFlags(flags, args), "ENV", escapeToken)) { Line = lineNumber, Original = original },
            "label" => new LabelInstruction(LineParsers.ParseNameValue(NoFlags(flags, args), "LABEL", escapeToken)) { Line = lineNumber, Original = original },
            "arg" => Arg(flags, args, escapeToken),
            "workdir" => new WorkdirInstruction(ExactlyOne(flags, args, "WORKDIR")) { Line = lineNumber, Original = original },
            "user" => new UserInstruction(ExactlyOne(flags, args, "USER")) { Line = lineNumber, Original = original },
            "stopsignal" => new StopsignalInstruction(ExactlyOne(flags, args, "STOPSIGNAL")) { Line = lineNumber, Original = original },
            "maintainer" => new MaintainerInstruction(ExactlyOne(flags, args, "MAINTAINER")) { Line = lineNumber, Original = original },
            "expose" => Expose(flags, args),
            "volume" => Volume(flags, args),
            "shell" => Shell(flags, args),
            "healthcheck" => Healthcheck(flags, args),
            "onbuild" => Onbuild(original, flags, args, heredocs, lineNumber, escapeToken),
            _ => throw new DockerfileSyntaxException($"unknown instruction: {keyword}"),
        };
        return instruction with { Line = lineNumber, Original = original };
    }

    /// <summary>Refuses any flag (the instruction takes none) and passes the arguments through.</summary>
    private static string NoFlags(IReadOnlyList<string> flags, string args)
    {
        BuilderFlags.Parse(flags);
        return args;
    }

    private static DockerfileSyntaxException AtLeastOne(string keyword) => new($"{keyword} requires at least one argument");

    /// <summary>Exec form when <paramref name="args"/> is a JSON array of strings, else the shell form.</summary>
    private static CommandLine CommandLineOf(string args)
    {
        if (LineParsers.TryParseJsonArray(args) is { } exec)
        {
            return new CommandLine(exec, IsShellForm: false);
        }
        return new CommandLine(args.Length == 0 ? [] : [args], IsShellForm: true);
    }

    private static FromInstruction From(IReadOnlyList<string> flags, string args)
    {
        var parsed = BuilderFlags.Parse(flags, ("platform", Kind.String));
        var words = LineParsers.SplitWhitespace(args);
        if (words.Count == 0)
        {
            throw AtLeastOne("FROM");
        }
        string? stageName = null;
        if (words.Count == 3 && words[1].Equals("as", StringComparison.OrdinalIgnoreCase))
        {
            stageName = words[2].ToLowerInvariant();
            if (!StageName().IsMatch(stageName))
            {
                throw new DockerfileSyntaxException(
                    $"invalid name for build stage: \"{words[2]}\", name can't start with a number or contain symbols");
            }
        }
        else if (words.Count != 1)
        {
            throw new DockerfileSyntaxException("FROM requires either one or three arguments");
        }
        return new FromInstruction(words[0], stageName, parsed.String("platform")) { Line = 0, Original = "" };
    }

    private static RunInstruction Run(IReadOnlyList<string> flags, string args, IReadOnlyList<RawHeredoc> heredocs)
    {
        var parsed = BuilderFlags.Parse(flags, ("mount", Kind.Strings), ("network", Kind.String));
        var network = parsed.String("network");
        if (network is not (null or "default" or "none" or "host"))
        {
            throw new DockerfileSyntaxException($"unsupported network mode \"{network}\" (expected default, none or host)");
        }
        var command = CommandLineOf(args);
        if (command.Args.Count == 0)
        {
            throw AtLeastOne("RUN");
        }
        return new RunInstruction(command, [.. heredocs.Select(h => h.ToHeredoc())], network, parsed.Strings("mount"))
        {
            Line = 0,
            Original = "",
        };
    }

    private static (List<string> Sources, string Destination, List<Heredoc> Heredocs) SourcesAndDestination(string keyword, string args, IReadOnlyList<RawHeredoc> heredocs)
    {
        var json = LineParsers.TryParseJsonArray(args);
        var words = json ?? LineParsers.SplitWhitespace(args);
        if (words.Count < 2)
        {
            throw new DockerfileSyntaxException(
                $"{keyword} requires at least two arguments, but only one was provided. Destination could not be determined");
        }
        var destination = words[^1];
        var sources = new List<string>();
        var inline = new List<Heredoc>();
        if (json is not null)
        {
            sources.AddRange(words.Take(words.Count - 1));
            return (sources, destination, inline);
        }
        if (TryMarker(destination) is not null)
        {
            throw new DockerfileSyntaxException($"{keyword} cannot accept a heredoc as a destination");
        }
        foreach (var source in words.Take(words.Count - 1))
        {
            if (TryMarker(source) is { } marker)
            {
                var body = heredocs.FirstOrDefault(h => h.Marker.Name == marker.Name)?.RawContent ?? "";
                inline.Add(new RawHeredoc(marker, body).ToHeredoc());
            }
            else
            {
                sources.Add(source);
            }
        }
        return (sources, destination, inline);
    }

    private static HeredocMarker? TryMarker(string word)
    {
        try
        {
            return HeredocParser.Parse(word);
        }
        catch (DockerfileSyntaxException)
        {
            return null;
        }
    }

    private static CopyInstruction Copy(IReadOnlyList<string> flags, string args, IReadOnlyList<RawHeredoc> heredocs)
    {
        var parsed = BuilderFlags.Parse(flags,
            ("from", Kind.String), ("chown", Kind.String), ("chmod", Kind.String), ("link", Kind.Bool), ("exclude", Kind.Strings));
        var (sources, destination, inline) = SourcesAndDestination("COPY", args, heredocs);
        return new CopyInstruction(sources, destination, parsed.String("from"), parsed.String("chown"), parsed.String("chmod"),
            parsed.Bool("link"), parsed.Strings("exclude"), inline)
        {
            Line = 0,
            Original = "",
        };
    }

    private static AddInstruction Add(IReadOnlyList<string> flags, string args, IReadOnlyList<RawHeredoc> heredocs)
    {
        var parsed = BuilderFlags.Parse(flags,
            ("chown", Kind.String), ("chmod", Kind.String), ("link", Kind.Bool), ("exclude", Kind.Strings),
            ("checksum", Kind.String), ("keep-git-dir", Kind.Bool));
        var (sources, destination, inline) = SourcesAndDestination("ADD", args, heredocs);
        return new AddInstruction(sources, destination, parsed.String("chown"), parsed.String("chmod"), parsed.Bool("link"),
            parsed.Strings("exclude"), inline, parsed.String("checksum"), parsed.Bool("keep-git-dir"))
        {
            Line = 0,
            Original = "",
        };
    }

    private static ArgInstruction Arg(IReadOnlyList<string> flags, string args, char escapeToken)
    {
        BuilderFlags.Parse(flags);
        var words = LineParsers.ParseWords(args, escapeToken);
        if (words.Count == 0)
        {
            throw AtLeastOne("ARG");
        }
        var definitions = new List<ArgDefinition>();
        foreach (var word in words)
        {
            var eq = word.IndexOf('=');
            var name = eq < 0 ? word : word[..eq];
            if (name.Length == 0)
            {
                throw new DockerfileSyntaxException("ARG names can not be blank");
            }
            definitions.Add(new ArgDefinition(name, eq < 0 ? null : word[(eq + 1)..]));
        }
        return new ArgInstruction(definitions) { Line = 0, Original = "" };
    }

    private static string ExactlyOne(IReadOnlyList<string> flags, string args, string keyword)
    {
        BuilderFlags.Parse(flags);
        if (args.Length == 0)
        {
            throw new DockerfileSyntaxException($"{keyword} requires exactly one argument");
        }
        return args;
    }

    private static ExposeInstruction Expose(IReadOnlyList<string> flags, string args)
    {
        BuilderFlags.Parse(flags);
        var ports = LineParsers.SplitWhitespace(args);
        if (ports.Count == 0)
        {
            throw AtLeastOne("EXPOSE");
        }
        ports.Sort(StringComparer.Ordinal);
        return new ExposeInstruction(ports) { Line = 0, Original = "" };
    }

    private static VolumeInstruction Volume(IReadOnlyList<string> flags, string args)
    {
        BuilderFlags.Parse(flags);
        var paths = LineParsers.TryParseJsonArray(args) ?? LineParsers.SplitWhitespace(args);
        if (paths.Count == 0)
        {
            throw AtLeastOne("VOLUME");
        }
        var trimmed = new List<string>();
        foreach (var path in paths)
        {
            var p = path.Trim();
            if (p.Length == 0)
            {
                throw new DockerfileSyntaxException("VOLUME specified can not be an empty string");
            }
            trimmed.Add(p);
        }
        return new VolumeInstruction(trimmed) { Line = 0, Original = "" };
    }

    private static ShellInstruction Shell(IReadOnlyList<string> flags, string args)
    {
        BuilderFlags.Parse(flags);
        var json = LineParsers.TryParseJsonArray(args);
        if (json is null && args.Length > 0)
        {
            throw new DockerfileSyntaxException("SHELL requires the arguments to be in JSON form");
        }
        if (json is null || json.Count == 0)
        {
            throw AtLeastOne("SHELL");
        }
        return new ShellInstruction(json) { Line = 0, Original = "" };
    }

    private static HealthcheckInstruction Healthcheck(IReadOnlyList<string> flags, string args)
    {
        if (args.Length == 0)
        {
            throw AtLeastOne("HEALTHCHECK");
        }
        var split = 0;
        while (split < args.Length && !char.IsWhiteSpace(args[split]))
        {
            split++;
        }
        var type = args[..split].ToUpperInvariant();
        var rest = args[split..].TrimStart();
        if (type == "NONE")
        {
            BuilderFlags.Parse(flags);
            if (rest.Length != 0)
            {
                throw new DockerfileSyntaxException("HEALTHCHECK NONE takes no arguments");
            }
            return new HealthcheckInstruction(null, null, null, null, null, null) { Line = 0, Original = "" };
        }
        var parsed = BuilderFlags.Parse(flags,
            ("interval", Kind.String), ("timeout", Kind.String), ("start-period", Kind.String),
            ("start-interval", Kind.String), ("retries", Kind.String));
        if (type != "CMD")
        {
            throw new DockerfileSyntaxException($"Unknown type \"{type}\" in HEALTHCHECK (try CMD)");
        }
        var test = CommandLineOf(rest);
        if (test.Args.Count == 0)
        {
            throw new DockerfileSyntaxException("Missing command after HEALTHCHECK CMD");
        }
        int? retries = null;
        if (parsed.String("retries") is { Length: > 0 } retriesText)
        {
            if (!int.TryParse(retriesText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            {
                throw new DockerfileSyntaxException($"invalid value for --retries: \"{retriesText}\" is not an integer");
            }
            if (value < 0)
            {
                throw new DockerfileSyntaxException($"--retries cannot be negative ({value})");
            }
            retries = value;
        }
        return new HealthcheckInstruction(
            test,
            Interval(parsed, "interval"),
            Interval(parsed, "timeout"),
            Interval(parsed, "start-period"),
            Interval(parsed, "start-interval"),
            retries)
        {
            Line = 0,
            Original = "",
        };
    }

    /// <summary>A HEALTHCHECK duration: absent or 0 means "inherit" (null); otherwise at least 1ms.</summary>
    private static TimeSpan? Interval(BuilderFlags flags, string name)
    {
        var text = flags.String(name);
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }
        decimal ns;
        try
        {
            ns = GoDuration.ParseNanoseconds(text);
        }
        catch (FormatException e)
        {
            throw new DockerfileSyntaxException($"invalid value for --{name}: {e.Message}");
        }
        if (ns == 0)
        {
            return null;
        }
        if (ns < MinimumDurationNs)
        {
            throw new DockerfileSyntaxException($"Interval \"{name}\" cannot be less than 1ms");
        }
        return GoDuration.ToTimeSpan(ns);
    }

    private static OnbuildInstruction Onbuild(string original, IReadOnlyList<string> flags, string args, IReadOnlyList<RawHeredoc> heredocs, int lineNumber, char escapeToken)
    {
        BuilderFlags.Parse(flags);
        if (args.Length == 0)
        {
            throw AtLeastOne("ONBUILD");
        }
        var (keyword, triggerFlags, triggerArgs) = LineParsers.SplitCommand(args);
        var upper = keyword.ToUpperInvariant();
        switch (upper)
        {
            case "ONBUILD":
                throw new DockerfileSyntaxException("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
            case "MAINTAINER" or "FROM":
                throw new DockerfileSyntaxException($"{upper} isn't allowed as an ONBUILD trigger");
        }
        var trigger = Build(args, keyword, triggerFlags, triggerArgs, heredocs, lineNumber, escapeToken);
        var text = OnbuildPrefix().Replace(original, "");
        foreach (var heredoc in heredocs)
        {
            text += "\n" + heredoc.RawContent + heredoc.Marker.Name;
        }
        return new OnbuildInstruction(trigger, text) { Line = 0, Original = "" };
    }
}
