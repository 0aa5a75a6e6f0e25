using System.Diagnostics;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Compose;

/// <summary>
/// Debian's docker-compose 1.29 (docker-py, API 1.41) against berthd: a two-service project on a
/// user network with a named volume and a published port, brought up, inspected (ps, logs) and
/// taken down with its network and volumes. Skipped when /usr/bin/docker-compose is missing
/// (apt-get install docker-compose). The "host" of the published port is the test's network
/// namespace (DaemonScope's --bridge-netns).
/// </summary>
public sealed class ComposeTests : IAsyncLifetime
{
    internal const string ComposeBinary = "/usr/bin/docker-compose";
    private const string Project = "berthcompose";

    // web serves a page from the named volume; client fetches it through the service name and writes it out.
    private const string ComposeFile = """
        version: "3.8"
        services:
          web:
            image: busybox:latest
            command: ["sh", "-c", "echo compose-page > /www/index.html; exec httpd -f -p 80 -h /www"]
            volumes:
              - site:/www
            networks:
              - appnet
            ports:
              - "8088:80"
          client:
            image: busybox:latest
            depends_on:
              - web
            command: ["sh", "-c", "for i in $$(seq 1 50); do page=$$(timeout 2 busybox wget -q -O - http://web/) && break; sleep 0.2; done; echo fetched: $$page; exec sleep 600"]
            networks:
              - appnet
        networks:
          appnet:
            labels:
              org.example.tier: front
        volumes:
          site:
            labels:
              org.example.kind: content
        """;

    private DaemonScope _daemon = null!;
    private TempDirectory _project = null!;
    private TempDirectory _config = null!;

    public async Task InitializeAsync()
    {
        _project = new TempDirectory("compose-project");
        _config = new TempDirectory("docker-config");
        _daemon = await DaemonScope.StartAsync();
        await _daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
        File.WriteAllText(_project.Combine("docker-compose.yml"), ComposeFile);
    }

    public async Task DisposeAsync()
    {
        if (File.Exists(ComposeBinary)) Compose("down", "-v", "--timeout", "1"); // whatever a failed test left
        if (_daemon is not null) await _daemon.DisposeAsync();
        _project.Dispose();
        _config.Dispose();
    }

    private (int Exit, string Out, string Err) Compose(params string[] args)
    {
        var start = new ProcessStartInfo(ComposeBinary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _project.Path };
        foreach (string a in new[] { "--no-ansi", "-p", Project }.Concat(args)) start.ArgumentList.Add(a);
        start.Environment["DOCKER_HOST"] = _daemon.DockerHost;
        start.Environment["DOCKER_CONFIG"] = _config.Path;
        start.Environment["COMPOSE_INTERACTIVE_NO_CLI"] = "1";
        foreach (string v in new[] { "DOCKER_CONTEXT", "DOCKER_API_VERSION", "COMPOSE_API_VERSION", "DOCKER_TLS_VERIFY", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME" })
            start.Environment.Remove(v);
        using Process p = Process.Start(start)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"docker-compose {string.Join(' ', args)} did not finish in 3 minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private string ComposeOk(params string[] args)
    {
        var (exit, output, error) = Compose(args);
        Assert.True(exit == 0, $"docker-compose {string.Join(' ', args)} exited {exit}\nstdout: {output}\nstderr: {error}");
        return output + error;
    }

    [ComposeFact]
    public void Up_ps_logs_and_down_of_a_two_service_project()
    {
        var docker = new DockerCli(DockerCli.Installed().Select(b => (string)b[0]).First(), _daemon.DockerHost, _config.Path);

        string up = ComposeOk("up", "-d");
        Assert.Contains($"Creating network \"{Project}_appnet\"", up);
        Assert.Contains($"Creating volume \"{Project}_site\"", up);

        string ps = ComposeOk("ps");
        Assert.Matches($@"{Project}_web_1\s.*Up\s.*0\.0\.0\.0:8088->80/tcp", ps);
        Assert.Matches($@"{Project}_client_1\s.*Up", ps);

        // The client reached web by its service name, on the project's network.
        string logs = "";
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!logs.Contains("fetched: compose-page", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(200);
            logs = ComposeOk("logs", "client");
        }
        Assert.True(logs.Contains("fetched: compose-page", StringComparison.Ordinal), logs + "\n" + ComposeOk("logs") + docker.Ok("inspect", $"{Project}_client_1", $"{Project}_web_1"));

        // The published port answers on the host's loopback; the page came from the named volume.
        var (_, page) = _daemon.Netns!.Exec("sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 /bin/busybox nc 127.0.0.1 8088 | tail -1");
        Assert.Equal("compose-page", page.Trim());
        Assert.Equal("front", docker.Ok("network", "inspect", "-f", "{{index .Labels \"org.example.tier\"}}", $"{Project}_appnet").Trim());
        Assert.Equal(Project, docker.Ok("volume", "inspect", "-f", "{{index .Labels \"com.docker.compose.project\"}}", $"{Project}_site").Trim());

        // A second up changes nothing: compose finds its network, volume and containers as it left them.
        string again = ComposeOk("up", "-d");
        Assert.Contains("is up-to-date", again);

        ComposeOk("down", "-v", "--timeout", "1");
        Assert.Equal("", docker.Ok("ps", "-a", "-q", "--filter", $"label=com.docker.compose.project={Project}").Trim());
        Assert.DoesNotContain(Project, docker.Ok("network", "ls", "--format", "{{.Name}}"));
        Assert.DoesNotContain(Project, docker.Ok("volume", "ls", "--format", "{{.Name}}"));
        string links = _daemon.Netns!.LinksOnceVethsAreGone();
        Assert.DoesNotContain(": vb", links);
    }
}

/// <summary>A fact skipped, with the reason, where Debian's docker-compose is not installed.</summary>
public sealed class ComposeFactAttribute : FactAttribute
{
    public ComposeFactAttribute()
    {
        if (!File.Exists(ComposeTests.ComposeBinary)) Skip = $"{ComposeTests.ComposeBinary} is missing: apt-get install -y docker-compose (Debian's 1.29)";
    }
}
