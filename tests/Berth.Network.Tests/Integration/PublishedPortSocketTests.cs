using System.Net;
using System.Net.Sockets;
using System.Text;
using Berth.Network.Netlink;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests.Integration;

/// <summary>
/// The host sockets of published ports (<see cref="PublishedPortSockets"/>), inside a <see cref="NetLab"/>:
/// a port another program holds is refused, a published one cannot be taken, and the userland proxy
/// serves what the NAT rules do not reach (IPv6 to an IPv4-only container, ::1), over TCP and UDP.
/// </summary>
public sealed class PublishedPortSocketTests : IDisposable
{
    private const string HostIp6 = "fd00:199::1", OutsideIp6 = "fd00:199::2";
    private readonly NetLab _lab = new();
    private readonly List<Socket> _sockets = [];

    public PublishedPortSocketTests()
    {
        // IPv6 between the lab's host and outside (nodad: usable at once).
        NetLab.Ip("-n", _lab.Host, "addr", "add", HostIp6 + "/64", "dev", "uplink", "nodad");
        NetLab.Ip("-n", _lab.Outside, "addr", "add", OutsideIp6 + "/64", "dev", "eth0", "nodad");
    }

    public void Dispose()
    {
        foreach (var s in _sockets) s.Dispose();
        _lab.Dispose();
    }

    private EndpointInfo Connect(NetworkController c, string container, params PortMapping[] ports) =>
        c.CreateEndpoint(new EndpointCreateOptions
        {
            Network = "bridge", ContainerId = container, NetnsPath = NetLab.PathOf(container), Ports = ports, Hostname = container,
        });

    /// <summary>A socket made in a lab namespace (as another program there would have it), closed with the test.</summary>
    private Socket SocketIn(string ns, AddressFamily family, SocketType type)
    {
        var socket = Netns.RunIn(NetLab.PathOf(ns), "test socket", () => new Socket(family, type, type == SocketType.Stream ? ProtocolType.Tcp : ProtocolType.Udp));
        _sockets.Add(socket);
        return socket;
    }

    /// <summary>Whether the socket binds (and, with <paramref name="listen"/>, listens: a server holding the port).</summary>
    private static bool Binds(Socket socket, IPAddress address, int port, bool listen = false)
    {
        try
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6) socket.DualMode = false;
            socket.Bind(new IPEndPoint(address, port));
            if (listen) socket.Listen();
            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            return false;
        }
    }

    [Fact]
    public void A_port_another_program_holds_is_refused_in_dockerds_words_and_nothing_is_left()
    {
        using var c = _lab.OpenController();
        c.EnsureDefaultNetwork();
        Assert.True(Binds(SocketIn(_lab.Host, AddressFamily.InterNetwork, SocketType.Stream), IPAddress.Any, 8080, listen: true));
        var linksBefore = NetLab.Links(_lab.Host);

        var ex = Assert.Throws<NetworkException>(() => Connect(c, _lab.AddNamespace("c1"), PortSpec.Parse("8080:80").ToArray()));
        Assert.Equal("Error starting userland proxy: listen tcp4 0.0.0.0:8080: bind: address already in use", ex.Message);
        Assert.Empty(c.Endpoints);
        Assert.Equal(linksBefore, NetLab.Links(_lab.Host));
        Assert.DoesNotContain("8080", NetLab.Nft(_lab.Host));
        // An address the host does not have cannot be bound either (dockerd refuses it the same way).
        var bad = Assert.Throws<NetworkException>(() => Connect(c, _lab.AddNamespace("c2"), PortSpec.Parse("10.9.9.9:8081:80").ToArray()));
        Assert.Equal("Error starting userland proxy: listen tcp4 10.9.9.9:8081: bind: cannot assign requested address", bad.Message);
    }

    [Fact]
    public void A_published_port_is_held_until_its_endpoint_goes_and_again_after_a_restart()
    {
        EndpointInfo ep;
        using (var c = _lab.OpenController())
        {
            c.EnsureDefaultNetwork();
            ep = Connect(c, _lab.AddNamespace("c1"), PortSpec.Parse("8080:80").Concat(PortSpec.Parse("5353:53/udp")).ToArray());
            Assert.True(ep.PortsOnIpv6Any);
            Assert.False(Binds(SocketIn(_lab.Host, AddressFamily.InterNetwork, SocketType.Stream), IPAddress.Any, 8080));
            Assert.False(Binds(SocketIn(_lab.Host, AddressFamily.InterNetworkV6, SocketType.Stream), IPAddress.IPv6Any, 8080));
            Assert.False(Binds(SocketIn(_lab.Host, AddressFamily.InterNetwork, SocketType.Dgram), IPAddress.Loopback, 5353));
        }
        // berthd stopped (the sockets closed with it), the container kept running: the next start holds them again.
        using (var c = _lab.OpenController())
        {
            var report = c.Reconcile([ep.Id]);
            Assert.Empty(report.UnboundPorts);
            Assert.False(Binds(SocketIn(_lab.Host, AddressFamily.InterNetwork, SocketType.Stream), IPAddress.Any, 8080));
            c.DeleteEndpoint(ep.Id);
            Assert.True(Binds(SocketIn(_lab.Host, AddressFamily.InterNetwork, SocketType.Stream), IPAddress.Any, 8080));
            Assert.True(Binds(SocketIn(_lab.Host, AddressFamily.InterNetwork, SocketType.Dgram), IPAddress.Any, 5353));
        }
    }

    [Fact]
    public void A_port_taken_while_berthd_was_down_is_reported_and_the_others_are_held()
    {
        EndpointInfo ep;
        using (var c = _lab.OpenController())
        {
            c.EnsureDefaultNetwork();
            ep = Connect(c, _lab.AddNamespace("c1"), PortSpec.Parse("8080-8081:80-81").ToArray());
        }
        Assert.True(Binds(SocketIn(_lab.Host, AddressFamily.InterNetwork, SocketType.Stream), IPAddress.Any, 8081, listen: true));
        using (var c = _lab.OpenController())
        {
            var report = c.Reconcile([ep.Id]);
            var unbound = Assert.Single(report.UnboundPorts);
            Assert.Contains("0.0.0.0:8081->81/tcp", unbound);
            Assert.Contains("address already in use", unbound);
            Assert.False(Binds(SocketIn(_lab.Host, AddressFamily.InterNetwork, SocketType.Stream), IPAddress.Any, 8080));
        }
    }

    [Fact]
    public void An_ephemeral_port_is_one_that_binds()
    {
        using var c = NetworkController.Open(new NetworkControllerOptions { StateDirectory = _lab.StateDirectory, HostNetnsPath = _lab.HostPath, EphemeralPorts = (40100, 40102) });
        c.EnsureDefaultNetwork();
        Assert.True(Binds(SocketIn(_lab.Host, AddressFamily.InterNetwork, SocketType.Stream), IPAddress.Any, 40100, listen: true));
        var ep = Connect(c, _lab.AddNamespace("c1"), PortSpec.Parse("80").ToArray());
        Assert.Equal(40101, Assert.Single(ep.Ports).HostPort);
    }

    [Fact]
    public void The_proxy_serves_ipv6_and_loopback6_for_an_ipv4_only_container()
    {
        using var c = _lab.OpenController();
        c.EnsureDefaultNetwork();
        var c1 = _lab.AddNamespace("c1");
        var ep = Connect(c, c1, PortSpec.Parse("8080:80").Concat(PortSpec.Parse("[::1]:9090:80")).ToArray());
        Assert.Null(ep.Address6);
        _lab.StartHttpd(c1, 80, "proxied-token");

        Assert.Equal("proxied-token", NetLab.Get(_lab.Outside, $"http://[{HostIp6}]:8080/"));
        Assert.Equal("proxied-token", NetLab.Get(_lab.Host, "http://[::1]:8080/"));
        Assert.Equal("proxied-token", NetLab.Get(_lab.Host, "http://[::1]:9090/"));
        // IPv4 still goes through the NAT rules; the ::1-only port answers nowhere else.
        Assert.Equal("proxied-token", NetLab.Get(_lab.Outside, $"http://{NetLab.HostIp}:8080/"));
        Assert.Null(NetLab.Get(_lab.Outside, $"http://[{HostIp6}]:9090/"));
        Assert.Null(NetLab.Get(_lab.Host, "http://127.0.0.1:9090/"));

        c.DeleteEndpoint(ep.Id);
        Assert.Null(NetLab.Get(_lab.Host, "http://[::1]:8080/"));
    }

    [Fact]
    public void The_proxy_relays_udp_datagrams_both_ways()
    {
        using var c = _lab.OpenController();
        c.EnsureDefaultNetwork();
        var c1 = _lab.AddNamespace("c1");
        Connect(c, c1, PortSpec.Parse("5353:53/udp").ToArray());
        // A UDP echo server in the container that answers in upper case.
        var server = SocketIn(c1, AddressFamily.InterNetwork, SocketType.Dgram);
        server.Bind(new IPEndPoint(IPAddress.Any, 53));
        var echo = new Thread(() =>
        {
            var buffer = new byte[512];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            for (var i = 0; i < 2; i++)
            {
                var n = server.ReceiveFrom(buffer, ref from);
                server.SendTo(Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(buffer, 0, n).ToUpperInvariant()), from);
            }
        }) { IsBackground = true };
        echo.Start();

        var client = SocketIn(_lab.Host, AddressFamily.InterNetworkV6, SocketType.Dgram);
        client.ReceiveTimeout = 5000;
        var reply = new byte[512];
        foreach (var word in new[] { "ping", "again" })
        {
            client.SendTo(Encoding.ASCII.GetBytes(word), new IPEndPoint(IPAddress.IPv6Loopback, 5353));
            var n = client.Receive(reply);
            Assert.Equal(word.ToUpperInvariant(), Encoding.ASCII.GetString(reply, 0, n));
        }
        Assert.True(echo.Join(5000));
    }

    [Fact]
    public void Without_the_userland_proxy_the_port_is_only_reserved()
    {
        using var c = NetworkController.Open(new NetworkControllerOptions { StateDirectory = _lab.StateDirectory, HostNetnsPath = _lab.HostPath, UserlandProxy = false });
        c.EnsureDefaultNetwork();
        var c1 = _lab.AddNamespace("c1");
        Connect(c, c1, PortSpec.Parse("8080:80").ToArray());
        _lab.StartHttpd(c1, 80, "nat-only");

        Assert.Equal("nat-only", NetLab.Get(_lab.Outside, $"http://{NetLab.HostIp}:8080/"));
        // Not served over IPv6 to this IPv4-only container: refused, not left hanging.
        var (code, output) = NetLab.Run(_lab.Outside, "/bin/busybox", "nc", "-w", "2", HostIp6, "8080");
        Assert.NotEqual(0, code);
        Assert.Contains("refused", output);
        // Still reserved, against a program with SO_REUSEADDR too (.NET's Bind sets it on TCP sockets).
        Assert.False(Binds(SocketIn(_lab.Host, AddressFamily.InterNetwork, SocketType.Stream), IPAddress.Any, 8080));
        Assert.False(Binds(SocketIn(_lab.Host, AddressFamily.InterNetworkV6, SocketType.Stream), IPAddress.IPv6Any, 8080));
    }
}
