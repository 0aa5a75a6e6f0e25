using System.Globalization;
using System.Text.Json.Serialization;
using Berth.Network;

namespace Berth.Daemon.Configuration;

// dockerd's bridge-network flags and daemon.json keys, apart from the rest of DaemonArgs:
// --default-address-pool (default-address-pools), --fixed-cidr, --mtu, --icc, --ip, --ipv6, --fixed-cidr-v6, --userland-proxy.
public static partial class DaemonArgs
{
    /// <summary>The key under which a network flag's values are collected; null when <paramref name="name"/> is no network flag.</summary>
    private static string? NetworkFlagKey(string name) => name switch
    {
        "--default-address-pool" => "default-address-pools",
        "--fixed-cidr" => "fixed-cidr",
        "--mtu" => "mtu",
        "--ip" => "ip",
        "--fixed-cidr-v6" => "fixed-cidr-v6",
        _ => null,
    };

    /// <summary>Boolean network flags (--icc, --icc=false, --ipv6, --userland-proxy); true when <paramref name="name"/> was one and has been taken.</summary>
    private static bool NetworkBoolFlag(string name, string? value, Dictionary<string, List<string>> flags)
    {
        if (name is not ("--icc" or "--ipv6" or "--userland-proxy")) return false;
        flags[name[2..]] = [BoolFlag(name, value) ? "true" : "false"];
        return true;
    }

    /// <summary>The network settings from the flags or the file (a setting in both is a conflict, as dockerd says).</summary>
    private static NetworkDefaults ParseNetworkDefaults(Dictionary<string, List<string>> flags, DaemonConfigFile file, List<string> conflicts)
    {
        List<AddressPool>? pools = null;
        if (flags.TryGetValue("default-address-pools", out List<string>? poolFlags))
        {
            if (file.DefaultAddressPools is not null)
                conflicts.Add($"default-address-pools: (from flag: [{string.Join(' ', poolFlags)}], from file: [{string.Join(' ', file.DefaultAddressPools.Select(p => $"base={p.Base},size={p.Size}"))}])");
            pools = [.. poolFlags.Select(ParsePoolFlag)];
        }
        else if (file.DefaultAddressPools is not null)
        {
            pools = [.. file.DefaultAddressPools.Select(p => AddressPoolOf(p.Base ?? "", p.Size))];
        }
        if (pools is { Count: 0 }) pools = null;

        string? Single(string key, string? fromFile)
        {
            if (!flags.TryGetValue(key, out List<string>? values)) return fromFile;
            if (fromFile is not null) conflicts.Add($"{key}: (from flag: {values[^1]}, from file: {fromFile})");
            return values[^1];
        }
        string? fixedCidr = Single("fixed-cidr", file.FixedCidr);
        string? mtuText = Single("mtu", file.Mtu?.ToString(CultureInfo.InvariantCulture));
        int? mtu = mtuText is null ? null
            : int.TryParse(mtuText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int m) ? m
            : throw new DaemonConfigException($"invalid argument \"{mtuText}\" for \"--mtu\" flag: give a number");
        bool icc = Single("icc", file.Icc?.ToString().ToLowerInvariant()) is not "false";
        string? ip = Single("ip", file.Ip);
        bool ipv6 = Single("ipv6", file.Ipv6?.ToString().ToLowerInvariant()) is "true";
        string? fixedCidrV6 = Single("fixed-cidr-v6", file.FixedCidrV6);
        bool userlandProxy = Single("userland-proxy", file.UserlandProxy?.ToString().ToLowerInvariant()) is not "false";
        return new NetworkDefaults(pools, fixedCidr, mtu, icc, ip, ipv6, fixedCidrV6, userlandProxy);
    }

    /// <summary>One --default-address-pool: <c>base=CIDR,size=N</c>, dockerd's errors for a bad one.</summary>
    private static AddressPool ParsePoolFlag(string flag)
    {
        string? baseText = null;
        int size = 0;
        foreach (string field in flag.Split(','))
        {
            int eq = field.IndexOf('=');
            string key = eq < 0 ? field : field[..eq], value = eq < 0 ? "" : field[(eq + 1)..];
            switch (key.ToLowerInvariant())
            {
                case "base":
                    baseText = value;
                    break;
                case "size":
                    if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out size))
                        throw new DaemonConfigException($"invalid argument \"{flag}\" for \"--default-address-pool\" flag: invalid size value: \"{value}\" (must be integer)");
                    break;
                default:
                    throw new DaemonConfigException($"invalid argument \"{flag}\" for \"--default-address-pool\" flag: unexpected key '{key}' in '{field}'");
            }
        }
        return AddressPoolOf(baseText ?? "", size);
    }

    /// <summary>A pool checked as dockerd checks it at start: an IPv4 base, a size from the base's prefix length to /30.</summary>
    private static AddressPool AddressPoolOf(string baseText, int size)
    {
        int slash = baseText.IndexOf('/');
        if (slash < 0 || !System.Net.IPAddress.TryParse(baseText[..slash], out System.Net.IPAddress? ip)
            || !int.TryParse(baseText[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int bits)
            || bits > (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 128 : 32))
            throw new DaemonConfigException($"invalid base pool \"{baseText}\": invalid CIDR address: {baseText}");
        if (ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            throw new DaemonConfigException($"default address pool {baseText}: IPv6 pools are not supported by this version of berthd (IPv6 networks take a /64 of the daemon's ULA prefix)");
        // dockerd's check; above /30 a subnet has no room for a gateway and a container (berthd's limit for any network).
        if (size <= 0 || size < bits || size > 30)
            throw new DaemonConfigException($"invalid pools size: {size} (default address pool {baseText}: from /{bits} to /30)");
        return new AddressPool(new Ipv4Subnet(ip, bits), size);
    }

    /// <summary>
    /// Checks of the network settings that need the whole DaemonOptions: --fixed-cidr inside --bip's subnet
    /// (or, without --bip, a subnet berthd can make: /8 to /30), --mtu as dockerd bounds it, --ip an IPv4 address.
    /// </summary>
    private static void ValidateNetworkDefaults(DaemonOptions options)
    {
        Ipv4Subnet? bip = null;
        if (options.BridgeSubnet is { } bipText)
        {
            try
            {
                bip = Ipv4Subnet.Parse(bipText);
            }
            catch (NetworkException)
            {
                throw new DaemonConfigException($"invalid bip `{bipText}`: give an IPv4 CIDR such as 172.30.0.1/16");
            }
        }
        if (options.FixedCidr is { } fixedText)
        {
            Ipv4Subnet fixedCidr;
            try
            {
                fixedCidr = Ipv4Subnet.Parse(fixedText);
            }
            catch (NetworkException)
            {
                throw new DaemonConfigException($"invalid fixed-cidr `{fixedText}`: invalid CIDR address: {fixedText} (IPv4; IPv6 goes to --fixed-cidr-v6)");
            }
            if (bip is { } b && (fixedCidr.PrefixLength < b.PrefixLength || !b.Contains(fixedCidr.Network)))
                throw new DaemonConfigException($"fixed-cidr {fixedText} is not inside the default bridge's subnet {b} (--bip)");
            if (bip is null && fixedCidr.PrefixLength is < 8 or > 30)
                throw new DaemonConfigException($"fixed-cidr {fixedText} without --bip is the default bridge's subnet: give a prefix from /8 to /30");
        }
        if (options.Mtu is { } mtu && mtu is < 68 or > 65535)
            throw new DaemonConfigException($"invalid MTU number: {mtu} (from 68 to 65535)");
        if (options.FixedCidrV6 is { } fixed6)
        {
            Ipv6Subnet subnet6;
            try
            {
                subnet6 = Ipv6Subnet.Parse(fixed6);
            }
            catch (NetworkException e)
            {
                throw new DaemonConfigException($"invalid fixed-cidr-v6 `{fixed6}`: {e.Message}");
            }
            // As a user network's IPv6 subnet: room for the gateway and containers, not the whole space.
            if (subnet6.PrefixLength is < 16 or > 126)
                throw new DaemonConfigException($"fixed-cidr-v6 {fixed6}: give a prefix from /16 to /126");
        }
        if (options.Ipv6 && options.Mtu is < 1280)
            throw new DaemonConfigException($"invalid MTU number: {options.Mtu}: IPv6 (--ipv6) needs at least 1280");
        if (options.DefaultBindIp is { } ip)
        {
            if (!System.Net.IPAddress.TryParse(ip, out System.Net.IPAddress? address))
                throw new DaemonConfigException($"invalid argument \"{ip}\" for \"--ip\" flag: {ip} is not an ip address");
            if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
                throw new DaemonConfigException($"ip {ip}: berthd publishes ports on IPv4 host addresses only");
        }
    }
}

/// <summary>The network settings DaemonArgs read, applied to the options once they are built.</summary>
internal sealed record NetworkDefaults(IReadOnlyList<AddressPool>? DefaultAddressPools, string? FixedCidr, int? Mtu, bool Icc, string? Ip, bool Ipv6, string? FixedCidrV6, bool UserlandProxy)
{
    public DaemonOptions ApplyTo(DaemonOptions options) => options with
    {
        DefaultAddressPools = DefaultAddressPools,
        FixedCidr = FixedCidr,
        Mtu = Mtu,
        InterContainerCommunication = Icc,
        DefaultBindIp = Ip,
        Ipv6 = Ipv6,
        FixedCidrV6 = FixedCidrV6,
        UserlandProxy = UserlandProxy,
    };
}

// daemon.json's network keys.
public sealed partial record DaemonConfigFile
{
    [JsonPropertyName("default-address-pools")] public IReadOnlyList<DaemonConfigAddressPool>? DefaultAddressPools { get; init; }
    [JsonPropertyName("fixed-cidr")] public string? FixedCidr { get; init; }
    [JsonPropertyName("mtu")] public int? Mtu { get; init; }
    [JsonPropertyName("icc")] public bool? Icc { get; init; }
    [JsonPropertyName("ip")] public string? Ip { get; init; }
    [JsonPropertyName("ipv6")] public bool? Ipv6 { get; init; }
    [JsonPropertyName("fixed-cidr-v6")] public string? FixedCidrV6 { get; init; }
    [JsonPropertyName("userland-proxy")] public bool? UserlandProxy { get; init; }
}

/// <summary>One entry of daemon.json's "default-address-pools" (dockerd's shape).</summary>
public sealed record DaemonConfigAddressPool
{
    [JsonPropertyName("base")] public string? Base { get; init; }
    [JsonPropertyName("size")] public int Size { get; init; }
}
