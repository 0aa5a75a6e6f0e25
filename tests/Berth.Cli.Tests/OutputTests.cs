using System.Diagnostics;

namespace Berth.Cli.Tests;

/// <summary>How berth writes its standard output.</summary>
public sealed class OutputTests
{
    [Fact]
    public void Commands_sharing_a_regular_file_as_stdout_append_to_it()
    {
        // Each berth writes at the file's shared offset, as any program does: the second command's
        // output follows the first's instead of overwriting it.
        using var cli = new BerthCli();
        string file = Path.Combine(cli.Work, "out.txt");
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"{{ '{BerthCli.Binary}' version --format first; '{BerthCli.Binary}' version --format second; }} > '{file}'");
        cli.Configure(start);
        CliResult result = BerthCli.RunProcess(start);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("first\nsecond\n", File.ReadAllText(file));
    }

    /// <summary>
    /// Go templates as people write them for <c>inspect -f</c>: range (with variables and map keys
    /// in order), if/else if/else, with, pipes, parenthesized pipelines, functions, trim markers.
    /// The same expectations hold against dockerd (BERTH_CLI_TEST_DAEMON=dockerd).
    /// </summary>
    [Theory]
    [InlineData("{{range .Config.Env}}{{if eq . \"A=1\" \"B=2\"}}{{.}};{{end}}{{end}}", "A=1;B=2;")]
    [InlineData("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", "a=x b=y ")]
    [InlineData("{{range $i, $arg := .Config.Cmd}}{{if $i}},{{end}}{{$arg}}{{end}}", "sleep,60")]
    [InlineData("{{if not .State.Running}}down{{else if .State.Paused}}paused{{else}}up{{end}}", "up")]
    [InlineData("{{with .Config.Labels}}{{.a}}{{else}}none{{end}} {{with .Config.Domainname}}{{.}}{{else}}no domain{{end}}", "x no domain")]
    [InlineData("{{index .Config.Labels \"b\"}} {{len .Config.Cmd}} {{join .Config.Cmd \"+\"}} {{(index .Config.Cmd 1)}}", "y 2 sleep+60 60")]
    [InlineData("{{.Name | upper}} {{printf \"%s:%d:%q\" .Config.Cmd 7 .Config.Labels.a}} {{.Config.Labels.a | printf \"<%s>\"}}", "/TPL [sleep 60]:7:\"x\" <x>")]
    [InlineData("{{- range .Mounts }}\n  {{- .Destination -}}\n{{ end }}", "/data")]
    [InlineData("{{range .Config.Entrypoint}}x{{else}}no entrypoint{{end}} {{json .Config.Cmd}} {{lower \"ABC\"}} {{title \"one two\"}}", "no entrypoint [\"sleep\",\"60\"] abc One Two")]
    [InlineData("{{json .Config.Labels}} {{json .HostConfig.RestartPolicy}}", "{\"a\":\"x\",\"b\":\"y\"} {\"MaximumRetryCount\":0,\"Name\":\"no\"}")]
    [InlineData("{{if and .State.Running (gt .State.Pid 0)}}pid{{end}} {{or .Config.Domainname \"empty\"}} {{split \"a,b\" \",\"}}", "pid empty [a b]")]
    public void Inspect_templates_with_range_if_with_pipes_and_functions(string template, string expected)
    {
        using var cli = new BerthCli();
        cli.Ok("import", cli.WriteBusyboxTar("rootfs.tar", "templates"), "busybox:latest");
        cli.Ok("run", "-d", "--name", "tpl", "-e", "A=1", "-e", "B=2", "-l", "b=y", "-l", "a=x", "-v", "/data", "busybox", "sleep", "60");
        Assert.Equal(expected + "\n", cli.Ok("inspect", "-f", template, "tpl"));
    }

    [Theory]
    [InlineData("{{nosuch .Name}}", "function \"nosuch\" not defined")]
    [InlineData("{{range .Config.Env}}x", "unexpected EOF")]
    [InlineData("{{.Name}}{{end}}", "unexpected {{end}}")]
    [InlineData("{{(}}", "missing value")]
    [InlineData("{{$x}}", "undefined variable \"$x\"")]
    [InlineData("{{pad \"x\" -1 2}}", "error calling pad: -1 is not a count")]
    [InlineData("{{len 5}}", "error calling len")]
    public void Templates_that_do_not_parse_or_cannot_run_are_refused_with_a_message(string template, string message)
    {
        using var cli = new BerthCli();
        CliResult r = cli.Run("version", "--format", template);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(message, r.Stderr);
    }
}
