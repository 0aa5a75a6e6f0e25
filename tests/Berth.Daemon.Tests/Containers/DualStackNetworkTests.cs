using System.Diagnostics;
using System.Text.Json;
using Berth.Daemon.Configuration;
using Berth.Daemon.Hosting;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// <c>docker network create --ipv6</c> against berthd, with the docker CLI: containers on a
/// dual-stack network get IPv6 addresses and reach each other by name over IPv6, inspect shows both
/// families, outbound IPv6 leaves masqueraded, bad input is refused with dockerd's words, and
/// <c>network rm</c> leaves nothing. The "host" is DaemonScope's test namespace; an "outside" namespace
/// linked to it plays another machine (host fd99::1, outside fd99::2, no route back to any container).
/// </summary>
public sealed class DualStackNetworkTests : DockerCliTestBase
{
    private string HostSysctl(string key) => Daemon.Netns!.Exec("cat", "/proc/sys/" + key.Replace('.', '/')).Output.Trim();

    [Fact]
    public void Containers_reach_each_other_over_ipv6_by_name_and_inspect_shows_both_families()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "--ipv6", "--subnet", "fd00:db8:1::/64", "--subnet", "10.88.0.0/24", "net6");
        JsonElement net = JsonDocument.Parse(docker.Ok("network", "inspect", "net6")).RootElement[0];
        Assert.True(net.GetProperty("EnableIPv6").GetBoolean());
        var pools = net.GetProperty("IPAM").GetProperty("Config").EnumerateArray().Select(p => $"{p.GetProperty("Subnet").GetString()} {p.GetProperty("Gateway").GetString()}").ToList();
        Assert.Equal(["10.88.0.0/24 10.88.0.1", "fd00:db8:1::/64 fd00:db8:1::1"], pools);

        docker.Ok("run", "-d", "--name", "ca", "--network", "net6", "busybox", "sleep", "600");
        docker.Ok("run", "-d", "--name", "cb", "--network", "net6", "--ip6", "fd00:db8:1::99", "busybox", "sleep", "600");
        JsonElement a = JsonDocument.Parse(docker.Ok("inspect", "ca")).RootElement[0].GetProperty("NetworkSettings");
        JsonElement ep = a.GetProperty("Networks").GetProperty("net6");
        Assert.Equal("fd00:db8:1::2", ep.GetProperty("GlobalIPv6Address").GetString());
        Assert.Equal(64, ep.GetProperty("GlobalIPv6PrefixLen").GetInt32());
        Assert.Equal("fd00:db8:1::1", ep.GetProperty("IPv6Gateway").GetString());
        Assert.StartsWith("10.88.0.", ep.GetProperty("IPAddress").GetString());
        Assert.Equal("", a.GetProperty("GlobalIPv6Address").GetString()); // the top-level fields are the default bridge's, as dockerd's
        Assert.Equal("fd00:db8:1::99", docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.net6.GlobalIPv6Address}} {{.NetworkSettings.Networks.net6.IPAMConfig.IPv6Address}}", "cb").Trim().Split(' ').Distinct().Single());
        string members = docker.Ok("network", "inspect", "-f", "{{range .Containers}}{{.Name}}={{.IPv6Address}} {{end}}", "net6");
        Assert.Contains("ca=fd00:db8:1::2/64", members);
        Assert.Contains("cb=fd00:db8:1::99/64", members);

        // Inside: the address (usable at once), the default route, and peers by name over IPv6.
        string inside = docker.Ok("exec", "ca", "sh", "-c", "ip -6 addr show eth0; ip -6 route show default; grep -w cb /etc/hosts; grep -w $(hostname) /etc/hosts");
        Assert.Contains("inet6 fd00:db8:1::2/64 scope global", inside);
        Assert.Contains("default via fd00:db8:1::1 dev eth0", inside);
        Assert.Contains("fd00:db8:1::99\tcb", inside);
        Assert.Contains("fd00:db8:1::2\t", inside); // its own IPv6 line
        Assert.Contains("1 packets received", docker.Ok("exec", "ca", "ping", "-6", "-c1", "-W2", "cb"));
        Assert.Contains("1 packets received", docker.Ok("run", "--rm", "--network", "net6", "busybox", "ping", "-6", "-c1", "-W2", "ca"));
        Assert.Contains("1 packets received", docker.Ok("exec", "cb", "ping", "-6", "-c1", "-W2", "fd00:db8:1::1"));
    }

    [Fact]
    public void Outbound_ipv6_is_masqueraded_to_the_host_address()
    {
        DockerCli docker = Docker();
        string outside = "berth-t6-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        using var www = new TempDirectory("outside-www");
        Process? httpd = null;
        Exec("ip", "netns", "add", outside);
        try
        {
            Exec("ip", "-n", Daemon.Netns!.Name, "link", "add", "up6", "type", "veth", "peer", "name", "eth0", "netns", outside);
            Exec("ip", "-n", Daemon.Netns.Name, "addr", "add", "fd99::1/64", "dev", "up6", "nodad");
            Exec("ip", "-n", Daemon.Netns.Name, "link", "set", "up6", "up");
            Exec("ip", "-n", outside, "addr", "add", "fd99::2/64", "dev", "eth0", "nodad");
            Exec("ip", "-n", outside, "link", "set", "eth0", "up");
            Exec("ip", "-n", outside, "link", "set", "lo", "up");
            // A CGI that answers with the peer's address: what the outside sees as the source.
            Directory.CreateDirectory(www.Combine("cgi-bin"));
            File.WriteAllText(www.Combine("cgi-bin", "ip"), "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nfrom=%s\\n' \"$REMOTE_ADDR\"\n");
            File.SetUnixFileMode(www.Combine("cgi-bin", "ip"), (UnixFileMode)0x1ed); // 0755
            var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string arg in new[] { "netns", "exec", outside, "/bin/busybox", "httpd", "-f", "-p", "8000", "-h", www.Path }) start.ArgumentList.Add(arg);
            httpd = Process.Start(start)!;
            for (int i = 0; i < 100 && !Exec("ip", "netns", "exec", outside, "/bin/busybox", "netstat", "-ltn").Contains(":8000 ", StringComparison.Ordinal); i++) Thread.Sleep(50);

            docker.Ok("network", "create", "--ipv6", "--subnet", "fd00:db8:2::/64", "out6");
            docker.Ok("network", "create", "--ipv6", "--internal", "--subnet", "fd00:db8:3::/64", "in6");
            string seen = docker.Ok("run", "--rm", "--network", "out6", "busybox", "sh", "-c", "printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 3 fd99::2 8000");
            Assert.Contains("fd99::1", seen); // the host's address on the way out, not fd00:db8:2::2
            Assert.DoesNotContain("fd00:db8:2", seen);
            Assert.Contains("1 packets received", docker.Ok("run", "--rm", "--network", "out6", "busybox", "ping", "-6", "-c1", "-W2", "fd99::2"));
            var (exit, output, _) = docker.Run("run", "--rm", "--network", "in6", "busybox", "sh", "-c", "ip -6 route show default; ping -6 -c1 -W2 fd99::2");
            Assert.NotEqual(0, exit); // --internal stays isolated
            Assert.DoesNotContain("default", output);
            docker.Ok("network", "rm", "out6", "in6");
        }
        finally
        {
            if (httpd is not null)
            {
                if (!httpd.HasExited) httpd.Kill();
                httpd.WaitForExit(5000);
                httpd.Dispose();
            }
            Exec("ip", "netns", "del", outside);
        }
    }

    [Fact]
    public async Task Bad_input_gets_dockerd_errors()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "--ipv6", "--subnet", "fd00:db8:1::/64", "net6");
        docker.Ok("network", "create", "v4only");
        docker.Ok("network", "create", "--ipv6", "ula6"); // an IPv6 subnet from the daemon's ULA prefix
        string ula = docker.Ok("network", "inspect", "-f", "{{(index .IPAM.Config 1).Subnet}}", "ula6").Trim();
        Assert.StartsWith("fd", ula);
        Assert.EndsWith("::/64", ula);
        void Refused(string expected, params string[] args)
        {
            var (exit, _, error) = docker.Run(args);
            Assert.NotEqual(0, exit);
            Assert.Contains(expected, error);
        }
        Refused("invalid IPv6 subnet", "network", "create", "--ipv6", "--subnet", "fd00:zz::/64", "bad1");
        Refused("it should be fd00:db8:9::/64", "network", "create", "--ipv6", "--subnet", "fd00:db8:9::1/64", "bad2");
        Refused("IPv6 is not enabled", "network", "create", "--subnet", "fd00:db8:7::/64", "bad3");
        Refused("overlaps", "network", "create", "--ipv6", "--subnet", "fd00:db8::/32", "bad4");
        // The docker CLI pairs gateways with subnets itself; through the API a mismatch reaches berthd.
        using (var response = await Daemon.Client.PostAsync("/networks/create", new StringContent(
            """{"Name":"bad5","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:db8:8::/64","Gateway":"10.0.0.1"}]}}""", System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Equal(400, (int)response.StatusCode);
            Assert.Contains("invalid gateway 10.0.0.1: parent subnet is an IPv6 block", await response.Content.ReadAsStringAsync());
        }
        Refused("invalid IPv6 address", "run", "--rm", "--network", "net6", "--ip6", "10.1.2.3", "busybox", "true");
        Refused("no configured subnet or ip-range contain the IP address fd00:db8:2::5", "run", "--rm", "--network", "net6", "--ip6", "fd00:db8:2::5", "busybox", "true");
        Refused("user specified IP address is supported only when connecting to networks with user configured subnets", "run", "--rm", "--network", "v4only", "--ip6", "fd00:db8:1::5", "busybox", "true");
        Refused("user specified IP address is supported only when connecting to networks with user configured subnets", "run", "--rm", "--network", "ula6", "--ip6", "fd00::5", "busybox", "true");
        Refused("user specified IP address is supported on user defined networks only", "run", "--rm", "--ip6", "fd00:db8:1::5", "busybox", "true");
        docker.Ok("run", "-d", "--name", "cc", "--network", "v4only", "busybox", "sleep", "600");
        Refused("user specified IP address is supported only when connecting to networks with user configured subnets", "network", "connect", "--ip6", "fd00:db8:1::5", "v4only", "cc");
        docker.Ok("network", "connect", "--ip6", "fd00:db8:1::77", "net6", "cc");
        Assert.Equal("fd00:db8:1::77", docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.net6.GlobalIPv6Address}}", "cc").Trim());
        Assert.Contains("inet6 fd00:db8:1::77/64", docker.Ok("exec", "cc", "ip", "-6", "addr", "show", "eth1"));
        Assert.DoesNotContain("bad", docker.Ok("network", "ls", "--format", "{{.Name}}"));
    }

    [Fact]
    public void Nothing_is_left_after_network_rm_and_forwarding_is_restored()
    {
        DockerCli docker = Docker();
        string forwardingBefore = HostSysctl("net.ipv6.conf.all.forwarding");
        Assert.Equal("0", forwardingBefore);
        docker.Ok("network", "create", "--ipv6", "--subnet", "fd00:db8:4::/64", "gone6");
        docker.Ok("run", "-d", "--name", "cp", "--network", "gone6", "-p", "8086:80", "busybox", "sleep", "600");
        Assert.Equal("1", HostSysctl("net.ipv6.conf.all.forwarding"));
        Assert.Contains("8086", Daemon.Netns!.Exec("nft", "list", "table", "ip6", "berth").Output);
        Assert.Contains("[::]:8086", docker.Ok("port", "cp"));

        docker.Ok("rm", "-f", "cp");
        docker.Ok("network", "rm", "gone6");
        Assert.DoesNotContain("bb-", Daemon.Netns.LinksOnceVethsAreGone());
        string rules = Daemon.Netns.Exec("nft", "list", "ruleset").Output;
        Assert.DoesNotContain("ip6", rules);
        Assert.DoesNotContain("fd00:db8:4", rules);
        Assert.Equal(forwardingBefore, HostSysctl("net.ipv6.conf.all.forwarding"));
        Assert.DoesNotContain("fd00:db8:4", Daemon.Netns.Exec("ip", "-6", "route").Output);
    }

    private static string Exec(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0 && file == "ip" && args.FirstOrDefault() != "netns") throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {output}");
        return output;
    }
}

/// <summary>
/// berthd stopped and started again while a container runs on a dual-stack network, with the IPv6
/// table and forwarding gone meanwhile (a crash, an admin's flush): the start-up reconcile brings both
/// back from the persisted state, the container keeps its address, and a new peer reaches it over IPv6.
/// Its own daemon, as HealthRestoreTests: the containers are removed even when it fails.
/// </summary>
public sealed class DualStackRestartTests
{
    [Fact]
    public async Task A_restart_reconciles_the_ipv6_rules_and_forwarding()
    {
        await using RestartableDaemon daemon = await RestartableDaemon.StartAsync("dual-restart");
        DockerCli docker = daemon.Docker;
        TestNetns netns = daemon.Netns;
        string Forwarding() => netns.Exec("cat", "/proc/sys/net/ipv6/conf/all/forwarding").Output.Trim();
        docker.Ok("network", "create", "--ipv6", "--subnet", "fd00:db8:6::/64", "keep6");
        docker.Ok("run", "-d", "--name", "kept", "--network", "keep6", "busybox", "sleep", "600");
        Assert.Equal("1", Forwarding());

        await daemon.StopAsync(); // the container runs on
        netns.Exec("nft", "delete", "table", "ip6", "berth");
        netns.Exec("sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/all/forwarding");
        await daemon.StartAgainAsync();

        Assert.Equal("1", Forwarding());
        Assert.Contains("fd00:db8:6::/64", netns.Exec("nft", "list", "table", "ip6", "berth").Output);
        Assert.Equal("fd00:db8:6::2", docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.keep6.GlobalIPv6Address}}", "kept").Trim());
        Assert.Contains("1 packets received", docker.Ok("run", "--rm", "--network", "keep6", "busybox", "ping", "-6", "-c1", "-W2", "kept"));

        docker.Ok("rm", "-f", "kept");
        docker.Ok("network", "rm", "keep6");
        Assert.Equal("0", Forwarding());
        Assert.DoesNotContain("ip6", netns.Exec("nft", "list", "ruleset").Output);
    }
}
