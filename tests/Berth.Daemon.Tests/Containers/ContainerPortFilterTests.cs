using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// <c>docker ps --filter publish=… / expose=…</c> as dockerd 20.10 answers them (checked by hand against
/// it): the ports a running container's list entry shows, public ones for publish, private ones for
/// expose, either filter enough (one test for the two); PORT or START-END, /PROTOCOL (tcp by default).
/// </summary>
public sealed class ContainerPortFilterTests : DockerCliTestBase
{
    protected override string BusyboxChange => "EXPOSE 7000/udp";

    private static string Ps(DockerCli docker, params string[] filters)
    {
        List<string> args = ["ps", "-a", "--format", "{{.Names}}"];
        foreach (string f in filters) args.AddRange(["--filter", f]);
        return string.Join(' ', docker.Ok([.. args]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Publish_matches_public_ports_and_expose_private_ones_of_running_containers()
    {
        DockerCli docker = Docker();
        docker.Ok("create", "--name", "created", "-p", "8080:80", "busybox", "sleep", "100");
        docker.Ok("run", "-d", "--name", "r1", "-p", "8081:81", "busybox", "sleep", "100");
        docker.Ok("run", "-d", "--name", "r2", "--expose", "4000", "busybox", "sleep", "100");

        Assert.Equal("r1", Ps(docker, "publish=8081"));
        Assert.Equal("r1", Ps(docker, "publish=8081/tcp"));
        Assert.Equal("", Ps(docker, "publish=8081/udp"));
        Assert.Equal("", Ps(docker, "publish=81"));
        Assert.Equal("", Ps(docker, "publish=80")); // a created container has no ports yet
        Assert.Equal("r1", Ps(docker, "publish=8079-8081"));
        Assert.Equal("r1", Ps(docker, "expose=81"));
        Assert.Equal("r1 r2", Ps(docker, "expose=7000/udp")); // the image's EXPOSE
        Assert.Equal("", Ps(docker, "expose=7000"));
        Assert.Equal("r2", Ps(docker, "expose=3999-4000/tcp"));
        Assert.Equal("", Ps(docker, "publish=4000"));
        Assert.Equal("r2", Ps(docker, "publish=0")); // an exposed, unpublished tcp port's public port is 0
        Assert.Equal("", Ps(docker, "publish=8081/TCP"));
        Assert.Equal("r1", Ps(docker, "publish=8081/"));
        Assert.Equal("r1 r2", Ps(docker, "publish=80", "expose=7000/udp"));
        Assert.Equal("r1", Ps(docker, "publish=1", "publish=8081"));

        foreach (var (filter, message) in new[]
        {
            ("publish=1:2", "filter for 'publish' should not contain ':': 1:2"),
            ("publish=abc", "error while looking up for publish abc: strconv.ParseUint: parsing \"abc\": invalid syntax"),
            ("expose=5-3", "error while looking up for expose 5-3: Invalid range specified for the Port: 5-3"),
            ("publish=65536", "error while looking up for publish 65536: strconv.ParseUint: parsing \"65536\": value out of range"),
            ("expose=-5", "error while looking up for expose -5: strconv.ParseUint: parsing \"\": invalid syntax"),
            ("expose=/udp", "error while looking up for expose /udp: Empty string specified for ports."),
        })
        {
            var (exit, _, error) = docker.Run("ps", "-a", "--filter", filter);
            Assert.NotEqual(0, exit);
            Assert.Contains(message, error);
        }
        docker.Ok("rm", "-f", "created", "r1", "r2");
    }
}
