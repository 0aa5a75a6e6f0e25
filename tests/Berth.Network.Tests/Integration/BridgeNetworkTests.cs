using Berth.Network.Tests.Support;

namespace Berth.Network.Tests.Integration;

/// <summary>The real thing, inside a <see cref="NetLab"/>: bridges, veths, nftables NAT, busybox servers and clients.</summary>
public sealed class BridgeNetworkTests : IDisposable
{
    private readonly NetLab _lab = new();

    public void Dispose() => _lab.Dispose();

    private EndpointInfo Connect(NetworkController c, string network, string container, params PortMapping[] ports) =>
        c.CreateEndpoint(new EndpointCreateOptions
        {
            Network = network, ContainerId = container, NetnsPath = NetLab.PathOf(container), Ports = ports,
            Aliases = [container + "-alias"], Hostname = container,
        });

    [Fact]
    public void Outbound_traffic_is_masqueraded_to_the_outside()
    {
        using var c = _lab.OpenController();
        c.EnsureDefaultNetwork();
        var c1 = _lab.AddNamespace("c1");
        Connect(c, "bridge", c1);
        _lab.StartHttpd(_lab.Outside, 8000, "outside-token");

        // The outside namespace has no route to the container subnet: an answer proves the source was NATed.
        Assert.Equal("outside-token", NetLab.Get(c1, $"http://{NetLab.OutsideIp}:8000/"));
        Assert.Contains("default via", NetLab.Run(c1, "ip", "route").Output);
    }

    [Fact]
    public void Published_port_answers_from_outside_from_host_loopback_and_hairpin()
    {
        using var c = _lab.OpenController();
        c.EnsureDefaultNetwork();
        var c1 = _lab.AddNamespace("c1");
        var ep = Connect(c, "bridge", c1, PortSpec.Parse("8080:80").ToArray());
        _lab.StartHttpd(c1, 80, "published-token");

        Assert.Equal("published-token", NetLab.Get(_lab.Outside, $"http://{NetLab.HostIp}:8080/"));
        Assert.Equal("published-token", NetLab.Get(_lab.Host, "http://127.0.0.1:8080/"));
        Assert.Equal("published-token", NetLab.Get(_lab.Host, $"http://{NetLab.HostIp}:8080/"));
        // Hairpin: the container reaches its own published port via the host's address.
        Assert.Equal("published-token", NetLab.Get(c1, $"http://{NetLab.HostIp}:8080/"));

        c.DeleteEndpoint(ep.Id);
        Assert.Null(NetLab.Get(_lab.Outside, $"http://{NetLab.HostIp}:8080/"));
        Assert.DoesNotContain("8080", NetLab.Nft(_lab.Host));
    }

    [Fact]
    public void Port_bound_to_one_host_address_answers_only_there()
    {
        using var c = _lab.OpenController();
        c.EnsureDefaultNetwork();
        var c1 = _lab.AddNamespace("c1");
        Connect(c, "bridge", c1, PortSpec.Parse("127.0.0.1:9090:80").ToArray());
        _lab.StartHttpd(c1, 80, "loopback-only");

        Assert.Equal("loopback-only", NetLab.Get(_lab.Host, "http://127.0.0.1:9090/"));
        Assert.Null(NetLab.Get(_lab.Outside, $"http://{NetLab.HostIp}:9090/"));
    }

    [Fact]
    public void Containers_on_one_user_network_reach_each_other_but_not_another_network()
    {
        using var c = _lab.OpenController();
        var a = c.CreateNetwork(new NetworkCreateOptions { Name = "neta" });
        var b = c.CreateNetwork(new NetworkCreateOptions { Name = "netb" });
        Assert.False(a.Subnet.Overlaps(b.Subnet));
        var c1 = _lab.AddNamespace("c1");
        var c2 = _lab.AddNamespace("c2");
        var c3 = _lab.AddNamespace("c3");
        var e1 = Connect(c, "neta", c1);
        var e2 = Connect(c, "neta", c2);
        var e3 = Connect(c, "netb", c3);
        _lab.StartHttpd(c2, 80, "c2-token");
        _lab.StartHttpd(c3, 80, "c3-token");

        Assert.Equal("c2-token", NetLab.Get(c1, $"http://{e2.Address}/"));
        Assert.Null(NetLab.Get(c1, $"http://{e3.Address}/"));
        Assert.Null(NetLab.Get(c3, $"http://{e2.Address}/"));

        // Names: c1's hosts file lists c2 (and not c3); written into c1's "init layer" it resolves.
        var peers = c.PeersOf(e1.Id);
        var entry = Assert.Single(peers);
        Assert.Equal(e2.Address, entry.Address);
        Assert.Contains($"{c2}-alias", entry.Names);
        var hosts = HostsFile.Render(c1, e1.Address, peers);
        Assert.Contains($"{e2.Address}\t{c2}-alias {c2}", hosts);
    }

    [Fact]
    public void Internal_network_has_no_way_out()
    {
        using var c = _lab.OpenController();
        c.CreateNetwork(new NetworkCreateOptions { Name = "inner", Internal = true, Subnet = "10.50.0.0/24" });
        var c1 = _lab.AddNamespace("c1");
        var c2 = _lab.AddNamespace("c2");
        var e2 = Connect(c, "inner", c2);
        Connect(c, "inner", c1);
        _lab.StartHttpd(_lab.Outside, 8000, "outside");
        _lab.StartHttpd(c2, 80, "peer");

        Assert.Equal("peer", NetLab.Get(c1, $"http://{e2.Address}/"));
        Assert.DoesNotContain("default", NetLab.Run(c1, "ip", "route").Output);
        Assert.Null(NetLab.Get(c1, $"http://{NetLab.OutsideIp}:8000/"));
        var ex = Assert.Throws<NetworkException>(() => Connect(c, "inner", _lab.AddNamespace("c3"), PortSpec.Parse("80:80").ToArray()));
        Assert.Equal(NetworkErrorKind.InvalidArgument, ex.Kind);
    }

    [Fact]
    public void Everything_is_removed_after_endpoint_delete_and_network_remove()
    {
        var linksBefore = NetLab.Links(_lab.Host);
        Assert.Equal("0", Sysctl.Read(_lab.HostPath, "net/ipv4/ip_forward"));
        using (var c = _lab.OpenController())
        {
            var n = c.CreateNetwork(new NetworkCreateOptions { Name = "tmp" });
            var c1 = _lab.AddNamespace("c1");
            var ep = Connect(c, "tmp", c1, PortSpec.Parse("8081:80/udp").ToArray());
            Assert.Equal("1", Sysctl.Read(_lab.HostPath, "net/ipv4/ip_forward"));
            Assert.Contains(ep.HostInterface, NetLab.Links(_lab.Host));
            Assert.Contains(n.Bridge, NetLab.Links(_lab.Host));
            Assert.Contains("eth0", NetLab.Links(c1));
            Assert.Contains("8081", NetLab.Nft(_lab.Host));
            Assert.Throws<NetworkException>(() => c.RemoveNetwork("tmp")); // still has an endpoint

            c.DeleteEndpoint(ep.Id);
            Assert.DoesNotContain("eth0", NetLab.Links(c1));
            Assert.DoesNotContain(ep.HostInterface, NetLab.Links(_lab.Host));
            c.RemoveNetwork("tmp");
            Assert.Empty(c.Networks);
        }
        Assert.Equal(linksBefore, NetLab.Links(_lab.Host));
        Assert.Equal("", NetLab.Nft(_lab.Host).Trim());
        Assert.Equal("0", Sysctl.Read(_lab.HostPath, "net/ipv4/ip_forward"));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_lab.StateDirectory, "ipam")));
    }

    [Theory]
    [InlineData("8080:80", NetworkErrorKind.Conflict)] // already published by the first container
    [InlineData("0.0.0.0:8080:80", NetworkErrorKind.Conflict)]
    public void Refused_endpoint_leaves_no_link_rule_or_address(string spec, NetworkErrorKind kind)
    {
        using var c = _lab.OpenController();
        var net = c.EnsureDefaultNetwork();
        var c1 = _lab.AddNamespace("c1");
        Connect(c, "bridge", c1, PortSpec.Parse("8080:80").ToArray());
        var links = NetLab.Links(_lab.Host);
        var rules = NetLab.Nft(_lab.Host);
        var c2 = _lab.AddNamespace("c2");

        var ex = Assert.Throws<NetworkException>(() => Connect(c, "bridge", c2, PortSpec.Parse(spec).ToArray()));
        Assert.Equal(kind, ex.Kind);
        Assert.Contains("8080", ex.Message);
        Assert.Equal(links, NetLab.Links(_lab.Host));
        Assert.Equal(rules, NetLab.Nft(_lab.Host));
        Assert.DoesNotContain("eth0", NetLab.Links(c2));
        Assert.Single(c.EndpointsOf(net.Id));
        Assert.Single(new Network.Ipam(_lab.StateDirectory).Allocations(net.Id));
    }

    [Fact]
    public void A_kernel_refusal_names_operation_and_errno_and_is_rolled_back()
    {
        using var c = _lab.OpenController();
        var net = c.EnsureDefaultNetwork();
        var c1 = _lab.AddNamespace("c1");
        NetLab.Ip("-n", c1, "link", "add", "eth0", "type", "veth", "peer", "name", "other"); // the name the veth's inner end needs is taken
        var links = NetLab.Links(_lab.Host);

        var ex = Assert.Throws<NetlinkException>(() => Connect(c, "bridge", c1, PortSpec.Parse("8080:80").ToArray()));
        Assert.Equal(17, ex.Errno); // EEXIST
        Assert.Contains("RTM_NEWLINK create veth", ex.Message);
        Assert.Equal(links, NetLab.Links(_lab.Host));
        Assert.DoesNotContain("8080", NetLab.Nft(_lab.Host));
        Assert.Empty(new Network.Ipam(_lab.StateDirectory).Allocations(net.Id));
    }

    [Fact]
    public void Reconcile_after_a_crash_removes_stale_veths_addresses_and_ports()
    {
        string staleIf, liveId;
        using (var c = _lab.OpenController())
        {
            c.EnsureDefaultNetwork();
            var stale = Connect(c, "bridge", _lab.AddNamespace("c1"), PortSpec.Parse("7000:80").ToArray());
            var live = Connect(c, "bridge", _lab.AddNamespace("c2"), PortSpec.Parse("7001:80").ToArray());
            staleIf = stale.HostInterface;
            liveId = live.Id;
            // "Crash": the controller goes away without deleting anything.
        }
        // A veth the daemon created but never recorded (crash between the two).
        NetLab.Ip("-n", _lab.Host, "link", "add", "vb0123456789", "type", "veth", "peer", "name", "vbpeer");

        using (var c = _lab.OpenController())
        {
            var report = c.Reconcile([liveId]);
            Assert.Equal(1, report.StaleEndpoints);
            Assert.Equal(2, report.StaleLinks);
            Assert.Equal(1, report.ReleasedAddresses);
            var links = NetLab.Links(_lab.Host);
            Assert.DoesNotContain(staleIf, links);
            Assert.DoesNotContain("vb0123456789", links);
            var rules = NetLab.Nft(_lab.Host);
            Assert.DoesNotContain("7000", rules);
            Assert.Contains("7001", rules);
            Assert.Single(c.Endpoints);
        }
    }

    [Fact]
    public void Reconcile_recreates_a_missing_bridge()
    {
        using var c = _lab.OpenController();
        var net = c.EnsureDefaultNetwork();
        NetLab.Ip("-n", _lab.Host, "link", "del", net.Bridge);
        var report = c.Reconcile([]);
        Assert.Equal(1, report.RecreatedBridges);
        Assert.Contains($"inet {net.Gateway}/{net.Subnet.PrefixLength}", NetLab.Run(_lab.Host, "ip", "addr", "show", net.Bridge).Output);
    }

    [Fact]
    public void Default_subnet_avoids_host_routes_and_mtu_follows_the_uplink()
    {
        NetLab.Ip("-n", _lab.Host, "route", "add", "172.17.5.0/24", "via", NetLab.OutsideIp);
        NetLab.Ip("-n", _lab.Host, "link", "set", "uplink", "mtu", "1400");
        NetLab.Ip("-n", _lab.Host, "route", "add", "default", "via", NetLab.OutsideIp);
        using var c = _lab.OpenController();
        var net = c.EnsureDefaultNetwork();
        Assert.Equal("172.18.0.0/16", net.Subnet.ToString());
        Assert.Equal(1400, net.Mtu);
        var c1 = _lab.AddNamespace("c1");
        Connect(c, "bridge", c1);
        Assert.Contains("mtu 1400", NetLab.Run(c1, "ip", "link", "show", "eth0").Output);
    }

    [Fact]
    public void Overlapping_user_subnet_is_refused_before_any_change()
    {
        using var c = _lab.OpenController();
        c.CreateNetwork(new NetworkCreateOptions { Name = "one", Subnet = "10.60.0.0/16" });
        var links = NetLab.Links(_lab.Host);
        var rules = NetLab.Nft(_lab.Host);
        var ex = Assert.Throws<NetworkException>(() => c.CreateNetwork(new NetworkCreateOptions { Name = "two", Subnet = "10.60.8.0/24" }));
        Assert.Equal(NetworkErrorKind.Conflict, ex.Kind);
        Assert.Contains("overlaps", ex.Message);
        Assert.Equal(links, NetLab.Links(_lab.Host));
        Assert.Equal(rules, NetLab.Nft(_lab.Host));
        Assert.Single(c.Networks);
    }
}
