using System.Text;
using System.Text.RegularExpressions;

namespace Berth.Builder.Context;

/// <summary>
/// A <c>.dockerignore</c> file, read and matched like Docker's (moby/patternmatcher <c>ignorefile.ReadAll</c>
/// and <c>MatchesOrParentMatches</c>): a path is excluded when the last pattern that matches it, or one of its
/// parent directories, is not a <c>!</c> exception.
/// </summary>
public sealed class DockerIgnore
{
    private readonly IReadOnlyList<Pattern> _patterns;

    private DockerIgnore(IReadOnlyList<Pattern> patterns) => _patterns = patterns;

    /// <summary>An ignore file that excludes nothing.</summary>
    public static DockerIgnore Empty { get; } = new([]);

    /// <summary>The cleaned patterns in file order, exceptions prefixed with <c>!</c>.</summary>
    public IReadOnlyList<string> Patterns => [.. _patterns.Select(p => p.Exclusion ? "!" + p.Cleaned : p.Cleaned)];

    /// <summary>True when some pattern is a <c>!</c> exception.</summary>
    public bool HasExceptions => _patterns.Any(p => p.Exclusion);

    /// <exception cref="ArgumentException">A malformed pattern (a lone <c>!</c>, an unclosed <c>[</c>).</exception>
    public static DockerIgnore Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var patterns = new List<Pattern>();
        var lineNumber = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine;
            if (lineNumber == 0 && line.StartsWith('\uFEFF'))
            {
                line = line[1..];
            }
            lineNumber++;
            // A comment is a '#' in the first column; "  # x" is a pattern, as in Docker.
            if (line.StartsWith('#'))
            {
                continue;
            }
            var pattern = line.Trim();
            if (pattern.Length == 0)
            {
                continue;
            }
            var exclusion = pattern[0] == '!';
            if (exclusion)
            {
                pattern = pattern[1..].Trim();
                if (pattern.Length == 0)
                {
                    throw new ArgumentException($".dockerignore line {lineNumber}: illegal exclusion pattern: \"!\"");
                }
            }
            pattern = CleanPath(pattern);
            if (pattern.Length > 1 && pattern[0] == '/')
            {
                pattern = pattern[1..];
            }
            try
            {
                patterns.Add(new Pattern(pattern, exclusion));
            }
            catch (ArgumentException)
            {
                throw new ArgumentException($".dockerignore line {lineNumber}: syntax error in pattern \"{line.Trim()}\"");
            }
        }
        return new DockerIgnore(patterns);
    }

    /// <summary>Whether <paramref name="relativePath"/> (slash-separated, relative to the context root) is left out of the context.</summary>
    public bool IsExcluded(string relativePath)
    {
        ArgumentNullException.ThrowIfNull(relativePath);
        var file = CleanPath(relativePath);
        if (file.Length > 1 && file[0] == '/')
        {
            file = file[1..];
        }
        if (file == ".")
        {
            return false;
        }
        var slash = file.LastIndexOf('/');
        var parentDirs = slash < 0 ? [] : file[..slash].Split('/');

        var matched = false;
        foreach (var pattern in _patterns)
        {
            // An inclusion can only change an unmatched path, an exception only a matched one.
            if (pattern.Exclusion != matched)
            {
                continue;
            }
            var match = pattern.Matches(file);
            for (var i = 0; !match && i < parentDirs.Length; i++)
            {
                match = pattern.Matches(string.Join('/', parentDirs, 0, i + 1));
            }
            if (match)
            {
                matched = !pattern.Exclusion;
            }
        }
        return matched;
    }

    /// <summary>
    /// Whether an exception pattern could re-include something below <paramref name="excludedDirectory"/>, so a
    /// context walker must descend into it even though the directory itself is excluded. Conservative: true
    /// whenever an exception's leading components match the directory's, or it contains <c>**</c> before that.
    /// </summary>
    public bool MayIncludeUnder(string excludedDirectory)
    {
        ArgumentNullException.ThrowIfNull(excludedDirectory);
        var dir = CleanPath(excludedDirectory).TrimStart('/');
        if (dir is "." or "")
        {
            return HasExceptions;
        }
        var dirParts = dir.Split('/');
        foreach (var pattern in _patterns)
        {
            if (pattern.Exclusion && pattern.CouldMatchBelow(dirParts))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Go's path.Clean for slash-separated paths.</summary>
    internal static string CleanPath(string path)
    {
        if (path.Length == 0)
        {
            return ".";
        }
        var rooted = path[0] == '/';
        var parts = new List<string>();
        foreach (var segment in path.Split('/'))
        {
            if (segment.Length == 0 || segment == ".")
            {
                continue;
            }
            if (segment == "..")
            {
                if (parts.Count > 0 && parts[^1] != "..")
                {
                    parts.RemoveAt(parts.Count - 1);
                }
                else if (!rooted)
                {
                    parts.Add("..");
                }
                continue;
            }
            parts.Add(segment);
        }
        var joined = string.Join('/', parts);
        if (rooted)
        {
            return "/" + joined;
        }
        return joined.Length == 0 ? "." : joined;
    }

    private enum MatchType
    {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }

    /// <summary>One pattern, compiled the way patternmatcher's Pattern.compile does.</summary>
    private sealed class Pattern
    {
        private readonly MatchType _type;
        private readonly Regex? _regex;
        private readonly string[] _dirs;

        public Pattern(string cleaned, bool exclusion)
        {
            Cleaned = cleaned;
            Exclusion = exclusion;
            _dirs = cleaned.Split('/');
            (_type, var regex) = Compile(cleaned);
            _regex = regex is null ? null : new Regex(regex, RegexOptions.CultureInvariant);
        }

        public string Cleaned { get; }

        public bool Exclusion { get; }

        public bool Matches(string path) => _type switch
        {
            MatchType.Exact => path == Cleaned,
            MatchType.Prefix => path.StartsWith(Cleaned[..^2], StringComparison.Ordinal),
            MatchType.Suffix => path.EndsWith(Cleaned[2..], StringComparison.Ordinal)
                || (Cleaned[2..].StartsWith('/') && path == Cleaned[3..]),
            _ => _regex!.IsMatch(path),
        };

        public bool CouldMatchBelow(string[] dirParts)
        {
            for (var i = 0; i < dirParts.Length; i++)
            {
                if (i >= _dirs.Length)
                {
                    // The pattern is shallower than the directory: it matches the directory or a parent, or nothing.
                    return false;
                }
                if (_dirs[i].Contains("**", StringComparison.Ordinal))
                {
                    return true;
                }
                var (type, regex) = Compile(_dirs[i]);
                var componentMatches = type == MatchType.Regex
                    ? Regex.IsMatch(dirParts[i], regex!, RegexOptions.CultureInvariant)
                    : dirParts[i] == _dirs[i];
                if (!componentMatches)
                {
                    return false;
                }
            }
            return true;
        }

        private static (MatchType Type, string? Regex) Compile(string pattern)
        {
            var regex = new StringBuilder("^");
            var type = MatchType.Exact;
            for (var i = 0; i < pattern.Length; i++)
            {
                var ch = pattern[i];
                if (ch == '*')
                {
                    if (i + 1 < pattern.Length && pattern[i + 1] == '*')
                    {
                        var first = i == 0;
                        i++;
                        // "**/" is treated as "**".
                        if (i + 1 < pattern.Length && pattern[i + 1] == '/')
                        {
                            i++;
                        }
                        if (i + 1 >= pattern.Length)
                        {
                            // A trailing "**" accepts everything, as in .gitignore.
                            if (type == MatchType.Exact)
                            {
                                type = MatchType.Prefix;
                            }
                            else
                            {
                                regex.Append(".*");
                                type = MatchType.Regex;
                            }
                        }
                        else
                        {
                            // Any number of directories, including none.
                            regex.Append("(.*/)?");
                            type = MatchType.Regex;
                        }
                        if (first)
                        {
                            type = MatchType.Suffix;
                        }
                    }
                    else
                    {
                        regex.Append("[^/]*");
                        type = MatchType.Regex;
                    }
                }
                else if (ch == '?')
                {
                    regex.Append("[^/]");
                    type = MatchType.Regex;
                }
                else if (ch is '.' or '+' or '(' or ')' or '|' or '{' or '}' or '$')
                {
                    regex.Append('\\').Append(ch);
                }
                else if (ch == '\\')
                {
                    if (i + 1 < pattern.Length)
                    {
                        regex.Append('\\').Append(pattern[++i]);
                        type = MatchType.Regex;
                    }
                    else
                    {
                        regex.Append("\\\\");
                    }
                }
                else if (ch is '[' or ']')
                {
                    regex.Append(ch);
                    type = MatchType.Regex;
                }
                else
                {
                    regex.Append(ch);
                }
            }
            if (type != MatchType.Regex)
            {
                return (type, null);
            }
            regex.Append('$');
            var text = regex.ToString();
            // Validate now so a malformed pattern fails at parse time, like patternmatcher.New.
            _ = new Regex(text, RegexOptions.CultureInvariant);
            return (type, text);
        }
    }
}
