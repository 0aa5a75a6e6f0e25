using Berth.Network.Tests.Support;

namespace Berth.Network.Tests.Integration;

/// <summary>
/// Dual-stack networks inside a <see cref="NetLab"/> whose uplink also carries IPv6 (host fd99::1,
/// outside fd99::2, no route from the outside to any container subnet): addresses, routes,
/// container-to-container IPv6, masqueraded outbound IPv6, ports published over IPv6, and cleanup.
/// </summary>
public sealed class DualStackNetworkTests : IDisposable
{
    private const string HostIp6 = "fd99::1", OutsideIp6 = "fd99::2";
    private readonly NetLab _lab = new();

    public DualStackNetworkTests()
    {
        NetLab.Ip("-n", _lab.Host, "addr", "add", HostIp6 + "/64", "dev", "uplink", "nodad");
        NetLab.Ip("-n", _lab.Outside, "addr", "add", OutsideIp6 + "/64", "dev", "eth0", "nodad");
        Sysctl.Write(_lab.HostPath, "net/ipv6/conf/all/forwarding", "0");
    }

    public void Dispose() => _lab.Dispose();

    private EndpointInfo Connect(NetworkController c, string network, string container, string? address6 = null, params PortMapping[] ports) =>
        c.CreateEndpoint(new EndpointCreateOptions
        {
            Network = network, ContainerId = container, NetnsPath = NetLab.PathOf(container), Ports = ports, Address6 = address6,
            Aliases = [container + "-alias"], Hostname = container,
        });

    private static bool Ping6(string ns, string address) => NetLab.Run(ns, "/bin/busybox", "ping", "-6", "-c", "1", "-W", "2", address).Code == 0;

    [Fact]
    public void Containers_get_ipv6_addresses_routes_and_reach_each_other_and_the_outside()
    {
        using var c = _lab.OpenController();
        var net = c.CreateNetwork(new NetworkCreateOptions { Name = "dual", EnableIpv6 = true, Subnet6 = "fd00:db8:1::/64" });
        Assert.True(net.EnableIpv6);
        Assert.Equal("fd00:db8:1::1", net.Gateway6!.ToString());
        Assert.Contains("inet6 fd00:db8:1::1/64", NetLab.Run(_lab.Host, "ip", "-6", "addr", "show", net.Bridge).Output);
        Assert.Equal("1", Sysctl.Read(_lab.HostPath, "net/ipv6/conf/all/forwarding"));
        var c1 = _lab.AddNamespace("c1");
        var c2 = _lab.AddNamespace("c2");
        var e1 = Connect(c, "dual", c1);
        var e2 = Connect(c, "dual", c2, address6: "fd00:db8:1::42");
        Assert.Equal("fd00:db8:1::2", e1.Address6!.ToString());
        Assert.Equal(64, e1.PrefixLength6);
        Assert.Equal("fd00:db8:1::1", e1.Gateway6!.ToString());
        Assert.Equal("fd00:db8:1::42", e2.Address6!.ToString());
        Assert.NotNull(e1.Address); // and IPv4 beside it

        var addr = NetLab.Run(c1, "ip", "-6", "addr", "show", "eth0").Output;
        Assert.Contains("inet6 fd00:db8:1::2/64", addr);
        Assert.DoesNotContain("tentative", addr.Split('\n').Single(l => l.Contains("fd00:db8:1::2/64"))); // IFA_F_NODAD: usable at once
        Assert.Contains("default via fd00:db8:1::1 dev eth0", NetLab.Run(c1, "ip", "-6", "route").Output);
        Assert.True(Ping6(c1, "fd00:db8:1::42"));
        Assert.True(Ping6(c2, e1.Address6.ToString()));
        Assert.True(Ping6(c1, "fd00:db8:1::1"));
        // The outside has no route to fd00:db8:1::/64: an answer proves the masquerade.
        Assert.True(Ping6(c1, OutsideIp6));
        Assert.Contains("masquerade", NetLab.Run(_lab.Host, "nft", "list", "table", "ip6", "berth").Output);

        // Peers' hosts entries carry both addresses.
        var peers = c.PeersOf(e1.Id);
        Assert.Equal(2, peers.Count);
        Assert.Contains(peers, p => p.Address.ToString() == "fd00:db8:1::42" && p.Names.Contains(c2));
        Assert.Contains("fd00:db8:1::2\tweb", HostsFile.Render("web", e1.Address, peers, null, e1.Address6));
    }

    [Fact]
    public void Published_port_answers_over_ipv6_from_outside()
    {
        using var c = _lab.OpenController();
        c.CreateNetwork(new NetworkCreateOptions { Name = "dual", EnableIpv6 = true });
        var c1 = _lab.AddNamespace("c1");
        var ep = Connect(c, "dual", c1, null, PortSpec.Parse("8080:80").ToArray());
        _lab.StartHttpd(c1, 80, "v6-token");

        // At once: the first packets to a new container over IPv6 are forwarded (see ConfigureBridge's fe80::1).
        Assert.Equal("v6-token", NetLab.Get(_lab.Outside, $"http://[{HostIp6}]:8080/"));
        Assert.Equal("v6-token", NetLab.Get(_lab.Outside, $"http://{NetLab.HostIp}:8080/"));
        c.DeleteEndpoint(ep.Id);
        Assert.Null(NetLab.Get(_lab.Outside, $"http://[{HostIp6}]:8080/"));
        Assert.DoesNotContain("8080", NetLab.Nft(_lab.Host));
    }

    [Fact]
    public void Default_ipv6_subnet_is_a_64_of_the_daemon_ula_prefix()
    {
        using var c = NetworkController.Open(new NetworkControllerOptions { StateDirectory = _lab.StateDirectory, HostNetnsPath = _lab.HostPath, Ipv6UlaPrefix = "fd12:3456:789a::/48" });
        var a = c.CreateNetwork(new NetworkCreateOptions { Name = "a", EnableIpv6 = true });
        var b = c.CreateNetwork(new NetworkCreateOptions { Name = "b", EnableIpv6 = true });
        Assert.Equal("fd12:3456:789a::/64", a.Subnet6.ToString());
        Assert.Equal("fd12:3456:789a:1::/64", b.Subnet6.ToString());
        Assert.False(a.ConfiguredSubnet6);
        using var derived = NetworkController.Open(new NetworkControllerOptions { StateDirectory = Path.Combine(_lab.StateDirectory, "other"), HostNetnsPath = NetLab.PathOf(_lab.AddNamespace("h2")) });
        var d = derived.CreateNetwork(new NetworkCreateOptions { Name = "d", EnableIpv6 = true });
        Assert.StartsWith("fd", d.Subnet6.ToString());
        Assert.Equal(64, d.Subnet6!.Value.PrefixLength);
        derived.RemoveNetwork("d");
    }

    [Fact]
    public void Internal_dual_stack_network_has_no_ipv6_way_out()
    {
        using var c = _lab.OpenController();
        c.CreateNetwork(new NetworkCreateOptions { Name = "inner", Internal = true, EnableIpv6 = true, Subnet6 = "fd00:db8:5::/64" });
        var c1 = _lab.AddNamespace("c1");
        var c2 = _lab.AddNamespace("c2");
        var e2 = Connect(c, "inner", c2);
        Connect(c, "inner", c1);
        Assert.True(Ping6(c1, e2.Address6!.ToString()));
        Assert.DoesNotContain("default", NetLab.Run(c1, "ip", "-6", "route").Output);
        Assert.False(Ping6(c1, OutsideIp6));
    }

    [Fact]
    public void Bad_input_is_refused_before_any_change()
    {
        using var c = _lab.OpenController();
        c.CreateNetwork(new NetworkCreateOptions { Name = "one", EnableIpv6 = true, Subnet6 = "fd00:db8:1::/64" });
        c.CreateNetwork(new NetworkCreateOptions { Name = "v4only" });
        var links = NetLab.Links(_lab.Host);
        var rules = NetLab.Nft(_lab.Host);
        void Refused(NetworkErrorKind kind, string text, Action act)
        {
            var ex = Assert.Throws<NetworkException>(act);
            Assert.Equal(kind, ex.Kind);
            Assert.Contains(text, ex.Message);
        }
        Refused(NetworkErrorKind.Conflict, "overlaps", () => c.CreateNetwork(new NetworkCreateOptions { Name = "two", EnableIpv6 = true, Subnet6 = "fd00:db8::/32" }));
        Refused(NetworkErrorKind.InvalidArgument, "invalid IPv6 subnet", () => c.CreateNetwork(new NetworkCreateOptions { Name = "two", EnableIpv6 = true, Subnet6 = "10.9.0.0/24" }));
        Refused(NetworkErrorKind.InvalidArgument, "IPv6 is not enabled", () => c.CreateNetwork(new NetworkCreateOptions { Name = "two", Subnet6 = "fd00:db8:7::/64" }));
        Refused(NetworkErrorKind.InvalidArgument, "invalid IPv6 gateway", () => c.CreateNetwork(new NetworkCreateOptions { Name = "two", EnableIpv6 = true, Subnet6 = "fd00:db8:7::/64", Gateway6 = "10.0.0.1" }));
        Refused(NetworkErrorKind.InvalidArgument, "not a host address", () => c.CreateNetwork(new NetworkCreateOptions { Name = "two", EnableIpv6 = true, Subnet6 = "fd00:db8:7::/64", Gateway6 = "fd00:db8:8::1" }));
        Refused(NetworkErrorKind.InvalidArgument, "1280", () => c.CreateNetwork(new NetworkCreateOptions { Name = "two", EnableIpv6 = true, Mtu = 1200 }));
        var c1 = _lab.AddNamespace("c1");
        Refused(NetworkErrorKind.InvalidArgument, "has no IPv6 subnet", () => Connect(c, "v4only", c1, address6: "fd00:db8:1::9"));
        Refused(NetworkErrorKind.InvalidArgument, "invalid IPv6 address", () => Connect(c, "one", c1, address6: "10.0.0.9"));
        Refused(NetworkErrorKind.InvalidArgument, "not a host address", () => Connect(c, "one", c1, address6: "fd00:db8:2::9"));
        Assert.Equal(links, NetLab.Links(_lab.Host));
        Assert.Equal(rules, NetLab.Nft(_lab.Host));
        Assert.DoesNotContain("eth0", NetLab.Links(c1));
        Assert.Equal(2, c.Networks.Count);
        Assert.Empty(c.Endpoints);

        // An uplink whose MTU cannot carry IPv6: the network would get it, and the kernel would drop IPv6 from the bridge.
        NetLab.Ip("-n", _lab.Host, "route", "add", "default", "via", NetLab.OutsideIp);
        NetLab.Ip("-n", _lab.Host, "link", "set", "uplink", "mtu", "1200");
        Refused(NetworkErrorKind.InvalidArgument, "below IPv6's minimum of 1280", () => c.CreateNetwork(new NetworkCreateOptions { Name = "three", EnableIpv6 = true }));
        Assert.Equal(2, c.Networks.Count);
    }

    [Fact]
    public void Everything_is_removed_and_ipv6_forwarding_restored()
    {
        var linksBefore = NetLab.Links(_lab.Host);
        using (var c = _lab.OpenController())
        {
            c.CreateNetwork(new NetworkCreateOptions { Name = "plain" });
            var n = c.CreateNetwork(new NetworkCreateOptions { Name = "dual", EnableIpv6 = true, Subnet6 = "fd00:db8:1::/64" });
            var ep = Connect(c, "dual", _lab.AddNamespace("c1"), null, PortSpec.Parse("8081:80").ToArray());
            Assert.Equal("1", Sysctl.Read(_lab.HostPath, "net/ipv6/conf/all/forwarding"));
            Assert.Contains("table ip6 berth", NetLab.Nft(_lab.Host));
            c.DeleteEndpoint(ep.Id);
            c.RemoveNetwork("dual");
            // The IPv4-only network stays, with its table; the IPv6 table and forwarding go with the last dual-stack network.
            Assert.DoesNotContain("table ip6 berth", NetLab.Nft(_lab.Host));
            Assert.Contains("table ip berth", NetLab.Nft(_lab.Host));
            Assert.Equal("0", Sysctl.Read(_lab.HostPath, "net/ipv6/conf/all/forwarding"));
            Assert.DoesNotContain(n.Bridge, NetLab.Links(_lab.Host));
            c.RemoveNetwork("plain");
        }
        Assert.Equal(linksBefore, NetLab.Links(_lab.Host));
        Assert.Equal("", NetLab.Nft(_lab.Host).Trim());
        Assert.False(File.Exists(Path.Combine(_lab.StateDirectory, "ipv6_forwarding.json")));
    }

    [Fact]
    public void Reconcile_recreates_the_bridge_with_its_ipv6_gateway_and_frees_stale_ipv6_addresses()
    {
        string liveId;
        NetworkInfo net;
        using (var c = _lab.OpenController())
        {
            net = c.CreateNetwork(new NetworkCreateOptions { Name = "dual", EnableIpv6 = true, Subnet6 = "fd00:db8:1::/64" });
            Connect(c, "dual", _lab.AddNamespace("c1"), null, PortSpec.Parse("7000:80").ToArray());
            liveId = Connect(c, "dual", _lab.AddNamespace("c2"), null, PortSpec.Parse("7001:80").ToArray()).Id;
        }
        // "Crash", then the bridge goes and forwarding is turned off behind Berth's back.
        NetLab.Ip("-n", _lab.Host, "link", "del", net.Bridge);
        Sysctl.Write(_lab.HostPath, "net/ipv6/conf/all/forwarding", "0");
        NetLab.Run(_lab.Host, "nft", "delete", "table", "ip6", "berth");

        using (var c = _lab.OpenController())
        {
            var report = c.Reconcile([liveId]);
            Assert.Equal(1, report.RecreatedBridges);
            Assert.Equal(1, report.StaleEndpoints);
            Assert.Equal(2, report.ReleasedAddresses); // the stale endpoint's IPv4 and IPv6 addresses
            Assert.Contains("inet6 fd00:db8:1::1/64", NetLab.Run(_lab.Host, "ip", "-6", "addr", "show", net.Bridge).Output);
            Assert.Equal("1", Sysctl.Read(_lab.HostPath, "net/ipv6/conf/all/forwarding"));
            var rules = NetLab.Run(_lab.Host, "nft", "list", "table", "ip6", "berth").Output;
            Assert.Contains("7001", rules);
            Assert.DoesNotContain("7000", rules);
            Assert.Single(new Network.Ipam(_lab.StateDirectory).Allocations6(net.Id));
        }
    }

    [Fact]
    public void The_ipv6_default_route_moves_to_the_next_dual_stack_network()
    {
        using var c = _lab.OpenController();
        c.CreateNetwork(new NetworkCreateOptions { Name = "first", EnableIpv6 = true, Subnet6 = "fd00:db8:1::/64" });
        c.CreateNetwork(new NetworkCreateOptions { Name = "second", EnableIpv6 = true, Subnet6 = "fd00:db8:2::/64" });
        var c1 = _lab.AddNamespace("c1");
        var e1 = Connect(c, "first", c1);
        c.CreateEndpoint(new EndpointCreateOptions { Network = "second", ContainerId = c1, NetnsPath = NetLab.PathOf(c1), InterfaceName = "eth1" });
        Assert.Contains("default via fd00:db8:1::1 dev eth0", NetLab.Run(c1, "ip", "-6", "route").Output);

        c.DeleteEndpoint(e1.Id);
        c.EnsureDefaultRoute(c1, NetLab.PathOf(c1));
        Assert.Contains("default via fd00:db8:2::1 dev eth1", NetLab.Run(c1, "ip", "-6", "route").Output);
        Assert.True(Ping6(c1, OutsideIp6));
    }
}
