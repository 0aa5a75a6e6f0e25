using System.Buffers.Binary;
using System.Net;
using Berth.Network.Interop;
using Microsoft.Win32.SafeHandles;

namespace Berth.Network.Netlink;

/// <summary>A link as rtnetlink reports it.</summary>
public sealed record LinkInfo(int Index, string Name, string? Kind, int Mtu, int MasterIndex, bool Up);

/// <summary>An IPv4 route (any table) as rtnetlink reports it.</summary>
public sealed record RouteInfo(Ipv4Subnet Destination, IPAddress? Gateway, int OutputIndex, int Table);

/// <summary>An IPv6 route (any table) as rtnetlink reports it.</summary>
public sealed record Route6Info(Ipv6Subnet Destination, IPAddress? Gateway, int OutputIndex, int Table);

/// <summary>
/// An rtnetlink (NETLINK_ROUTE) socket and the link, address and route operations Berth needs.
///
/// A netlink socket stays bound to the network namespace it was created in, whatever thread
/// later uses it. So to act inside a container's namespace we create the socket there once
/// (<see cref="OpenIn"/>: a short-lived dedicated thread does setns, socket, and exits) and
/// then use it from any thread; no managed thread of the pool ever changes namespace.
/// Requests are serialised by a lock; every request asks for an ACK, and an NLMSG_ERROR
/// becomes a <see cref="NetlinkException"/> naming the operation and the errno.
/// </summary>
public sealed class NetlinkSocket : IDisposable
{
    private readonly SafeFileHandle _fd;
    private readonly Lock _lock = new();
    private readonly byte[] _receive = new byte[64 * 1024];
    private uint _sequence;

    private NetlinkSocket(SafeFileHandle fd) => _fd = fd;

    /// <summary>A socket in the calling thread's network namespace.</summary>
    public static NetlinkSocket Open() => new(Libc.NetlinkSocket("in the current network namespace"));

    /// <summary>
    /// A socket in the network namespace at <paramref name="netnsPath"/> (<c>/proc/PID/ns/net</c> or a
    /// bind-mounted namespace such as <c>/run/netns/NAME</c>); null means the current namespace.
    /// </summary>
    public static NetlinkSocket OpenIn(string? netnsPath) =>
        netnsPath is null ? Open() : Netns.RunIn(netnsPath, "open netlink socket", () => new NetlinkSocket(Libc.NetlinkSocket($"in {netnsPath}")));

    public void Dispose() => _fd.Dispose();

    // ---- links ----

    /// <summary>Creates a bridge, up, with the given MTU (0: kernel default).</summary>
    public void CreateBridge(string name, int mtu)
    {
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_CREATE | Rt.NLM_F_EXCL | Rt.NLM_F_ACK)
            .IfInfo(flags: Rt.IFF_UP, change: Rt.IFF_UP)
            .Attr(Rt.IFLA_IFNAME, name);
        if (mtu > 0) m.Attr(Rt.IFLA_MTU, (uint)mtu);
        var info = m.Begin(Rt.IFLA_LINKINFO);
        m.Attr(Rt.IFLA_INFO_KIND, "bridge");
        m.End(info);
        Request(m, $"RTM_NEWLINK create bridge {name}");
    }

    /// <summary>
    /// Creates a veth pair in one request: <paramref name="hostName"/> here (attached to
    /// <paramref name="masterIndex"/> when not 0, up) and <paramref name="peerName"/> created directly
    /// inside the namespace <paramref name="peerNetns"/> (when not null, saving a separate move), down,
    /// with <paramref name="peerMac"/> when given. Both ends get <paramref name="mtu"/> when not 0.
    /// </summary>
    public void CreateVethPair(string hostName, string peerName, int mtu = 0, int masterIndex = 0,
        SafeFileHandle? peerNetns = null, ReadOnlySpan<byte> peerMac = default)
    {
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_CREATE | Rt.NLM_F_EXCL | Rt.NLM_F_ACK)
            .IfInfo(flags: Rt.IFF_UP, change: Rt.IFF_UP)
            .Attr(Rt.IFLA_IFNAME, hostName);
        if (mtu > 0) m.Attr(Rt.IFLA_MTU, (uint)mtu);
        if (masterIndex > 0) m.Attr(Rt.IFLA_MASTER, (uint)masterIndex);
        var info = m.Begin(Rt.IFLA_LINKINFO);
        m.Attr(Rt.IFLA_INFO_KIND, "veth");
        var data = m.Begin(Rt.IFLA_INFO_DATA);
        var peer = m.Begin(Rt.VETH_INFO_PEER);
        // Not IFF_UP here: the kernel configures the peer before linking the two halves, and opening
        // a half-made veth fails with ENOTCONN. The peer is brought up by its namespace's socket.
        m.IfInfo().Attr(Rt.IFLA_IFNAME, peerName);
        if (mtu > 0) m.Attr(Rt.IFLA_MTU, (uint)mtu);
        if (!peerMac.IsEmpty) m.Attr(Rt.IFLA_ADDRESS, peerMac);
        if (peerNetns is not null) m.Attr(Rt.IFLA_NET_NS_FD, (uint)peerNetns.DangerousGetHandle());
        m.End(peer);
        m.End(data);
        m.End(info);
        var addRef = false;
        peerNetns?.DangerousAddRef(ref addRef);
        try { Request(m, $"RTM_NEWLINK create veth {hostName} (peer {peerName})"); }
        finally { if (addRef) peerNetns!.DangerousRelease(); }
    }

    /// <summary>
    /// Creates a macvlan link on <paramref name="parentIndex"/> (a link of this socket's namespace) in one
    /// request, directly inside <paramref name="netns"/> when given (the kernel looks the parent up in the
    /// requester's namespace, so the name may be eth0 there), down, with <paramref name="mac"/> when given.
    /// <paramref name="mode"/> is MACVLAN_MODE_*: 1 private, 2 vepa, 4 bridge, 8 passthru.
    /// </summary>
    public void CreateMacvlan(string name, int parentIndex, uint mode, SafeFileHandle? netns = null, ReadOnlySpan<byte> mac = default)
    {
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_CREATE | Rt.NLM_F_EXCL | Rt.NLM_F_ACK)
            .IfInfo()
            .Attr(Rt.IFLA_IFNAME, name)
            .Attr(Rt.IFLA_LINK, (uint)parentIndex);
        if (!mac.IsEmpty) m.Attr(Rt.IFLA_ADDRESS, mac);
        if (netns is not null) m.Attr(Rt.IFLA_NET_NS_FD, (uint)netns.DangerousGetHandle());
        var info = m.Begin(Rt.IFLA_LINKINFO);
        m.Attr(Rt.IFLA_INFO_KIND, "macvlan");
        var data = m.Begin(Rt.IFLA_INFO_DATA);
        m.Attr(Rt.IFLA_MACVLAN_MODE, mode);
        m.End(data);
        m.End(info);
        RequestWithNetns(m, netns, $"RTM_NEWLINK create macvlan {name} on link {parentIndex}");
    }

    /// <summary>
    /// Creates an ipvlan link on <paramref name="parentIndex"/>, directly inside <paramref name="netns"/> when
    /// given, down. <paramref name="mode"/>: 0 l2, 1 l3, 2 l3s; <paramref name="flags"/>: 0 bridge, 1 private, 2 vepa.
    /// An ipvlan link has its parent's MAC address.
    /// </summary>
    public void CreateIpvlan(string name, int parentIndex, ushort mode, ushort flags, SafeFileHandle? netns = null)
    {
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_CREATE | Rt.NLM_F_EXCL | Rt.NLM_F_ACK)
            .IfInfo()
            .Attr(Rt.IFLA_IFNAME, name)
            .Attr(Rt.IFLA_LINK, (uint)parentIndex);
        if (netns is not null) m.Attr(Rt.IFLA_NET_NS_FD, (uint)netns.DangerousGetHandle());
        var info = m.Begin(Rt.IFLA_LINKINFO);
        m.Attr(Rt.IFLA_INFO_KIND, "ipvlan");
        var data = m.Begin(Rt.IFLA_INFO_DATA);
        Span<byte> u16 = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(u16, mode);
        m.Attr(Rt.IFLA_IPVLAN_MODE, u16);
        BinaryPrimitives.WriteUInt16LittleEndian(u16, flags);
        m.Attr(Rt.IFLA_IPVLAN_FLAGS, u16);
        m.End(data);
        m.End(info);
        RequestWithNetns(m, netns, $"RTM_NEWLINK create ipvlan {name} on link {parentIndex}");
    }

    /// <summary>Creates an 802.1q sub-interface <paramref name="name"/> of <paramref name="parentIndex"/> with VLAN id <paramref name="vlanId"/>, up.</summary>
    public void CreateVlan(string name, int parentIndex, ushort vlanId)
    {
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_CREATE | Rt.NLM_F_EXCL | Rt.NLM_F_ACK)
            .IfInfo(flags: Rt.IFF_UP, change: Rt.IFF_UP)
            .Attr(Rt.IFLA_IFNAME, name)
            .Attr(Rt.IFLA_LINK, (uint)parentIndex);
        var info = m.Begin(Rt.IFLA_LINKINFO);
        m.Attr(Rt.IFLA_INFO_KIND, "vlan");
        var data = m.Begin(Rt.IFLA_INFO_DATA);
        Span<byte> id = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(id, vlanId);
        m.Attr(Rt.IFLA_VLAN_ID, id);
        m.End(data);
        m.End(info);
        Request(m, $"RTM_NEWLINK create vlan {name} (id {vlanId}) on link {parentIndex}");
    }

    /// <summary>Creates a dummy link, up.</summary>
    public void CreateDummy(string name)
    {
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_CREATE | Rt.NLM_F_EXCL | Rt.NLM_F_ACK)
            .IfInfo(flags: Rt.IFF_UP, change: Rt.IFF_UP)
            .Attr(Rt.IFLA_IFNAME, name);
        var info = m.Begin(Rt.IFLA_LINKINFO);
        m.Attr(Rt.IFLA_INFO_KIND, "dummy");
        m.End(info);
        Request(m, $"RTM_NEWLINK create dummy {name}");
    }

    private void RequestWithNetns(NetlinkMessageBuilder m, SafeFileHandle? netns, string operation)
    {
        var addRef = false;
        netns?.DangerousAddRef(ref addRef);
        try { Request(m, operation); }
        finally { if (addRef) netns!.DangerousRelease(); }
    }

    /// <summary>Moves a link into the network namespace open at <paramref name="netns"/>.</summary>
    public void MoveToNetns(int index, SafeFileHandle netns, string? newName = null)
    {
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_ACK).IfInfo(index: index)
            .Attr(Rt.IFLA_NET_NS_FD, (uint)netns.DangerousGetHandle());
        if (newName is not null) m.Attr(Rt.IFLA_IFNAME, newName);
        var addRef = false;
        netns.DangerousAddRef(ref addRef);
        try { Request(m, $"RTM_NEWLINK move link {index} to netns"); }
        finally { if (addRef) netns.DangerousRelease(); }
    }

    /// <summary>Sets a link up or down.</summary>
    public void SetUp(int index, bool up = true) =>
        Request(new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_ACK).IfInfo(index: index, flags: up ? Rt.IFF_UP : 0, change: Rt.IFF_UP),
            $"RTM_NEWLINK set link {index} {(up ? "up" : "down")}");

    /// <summary>
    /// Brings the namespace's loopback up if it is down (a new namespace's is). Until then the kernel
    /// does not count 127.x addresses as local: a socket bound to one is left without a source address
    /// of its own and sends from 127.0.0.1.
    /// </summary>
    public void SetLoopbackUp()
    {
        if (GetLink("lo") is { Up: false } lo) SetUp(lo.Index);
    }

    public void SetMtu(int index, int mtu) =>
        Request(new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_ACK).IfInfo(index: index).Attr(Rt.IFLA_MTU, (uint)mtu),
            $"RTM_NEWLINK set link {index} mtu {mtu}");

    public void SetMaster(int index, int masterIndex) =>
        Request(new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_ACK).IfInfo(index: index).Attr(Rt.IFLA_MASTER, (uint)masterIndex),
            $"RTM_NEWLINK set link {index} master {masterIndex}");

    /// <summary>
    /// Turns a bridge port's hairpin mode on: frames may leave by the port they came in. Needed when
    /// br_netfilter is active (bridge-nf-call-iptables=1, as on this machine): a container's packet to
    /// its own published port is then DNAT'd inside the bridge and must go back out of its own port.
    /// </summary>
    public void SetHairpin(string portName, bool on = true) => SetBridgePortFlag(portName, Rt.IFLA_BRPORT_MODE, on, "hairpin");

    /// <summary>
    /// Isolates a bridge port (IFLA_BRPORT_ISOLATED, Linux 4.18): the bridge forwards nothing between two
    /// isolated ports, while each still reaches the bridge itself (the gateway, hence routing, NAT and
    /// published ports) and non-isolated ports. Every container port of a network with inter-container
    /// communication off is isolated: dockerd's --icc=false (an iptables DROP between two ports of docker0,
    /// which sees bridged traffic only with br_netfilter) without rules nor br_netfilter.
    /// </summary>
    public void SetIsolated(string portName, bool on = true) => SetBridgePortFlag(portName, Rt.IFLA_BRPORT_ISOLATED, on, "isolated");

    /// <summary>One u8 attribute of a bridge port (IFLA_INFO_SLAVE_DATA of the port's link).</summary>
    private void SetBridgePortFlag(string portName, ushort attribute, bool on, string what)
    {
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWLINK, Rt.NLM_F_ACK).IfInfo().Attr(Rt.IFLA_IFNAME, portName);
        var info = m.Begin(Rt.IFLA_LINKINFO);
        m.Attr(Rt.IFLA_INFO_SLAVE_KIND, "bridge");
        var data = m.Begin(Rt.IFLA_INFO_SLAVE_DATA);
        m.Attr(attribute, [on ? (byte)1 : (byte)0]);
        m.End(data);
        m.End(info);
        Request(m, $"RTM_NEWLINK set {portName} {what} {(on ? "on" : "off")}");
    }

    /// <summary>Deletes a link by name (a veth takes its peer with it). Returns false if there was no such link.</summary>
    public bool DeleteLink(string name)
    {
        try
        {
            Request(new NetlinkMessageBuilder(Rt.RTM_DELLINK, Rt.NLM_F_ACK).IfInfo().Attr(Rt.IFLA_IFNAME, name), $"RTM_DELLINK {name}");
            return true;
        }
        catch (NetlinkException e) when (e.Errno is Libc.ENODEV or Libc.ENOENT)
        {
            return false;
        }
    }

    /// <summary>The link named <paramref name="name"/>, or null.</summary>
    public LinkInfo? GetLink(string name)
    {
        try
        {
            LinkInfo? found = null;
            Dump(new NetlinkMessageBuilder(Rt.RTM_GETLINK, Rt.NLM_F_ACK).IfInfo().Attr(Rt.IFLA_IFNAME, name),
                $"RTM_GETLINK {name}", (type, payload) => found ??= ParseLink(type, payload));
            return found;
        }
        catch (NetlinkException e) when (e.Errno is Libc.ENODEV or Libc.ENOENT)
        {
            return null;
        }
    }

    public int GetIndex(string name) =>
        GetLink(name)?.Index ?? throw new NetworkException(NetworkErrorKind.NotFound, $"link {name} not found");

    public IReadOnlyList<LinkInfo> ListLinks()
    {
        var links = new List<LinkInfo>();
        Dump(new NetlinkMessageBuilder(Rt.RTM_GETLINK, Rt.NLM_F_DUMP).IfInfo(), "RTM_GETLINK dump",
            (type, payload) => { if (ParseLink(type, payload) is { } l) links.Add(l); });
        return links;
    }

    // ---- addresses and routes ----

    /// <summary>Adds an IPv4 address with its prefix (and the broadcast address) to a link.</summary>
    public void AddAddress(int index, IPAddress address, int prefixLength)
    {
        var bytes = address.GetAddressBytes();
        var broadcast = Ipv4Subnet.ToBytes(new Ipv4Subnet(address, prefixLength).Broadcast);
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWADDR, Rt.NLM_F_CREATE | Rt.NLM_F_EXCL | Rt.NLM_F_ACK)
            .IfAddr((byte)prefixLength, index).Attr(Rt.IFA_LOCAL, bytes).Attr(Rt.IFA_ADDRESS, bytes);
        if (prefixLength < 31) m.Attr(Rt.IFA_BROADCAST, broadcast);
        Request(m, $"RTM_NEWADDR {address}/{prefixLength} on link {index}");
    }

    /// <summary>
    /// Adds an IPv6 address with its prefix to a link, with IFA_F_NODAD as libnetwork does: without
    /// it the address stays "tentative" for Duplicate Address Detection (a second or more, and until
    /// the link has a carrier, which an empty bridge has not) and can neither be a packet's source nor
    /// answer neighbour solicitations. The addresses come from IPAM, which never hands one out twice.
    /// The link must have IPv6 enabled (net.ipv6.conf.IF.disable_ipv6=0), or the kernel says EACCES.
    /// </summary>
    public void AddAddress6(int index, IPAddress address, int prefixLength)
    {
        var bytes = address.GetAddressBytes();
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWADDR, Rt.NLM_F_CREATE | Rt.NLM_F_EXCL | Rt.NLM_F_ACK)
            .IfAddr((byte)prefixLength, index, Rt.AF_INET6, (byte)Rt.IFA_F_NODAD)
            .Attr(Rt.IFA_ADDRESS, bytes).Attr(Rt.IFA_FLAGS, Rt.IFA_F_NODAD);
        Request(m, $"RTM_NEWADDR {address}/{prefixLength} on link {index}");
    }

    /// <summary>Adds an IPv6 route to <paramref name="destination"/> (::/0: the default route) via a gateway on a link.</summary>
    public void AddRoute6(Ipv6Subnet destination, IPAddress? gateway, int outputIndex)
    {
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWROUTE, Rt.NLM_F_CREATE | Rt.NLM_F_EXCL | Rt.NLM_F_ACK)
            .RtMsg((byte)destination.PrefixLength, family: Rt.AF_INET6);
        if (destination.PrefixLength > 0) m.Attr(Rt.RTA_DST, Ipv6Subnet.ToAddress(destination.Network).GetAddressBytes());
        if (gateway is not null) m.Attr(Rt.RTA_GATEWAY, gateway.GetAddressBytes());
        if (outputIndex > 0) m.Attr(Rt.RTA_OIF, (uint)outputIndex);
        Request(m, $"RTM_NEWROUTE {destination} via {gateway?.ToString() ?? "-"} dev {outputIndex}");
    }

    /// <summary>Every IPv6 route of every table (main, local, policy tables).</summary>
    public IReadOnlyList<Route6Info> ListRoutes6()
    {
        var routes = new List<Route6Info>();
        Dump(new NetlinkMessageBuilder(Rt.RTM_GETROUTE, Rt.NLM_F_DUMP).RtMsg(0, table: 0, protocol: 0, family: Rt.AF_INET6), "RTM_GETROUTE dump (IPv6)",
            (type, payload) =>
            {
                if (type != Rt.RTM_NEWROUTE || payload.Length < Rt.RtMsgSize || payload[0] != Rt.AF_INET6) return;
                int dstLength = payload[1], table = payload[4], oif = 0;
                UInt128 dst = 0;
                IPAddress? gateway = null;
                var attrs = new AttributeReader(payload[Rt.RtMsgSize..]);
                while (attrs.Next(out var t, out var v))
                {
                    if (t == Rt.RTA_DST && v.Length == 16) dst = BinaryPrimitives.ReadUInt128BigEndian(v);
                    else if (t == Rt.RTA_GATEWAY && v.Length == 16) gateway = new IPAddress(v);
                    else if (t == Rt.RTA_OIF && v.Length == 4) oif = BinaryPrimitives.ReadInt32LittleEndian(v);
                    else if (t == Rt.RTA_TABLE && v.Length == 4) table = BinaryPrimitives.ReadInt32LittleEndian(v);
                }
                routes.Add(new Route6Info(new Ipv6Subnet(dst, dstLength), gateway, oif, table));
            });
        return routes;
    }

    /// <summary>Adds a route to <paramref name="destination"/> (0.0.0.0/0: the default route) via a gateway and/or a link.</summary>
    public void AddRoute(Ipv4Subnet destination, IPAddress? gateway, int outputIndex)
    {
        var m = new NetlinkMessageBuilder(Rt.RTM_NEWROUTE, Rt.NLM_F_CREATE | Rt.NLM_F_EXCL | Rt.NLM_F_ACK)
            .RtMsg((byte)destination.PrefixLength, scope: gateway is null ? (byte)253 : Rt.RT_SCOPE_UNIVERSE);
        if (destination.PrefixLength > 0) m.Attr(Rt.RTA_DST, Ipv4Subnet.ToBytes(destination.Network));
        if (gateway is not null) m.Attr(Rt.RTA_GATEWAY, gateway.GetAddressBytes());
        if (outputIndex > 0) m.Attr(Rt.RTA_OIF, (uint)outputIndex);
        Request(m, $"RTM_NEWROUTE {destination} via {gateway?.ToString() ?? "-"} dev {outputIndex}");
    }

    /// <summary>Every IPv4 route of every table (main, local, policy tables).</summary>
    public IReadOnlyList<RouteInfo> ListRoutes()
    {
        var routes = new List<RouteInfo>();
        Dump(new NetlinkMessageBuilder(Rt.RTM_GETROUTE, Rt.NLM_F_DUMP).RtMsg(0, table: 0, protocol: 0), "RTM_GETROUTE dump",
            (type, payload) =>
            {
                if (type != Rt.RTM_NEWROUTE || payload.Length < Rt.RtMsgSize || payload[0] != Rt.AF_INET) return;
                int dstLength = payload[1], table = payload[4], oif = 0;
                uint dst = 0;
                IPAddress? gateway = null;
                var attrs = new AttributeReader(payload[Rt.RtMsgSize..]);
                while (attrs.Next(out var t, out var v))
                {
                    if (t == Rt.RTA_DST && v.Length == 4) dst = BinaryPrimitives.ReadUInt32BigEndian(v);
                    else if (t == Rt.RTA_GATEWAY && v.Length == 4) gateway = new IPAddress(v);
                    else if (t == Rt.RTA_OIF && v.Length == 4) oif = BinaryPrimitives.ReadInt32LittleEndian(v);
                    else if (t == Rt.RTA_TABLE && v.Length == 4) table = BinaryPrimitives.ReadInt32LittleEndian(v);
                }
                routes.Add(new RouteInfo(new Ipv4Subnet(dst, dstLength), gateway, oif, table));
            });
        return routes;
    }

    // ---- the protocol ----

    private static LinkInfo? ParseLink(ushort type, ReadOnlySpan<byte> payload)
    {
        if (type != Rt.RTM_NEWLINK || payload.Length < Rt.IfInfoMsgSize) return null;
        var index = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]);
        string name = "";
        string? kind = null;
        int mtu = 0, master = 0;
        var attrs = new AttributeReader(payload[Rt.IfInfoMsgSize..]);
        while (attrs.Next(out var t, out var v))
        {
            switch (t)
            {
                case Rt.IFLA_IFNAME: name = AttributeReader.ReadString(v); break;
                case Rt.IFLA_MTU when v.Length == 4: mtu = BinaryPrimitives.ReadInt32LittleEndian(v); break;
                case Rt.IFLA_MASTER when v.Length == 4: master = BinaryPrimitives.ReadInt32LittleEndian(v); break;
                case Rt.IFLA_LINKINFO:
                    var info = new AttributeReader(v);
                    while (info.Next(out var it, out var iv))
                    {
                        if (it == Rt.IFLA_INFO_KIND) kind = AttributeReader.ReadString(iv);
                    }
                    break;
            }
        }
        return new LinkInfo(index, name, kind, mtu, master, (flags & Rt.IFF_UP) != 0);
    }

    private delegate void MessageHandler(ushort type, ReadOnlySpan<byte> payload);

    private void Request(NetlinkMessageBuilder message, string operation) => Exchange(message, operation, null, dump: false);

    private void Dump(NetlinkMessageBuilder message, string operation, MessageHandler handler) => Exchange(message, operation, handler, dump: true);

    /// <summary>
    /// Sends one request and reads until its end: the ACK (an NLMSG_ERROR with error 0) for a plain
    /// request, NLMSG_DONE for a dump (or a single answer followed by its ACK for a GET of one object).
    /// </summary>
    private void Exchange(NetlinkMessageBuilder message, string operation, MessageHandler? handler, bool dump)
    {
        lock (_lock)
        {
            var sequence = ++_sequence;
            Libc.Send(_fd, message.Finish(sequence), operation);
            while (true)
            {
                var n = Libc.Receive(_fd, _receive, operation);
                var rest = _receive.AsSpan(0, n);
                while (rest.Length >= Rt.NlMsgHeaderSize)
                {
                    var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(rest);
                    if (length < Rt.NlMsgHeaderSize || length > rest.Length) break;
                    var type = BinaryPrimitives.ReadUInt16LittleEndian(rest[4..]);
                    var flags = BinaryPrimitives.ReadUInt16LittleEndian(rest[6..]);
                    var seq = BinaryPrimitives.ReadUInt32LittleEndian(rest[8..]);
                    var payload = rest[Rt.NlMsgHeaderSize..length];
                    rest = rest[Math.Min(Rt.Align(length), rest.Length)..];
                    if (seq != sequence) continue; // a late answer to an earlier, abandoned request
                    if (type == Rt.NLMSG_DONE) return;
                    if (type == Rt.NLMSG_ERROR)
                    {
                        var error = payload.Length >= 4 ? -BinaryPrimitives.ReadInt32LittleEndian(payload) : Libc.EINVAL;
                        if (error == 0)
                        {
                            if (!dump || (flags & Rt.NLM_F_MULTI) == 0) return;
                            continue;
                        }
                        throw new NetlinkException(operation, error, ExtendedAckMessage(payload, flags));
                    }
                    handler?.Invoke(type, payload);
                }
            }
        }
    }

    private static string? ExtendedAckMessage(ReadOnlySpan<byte> payload, ushort flags)
    {
        // With NETLINK_CAP_ACK the error is followed by the request's header only, then the TLVs.
        if ((flags & Rt.NLM_F_ACK_TLVS) == 0 || payload.Length < 4 + Rt.NlMsgHeaderSize) return null;
        var attrs = new AttributeReader(payload[(4 + Rt.NlMsgHeaderSize)..]);
        while (attrs.Next(out var t, out var v))
        {
            if (t == Rt.NLMSGERR_ATTR_MSG) return AttributeReader.ReadString(v);
        }
        return null;
    }
}
