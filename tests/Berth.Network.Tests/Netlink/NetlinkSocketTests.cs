using Berth.Network.Netlink;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests.Netlink;

public sealed class NetlinkSocketTests : IDisposable
{
    private readonly NetLab _lab = new();

    public void Dispose() => _lab.Dispose();

    [Fact]
    public void Creates_bridge_and_veth_into_a_namespace_with_address_and_route()
    {
        using var host = NetlinkSocket.OpenIn(_lab.HostPath);
        var c1 = _lab.AddNamespace("c1");
        host.CreateBridge("brt0", 1450);
        var bridge = host.GetLink("brt0")!;
        Assert.Equal("bridge", bridge.Kind);
        Assert.True(bridge.Up);
        host.AddAddress(bridge.Index, System.Net.IPAddress.Parse("10.77.0.1"), 24);
        using (var ns = Netns.Open(NetLab.PathOf(c1)))
        {
            host.CreateVethPair("vtest", "eth0", 1450, bridge.Index, ns, [0x02, 0x42, 10, 77, 0, 2]);
        }
        var outer = host.GetLink("vtest")!;
        Assert.Equal(bridge.Index, outer.MasterIndex);
        Assert.Equal("veth", outer.Kind);
        using var inside = NetlinkSocket.OpenIn(NetLab.PathOf(c1));
        var eth0 = inside.GetLink("eth0")!;
        Assert.False(eth0.Up);
        inside.SetUp(eth0.Index);
        Assert.Equal(1450, eth0.Mtu);
        inside.AddAddress(eth0.Index, System.Net.IPAddress.Parse("10.77.0.2"), 24);
        inside.AddRoute(new Ipv4Subnet(0, 0), System.Net.IPAddress.Parse("10.77.0.1"), eth0.Index);
        Assert.Contains(inside.ListRoutes(), r => r.Destination.PrefixLength == 0 && r.Gateway!.ToString() == "10.77.0.1");
        Assert.Contains("02:42:0a:4d:00:02", NetLab.Run(c1, "ip", "link", "show", "eth0").Output);
        Assert.Equal(0, NetLab.Run(c1, "/bin/busybox", "ping", "-c", "1", "-W", "2", "10.77.0.1").Code);

        Assert.True(host.DeleteLink("vtest"));
        Assert.Null(inside.GetLink("eth0"));
        Assert.False(host.DeleteLink("vtest"));
    }

    [Fact]
    public void Moves_an_existing_link_into_a_namespace()
    {
        using var host = NetlinkSocket.OpenIn(_lab.HostPath);
        var c1 = _lab.AddNamespace("c1");
        host.CreateVethPair("vmove0", "vmove1");
        using (var ns = Netns.Open(NetLab.PathOf(c1))) host.MoveToNetns(host.GetIndex("vmove1"), ns, "eth5");
        Assert.Null(host.GetLink("vmove1"));
        using var inside = NetlinkSocket.OpenIn(NetLab.PathOf(c1));
        Assert.NotNull(inside.GetLink("eth5"));
    }

    [Fact]
    public void Netlink_errors_name_the_operation_and_errno()
    {
        using var host = NetlinkSocket.OpenIn(_lab.HostPath);
        host.CreateBridge("brdup", 0);
        var ex = Assert.Throws<NetlinkException>(() => host.CreateBridge("brdup", 0));
        Assert.Equal(17, ex.Errno);
        Assert.Equal(NetworkErrorKind.Conflict, ex.Kind);
        Assert.Contains("RTM_NEWLINK create bridge brdup", ex.Message);
        Assert.Contains("errno 17", ex.Message);
    }

    [Fact]
    public async Task Socket_opened_in_a_namespace_stays_there_whatever_thread_uses_it()
    {
        using var host = NetlinkSocket.OpenIn(_lab.HostPath);
        var names = await Task.Run(() => host.ListLinks().Select(l => l.Name).ToList());
        Assert.Contains("uplink", names);
        // And the calling threads never changed namespace: ours still has no "uplink".
        using var own = NetlinkSocket.Open();
        Assert.DoesNotContain(own.ListLinks(), l => l.Name == "uplink");
        Assert.Equal(new FileInfo("/proc/self/ns/net").LinkTarget, new FileInfo("/proc/thread-self/ns/net").LinkTarget);
    }

    [Fact]
    public void Adds_ipv6_addresses_without_dad_and_an_ipv6_default_route()
    {
        using var host = NetlinkSocket.OpenIn(_lab.HostPath);
        var c1 = _lab.AddNamespace("c1");
        host.CreateBridge("brt6", 0);
        var bridge = host.GetLink("brt6")!;
        Sysctl.Write(_lab.HostPath, "net/ipv6/conf/brt6/disable_ipv6", "0");
        host.AddAddress6(bridge.Index, System.Net.IPAddress.Parse("fd00:77::1"), 64);
        using (var ns = Netns.Open(NetLab.PathOf(c1))) host.CreateVethPair("vtest6", "eth0", 0, bridge.Index, ns);
        using var inside = NetlinkSocket.OpenIn(NetLab.PathOf(c1));
        var eth0 = inside.GetLink("eth0")!;
        inside.SetUp(eth0.Index);
        inside.AddAddress6(eth0.Index, System.Net.IPAddress.Parse("fd00:77::2"), 64);
        inside.AddRoute6(new Ipv6Subnet(UInt128.Zero, 0), System.Net.IPAddress.Parse("fd00:77::1"), eth0.Index);

        Assert.Contains(inside.ListRoutes6(), r => r.Destination.PrefixLength == 0 && r.Gateway!.ToString() == "fd00:77::1" && r.OutputIndex == eth0.Index);
        Assert.Contains(inside.ListRoutes6(), r => r.Destination.ToString() == "fd00:77::/64");
        Assert.DoesNotContain(inside.ListRoutes(), r => r.Destination.PrefixLength == 0); // the IPv4 dump sees no IPv6 route
        var addresses = NetLab.Run(c1, "ip", "-6", "addr", "show", "eth0").Output;
        Assert.Contains("inet6 fd00:77::2/64", addresses);
        Assert.DoesNotContain("tentative", addresses.Split('\n').Single(l => l.Contains("fd00:77::2/64")));
        Assert.Equal(0, NetLab.Run(c1, "/bin/busybox", "ping", "-6", "-c", "1", "-W", "2", "fd00:77::1").Code);
        Assert.True(host.DeleteLink("vtest6"));
    }
}
