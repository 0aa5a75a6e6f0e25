using Berth.Builder.Context;

namespace Berth.Builder.Tests.Context;

public class DockerIgnoreTests
{
    [Fact]
    public void Reference_example_temp_patterns()
    {
        var ignore = DockerIgnore.Parse("""
            # comment
            */temp*
            */*/temp*
            temp?
            """);
        Assert.True(ignore.IsExcluded("somedir/temporary.txt"));
        Assert.True(ignore.IsExcluded("somedir/temp"));
        Assert.True(ignore.IsExcluded("somedir/temp/inside.txt"));
        Assert.True(ignore.IsExcluded("somedir/subdir/temporary.txt"));
        Assert.True(ignore.IsExcluded("tempa"));
        Assert.True(ignore.IsExcluded("tempb"));
        Assert.False(ignore.IsExcluded("temporary.txt"));
        Assert.False(ignore.IsExcluded("temp"));
        Assert.False(ignore.IsExcluded("a/b/c/temp"));
        Assert.False(ignore.IsExcluded("# comment"));
        Assert.False(ignore.HasExceptions);
    }

    [Fact]
    public void Double_star_matches_any_number_of_directories()
    {
        var ignore = DockerIgnore.Parse("**/*.go");
        Assert.True(ignore.IsExcluded("main.go"));
        Assert.True(ignore.IsExcluded("cmd/tool/main.go"));
        Assert.False(ignore.IsExcluded("main.go.txt"));
        Assert.False(ignore.IsExcluded("README.md"));
    }

    [Fact]
    public void Exception_after_exclusion()
    {
        var ignore = DockerIgnore.Parse("*.md\n!README.md\n");
        Assert.True(ignore.HasExceptions);
        Assert.True(ignore.IsExcluded("CHANGES.md"));
        Assert.False(ignore.IsExcluded("README.md"));
        Assert.False(ignore.IsExcluded("docs/CHANGES.md"));
    }

    [Fact]
    public void Exception_order_matters_secret_readme_excluded()
    {
        var ignore = DockerIgnore.Parse("*.md\n!README*.md\nREADME-secret.md\n");
        Assert.True(ignore.IsExcluded("CHANGES.md"));
        Assert.False(ignore.IsExcluded("README.md"));
        Assert.False(ignore.IsExcluded("README-public.md"));
        Assert.True(ignore.IsExcluded("README-secret.md"));
    }

    [Fact]
    public void Exception_order_matters_all_readmes_included()
    {
        var ignore = DockerIgnore.Parse("*.md\nREADME-secret.md\n!README*.md\n");
        Assert.False(ignore.IsExcluded("README-secret.md"));
        Assert.False(ignore.IsExcluded("README.md"));
        Assert.True(ignore.IsExcluded("CHANGES.md"));
    }

    [Fact]
    public void Directory_pattern_excludes_its_contents()
    {
        var ignore = DockerIgnore.Parse("node_modules\n.git\nbuild/out\n");
        Assert.True(ignore.IsExcluded("node_modules"));
        Assert.True(ignore.IsExcluded("node_modules/a/b.js"));
        Assert.True(ignore.IsExcluded(".git/HEAD"));
        Assert.True(ignore.IsExcluded("build/out/x"));
        Assert.False(ignore.IsExcluded("build/other"));
        Assert.False(ignore.IsExcluded("src/node_modules"));
        Assert.False(ignore.IsExcluded("node_modules2"));
    }

    [Fact]
    public void Patterns_are_cleaned_and_leading_slash_dropped()
    {
        var ignore = DockerIgnore.Parse("/abs/path\n./dot\nx/../y\n  spaced  \n//double//slash/\n!/abs/path/keep\n");
        Assert.Equal(["abs/path", "dot", "y", "spaced", "double/slash", "!abs/path/keep"], ignore.Patterns);
        Assert.True(ignore.IsExcluded("abs/path/file"));
        Assert.False(ignore.IsExcluded("abs/path/keep"));
        Assert.True(ignore.IsExcluded("dot"));
        Assert.True(ignore.IsExcluded("y/z"));
        Assert.True(ignore.IsExcluded("spaced"));
        Assert.True(ignore.IsExcluded("double/slash/x"));
    }

    [Fact]
    public void Paths_are_cleaned_before_matching()
    {
        var ignore = DockerIgnore.Parse("secret");
        Assert.True(ignore.IsExcluded("./secret"));
        Assert.True(ignore.IsExcluded("a/../secret"));
        Assert.True(ignore.IsExcluded("/secret"));
        Assert.False(ignore.IsExcluded("."));
        Assert.False(ignore.IsExcluded(""));
    }

    [Fact]
    public void Comments_only_in_first_column_and_blank_lines()
    {
        var ignore = DockerIgnore.Parse("# real comment\n\n   \n  #notcomment\r\n");
        Assert.Equal(["#notcomment"], ignore.Patterns);
        Assert.True(ignore.IsExcluded("#notcomment"));
    }

    [Theory]
    [InlineData("temp?", "temp1", true)]
    [InlineData("temp?", "temp/", false)]
    [InlineData("temp?", "temp12", false)]
    [InlineData("[a-c].txt", "b.txt", true)]
    [InlineData("[a-c].txt", "d.txt", false)]
    [InlineData("[^a].txt", "b.txt", true)]
    [InlineData("a\\*b", "a*b", true)]
    [InlineData("a\\*b", "axb", false)]
    [InlineData("*.txt", "dir/a.txt", false)]
    [InlineData("*/a.txt", "dir/a.txt", true)]
    [InlineData("dir/**", "dir/a/b", true)]
    [InlineData("dir/**", "dir", false)]
    [InlineData("**", "anything/at/all", true)]
    [InlineData("**/foo", "foo", true)]
    [InlineData("**/foo", "a/b/foo", true)]
    [InlineData("**/foo", "a/b/foo/inner", true)]
    [InlineData("**/foo", "a/xfoo", false)]
    [InlineData("a/**/b", "a/b", true)]
    [InlineData("a/**/b", "a/x/y/b", true)]
    [InlineData("a/**/b", "a/x/y/c", false)]
    [InlineData("a.b", "axb", false)]
    [InlineData("a+(b)", "a+(b)", true)]
    [InlineData("*", "top", true)]
    [InlineData("*", "dir/nested", true)]
    public void Wildcards(string pattern, string path, bool excluded) =>
        Assert.Equal(excluded, DockerIgnore.Parse(pattern).IsExcluded(path));

    [Fact]
    public void MayIncludeUnder_tells_the_walker_when_to_descend()
    {
        var ignore = DockerIgnore.Parse("node_modules\n!node_modules/keep/file.js\nbuild\n*/cache\n!*/cache/keep\n");
        Assert.True(ignore.IsExcluded("node_modules"));
        Assert.True(ignore.MayIncludeUnder("node_modules"));
        Assert.True(ignore.MayIncludeUnder("node_modules/keep"));
        Assert.False(ignore.MayIncludeUnder("node_modules/other"));
        Assert.False(ignore.IsExcluded("node_modules/keep/file.js"));
        Assert.True(ignore.IsExcluded("node_modules/keep/other.js"));

        // "!*/cache/keep" could re-include build/cache/keep, so the walker must look inside build.
        Assert.True(ignore.IsExcluded("build"));
        Assert.True(ignore.MayIncludeUnder("build"));
        Assert.False(ignore.IsExcluded("build/cache/keep"));
        Assert.True(ignore.IsExcluded("build/other"));
        Assert.False(ignore.MayIncludeUnder("build/other"));

        Assert.True(ignore.MayIncludeUnder("app/cache"));
        Assert.False(ignore.IsExcluded("app/cache/keep"));
    }

    [Fact]
    public void MayIncludeUnder_is_conservative_with_double_star_and_false_without_exceptions()
    {
        Assert.True(DockerIgnore.Parse("vendor\n!**/*.go").MayIncludeUnder("vendor"));
        Assert.False(DockerIgnore.Parse("vendor\n*.go").MayIncludeUnder("vendor"));
        Assert.False(DockerIgnore.Parse("vendor\n!docs").MayIncludeUnder("vendor"));
        Assert.True(DockerIgnore.Parse("*\n!src").MayIncludeUnder("src"));
    }

    [Fact]
    public void Exception_reincludes_a_directory_and_its_contents()
    {
        var ignore = DockerIgnore.Parse("*\n!src\n");
        Assert.True(ignore.IsExcluded("Dockerfile.bak"));
        Assert.False(ignore.IsExcluded("src"));
        Assert.False(ignore.IsExcluded("src/main.c"));
    }

    [Theory]
    [InlineData("!")]
    [InlineData("  !  ")]
    [InlineData("[abc")]
    public void Malformed_patterns_are_refused(string text)
    {
        var ex = Assert.Throws<ArgumentException>(() => DockerIgnore.Parse("ok\n" + text));
        Assert.Contains("line 2", ex.Message);
    }

    [Fact]
    public void Empty_file_excludes_nothing()
    {
        Assert.False(DockerIgnore.Parse("").IsExcluded("anything"));
        Assert.False(DockerIgnore.Empty.IsExcluded("anything"));
        Assert.False(DockerIgnore.Empty.HasExceptions);
    }
}
