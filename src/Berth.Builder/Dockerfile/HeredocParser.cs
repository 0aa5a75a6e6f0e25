using System.Text.RegularExpressions;

namespace Berth.Builder.Dockerfile;

/// <summary>A heredoc marker found on an instruction line, before its body is read.</summary>
internal sealed record HeredocMarker(string Name, bool Expand, bool Chomp);

/// <summary>A heredoc with its body exactly as written (tabs not yet stripped).</summary>
internal sealed record RawHeredoc(HeredocMarker Marker, string RawContent)
{
    public Heredoc ToHeredoc() => new(
        Marker.Name,
        Marker.Chomp ? HeredocParser.StripLeadingTabs(RawContent) : RawContent,
        Marker.Expand,
        Marker.Chomp);
}

/// <summary>Heredoc detection as in Docker's parser.go (heredocsFromLine, ParseHeredoc).</summary>
internal static partial class HeredocParser
{
    [GeneratedRegex(@"^([0-9]*)<<(-?)([^<]*)\z")]
    private static partial Regex Marker();

    [GeneratedRegex(@"^\t+", RegexOptions.Multiline)]
    private static partial Regex LeadingTabs();

    private static string? Lookup(string _) => null;

    public static string StripLeadingTabs(string content) => LeadingTabs().Replace(content, "");

    /// <summary>The heredoc markers among the words of <paramref name="line"/>, in order.</summary>
    public static List<HeredocMarker> FromLine(string line)
    {
        // Lex with everything kept raw so a quoted "<<EOF" stays one word that does not look like a marker.
        var lex = new ShellLex('\\') { RawQuotes = true, RawEscapes = true, SkipUnsetEnv = true };
        IReadOnlyList<string> words;
        try
        {
            words = lex.ProcessWords(line, Lookup);
        }
        catch (ArgumentException)
        {
            return [];
        }
        var markers = new List<HeredocMarker>();
        foreach (var word in words)
        {
            if (Parse(word) is { } marker)
            {
                markers.Add(marker);
            }
        }
        return markers;
    }

    /// <summary>The marker <paramref name="word"/> denotes (<c>&lt;&lt;EOF</c>, <c>&lt;&lt;-EOF</c>, <c>&lt;&lt;"EOF"</c>), or null.</summary>
    public static HeredocMarker? Parse(string word)
    {
        var match = Marker().Match(word);
        if (!match.Success)
        {
            return null;
        }
        var chomp = match.Groups[2].Value == "-";
        var rest = match.Groups[3].Value;
        if (rest.Length == 0)
        {
            return null;
        }
        // Lex the delimiter with and without quote removal: if any part was quoted, the body is not expanded.
        IReadOnlyList<string> words;
        IReadOnlyList<string> rawWords;
        try
        {
            words = new ShellLex('\\') { SkipUnsetEnv = true }.ProcessWords(rest, Lookup);
            if (words.Count != 1)
            {
                return null;
            }
            rawWords = new ShellLex('\\') { SkipUnsetEnv = true, RawQuotes = true }.ProcessWords(rest, Lookup);
        }
        catch (ArgumentException e)
        {
            throw new DockerfileSyntaxException(e.Message);
        }
        if (rawWords.Count != 1)
        {
            throw new DockerfileSyntaxException($"internal lexing of heredoc produced inconsistent results: {rest}");
        }
        var expand = QuoteCount(words[0]) == QuoteCount(rawWords[0]);
        return new HeredocMarker(words[0], expand, chomp);
    }

    private static int QuoteCount(string s) => s.Count(c => c is '\'' or '"');
}
