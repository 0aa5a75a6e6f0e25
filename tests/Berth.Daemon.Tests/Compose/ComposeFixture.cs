using System.Diagnostics;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Compose;

/// <summary>The compose test classes share one berthd (default bridge in the test's own netns) with busybox:latest.</summary>
[CollectionDefinition(Name)]
public sealed class ComposeCollection : ICollectionFixture<ComposeDaemonFixture>
{
    public const string Name = "compose";
}

/// <summary>
/// One berthd for the compose test classes, and the projects they bring up: each class asks for its
/// project once (<see cref="UpAsync"/>: written to a temp directory and brought up on first use);
/// every project is taken down (containers, networks, volumes, local images) when the collection ends.
/// </summary>
public sealed class ComposeDaemonFixture : IAsyncLifetime
{
    private readonly Dictionary<string, Task<ComposeProject>> _projects = new(StringComparer.Ordinal);
    private TempDirectory _config = null!;

    public DaemonScope Daemon { get; private set; } = null!;
    public DockerCli Docker { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _config = new TempDirectory("docker-config");
        Daemon = await DaemonScope.StartAsync();
        await Daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
        Docker = new DockerCli(DockerCli.Installed().Select(b => (string)b[0]).First(), Daemon.DockerHost, _config.Path);
    }

    public async Task DisposeAsync()
    {
        foreach (Task<ComposeProject> project in _projects.Values)
        {
            if (project.IsCompletedSuccessfully) project.Result.Dispose();
        }
        if (Daemon is not null) await Daemon.DisposeAsync();
        _config?.Dispose();
    }

    /// <summary>
    /// The project NAME made of <paramref name="files"/> (relative path → content), brought up with
    /// <c>up -d</c> the first time it is asked for; a failed up fails every test that asks.
    /// </summary>
    public Task<ComposeProject> UpAsync(string name, IReadOnlyDictionary<string, string> files)
    {
        lock (_projects)
        {
            if (!_projects.TryGetValue(name, out Task<ComposeProject>? project))
            {
                project = Task.Run(() =>
                {
                    var p = new ComposeProject(name, files, Daemon.DockerHost, _config.Path);
                    var (exit, output, error) = p.Run("up", "-d");
                    if (exit != 0)
                    {
                        string containers = Docker.Run("ps", "-a", "-q", "--filter", $"label=com.docker.compose.project={name}").Out;
                        string states = containers.Trim().Length == 0 ? ""
                            : Docker.Run(["inspect", "-f", "{{.Name}} {{json .State}}", .. containers.Split('\n', StringSplitOptions.RemoveEmptyEntries)]).Out;
                        p.Dispose(); // what the failed up made, and the project's directory
                        Assert.Fail($"docker-compose up -d of {name} exited {exit}\nstdout: {output}\nstderr: {error}\n{states}");
                    }
                    return p;
                });
                _projects[name] = project;
            }
            return project;
        }
    }
}

/// <summary>A compose project in a temp directory, driven by Debian's docker-compose against one daemon.</summary>
public sealed class ComposeProject : IDisposable
{
    private readonly TempDirectory _directory = new("compose-project");
    private readonly string _dockerHost;
    private readonly string _dockerConfig;

    public ComposeProject(string name, IReadOnlyDictionary<string, string> files, string dockerHost, string dockerConfig)
    {
        Name = name;
        _dockerHost = dockerHost;
        _dockerConfig = dockerConfig;
        foreach (var (path, content) in files)
        {
            string full = _directory.Combine(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, content);
        }
    }

    public string Name { get; }

    /// <summary>
    /// docker-compose ARGS in the project's directory. <paramref name="environment"/> adds variables
    /// (for interpolation, or COMPOSE_INTERACTIVE_NO_CLI): by default compose runs <c>run</c> and
    /// <c>exec</c> through the docker CLI, as it does for its users.
    /// </summary>
    public (int Exit, string Out, string Err) Run(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo(ComposeTests.ComposeBinary) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false, WorkingDirectory = _directory.Path };
        foreach (string a in new[] { "--ansi", "never", "-p", Name }.Concat(args)) start.ArgumentList.Add(a);
        foreach (string v in new[] { "DOCKER_CONTEXT", "DOCKER_API_VERSION", "COMPOSE_API_VERSION", "DOCKER_TLS_VERIFY", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_INTERACTIVE_NO_CLI" })
            start.Environment.Remove(v);
        start.Environment["DOCKER_HOST"] = _dockerHost;
        start.Environment["DOCKER_CONFIG"] = _dockerConfig;
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using Process p = Process.Start(start)!;
        p.StandardInput.Close();
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"docker-compose {string.Join(' ', args)} did not finish in 2 minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    public (int Exit, string Out, string Err) Run(params string[] args) => Run(null, args);

    /// <summary>docker-compose ARGS that must succeed; stdout and stderr together.</summary>
    public string Ok(params string[] args) => Ok(null, args);

    public string Ok(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var (exit, output, error) = Run(environment, args);
        Assert.True(exit == 0, $"docker-compose {string.Join(' ', args)} exited {exit}\nstdout: {output}\nstderr: {error}");
        return output + error;
    }

    public void Dispose()
    {
        if (File.Exists(ComposeTests.ComposeBinary)) Run("down", "-v", "--rmi", "local", "--remove-orphans", "--timeout", "1");
        _directory.Dispose();
    }
}
