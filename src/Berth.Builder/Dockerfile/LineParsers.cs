using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Berth.Builder.Dockerfile;

/// <summary>
/// The argument splitters of Docker's <c>parser/line_parsers.go</c> and <c>split_command.go</c>. Quotes are
/// kept where Docker keeps them; the shell lexer removes them when the instruction is expanded.
/// </summary>
internal static partial class LineParsers
{
    [GeneratedRegex("[\t\v\f\r ]+")]
    private static partial Regex Whitespace();

    /// <summary>Splits a logical line into keyword (as written), <c>--flags</c> and the trimmed rest.</summary>
    public static (string Keyword, List<string> Flags, string Args) SplitCommand(string line)
    {
        var parts = Whitespace().Split(line.Trim(), 2);
        var keyword = parts[0];
        if (parts.Length < 2)
        {
            return (keyword, [], "");
        }
        var (args, flags) = ExtractBuilderFlags(parts[1]);
        return (keyword, flags, args.Trim());
    }

    /// <summary>Leading words that start with <c>--</c>, quote-processed; a bare <c>--</c> ends the flags.</summary>
    private static (string Remainder, List<string> Flags) ExtractBuilderFlags(string line)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var phase = 0; // 0: between words, 1: in word, 2: in quotes
        var quote = '\0';
        var blankOk = false;
        for (var pos = 0; pos <= line.Length; pos++)
        {
            var ch = pos < line.Length ? line[pos] : '\0';
            if (phase == 0)
            {
                if (pos == line.Length)
                {
                    break;
                }
                if (char.IsWhiteSpace(ch))
                {
                    continue;
                }
                if (ch != '-' || pos + 1 == line.Length || line[pos + 1] != '-')
                {
                    return (line[pos..], words);
                }
                phase = 1;
            }
            if (pos == line.Length)
            {
                if (word.ToString() != "--" && (blankOk || word.Length > 0))
                {
                    words.Add(word.ToString());
                }
                break;
            }
            if (phase == 1)
            {
                if (char.IsWhiteSpace(ch))
                {
                    phase = 0;
                    if (word.ToString() == "--")
                    {
                        return (line[pos..], words);
                    }
                    if (blankOk || word.Length > 0)
                    {
                        words.Add(word.ToString());
                    }
                    word.Clear();
                    blankOk = false;
                    continue;
                }
                if (ch is '\'' or '"')
                {
                    quote = ch;
                    blankOk = true;
                    phase = 2;
                    continue;
                }
                if (ch == '\\')
                {
                    if (pos + 1 == line.Length)
                    {
                        continue;
                    }
                    ch = line[++pos];
                }
                word.Append(ch);
                continue;
            }
            // phase 2: inside quotes
            if (ch == quote)
            {
                phase = 1;
                continue;
            }
            if (ch == '\\')
            {
                if (pos + 1 == line.Length)
                {
                    phase = 1;
                    continue;
                }
                ch = line[++pos];
            }
            word.Append(ch);
        }
        return ("", words);
    }

    /// <summary>Whitespace-separated words (FROM, EXPOSE, shell-form COPY/ADD/VOLUME); quotes are not special.</summary>
    public static List<string> SplitWhitespace(string rest) =>
        rest.Length == 0 ? [] : [.. Whitespace().Split(rest).Where(w => w.Length > 0)];

    public const string NotStringArray = "when using JSON array syntax, arrays must be comprised of strings only";

    /// <summary>
    /// The exec form: a JSON array of strings. Returns null when <paramref name="rest"/> is not valid JSON
    /// or not an array, in which case Docker falls back to the shell form; an array with non-strings is an error.
    /// </summary>
    public static List<string>? TryParseJsonArray(string rest)
    {
        rest = rest.TrimStart();
        if (!rest.StartsWith('['))
        {
            return null;
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(rest);
        }
        catch (JsonException)
        {
            return null;
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                return null;
            }
            var result = new List<string>();
            foreach (var element in document.RootElement.EnumerateArray())
            {
                if (element.ValueKind != JsonValueKind.String)
                {
                    throw new DockerfileSyntaxException(NotStringArray);
                }
                result.Add(element.GetString()!);
            }
            return result;
        }
    }

    /// <summary>
    /// Words separated by whitespace, where quotes group (and are kept) and the escape token keeps the
    /// next character (and is kept) — Docker's parseWords, used by ENV, LABEL and ARG.
    /// </summary>
    public static List<string> ParseWords(string rest, char escapeToken)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var phase = 0; // 0: between words, 1: in word, 2: in quotes
        var quote = '\0';
        var blankOk = false;
        for (var pos = 0; pos <= rest.Length; pos++)
        {
            var ch = pos < rest.Length ? rest[pos] : '\0';
            if (phase == 0)
            {
                if (pos == rest.Length)
                {
                    break;
                }
                if (char.IsWhiteSpace(ch))
                {
                    continue;
                }
                phase = 1;
            }
            if (pos == rest.Length)
            {
                if (blankOk || word.Length > 0)
                {
                    words.Add(word.ToString());
                }
                break;
            }
            if (phase == 1)
            {
                if (char.IsWhiteSpace(ch))
                {
                    phase = 0;
                    if (blankOk || word.Length > 0)
                    {
                        words.Add(word.ToString());
                    }
                    word.Clear();
                    blankOk = false;
                    continue;
                }
                if (ch is '\'' or '"')
                {
                    quote = ch;
                    blankOk = true;
                    phase = 2;
                }
                if (ch == escapeToken)
                {
                    if (pos + 1 == rest.Length)
                    {
                        continue;
                    }
                    word.Append(ch);
                    ch = rest[++pos];
                }
                word.Append(ch);
                continue;
            }
            // phase 2: inside quotes; the escape token is literal inside single quotes
            if (ch == quote)
            {
                phase = 1;
            }
            if (ch == escapeToken && quote != '\'')
            {
                if (pos + 1 == rest.Length)
                {
                    phase = 1;
                    continue;
                }
                word.Append(ch);
                ch = rest[++pos];
            }
            word.Append(ch);
        }
        return words;
    }

    /// <summary>
    /// ENV and LABEL: <c>key=value ...</c>, or the legacy <c>KEY value with spaces</c> when the first word
    /// has no '='. Keys and values keep their quotes.
    /// </summary>
    public static List<KeyValuePair<string, string>> ParseNameValue(string rest, string keyword, char escapeToken)
    {
        var words = ParseWords(rest, escapeToken);
        var pairs = new List<KeyValuePair<string, string>>();
        if (words.Count == 0)
        {
            throw new DockerfileSyntaxException($"{keyword} requires at least one argument");
        }
        if (!words[0].Contains('='))
        {
            var parts = Whitespace().Split(rest, 2);
            if (parts.Length < 2)
            {
                throw new DockerfileSyntaxException($"{keyword} must have two arguments");
            }
            pairs.Add(new(parts[0], parts[1]));
        }
        else
        {
            foreach (var word in words)
            {
                var eq = word.IndexOf('=');
                if (eq < 0)
                {
                    throw new DockerfileSyntaxException($"Syntax error - can't find = in \"{word}\". Must be of the form: name=value");
                }
                pairs.Add(new(word[..eq], word[(eq + 1)..]));
            }
        }
        foreach (var pair in pairs)
        {
            if (pair.Key.Length == 0)
            {
                throw new DockerfileSyntaxException($"{keyword} names can not be blank");
            }
        }
        return pairs;
    }
}
