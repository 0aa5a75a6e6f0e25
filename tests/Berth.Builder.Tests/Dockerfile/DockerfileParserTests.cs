using Berth.Builder.Dockerfile;

namespace Berth.Builder.Tests.Dockerfile;

public class DockerfileParserTests
{
    private static IReadOnlyList<Instruction> Steps(string text) => DockerfileParser.Parse(text).Stages[0].Instructions;

    private static T Single<T>(string text) where T : Instruction => Assert.IsType<T>(Assert.Single(Steps(text)));

    [Fact]
    public void Parses_stages_meta_args_and_keywords_case_insensitively()
    {
        var doc = DockerfileParser.Parse("""
            ARG BASE=alpine
            from $BASE AS Build
            run echo hi
            FROM scratch
            COPY --from=build /out /out
            """);

        Assert.Equal('\\', doc.EscapeToken);
        Assert.Null(doc.Syntax);
        var meta = Assert.Single(doc.MetaArgs);
        Assert.Equal(new ArgDefinition("BASE", "alpine"), Assert.Single(meta.Args));
        Assert.Equal(2, doc.Stages.Count);

        var build = doc.Stages[0];
        Assert.Equal(0, build.Index);
        Assert.Equal("build", build.Name);
        Assert.Equal("$BASE", build.From.Image);
        Assert.Equal("build", build.From.StageName);
        Assert.Equal(2, build.From.Line);
        Assert.Equal("from $BASE AS Build", build.From.Original);
        var run = Assert.IsType<RunInstruction>(Assert.Single(build.Instructions));
        Assert.Equal("RUN", run.Keyword);
        Assert.Equal(3, run.Line);
        Assert.Equal("run echo hi", run.Original);

        Assert.Null(doc.Stages[1].Name);
        Assert.Equal(1, doc.Stages[1].Index);
        var copy = Assert.IsType<CopyInstruction>(Assert.Single(doc.Stages[1].Instructions));
        Assert.Equal("build", copy.From);
    }

    [Fact]
    public void FindStage_by_name_case_insensitively_or_by_index()
    {
        var doc = DockerfileParser.Parse("FROM alpine AS builder\nFROM scratch\n");
        Assert.Same(doc.Stages[0], doc.FindStage("BUILDER"));
        Assert.Same(doc.Stages[0], doc.FindStage("0"));
        Assert.Same(doc.Stages[1], doc.FindStage("1"));
        Assert.Null(doc.FindStage("2"));
        Assert.Null(doc.FindStage("nope"));
        Assert.Null(doc.FindStage("-1"));
    }

    [Fact]
    public void From_platform_flag()
    {
        var from = DockerfileParser.Parse("FROM --platform=$BUILDPLATFORM golang:1.22 AS build").Stages[0].From;
        Assert.Equal("$BUILDPLATFORM", from.Platform);
        Assert.Equal("golang:1.22", from.Image);
        Assert.Equal("FROM --platform=$BUILDPLATFORM golang:1.22 AS build", from.Original);
    }

    [Fact]
    public void Comments_blank_lines_and_continuations()
    {
        var steps = Steps("""
            # a comment
            FROM alpine

               # indented comment
            RUN apt-get update && \
                # a comment inside the continuation
                apt-get install -y curl

            RUN echo done
            """);
        Assert.Equal(2, steps.Count);
        var run = Assert.IsType<RunInstruction>(steps[0]);
        Assert.Equal(5, run.Line);
        Assert.Equal("RUN apt-get update &&     apt-get install -y curl", run.Original);
        Assert.Equal(["apt-get update &&     apt-get install -y curl"], run.Command.Args);
        Assert.Equal(9, steps[1].Line);
    }

    [Fact]
    public void Empty_continuation_lines_are_skipped_like_docker()
    {
        var run = Single<RunInstruction>("FROM a\nRUN echo a \\\n\n   \necho b\n");
        Assert.Equal("RUN echo a echo b", run.Original);
    }

    [Fact]
    public void Escaped_escape_at_end_of_line_is_not_a_continuation()
    {
        var steps = Steps("FROM a\nRUN echo \\\\\nRUN echo b\n");
        Assert.Equal(2, steps.Count);
        Assert.Equal(@"RUN echo \\", steps[0].Original);
    }

    [Fact]
    public void Crlf_line_endings_and_bom()
    {
        var steps = Steps("\uFEFFFROM a\r\nRUN echo a \\\r\n  b\r\nUSER root\r\n");
        Assert.Equal("RUN echo a   b", steps[0].Original);
        Assert.Equal("root", Assert.IsType<UserInstruction>(steps[1]).User);
    }

    [Fact]
    public void Escape_directive_backtick_for_windows_paths()
    {
        // The Dockerfile reference example: with ` as the escape token, a trailing \ is an ordinary character.
        var doc = DockerfileParser.Parse("""
            # escape=`

            FROM microsoft/nanoserver
            COPY testfile.txt c:\
            RUN dir c:\
            """);
        Assert.Equal('`', doc.EscapeToken);
        var steps = doc.Stages[0].Instructions;
        Assert.Equal(2, steps.Count);
        var copy = Assert.IsType<CopyInstruction>(steps[0]);
        Assert.Equal(["testfile.txt"], copy.Sources);
        Assert.Equal(@"c:\", copy.Destination);
        Assert.Equal([@"dir c:\"], Assert.IsType<RunInstruction>(steps[1]).Command.Args);
    }

    [Fact]
    public void Without_escape_directive_the_windows_example_joins_lines()
    {
        var doc = DockerfileParser.Parse("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n");
        var copy = Assert.IsType<CopyInstruction>(Assert.Single(doc.Stages[0].Instructions));
        Assert.Equal("COPY testfile.txt c:RUN dir c:", copy.Original);
    }

    [Fact]
    public void Backtick_continuation()
    {
        var doc = DockerfileParser.Parse("# escape=`\nFROM a\nRUN echo a `\n  b\n");
        Assert.Equal("RUN echo a   b", Assert.Single(doc.Stages[0].Instructions).Original);
    }

    [Theory]
    [InlineData("# syntax=docker/dockerfile:1\nFROM a", "docker/dockerfile:1")]
    [InlineData("#syntax = docker/dockerfile:1.7  \nFROM a", "docker/dockerfile:1.7")]
    [InlineData("# check=skip=all\n# syntax=x\nFROM a", "x")]
    public void Syntax_directive_is_recorded(string text, string syntax)
    {
        Assert.Equal(syntax, DockerfileParser.Parse(text).Syntax);
    }

    [Fact]
    public void Directives_after_a_comment_or_instruction_are_plain_comments()
    {
        var doc = DockerfileParser.Parse("# hello\n# escape=`\nFROM a\nRUN a \\\n b\n");
        Assert.Equal('\\', doc.EscapeToken);
        doc = DockerfileParser.Parse("FROM a\n# escape=`\nRUN a \\\n b\n");
        Assert.Equal('\\', doc.EscapeToken);
        Assert.Equal("RUN a  b", Assert.Single(doc.Stages[0].Instructions).Original);
    }

    [Fact]
    public void Exec_form_and_shell_form()
    {
        var steps = Steps("""
            FROM a
            CMD ["echo", "hi there"]
            ENTRYPOINT exec top -b
            RUN [ "sh", "-c", "echo $HOME" ]
            CMD []
            ENTRYPOINT []
            """);
        Assert.Equal(new CommandLine(["echo", "hi there"], false).Args, Assert.IsType<CmdInstruction>(steps[0]).Command.Args);
        Assert.False(((CmdInstruction)steps[0]).Command.IsShellForm);
        var entry = Assert.IsType<EntrypointInstruction>(steps[1]).Command;
        Assert.True(entry.IsShellForm);
        Assert.Equal(["exec top -b"], entry.Args);
        Assert.Equal(["sh", "-c", "echo $HOME"], Assert.IsType<RunInstruction>(steps[2]).Command.Args);
        Assert.Empty(Assert.IsType<CmdInstruction>(steps[3]).Command.Args);
        Assert.False(((CmdInstruction)steps[3]).Command.IsShellForm);
        Assert.Empty(Assert.IsType<EntrypointInstruction>(steps[4]).Command.Args);
    }

    [Theory]
    // Not valid JSON, so Docker runs them with the shell: single quotes, unescaped backslashes, trailing text.
    [InlineData("RUN [ \"echo\", 'hi' ]", "[ \"echo\", 'hi' ]")]
    [InlineData(@"RUN [""c:\windows\system32\tasklist.exe""]", @"[""c:\windows\system32\tasklist.exe""]")]
    [InlineData("RUN [\"echo\", \"a\"] && echo b", "[\"echo\", \"a\"] && echo b")]
    [InlineData("RUN [\"echo\",]", "[\"echo\",]")]
    [InlineData("RUN {\"a\": 1}", "{\"a\": 1}")]
    public void Invalid_json_falls_back_to_shell_form(string line, string shell)
    {
        var run = Single<RunInstruction>("FROM a\n" + line);
        Assert.True(run.Command.IsShellForm);
        Assert.Equal([shell], run.Command.Args);
    }

    [Fact]
    public void Json_escapes_are_decoded_in_exec_form()
    {
        var cmd = Single<CmdInstruction>("FROM a\nCMD [\"c:\\\\windows\\\\x.exe\", \"\\u0041\\\"\"]");
        Assert.Equal([@"c:\windows\x.exe", "A\""], cmd.Command.Args);
    }

    [Fact]
    public void Run_flags()
    {
        var run = Single<RunInstruction>(
            "FROM a\nRUN --mount=type=cache,target=/root/.cache --network=none --mount=type=secret,id=x \"--x\" echo");
        Assert.Equal(["type=cache,target=/root/.cache", "type=secret,id=x"], run.Mounts);
        Assert.Equal("none", run.Network);
        Assert.Equal(["\"--x\" echo"], run.Command.Args);
    }

    [Fact]
    public void Flag_values_have_quotes_removed_and_double_dash_ends_flags()
    {
        var run = Single<RunInstruction>("FROM a\nRUN --mount=\"type=bind,target=/a b\" -- --not-a-flag");
        Assert.Equal(["type=bind,target=/a b"], run.Mounts);
        Assert.Equal(["--not-a-flag"], run.Command.Args);
    }

    [Fact]
    public void Copy_and_add_fields()
    {
        var steps = Steps("""
            FROM a
            COPY --from=build --chown=1000:1000 --chmod=755 --link --exclude=*.md --exclude=tmp a b /dst/
            COPY ["with space", "/dst dir/"]
            ADD --checksum=sha256:abc --keep-git-dir=true --link=false https://x/y.tar.gz /y
            COPY "a b" /c
            """);
        var copy = Assert.IsType<CopyInstruction>(steps[0]);
        Assert.Equal(["a", "b"], copy.Sources);
        Assert.Equal("/dst/", copy.Destination);
        Assert.Equal("build", copy.From);
        Assert.Equal("1000:1000", copy.Chown);
        Assert.Equal("755", copy.Chmod);
        Assert.True(copy.Link);
        Assert.Equal(["*.md", "tmp"], copy.Excludes);
        Assert.Empty(copy.Heredocs);

        var json = Assert.IsType<CopyInstruction>(steps[1]);
        Assert.Equal(["with space"], json.Sources);
        Assert.Equal("/dst dir/", json.Destination);
        Assert.Null(json.From);
        Assert.False(json.Link);

        var add = Assert.IsType<AddInstruction>(steps[2]);
        Assert.Equal("sha256:abc", add.Checksum);
        Assert.True(add.KeepGitDir);
        Assert.False(add.Link);
        Assert.Equal(["https://x/y.tar.gz"], add.Sources);

        // Shell-form COPY splits on whitespace only; quotes are handled (and here rejected) at expansion.
        Assert.Equal(["\"a", "b\""], Assert.IsType<CopyInstruction>(steps[3]).Sources);
    }

    [Fact]
    public void Env_forms_from_the_reference()
    {
        var steps = Steps("""
            FROM a
            ENV MY_NAME="John Doe"
            ENV MY_DOG=Rex\ The\ Dog
            ENV MY_CAT=fluffy
            ENV MY_NAME="John Doe" MY_DOG=Rex\ The\ Dog \
                MY_CAT=fluffy
            ENV MY_VAR my-value with  spaces
            ENV ONE TWO= THREE=world
            ENV EMPTY= QUOTED='a "b"'
            """);
        KeyValuePair<string, string> P(string k, string v) => new(k, v);
        Assert.Equal([P("MY_NAME", "\"John Doe\"")], Assert.IsType<EnvInstruction>(steps[0]).Variables);
        Assert.Equal([P("MY_DOG", @"Rex\ The\ Dog")], Assert.IsType<EnvInstruction>(steps[1]).Variables);
        Assert.Equal([P("MY_CAT", "fluffy")], Assert.IsType<EnvInstruction>(steps[2]).Variables);
        Assert.Equal([P("MY_NAME", "\"John Doe\""), P("MY_DOG", @"Rex\ The\ Dog"), P("MY_CAT", "fluffy")],
            Assert.IsType<EnvInstruction>(steps[3]).Variables);
        Assert.Equal([P("MY_VAR", "my-value with  spaces")], Assert.IsType<EnvInstruction>(steps[4]).Variables);
        Assert.Equal([P("ONE", "TWO= THREE=world")], Assert.IsType<EnvInstruction>(steps[5]).Variables);
        Assert.Equal([P("EMPTY", ""), P("QUOTED", "'a \"b\"'")], Assert.IsType<EnvInstruction>(steps[6]).Variables);
    }

    [Fact]
    public void Label_pairs_keep_quotes_until_expansion()
    {
        var label = Single<LabelInstruction>("FROM a\nLABEL \"com.example.vendor\"=\"ACME Incorporated\" version=1.0 multi.label1=\"value1\"");
        Assert.Equal(
            [new("\"com.example.vendor\"", "\"ACME Incorporated\""), new("version", "1.0"), new("multi.label1", "\"value1\"")],
            label.Labels);
    }

    [Fact]
    public void Arg_definitions()
    {
        var arg = Single<ArgInstruction>("FROM a\nARG user1 buildno=1 empty= quoted=\"a b\"");
        Assert.Equal(
            [new ArgDefinition("user1", null), new ArgDefinition("buildno", "1"), new ArgDefinition("empty", ""), new ArgDefinition("quoted", "\"a b\"")],
            arg.Args);
    }

    [Fact]
    public void Simple_string_instructions()
    {
        var steps = Steps("""
            FROM a
            WORKDIR /path with space
            USER app:app
            STOPSIGNAL SIGKILL
            MAINTAINER Jane Doe <jane@example.com>
            EXPOSE 8080/udp 80 443/tcp
            VOLUME ["/data", "/var/log"]
            VOLUME /a /b
            SHELL ["powershell", "-command"]
            """);
        Assert.Equal("/path with space", Assert.IsType<WorkdirInstruction>(steps[0]).Path);
        Assert.Equal("app:app", Assert.IsType<UserInstruction>(steps[1]).User);
        Assert.Equal("SIGKILL", Assert.IsType<StopsignalInstruction>(steps[2]).Signal);
        Assert.Equal("Jane Doe <jane@example.com>", Assert.IsType<MaintainerInstruction>(steps[3]).Name);
        Assert.Equal(["443/tcp", "80", "8080/udp"], Assert.IsType<ExposeInstruction>(steps[4]).Ports);
        Assert.Equal(["/data", "/var/log"], Assert.IsType<VolumeInstruction>(steps[5]).Paths);
        Assert.Equal(["/a", "/b"], Assert.IsType<VolumeInstruction>(steps[6]).Paths);
        Assert.Equal(["powershell", "-command"], Assert.IsType<ShellInstruction>(steps[7]).Shell);
    }

    [Fact]
    public void Healthcheck_with_options()
    {
        var hc = Single<HealthcheckInstruction>(
            "FROM a\nHEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1");
        Assert.Equal(TimeSpan.FromMinutes(5), hc.Interval);
        Assert.Equal(TimeSpan.FromSeconds(3), hc.Timeout);
        Assert.Equal(TimeSpan.FromSeconds(90), hc.StartPeriod);
        Assert.Equal(TimeSpan.FromMilliseconds(500), hc.StartInterval);
        Assert.Equal(3, hc.Retries);
        Assert.Equal(new CommandLine(["curl -f http://localhost/ || exit 1"], true).Args, hc.Test!.Args);
        Assert.True(hc.Test.IsShellForm);
    }

    [Fact]
    public void Healthcheck_exec_form_none_and_defaults()
    {
        var steps = Steps("FROM a\nHEALTHCHECK cmd [\"/bin/check\", \"-q\"]\nHEALTHCHECK NONE\nHEALTHCHECK --interval=0 --retries=0 CMD true\nHEALTHCHECK --timeout=1.5h CMD x");
        var exec = Assert.IsType<HealthcheckInstruction>(steps[0]);
        Assert.Equal(["/bin/check", "-q"], exec.Test!.Args);
        Assert.False(exec.Test.IsShellForm);
        Assert.Null(exec.Interval);
        Assert.Null(exec.Retries);
        Assert.Null(Assert.IsType<HealthcheckInstruction>(steps[1]).Test);
        var zero = Assert.IsType<HealthcheckInstruction>(steps[2]);
        Assert.Null(zero.Interval);
        Assert.Equal(0, zero.Retries);
        Assert.Equal(TimeSpan.FromMinutes(90), Assert.IsType<HealthcheckInstruction>(steps[3]).Timeout);
    }

    [Fact]
    public void Onbuild_trigger_is_parsed_and_text_kept()
    {
        var onbuild = Single<OnbuildInstruction>("FROM a\nONBUILD   RUN --network=none /usr/local/bin/python-build --dir /app/src");
        Assert.Equal("RUN --network=none /usr/local/bin/python-build --dir /app/src", onbuild.TriggerText);
        var trigger = Assert.IsType<RunInstruction>(onbuild.Trigger);
        Assert.Equal("none", trigger.Network);
        Assert.Equal(2, trigger.Line);
        Assert.Equal("ONBUILD", onbuild.Keyword);
    }

    [Fact]
    public void ParseTriggers_parses_image_onbuild_entries()
    {
        var triggers = DockerfileParser.ParseTriggers(["ADD . /app/src", "RUN make"]);
        Assert.IsType<AddInstruction>(triggers[0]);
        Assert.Equal("RUN make", triggers[1].Original);
        Assert.Throws<DockerfileException>(() => DockerfileParser.ParseTriggers(["FROM alpine"]));
    }

    [Fact]
    public void Flags_are_attached_only_when_they_lead()
    {
        var run = Single<RunInstruction>("FROM a\nRUN echo --network=host");
        Assert.Null(run.Network);
        Assert.Equal(["echo --network=host"], run.Command.Args);
    }
}
