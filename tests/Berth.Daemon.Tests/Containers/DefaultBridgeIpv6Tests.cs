using System.Text.Json;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// berthd --ipv6 --fixed-cidr-v6: the default bridge is dual stack as a user network made with --ipv6:
/// containers get an IPv6 address of the subnet and the IPv6 default route, reach each other over IPv6,
/// published ports answer over IPv6 too; inspect shows it as dockerd does. Without --fixed-cidr-v6 the
/// subnet is a /64 of the daemon's ULA prefix (docker 27's default).
/// </summary>
public sealed class DefaultBridgeIpv6Tests
{
    private static DockerCli Docker(DaemonScope daemon, TempDirectory config)
        => new(DockerCli.Installed().Select(b => (string)b[0]).First(), daemon.DockerHost, config.Path);

    [Fact]
    public async Task The_default_bridge_is_dual_stack_with_the_fixed_ipv6_subnet()
    {
        await using DaemonScope daemon = await DaemonScope.StartAsync(o => o with { Ipv6 = true, FixedCidrV6 = "fd00:db8:77::/64" });
        await daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
        using var config = new TempDirectory("docker-config");
        DockerCli docker = Docker(daemon, config);

        JsonElement bridge = JsonDocument.Parse(docker.Ok("network", "inspect", "bridge")).RootElement[0];
        Assert.True(bridge.GetProperty("EnableIPv6").GetBoolean());
        Assert.Contains("\"fd00:db8:77::/64 fd00:db8:77::1\"", JsonSerializer.Serialize(bridge.GetProperty("IPAM").GetProperty("Config").EnumerateArray()
            .Select(p => $"{p.GetProperty("Subnet").GetString()} {p.GetProperty("Gateway").GetString()}").ToList()));

        docker.Ok("run", "-d", "--name", "c6", "-p", "8086:80", "busybox", "sh", "-c", "mkdir -p /www; echo v6-page > /www/index.html; exec httpd -f -p 80 -h /www");
        docker.Ok("run", "-d", "--name", "d6", "busybox", "sleep", "600");
        Assert.Equal("fd00:db8:77::2 64 fd00:db8:77::1",
            docker.Ok("inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}} {{.NetworkSettings.GlobalIPv6PrefixLen}} {{.NetworkSettings.IPv6Gateway}}", "c6").Trim());
        string inside = docker.Ok("exec", "d6", "sh", "-c", "ip -6 addr show eth0; ip -6 route show default");
        Assert.Contains("inet6 fd00:db8:77::3/64 scope global", inside);
        Assert.Contains("default via fd00:db8:77::1 dev eth0", inside);
        Assert.Contains("1 packets received", docker.Ok("exec", "d6", "ping", "-6", "-c1", "-W2", "fd00:db8:77::2"));
        Assert.Contains("[::]:8086", docker.Ok("port", "c6"));

        // The published port over IPv6, from the test's "host" to its bridge address.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        string page = "";
        while (page != "v6-page" && DateTime.UtcNow < deadline)
        {
            page = daemon.Netns!.Exec("sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 /bin/busybox nc -w 2 fd00:db8:77::1 8086").Output.TrimEnd().Split('\n').Last();
            if (page != "v6-page") Thread.Sleep(100);
        }
        Assert.Equal("v6-page", page);
        Assert.Equal("1", daemon.Netns!.Exec("cat", "/proc/sys/net/ipv6/conf/all/forwarding").Output.Trim());
        Assert.Contains("fd00:db8:77::/64", daemon.Netns.Exec("nft", "list", "table", "ip6", "berth").Output);
    }

    [Fact]
    public async Task Without_a_fixed_subnet_the_default_bridge_takes_a_ula_64_and_without_ipv6_stays_ipv4()
    {
        using var config = new TempDirectory("docker-config");
        await using (DaemonScope daemon = await DaemonScope.StartAsync(o => o with { Ipv6 = true }))
        {
            DockerCli docker = Docker(daemon, config);
            string subnet6 = docker.Ok("network", "inspect", "-f", "{{(index .IPAM.Config 1).Subnet}}", "bridge").Trim();
            Assert.StartsWith("fd", subnet6);
            Assert.EndsWith("::/64", subnet6);
        }
        // --fixed-cidr-v6 without --ipv6: accepted and unused, as dockerd does.
        await using (DaemonScope daemon = await DaemonScope.StartAsync(o => o with { FixedCidrV6 = "fd00:db8:78::/64" }))
        {
            DockerCli docker = Docker(daemon, config);
            Assert.Equal("false 1", docker.Ok("network", "inspect", "-f", "{{.EnableIPv6}} {{len .IPAM.Config}}", "bridge").Trim());
            Assert.DoesNotContain("ip6", daemon.Netns!.Exec("nft", "list", "ruleset").Output);
        }
    }
}
