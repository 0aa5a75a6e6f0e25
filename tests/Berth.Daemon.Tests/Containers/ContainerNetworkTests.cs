using System.Text.Json;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// Containers on bridge networks through berthd, with the docker CLI: the default bridge, a
/// published port answering on the "host"'s loopback, user networks resolving names and isolated
/// from each other, and everything gone after rm. The "host" is a network namespace of the test's
/// own (DaemonScope passes it as --bridge-netns), deleted with the daemon.
/// </summary>
public sealed class ContainerNetworkTests : DockerCliTestBase
{
    private const string Web = "mkdir -p /www; echo $0 > /www/index.html; exec httpd -f -p 80 -h /www";

    /// <summary>An HTTP GET with busybox nc from inside the test's host namespace; the body's last line.</summary>
    private string GetFromHost(string address, int port)
    {
        var (_, output) = Daemon.Netns!.Exec("sh", "-c", $"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 /bin/busybox nc {address} {port}");
        return output.TrimEnd().Split('\n').Last();
    }

    /// <summary>
    /// <c>--add-host NAME:host-gateway</c> is the default bridge's address (dockerd's default
    /// --host-gateway-ip), reachable from the container; docker 28's <c>NAME=IP</c> form works too.
    /// </summary>
    [Fact]
    public void Add_host_host_gateway_is_the_default_bridges_address()
    {
        DockerCli docker = Docker();
        string gateway = docker.Ok("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "bridge").Trim();
        Assert.Matches(@"^\d+\.\d+\.\d+\.\d+$", gateway);
        string hosts = docker.Ok("run", "--rm", "--add-host", "host.docker.internal:host-gateway", "--add-host", "other=10.1.2.3",
            "busybox", "sh", "-c", "cat /etc/hosts; ping -c1 -W2 host.docker.internal >/dev/null && echo reached");
        Assert.Contains($"{gateway}\thost.docker.internal\n", hosts);
        Assert.Contains("10.1.2.3\tother\n", hosts);
        Assert.Contains("reached", hosts);
    }

    [Fact]
    public void Default_bridge_gives_an_address_a_route_and_published_ports()
    {
        DockerCli docker = Docker();
        string output = docker.Ok("run", "--rm", "busybox", "sh", "-c", "ip -4 addr show eth0 | grep inet; ip route | grep default; ping -c1 -W2 $(ip route | awk '/default/{print $3}') >/dev/null && echo gateway-ok");
        Assert.Matches(@"inet 172\.\d+\.\d+\.\d+/\d+", output);
        Assert.Contains("gateway-ok", output);

        docker.Ok("run", "-d", "--name", "pub", "-p", "8080:80", "-p", "127.0.0.1::80", "busybox", "sh", "-c", Web, "published-page");
        JsonElement inspect = JsonDocument.Parse(docker.Ok("inspect", "pub")).RootElement[0];
        string ip = inspect.GetProperty("NetworkSettings").GetProperty("IPAddress").GetString()!;
        Assert.Matches(@"^172\.", ip);
        string ports = docker.Ok("port", "pub");
        Assert.Contains("80/tcp -> 0.0.0.0:8080", ports);
        Assert.Matches(@"80/tcp -> 127\.0\.0\.1:\d+", ports); // the ephemeral one
        Assert.Contains("0.0.0.0:8080->80/tcp", docker.Ok("ps", "--format", "{{.Ports}}"));

        WaitFor(() => GetFromHost("127.0.0.1", 8080) == "published-page", "the published port on the host's loopback");
        Assert.Equal("published-page", GetFromHost(ip, 80));
        // A second container cannot take the same host port; the refusal names it and leaves nothing.
        var (exit, _, error) = docker.Run("run", "-d", "--name", "clash", "-p", "8080:80", "busybox", "sleep", "100");
        Assert.NotEqual(0, exit);
        Assert.Contains("8080", error);

        docker.Ok("rm", "-f", "pub");
        Assert.NotEqual("published-page", GetFromHost("127.0.0.1", 8080));
        string links = Daemon.Netns!.LinksOnceVethsAreGone();
        Assert.DoesNotContain(": vb", links); // no veth left on the bridge
    }

    [Fact]
    public void User_networks_resolve_names_and_are_isolated_from_each_other()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "front");
        docker.Ok("network", "create", "--subnet", "10.77.0.0/24", "back");
        Assert.Contains("front", docker.Ok("network", "ls", "--format", "{{.Name}}"));
        Assert.Equal("10.77.0.0/24", docker.Ok("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "back").Trim());

        docker.Ok("run", "-d", "--name", "api", "--network", "front", "--network-alias", "service", "busybox", "sh", "-c", Web, "api-page");
        string apiIp = docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.front.IPAddress}}", "api").Trim();
        string get = "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $0 80 && break; sleep 0.2; done | tail -1";
        Assert.Equal("api-page", docker.Ok("run", "--rm", "--network", "front", "busybox", "sh", "-c", get, "api").Trim());
        Assert.Equal("api-page", docker.Ok("run", "--rm", "--network", "front", "busybox", "sh", "-c", get, "service").Trim());

        // From another network the address does not answer (and the name is unknown).
        var (exit, output, _) = docker.Run("run", "--rm", "--network", "back", "busybox", "sh", "-c", $"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {apiIp} 80");
        Assert.DoesNotContain("api-page", output);
        Assert.NotEqual("", apiIp);
        _ = exit;

        var (rmExit, _, rmError) = docker.Run("network", "rm", "front");
        Assert.NotEqual(0, rmExit);
        Assert.Contains("active endpoints", rmError);
        docker.Ok("rm", "-f", "api");
        docker.Ok("network", "rm", "front", "back");
        Assert.DoesNotContain("front", docker.Ok("network", "ls", "--format", "{{.Name}}"));
    }

    [Fact]
    public void None_and_host_modes()
    {
        DockerCli docker = Docker();
        Assert.Equal("lo", docker.Ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net").Trim());
        string hostLinks = string.Join(' ', Directory.GetDirectories("/sys/class/net").Select(Path.GetFileName).Order());
        string inContainer = docker.Ok("run", "--rm", "--network", "host", "busybox", "sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '").Trim();
        Assert.Equal(hostLinks, inContainer);
    }

    [Fact]
    public void Ports_answer_over_ipv6_and_a_port_a_host_program_holds_is_refused()
    {
        DockerCli docker = Docker();
        // A program on the host listening on 8090: dockerd refuses to publish over it.
        using var holder = Berth.Network.Netlink.Netns.RunIn(Daemon.Netns!.Path, "test listener",
            () => new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp));
        holder.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Any, 8090));
        holder.Listen();
        var (exit, _, error) = docker.Run("run", "-d", "--name", "held", "-p", "8090:80", "busybox", "sleep", "100");
        Assert.NotEqual(0, exit);
        Assert.Contains("listen tcp4 0.0.0.0:8090: bind: address already in use", error);
        docker.Run("rm", "-f", "held");

        // The default bridge is IPv4 only: the proxy serves the host's IPv6 addresses, ::1 included.
        docker.Ok("run", "-d", "--name", "web6", "-p", "8091:80", "-p", "[::1]:8092:80", "-p", "0.0.0.0:8093:80", "busybox", "sh", "-c", Web, "page-over-ipv6");
        string ports = docker.Ok("port", "web6");
        Assert.Matches(@"80/tcp -> (\[::\]|::):8091", ports);
        Assert.Matches(@"80/tcp -> (\[::1\]|::1):8092", ports);
        Assert.DoesNotMatch(@"(\[::\]|::):8093", ports); // 0.0.0.0 is IPv4 only, as in docker
        WaitFor(() => GetFromHost("::1", 8091) == "page-over-ipv6", "the published port on the host's ::1");
        Assert.Equal("page-over-ipv6", GetFromHost("::1", 8092));
        Assert.Equal("page-over-ipv6", GetFromHost("127.0.0.1", 8093));
        docker.Ok("rm", "-f", "web6");
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("waiting for " + what);
            Thread.Sleep(100);
        }
    }
}
