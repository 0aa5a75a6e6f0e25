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
}
