using System.Text;
using System.Text.Json;
using Berth.Daemon.Configuration;
using Berth.Daemon.Hosting;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// <c>docker network create --ip-range CIDR --aux-address name=ip</c> against berthd: containers get
/// addresses from the range only, auxiliary addresses are never handed out, a static --ip anywhere in
/// the subnet is taken (as dockerd takes it), inspect shows both as dockerd does, bad values get
/// moby's words. The "host" is DaemonScope's test namespace.
/// </summary>
public sealed class IpRangeNetworkTests : DockerCliTestBase
{
    [Fact]
    public void Containers_get_addresses_from_the_range_and_never_an_auxiliary_one()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "--subnet", "10.61.0.0/16", "--gateway", "10.61.0.1", "--ip-range", "10.61.5.0/29",
            "--aux-address", "a=10.61.5.1", "--aux-address", "b=10.61.9.9", "ranged");
        JsonElement pool = JsonDocument.Parse(docker.Ok("network", "inspect", "ranged")).RootElement[0].GetProperty("IPAM").GetProperty("Config")[0];
        Assert.Equal("""{"Subnet":"10.61.0.0/16","IPRange":"10.61.5.0/29","Gateway":"10.61.0.1","AuxiliaryAddresses":{"a":"10.61.5.1","b":"10.61.9.9"}}""", pool.GetRawText().Replace(" ", "").Replace("\n", ""));

        docker.Ok("run", "-d", "--name", "r1", "--network", "ranged", "busybox", "sleep", "600");
        docker.Ok("run", "-d", "--name", "r2", "--network", "ranged", "busybox", "sleep", "600");
        Assert.Equal("10.61.5.0", docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.ranged.IPAddress}}", "r1").Trim());
        Assert.Equal("10.61.5.2", docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.ranged.IPAddress}}", "r2").Trim());
        Assert.Contains("inet 10.61.5.2/16", docker.Ok("exec", "r2", "ip", "-4", "addr", "show", "eth0"));
        Assert.Contains("1 packets received", docker.Ok("exec", "r2", "ping", "-c1", "-W2", "r1"));

        // A static address outside the range but inside the subnet is taken, as dockerd takes it.
        Assert.Contains("inet 10.61.0.50/16", docker.Ok("run", "--rm", "--network", "ranged", "--ip", "10.61.0.50", "busybox", "ip", "-4", "addr", "show", "eth0"));
        foreach (string reserved in new[] { "10.61.5.1", "10.61.9.9" })
        {
            var (exit, _, error) = docker.Run("run", "--rm", "--network", "ranged", "--ip", reserved, "busybox", "true");
            Assert.NotEqual(0, exit);
            Assert.Contains($"address {reserved} is already in use", error);
        }
        Assert.Contains("no configured subnet or ip-range contain the IP address 10.62.0.5",
            docker.Run("run", "--rm", "--network", "ranged", "--ip", "10.62.0.5", "busybox", "true").Err);

        // The range holds 8 addresses, one of them reserved: 7 containers at most.
        for (int i = 3; i <= 7; i++) docker.Ok("run", "-d", "--name", $"fill{i}", "--network", "ranged", "busybox", "sleep", "600");
        var (fullExit, _, fullError) = docker.Run("run", "-d", "--name", "one-too-many", "--network", "ranged", "busybox", "sleep", "600");
        Assert.NotEqual(0, fullExit);
        Assert.Contains("ip-range 10.61.5.0/29 of 10.61.0.0/16 is full", fullError);
    }

    [Fact]
    public void An_ipv6_subnet_takes_a_range_and_auxiliary_addresses_too()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "--ipv6", "--subnet", "fd00:db8:5::/64", "--ip-range", "fd00:db8:5::100/120",
            "--aux-address", "v6gw=fd00:db8:5::100", "--subnet", "10.65.0.0/24", "ranged6");
        JsonElement pools = JsonDocument.Parse(docker.Ok("network", "inspect", "ranged6")).RootElement[0].GetProperty("IPAM").GetProperty("Config");
        JsonElement v6 = pools.EnumerateArray().Single(p => p.GetProperty("Subnet").GetString() == "fd00:db8:5::/64");
        Assert.Equal("fd00:db8:5::100/120", v6.GetProperty("IPRange").GetString());
        Assert.Equal("fd00:db8:5::100", v6.GetProperty("AuxiliaryAddresses").GetProperty("v6gw").GetString());
        Assert.False(pools.EnumerateArray().Single(p => p.GetProperty("Subnet").GetString() == "10.65.0.0/24").TryGetProperty("IPRange", out _));

        docker.Ok("run", "-d", "--name", "six1", "--network", "ranged6", "busybox", "sleep", "600");
        Assert.Equal("fd00:db8:5::101", docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.ranged6.GlobalIPv6Address}}", "six1").Trim());
        Assert.Contains("inet6 fd00:db8:5::102/64", docker.Ok("run", "--rm", "--network", "ranged6", "busybox", "ip", "-6", "addr", "show", "eth0"));
        Assert.Contains("inet6 fd00:db8:5::9/64", docker.Ok("run", "--rm", "--network", "ranged6", "--ip6", "fd00:db8:5::9", "busybox", "ip", "-6", "addr", "show", "eth0"));
        Assert.Contains("address fd00:db8:5::100 is already in use (auxiliary address v6gw)",
            docker.Run("run", "--rm", "--network", "ranged6", "--ip6", "fd00:db8:5::100", "busybox", "true").Err);
    }

    [Fact]
    public async Task Bad_ranges_and_auxiliary_addresses_get_mobys_words_and_make_nothing()
    {
        async Task Refused(string pool, int status, string expected, bool ipv6 = false)
        {
            string body = "{\"Name\":\"bad\",\"EnableIPv6\":" + (ipv6 ? "true" : "false") + ",\"IPAM\":{\"Config\":[" + pool + "]}}";
            using HttpResponseMessage response = await Daemon.Client.PostAsync("/networks/create", new StringContent(body, Encoding.UTF8, "application/json"));
            string text = await response.Content.ReadAsStringAsync();
            Assert.True(status == (int)response.StatusCode, $"{pool}: {(int)response.StatusCode} {text}");
            Assert.Contains(expected, JsonDocument.Parse(text).RootElement.GetProperty("message").GetString());
        }
        await Refused("""{"Subnet":"10.62.0.0/16","IPRange":"10.62.1.5/24"}""", 400, "invalid network config:\ninvalid ip-range 10.62.1.5/24: it should be 10.62.1.0/24");
        await Refused("""{"Subnet":"10.62.0.0/16","IPRange":"10.63.0.0/24"}""", 400, "invalid ip-range 10.63.0.0/24: parent subnet 10.62.0.0/16 doesn't contain ip-range");
        await Refused("""{"Subnet":"10.62.0.0/16","IPRange":"10.0.0.0/8"}""", 400, "invalid ip-range 10.0.0.0/8: CIDR block is bigger than its parent subnet 10.62.0.0/16");
        await Refused("""{"Subnet":"10.62.0.0/16","IPRange":"bad"}""", 400, "invalid ip-range bad: invalid CIDR block notation");
        await Refused("""{"Subnet":"10.62.0.0/16","IPRange":"fd00::/64"}""", 400, "invalid ip-range fd00::/64: parent subnet is an IPv4 block");
        await Refused("""{"IPRange":"10.62.1.0/24"}""", 400, "every ip-range or auxiliary address must have a corresponding subnet");
        await Refused("""{"Subnet":"10.62.0.0/16","AuxiliaryAddresses":{"a":"10.70.0.1"}}""", 400, "invalid auxiliary address a: parent subnet 10.62.0.0/16 doesn't contain this address");
        await Refused("""{"Subnet":"10.62.0.0/16","AuxiliaryAddresses":{"a":"xx"}}""", 400, "invalid auxiliary address a: invalid address");
        await Refused("""{"Subnet":"10.62.0.0/16","AuxiliaryAddresses":{"gw":"10.62.0.1"}}""", 409, "failed to allocate secondary ip address (gw:10.62.0.1): Address already in use");
        await Refused("""{"Subnet":"10.62.0.0/16","AuxiliaryAddresses":{"net":"10.62.0.0"}}""", 409, "Address already in use");
        await Refused("""{"Subnet":"fd00:db8:3::/64","IPRange":"fd00:db8:4::/80"}""", 400, "invalid ip-range fd00:db8:4::/80: parent subnet fd00:db8:3::/64 doesn't contain ip-range", ipv6: true);
        await Refused("""{"Subnet":"fd00:db8:3::/64","IPRange":"fd00:db8:3::1/80"}""", 400, "invalid ip-range fd00:db8:3::1/80: it should be fd00:db8:3::/80", ipv6: true);
        await Refused("""{"Subnet":"fd00:db8:3::/64","AuxiliaryAddresses":{"v4":"10.62.0.9"}}""", 400, "invalid auxiliary address v4: parent subnet is an IPv6 block", ipv6: true);
        await Refused("""{"Subnet":"fd00:db8:3::/64","AuxiliaryAddresses":{"gw":"fd00:db8:3::1"}}""", 409, "failed to allocate secondary ip address (gw:fd00:db8:3::1): Address already in use", ipv6: true);

        DockerCli docker = Docker();
        Assert.DoesNotContain("bad", docker.Ok("network", "ls", "--format", "{{.Name}}"));
        Assert.DoesNotContain("bb-", Daemon.Netns!.Exec("ip", "-o", "link").Output);
        // What was refused holds no subnet: the same subnet is free for a good network.
        docker.Ok("network", "create", "--subnet", "10.62.0.0/16", "--ip-range", "10.62.1.0/24", "good");
    }
}

/// <summary>
/// A network with an ip-range and auxiliary addresses across a berthd restart, with a container
/// running through it: inspect shows them the same, and the next container's address still comes from
/// the range, past the running one's and the reserved one. Its own daemon, as DualStackRestartTests.
/// </summary>
public sealed class IpRangeRestartTests
{
    [Fact]
    public async Task The_range_and_auxiliary_addresses_survive_a_restart()
    {
        await using RestartableDaemon daemon = await RestartableDaemon.StartAsync("iprange-restart");
        DockerCli docker = daemon.Docker;
        docker.Ok("network", "create", "--subnet", "10.64.0.0/24", "--ip-range", "10.64.0.64/26", "--aux-address", "printer=10.64.0.65", "keep");
        string before = docker.Ok("network", "inspect", "-f", "{{json .IPAM.Config}}", "keep");
        docker.Ok("run", "-d", "--name", "kept", "--network", "keep", "busybox", "sleep", "600");
        Assert.Equal("10.64.0.64", docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.keep.IPAddress}}", "kept").Trim());

        await daemon.StopAsync(); // the container runs on
        await daemon.StartAgainAsync();

        Assert.Equal(before, docker.Ok("network", "inspect", "-f", "{{json .IPAM.Config}}", "keep"));
        Assert.Contains("\"IPRange\":\"10.64.0.64/26\"", before);
        Assert.Contains("\"printer\":\"10.64.0.65\"", before);
        Assert.Contains("inet 10.64.0.66/24", docker.Ok("run", "--rm", "--network", "keep", "busybox", "ip", "-4", "addr", "show", "eth0"));
        Assert.Equal("10.64.0.64", docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.keep.IPAddress}}", "kept").Trim());
    }
}
