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
    public string? Hostname { get; init; }
    public List<string> Aliases { get; init; } = new();
    public List<PortMapping> Ports { get; init; } = new();
}

/// <summary>Whether Berth turned net.ipv4.ip_forward on (and must turn it off after the last network).</summary>
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
