using Berth.Daemon.Configuration;
using System.Text.Json;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// berthd with dockerd's --fixed-cidr, --mtu, --icc=false and --ip, and user networks with
/// <c>-o com.docker.network.driver.mtu</c> / <c>com.docker.network.bridge.enable_icc</c>, through the docker
/// CLI, seen on the real network: the addresses containers get, the MTU inside them, pings that fail
/// without icc and work with it, a published port that answers on the chosen host address only.
/// </summary>
public sealed class DaemonNetworkOptionsTests : DockerCliTestBase
{
    private const string BindIp = "10.123.0.1", OtherIp = "10.123.0.2";

    protected override DaemonOptions Configure(DaemonOptions options) => options with
    {
        BridgeSubnet = "10.55.0.0/16", FixedCidr = "10.55.8.0/24", Mtu = 1400, InterContainerCommunication = false, DefaultBindIp = BindIp,
    };

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        // Two addresses of the test's "host" (on a veth: this kernel has no dummy links): ports must answer on the first only.
        foreach (string[] command in new[]
        {
            new[] { "ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1" },
            ["ip", "addr", "add", BindIp + "/24", "dev", "lan0"],
            ["ip", "addr", "add", OtherIp + "/24", "dev", "lan0"],
            ["ip", "link", "set", "lan1", "up"],
            ["ip", "link", "set", "lan0", "up"],
        })
        {
            var (exit, output) = Daemon.Netns!.Exec(command);
            Assert.True(exit == 0, $"{string.Join(' ', command)}: {output}");
        }
    }

    /// <summary>Two echo requests, 2 s for the first answer: true when any comes back (a first one lost to ARP on a busy machine does not count).</summary>
    private static bool Pings(DockerCli docker, string container, string address)
    {
        var (exit, output, _) = docker.Run("exec", container, "ping", "-c2", "-W2", address);
        return exit == 0 && !output.Contains(" 0 packets received");
    }

    [Fact]
    public void The_default_bridge_takes_fixed_cidr_mtu_and_icc_and_inspect_shows_them()
    {
        DockerCli docker = Docker();
        JsonElement bridge = JsonDocument.Parse(docker.Ok("network", "inspect", "bridge")).RootElement[0];
        JsonElement options = bridge.GetProperty("Options");
        Assert.Equal("false", options.GetProperty("com.docker.network.bridge.enable_icc").GetString());
        Assert.Equal("1400", options.GetProperty("com.docker.network.driver.mtu").GetString());
        Assert.Equal(BindIp, options.GetProperty("com.docker.network.bridge.host_binding_ipv4").GetString());
        Assert.Equal("true", options.GetProperty("com.docker.network.bridge.default_bridge").GetString());
        JsonElement pool = bridge.GetProperty("IPAM").GetProperty("Config")[0];
        Assert.Equal(("10.55.0.0/16", "10.55.8.0/24"), (pool.GetProperty("Subnet").GetString(), pool.GetProperty("IPRange").GetString()));

        docker.Ok("run", "-d", "--name", "ca", "busybox", "sleep", "600");
        docker.Ok("run", "-d", "--name", "cb", "busybox", "sleep", "600");
        string a = docker.Ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "ca").Trim();
        string b = docker.Ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "cb").Trim();
        Assert.StartsWith("10.55.8.", a);
        Assert.StartsWith("10.55.8.", b);
        Assert.Equal("1400", docker.Ok("exec", "ca", "cat", "/sys/class/net/eth0/mtu").Trim());
        Assert.False(Pings(docker, "ca", b));
        Assert.False(Pings(docker, "cb", a));
        Assert.True(Pings(docker, "ca", "10.55.0.1")); // the gateway still answers
    }

    [Fact]
    public void User_networks_take_mtu_and_icc_as_driver_options()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "-o", "com.docker.network.driver.mtu=1450", "-o", "com.docker.network.bridge.enable_icc=false", "closed");
        docker.Ok("network", "create", "open");
        Assert.Equal("false", docker.Ok("network", "inspect", "-f", "{{index .Options \"com.docker.network.bridge.enable_icc\"}}", "closed").Trim());
        foreach (string network in new[] { "closed", "open" })
        {
            docker.Ok("run", "-d", "--name", network + "1", "--network", network, "busybox", "sleep", "600");
            docker.Ok("run", "-d", "--name", network + "2", "--network", network, "busybox", "sleep", "600");
        }
        Assert.Equal("1450", docker.Ok("exec", "closed1", "cat", "/sys/class/net/eth0/mtu").Trim());
        Assert.False(Pings(docker, "closed1", "closed2"));
        Assert.True(Pings(docker, "open1", "open2"));
        Assert.True(Pings(docker, "open2", "open1"));

        void Refused(string option, string expected)
        {
            var (exit, _, error) = docker.Run("network", "create", "-o", option, "bad");
            Assert.NotEqual(0, exit);
            Assert.Contains(expected, error);
        }
        Refused("com.docker.network.bridge.enable_icc=maybe", "failed to parse com.docker.network.bridge.enable_icc value: maybe (strconv.ParseBool: parsing \"maybe\": invalid syntax)");
        Refused("com.docker.network.driver.mtu=abc", "failed to parse com.docker.network.driver.mtu value: abc");
        Refused("com.docker.network.bridge.host_binding_ipv4=bad", "failed to parse com.docker.network.bridge.host_binding_ipv4 value: bad");
    }

    [Fact]
    public void A_port_that_names_no_address_answers_on_the_ip_option_only()
    {
        DockerCli docker = Docker();
        docker.Ok("run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sh", "-c", "mkdir -p /www; echo bound-page > /www/index.html; exec httpd -f -p 80 -h /www");
        Assert.Contains($"80/tcp -> {BindIp}:8080", docker.Ok("port", "web"));
        string Get(string address)
        {
            var (_, output) = Daemon.Netns!.Exec("sh", "-c", $"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 /bin/busybox nc -w 2 {address} 8080");
            return output.TrimEnd().Split('\n').Last();
        }
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Get(BindIp) != "bound-page")
        {
            Assert.True(DateTime.UtcNow < deadline, "the published port never answered on " + BindIp);
            Thread.Sleep(100);
        }
        Assert.NotEqual("bound-page", Get(OtherIp));
        Assert.NotEqual("bound-page", Get("127.0.0.1"));
    }
}
