using System.Globalization;
using System.Net;
using System.Text.Json;
using Berth.Network.Interop;
using Berth.Network.Netlink;
using Berth.Network.State;

namespace Berth.Network;

/// <summary>
/// dockerd's macvlan and ipvlan drivers: a network is a parent link of the host (given, an 802.1q
/// sub-interface made for it, or a dummy link when none is given), and each endpoint one macvlan or
/// ipvlan link on that parent, created directly inside the container's namespace. There is no bridge,
/// no host end, no NAT and no published port: the containers sit on the parent's LAN themselves. The
/// gateway is the LAN's router (an address IPAM keeps out of the pool, not configured on the host).
/// </summary>
public sealed partial class NetworkController
{
    /// <summary>How a network gets its parent link.</summary>
    private enum ParentKind
    {
        /// <summary>A link of the host, used as it is.</summary>
        Existing,
        /// <summary><c>IF.VLAN</c> missing: an 802.1q sub-interface of IF, made with the network and deleted with it.</summary>
        Vlan,
        /// <summary>No parent given: a dummy link <c>dm-&lt;id12&gt;</c> (macvlan) or <c>di-&lt;id12&gt;</c> (ipvlan), as dockerd names it.</summary>
        Dummy,
    }

    private sealed record ParentPlan(ParentKind Kind, string? Name, string? VlanBase, ushort VlanId, string Mode, string? IpvlanFlag);

    private static readonly string[] MacvlanModes = ["bridge", "private", "vepa", "passthru"];
    private static readonly string[] IpvlanModes = ["l2", "l3", "l3s"];
    private static readonly string[] IpvlanFlags = ["bridge", "private", "vepa"];

    /// <summary>Validates a macvlan/ipvlan network's driver options and parent (in dockerd's words) before anything is made.</summary>
    private ParentPlan PlanParent(NetworkCreateOptions o)
    {
        var macvlan = o.Driver == NetworkDrivers.Macvlan;
        if (!macvlan && o.Driver != NetworkDrivers.Ipvlan)
            throw new NetworkException(NetworkErrorKind.NotFound, $"plugin \"{o.Driver}\" not found");
        string mode;
        string? flag = null;
        if (macvlan)
        {
            mode = string.IsNullOrEmpty(o.Mode) ? "bridge" : o.Mode;
            if (!MacvlanModes.Contains(mode))
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"requested macvlan mode '{o.Mode}' is not valid, 'bridge' mode is the macvlan driver default");
        }
        else
        {
            mode = string.IsNullOrEmpty(o.Mode) ? "l2" : o.Mode;
            if (!IpvlanModes.Contains(mode))
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"requested ipvlan mode '{o.Mode}' is not valid, 'l2' mode is the ipvlan driver default");
            flag = string.IsNullOrEmpty(o.IpvlanFlag) ? "bridge" : o.IpvlanFlag;
            if (!IpvlanFlags.Contains(flag))
                throw new NetworkException(NetworkErrorKind.InvalidArgument, $"requested ipvlan flag '{o.IpvlanFlag}' is not valid, 'bridge' is the ipvlan driver default");
        }
        if (string.IsNullOrEmpty(o.Parent)) return new ParentPlan(ParentKind.Dummy, null, null, 0, mode, flag);
        var parent = o.Parent;
        if (parent == "lo") throw new NetworkException(NetworkErrorKind.InvalidArgument, $"loopback interface is not a valid {o.Driver} parent link");
        ValidateInterfaceName(parent);
        if (_host.GetLink(parent) is not null) return new ParentPlan(ParentKind.Existing, parent, null, 0, mode, flag);

        // dockerd's createVlanLink/parseVlan: a missing parent must be IF.VLAN with IF present.
        if (!parent.Contains('.'))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid subinterface vlan name {parent}, example formatting is eth0.10");
        var split = parent.Split('.');
        if (split.Length != 2)
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, instead received {parent}");
        if (!int.TryParse(split[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var vlanId))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"unable to parse a valid vlan id from: {split[1]} (ex. eth0.10 for vlan 10)");
        if (_host.GetLink(split[0]) is null)
            throw new NetworkException(NetworkErrorKind.NotFound, $"-o parent interface was not found on the host: {split[0]}");
        if (vlanId is < 1 or > 4094)
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"vlan id must be between 1-4094, received: {vlanId}");
        return new ParentPlan(ParentKind.Vlan, parent, split[0], (ushort)vlanId, mode, flag);
    }

    /// <summary>
    /// The parent link of a new network: refused when another network of the same driver uses it
    /// (dockerd 20.10 allows one per parent, whatever the modes), made when it is a missing
    /// sub-interface or a dummy link (undone by <paramref name="undo"/>). Returns its name.
    /// </summary>
    private string PrepareParent(string driver, string id, ParentPlan plan, Stack<Action> undo)
    {
        var name = plan.Kind == ParentKind.Dummy ? (driver == NetworkDrivers.Macvlan ? "dm-" : "di-") + id[..12] : plan.Name!;
        if (_networks.Values.FirstOrDefault(n => n.Driver == driver && n.Parent == name) is { } user)
            throw new NetworkException(NetworkErrorKind.Conflict, $"network {user.Name} is already using parent interface {name}");
        switch (plan.Kind)
        {
            case ParentKind.Vlan:
                CreateVlanParent(name, plan.VlanBase!, plan.VlanId);
                undo.Push(() => _host.DeleteLink(name));
                break;
            case ParentKind.Dummy:
                CreateDummyParent(name, driver);
                undo.Push(() => _host.DeleteLink(name));
                break;
        }
        return name;
    }

    private void CreateVlanParent(string name, string vlanBase, ushort vlanId)
    {
        try
        {
            _host.CreateVlan(name, _host.GetIndex(vlanBase), vlanId);
        }
        catch (NetlinkException e) when (e.Errno == Libc.EOPNOTSUPP)
        {
            throw new NetworkException(NetworkErrorKind.Unavailable, $"failed to create {name} vlan link: operation not supported (this kernel has no 802.1q VLAN support, CONFIG_VLAN_8021Q)", e);
        }
        catch (NetlinkException e)
        {
            throw new NetworkException(e.Kind, $"failed to create {name} vlan link: {ErrnoText(e.Errno)}", e);
        }
    }

    private void CreateDummyParent(string name, string driver)
    {
        try
        {
            _host.CreateDummy(name);
        }
        catch (NetlinkException e) when (e.Errno == Libc.EOPNOTSUPP)
        {
            throw new NetworkException(NetworkErrorKind.Unavailable,
                $"failed to create the dummy link {name} a {driver} network without -o parent sits on: operation not supported (this kernel has no dummy links, CONFIG_DUMMY): give the network a parent (-o parent=IF)", e);
        }
    }

    /// <summary>ipvlan l3 and l3s route at layer 3: the default route goes through the link itself, with no gateway (as dockerd).</summary>
    private static bool RoutesViaLink(NetworkRecord n) => n.Driver == NetworkDrivers.Ipvlan && n.Mode is "l3" or "l3s";

    /// <summary>
    /// A macvlan or ipvlan endpoint: the address(es) from IPAM, the link created on the parent directly inside
    /// the container's namespace under its final name, then configured there as a veth's inner end is.
    /// A macvlan link's MAC is the given one or 02:42 and the IPv4 address (dockerd's); an ipvlan link has
    /// its parent's. Published ports are not this driver's (dockerd ignores them with a warning): the caller leaves them out.
    /// </summary>
    private EndpointInfo CreateLanEndpointLocked(NetworkRecord network, EndpointCreateOptions o, IPAddress? requested, IPAddress? requested6, byte[]? mac)
    {
        var macvlan = network.Driver == NetworkDrivers.Macvlan;
        if (!macvlan && mac is not null)
            throw new NetworkException(NetworkErrorKind.InvalidArgument, "ipvlan interfaces do not support custom mac address assignment");
        using var netns = OpenNetns(o.NetnsPath);
        var parentIndex = _host.GetLink(network.Parent!)?.Index
            ?? throw new NetworkException(NetworkErrorKind.NotFound, $"-o parent interface was not found on the host: {network.Parent}");
        var id = NewId();
        var undo = new Stack<Action>();
        try
        {
            var address = _ipam.Allocate(network.Id, id, requested);
            undo.Push(() => _ipam.Release(network.Id, address));
            IPAddress? address6 = null;
            if (network.Subnet6 is not null)
            {
                address6 = _ipam.Allocate6(network.Id, id, requested6);
                undo.Push(() => _ipam.Release(network.Id, address6));
            }
            if (macvlan) mac ??= [0x02, 0x42, .. address.GetAddressBytes()];
            try
            {
                if (macvlan) _host.CreateMacvlan(o.InterfaceName, parentIndex, MacvlanModeNumber(network.Mode), netns, mac);
                else _host.CreateIpvlan(o.InterfaceName, parentIndex, IpvlanModeNumber(network.Mode), IpvlanFlagNumber(network.IpvlanFlag), netns);
            }
            catch (NetlinkException e)
            {
                var hint = e.Errno == Libc.EOPNOTSUPP ? $" (this kernel has no {network.Driver} links, CONFIG_{network.Driver!.ToUpperInvariant()})" : "";
                throw new NetworkException(e.Kind, $"failed to create the {network.Driver} port: {ErrnoText(e.Errno)}{hint}", e);
            }
            undo.Push(() => DeleteLinkIn(o.NetnsPath, o.InterfaceName));
            using (var inside = NetlinkSocket.OpenIn(o.NetnsPath))
            {
                ConfigureInside(inside, o.NetnsPath, o.InterfaceName, network, address, address6);
            }
            var record = new EndpointRecord
            {
                Id = id, NetworkId = network.Id, ContainerId = o.ContainerId, HostInterface = "", Interface = o.InterfaceName,
                Address = address.ToString(), Address6 = address6?.ToString(), MacAddress = mac is null ? "" : FormatMac(mac), Hostname = o.Hostname,
                Aliases = [.. o.Aliases], NetnsPath = o.NetnsPath,
            };
            AtomicFile.Write(Path.Combine(_endpointsDir, id + ".json"), JsonSerializer.Serialize(record, StateJson.Default.EndpointRecord), durable: false);
            _endpoints[id] = record;
            return ToInfo(record);
        }
        catch
        {
            Undo(undo);
            throw;
        }
    }

    /// <summary>Deletes a link inside a namespace; nothing when the namespace or the link is gone already.</summary>
    private static void DeleteLinkIn(string netnsPath, string name)
    {
        try
        {
            using var inside = NetlinkSocket.OpenIn(netnsPath);
            inside.DeleteLink(name);
        }
        catch (NetworkException)
        {
            // The namespace went with its last process: its macvlan/ipvlan links went with it.
        }
    }

    /// <summary>Daemon start: the sub-interfaces and dummy links networks made, made again where missing (after a reboot).</summary>
    private void RecreateParents()
    {
        foreach (var n in _networks.Values.Where(n => !IsBridge(n) && n.ParentCreated && n.Parent is not null))
        {
            if (_host.GetLink(n.Parent!) is not null) continue;
            try
            {
                var dot = n.Parent!.IndexOf('.');
                if (n.Parent.StartsWith("dm-", StringComparison.Ordinal) || n.Parent.StartsWith("di-", StringComparison.Ordinal)) CreateDummyParent(n.Parent, n.Driver!);
                else if (dot > 0) CreateVlanParent(n.Parent, n.Parent[..dot], ushort.Parse(n.Parent[(dot + 1)..], CultureInfo.InvariantCulture));
            }
            catch (NetworkException)
            {
                // Its containers' start says what is missing (the parent not found).
            }
        }
    }

    /// <summary>A dummy link named as this driver names them (dm-/di- and 12 hex digits).</summary>
    private static bool IsDummyParentName(LinkInfo link) =>
        link.Kind == "dummy" && link.Name.Length == 15 && (link.Name.StartsWith("dm-", StringComparison.Ordinal) || link.Name.StartsWith("di-", StringComparison.Ordinal))
        && link.Name[3..].All(char.IsAsciiHexDigitLower);

    private static uint MacvlanModeNumber(string? mode) => mode switch
    {
        "private" => 1,
        "vepa" => 2,
        "passthru" => 8,
        _ => 4, // bridge
    };

    private static ushort IpvlanModeNumber(string? mode) => mode switch
    {
        "l3" => 1,
        "l3s" => 2,
        _ => 0, // l2
    };

    private static ushort IpvlanFlagNumber(string? flag) => flag switch
    {
        "private" => 1,
        "vepa" => 2,
        _ => 0, // bridge
    };

    /// <summary>An errno as Go's syscall.Errno prints it (dockerd's messages end with it): "operation not supported".</summary>
    private static string ErrnoText(int errno)
    {
        var text = System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno);
        return text.Length > 0 ? char.ToLowerInvariant(text[0]) + text[1..] : text;
    }
}
