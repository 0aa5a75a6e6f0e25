using Berth.Builder.Dockerfile;

namespace Berth.Builder.Tests.Dockerfile;

public class ShellLexTests
{
    private static readonly Dictionary<string, string> Env = new()
    {
        ["FOO"] = "/bar",
        ["EMPTY"] = "",
        ["WORDS"] = "a b  c",
        ["PATHV"] = "a/b/c.tar.gz",
        ["x_1"] = "under",
    };

    private static string? Lookup(string name) => Env.TryGetValue(name, out var v) ? v : null;

    private static string Word(string word, char escape = '\\') => new ShellLex(escape).ProcessWord(word, Lookup);

    private static IReadOnlyList<string> Words(string line) => new ShellLex().ProcessWords(line, Lookup);

    [Theory]
    [InlineData("$FOO", "/bar")]
    [InlineData("${FOO}", "/bar")]
    [InlineData("${FOO}/baz", "/bar/baz")]
    [InlineData("$FOO/baz", "/bar/baz")]
    [InlineData("a${x_1}b", "aunderb")]
    [InlineData("$x_1", "under")]
    [InlineData("$UNSET", "")]
    [InlineData("${UNSET}x", "x")]
    [InlineData("$", "$")]
    [InlineData("a$", "a$")]
    [InlineData("$/x", "$/x")]
    [InlineData("\\$FOO", "$FOO")]
    [InlineData("\\${FOO}", "${FOO}")]
    [InlineData("'$FOO'", "$FOO")]
    [InlineData("\"$FOO\"", "/bar")]
    [InlineData("\"a b\"", "a b")]
    [InlineData("'a \\ b'", "a \\ b")]
    [InlineData("\"a \\\"q\\\" \\$FOO \\x\"", "a \"q\" $FOO \\x")]
    [InlineData("Rex\\ The\\ Dog", "Rex The Dog")]
    [InlineData("abc\\", "abc")]
    [InlineData("hello world", "hello world")]
    [InlineData("$1x", "x")]
    public void Expands_words(string word, string expected) => Assert.Equal(expected, Word(word));

    [Theory]
    [InlineData("${FOO:-def}", "/bar")]
    [InlineData("${UNSET:-def}", "def")]
    [InlineData("${EMPTY:-def}", "def")]
    [InlineData("${EMPTY-def}", "")]
    [InlineData("${UNSET-def}", "def")]
    [InlineData("${FOO:+alt}", "alt")]
    [InlineData("${EMPTY:+alt}", "")]
    [InlineData("${EMPTY+alt}", "alt")]
    [InlineData("${UNSET+alt}", "")]
    [InlineData("${UNSET:-$FOO/x}", "/bar/x")]
    [InlineData("${UNSET:-\"a b\"}", "a b")]
    [InlineData("${UNSET:-${ALSO:-deep}}", "deep")]
    [InlineData("${FOO:?must be set}", "/bar")]
    [InlineData("${PATHV#*/}", "b/c.tar.gz")]
    [InlineData("${PATHV##*/}", "c.tar.gz")]
    [InlineData("${PATHV%.*}", "a/b/c.tar")]
    [InlineData("${PATHV%%.*}", "a/b/c")]
    [InlineData("${PATHV#x}", "a/b/c.tar.gz")]
    [InlineData("${PATHV%/*}", "a/b")]
    [InlineData("${PATHV/\\//-}", "a-b/c.tar.gz")]
    [InlineData("${PATHV//\\//-}", "a-b-c.tar.gz")]
    [InlineData("${PATHV/b?c/X}", "a/X.tar.gz")]
    public void Expands_modifiers(string word, string expected) => Assert.Equal(expected, Word(word));

    [Theory]
    [InlineData("${UNSET:?}", "UNSET: is not allowed to be unset")]
    [InlineData("${UNSET?custom message}", "UNSET: custom message")]
    [InlineData("${EMPTY:?}", "EMPTY: is not allowed to be empty")]
    [InlineData("${FOO", "missing '}'")]
    [InlineData("${", "missing '}'")]
    [InlineData("${}", "bad substitution")]
    [InlineData("${:a}", "bad substitution")]
    [InlineData("${FOO:x}", "unsupported modifier (:x) in substitution")]
    [InlineData("${FOO^}", "unsupported modifier (^) in substitution")]
    [InlineData("'abc", "matching single-quote")]
    [InlineData("\"abc", "matching double-quote")]
    [InlineData("${FOO:-abc", "missing '}'")]
    public void Reports_errors_as_argument_exceptions(string word, string message)
    {
        var ex = Assert.Throws<ArgumentException>(() => Word(word));
        Assert.Contains(message, ex.Message);
        Assert.Contains($"failed to process \"{word}\"", ex.Message);
    }

    [Fact]
    public void Empty_string_is_not_an_error()
    {
        Assert.Equal("", Word("${EMPTY-}"));
        Assert.Equal("", Word(""));
    }

    [Fact]
    public void ProcessWords_splits_on_unquoted_whitespace_after_expansion()
    {
        Assert.Equal(["a", "b", "c"], Words("$WORDS"));
        Assert.Equal(["a b  c"], Words("\"$WORDS\""));
        Assert.Equal(["x", "y z", "/bar"], Words("  x   'y z' $FOO  "));
        Assert.Equal(["a b"], Words("a\\ b"));
        Assert.Equal(["80/tcp"], Words("80/tcp"));
        Assert.Empty(Words(""));
        Assert.Empty(Words("$UNSET"));
    }

    [Fact]
    public void Backtick_escape_token()
    {
        Assert.Equal("$FOO", Word("`$FOO", '`'));
        Assert.Equal(@"c:\windows\", Word(@"c:\windows\", '`'));
        Assert.Equal("a\"b", Word("\"a`\"b\"", '`'));
    }

    [Fact]
    public void Lookup_distinguishes_unset_from_empty()
    {
        var lex = new ShellLex();
        Assert.Equal("d", lex.ProcessWord("${V-d}", _ => null));
        Assert.Equal("", lex.ProcessWord("${V-d}", _ => ""));
    }

    [Fact]
    public void Rejects_other_escape_tokens() => Assert.Throws<ArgumentException>(() => new ShellLex('x'));
}
