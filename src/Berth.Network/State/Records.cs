using System.Text.Json.Serialization;

namespace Berth.Network.State;

/// <summary>One address pool as persisted: <c>ipam/&lt;pool&gt;.json</c>.</summary>
internal sealed class PoolRecord
{
    public required string Subnet { get; init; }
    public required string Gateway { get; init; }
    /// <summary>Address → owner (an endpoint id).</summary>
    public Dictionary<string, string> Allocations { get; init; } = new();
    /// <summary>The last address handed out: allocation continues after it, so a just-freed address is not reused at once.</summary>
    public string? Last { get; set; }

    // The IPv6 side of a dual-stack network (null when it has none): its own subnet, gateway and allocations.
    public string? Subnet6 { get; init; }
    public string? Gateway6 { get; init; }
    public Dictionary<string, string>? Allocations6 { get; init; }
    public string? Last6 { get; set; }

    /// <summary>--ip-range: dynamic allocation stays inside it; null: the whole subnet.</summary>
    public string? Range { get; init; }
    /// <summary>--aux-address: address → its name; never handed out, nor given on request.</summary>
    public Dictionary<string, string>? Reserved { get; init; }
    /// <summary>The same for the IPv6 subnet of a dual-stack pool.</summary>
    public string? Range6 { get; init; }
    public Dictionary<string, string>? Reserved6 { get; init; }
}

/// <summary>A network as persisted: <c>networks/&lt;id&gt;.json</c>.</summary>
internal sealed class NetworkRecord
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string Bridge { get; init; }
    public required string Subnet { get; init; }
    public required string Gateway { get; init; }
    public bool Internal { get; init; }
    public int Mtu { get; init; }
    public DateTimeOffset Created { get; init; }
    public Dictionary<string, string>? Labels { get; init; }
    public Dictionary<string, string>? DriverOptions { get; init; }
    public bool ConfiguredSubnet { get; init; }
    public bool Attachable { get; init; }
    /// <summary>IPAM.Options as given; null when none were (older records too).</summary>
    public Dictionary<string, string>? IpamOptions { get; init; }
    /// <summary>The IPv6 subnet and gateway of a dual-stack network (--ipv6); null: IPv4 only.</summary>
    public string? Subnet6 { get; init; }
    public string? Gateway6 { get; init; }
    /// <summary>The IPv6 subnet was given at create, not allocated from the daemon's ULA prefix.</summary>
    public bool ConfiguredSubnet6 { get; init; }
    /// <summary>--ip-range and --aux-address (name → address) as given, to be shown back.</summary>
    public string? IpRange { get; init; }
    public Dictionary<string, string>? AuxAddresses { get; init; }
    /// <summary>The IPv6 subnet's --ip-range and --aux-address on a dual-stack network.</summary>
    public string? IpRange6 { get; init; }
    public Dictionary<string, string>? AuxAddresses6 { get; init; }
    /// <summary>Inter-container communication off (false in older records: on).</summary>
    public bool IccDisabled { get; init; }
    /// <summary>The host address published ports that name none are bound to; null: every address.</summary>
    public string? HostBindingIpv4 { get; init; }
    /// <summary>macvlan or ipvlan; null: bridge (older records too). Such a network has no bridge (<see cref="Bridge"/> is empty).</summary>
    public string? Driver { get; init; }
    /// <summary>The link a macvlan or ipvlan network's container links sit on (-o parent, or the dummy link made for a network without one).</summary>
    public string? Parent { get; init; }
    /// <summary>The parent is an 802.1q sub-interface or a dummy link this network made, deleted with it.</summary>
    public bool ParentCreated { get; init; }
    /// <summary>macvlan_mode or ipvlan_mode, normalised (bridge, l2 when not given).</summary>
    public string? Mode { get; init; }
    /// <summary>ipvlan_flag, normalised (bridge when not given).</summary>
    public string? IpvlanFlag { get; init; }
    /// <summary>The gateway was given at create (--gateway), not the subnet's first address; the same for the IPv6 gateway.</summary>
    public bool ConfiguredGateway { get; init; }
    public bool ConfiguredGateway6 { get; init; }
}

/// <summary>An endpoint as persisted: <c>endpoints/&lt;id&gt;.json</c>.</summary>
internal sealed class EndpointRecord
{
    public required string Id { get; init; }
    public required string NetworkId { get; init; }
    public required string ContainerId { get; init; }
    public required string HostInterface { get; init; }
    public required string Interface { get; init; }
    public required string Address { get; init; }
    public required string MacAddress { get; init; }
    /// <summary>The endpoint's IPv6 address on a dual-stack network; null otherwise.</summary>
    public string? Address6 { get; init; }
    public string? Hostname { get; init; }
    public List<string> Aliases { get; init; } = new();
    public List<PortMapping> Ports { get; init; } = new();
    /// <summary>Its ports without a host IP are bound on the IPv6 wildcard too (the host has IPv6).</summary>
    public bool PortsOnIpv6Any { get; init; }
    /// <summary>
    /// The container's namespace, kept for a macvlan or ipvlan endpoint (which has no host end): its link
    /// is deleted there when a running container disconnects.
    /// </summary>
    public string? NetnsPath { get; init; }
}

/// <summary>Whether Berth turned a forwarding sysctl on (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding) and must turn it off after the last network needing it.</summary>
internal sealed class ForwardingRecord
{
    public bool EnabledByBerth { get; init; }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(PoolRecord))]
[JsonSerializable(typeof(NetworkRecord))]
[JsonSerializable(typeof(EndpointRecord))]
[JsonSerializable(typeof(ForwardingRecord))]
internal sealed partial class StateJson : JsonSerializerContext;
