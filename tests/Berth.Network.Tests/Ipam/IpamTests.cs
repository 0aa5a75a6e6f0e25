using System.Net;

namespace Berth.Network.Tests.Ipam;

public sealed class IpamTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("berth-ipam-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Gateway_is_the_first_address_and_allocation_skips_it()
    {
        var ipam = new Network.Ipam(_dir);
        Assert.Equal(IPAddress.Parse("10.1.0.1"), ipam.AddPool("n1", Ipv4Subnet.Parse("10.1.0.0/24")));
        Assert.Equal(IPAddress.Parse("10.1.0.2"), ipam.Allocate("n1", "e1"));
        Assert.Equal(IPAddress.Parse("10.1.0.3"), ipam.Allocate("n1", "e2"));
    }

    [Fact]
    public void Allocations_survive_a_reopen_and_are_never_handed_out_twice()
    {
        var first = new Network.Ipam(_dir);
        first.AddPool("n1", Ipv4Subnet.Parse("10.1.0.0/29"));
        var a = first.Allocate("n1", "e1");
        var b = first.Allocate("n1", "e2");
        first.Release("n1", a);

        var reopened = new Network.Ipam(_dir);
        Assert.Equal("e2", reopened.Allocations("n1")[b.ToString()]);
        var next = reopened.Allocate("n1", "e3");
        Assert.NotEqual(b, next);
        Assert.NotEqual(a, next); // round robin: the just-freed address is not reused at once
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_dir, "ipam"), ".*"));
    }

    [Fact]
    public void Exhaustion_is_a_clear_error()
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("small", Ipv4Subnet.Parse("10.2.0.0/30")); // .1 gateway, .2 the only host address
        ipam.Allocate("small", "e1");
        var ex = Assert.Throws<NetworkException>(() => ipam.Allocate("small", "e2"));
        Assert.Equal(NetworkErrorKind.Exhausted, ex.Kind);
        Assert.Contains("no available IPv4 address", ex.Message);
        Assert.Contains("10.2.0.0/30", ex.Message);
    }

    [Theory]
    [InlineData("10.3.0.0/16", "10.3.4.0/24")]
    [InlineData("10.3.4.0/24", "10.0.0.0/8")]
    [InlineData("10.3.0.0/16", "10.3.0.0/16")]
    public void Overlapping_pools_are_refused(string existing, string requested)
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("a", Ipv4Subnet.Parse(existing));
        var ex = Assert.Throws<NetworkException>(() => ipam.AddPool("b", Ipv4Subnet.Parse(requested)));
        Assert.Equal(NetworkErrorKind.Conflict, ex.Kind);
        Assert.False(new Network.Ipam(_dir).HasPool("b"));
    }

    [Theory]
    [InlineData("10.4.0.0/24", "10.5.0.1")]
    [InlineData("10.4.0.0/24", "10.4.0.0")]
    [InlineData("10.4.0.0/24", "10.4.0.255")]
    public void Gateway_outside_or_reserved_is_refused(string subnet, string gateway)
    {
        var ex = Assert.Throws<NetworkException>(() => new Network.Ipam(_dir).AddPool("n", Ipv4Subnet.Parse(subnet), IPAddress.Parse(gateway)));
        Assert.Equal(NetworkErrorKind.InvalidArgument, ex.Kind);
    }

    [Fact]
    public void Requested_address_must_be_free_and_inside()
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("n", Ipv4Subnet.Parse("10.6.0.0/24"));
        Assert.Equal(IPAddress.Parse("10.6.0.50"), ipam.Allocate("n", "e1", IPAddress.Parse("10.6.0.50")));
        Assert.Equal(NetworkErrorKind.Conflict, Assert.Throws<NetworkException>(() => ipam.Allocate("n", "e2", IPAddress.Parse("10.6.0.50"))).Kind);
        Assert.Equal(NetworkErrorKind.Conflict, Assert.Throws<NetworkException>(() => ipam.Allocate("n", "e2", IPAddress.Parse("10.6.0.1"))).Kind);
        Assert.Equal(NetworkErrorKind.InvalidArgument, Assert.Throws<NetworkException>(() => ipam.Allocate("n", "e2", IPAddress.Parse("10.7.0.5"))).Kind);
    }

    [Fact]
    public void Default_subnet_skips_routes_and_existing_pools()
    {
        var ipam = new Network.Ipam(_dir);
        Assert.Equal("172.17.0.0/16", ipam.ChooseSubnet([]).ToString());
        ipam.AddPool("a", Ipv4Subnet.Parse("172.18.0.0/16"));
        Assert.Equal("172.19.0.0/16", ipam.ChooseSubnet([Ipv4Subnet.Parse("172.17.0.0/24")]).ToString());
        var everything172 = Ipv4Subnet.Parse("172.16.0.0/12");
        Assert.Equal("192.168.0.0/20", ipam.ChooseSubnet([everything172]).ToString());
        var ex = Assert.Throws<NetworkException>(() => ipam.ChooseSubnet([everything172, Ipv4Subnet.Parse("192.168.0.0/16")]));
        Assert.Equal(NetworkErrorKind.Exhausted, ex.Kind);
    }

    [Fact]
    public void Release_unless_frees_addresses_of_dead_owners()
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("n", Ipv4Subnet.Parse("10.8.0.0/24"));
        ipam.Allocate("n", "live");
        ipam.Allocate("n", "dead");
        Assert.Equal(1, ipam.ReleaseUnless("n", owner => owner == "live"));
        Assert.Equal(["live"], new Network.Ipam(_dir).Allocations("n").Values);
    }
}
