using Berth.Network.Tests.Support;

namespace Berth.Network.Tests.Integration;

/// <summary>
/// macvlan and ipvlan networks inside a <see cref="NetLab"/>. The parent is a veth of the lab's host
/// namespace (<c>lan0</c>, its peer up so it has a carrier) where dockerd's documentation uses a
/// dummy link: this machine's kernel has macvlan but neither dummy, 802.1q nor ipvlan links, and the
/// tests of what needs those check the refusal where the kernel lacks them, the real thing where it has them.
/// </summary>
public sealed class MacvlanNetworkTests : IDisposable
{
    private const string Parent = "lan0";
    private readonly NetLab _lab = new();

    public MacvlanNetworkTests()
    {
        NetLab.Ip("-n", _lab.Host, "link", "add", Parent, "type", "veth", "peer", "name", Parent + "p");
        NetLab.Ip("-n", _lab.Host, "link", "set", Parent, "up");
        NetLab.Ip("-n", _lab.Host, "link", "set", Parent + "p", "up");
    }

    public void Dispose() => _lab.Dispose();

    private EndpointInfo Connect(NetworkController c, string network, string container, string? address = null, string? mac = null, string interfaceName = "eth0") =>
        c.CreateEndpoint(new EndpointCreateOptions
        {
            Network = network, ContainerId = container, NetnsPath = NetLab.PathOf(container), Address = address, MacAddress = mac,
            Aliases = [container + "-alias"], Hostname = container, InterfaceName = interfaceName,
        });

    private static bool Ping(string ns, string address) => NetLab.Run(ns, "/bin/busybox", "ping", "-c", "1", "-W", "2", address).Code == 0;

    private NetworkInfo CreateMacvlan(NetworkController c, string name, string? subnet = "10.60.0.0/24", string? parent = Parent, string? mode = null, bool internalOnly = false, string? gateway = null) =>
        c.CreateNetwork(new NetworkCreateOptions { Name = name, Driver = NetworkDrivers.Macvlan, Parent = parent, Mode = mode, Subnet = subnet, Internal = internalOnly, Gateway = gateway });

    /// <summary>Whether the kernel makes links of <paramref name="kind"/> (tried in a namespace of the lab).</summary>
    private bool KernelHas(string kind, params string[] extra)
    {
        var ns = _lab.AddNamespace("probe-" + kind);
        NetLab.Ip("-n", ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1");
        return NetLab.Exec("ip", ["-n", ns, "link", "add", .. extra, "name", "probe", "type", kind]).Code == 0
            || NetLab.Exec("ip", ["-n", ns, "link", "add", "link", "p0", "name", "probe", "type", kind, .. extra]).Code == 0;
    }

    [Fact]
    public void Containers_on_a_bridge_mode_macvlan_network_reach_each_other_with_addresses_macs_and_routes_as_dockerd_gives()
    {
        using var c = _lab.OpenController();
        var net = CreateMacvlan(c, "lan", gateway: "10.60.0.254");
        Assert.Equal(NetworkDrivers.Macvlan, net.Driver);
        Assert.Equal(Parent, net.Parent);
        Assert.Equal("bridge", net.Mode);
        Assert.Equal("", net.Bridge);
        var c1 = _lab.AddNamespace("c1");
        var c2 = _lab.AddNamespace("c2");
        var e1 = Connect(c, "lan", c1);
        var e2 = Connect(c, "lan", c2, address: "10.60.0.77", mac: "02:11:22:33:44:55");

        Assert.Equal("10.60.0.1", e1.Address.ToString());
        Assert.Equal("02:42:0a:3c:00:01", e1.MacAddress);
        Assert.Equal("10.60.0.254", e1.Gateway!.ToString());
        Assert.Equal("", e1.HostInterface);
        Assert.Empty(e1.Ports);
        var link = NetLab.Run(c1, "ip", "-d", "link", "show", "eth0").Output;
        Assert.Contains("macvlan mode bridge", link);
        Assert.Contains("link/ether 02:42:0a:3c:00:01", link);
        Assert.Contains("inet 10.60.0.1/24", NetLab.Run(c1, "ip", "addr", "show", "eth0").Output);
        Assert.Contains("default via 10.60.0.254 dev eth0", NetLab.Run(c1, "ip", "route").Output);
        Assert.Contains("link/ether 02:11:22:33:44:55", NetLab.Run(c2, "ip", "link", "show", "eth0").Output);

        Assert.True(Ping(c1, "10.60.0.77"));
        Assert.True(Ping(c2, e1.Address.ToString()));
        // Names resolve on a user network whatever its driver.
        Assert.Contains(Assert.Single(c.PeersOf(e1.Id)).Names, n => n == c2 + "-alias");
        // No bridge, no rules, no forwarding: nothing of the host changes but the links inside the containers.
        Assert.DoesNotContain("table ip berth", NetLab.Nft(_lab.Host));
        Assert.Equal("0", Sysctl.Read(_lab.HostPath, "net/ipv4/ip_forward"));
    }

    [Fact]
    public void Disconnect_and_remove_leave_nothing_behind()
    {
        var linksBefore = NetLab.Links(_lab.Host);
        var c1 = _lab.AddNamespace("c1");
        using (var c = _lab.OpenController())
        {
            CreateMacvlan(c, "lan");
            var e1 = Connect(c, "lan", c1);
            var e2 = Connect(c, "lan", c1, interfaceName: "eth1");
            Assert.Contains("eth1", NetLab.Run(c1, "ip", "link").Output);
            c.DeleteEndpoint(e2.Id);
            Assert.DoesNotContain("eth1", NetLab.Run(c1, "ip", "link").Output);
            Assert.Contains("eth0", NetLab.Run(c1, "ip", "link").Output);
            var ex = Assert.Throws<NetworkException>(() => c.RemoveNetwork("lan"));
            Assert.Equal(NetworkErrorKind.Conflict, ex.Kind);
            c.DeleteEndpoint(e1.Id);
            c.RemoveNetwork("lan");
            Assert.Empty(c.Networks);
        }
        Assert.DoesNotContain("eth0", NetLab.Run(c1, "ip", "link").Output);
        Assert.Equal(linksBefore, NetLab.Links(_lab.Host));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_lab.StateDirectory, "endpoints")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_lab.StateDirectory, "networks")));
        // The pool went too: the same subnet can be taken again.
        using var again = _lab.OpenController();
        CreateMacvlan(again, "lan2");
    }

    [Fact]
    public void Internal_macvlan_network_has_no_default_route_and_modes_reach_the_kernel()
    {
        using var c = _lab.OpenController();
        CreateMacvlan(c, "inner", internalOnly: true, mode: "private");
        var c1 = _lab.AddNamespace("c1");
        var e1 = Connect(c, "inner", c1);
        Assert.Null(e1.Gateway);
        Assert.DoesNotContain("default", NetLab.Run(c1, "ip", "route").Output);
        Assert.Contains("macvlan mode private", NetLab.Run(c1, "ip", "-d", "link", "show", "eth0").Output);
    }

    [Fact]
    public void A_second_passthru_port_is_refused_in_dockerds_words_and_leaves_its_address_free()
    {
        using var c = _lab.OpenController();
        CreateMacvlan(c, "pt", mode: "passthru");
        Connect(c, "pt", _lab.AddNamespace("c1"));
        var c2 = _lab.AddNamespace("c2");
        var ex = Assert.Throws<NetworkException>(() => Connect(c, "pt", c2));
        Assert.Equal("failed to create the macvlan port: invalid argument", ex.Message);
        Assert.DoesNotContain("eth0", NetLab.Run(c2, "ip", "link").Output);
        Assert.Single(c.Endpoints);
    }

    [Theory]
    [InlineData("nope", null, "invalid subinterface vlan name nope, example formatting is eth0.10")]
    [InlineData("nope.10", null, "-o parent interface was not found on the host: nope")]
    [InlineData(Parent + ".x", null, "unable to parse a valid vlan id from: x (ex. eth0.10 for vlan 10)")]
    [InlineData(Parent + ".5000", null, "vlan id must be between 1-4094, received: 5000")]
    [InlineData(Parent + ".1.2", null, "required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, instead received lan0.1.2")]
    [InlineData("lo", null, "loopback interface is not a valid macvlan parent link")]
    [InlineData(Parent, "foo", "requested macvlan mode 'foo' is not valid, 'bridge' mode is the macvlan driver default")]
    public void Bad_parents_and_modes_are_refused_in_dockerds_words_before_anything_is_made(string parent, string? mode, string message)
    {
        var linksBefore = NetLab.Links(_lab.Host);
        using var c = _lab.OpenController();
        var ex = Assert.Throws<NetworkException>(() => CreateMacvlan(c, "bad", parent: parent, mode: mode));
        Assert.Equal(message, ex.Message);
        Assert.Empty(c.Networks);
        Assert.Equal(linksBefore, NetLab.Links(_lab.Host));
        CreateMacvlan(c, "good"); // the subnet was not kept
    }

    [Fact]
    public void One_macvlan_network_per_parent_and_no_overlapping_subnets()
    {
        using var c = _lab.OpenController();
        CreateMacvlan(c, "lan");
        var overlap = Assert.Throws<NetworkException>(() => CreateMacvlan(c, "lan2", subnet: "10.60.0.0/16"));
        Assert.Equal(NetworkErrorKind.Conflict, overlap.Kind);
        Assert.Contains("overlaps", overlap.Message);
        // dockerd 20.10 refuses a second macvlan network on a parent whatever its mode and subnet.
        var inUse = Assert.Throws<NetworkException>(() => CreateMacvlan(c, "lan3", subnet: "10.61.0.0/24", mode: "private"));
        Assert.Equal("network lan is already using parent interface lan0", inUse.Message);
        Assert.Single(c.Networks);
        CreateMacvlan(c, "lan4", subnet: "10.61.0.0/24", parent: Parent + "p"); // another parent: fine
    }

    [Fact]
    public void Dual_stack_macvlan_endpoint_gets_its_ipv6_address_and_default_route()
    {
        using var c = _lab.OpenController();
        c.CreateNetwork(new NetworkCreateOptions
        {
            Name = "lan6", Driver = NetworkDrivers.Macvlan, Parent = Parent, Subnet = "10.60.0.0/24", EnableIpv6 = true, Subnet6 = "fd00:60::/64",
        });
        var c1 = _lab.AddNamespace("c1");
        var c2 = _lab.AddNamespace("c2");
        var e1 = Connect(c, "lan6", c1);
        var e2 = Connect(c, "lan6", c2);
        Assert.Equal("fd00:60::2", e1.Address6!.ToString());
        Assert.Equal("fd00:60::1", e1.Gateway6!.ToString());
        Assert.Contains("inet6 fd00:60::2/64", NetLab.Run(c1, "ip", "-6", "addr", "show", "eth0").Output);
        Assert.Contains("default via fd00:60::1 dev eth0", NetLab.Run(c1, "ip", "-6", "route").Output);
        Assert.Equal(0, NetLab.Run(c1, "/bin/busybox", "ping", "-6", "-c", "1", "-W", "3", e2.Address6!.ToString()).Code);
        Assert.Equal("0", Sysctl.Read(_lab.HostPath, "net/ipv6/conf/all/forwarding"));
    }

    [Fact]
    public void Reconcile_keeps_live_endpoints_and_their_links_and_forgets_the_others()
    {
        var c1 = _lab.AddNamespace("c1");
        var c2 = _lab.AddNamespace("c2");
        string liveId;
        using (var c = _lab.OpenController())
        {
            CreateMacvlan(c, "lan");
            liveId = Connect(c, "lan", c1).Id;
            Connect(c, "lan", c2);
        }
        NetLab.Ip("netns", "del", c2); // its container is gone, its macvlan link with it
        using (var c = _lab.OpenController())
        {
            var report = c.Reconcile([liveId]);
            Assert.Equal(1, report.StaleEndpoints);
            Assert.Equal(0, report.StaleLinks);
            Assert.Equal(NetworkDrivers.Macvlan, c.GetNetwork("lan").Driver);
            Assert.Equal(liveId, Assert.Single(c.Endpoints).Id);
            Assert.Contains("inet 10.60.0.2/24", NetLab.Run(c1, "ip", "addr", "show", "eth0").Output);
            // The stale endpoint's address is free again: asking for it succeeds.
            var c3 = _lab.AddNamespace("c3");
            Assert.Equal("10.60.0.3", Connect(c, "lan", c3, address: "10.60.0.3").Address.ToString());
            Assert.True(Ping(c3, "10.60.0.2"));
        }
    }

    [Fact]
    public void Ipvlan_networks_work_where_the_kernel_has_ipvlan_and_are_refused_clearly_where_not()
    {
        using var c = _lab.OpenController();
        var l2 = c.CreateNetwork(new NetworkCreateOptions { Name = "iv", Driver = NetworkDrivers.Ipvlan, Parent = Parent, Subnet = "10.62.0.0/24" });
        Assert.Equal("l2", l2.Mode);
        Assert.Equal("bridge", l2.IpvlanFlag);
        var mode = Assert.Throws<NetworkException>(() => c.CreateNetwork(new NetworkCreateOptions { Name = "x", Driver = NetworkDrivers.Ipvlan, Parent = Parent + "p", Mode = "l9" }));
        Assert.Equal("requested ipvlan mode 'l9' is not valid, 'l2' mode is the ipvlan driver default", mode.Message);
        var flag = Assert.Throws<NetworkException>(() => c.CreateNetwork(new NetworkCreateOptions { Name = "x", Driver = NetworkDrivers.Ipvlan, Parent = Parent + "p", IpvlanFlag = "x" }));
        Assert.Equal("requested ipvlan flag 'x' is not valid, 'bridge' is the ipvlan driver default", flag.Message);
        var c1 = _lab.AddNamespace("c1");
        var c2 = _lab.AddNamespace("c2");
        if (!KernelHas("ipvlan", "mode", "l2"))
        {
            var ex = Assert.Throws<NetworkException>(() => Connect(c, "iv", c1));
            Assert.Equal("failed to create the ipvlan port: operation not supported (this kernel has no ipvlan links, CONFIG_IPVLAN)", ex.Message);
            Assert.Equal(NetworkErrorKind.Unavailable, ex.Kind);
            Assert.Empty(c.Endpoints);
            return;
        }
        var e1 = Connect(c, "iv", c1);
        var e2 = Connect(c, "iv", c2);
        Assert.Matches(@"ipvlan\s+mode l2", NetLab.Run(c1, "ip", "-d", "link", "show", "eth0").Output);
        Assert.Equal("10.62.0.1", e1.Gateway!.ToString());
        Assert.True(Ping(c1, e2.Address.ToString()));
        var l3 = c.CreateNetwork(new NetworkCreateOptions { Name = "iv3", Driver = NetworkDrivers.Ipvlan, Parent = Parent + "p", Mode = "l3", Subnet = "10.63.0.0/24" });
        var c3 = _lab.AddNamespace("c3");
        var e3 = Connect(c, l3.Name, c3);
        Assert.Null(e3.Gateway);
        Assert.Contains("default dev eth0", NetLab.Run(c3, "ip", "route").Output);
    }

    [Fact]
    public void A_missing_vlan_sub_interface_or_dummy_parent_is_made_and_removed_with_the_network_where_the_kernel_can()
    {
        var linksBefore = NetLab.Links(_lab.Host);
        using var c = _lab.OpenController();
        if (KernelHas("vlan", "id", "10"))
        {
            var net = CreateMacvlan(c, "vlan10", parent: Parent + ".10");
            Assert.Contains("vlan protocol 802.1Q id 10", NetLab.Run(_lab.Host, "ip", "-d", "link", "show", Parent + ".10").Output);
            Connect(c, "vlan10", _lab.AddNamespace("c1"));
            c.DeleteEndpoint(Assert.Single(c.Endpoints).Id);
            c.RemoveNetwork(net.Id);
        }
        else
        {
            var ex = Assert.Throws<NetworkException>(() => CreateMacvlan(c, "vlan10", parent: Parent + ".10"));
            Assert.Equal("failed to create lan0.10 vlan link: operation not supported (this kernel has no 802.1q VLAN support, CONFIG_VLAN_8021Q)", ex.Message);
        }
        Assert.Equal(linksBefore, NetLab.Links(_lab.Host));

        if (KernelHas("dummy"))
        {
            var net = CreateMacvlan(c, "noparent", parent: null);
            Assert.True(net.Internal);
            Assert.Equal("dm-" + net.Id[..12], net.Parent);
            Assert.Contains("dummy", NetLab.Run(_lab.Host, "ip", "-d", "link", "show", net.Parent!).Output);
            c.RemoveNetwork(net.Id);
        }
        else
        {
            var ex = Assert.Throws<NetworkException>(() => CreateMacvlan(c, "noparent", parent: null));
            Assert.StartsWith("failed to create the dummy link dm-", ex.Message);
            Assert.EndsWith("operation not supported (this kernel has no dummy links, CONFIG_DUMMY): give the network a parent (-o parent=IF)", ex.Message);
        }
        Assert.Equal(linksBefore, NetLab.Links(_lab.Host));
        Assert.Empty(c.Networks);
    }
}
