using Berth.Builder.Dockerfile;

namespace Berth.Builder.Tests.Dockerfile;

public class HeredocTests
{
    private static IReadOnlyList<Instruction> Steps(string text) => DockerfileParser.Parse(text).Stages[0].Instructions;

    [Fact]
    public void Run_heredoc_with_program()
    {
        var steps = Steps("""
            # syntax=docker/dockerfile:1
            FROM debian
            RUN <<EOT bash
              set -ex
              apt-get update
            EOT
            RUN echo after
            """);
        var run = Assert.IsType<RunInstruction>(steps[0]);
        Assert.Equal(["<<EOT bash"], run.Command.Args);
        Assert.True(run.Command.IsShellForm);
        Assert.Equal("RUN <<EOT bash", run.Original);
        var doc = Assert.Single(run.Heredocs);
        Assert.Equal(new Heredoc("EOT", "  set -ex\n  apt-get update\n", Expand: true, StripTabs: false), doc);
        Assert.Equal("RUN echo after", steps[1].Original);
        Assert.Equal(7, steps[1].Line);
    }

    [Fact]
    public void Several_heredocs_on_one_line()
    {
        var run = Assert.IsType<RunInstruction>(Assert.Single(Steps("""
            FROM a
            RUN <<FILE1 cat > file1 && <<FILE2 cat > file2
            I am
            first
            FILE1
            I am
            second
            FILE2
            """)));
        Assert.Equal(2, run.Heredocs.Count);
        Assert.Equal(new Heredoc("FILE1", "I am\nfirst\n", true, false), run.Heredocs[0]);
        Assert.Equal(new Heredoc("FILE2", "I am\nsecond\n", true, false), run.Heredocs[1]);
    }

    [Theory]
    [InlineData("<<\"EOT\"")]
    [InlineData("<<'EOT'")]
    [InlineData("<<E\"O\"T")]
    public void Quoted_delimiter_disables_expansion(string marker)
    {
        var run = Assert.IsType<RunInstruction>(Assert.Single(Steps($"FROM a\nRUN {marker} sh\necho $HOME\nEOT\n")));
        var doc = Assert.Single(run.Heredocs);
        Assert.Equal("EOT", doc.Name);
        Assert.False(doc.Expand);
        Assert.Equal("echo $HOME\n", doc.Content);
    }

    [Fact]
    public void Dash_strips_leading_tabs_from_body_and_terminator()
    {
        var run = Assert.IsType<RunInstruction>(Assert.Single(Steps("FROM a\nRUN <<-EOF\n\techo a\n\t\t  echo b\n\tEOF\n")));
        var doc = Assert.Single(run.Heredocs);
        Assert.True(doc.StripTabs);
        Assert.Equal("echo a\n  echo b\n", doc.Content);
    }

    [Fact]
    public void Without_dash_an_indented_terminator_does_not_end_the_body()
    {
        var ex = Assert.Throws<DockerfileException>(() => Steps("FROM a\nRUN <<EOF\necho a\n\tEOF\n"));
        Assert.Equal(2, ex.Line);
        Assert.Contains("unterminated heredoc", ex.Message);
    }

    [Fact]
    public void Copy_inline_files()
    {
        var steps = Steps("""
            FROM nginx
            COPY <<robots.txt <<humans.txt /usr/share/nginx/html/
            User-agent: *
            robots.txt
            humans
            humans.txt
            COPY --chmod=755 <<-"EOT" local.sh /app/
            	echo "hello ${FOO}"
            	EOT
            """);
        var copy = Assert.IsType<CopyInstruction>(steps[0]);
        Assert.Empty(copy.Sources);
        Assert.Equal("/usr/share/nginx/html/", copy.Destination);
        Assert.Equal([new Heredoc("robots.txt", "User-agent: *\n", true, false), new Heredoc("humans.txt", "humans\n", true, false)], copy.Heredocs);

        var script = Assert.IsType<CopyInstruction>(steps[1]);
        Assert.Equal(["local.sh"], script.Sources);
        Assert.Equal("755", script.Chmod);
        Assert.Equal(new Heredoc("EOT", "echo \"hello ${FOO}\"\n", Expand: false, StripTabs: true), Assert.Single(script.Heredocs));
    }

    [Fact]
    public void Add_inline_file()
    {
        var add = Assert.IsType<AddInstruction>(Assert.Single(Steps("FROM a\nADD <<EOF /etc/motd\nhi\nEOF\n")));
        Assert.Equal("EOF", Assert.Single(add.Heredocs).Name);
        Assert.Equal("hi\n", add.Heredocs[0].Content);
    }

    [Fact]
    public void Heredoc_as_copy_destination_is_refused()
    {
        var ex = Assert.Throws<DockerfileException>(() => Steps("FROM a\nCOPY x <<EOF\nhi\nEOF\n"));
        Assert.Contains("COPY cannot accept a heredoc as a destination", ex.Message);
    }

    [Fact]
    public void Heredocs_only_on_run_copy_add_in_shell_form()
    {
        var steps = Steps("FROM a\nCMD cat <<EOF\nENV A=1\nRUN [\"cat\", \"<<EOF\"]\nRUN echo \"<<EOF\"\n");
        Assert.Equal(4, steps.Count);
        Assert.IsType<EnvInstruction>(steps[1]);
        Assert.Empty(Assert.IsType<RunInstruction>(steps[2]).Heredocs);
        Assert.Empty(Assert.IsType<RunInstruction>(steps[3]).Heredocs);
    }

    [Fact]
    public void Heredoc_line_endings_are_kept()
    {
        var run = Assert.IsType<RunInstruction>(Assert.Single(Steps("FROM a\r\nRUN <<EOF\r\nline1\r\nEOF\r\n")));
        Assert.Equal("line1\r\n", run.Heredocs[0].Content);
    }

    [Fact]
    public void Heredoc_after_a_continuation()
    {
        var steps = Steps("FROM a\nRUN --network=none \\\n  <<EOF sh\necho hi\nEOF\nUSER u\n");
        var run = Assert.IsType<RunInstruction>(steps[0]);
        Assert.Equal("none", run.Network);
        Assert.Equal("echo hi\n", run.Heredocs[0].Content);
        Assert.Equal(6, steps[1].Line);
    }

    [Fact]
    public void Onbuild_heredoc_goes_to_trigger_and_text()
    {
        var onbuild = Assert.IsType<OnbuildInstruction>(Assert.Single(Steps("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n")));
        Assert.Equal("RUN <<EOF\necho hi\nEOF", onbuild.TriggerText);
        Assert.Equal("echo hi\n", Assert.IsType<RunInstruction>(onbuild.Trigger).Heredocs[0].Content);

        // The trigger text round-trips through ParseTriggers.
        var reparsed = Assert.IsType<RunInstruction>(Assert.Single(DockerfileParser.ParseTriggers([onbuild.TriggerText])));
        Assert.Equal("echo hi\n", reparsed.Heredocs[0].Content);
    }

    [Fact]
    public void Heredoc_with_fd_prefix_and_variable_delimiter()
    {
        var run = Assert.IsType<RunInstruction>(Assert.Single(Steps("FROM a\nRUN 3<<$EOF cat <&3\nx\n$EOF\n")));
        Assert.Equal("$EOF", run.Heredocs[0].Name);
    }
}
