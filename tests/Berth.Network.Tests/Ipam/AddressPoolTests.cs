namespace Berth.Network.Tests.Ipam;

/// <summary>Subnets for networks created without one: from the daemon's default address pools, or Docker's built-in list.</summary>
public sealed class AddressPoolTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("berth-pools-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void The_built_in_pools_are_dockers()
    {
        Assert.Equal(16, Network.Ipam.DefaultPools.Count);
        Assert.Equal(new AddressPool(Ipv4Subnet.Parse("172.17.0.0/16"), 16), Network.Ipam.DefaultPools[0]);
        Assert.Equal(new AddressPool(Ipv4Subnet.Parse("172.31.0.0/16"), 16), Network.Ipam.DefaultPools[14]);
        Assert.Equal(new AddressPool(Ipv4Subnet.Parse("192.168.0.0/16"), 20), Network.Ipam.DefaultPools[15]);
    }

    [Fact]
    public void Configured_pools_are_cut_in_their_size_and_taken_in_order()
    {
        var ipam = new Network.Ipam(_dir);
        AddressPool[] pools = [new(Ipv4Subnet.Parse("10.10.0.0/23"), 24), new(Ipv4Subnet.Parse("10.20.0.0/16"), 26)];
        Assert.Equal("10.10.0.0/24", ipam.ChooseSubnet([], pools).ToString());
        ipam.AddPool("a", ipam.ChooseSubnet([], pools));
        Assert.Equal("10.10.1.0/24", ipam.ChooseSubnet([], pools).ToString());
        ipam.AddPool("b", ipam.ChooseSubnet([], pools));
        // The first base is used up: the second one, in /26s; a host route over its start is skipped.
        Assert.Equal("10.20.0.0/26", ipam.ChooseSubnet([], pools).ToString());
        Assert.Equal("10.20.1.0/26", ipam.ChooseSubnet([Ipv4Subnet.Parse("10.20.0.0/24")], pools).ToString());
        Assert.Equal("10.20.0.64/26", ipam.ChooseSubnet([Ipv4Subnet.Parse("10.20.0.0/26")], pools).ToString());
    }

    [Fact]
    public void A_large_route_is_skipped_in_one_step_and_exhaustion_names_the_pools()
    {
        var ipam = new Network.Ipam(_dir);
        AddressPool[] pools = [new(Ipv4Subnet.Parse("10.0.0.0/8"), 30)];
        // 2^22 candidates under 10.0.0.0/9: found at once past it.
        Assert.Equal("10.128.0.0/30", ipam.ChooseSubnet([Ipv4Subnet.Parse("10.0.0.0/9")], pools).ToString());
        var ex = Assert.Throws<NetworkException>(() => ipam.ChooseSubnet([Ipv4Subnet.Parse("10.0.0.0/8")], pools));
        Assert.Equal(NetworkErrorKind.Exhausted, ex.Kind);
        Assert.Contains("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network", ex.Message);
        Assert.Contains("base=10.0.0.0/8,size=30", ex.Message);
    }
}
