using System.Diagnostics;

namespace Berth.Daemon.Tests.Cli;

/// <summary>Runs a real docker client against berthd (DOCKER_HOST), with its own empty config directory.</summary>
public sealed class DockerCli(string binary, string dockerHost, string configDir)
{
    public const string Modern = "/usr/local/bin/docker";
    public const string Debian = "/usr/bin/docker";

    public string Binary { get; } = binary;

    public static IEnumerable<object[]> Installed()
        => new[] { Modern, Debian }.Where(File.Exists).Select(b => new object[] { b });

    public (int Exit, string Out, string Err) Run(params string[] args) => RunShell(null, args);

    /// <summary>Runs <c>sh -c</c> with <c>$DOCKER</c> set to this client (for pipes).</summary>
    public (int Exit, string Out, string Err) Shell(string script) => RunShell(script, []);

    private (int Exit, string Out, string Err) RunShell(string? script, string[] args)
    {
        var start = new ProcessStartInfo(script is null ? Binary : "/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (script is null) foreach (string a in args) start.ArgumentList.Add(a);
        else
        {
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(script);
        }
        start.Environment["DOCKER_HOST"] = dockerHost;
        start.Environment["DOCKER_CONFIG"] = configDir;
        start.Environment["DOCKER"] = Binary;
        start.Environment.Remove("DOCKER_CONTEXT");
        start.Environment.Remove("DOCKER_API_VERSION");
        using Process p = Process.Start(start)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Binary} {string.Join(' ', args)}{script} did not finish in 2 minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    public string Ok(params string[] args)
    {
        var (exit, output, error) = Run(args);
        Assert.True(exit == 0, $"{Binary} {string.Join(' ', args)} exited {exit}\nstdout: {output}\nstderr: {error}");
        return output;
    }
}
