using System.Net;

namespace Berth.Network;

public sealed record NetworkControllerOptions
{
    /// <summary>Persistent state (IPAM pools, networks, endpoints), e.g. /var/lib/berth/network.</summary>
    public required string StateDirectory { get; init; }

    /// <summary>The namespace the bridges and rules live in (tests use a private one); null: the daemon's own.</summary>
    public string? HostNetnsPath { get; init; }

    /// <summary>The default network's bridge (Docker's docker0).</summary>
    public string DefaultBridge { get; init; } = "berth0";

    /// <summary>The default network's subnet; null: the first of Docker's pools that no host route overlaps.</summary>
    public string? DefaultSubnet { get; init; }

    /// <summary>
    /// The ULA /48 (fdXX:XXXX:XXXX::/48) that dual-stack networks created without an IPv6 subnet take
    /// a /64 from, as docker 27 does; null: derived from /etc/machine-id and the state directory, so
    /// it is stable for one daemon and differs between daemons (RFC 4193 wants the 40 bits random).
    /// </summary>
    public string? Ipv6UlaPrefix { get; init; }

    /// <summary>
    /// The pools networks created without a subnet take theirs from, in order: each base split into
    /// subnets of its size (dockerd's --default-address-pool); null: Docker's built-in list
    /// (<see cref="Ipam.DefaultPools"/>).
    /// </summary>
    public IReadOnlyList<AddressPool>? DefaultAddressPools { get; init; }

    /// <summary>The default network's --ip-range (dockerd's --fixed-cidr); without <see cref="DefaultSubnet"/> it is the subnet too, as in dockerd.</summary>
    public string? DefaultIpRange { get; init; }

    /// <summary>The default network's MTU (dockerd's --mtu); null: the uplink's.</summary>
    public int? DefaultMtu { get; init; }

    /// <summary>dockerd's --icc: whether containers of the default network may talk to each other.</summary>
    public bool DefaultIcc { get; init; } = true;

    /// <summary>dockerd's --ip: the host address of the default network's published ports that name none; null: every address.</summary>
    public string? DefaultHostBindingIpv4 { get; init; }

    /// <summary>dockerd's --ipv6: the default network is dual stack, as a user network made with --ipv6.</summary>
    public bool DefaultEnableIpv6 { get; init; }

    /// <summary>dockerd's --fixed-cidr-v6: the default network's IPv6 subnet (with <see cref="DefaultEnableIpv6"/>); null: a /64 of the ULA prefix.</summary>
    public string? DefaultSubnet6 { get; init; }

    /// <summary>Where <c>HostPort = 0</c> mappings (<c>-P</c>, <c>-p 80</c>) take their host port from.</summary>
    public (int First, int Last) EphemeralPorts { get; init; } = (32768, 60999);

    /// <summary>
    /// dockerd's --userland-proxy: published ports' host sockets relay what the NAT rules cannot take
    /// (IPv6 to a container without IPv6, ::1); false: they only reserve the port, as dockerd's dummy proxy.
    /// </summary>
    public bool UserlandProxy { get; init; } = true;
}

public sealed record NetworkCreateOptions
{
    public required string Name { get; init; }
    /// <summary>a.b.c.d/n; null: chosen from the default pools.</summary>
    public string? Subnet { get; init; }
    /// <summary>null: the subnet's first host address.</summary>
    public string? Gateway { get; init; }
    /// <summary>No masquerade, no default route, nothing forwarded in or out of the bridge.</summary>
    public bool Internal { get; init; }
    /// <summary>null: the MTU of the host's default-route link (1500 if there is none).</summary>
    public int? Mtu { get; init; }
    /// <summary>User labels, kept as given (Docker's --label).</summary>
    public IReadOnlyDictionary<string, string>? Labels { get; init; }
    /// <summary>The driver options as given (Docker's -o), kept to be shown back.</summary>
    public IReadOnlyDictionary<string, string>? DriverOptions { get; init; }
    /// <summary>Docker's --attachable, kept to be shown back (every Berth network takes standalone containers).</summary>
    public bool Attachable { get; init; }
    /// <summary>IPAM.Options as given (Docker's --ipam-opt), kept to be shown back (null and {} differ); the allocation reads none of them.</summary>
    public IReadOnlyDictionary<string, string>? IpamOptions { get; init; }
    /// <summary>Docker's --ipv6: a dual-stack network.</summary>
    public bool EnableIpv6 { get; init; }
    /// <summary>The IPv6 subnet (an IPv6 --subnet); null with <see cref="EnableIpv6"/>: a /64 of the daemon's ULA prefix.</summary>
    public string? Subnet6 { get; init; }
    /// <summary>The IPv6 gateway; null: the subnet's first host address (::1).</summary>
    public string? Gateway6 { get; init; }
    /// <summary>--ip-range: containers get addresses from this part of the IPv4 subnet only; null: the whole subnet.</summary>
    public string? IpRange { get; init; }
    /// <summary>--aux-address name=ip: addresses of the IPv4 subnet that are never handed out.</summary>
    public IReadOnlyDictionary<string, string>? AuxAddresses { get; init; }
    /// <summary>The same for the IPv6 subnet (a dual-stack network given its IPv6 subnet).</summary>
    public string? IpRange6 { get; init; }
    public IReadOnlyDictionary<string, string>? AuxAddresses6 { get; init; }
    /// <summary>Inter-container communication (com.docker.network.bridge.enable_icc): false isolates the containers from each other, not from the gateway.</summary>
    public bool EnableIcc { get; init; } = true;
    /// <summary>The host address of published ports that name none (com.docker.network.bridge.host_binding_ipv4); null: every address.</summary>
    public string? HostBindingIpv4 { get; init; }
    /// <summary><see cref="NetworkDrivers.Bridge"/>, <see cref="NetworkDrivers.Macvlan"/> or <see cref="NetworkDrivers.Ipvlan"/>.</summary>
    public string Driver { get; init; } = NetworkDrivers.Bridge;
    /// <summary>
    /// macvlan/ipvlan: the host link the containers' links sit on (-o parent). A missing <c>IF.VLAN</c> is
    /// made as an 802.1q sub-interface of IF; null: a dummy link is made and the network is internal.
    /// </summary>
    public string? Parent { get; init; }
    /// <summary>-o macvlan_mode (bridge, private, vepa, passthru; null: bridge) or -o ipvlan_mode (l2, l3, l3s; null: l2).</summary>
    public string? Mode { get; init; }
    /// <summary>-o ipvlan_flag: bridge, private, vepa; null: bridge.</summary>
    public string? IpvlanFlag { get; init; }
}

/// <summary>The network drivers Berth.Network builds, named as dockerd names them.</summary>
public static class NetworkDrivers
{
    public const string Bridge = "bridge", Macvlan = "macvlan", Ipvlan = "ipvlan";
}

/// <summary>One default address pool: <paramref name="Base"/> split into subnets of prefix length <paramref name="Size"/>.</summary>
public sealed record AddressPool(Ipv4Subnet Base, int Size)
{
    public override string ToString() => $"base={Base},size={Size}";
}

public sealed record NetworkInfo(string Id, string Name, string Bridge, Ipv4Subnet Subnet, IPAddress Gateway, bool Internal, int Mtu, DateTimeOffset Created)
{
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> DriverOptions { get; init; } = new Dictionary<string, string>();
    /// <summary>The subnet was given at create (--subnet), not chosen from the default pools.</summary>
    public bool ConfiguredSubnet { get; init; }
    public bool Attachable { get; init; }
    /// <summary>IPAM.Options as the create gave them; null when it gave none.</summary>
    public IReadOnlyDictionary<string, string>? IpamOptions { get; init; }
    /// <summary>The IPv6 side of a dual-stack network; null: IPv4 only.</summary>
    public Ipv6Subnet? Subnet6 { get; init; }
    public IPAddress? Gateway6 { get; init; }
    /// <summary>The IPv6 subnet was given at create, not taken from the ULA prefix.</summary>
    public bool ConfiguredSubnet6 { get; init; }
    public bool EnableIpv6 => Subnet6 is not null;
    /// <summary>--ip-range: where dynamic addresses come from; null: the whole subnet.</summary>
    public Ipv4Subnet? IpRange { get; init; }
    /// <summary>--aux-address: name → address, never handed out.</summary>
    public IReadOnlyDictionary<string, string> AuxAddresses { get; init; } = new Dictionary<string, string>();
    /// <summary>The IPv6 subnet's --ip-range and --aux-address.</summary>
    public Ipv6Subnet? IpRange6 { get; init; }
    public IReadOnlyDictionary<string, string> AuxAddresses6 { get; init; } = new Dictionary<string, string>();
    public bool EnableIcc { get; init; } = true;
    /// <summary>Published ports that name no host address are bound to this one; null: every address.</summary>
    public IPAddress? HostBindingIpv4 { get; init; }
    /// <summary>bridge, macvlan or ipvlan (<see cref="NetworkDrivers"/>); only a bridge network has a <see cref="Bridge"/>.</summary>
    public string Driver { get; init; } = NetworkDrivers.Bridge;
    /// <summary>macvlan/ipvlan: the parent link and the mode (macvlan_mode or ipvlan_mode) and ipvlan_flag in force.</summary>
    public string? Parent { get; init; }
    public string? Mode { get; init; }
    public string? IpvlanFlag { get; init; }
    /// <summary>The gateway was given at create (--gateway); the same for the IPv6 gateway.</summary>
    public bool ConfiguredGateway { get; init; }
    public bool ConfiguredGateway6 { get; init; }
}

public sealed record EndpointCreateOptions
{
    /// <summary>The network's id or name.</summary>
    public required string Network { get; init; }
    public required string ContainerId { get; init; }
    /// <summary>The container's network namespace: /proc/PID/ns/net or a bind mount of it.</summary>
    public required string NetnsPath { get; init; }
    public string InterfaceName { get; init; } = "eth0";
    /// <summary>--ip; null: the next free address.</summary>
    public string? Address { get; init; }
    /// <summary>--ip6 on a dual-stack network; null: the next free IPv6 address.</summary>
    public string? Address6 { get; init; }
    /// <summary>--mac-address; null: 02:42 followed by the IPv4 address, as Docker does.</summary>
    public string? MacAddress { get; init; }
    public IReadOnlyList<PortMapping> Ports { get; init; } = [];
    /// <summary>The names peers resolve this endpoint by: container name, hostname, --network-alias.</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];
    public string? Hostname { get; init; }
}

public sealed record EndpointInfo(
    string Id, string NetworkId, string ContainerId, string HostInterface, string Interface,
    IPAddress Address, int PrefixLength, IPAddress? Gateway, string MacAddress,
    IReadOnlyList<PortMapping> Ports, IReadOnlyList<string> Aliases, string? Hostname)
{
    /// <summary>On a dual-stack network: the IPv6 address, its prefix length and the IPv6 gateway (null on an internal network).</summary>
    public IPAddress? Address6 { get; init; }
    public int PrefixLength6 { get; init; }
    public IPAddress? Gateway6 { get; init; }
    /// <summary>Ports without a host IP listen on the host's IPv6 wildcard (::) too, as dockerd lists them.</summary>
    public bool PortsOnIpv6Any { get; init; }
}

/// <summary>
/// What <see cref="NetworkController.Reconcile"/> removed; <paramref name="UnboundPorts"/>: published ports of
/// live endpoints whose host socket could not be bound again (another program took the port meanwhile).
/// </summary>
public sealed record ReconcileReport(int StaleEndpoints, int StaleLinks, int ReleasedAddresses, int RecreatedBridges, IReadOnlyList<string> UnboundPorts);
