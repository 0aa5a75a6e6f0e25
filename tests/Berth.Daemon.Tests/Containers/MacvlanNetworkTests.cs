using System.Text.Json;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// <c>docker network create -d macvlan|ipvlan</c> against berthd, the real docker client, in DaemonScope's
/// test namespace. The parent is a veth there (<c>lan0</c>, its peer up): this kernel has no dummy links.
/// What dockerd 20.10 answered by hand (in a private namespace) is what these expect.
/// </summary>
public sealed class MacvlanNetworkTests : DockerCliTestBase
{
    private void AddParent(string name)
    {
        foreach (string[] command in new[]
        {
            new[] { "ip", "link", "add", name, "type", "veth", "peer", "name", name + "p" },
            ["ip", "link", "set", name, "up"],
            ["ip", "link", "set", name + "p", "up"],
        })
        {
            var (exit, output) = Daemon.Netns!.Exec(command);
            Assert.True(exit == 0, output);
        }
    }

    [Fact]
    public void Containers_on_a_macvlan_network_reach_each_other_by_name_with_no_published_port()
    {
        AddParent("lan0");
        DockerCli docker = Docker();
        docker.Ok("network", "ls"); // the default bridge is made on first use
        string linksBefore = LinkNames();
        docker.Ok("network", "create", "-d", "macvlan", "--subnet", "10.70.0.0/24", "-o", "parent=lan0", "-o", "foo=bar", "mv");
        JsonElement net = JsonDocument.Parse(docker.Ok("network", "inspect", "mv")).RootElement[0];
        Assert.Equal("macvlan", net.GetProperty("Driver").GetString());
        Assert.Equal("""{"foo":"bar","parent":"lan0"}""", net.GetProperty("Options").GetRawText().Replace(" ", "").Replace("\n", ""));
        // dockerd shows no gateway for a given subnet without one.
        Assert.Equal("""[{"Subnet":"10.70.0.0/24"}]""", net.GetProperty("IPAM").GetProperty("Config").GetRawText().Replace(" ", "").Replace("\n", ""));
        Assert.Contains("macvlan", docker.Ok("network", "ls", "--filter", "driver=macvlan"));

        // -p is accepted and ignored, as dockerd does (it logs "macvlan driver does not support port mappings").
        docker.Ok("run", "-d", "--name", "m1", "--network", "mv", "-p", "8080:80", "busybox", "sleep", "600");
        Assert.Equal("{}", docker.Ok("inspect", "-f", "{{json .NetworkSettings.Ports}}", "m1").Trim());
        Assert.Equal("m1 ", docker.Ok("ps", "--format", "{{.Names}} {{.Ports}}").TrimEnd('\n'));
        Assert.Equal("10.70.0.2 02:42:0a:46:00:02 10.70.0.1",
            docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.mv.IPAddress}} {{.NetworkSettings.Networks.mv.MacAddress}} {{.NetworkSettings.Networks.mv.Gateway}}", "m1").Trim());
        // busybox's ip shows no link kind: iproute2's, in the container's namespace.
        string pid = docker.Ok("inspect", "-f", "{{.State.Pid}}", "m1").Trim();
        string link = Exec("nsenter", $"--net=/proc/{pid}/ns/net", "ip", "-d", "link", "show", "eth0");
        Assert.Contains("link/ether 02:42:0a:46:00:02", link);
        Assert.Contains("macvlan mode bridge", link);
        Assert.Contains("default via 10.70.0.1 dev eth0", docker.Ok("exec", "m1", "ip", "route"));

        Assert.Contains("1 packets received", docker.Ok("run", "--rm", "--network", "mv", "--ip", "10.70.0.50", "busybox", "ping", "-c1", "-W2", "m1"));
        // The embedded DNS server answers on a macvlan network as on a user bridge.
        Assert.Contains("10.70.0.2", docker.Ok("run", "--rm", "--network", "mv", "busybox", "sh", "-c", "nslookup m1 127.0.0.11"));

        // connect / disconnect a running container: an eth1 macvlan link comes and goes.
        docker.Ok("network", "create", "-d", "macvlan", "--subnet", "10.71.0.0/24", "-o", "parent=lan0p", "mv2");
        docker.Ok("network", "connect", "--ip", "10.71.0.9", "mv2", "m1");
        Assert.Contains("inet 10.71.0.9/24", docker.Ok("exec", "m1", "ip", "addr", "show", "eth1"));
        docker.Ok("network", "disconnect", "mv2", "m1");
        Assert.DoesNotContain("eth1", docker.Ok("exec", "m1", "ip", "link"));

        Assert.Contains("has active endpoints", docker.Run("network", "rm", "mv").Err);
        docker.Ok("rm", "-f", "m1");
        docker.Ok("network", "rm", "mv", "mv2");
        Assert.Equal(linksBefore, LinkNames());
    }

    private static string Exec(string file, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: {output}");
        return output;
    }

    private string LinkNames()
    {
        var (exit, links) = Daemon.Netns!.Exec("ip", "-o", "link");
        Assert.Equal(0, exit);
        return string.Join(' ', links.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[1].Trim()));
    }

    [Fact]
    public void Bad_macvlan_and_ipvlan_networks_are_refused_in_dockerds_words()
    {
        AddParent("lan0");
        DockerCli docker = Docker();
        Assert.Contains("invalid subinterface vlan name nope, example formatting is eth0.10",
            docker.Run("network", "create", "-d", "macvlan", "-o", "parent=nope", "x").Err);
        Assert.Contains("vlan id must be between 1-4094, received: 5000",
            docker.Run("network", "create", "-d", "macvlan", "-o", "parent=lan0.5000", "x").Err);
        Assert.Contains("requested macvlan mode 'foo' is not valid, 'bridge' mode is the macvlan driver default",
            docker.Run("network", "create", "-d", "macvlan", "-o", "parent=lan0", "-o", "macvlan_mode=foo", "x").Err);
        Assert.Contains("requested ipvlan mode 'l9' is not valid, 'l2' mode is the ipvlan driver default",
            docker.Run("network", "create", "-d", "ipvlan", "-o", "parent=lan0", "-o", "ipvlan_mode=l9", "x").Err);
        Assert.Contains("loopback interface is not a valid macvlan parent link",
            docker.Run("network", "create", "-d", "macvlan", "-o", "parent=lo", "x").Err);
        docker.Ok("network", "create", "-d", "macvlan", "--subnet", "10.72.0.0/24", "-o", "parent=lan0", "first");
        Assert.Contains("network first is already using parent interface lan0",
            docker.Run("network", "create", "-d", "macvlan", "--subnet", "10.73.0.0/24", "-o", "parent=lan0", "-o", "macvlan_mode=private", "x").Err);
        Assert.Contains("plugin \"overlay\" not found", docker.Run("network", "create", "-d", "overlay", "x").Err);
        Assert.DoesNotContain(" x ", docker.Ok("network", "ls"));

        // An ipvlan network on this kernel (no ipvlan links) is made, as dockerd makes it; its containers cannot start.
        docker.Ok("network", "create", "-d", "ipvlan", "--subnet", "10.74.0.0/24", "-o", "parent=lan0p", "-o", "ipvlan_mode=l3", "iv");
        JsonElement iv = JsonDocument.Parse(docker.Ok("network", "inspect", "iv")).RootElement[0];
        Assert.Equal("ipvlan", iv.GetProperty("Driver").GetString());
        Assert.Equal("""{"ipvlan_mode":"l3","parent":"lan0p"}""", iv.GetProperty("Options").GetRawText().Replace(" ", "").Replace("\n", ""));
    }

    [Fact]
    public async Task A_macvlan_network_and_its_running_container_survive_a_daemon_restart()
    {
        await using RestartableDaemon daemon = await RestartableDaemon.StartAsync("macvlan-restart");
        foreach (string[] command in new[]
        {
            new[] { "ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan0p" },
            ["ip", "link", "set", "lan0", "up"],
            ["ip", "link", "set", "lan0p", "up"],
        })
            Assert.Equal(0, daemon.Netns.Exec(command).Exit);
        DockerCli docker = daemon.Docker;
        docker.Ok("network", "create", "-d", "macvlan", "--subnet", "10.75.0.0/24", "-o", "parent=lan0", "mv");
        docker.Ok("run", "-d", "--name", "stay", "--network", "mv", "busybox", "sleep", "600");
        docker.Ok("run", "-d", "--name", "peer", "--network", "mv", "busybox", "sleep", "600");

        await daemon.StopAsync();
        await daemon.StartAgainAsync();

        Assert.Equal("macvlan", docker.Ok("network", "inspect", "-f", "{{.Driver}}", "mv").Trim());
        Assert.Contains("inet 10.75.0.2/24", docker.Ok("exec", "stay", "ip", "addr", "show", "eth0"));
        Assert.Contains("1 packets received", docker.Ok("exec", "peer", "ping", "-c1", "-W2", "stay"));
        Assert.Equal(2, JsonDocument.Parse(docker.Ok("network", "inspect", "mv")).RootElement[0].GetProperty("Containers").EnumerateObject().Count());
    }
}
