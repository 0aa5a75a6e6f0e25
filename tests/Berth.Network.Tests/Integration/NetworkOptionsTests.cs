using Berth.Network.Tests.Support;

namespace Berth.Network.Tests.Integration;

/// <summary>
/// The default network's daemon options (dockerd's --fixed-cidr, --mtu, --icc, --ip) and their user-network
/// counterparts (enable_icc, host_binding_ipv4), on the real thing inside a <see cref="NetLab"/>.
/// </summary>
public sealed class NetworkOptionsTests : IDisposable
{
    private readonly NetLab _lab = new();

    public void Dispose() => _lab.Dispose();

    private NetworkController Open(Func<NetworkControllerOptions, NetworkControllerOptions> configure)
        => NetworkController.Open(configure(new NetworkControllerOptions { StateDirectory = _lab.StateDirectory, HostNetnsPath = _lab.HostPath }));

    private EndpointInfo Connect(NetworkController c, string network, string container, params PortMapping[] ports) =>
        c.CreateEndpoint(new EndpointCreateOptions { Network = network, ContainerId = container, NetnsPath = NetLab.PathOf(container), Ports = ports });

    /// <summary>Two echo requests, 2 s for the first answer: busybox ping succeeds when any comes back (a first one lost to ARP on a busy machine does not count).</summary>
    private static bool Pings(string from, System.Net.IPAddress to) => NetLab.Run(from, "/bin/busybox", "ping", "-c2", "-W2", to.ToString()).Code == 0;

    [Fact]
    public void Fixed_cidr_and_mtu_shape_the_default_network()
    {
        using var c = Open(o => o with { DefaultSubnet = "10.5.0.0/24", DefaultIpRange = "10.5.0.128/25", DefaultMtu = 1400 });
        var net = c.EnsureDefaultNetwork();
        Assert.Equal(("10.5.0.0/24", "10.5.0.128/25", 1400), (net.Subnet.ToString(), net.IpRange.ToString(), net.Mtu));
        var c1 = _lab.AddNamespace("c1");
        Assert.Equal("10.5.0.128", Connect(c, "bridge", c1).Address.ToString());
        Assert.Contains("mtu 1400", NetLab.Run(c1, "ip", "link", "show", "eth0").Output);
        Assert.Contains("mtu 1400", NetLab.Run(_lab.Host, "ip", "link", "show", net.Bridge).Output);
    }

    [Fact]
    public void Fixed_cidr_without_a_subnet_is_the_subnet()
    {
        using var c = Open(o => o with { DefaultIpRange = "10.6.0.0/24" });
        var net = c.EnsureDefaultNetwork();
        Assert.Equal(("10.6.0.0/24", "10.6.0.1"), (net.Subnet.ToString(), net.Gateway.ToString()));
        Assert.Equal("10.6.0.2", Connect(c, "bridge", _lab.AddNamespace("c1")).Address.ToString());
    }

    [Fact]
    public void Without_icc_containers_reach_the_gateway_and_the_outside_but_not_each_other()
    {
        using var c = Open(o => o with { DefaultIcc = false });
        c.EnsureDefaultNetwork();
        var open = c.CreateNetwork(new NetworkCreateOptions { Name = "open" });
        var closed = c.CreateNetwork(new NetworkCreateOptions { Name = "closed", EnableIcc = false });
        Assert.True(open.EnableIcc);
        Assert.False(closed.EnableIcc);
        _lab.StartHttpd(_lab.Outside, 8000, "outside");
        foreach (var (network, icc) in new[] { ("bridge", false), ("open", true), ("closed", false) })
        {
            var a = _lab.AddNamespace(network + "a");
            var b = _lab.AddNamespace(network + "b");
            var ea = Connect(c, network, a);
            var eb = Connect(c, network, b);
            Assert.Equal(icc, Pings(a, eb.Address));
            Assert.Equal(icc, Pings(b, ea.Address));
            Assert.True(Pings(a, ea.Gateway!));
            Assert.Equal("outside", NetLab.Get(a, $"http://{NetLab.OutsideIp}:8000/"));
            Assert.Equal(icc ? "" : "isolated on", System.Text.RegularExpressions.Regex.Match(
                NetLab.Run(_lab.Host, "ip", "-d", "link", "show", ea.HostInterface).Output, "isolated on").Value);
        }
    }

    [Fact]
    public void Ports_that_name_no_address_are_published_on_the_binding_address_only()
    {
        NetLab.Ip("-n", _lab.Host, "addr", "add", "10.199.0.11/24", "dev", "uplink");
        using var c = Open(o => o with { DefaultHostBindingIpv4 = NetLab.HostIp });
        Assert.Equal(NetLab.HostIp, c.EnsureDefaultNetwork().HostBindingIpv4!.ToString());
        var c1 = _lab.AddNamespace("c1");
        var ep = Connect(c, "bridge", c1, [.. PortSpec.Parse("8080:80"), .. PortSpec.Parse("127.0.0.1:8081:80")]);
        Assert.Equal([$"{NetLab.HostIp}:8080->80/tcp", "127.0.0.1:8081->80/tcp"], ep.Ports.Select(p => p.ToString()));
        _lab.StartHttpd(c1, 80, "bound");

        Assert.Equal("bound", NetLab.Get(_lab.Outside, $"http://{NetLab.HostIp}:8080/"));
        Assert.Null(NetLab.Get(_lab.Outside, "http://10.199.0.11:8080/"));
        Assert.Null(NetLab.Get(_lab.Host, "http://127.0.0.1:8080/"));
        Assert.Equal("bound", NetLab.Get(_lab.Host, "http://127.0.0.1:8081/")); // a port that names its address keeps it

        // A user network takes its own binding address; without one, every address.
        c.CreateNetwork(new NetworkCreateOptions { Name = "bound", HostBindingIpv4 = "10.199.0.11" });
        var c2 = _lab.AddNamespace("c2");
        Assert.Equal("10.199.0.11:9090->80/tcp", Connect(c, "bound", c2, [.. PortSpec.Parse("9090:80")]).Ports.Single().ToString());
        c.CreateNetwork(new NetworkCreateOptions { Name = "plain" });
        Assert.Equal("0.0.0.0:9091->80/tcp", Connect(c, "plain", _lab.AddNamespace("c3"), [.. PortSpec.Parse("9091:80")]).Ports.Single().ToString());
    }

    [Fact]
    public void At_start_an_unused_default_network_made_with_other_options_is_made_again()
    {
        using (var c = Open(o => o with { DefaultMtu = 1400 }))
        {
            c.EnsureDefaultNetwork();
            c.Reconcile([]);
            Assert.Equal(1400, c.EnsureDefaultNetwork().Mtu); // same options: kept
        }
        string firstId;
        using (var c = Open(o => o with { DefaultMtu = 1300, DefaultIcc = false, DefaultIpRange = "10.7.0.0/25" }))
        {
            c.Reconcile([]);
            var net = c.EnsureDefaultNetwork();
            Assert.Equal((1300, false, "10.7.0.0/25"), (net.Mtu, net.EnableIcc, net.Subnet.ToString()));
            Assert.Contains("mtu 1300", NetLab.Run(_lab.Host, "ip", "link", "show", net.Bridge).Output);
            Assert.Contains("inet 10.7.0.1/25", NetLab.Run(_lab.Host, "ip", "addr", "show", net.Bridge).Output);
            Connect(c, "bridge", _lab.AddNamespace("c1"));
            firstId = net.Id;
        }
        using (var c = Open(o => o with { DefaultMtu = 1200 }))
        {
            var live = c.Endpoints.Select(e => e.Id).ToList();
            c.Reconcile(live);
            Assert.Equal((firstId, 1300), (c.EnsureDefaultNetwork().Id, c.EnsureDefaultNetwork().Mtu)); // an endpoint holds it: kept as it is
        }
        using (var c = Open(o => o with { DefaultMtu = 1300, DefaultIcc = false, DefaultIpRange = "10.7.0.0/25", DefaultSubnet = "nonsense" }))
        {
            c.Reconcile([]); // a bad option does not stop the reconcile; making the network would report it
            Assert.Equal(firstId, Assert.Single(c.Networks).Id);
            Assert.Equal(NetworkErrorKind.InvalidArgument, Assert.Throws<NetworkException>(() => c.CreateNetwork(new NetworkCreateOptions { Name = "x", Subnet = "nonsense" })).Kind);
        }
    }

    [Fact]
    public void The_default_network_is_dual_stack_with_ipv6_and_made_again_when_it_changes()
    {
        using (var c = Open(o => o with { DefaultEnableIpv6 = true, DefaultSubnet6 = "fd00:db8:55::/64" }))
        {
            var net = c.EnsureDefaultNetwork();
            Assert.Equal(("fd00:db8:55::/64", "fd00:db8:55::1"), (net.Subnet6.ToString(), net.Gateway6!.ToString()));
            var c1 = _lab.AddNamespace("c1");
            var ep = Connect(c, "bridge", c1);
            Assert.Equal("fd00:db8:55::2", ep.Address6!.ToString());
            Assert.Equal(0, NetLab.Run(c1, "/bin/busybox", "ping", "-6", "-c1", "-W2", "fd00:db8:55::1").Code);
            c.DeleteEndpoint(ep.Id);
            Assert.Equal("1", Sysctl.Read(_lab.HostPath, "net/ipv6/conf/all/forwarding"));
        }
        using (var c = Open(o => o))
        {
            c.Reconcile([]);
            Assert.Null(c.EnsureDefaultNetwork().Subnet6);
            Assert.DoesNotContain("ip6", NetLab.Nft(_lab.Host));
            Assert.Equal("0", Sysctl.Read(_lab.HostPath, "net/ipv6/conf/all/forwarding"));
        }
    }
}
