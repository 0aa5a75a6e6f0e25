using System.Text;
using System.Text.RegularExpressions;

namespace Berth.Builder.Dockerfile;

/// <summary>
/// Word splitting and variable expansion with the semantics of Docker's <c>shell/lex.go</c>: single and
/// double quotes, the escape token, <c>$VAR</c>, <c>${VAR}</c> and the <c>:-</c> <c>-</c> <c>:+</c> <c>+</c>
/// <c>:?</c> <c>?</c> <c>#</c> <c>##</c> <c>%</c> <c>%%</c> <c>/</c> <c>//</c> modifiers. Unset variables
/// expand to the empty string. Errors are <see cref="ArgumentException"/>s naming the word.
/// </summary>
/// <remarks>Stateless between calls and safe to share.</remarks>
public sealed class ShellLex
{
    public ShellLex(char escapeToken = '\\')
    {
        if (escapeToken is not ('\\' or '`'))
        {
            throw new ArgumentException($"invalid escape token '{escapeToken}' does not match ` or \\", nameof(escapeToken));
        }
        EscapeToken = escapeToken;
    }

    public char EscapeToken { get; }

    // The parser's heredoc detection needs Docker's raw modes; they are not part of the public surface.
    internal bool RawQuotes { get; init; }
    internal bool RawEscapes { get; init; }
    internal bool SkipUnsetEnv { get; init; }

    /// <summary>Expands <paramref name="word"/> and removes quotes, keeping inner whitespace.</summary>
    /// <param name="lookup">Returns a variable's value, or null when it is unset.</param>
    public string ProcessWord(string word, Func<string, string?> lookup) => Process(word, lookup).Word;

    /// <summary>Expands <paramref name="line"/> and splits it into words on unquoted whitespace.</summary>
    public IReadOnlyList<string> ProcessWords(string line, Func<string, string?> lookup) => Process(line, lookup).Words;

    private (string Word, IReadOnlyList<string> Words) Process(string source, Func<string, string?> lookup)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(lookup);
        var worker = new Worker(this, source, lookup);
        try
        {
            var (word, words) = worker.ProcessStopOn(null, RawEscapes);
            return (word, words);
        }
        catch (LexException e)
        {
            throw new ArgumentException($"failed to process \"{source}\": {e.Message}");
        }
    }

    private sealed class LexException(string message) : Exception(message);

    private sealed class Worker(ShellLex lex, string src, Func<string, string?> lookup)
    {
        private int _pos;
        private bool _rawEscapes = lex.RawEscapes;

        private bool AtEnd => _pos >= src.Length;

        private int Peek() => _pos < src.Length ? src[_pos] : -1;

        public (string Word, List<string> Words) ProcessStopOn(char? stopChar, bool rawEscapes)
        {
            var result = new StringBuilder();
            var words = new WordsBuilder();
            var saved = _rawEscapes;
            _rawEscapes = rawEscapes;
            try
            {
                while (!AtEnd)
                {
                    var ch = src[_pos];
                    if (stopChar is { } stop && ch == stop)
                    {
                        _pos++;
                        return (result.ToString(), words.GetWords());
                    }
                    if (ch == '$')
                    {
                        var value = ProcessDollar();
                        result.Append(value);
                        words.AddString(value);
                    }
                    else if (ch == '\'')
                    {
                        var value = ProcessSingleQuote();
                        result.Append(value);
                        words.AddRawString(value);
                    }
                    else if (ch == '"')
                    {
                        var value = ProcessDoubleQuote();
                        result.Append(value);
                        words.AddRawString(value);
                    }
                    else
                    {
                        _pos++;
                        if (ch == lex.EscapeToken)
                        {
                            if (_rawEscapes)
                            {
                                words.AddRawChar(ch);
                                result.Append(ch);
                            }
                            // The escape token escapes the next character; at the end of the word it is dropped.
                            if (AtEnd)
                            {
                                break;
                            }
                            ch = src[_pos++];
                            words.AddRawChar(ch);
                        }
                        else
                        {
                            words.AddChar(ch);
                        }
                        result.Append(ch);
                    }
                }
                if (stopChar is { } missing)
                {
                    throw new LexException($"unexpected end of statement while looking for matching {missing}");
                }
                return (result.ToString(), words.GetWords());
            }
            finally
            {
                _rawEscapes = saved;
            }
        }

        private string ProcessSingleQuote()
        {
            // Everything between single quotes is literal; a single quote cannot be escaped inside them.
            var result = new StringBuilder();
            _pos++;
            if (lex.RawQuotes)
            {
                result.Append('\'');
            }
            while (true)
            {
                if (AtEnd)
                {
                    throw new LexException("unexpected end of statement while looking for matching single-quote");
                }
                var ch = src[_pos++];
                if (ch == '\'')
                {
                    if (lex.RawQuotes)
                    {
                        result.Append(ch);
                    }
                    return result.ToString();
                }
                result.Append(ch);
            }
        }

        private string ProcessDoubleQuote()
        {
            // Literal except $ and the escape token, which escapes only ", $ and itself.
            var result = new StringBuilder();
            _pos++;
            if (lex.RawQuotes)
            {
                result.Append('"');
            }
            while (true)
            {
                var next = Peek();
                if (next == -1)
                {
                    throw new LexException("unexpected end of statement while looking for matching double-quote");
                }
                if (next == '"')
                {
                    _pos++;
                    if (lex.RawQuotes)
                    {
                        result.Append('"');
                    }
                    return result.ToString();
                }
                if (next == '$')
                {
                    result.Append(ProcessDollar());
                    continue;
                }
                var ch = src[_pos++];
                if (ch == lex.EscapeToken)
                {
                    if (_rawEscapes)
                    {
                        result.Append(ch);
                    }
                    var after = Peek();
                    if (after == -1)
                    {
                        continue;
                    }
                    if (after == '"' || after == '$' || after == lex.EscapeToken)
                    {
                        ch = src[_pos++];
                    }
                }
                result.Append(ch);
            }
        }

        private string? GetEnv(string name) => lookup(name);

        private string ProcessDollar()
        {
            _pos++;
            if (Peek() != '{')
            {
                var plainName = ProcessName();
                if (plainName.Length == 0)
                {
                    return "$";
                }
                var plainValue = GetEnv(plainName);
                if (plainValue is null && lex.SkipUnsetEnv)
                {
                    return "$" + plainName;
                }
                return plainValue ?? "";
            }

            _pos++;
            switch (Peek())
            {
                case -1:
                    throw new LexException("syntax error: missing '}'");
                case '{' or '}' or ':':
                    throw new LexException("syntax error: bad substitution");
            }
            var name = ProcessName();
            if (AtEnd)
            {
                throw new LexException("syntax error: missing '}'");
            }
            var ch = src[_pos++];
            var modifier = ch.ToString();
            var nullIsUnset = false;

            if (ch == '}')
            {
                var value = GetEnv(name);
                if (value is null && lex.SkipUnsetEnv)
                {
                    return "${" + name + "}";
                }
                return value ?? "";
            }

            if (ch == ':')
            {
                nullIsUnset = true;
                if (AtEnd)
                {
                    throw new LexException("syntax error: missing '}'");
                }
                ch = src[_pos++];
                modifier += ch;
            }
            else if (ch == '/')
            {
                return ProcessReplace(name);
            }
            else if (ch is not ('+' or '-' or '?' or '#' or '%'))
            {
                throw new LexException($"unsupported modifier ({modifier}) in substitution");
            }

            string word;
            try
            {
                word = ProcessStopOn('}', rawEscapes: ch is '#' or '%').Word;
            }
            catch (LexException) when (AtEnd)
            {
                throw new LexException("syntax error: missing '}'");
            }

            var current = GetEnv(name);
            var set = current is not null;
            if (!set && lex.SkipUnsetEnv)
            {
                return "${" + name + modifier + word + "}";
            }
            current ??= "";
            switch (ch)
            {
                case '-':
                    return !set || (nullIsUnset && current.Length == 0) ? word : current;
                case '+':
                    return !set || (nullIsUnset && current.Length == 0) ? "" : word;
                case '?':
                    if (!set)
                    {
                        throw new LexException($"{name}: {(word.Length > 0 ? word : "is not allowed to be unset")}");
                    }
                    if (nullIsUnset && current.Length == 0)
                    {
                        throw new LexException($"{name}: {(word.Length > 0 ? word : "is not allowed to be empty")}");
                    }
                    return current;
                case '#' or '%':
                    // # and % remove the shortest match, ## and %% the longest.
                    var greedy = word.Length > 0 && word[0] == ch;
                    if (greedy)
                    {
                        word = word[1..];
                    }
                    return ch == '#' ? TrimPrefix(word, current, greedy) : TrimSuffix(word, current, greedy);
                default:
                    throw new LexException($"unsupported modifier ({modifier}) in substitution");
            }
        }

        private string ProcessReplace(string name)
        {
            var replaceAll = Peek() == '/';
            if (replaceAll)
            {
                _pos++;
            }
            string pattern;
            try
            {
                pattern = ProcessStopOn('/', rawEscapes: true).Word;
            }
            catch (LexException) when (AtEnd)
            {
                throw new LexException("syntax error: missing '/' in ${}");
            }
            string replacement;
            try
            {
                replacement = ProcessStopOn('}', rawEscapes: true).Word;
            }
            catch (LexException) when (AtEnd)
            {
                throw new LexException("syntax error: missing '}'");
            }
            var value = GetEnv(name);
            if (value is null && lex.SkipUnsetEnv)
            {
                return "${" + name + "/" + pattern + "/" + replacement + "}";
            }
            value ??= "";
            var regex = ShellPattern(pattern, anchoredWhole: false);
            if (replaceAll)
            {
                return regex.Replace(value, _ => replacement);
            }
            var match = regex.Match(value);
            return match.Success ? value[..match.Index] + replacement + value[(match.Index + match.Length)..] : value;
        }

        private string ProcessName()
        {
            // A name is letters, digits and _; a leading digit reads only digits ($1); special parameters are one character.
            var start = _pos;
            while (!AtEnd)
            {
                var ch = src[_pos];
                if (_pos == start && char.IsDigit(ch))
                {
                    while (!AtEnd && char.IsDigit(src[_pos]))
                    {
                        _pos++;
                    }
                    return src[start.._pos];
                }
                if (_pos == start && ch is '@' or '*' or '#' or '?' or '-' or '$' or '!' or '0')
                {
                    _pos++;
                    return ch.ToString();
                }
                if (!char.IsLetterOrDigit(ch) && ch != '_')
                {
                    break;
                }
                _pos++;
            }
            return src[start.._pos];
        }

        private static string TrimPrefix(string pattern, string value, bool longest)
        {
            var regex = ShellPattern(pattern, anchoredWhole: true);
            if (longest)
            {
                for (var i = value.Length; i >= 0; i--)
                {
                    if (regex.IsMatch(value[..i]))
                    {
                        return value[i..];
                    }
                }
            }
            else
            {
                for (var i = 0; i <= value.Length; i++)
                {
                    if (regex.IsMatch(value[..i]))
                    {
                        return value[i..];
                    }
                }
            }
            return value;
        }

        private static string TrimSuffix(string pattern, string value, bool longest)
        {
            var regex = ShellPattern(pattern, anchoredWhole: true);
            if (longest)
            {
                for (var i = 0; i <= value.Length; i++)
                {
                    if (regex.IsMatch(value[i..]))
                    {
                        return value[..i];
                    }
                }
            }
            else
            {
                for (var i = value.Length; i >= 0; i--)
                {
                    if (regex.IsMatch(value[i..]))
                    {
                        return value[..i];
                    }
                }
            }
            return value;
        }

        /// <summary>A shell wildcard pattern (* and ?, no brackets) as a regex, like lex.go's convertShellPatternToRegex.</summary>
        private static Regex ShellPattern(string pattern, bool anchoredWhole)
        {
            var sb = new StringBuilder();
            if (anchoredWhole)
            {
                sb.Append("^(?:");
            }
            for (var i = 0; i < pattern.Length; i++)
            {
                var ch = pattern[i];
                switch (ch)
                {
                    case '*':
                        sb.Append(".*");
                        continue;
                    case '?':
                        sb.Append('.');
                        continue;
                    case '\\':
                        // \} and \/ inside ${} are escapes of the ${} syntax, not of the pattern.
                        if (i + 1 < pattern.Length && pattern[i + 1] is '}' or '/')
                        {
                            continue;
                        }
                        if (i + 1 >= pattern.Length || pattern[i + 1] is not ('*' or '?' or '\\'))
                        {
                            var bad = i + 1 < pattern.Length ? pattern[i + 1].ToString() : "";
                            throw new LexException($"invalid pattern ({pattern}) in substitution: invalid escape '\\{bad}'");
                        }
                        sb.Append('\\').Append(pattern[++i]);
                        continue;
                    case '[' or ']' or '{' or '}' or '.' or '+' or '(' or ')' or '|' or '^' or '$':
                        sb.Append('\\').Append(ch);
                        continue;
                    default:
                        sb.Append(ch);
                        continue;
                }
            }
            if (anchoredWhole)
            {
                sb.Append(")$");
            }
            return new Regex(sb.ToString(), RegexOptions.CultureInvariant);
        }
    }

    /// <summary>Accumulates words the way lex.go's wordsStruct does: expanded text splits on whitespace, quoted text does not.</summary>
    private sealed class WordsBuilder
    {
        private readonly List<string> _words = [];
        private readonly StringBuilder _word = new();
        private bool _inWord;

        public void AddChar(char ch)
        {
            if (char.IsWhiteSpace(ch))
            {
                if (_inWord && _word.Length != 0)
                {
                    _words.Add(_word.ToString());
                    _word.Clear();
                    _inWord = false;
                }
            }
            else
            {
                AddRawChar(ch);
            }
        }

        public void AddRawChar(char ch)
        {
            _word.Append(ch);
            _inWord = true;
        }

        public void AddString(string s)
        {
            foreach (var ch in s)
            {
                AddChar(ch);
            }
        }

        public void AddRawString(string s)
        {
            _word.Append(s);
            _inWord = true;
        }

        public List<string> GetWords()
        {
            if (_word.Length > 0)
            {
                _words.Add(_word.ToString());
                _word.Clear();
                _inWord = false;
            }
            return _words;
        }
    }
}
