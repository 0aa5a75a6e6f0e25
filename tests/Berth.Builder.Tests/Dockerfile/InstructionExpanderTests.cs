using Berth.Builder.Dockerfile;

namespace Berth.Builder.Tests.Dockerfile;

public class InstructionExpanderTests
{
    private static readonly Dictionary<string, string> Vars = new()
    {
        ["FOO"] = "/bar",
        ["USER"] = "app",
        ["PORTS"] = "80 443",
        ["STAGE"] = "build",
        ["CODE_VERSION"] = "latest",
        ["abc"] = "hello",
    };

    private static string? Lookup(string name) => Vars.TryGetValue(name, out var v) ? v : null;

    private static List<Instruction> Expanded(string text)
    {
        var doc = DockerfileParser.Parse(text);
        var lex = new ShellLex(doc.EscapeToken);
        return [.. doc.Stages[0].Instructions.Select(i => InstructionExpander.Expand(i, lex, Lookup))];
    }

    [Fact]
    public void Reference_example_workdir_add_copy()
    {
        var steps = Expanded("""
            FROM busybox
            WORKDIR ${FOO}
            ADD . $FOO
            COPY \$FOO /quux
            """);
        Assert.Equal("/bar", Assert.IsType<WorkdirInstruction>(steps[0]).Path);
        Assert.Equal("/bar", Assert.IsType<AddInstruction>(steps[1]).Destination);
        Assert.Equal(["$FOO"], Assert.IsType<CopyInstruction>(steps[2]).Sources);
    }

    [Fact]
    public void Env_removes_quotes_and_escapes()
    {
        var steps = Expanded("""
            FROM a
            ENV MY_NAME="John Doe" MY_DOG=Rex\ The\ Dog MY_CAT=fluffy
            ENV MY_VAR my-value "quoted"
            ENV def=$abc ghi=${abc:-x}y 'lit'=$FOO
            """);
        Assert.Equal(
            [new("MY_NAME", "John Doe"), new("MY_DOG", "Rex The Dog"), new("MY_CAT", "fluffy")],
            Assert.IsType<EnvInstruction>(steps[0]).Variables);
        Assert.Equal([new("MY_VAR", "my-value quoted")], Assert.IsType<EnvInstruction>(steps[1]).Variables);
        Assert.Equal([new("def", "hello"), new("ghi", "helloy"), new("lit", "/bar")], Assert.IsType<EnvInstruction>(steps[2]).Variables);
    }

    [Fact]
    public void Copy_flags_and_fields()
    {
        var copy = Assert.IsType<CopyInstruction>(Assert.Single(Expanded(
            "FROM a\nCOPY --from=$STAGE --chown=${USER}:${USER} --chmod=${MODE:-644} --exclude=$FOO src/$USER ${FOO}/")));
        Assert.Equal("build", copy.From);
        Assert.Equal("app:app", copy.Chown);
        Assert.Equal("644", copy.Chmod);
        Assert.Equal(["src/app"], copy.Sources);
        Assert.Equal("/bar/", copy.Destination);
        Assert.Equal(["$FOO"], copy.Excludes);
    }

    [Fact]
    public void Expose_label_user_volume_stopsignal_arg()
    {
        var steps = Expanded("""
            FROM a
            EXPOSE $PORTS 8080
            LABEL "maintainer.$USER"="x y" other=$FOO
            USER ${USER}:${GROUP:-staff}
            VOLUME $FOO "/data"
            VOLUME ["$FOO"]
            STOPSIGNAL ${SIG:-SIGTERM}
            ARG NAME="${USER}_x" UNSET
            """);
        Assert.Equal(["80", "443", "8080"], Assert.IsType<ExposeInstruction>(steps[0]).Ports);
        Assert.Equal([new("maintainer.app", "x y"), new("other", "/bar")], Assert.IsType<LabelInstruction>(steps[1]).Labels);
        Assert.Equal("app:staff", Assert.IsType<UserInstruction>(steps[2]).User);
        Assert.Equal(["/bar", "/data"], Assert.IsType<VolumeInstruction>(steps[3]).Paths);
        Assert.Equal(["/bar"], Assert.IsType<VolumeInstruction>(steps[4]).Paths);
        Assert.Equal("SIGTERM", Assert.IsType<StopsignalInstruction>(steps[5]).Signal);
        Assert.Equal([new ArgDefinition("NAME", "app_x"), new ArgDefinition("UNSET", null)], Assert.IsType<ArgInstruction>(steps[6]).Args);
    }

    [Fact]
    public void Shell_dependent_instructions_and_onbuild_are_not_expanded()
    {
        var text = """
            FROM a
            RUN echo $FOO
            CMD ["echo", "$FOO"]
            ENTRYPOINT $FOO
            SHELL ["/bin/$FOO"]
            HEALTHCHECK CMD check $FOO
            ONBUILD RUN echo $FOO
            MAINTAINER $USER
            RUN <<EOF
            echo $FOO
            EOF
            """;
        var lex = new ShellLex();
        foreach (var instruction in DockerfileParser.Parse(text).Stages[0].Instructions)
        {
            Assert.Same(instruction, InstructionExpander.Expand(instruction, lex, Lookup));
        }
    }

    [Fact]
    public void Arg_before_from_is_used_in_from()
    {
        // The Dockerfile reference example: ARG before the first FROM feeds the FROM lines.
        var doc = DockerfileParser.Parse("""
            ARG  CODE_VERSION=latest
            FROM base:${CODE_VERSION}
            CMD  /code/run-app

            FROM --platform=${PLATFORM:-linux/amd64} extras:${CODE_VERSION}
            CMD  /code/run-extras
            """);
        var lex = new ShellLex(doc.EscapeToken);
        var meta = new Dictionary<string, string>();
        foreach (var def in doc.MetaArgs.SelectMany(a => ((ArgInstruction)InstructionExpander.Expand(a, lex, _ => null)).Args))
        {
            meta[def.Name] = def.Default ?? "";
        }
        string? MetaLookup(string n) => meta.TryGetValue(n, out var v) ? v : null;

        var first = (FromInstruction)InstructionExpander.Expand(doc.Stages[0].From, lex, MetaLookup);
        var second = (FromInstruction)InstructionExpander.Expand(doc.Stages[1].From, lex, MetaLookup);
        Assert.Equal("base:latest", first.Image);
        Assert.Equal("extras:latest", second.Image);
        Assert.Equal("linux/amd64", second.Platform);
        Assert.Equal(first.Line, doc.Stages[0].From.Line);
        Assert.Equal(first.Original, doc.Stages[0].From.Original);
    }

    [Fact]
    public void Backtick_escape_token_applies_to_expansion()
    {
        var steps = Expanded("# escape=`\nFROM a\nWORKDIR c:\\path`$FOO\nENV P=c:\\x\\y");
        Assert.Equal(@"c:\path$FOO", Assert.IsType<WorkdirInstruction>(steps[0]).Path);
        Assert.Equal([new("P", @"c:\x\y")], Assert.IsType<EnvInstruction>(steps[1]).Variables);
    }

    [Fact]
    public void Expansion_errors_carry_the_instruction_line()
    {
        var doc = DockerfileParser.Parse("FROM a\n\nWORKDIR ${REQUIRED:?set REQUIRED}\nCOPY \"a b\" /c");
        var lex = new ShellLex();
        var ex = Assert.Throws<DockerfileException>(() => InstructionExpander.Expand(doc.Stages[0].Instructions[0], lex, _ => null, "Dockerfile.ci"));
        Assert.Equal("Dockerfile.ci:3: failed to process \"${REQUIRED:?set REQUIRED}\": REQUIRED: set REQUIRED", ex.Message);
        ex = Assert.Throws<DockerfileException>(() => InstructionExpander.Expand(doc.Stages[0].Instructions[1], lex, _ => null));
        Assert.Contains("unexpected end of statement while looking for matching double-quote", ex.Message);
    }

    [Fact]
    public void Expand_keeps_line_and_original()
    {
        var user = Assert.IsType<UserInstruction>(Assert.Single(Expanded("FROM a\nUSER $USER")));
        Assert.Equal(2, user.Line);
        Assert.Equal("USER $USER", user.Original);
        Assert.Equal("app", user.User);
    }
}
