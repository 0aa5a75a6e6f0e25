using Berth.Builder.Dockerfile;

namespace Berth.Builder.Tests.Dockerfile;

public class ParserErrorTests
{
    private static DockerfileException Fails(string text, string fileName = "Dockerfile") =>
        Assert.Throws<DockerfileException>(() => DockerfileParser.Parse(text, fileName));

    [Theory]
    [InlineData("FROM a\nRUN a\nFORM b", 3, "unknown instruction: FORM")]
    [InlineData("FROM a\n\nFROM", 3, "FROM requires at least one argument")]
    [InlineData("FROM a b", 1, "FROM requires either one or three arguments")]
    [InlineData("FROM a AS 1st", 1, "invalid name for build stage: \"1st\", name can't start with a number or contain symbols")]
    [InlineData("FROM a AS bad$name", 1, "invalid name for build stage")]
    [InlineData("FROM a AS x\nFROM b as X", 2, "duplicate stage name \"x\"")]
    [InlineData("RUN echo\nFROM a", 1, "no build stage in current context")]
    [InlineData("ARG A\nENV B=1\nFROM a", 2, "ENV must come after a FROM")]
    [InlineData("FROM a\nRUN --foo=bar echo", 2, "Unknown flag: foo")]
    [InlineData("FROM a\nCOPY --from=a --from=b x y", 2, "Duplicate flag specified: from")]
    [InlineData("FROM a\nCOPY --from x y", 2, "Missing a value on flag: from")]
    [InlineData("FROM a\nCOPY --link=maybe x y", 2, "Expecting boolean value for flag link, not: maybe")]
    [InlineData("FROM a\nRUN --network=bridge echo", 2, "unsupported network mode \"bridge\"")]
    [InlineData("FROM --platfrom=linux/amd64 a", 1, "Unknown flag: platfrom")]
    [InlineData("FROM a\nWORKDIR --x=1 /a", 2, "Unknown flag: x")]
    [InlineData("FROM a\nRUN", 2, "RUN requires at least one argument")]
    [InlineData("FROM a\nCOPY x", 2, "COPY requires at least two arguments")]
    [InlineData("FROM a\nADD", 2, "ADD requires at least two arguments")]
    [InlineData("FROM a\nENV", 2, "ENV requires at least one argument")]
    [InlineData("FROM a\nENV A", 2, "ENV must have two arguments")]
    [InlineData("FROM a\nENV A=1 B", 2, "Syntax error - can't find = in \"B\"")]
    [InlineData("FROM a\nENV =1", 2, "ENV names can not be blank")]
    [InlineData("FROM a\nLABEL", 2, "LABEL requires at least one argument")]
    [InlineData("FROM a\nARG", 2, "ARG requires at least one argument")]
    [InlineData("FROM a\nARG =x", 2, "ARG names can not be blank")]
    [InlineData("FROM a\nWORKDIR", 2, "WORKDIR requires exactly one argument")]
    [InlineData("FROM a\nUSER", 2, "USER requires exactly one argument")]
    [InlineData("FROM a\nEXPOSE", 2, "EXPOSE requires at least one argument")]
    [InlineData("FROM a\nVOLUME", 2, "VOLUME requires at least one argument")]
    [InlineData("FROM a\nVOLUME [\"/a\", \"\"]", 2, "VOLUME specified can not be an empty string")]
    [InlineData("FROM a\nSTOPSIGNAL", 2, "STOPSIGNAL requires exactly one argument")]
    [InlineData("FROM a\nSHELL /bin/bash -c", 2, "SHELL requires the arguments to be in JSON form")]
    [InlineData("FROM a\nSHELL []", 2, "SHELL requires at least one argument")]
    [InlineData("FROM a\nSHELL [\"sh\", 1]", 2, "arrays must be comprised of strings only")]
    [InlineData("FROM a\nCMD [\"echo\", 1]", 2, "arrays must be comprised of strings only")]
    [InlineData("FROM a\nRUN [\"echo\", null]", 2, "arrays must be comprised of strings only")]
    [InlineData("FROM a\nCOPY [\"a\", [\"b\"]]", 2, "arrays must be comprised of strings only")]
    [InlineData("FROM a\nHEALTHCHECK", 2, "HEALTHCHECK requires at least one argument")]
    [InlineData("FROM a\nHEALTHCHECK NONE x", 2, "HEALTHCHECK NONE takes no arguments")]
    [InlineData("FROM a\nHEALTHCHECK CMD", 2, "Missing command after HEALTHCHECK CMD")]
    [InlineData("FROM a\nHEALTHCHECK RUN x", 2, "Unknown type \"RUN\" in HEALTHCHECK (try CMD)")]
    [InlineData("FROM a\nHEALTHCHECK --interval=10 CMD x", 2, "time: missing unit in duration \"10\"")]
    [InlineData("FROM a\nHEALTHCHECK --timeout=1d CMD x", 2, "time: unknown unit \"d\" in duration \"1d\"")]
    [InlineData("FROM a\nHEALTHCHECK --interval=abc CMD x", 2, "time: invalid duration \"abc\"")]
    [InlineData("FROM a\nHEALTHCHECK --interval=500us CMD x", 2, "Interval \"interval\" cannot be less than 1ms")]
    [InlineData("FROM a\nHEALTHCHECK --start-period=-1s CMD x", 2, "Interval \"start-period\" cannot be less than 1ms")]
    [InlineData("FROM a\nHEALTHCHECK --retries=-1 CMD x", 2, "--retries cannot be negative (-1)")]
    [InlineData("FROM a\nHEALTHCHECK --retries=x CMD x", 2, "--retries")]
    [InlineData("FROM a\nONBUILD", 2, "ONBUILD requires at least one argument")]
    [InlineData("FROM a\nONBUILD ONBUILD RUN x", 2, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    [InlineData("FROM a\nONBUILD FROM b", 2, "FROM isn't allowed as an ONBUILD trigger")]
    [InlineData("FROM a\nonbuild maintainer me", 2, "MAINTAINER isn't allowed as an ONBUILD trigger")]
    [InlineData("FROM a\nONBUILD FOO x", 2, "unknown instruction: FOO")]
    [InlineData("FROM a\nRUN <<EOF\necho", 2, "unterminated heredoc")]
    [InlineData("FROM a\nRUN <<A <<B\nx\nA\ny\n", 2, "unterminated heredoc")]
    [InlineData("# escape=x\nFROM a", 1, "invalid escape token 'x' does not match ` or \\")]
    [InlineData("# escape=`\n# escape=\\\nFROM a", 2, "only one escape parser directive can be used")]
    public void Errors_name_file_line_and_reason(string text, int line, string reason)
    {
        var ex = Fails(text);
        Assert.Equal("Dockerfile", ex.FileName);
        Assert.Equal(line, ex.Line);
        Assert.Contains(reason, ex.Reason);
        Assert.StartsWith($"Dockerfile:{line}: ", ex.Message);
    }

    [Fact]
    public void Message_format_matches_docker_style()
    {
        var ex = Fails("FROM a\n\n\n\n\n\n\n\n\n\n\nFORM b", "Dockerfile.dev");
        Assert.Equal("Dockerfile.dev:12: unknown instruction: FORM", ex.Message);
        Assert.Equal("Dockerfile.dev", ex.FileName);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n   \n")]
    [InlineData("# only a comment\n# another")]
    [InlineData("# syntax=docker/dockerfile:1\n")]
    public void Empty_file_has_no_instructions(string text)
    {
        var ex = Fails(text);
        Assert.Equal(0, ex.Line);
        Assert.Equal("Dockerfile: file with no instructions", ex.Message);
    }

    [Fact]
    public void Only_args_is_no_stage()
    {
        var ex = Fails("ARG A=1\n");
        Assert.Contains("no stages to build", ex.Message);
    }

    [Fact]
    public void Error_inside_a_continued_instruction_reports_its_first_line()
    {
        var ex = Fails("FROM a\nCOPY \\\n  --bogus=1 \\\n  a b\n");
        Assert.Equal(2, ex.Line);
    }
}
