using Berth.Network.Nat;
using System.Text;

namespace Berth.Network.Tests.Nat;

/// <summary>Which map of which table each kind of published port goes to (the nft batch text).</summary>
public sealed class NftFirewallPortTests
{
    private static string Elements(string spec, string? address6) =>
        NftFirewall.AppendPorts(new StringBuilder(), "add", new NftFirewall.EndpointRules("172.17.0.2", PortSpec.Parse(spec), address6)).ToString();

    [Fact]
    public void Every_address_is_dnatted_over_both_families_when_the_container_has_both()
    {
        Assert.Equal(
            "add element ip berth pub_any { tcp . 8080 : 172.17.0.2 . 80 }\n" +
            "add element ip6 berth pub_any { tcp . 8080 : fd00::2 . 80 }\n", Elements("8080:80", "fd00::2"));
        Assert.Equal("add element ip berth pub_any { tcp . 8080 : 172.17.0.2 . 80 }\n", Elements("8080:80", null));
    }

    [Fact]
    public void A_family_wildcard_stays_in_its_family()
    {
        Assert.Equal("add element ip berth pub_any { udp . 53 : 172.17.0.2 . 53 }\n", Elements("0.0.0.0:53:53/udp", "fd00::2"));
        Assert.Equal("add element ip6 berth pub_any { tcp . 8080 : fd00::2 . 80 }\n", Elements("[::]:8080:80", "fd00::2"));
    }

    [Fact]
    public void One_host_address_goes_to_its_familys_pub_ip_and_ipv6_needs_a_container_ipv6_address()
    {
        Assert.Equal("add element ip berth pub_ip { 127.0.0.1 . tcp . 8080 : 172.17.0.2 . 80 }\n", Elements("127.0.0.1:8080:80", "fd00::2"));
        Assert.Equal("add element ip6 berth pub_ip { 2001:db8::1 . tcp . 8080 : fd00::2 . 80 }\n", Elements("[2001:db8::1]:8080:80", "fd00::2"));
        // Left to the userland proxy: IPv6 to an IPv4-only container, and ::1.
        Assert.Equal("", Elements("[2001:db8::1]:8080:80", null));
        Assert.Equal("", Elements("[::]:8080:80", null));
        Assert.Equal("", Elements("[::1]:8080:80", "fd00::2"));
    }
}
