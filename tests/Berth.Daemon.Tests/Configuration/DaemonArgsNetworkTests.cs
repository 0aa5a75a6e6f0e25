using Berth.Daemon.Configuration;
using Berth.Network;

namespace Berth.Daemon.Tests.Configuration;

/// <summary>dockerd's bridge-network options as flags and daemon.json keys: parsed, checked at start with dockerd's words.</summary>
public sealed class DaemonArgsNetworkTests
{
    private static string Refused(params string[] args) => Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(args)).Message;

    private static string ConfigFile(TempDirectory dir, string json)
    {
        string path = dir.Combine("daemon.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void Default_address_pools_as_flags_or_in_the_file()
    {
        Assert.Null(DaemonArgs.Parse([]).Options.DefaultAddressPools);
        DaemonOptions o = DaemonArgs.Parse(["--default-address-pool", "base=10.10.0.0/16,size=24", "--default-address-pool=base=10.20.0.0/16,size=26"]).Options;
        Assert.Equal([new AddressPool(Ipv4Subnet.Parse("10.10.0.0/16"), 24), new AddressPool(Ipv4Subnet.Parse("10.20.0.0/16"), 26)], o.DefaultAddressPools);

        using var dir = new TempDirectory("netargs");
        string config = ConfigFile(dir, """{ "default-address-pools": [{"base": "10.30.0.0/16", "size": 24}] }""");
        Assert.Equal([new AddressPool(Ipv4Subnet.Parse("10.30.0.0/16"), 24)], DaemonArgs.Parse(["--config-file", config]).Options.DefaultAddressPools);
        Assert.Contains("default-address-pools: (from flag: [base=10.10.0.0/16,size=24], from file: [base=10.30.0.0/16,size=24])",
            Refused("--config-file", config, "--default-address-pool", "base=10.10.0.0/16,size=24"));
        Assert.Contains("unable to configure the daemon with file", Refused("--config-file", ConfigFile(dir, """{ "default-address-pools": [{"base": "10.30.0.0/16", "size": 24, "x": 1}] }""")));
    }

    [Theory]
    [InlineData("base=bad,size=24", "invalid base pool \"bad\": invalid CIDR address: bad")]
    [InlineData("size=24", "invalid base pool \"\": invalid CIDR address: ")]
    [InlineData("base=10.10.0.0/16", "invalid pools size: 0")]
    [InlineData("base=10.10.0.0/16,size=8", "invalid pools size: 8")]
    [InlineData("base=10.10.0.0/16,size=31", "invalid pools size: 31")]
    [InlineData("base=10.10.0.0/16,size=x", "invalid argument \"base=10.10.0.0/16,size=x\" for \"--default-address-pool\" flag: invalid size value: \"x\" (must be integer)")]
    [InlineData("base=10.10.0.0/16,size=24,foo=1", "invalid argument \"base=10.10.0.0/16,size=24,foo=1\" for \"--default-address-pool\" flag: unexpected key 'foo' in 'foo=1'")]
    [InlineData("base=fd00::/48,size=64", "IPv6 pools are not supported by this version of berthd")]
    public void Bad_default_address_pools_are_refused_at_start(string flag, string expected)
        => Assert.Contains(expected, Refused("--default-address-pool", flag));

    [Fact]
    public void Bad_pools_in_the_file_are_refused_too()
    {
        using var dir = new TempDirectory("netargs");
        Assert.Contains("invalid pools size: 12", Refused("--config-file", ConfigFile(dir, """{ "default-address-pools": [{"base": "10.30.0.0/16", "size": 12}] }""")));
    }

    [Fact]
    public void Fixed_cidr_mtu_icc_and_ip_as_flags_or_in_the_file()
    {
        DaemonOptions defaults = DaemonArgs.Parse([]).Options;
        Assert.Equal((null, null, true, null), (defaults.FixedCidr, defaults.Mtu, defaults.InterContainerCommunication, defaults.DefaultBindIp));
        DaemonOptions o = DaemonArgs.Parse(["--bip", "10.5.0.1/16", "--fixed-cidr", "10.5.8.0/24", "--mtu", "1400", "--icc=false", "--ip=127.0.0.1"]).Options;
        Assert.Equal(("10.5.8.0/24", 1400, false, "127.0.0.1"), (o.FixedCidr, o.Mtu, o.InterContainerCommunication, o.DefaultBindIp));
        Assert.True(DaemonArgs.Parse(["--icc"]).Options.InterContainerCommunication);
        Assert.Equal("10.6.0.0/24", DaemonArgs.Parse(["--fixed-cidr", "10.6.0.0/24"]).Options.FixedCidr); // without --bip: the subnet too

        using var dir = new TempDirectory("netargs");
        string config = ConfigFile(dir, """{ "bip": "10.5.0.1/16", "fixed-cidr": "10.5.8.0/24", "mtu": 1450, "icc": false, "ip": "10.1.2.3" }""");
        DaemonOptions f = DaemonArgs.Parse(["--config-file", config]).Options;
        Assert.Equal(("10.5.8.0/24", 1450, false, "10.1.2.3"), (f.FixedCidr, f.Mtu, f.InterContainerCommunication, f.DefaultBindIp));
        string conflict = Refused("--config-file", config, "--mtu", "1400", "--icc=true");
        Assert.Contains("mtu: (from flag: 1400, from file: 1450)", conflict);
        Assert.Contains("icc: (from flag: true, from file: false)", conflict);
    }

    [Fact]
    public void Userland_proxy_as_a_flag_or_in_the_file()
    {
        Assert.True(DaemonArgs.Parse([]).Options.UserlandProxy);
        Assert.False(DaemonArgs.Parse(["--userland-proxy=false"]).Options.UserlandProxy);
        Assert.True(DaemonArgs.Parse(["--userland-proxy"]).Options.UserlandProxy);
        using var dir = new TempDirectory("netargs");
        string config = ConfigFile(dir, """{ "userland-proxy": false }""");
        Assert.False(DaemonArgs.Parse(["--config-file", config]).Options.UserlandProxy);
        Assert.Contains("userland-proxy: (from flag: true, from file: false)", Refused("--config-file", config, "--userland-proxy=true"));
    }

    [Theory]
    [InlineData("invalid fixed-cidr `bad`: invalid CIDR address: bad", "--fixed-cidr", "bad")]
    [InlineData("fixed-cidr 10.6.0.0/24 is not inside the default bridge's subnet 10.5.0.0/16 (--bip)", "--bip", "10.5.0.1/16", "--fixed-cidr", "10.6.0.0/24")]
    [InlineData("fixed-cidr 10.0.0.0/4 is not inside", "--bip", "10.5.0.1/16", "--fixed-cidr", "10.0.0.0/4")]
    [InlineData("fixed-cidr 10.6.0.0/31 without --bip is the default bridge's subnet", "--fixed-cidr", "10.6.0.0/31")]
    [InlineData("invalid bip `nonsense`", "--bip", "nonsense")]
    [InlineData("invalid MTU number: -5", "--mtu", "-5")]
    [InlineData("invalid MTU number: 70000", "--mtu", "70000")]
    [InlineData("invalid argument \"x\" for \"--mtu\" flag", "--mtu", "x")]
    [InlineData("invalid value \"maybe\" for flag --icc", "--icc=maybe")]
    [InlineData("invalid argument \"bad\" for \"--ip\" flag: bad is not an ip address", "--ip", "bad")]
    [InlineData("berthd publishes ports on IPv4 host addresses only", "--ip", "::1")]
    public void Bad_network_options_are_refused_at_start(string expected, params string[] args)
        => Assert.Contains(expected, Refused(args));

    [Fact]
    public void Ipv6_and_fixed_cidr_v6_as_flags_or_in_the_file()
    {
        Assert.Equal((false, null), (DaemonArgs.Parse([]).Options.Ipv6, DaemonArgs.Parse([]).Options.FixedCidrV6));
        DaemonOptions o = DaemonArgs.Parse(["--ipv6", "--fixed-cidr-v6", "fd00:db8:1::/64"]).Options;
        Assert.Equal((true, "fd00:db8:1::/64"), (o.Ipv6, o.FixedCidrV6));
        Assert.False(DaemonArgs.Parse(["--ipv6=false"]).Options.Ipv6);
        using var dir = new TempDirectory("netargs");
        string config = ConfigFile(dir, """{ "ipv6": true, "fixed-cidr-v6": "fd00:db8:2::/64" }""");
        DaemonOptions f = DaemonArgs.Parse(["--config-file", config]).Options;
        Assert.Equal((true, "fd00:db8:2::/64"), (f.Ipv6, f.FixedCidrV6));
        Assert.Contains("fixed-cidr-v6: (from flag: fd00:db8:1::/64, from file: fd00:db8:2::/64)", Refused("--config-file", config, "--fixed-cidr-v6", "fd00:db8:1::/64"));

        Assert.Contains("invalid fixed-cidr-v6 `bad`", Refused("--ipv6", "--fixed-cidr-v6", "bad"));
        Assert.Contains("invalid subnet fd00:db8:1::1/64: it should be fd00:db8:1::/64", Refused("--ipv6", "--fixed-cidr-v6", "fd00:db8:1::1/64"));
        Assert.Contains("fixed-cidr-v6 fd00:db8:1::/127: give a prefix from /16 to /126", Refused("--ipv6", "--fixed-cidr-v6", "fd00:db8:1::/127"));
        Assert.Contains("IPv6 (--ipv6) needs at least 1280", Refused("--ipv6", "--mtu", "1000"));
    }
}
