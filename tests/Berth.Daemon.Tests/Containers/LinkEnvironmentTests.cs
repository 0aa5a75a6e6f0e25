using Berth.Daemon.Containers;

namespace Berth.Daemon.Tests.Containers;

/// <summary>dockerd's link variables (daemon/links/links.go ToEnv), from the linked container's exposed ports and environment.</summary>
public sealed class LinkEnvironmentTests
{
    [Fact]
    public void Ports_sorted_tcp_first_a_run_of_three_or_more_gets_start_and_end_and_HOME_PATH_are_left_out()
    {
        List<string> env = ContainerService.LinkEnvironment("/app", "my-db", "10.0.0.5",
            ["8002/tcp", "53/udp", "8000/tcp", "53/tcp", "8001/tcp"],
            ["PATH=/bin", "HOME=/root", "PASSWORD=a=b", "BROKEN"]);
        Assert.Equal(
        [
            "MY_DB_PORT=tcp://10.0.0.5:53",
            "MY_DB_PORT_8000_TCP_START=tcp://10.0.0.5:8000",
            "MY_DB_PORT_8000_TCP_ADDR=10.0.0.5",
            "MY_DB_PORT_8000_TCP_PROTO=tcp",
            "MY_DB_PORT_8000_TCP_PORT_START=8000",
            "MY_DB_PORT_8000_TCP_END=tcp://10.0.0.5:8002",
            "MY_DB_PORT_8000_TCP_PORT_END=8002",
            "MY_DB_PORT_53_TCP=tcp://10.0.0.5:53",
            "MY_DB_PORT_53_TCP_ADDR=10.0.0.5",
            "MY_DB_PORT_53_TCP_PORT=53",
            "MY_DB_PORT_53_TCP_PROTO=tcp",
            "MY_DB_PORT_53_UDP=udp://10.0.0.5:53",
            "MY_DB_PORT_53_UDP_ADDR=10.0.0.5",
            "MY_DB_PORT_53_UDP_PORT=53",
            "MY_DB_PORT_53_UDP_PROTO=udp",
            "MY_DB_PORT_8000_TCP=tcp://10.0.0.5:8000",
            "MY_DB_PORT_8000_TCP_ADDR=10.0.0.5",
            "MY_DB_PORT_8000_TCP_PORT=8000",
            "MY_DB_PORT_8000_TCP_PROTO=tcp",
            "MY_DB_PORT_8001_TCP=tcp://10.0.0.5:8001",
            "MY_DB_PORT_8001_TCP_ADDR=10.0.0.5",
            "MY_DB_PORT_8001_TCP_PORT=8001",
            "MY_DB_PORT_8001_TCP_PROTO=tcp",
            "MY_DB_PORT_8002_TCP=tcp://10.0.0.5:8002",
            "MY_DB_PORT_8002_TCP_ADDR=10.0.0.5",
            "MY_DB_PORT_8002_TCP_PORT=8002",
            "MY_DB_PORT_8002_TCP_PROTO=tcp",
            "MY_DB_NAME=/app/my-db",
            "MY_DB_ENV_PASSWORD=a=b",
        ], env);
    }

    [Fact]
    public void Without_exposed_ports_only_the_name_and_environment()
        => Assert.Equal(["WEB_NAME=/app/web", "WEB_ENV_A=1"], ContainerService.LinkEnvironment("/app", "web", "10.0.0.6", [], ["A=1"]));

    [Theory]
    [InlineData("web", "web", "web")]
    [InlineData("web:db", "web", "db")]
    [InlineData("/web:/app/db", "web", "db")]
    public void Link_forms(string link, string name, string alias)
        => Assert.Equal((name, alias), ContainerService.ParseLink(link));

    [Theory]
    [InlineData("")]
    [InlineData("a:b:c")]
    [InlineData("web:bad alias")]
    public void Bad_links_are_refused(string link)
        => Assert.Equal(400, Assert.Throws<Berth.Daemon.Api.ApiException>(() => ContainerService.ParseLink(link)).StatusCode);
}
