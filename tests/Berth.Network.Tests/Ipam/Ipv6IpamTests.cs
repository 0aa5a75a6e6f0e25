using System.Net;

namespace Berth.Network.Tests.Ipam;

/// <summary>The IPv6 side of dual-stack pools: subnets, gateways, allocation, persistence, the ULA default.</summary>
public sealed class Ipv6IpamTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("berth-ipam6-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly Ipv4Subnet V4 = Ipv4Subnet.Parse("10.1.0.0/24");

    [Fact]
    public void Subnet_parses_normalised_prefixes_only()
    {
        var s = Ipv6Subnet.Parse("fd00:db8:1::/64");
        Assert.Equal("fd00:db8:1::/64", s.ToString());
        Assert.True(s.Contains(IPAddress.Parse("fd00:db8:1::ffff")));
        Assert.False(s.Contains(IPAddress.Parse("fd00:db8:2::1")));
        Assert.False(s.Contains(IPAddress.Parse("10.0.0.1")));
        Assert.True(s.Overlaps(Ipv6Subnet.Parse("fd00:db8:1:0:8000::/65")));
        Assert.True(s.Overlaps(Ipv6Subnet.Parse("fd00:db8::/32")));
        Assert.False(s.Overlaps(Ipv6Subnet.Parse("fd00:db8:1:1::/64")));
        Assert.Contains("it should be fd00:db8:1::/64", Assert.Throws<NetworkException>(() => Ipv6Subnet.Parse("fd00:db8:1::5/64")).Message);
        foreach (var bad in new[] { "10.0.0.0/8", "fd00::", "fd00::/129", "fd00::/x", "nonsense/64" })
        {
            var ex = Assert.Throws<NetworkException>(() => Ipv6Subnet.Parse(bad));
            Assert.Equal(NetworkErrorKind.InvalidArgument, ex.Kind);
            Assert.Contains("invalid IPv6 subnet", ex.Message);
        }
    }

    [Fact]
    public void Gateway_is_the_first_address_and_allocation_skips_it()
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("n1", V4, subnet6: Ipv6Subnet.Parse("fd00:db8:1::/64"));
        Assert.Equal(IPAddress.Parse("fd00:db8:1::1"), ipam.GetPool6("n1")!.Value.Gateway);
        Assert.Equal(IPAddress.Parse("fd00:db8:1::2"), ipam.Allocate6("n1", "e1"));
        Assert.Equal(IPAddress.Parse("fd00:db8:1::3"), ipam.Allocate6("n1", "e2"));
        Assert.Equal(IPAddress.Parse("10.1.0.2"), ipam.Allocate("n1", "e1")); // the IPv4 side is separate
    }

    [Fact]
    public void Given_gateway_is_kept_and_must_be_a_host_of_the_subnet()
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("n1", V4, subnet6: Ipv6Subnet.Parse("fd00:db8:1::/64"), gateway6: IPAddress.Parse("fd00:db8:1::fe"));
        Assert.Equal(IPAddress.Parse("fd00:db8:1::1"), ipam.Allocate6("n1", "e1"));
        Assert.Throws<NetworkException>(() => ipam.AddPool("n2", Ipv4Subnet.Parse("10.2.0.0/24"), subnet6: Ipv6Subnet.Parse("fd00:db8:2::/64"), gateway6: IPAddress.Parse("fd00:db8:3::1")));
        Assert.Throws<NetworkException>(() => ipam.AddPool("n3", Ipv4Subnet.Parse("10.3.0.0/24"), subnet6: Ipv6Subnet.Parse("fd00:db8:4::/64"), gateway6: IPAddress.Parse("fd00:db8:4::")));
        Assert.False(ipam.HasPool("n2"));
        Assert.False(ipam.HasPool("n3"));
    }

    [Fact]
    public void Requested_addresses_are_checked()
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("n1", V4, subnet6: Ipv6Subnet.Parse("fd00:db8:1::/64"));
        Assert.Equal(IPAddress.Parse("fd00:db8:1::99"), ipam.Allocate6("n1", "e1", IPAddress.Parse("fd00:db8:1::99")));
        Assert.Equal(NetworkErrorKind.Conflict, Assert.Throws<NetworkException>(() => ipam.Allocate6("n1", "e2", IPAddress.Parse("fd00:db8:1::99"))).Kind);
        Assert.Equal(NetworkErrorKind.Conflict, Assert.Throws<NetworkException>(() => ipam.Allocate6("n1", "e2", IPAddress.Parse("fd00:db8:1::1"))).Kind);
        Assert.Equal(NetworkErrorKind.InvalidArgument, Assert.Throws<NetworkException>(() => ipam.Allocate6("n1", "e2", IPAddress.Parse("fd00:db8:2::5"))).Kind);
        Assert.Equal(NetworkErrorKind.InvalidArgument, Assert.Throws<NetworkException>(() => ipam.Allocate6("n1", "e2", IPAddress.Parse("fd00:db8:1::"))).Kind);
        ipam.AddPool("v4only", Ipv4Subnet.Parse("10.9.0.0/24"));
        Assert.Contains("no IPv6 subnet", Assert.Throws<NetworkException>(() => ipam.Allocate6("v4only", "e3")).Message);
    }

    [Fact]
    public void Overlapping_ipv6_subnets_are_refused()
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("n1", V4, subnet6: Ipv6Subnet.Parse("fd00:db8:1::/64"));
        var ex = Assert.Throws<NetworkException>(() => ipam.AddPool("n2", Ipv4Subnet.Parse("10.2.0.0/24"), subnet6: Ipv6Subnet.Parse("fd00:db8::/32")));
        Assert.Equal(NetworkErrorKind.Conflict, ex.Kind);
        Assert.Contains("overlaps subnet fd00:db8:1::/64", ex.Message);
        Assert.False(ipam.HasPool("n2"));
        Assert.Equal(NetworkErrorKind.InvalidArgument, Assert.Throws<NetworkException>(() => ipam.AddPool("n3", Ipv4Subnet.Parse("10.3.0.0/24"), subnet6: Ipv6Subnet.Parse("fd00:db8:9::/127"))).Kind);
    }

    [Fact]
    public void Small_subnet_exhausts_and_the_last_address_is_a_host()
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("n1", V4, subnet6: Ipv6Subnet.Parse("fd00:db8:1::/126")); // ::0 anycast, ::1 gateway, ::2, ::3
        Assert.Equal(IPAddress.Parse("fd00:db8:1::2"), ipam.Allocate6("n1", "e1"));
        Assert.Equal(IPAddress.Parse("fd00:db8:1::3"), ipam.Allocate6("n1", "e2"));
        Assert.Equal(NetworkErrorKind.Exhausted, Assert.Throws<NetworkException>(() => ipam.Allocate6("n1", "e3")).Kind);
        ipam.Release("n1", IPAddress.Parse("fd00:db8:1::2"));
        Assert.Equal(IPAddress.Parse("fd00:db8:1::2"), ipam.Allocate6("n1", "e3"));
    }

    [Fact]
    public void Allocations_survive_a_reopen_and_stale_ones_are_released()
    {
        var first = new Network.Ipam(_dir);
        first.AddPool("n1", V4, subnet6: Ipv6Subnet.Parse("fd00:db8:1::/64"));
        var a = first.Allocate6("n1", "e1");
        var b = first.Allocate6("n1", "e2");
        first.Allocate("n1", "e2");
        first.Release("n1", a);

        var reopened = new Network.Ipam(_dir);
        Assert.Equal("e2", reopened.Allocations6("n1")[b.ToString()]);
        var next = reopened.Allocate6("n1", "e3");
        Assert.NotEqual(a, next); // round robin
        Assert.NotEqual(b, next);
        Assert.Equal(2, reopened.ReleaseUnless("n1", owner => owner == "e3")); // e2's two addresses, nothing of e3's
        Assert.Equal([next.ToString()], reopened.Allocations6("n1").Keys);
        Assert.Empty(reopened.Allocations("n1"));
    }

    [Fact]
    public void Default_subnets_are_the_free_64s_of_the_ula_prefix()
    {
        var ipam = new Network.Ipam(_dir);
        var ula = Ipv6Subnet.Parse("fd12:3456:789a::/48");
        Assert.Equal("fd12:3456:789a::/64", ipam.ChooseSubnet6(ula, []).ToString());
        ipam.AddPool("n1", V4, subnet6: ipam.ChooseSubnet6(ula, []));
        Assert.Equal("fd12:3456:789a:1::/64", ipam.ChooseSubnet6(ula, []).ToString());
        Assert.Equal("fd12:3456:789a:2::/64", ipam.ChooseSubnet6(ula, [Ipv6Subnet.Parse("fd12:3456:789a:1::/64")]).ToString());
    }
}
