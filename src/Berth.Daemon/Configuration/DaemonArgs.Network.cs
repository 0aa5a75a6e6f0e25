using System.Globalization;
using System.Text.Json.Serialization;
using Berth.Network;

namespace Berth.Daemon.Configuration;

// dockerd's bridge-network flags and daemon.json keys, apart from the rest of DaemonArgs:
// --default-address-pool (default-address-pools).
public static partial class DaemonArgs
{
    /// <summary>The key under which a network flag's values are collected; null when <paramref name="name"/> is no network flag.</summary>
    private static string? NetworkFlagKey(string name) => name switch
    {
        "--default-address-pool" => "default-address-pools",
        _ => null,
    };

    /// <summary>Boolean network flags (none yet); true when <paramref name="name"/> was one and has been taken.</summary>
    private static bool NetworkBoolFlag(string name, string? value, Dictionary<string, List<string>> flags) => false;

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
        return new NetworkDefaults(pools);
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

    /// <summary>Checks of the network settings that need the whole DaemonOptions.</summary>
    private static void ValidateNetworkDefaults(DaemonOptions options)
    {
    }
}

/// <summary>The network settings DaemonArgs read, applied to the options once they are built.</summary>
internal sealed record NetworkDefaults(IReadOnlyList<AddressPool>? DefaultAddressPools)
{
    public DaemonOptions ApplyTo(DaemonOptions options) => options with { DefaultAddressPools = DefaultAddressPools };
}

// daemon.json's network keys.
public sealed partial record DaemonConfigFile
{
    [JsonPropertyName("default-address-pools")] public IReadOnlyList<DaemonConfigAddressPool>? DefaultAddressPools { get; init; }
}

/// <summary>One entry of daemon.json's "default-address-pools" (dockerd's shape).</summary>
public sealed record DaemonConfigAddressPool
{
    [JsonPropertyName("base")] public string? Base { get; init; }
    [JsonPropertyName("size")] public int Size { get; init; }
}
