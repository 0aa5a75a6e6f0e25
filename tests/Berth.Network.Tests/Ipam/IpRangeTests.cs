using System.Net;

namespace Berth.Network.Tests.Ipam;

/// <summary>--ip-range and --aux-address in IPAM: where dynamic addresses come from, what is never handed out.</summary>
public sealed class IpRangeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("berth-iprange-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Dictionary<string, IPAddress> Aux(params (string Name, string Address)[] aux)
        => aux.ToDictionary(a => a.Name, a => IPAddress.Parse(a.Address));

    [Fact]
    public void Dynamic_addresses_come_from_the_range_only_and_skip_auxiliary_addresses()
    {
        var ipam = new Network.Ipam(_dir);
        // 10.30.5.0/29 holds .0 to .7; .0 is a host of the /16, so dockerd hands it out first.
        ipam.AddPool("n", Ipv4Subnet.Parse("10.30.0.0/16"), range: Ipv4Subnet.Parse("10.30.5.0/29"), auxAddresses: Aux(("a", "10.30.5.2"), ("b", "10.30.9.9")));
        var given = Enumerable.Range(0, 7).Select(i => ipam.Allocate("n", "e" + i).ToString()).ToList();
        Assert.Equal(["10.30.5.0", "10.30.5.1", "10.30.5.3", "10.30.5.4", "10.30.5.5", "10.30.5.6", "10.30.5.7"], given);
        var ex = Assert.Throws<NetworkException>(() => ipam.Allocate("n", "e8"));
        Assert.Equal(NetworkErrorKind.Exhausted, ex.Kind);
        Assert.Contains("ip-range 10.30.5.0/29 of 10.30.0.0/16 is full", ex.Message);
        Assert.Equal(Ipv4Subnet.Parse("10.30.5.0/29"), ipam.GetRange("n"));
    }

    [Fact]
    public void A_requested_address_may_lie_outside_the_range_but_not_on_an_auxiliary_address()
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("n", Ipv4Subnet.Parse("10.31.0.0/16"), range: Ipv4Subnet.Parse("10.31.1.0/24"), auxAddresses: Aux(("router", "10.31.0.9")));
        Assert.Equal(IPAddress.Parse("10.31.0.50"), ipam.Allocate("n", "e1", IPAddress.Parse("10.31.0.50")));
        var ex = Assert.Throws<NetworkException>(() => ipam.Allocate("n", "e2", IPAddress.Parse("10.31.0.9")));
        Assert.Equal(NetworkErrorKind.Conflict, ex.Kind);
        Assert.Contains("auxiliary address router", ex.Message);
        Assert.Equal(IPAddress.Parse("10.31.1.0"), ipam.Allocate("n", "e3")); // back in the range, whatever was asked before
    }

    [Fact]
    public void Range_and_reservations_survive_a_reopen()
    {
        var first = new Network.Ipam(_dir);
        first.AddPool("n", Ipv4Subnet.Parse("10.32.0.0/24"), range: Ipv4Subnet.Parse("10.32.0.8/30"), auxAddresses: Aux(("x", "10.32.0.9")));
        Assert.Equal(IPAddress.Parse("10.32.0.8"), first.Allocate("n", "e1"));

        var reopened = new Network.Ipam(_dir);
        Assert.Equal(IPAddress.Parse("10.32.0.10"), reopened.Allocate("n", "e2"));
        Assert.Equal(IPAddress.Parse("10.32.0.11"), reopened.Allocate("n", "e3"));
        Assert.Equal(NetworkErrorKind.Exhausted, Assert.Throws<NetworkException>(() => reopened.Allocate("n", "e4")).Kind);
    }

    [Theory]
    [InlineData("10.33.0.0/24", "10.34.0.0/28", null, NetworkErrorKind.InvalidArgument, "invalid ip-range 10.34.0.0/28: parent subnet 10.33.0.0/24 doesn't contain ip-range")]
    [InlineData("10.33.0.0/24", "10.0.0.0/8", null, NetworkErrorKind.InvalidArgument, "doesn't contain ip-range")]
    [InlineData("10.33.0.0/24", null, "10.35.0.1", NetworkErrorKind.InvalidArgument, "invalid auxiliary address a: parent subnet 10.33.0.0/24 doesn't contain this address")]
    [InlineData("10.33.0.0/24", null, "10.33.0.1", NetworkErrorKind.Conflict, "failed to allocate secondary ip address (a:10.33.0.1): Address already in use")]
    [InlineData("10.33.0.0/24", null, "10.33.0.0", NetworkErrorKind.Conflict, "Address already in use")]
    [InlineData("10.33.0.0/24", null, "10.33.0.255", NetworkErrorKind.Conflict, "Address already in use")]
    public void Bad_ranges_and_auxiliary_addresses_are_refused_and_no_pool_is_left(string subnet, string? range, string? aux, NetworkErrorKind kind, string message)
    {
        var ipam = new Network.Ipam(_dir);
        var ex = Assert.Throws<NetworkException>(() => ipam.AddPool("n", Ipv4Subnet.Parse(subnet),
            range: range is null ? null : Ipv4Subnet.Parse(range), auxAddresses: aux is null ? null : Aux(("a", aux))));
        Assert.Equal(kind, ex.Kind);
        Assert.Contains(message, ex.Message);
        Assert.False(new Network.Ipam(_dir).HasPool("n"));
    }

    [Fact]
    public void Two_auxiliary_addresses_cannot_share_an_address()
    {
        var ex = Assert.Throws<NetworkException>(() => new Network.Ipam(_dir).AddPool("n", Ipv4Subnet.Parse("10.36.0.0/24"),
            auxAddresses: Aux(("a", "10.36.0.7"), ("b", "10.36.0.7"))));
        Assert.Equal(NetworkErrorKind.Conflict, ex.Kind);
        Assert.Contains("(b:10.36.0.7): Address already in use", ex.Message);
    }

    [Fact]
    public void An_ipv6_range_and_auxiliary_addresses_work_the_same_and_survive_a_reopen()
    {
        var ipam = new Network.Ipam(_dir);
        ipam.AddPool("n", Ipv4Subnet.Parse("10.37.0.0/24"), subnet6: Ipv6Subnet.Parse("fd00:db8:9::/64"),
            range6: Ipv6Subnet.Parse("fd00:db8:9::10/126"), auxAddresses6: Aux(("r", "fd00:db8:9::11")));
        Assert.Equal(IPAddress.Parse("fd00:db8:9::10"), ipam.Allocate6("n", "e1"));
        var reopened = new Network.Ipam(_dir);
        Assert.Equal(IPAddress.Parse("fd00:db8:9::12"), reopened.Allocate6("n", "e2"));
        Assert.Equal(IPAddress.Parse("fd00:db8:9::13"), reopened.Allocate6("n", "e3"));
        var full = Assert.Throws<NetworkException>(() => reopened.Allocate6("n", "e4"));
        Assert.Contains("ip-range fd00:db8:9::10/126 of fd00:db8:9::/64 is full", full.Message);
        Assert.Equal(IPAddress.Parse("fd00:db8:9::99"), reopened.Allocate6("n", "e5", IPAddress.Parse("fd00:db8:9::99"))); // outside the range, inside the subnet
        Assert.Equal(NetworkErrorKind.Conflict, Assert.Throws<NetworkException>(() => reopened.Allocate6("n", "e6", IPAddress.Parse("fd00:db8:9::11"))).Kind);
        Assert.Equal(IPAddress.Parse("10.37.0.2"), reopened.Allocate("n", "e7")); // the IPv4 side has no range
    }

    [Theory]
    [InlineData("fd00:db8:a::/80", null, NetworkErrorKind.InvalidArgument, "invalid ip-range fd00:db8:a::/80: parent subnet fd00:db8:9::/64 doesn't contain ip-range")]
    [InlineData(null, "fd00:db8:a::1", NetworkErrorKind.InvalidArgument, "invalid auxiliary address a: parent subnet fd00:db8:9::/64 doesn't contain this address")]
    [InlineData(null, "fd00:db8:9::1", NetworkErrorKind.Conflict, "failed to allocate secondary ip address (a:fd00:db8:9::1): Address already in use")]
    [InlineData(null, "fd00:db8:9::", NetworkErrorKind.Conflict, "Address already in use")]
    public void Bad_ipv6_ranges_and_auxiliary_addresses_are_refused(string? range6, string? aux6, NetworkErrorKind kind, string message)
    {
        var ex = Assert.Throws<NetworkException>(() => new Network.Ipam(_dir).AddPool("n", Ipv4Subnet.Parse("10.38.0.0/24"), subnet6: Ipv6Subnet.Parse("fd00:db8:9::/64"),
            range6: range6 is null ? null : Ipv6Subnet.Parse(range6), auxAddresses6: aux6 is null ? null : Aux(("a", aux6))));
        Assert.Equal(kind, ex.Kind);
        Assert.Contains(message, ex.Message);
        Assert.False(new Network.Ipam(_dir).HasPool("n"));
    }
}
