namespace Berth.Network.Tests.Ports;

public sealed class PortSpecTests
{
    [Theory]
    [InlineData("80", null, 0, 80, "tcp")]
    [InlineData("8080:80", null, 8080, 80, "tcp")]
    [InlineData("8080:80/udp", null, 8080, 80, "udp")]
    [InlineData("127.0.0.1:8080:80", "127.0.0.1", 8080, 80, "tcp")]
    [InlineData("0.0.0.0:8080:80", "0.0.0.0", 8080, 80, "tcp")]
    [InlineData("10.0.0.1::80/tcp", "10.0.0.1", 0, 80, "tcp")]
    [InlineData("[::1]:8080:80", "::1", 8080, 80, "tcp")]
    [InlineData("[::]:8080:80/udp", "::", 8080, 80, "udp")]
    [InlineData("[2001:DB8:0::5]::80", "2001:db8::5", 0, 80, "tcp")]
    public void Parses_docker_syntax(string spec, string? ip, int host, int container, string proto)
    {
        var p = Assert.Single(PortSpec.Parse(spec));
        Assert.Equal(new PortMapping { HostIp = ip, HostPort = host, ContainerPort = container, Protocol = proto }, p);
    }

    [Fact]
    public void Ranges_expand_pairwise()
    {
        var ports = PortSpec.Parse("8000-8002:80-82");
        Assert.Equal([(8000, 80), (8001, 81), (8002, 82)], ports.Select(p => (p.HostPort, p.ContainerPort)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("8080:0")]
    [InlineData("70000:80")]
    [InlineData("8080:80/sctp")]
    [InlineData("8000-8001:80")]
    [InlineData("90-80")]
    [InlineData("not-an-ip:8080:80")]
    [InlineData("[fe80::1%2]:8080:80")]
    [InlineData("+80:80")]
    public void Bad_specs_are_invalid_arguments_naming_the_spec(string spec)
    {
        var ex = Assert.Throws<NetworkException>(() => PortSpec.Parse(spec));
        Assert.Equal(NetworkErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains($"\"{spec}\"", ex.Message);
    }

    [Fact]
    public void Conflicts_need_same_protocol_port_and_an_overlapping_address()
    {
        var any = new PortMapping { Protocol = "tcp", HostPort = 80, ContainerPort = 1 };
        Assert.True(any.ConflictsWith(any with { HostIp = "10.0.0.1" }));
        Assert.False(any.ConflictsWith(any with { Protocol = "udp" }));
        Assert.False(any.ConflictsWith(any with { HostPort = 81 }));
        Assert.False((any with { HostIp = "10.0.0.1" }).ConflictsWith(any with { HostIp = "10.0.0.2" }));
    }

    [Fact]
    public void A_wildcard_of_one_family_conflicts_with_that_family_only()
    {
        var port = new PortMapping { Protocol = "tcp", HostPort = 80, ContainerPort = 1 };
        Assert.True((port with { HostIp = "::" }).ConflictsWith(port with { HostIp = "::1" }));
        Assert.True((port with { HostIp = "::" }).ConflictsWith(port));
        Assert.False((port with { HostIp = "::" }).ConflictsWith(port with { HostIp = "0.0.0.0" }));
        Assert.False((port with { HostIp = "::" }).ConflictsWith(port with { HostIp = "127.0.0.1" }));
        Assert.True((port with { HostIp = "0.0.0.0" }).ConflictsWith(port with { HostIp = "127.0.0.1" }));
        Assert.False((port with { HostIp = "0.0.0.0" }).ConflictsWith(port with { HostIp = "::1" }));
        Assert.True((port with { HostIp = "::1" }).ConflictsWith(port with { HostIp = "::1" }));
    }
}
