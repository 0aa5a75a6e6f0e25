using System.Diagnostics;
using Berth.Daemon.Containers;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// berthd runs berth-runtime's start/kill/pause/resume/delete in-process; what a caller sees
/// must be what the berth-runtime binary answers. (The daemon's container tests run every
/// start and removal through this path.)
/// </summary>
public sealed class InProcessRuntimeTests
{
    private static string Cli => Path.Combine(DaemonScope.ArtifactsBin, "berth-runtime");

    [Fact]
    public void Only_berth_runtimes_own_process_free_operations_run_in_process()
    {
        using var root = new TempDirectory("inproc");
        var inProcess = new InProcessRuntime(Cli);
        Assert.Null(inProcess.TryRun("/usr/sbin/runc", ["--root", root.Path], ["start", "a"]));
        Assert.Null(inProcess.TryRun(Cli, ["--root", root.Path], ["create", "--bundle", root.Path, "a"]));
        Assert.Null(inProcess.TryRun(Cli, ["--root", root.Path], ["state", "a"]));
        Assert.Null(inProcess.TryRun(Cli, ["--root", root.Path], ["exec", "a", "true"]));
        Assert.Null(inProcess.TryRun(Cli, ["--root", root.Path, "--debug"], ["start", "a"]));
        Assert.Null(inProcess.TryRun(Cli, [], ["start", "a"]));
        Assert.NotNull(inProcess.TryRun(Path.Combine(DaemonScope.ArtifactsBin, ".", "berth-runtime"), ["--root", root.Path], ["start", "a"]));
    }

    [Theory]
    [InlineData("start", "nosuch")]
    [InlineData("delete", "nosuch")]
    [InlineData("delete", "--force", "nosuch")]
    [InlineData("kill", "nosuch", "TERM")]
    [InlineData("kill", "nosuch", "NOSUCHSIGNAL")]
    [InlineData("pause", "nosuch")]
    [InlineData("resume", "nosuch")]
    public async Task Answers_are_the_binarys(params string[] args)
    {
        Assert.True(File.Exists(Cli), $"{Cli} is missing: run ./build.sh");
        using var root = new TempDirectory("inproc");
        var (code, stdout, stderr) = await new InProcessRuntime(Cli).TryRun(Cli, ["--root", root.Path], args)!;

        var start = new ProcessStartInfo(Cli) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])["--root", root.Path, .. args]) start.ArgumentList.Add(a);
        using Process cli = Process.Start(start)!;
        Task<string> cliStdout = cli.StandardOutput.ReadToEndAsync(), cliStderr = cli.StandardError.ReadToEndAsync();
        await cli.WaitForExitAsync();

        Assert.Equal(cli.ExitCode, code);
        Assert.Equal(await cliStdout, stdout);
        Assert.Equal(await cliStderr, stderr);
    }
}
