using System.Net;
using System.Net.Sockets;
using Berth.Daemon.Tests.Cli;
using Berth.Network;
using Berth.Network.Netlink;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// dockerd's embedded DNS server, as containers see it: on a user-defined network resolv.conf names
/// 127.0.0.11, which answers the names of the network's containers (busybox's nslookup asks the
/// server directly, never /etc/hosts; it runs through sh, as the test rootfs has no applet links
/// but sh's), their addresses' PTR records, and forwards the rest.
/// </summary>
public sealed class EmbeddedDnsTests : DockerCliTestBase
{
    private static readonly IPAddress UpstreamAnswer = IPAddress.Parse("192.0.2.99");

    [Fact]
    public void Names_aliases_and_addresses_on_a_user_network_resolve_at_127_0_0_11_and_port_53_stays_free()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "dnsnet");
        string webId = docker.Ok("run", "-d", "--name", "web", "--network", "dnsnet", "--network-alias", "www", "busybox", "sleep", "600").Trim();
        string webIp = docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.dnsnet.IPAddress}}", "web").Trim();
        Assert.True(Daemon.Host.Engine.Containers.Network!.HasDns(webId));

        string output = docker.Ok("run", "--rm", "--network", "dnsnet", "busybox", "sh", "-c",
            "cat /etc/resolv.conf; nslookup web; nslookup WWW.dnsnet; nslookup " + webIp + "; (nc -l -p 53 &); sleep 0.3; netstat -ltn");
        Assert.StartsWith("nameserver 127.0.0.11\n", output);
        Assert.Contains("ndots:0", output);
        Assert.Contains("Name:\tweb\nAddress: " + webIp + "\n", output);
        Assert.Contains("Name:\tWWW.dnsnet\nAddress: " + webIp + "\n", output);
        Assert.Contains("name = web.dnsnet", output);
        // The server listens elsewhere (a DNAT sends port 53 to it): the container's own DNS server can bind 53.
        Assert.Contains(":::53 ", output);

        // The default bridge keeps the host's servers, as in dockerd.
        Assert.DoesNotContain("127.0.0.11", docker.Ok("run", "--rm", "busybox", "cat", "/etc/resolv.conf"));

        docker.Ok("rm", "-f", "web");
        Assert.False(Daemon.Host.Engine.Containers.Network!.HasDns(webId));
    }

    [Fact]
    public async Task Names_the_networks_do_not_know_are_forwarded_to_the_dns_servers_from_the_host_side()
    {
        // A DNS server on 127.0.0.1:53 of the bridges' namespace (the test's "host"), as systemd-resolved on a host:
        // a container cannot reach that address itself, the embedded server forwards to it from outside.
        using Socket upstream = Netns.RunIn(Daemon.Netns!.Path, "test upstream", () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Loopback, 53));
            return s;
        });
        using var stop = new CancellationTokenSource();
        Task serving = AnswerEveryQueryAsync(upstream, stop.Token);
        try
        {
            DockerCli docker = Docker();
            docker.Ok("network", "create", "fwdnet");
            string output = docker.Ok("run", "--rm", "--network", "fwdnet", "--dns", "127.0.0.1", "busybox", "sh", "-c", "cat /etc/resolv.conf; nslookup example.org");
            Assert.StartsWith("nameserver 127.0.0.11\n", output); // --dns is where the server forwards, not what the container asks
            Assert.Contains("Address: " + UpstreamAnswer, output);
        }
        finally
        {
            stop.Cancel();
            await serving;
        }
    }

    [Fact]
    public void A_container_on_an_internal_network_only_is_refused_names_outside_it()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "--internal", "innet");
        docker.Ok("run", "-d", "--name", "db", "--network", "innet", "busybox", "sleep", "600");
        string output = docker.Run("run", "--rm", "--network", "innet", "busybox", "sh", "-c", "nslookup db; nslookup example.org").Out;
        Assert.Contains("Name:\tdb\n", output);
        Assert.Contains("can't find example.org: REFUSED", output);
        docker.Ok("rm", "-f", "db");
    }

    [Fact]
    public void A_running_container_that_joins_a_user_network_asks_127_0_0_11_from_then_on()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "latenet");
        docker.Ok("run", "-d", "--name", "peer", "--network", "latenet", "busybox", "sleep", "600");
        string id = docker.Ok("run", "-d", "--name", "late", "busybox", "sleep", "600").Trim();
        Assert.DoesNotContain("127.0.0.11", docker.Ok("exec", "late", "cat", "/etc/resolv.conf"));

        docker.Ok("network", "connect", "latenet", "late");
        Assert.StartsWith("nameserver 127.0.0.11\n", docker.Ok("exec", "late", "cat", "/etc/resolv.conf"));
        Assert.Contains("Name:\tpeer\n", docker.Ok("exec", "late", "sh", "-c", "nslookup peer"));
        Assert.True(Daemon.Host.Engine.Containers.Network!.HasDns(id));
        docker.Ok("rm", "-f", "late", "peer");
    }

    [Fact]
    public void Link_aliases_on_a_user_network_resolve_for_the_linking_container_only()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "linknet");
        docker.Ok("run", "-d", "--name", "target", "--network", "linknet", "busybox", "sleep", "600");
        string ip = docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.linknet.IPAddress}}", "target").Trim();

        Assert.Contains($"Name:\tlnk\nAddress: {ip}\n",
            docker.Ok("run", "--rm", "--network", "linknet", "--link", "target:lnk", "busybox", "sh", "-c", "nslookup lnk"));
        // Another container's alias, not a name of the network: forwarded (to nobody here, as --dns 127.0.0.1 is closed).
        Assert.Contains("can't find lnk: SERVFAIL",
            docker.Run("run", "--rm", "--network", "linknet", "--dns", "127.0.0.1", "busybox", "sh", "-c", "nslookup lnk").Out);

        // An endpoint link, given when a running container joins the network.
        docker.Ok("run", "-d", "--name", "joiner", "busybox", "sleep", "600");
        docker.Ok("network", "connect", "--link", "target:lnk2", "linknet", "joiner");
        Assert.Contains($"Name:\tlnk2\nAddress: {ip}\n", docker.Ok("exec", "joiner", "sh", "-c", "nslookup lnk2"));
        docker.Ok("rm", "-f", "joiner", "target");
    }

    [Fact]
    public async Task A_container_that_runs_on_through_a_berthd_restart_still_resolves()
    {
        await using RestartableDaemon daemon = await RestartableDaemon.StartAsync("dns-restart");
        DockerCli docker = daemon.Docker;
        docker.Ok("network", "create", "keepnet");
        docker.Ok("run", "-d", "--name", "keeper", "--network", "keepnet", "--network-alias", "kept", "busybox", "sleep", "600");
        Assert.Contains("Name:\tkept\n", docker.Ok("exec", "keeper", "sh", "-c", "nslookup kept"));
        docker.Ok("run", "-d", "--name", "linker", "--network", "keepnet", "--link", "keeper:lnk", "busybox", "sleep", "600");

        await daemon.StopAsync();
        await daemon.StartAgainAsync();
        // The old server's ports went with the old berthd; the new one redirects 53 to its own.
        Assert.Contains("Name:\tkept\n", docker.Ok("exec", "keeper", "sh", "-c", "nslookup kept"));
        Assert.Contains("Name:\tlnk\n", docker.Ok("exec", "linker", "sh", "-c", "nslookup lnk"));
    }

    private static async Task AnswerEveryQueryAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[65535];
        try
        {
            while (true)
            {
                var received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cancellationToken);
                byte[] query = buffer[..received.ReceivedBytes];
                if (!DnsMessage.TryReadQuery(query, out DnsQuestion question, out int end)) continue;
                List<DnsRecord> records = question.Type == DnsMessage.TypeA ? [DnsRecord.Address(UpstreamAnswer)] : [];
                await socket.SendToAsync(DnsMessage.Answer(query, end, DnsMessage.RcodeNoError, records), SocketFlags.None, received.RemoteEndPoint, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
