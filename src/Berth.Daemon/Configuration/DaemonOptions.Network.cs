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
}
