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
}
