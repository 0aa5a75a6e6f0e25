using Berth.Daemon.Configuration;
using Berth.Daemon.Hosting;
using Berth.Daemon.Tests.Cli;
using Berth.Network;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// berthd with --default-address-pool: the default bridge (without --bip) and user networks without
/// --subnet take their subnets from the pools, in order, rather than Docker's built-in list; and a
/// restart with other pools makes the (unused) default bridge again from them, as dockerd does at
/// each start. Each run has its own daemon and test namespace.
/// </summary>
public sealed class DefaultAddressPoolTests
{
    private static readonly AddressPool[] Pools = [new(Ipv4Subnet.Parse("10.10.0.0/23"), 24), new(Ipv4Subnet.Parse("10.20.0.0/16"), 26)];

    [Fact]
    public async Task The_default_bridge_and_user_networks_take_subnets_from_the_pools()
    {
        await using DaemonScope daemon = await DaemonScope.StartAsync(o => o with { DefaultAddressPools = Pools });
        await daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
        using var config = new TempDirectory("docker-config");
        var docker = new DockerCli(DockerCli.Installed().Select(b => (string)b[0]).First(), daemon.DockerHost, config.Path);

        Assert.Contains("inet 10.10.0.2/24", docker.Ok("run", "--rm", "busybox", "ip", "-4", "addr", "show", "eth0"));
        Assert.Equal("10.10.0.0/24 10.10.0.1", docker.Ok("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "bridge").Trim());
        docker.Ok("network", "create", "one");
        docker.Ok("network", "create", "two");
        docker.Ok("network", "create", "--subnet", "10.99.0.0/24", "given"); // a subnet given is taken as given
        Assert.Equal("10.10.1.0/24", docker.Ok("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "one").Trim());
        Assert.Equal("10.20.0.0/26", docker.Ok("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "two").Trim());
        Assert.Contains("inet 10.20.0.2/26", docker.Ok("run", "--rm", "--network", "two", "busybox", "ip", "-4", "addr", "show", "eth0"));
        Assert.Contains("10.10.1.0/24 dev bb-", daemon.Netns!.Exec("ip", "route").Output);
    }

    [Fact]
    public async Task A_restart_with_other_pools_makes_the_unused_default_bridge_again_from_them()
    {
        using var dir = new TempDirectory("pools-restart");
        using var netns = TestNetns.Create();
        using var config = new TempDirectory("docker-config");
        DaemonOptions options = DaemonScope.OptionsIn(dir) with { BridgeNetns = netns.Path };
        var docker = new DockerCli(DockerCli.Installed().Select(b => (string)b[0]).First(), "unix://" + dir.Combine("exec", "berth.sock"), config.Path);
        string Subnet(string network) => docker.Ok("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", network).Trim();

        await using (DaemonHost first = await DaemonHost.StartAsync(options))
        {
            Assert.Equal("172.17.0.0/16", Subnet("bridge")); // Docker's first pool
            docker.Ok("network", "create", "user");
            Assert.Equal("172.18.0.0/16", Subnet("user"));
        }
        await using (DaemonHost second = await DaemonHost.StartAsync(options with { DefaultAddressPools = Pools }))
        {
            Assert.Equal("10.10.0.0/24", Subnet("bridge"));
            Assert.Equal("172.18.0.0/16", Subnet("user")); // a user network keeps what it was given
            string addresses = netns.Exec("ip", "-4", "addr", "show", "berth0").Output;
            Assert.Contains("inet 10.10.0.1/24", addresses);
            Assert.DoesNotContain("172.17.", addresses);
            docker.Ok("network", "rm", "user");
        }
    }
}
