using System.Text;
using System.Text.RegularExpressions;

namespace Berth.Builder.Dockerfile;

/// <summary>
/// Parses Dockerfile text the way Docker's BuildKit front end does (<c>frontend/dockerfile/parser</c> and
/// <c>instructions/parse.go</c>): parser directives, comments, line continuations with the escape token,
/// heredocs, flags, exec and shell forms. Variables are not expanded here; see <see cref="InstructionExpander"/>.
/// Every problem is a <see cref="DockerfileException"/> naming the file and line.
/// </summary>
public static partial class DockerfileParser
{
    [GeneratedRegex(@"^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")]
    private static partial Regex Directive();

    /// <summary>Parses a whole Dockerfile into its meta ARGs and stages.</summary>
    public static DockerfileDocument Parse(string text, string fileName = "Dockerfile")
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        var (instructions, directives) = ParseInstructions(text, fileName);
        if (instructions.Count == 0)
        {
            throw new DockerfileException(fileName, 0, "file with no instructions");
        }

        var metaArgs = new List<ArgInstruction>();
        var stages = new List<BuildStage>();
        FromInstruction? from = null;
        List<Instruction> body = [];
        foreach (var instruction in instructions)
        {
            if (instruction is FromInstruction next)
            {
                if (from is not null)
                {
                    stages.Add(new BuildStage(stages.Count, from.StageName, from, body));
                }
                if (next.StageName is { } name && stages.Exists(s => s.Name == name))
                {
                    throw new DockerfileException(fileName, next.Line, $"duplicate stage name \"{name}\"");
                }
                from = next;
                body = [];
            }
            else if (from is null)
            {
                if (instruction is not ArgInstruction arg)
                {
                    throw new DockerfileException(fileName, instruction.Line,
                        $"no build stage in current context: {instruction.Keyword} must come after a FROM instruction (only ARG may come before the first FROM)");
                }
                metaArgs.Add(arg);
            }
            else
            {
                body.Add(instruction);
            }
        }
        if (from is null)
        {
            throw new DockerfileException(fileName, 0, "dockerfile contains no stages to build: it needs a FROM instruction");
        }
        stages.Add(new BuildStage(stages.Count, from.StageName, from, body));
        return new DockerfileDocument(directives.EscapeToken, directives.Syntax, metaArgs, stages);
    }

    /// <summary>
    /// Parses ONBUILD triggers inherited from a base image's config (each a <see cref="OnbuildInstruction.TriggerText"/>),
    /// with the default escape token, as Docker does when it runs them.
    /// </summary>
    public static IReadOnlyList<Instruction> ParseTriggers(IEnumerable<string> triggers, string fileName = "ONBUILD")
    {
        ArgumentNullException.ThrowIfNull(triggers);
        var (instructions, _) = ParseInstructions(string.Join('\n', triggers), fileName);
        foreach (var instruction in instructions)
        {
            if (instruction is FromInstruction or OnbuildInstruction or MaintainerInstruction)
            {
                throw new DockerfileException(fileName, instruction.Line, $"{instruction.Keyword} isn't allowed as an ONBUILD trigger");
            }
        }
        return instructions;
    }

    private static (List<Instruction> Instructions, DirectiveState Directives) ParseInstructions(string text, string fileName)
    {
        var lines = SplitLines(text);
        var directives = new DirectiveState();
        var instructions = new List<Instruction>();
        var index = 0;
        var current = 0;
        while (index < lines.Count)
        {
            var raw = lines[index++];
            if (current == 0 && raw.StartsWith('\uFEFF'))
            {
                raw = raw[1..];
            }
            string processed;
            try
            {
                processed = ProcessLine(directives, raw, stripLeadingWhitespace: true);
            }
            catch (DockerfileSyntaxException e)
            {
                throw new DockerfileException(fileName, current + 1, e.Message);
            }
            current++;
            var startLine = current;
            var (first, endOfLine) = TrimContinuation(processed, directives);
            if (endOfLine && first.Length == 0)
            {
                continue;
            }

            var logical = new StringBuilder(first);
            while (!endOfLine && index < lines.Count)
            {
                var next = lines[index++];
                var continuation = ProcessLine(directives, next, stripLeadingWhitespace: false);
                current++;
                // Comment lines inside a continuation are dropped; so are empty lines (Docker only warns).
                if (IsComment(next) || continuation.TrimStart().Length == 0)
                {
                    continue;
                }
                (continuation, endOfLine) = TrimContinuation(continuation, directives);
                logical.Append(continuation);
            }
            var line = logical.ToString();

            try
            {
                var (keyword, flags, args) = LineParsers.SplitCommand(line);
                var heredocs = new List<RawHeredoc>();
                if (line.Contains("<<", StringComparison.Ordinal) && CanContainHeredoc(keyword, args))
                {
                    foreach (var marker in HeredocParser.FromLine(line))
                    {
                        var content = new StringBuilder();
                        var terminated = false;
                        while (index < lines.Count)
                        {
                            var bodyLine = lines[index++];
                            current++;
                            var terminator = bodyLine.TrimEnd('\r', '\n');
                            if (marker.Chomp)
                            {
                                terminator = terminator.TrimStart('\t');
                            }
                            if (terminator == marker.Name)
                            {
                                terminated = true;
                                break;
                            }
                            content.Append(bodyLine);
                        }
                        if (!terminated)
                        {
                            throw new DockerfileSyntaxException($"unterminated heredoc {marker.Name}");
                        }
                        heredocs.Add(new RawHeredoc(marker, content.ToString()));
                    }
                }
                instructions.Add(InstructionBuilder.Build(line, keyword, flags, args, heredocs, startLine, directives.EscapeToken));
            }
            catch (DockerfileSyntaxException e)
            {
                throw new DockerfileException(fileName, startLine, e.Message);
            }
        }
        return (instructions, directives);
    }

    /// <summary>Only RUN, COPY and ADD in shell form (also as an ONBUILD trigger) take heredocs.</summary>
    private static bool CanContainHeredoc(string keyword, string args)
    {
        if (keyword.Equals("onbuild", StringComparison.OrdinalIgnoreCase))
        {
            (keyword, _, args) = LineParsers.SplitCommand(args);
        }
        if (keyword.ToLowerInvariant() is not ("run" or "copy" or "add"))
        {
            return false;
        }
        try
        {
            return LineParsers.TryParseJsonArray(args) is null;
        }
        catch (DockerfileSyntaxException)
        {
            return false;
        }
    }

    /// <summary>Lines with their endings kept, so heredoc bodies reproduce the file byte for byte.</summary>
    private static List<string> SplitLines(string text)
    {
        var lines = new List<string>();
        var start = 0;
        while (start < text.Length)
        {
            var newline = text.IndexOf('\n', start);
            var end = newline < 0 ? text.Length : newline + 1;
            lines.Add(text[start..end]);
            start = end;
        }
        return lines;
    }

    private static string ProcessLine(DirectiveState directives, string token, bool stripLeadingWhitespace)
    {
        token = token.TrimEnd('\r', '\n');
        if (stripLeadingWhitespace)
        {
            token = token.TrimStart();
        }
        directives.Inspect(token);
        return IsComment(token) ? "" : token;
    }

    private static bool IsComment(string line) => line.TrimStart().StartsWith('#');

    private static (string Line, bool EndOfLine) TrimContinuation(string line, DirectiveState directives)
    {
        var match = directives.Continuation.Match(line);
        if (!match.Success)
        {
            return (line, true);
        }
        return (directives.Continuation.Replace(line, "$1"), false);
    }

    /// <summary>
    /// Parser directives (<c># escape=`</c>, <c># syntax=...</c>, <c># check=...</c>) are only recognised
    /// before the first line that is not one, and each at most once.
    /// </summary>
    private sealed class DirectiveState
    {
        private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
        private bool _done;

        public DirectiveState() => SetEscapeToken("\\");

        public char EscapeToken { get; private set; }

        public string? Syntax { get; private set; }

        /// <summary>Matches a trailing escape token (not itself escaped) followed only by blanks.</summary>
        public Regex Continuation { get; private set; } = null!;

        public void Inspect(string line)
        {
            if (_done)
            {
                return;
            }
            if (!line.StartsWith('#'))
            {
                _done = true;
                return;
            }
            var match = Directive().Match(line[1..].TrimStart());
            if (!match.Success)
            {
                _done = true;
                return;
            }
            var key = match.Groups[1].Value.ToLowerInvariant();
            if (key is not ("escape" or "syntax" or "check"))
            {
                _done = true;
                return;
            }
            if (!_seen.Add(key))
            {
                throw new DockerfileSyntaxException($"only one {key} parser directive can be used");
            }
            var value = match.Groups[2].Value;
            if (key == "escape")
            {
                SetEscapeToken(value);
            }
            else if (key == "syntax")
            {
                Syntax = value;
            }
        }

        private void SetEscapeToken(string value)
        {
            if (value is not ("`" or "\\"))
            {
                throw new DockerfileSyntaxException($"invalid escape token '{value}' does not match ` or \\");
            }
            EscapeToken = value[0];
            var e = Regex.Escape(value);
            Continuation = new Regex($"([^{e}]){e}[ \\t]*$|^{e}[ \\t]*$", RegexOptions.CultureInvariant);
        }
    }
}
