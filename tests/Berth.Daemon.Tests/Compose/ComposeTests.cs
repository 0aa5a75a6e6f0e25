using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Compose;

/// <summary>
/// Debian's docker-compose 1.29 (docker-py, API 1.41) against berthd: a two-service project on a
/// user network with a named volume and a published port, brought up, inspected (ps, logs) and
/// taken down with its network and volumes. Skipped when /usr/bin/docker-compose is missing
/// (apt-get install docker-compose). The "host" of the published port is the test's network
/// namespace (DaemonScope's --bridge-netns).
/// </summary>
public sealed class ComposeTests : DockerCliTestBase
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

    private ComposeProject _project = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _project = new ComposeProject(Project, new Dictionary<string, string> { ["docker-compose.yml"] = ComposeFile }, Daemon.DockerHost, DockerConfig.Path);
    }

    public override async Task DisposeAsync()
    {
        _project?.Dispose(); // down -v: whatever a failed test left
        await base.DisposeAsync();
    }

    private string ComposeOk(params string[] args) => _project.Ok(args);

    [ComposeFact]
    public void Up_ps_logs_and_down_of_a_two_service_project()
    {
        DockerCli docker = Docker();

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
        var (_, page) = Daemon.Netns!.Exec("sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 /bin/busybox nc 127.0.0.1 8088 | tail -1");
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
        string links = Daemon.Netns!.LinksOnceVethsAreGone();
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
