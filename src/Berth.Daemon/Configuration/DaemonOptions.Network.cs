using Berth.Network;

namespace Berth.Daemon.Configuration;

// dockerd's options of the bridge networks (the default bridge and the pools of user networks),
// apart from the rest of DaemonOptions: parsed and checked in DaemonArgs.Network.cs.
public sealed partial record DaemonOptions
{
    /// <summary>
    /// --default-address-pool / daemon.json "default-address-pools": where networks without a subnet,
    /// and the default bridge without --bip, take their subnets; null: Docker's built-in pools.
    /// </summary>
    public IReadOnlyList<AddressPool>? DefaultAddressPools { get; init; }

    /// <summary>--fixed-cidr: the default bridge hands out addresses from this range of its subnet only (its subnet too without --bip).</summary>
    public string? FixedCidr { get; init; }

    /// <summary>--mtu: the default bridge's MTU, and its containers' eth0; null: the uplink's.</summary>
    public int? Mtu { get; init; }

    /// <summary>--icc: whether containers on the default bridge may talk to each other.</summary>
    public bool InterContainerCommunication { get; init; } = true;

    /// <summary>--ip: the host address of the default bridge's published ports that name none; null: every address.</summary>
    public string? DefaultBindIp { get; init; }

    /// <summary>--ipv6: the default bridge is dual stack (its IPv6 subnet: <see cref="FixedCidrV6"/>, or a /64 of the daemon's ULA prefix).</summary>
    public bool Ipv6 { get; init; }

    /// <summary>--fixed-cidr-v6: the default bridge's IPv6 subnet, with --ipv6 (without it, accepted and unused, as dockerd does).</summary>
    public string? FixedCidrV6 { get; init; }

    /// <summary>
    /// --userland-proxy: published ports' host sockets relay what the NAT rules do not take (IPv6 to a
    /// container without IPv6, ::1); false: they only keep the port reserved, as dockerd's dummy proxy.
    /// </summary>
    public bool UserlandProxy { get; init; } = true;
}
