using System.Buffers.Binary;
using System.Text;

namespace Berth.Network.Netlink;

/// <summary>rtnetlink numbers (linux/rtnetlink.h, if_link.h, if_addr.h, veth.h).</summary>
internal static class Rt
{
    internal const ushort NLMSG_ERROR = 2, NLMSG_DONE = 3;
    internal const ushort RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18, RTM_NEWADDR = 20, RTM_GETADDR = 22,
        RTM_NEWROUTE = 24, RTM_GETROUTE = 26;
    internal const ushort NLM_F_REQUEST = 0x1, NLM_F_MULTI = 0x2, NLM_F_ACK = 0x4, NLM_F_DUMP = 0x300,
        NLM_F_REPLACE = 0x100, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400, NLM_F_ACK_TLVS = 0x200;
    internal const ushort NLA_F_NESTED = 0x8000;
    internal const ushort IFLA_ADDRESS = 1, IFLA_IFNAME = 3, IFLA_MTU = 4, IFLA_LINK = 5, IFLA_MASTER = 10, IFLA_LINKINFO = 18,
        IFLA_NET_NS_FD = 28;
    // IFLA_INFO_DATA of the macvlan, ipvlan and vlan kinds.
    internal const ushort IFLA_MACVLAN_MODE = 1, IFLA_IPVLAN_MODE = 1, IFLA_IPVLAN_FLAGS = 2, IFLA_VLAN_ID = 1;
    internal const ushort IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2, IFLA_INFO_SLAVE_KIND = 4, IFLA_INFO_SLAVE_DATA = 5, VETH_INFO_PEER = 1, IFLA_BRPORT_MODE = 4, IFLA_BRPORT_ISOLATED = 33;
    internal const ushort IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_BROADCAST = 4, IFA_FLAGS = 8;
    internal const uint IFA_F_NODAD = 0x02;
    internal const ushort RTA_DST = 1, RTA_OIF = 4, RTA_GATEWAY = 5, RTA_TABLE = 15;
    internal const ushort NLMSGERR_ATTR_MSG = 1;
    internal const byte AF_UNSPEC = 0, AF_INET = 2, AF_INET6 = 10;
    internal const byte RT_TABLE_MAIN = 254, RTPROT_BOOT = 3, RTPROT_KERNEL = 2, RT_SCOPE_UNIVERSE = 0, RTN_UNICAST = 1;
    internal const uint IFF_UP = 0x1;
    internal const int NlMsgHeaderSize = 16, IfInfoMsgSize = 16, IfAddrMsgSize = 8, RtMsgSize = 12;

    internal static int Align(int n) => (n + 3) & ~3;
}

/// <summary>
/// Builds one netlink request in a growable buffer: the header, a fixed family header
/// (ifinfomsg / ifaddrmsg / rtmsg) and attributes, nested attributes by Begin/End.
/// </summary>
internal sealed class NetlinkMessageBuilder
{
    private byte[] _buffer = new byte[512];
    private int _length;

    public NetlinkMessageBuilder(ushort type, ushort flags)
    {
        _length = Rt.NlMsgHeaderSize;
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(6), (ushort)(flags | Rt.NLM_F_REQUEST));
    }

    private Span<byte> Grow(int size)
    {
        var aligned = Rt.Align(size);
        if (_length + aligned > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + aligned));
        var span = _buffer.AsSpan(_length, aligned);
        span.Clear();
        _length += aligned;
        return span[..size];
    }

    public NetlinkMessageBuilder IfInfo(byte family = Rt.AF_UNSPEC, int index = 0, uint flags = 0, uint change = 0)
    {
        var s = Grow(Rt.IfInfoMsgSize);
        s[0] = family;
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], change);
        return this;
    }

    public NetlinkMessageBuilder IfAddr(byte prefixLength, int index, byte family = Rt.AF_INET, byte flags = 0)
    {
        var s = Grow(Rt.IfAddrMsgSize);
        s[0] = family;
        s[1] = prefixLength;
        s[2] = flags;
        s[3] = Rt.RT_SCOPE_UNIVERSE;
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], index);
        return this;
    }

    public NetlinkMessageBuilder RtMsg(byte dstLength, byte table = Rt.RT_TABLE_MAIN, byte protocol = Rt.RTPROT_BOOT,
        byte scope = Rt.RT_SCOPE_UNIVERSE, byte type = Rt.RTN_UNICAST, byte family = Rt.AF_INET)
    {
        var s = Grow(Rt.RtMsgSize);
        s[0] = family;
        s[1] = dstLength;
        s[4] = table;
        s[5] = protocol;
        s[6] = scope;
        s[7] = type;
        return this;
    }

    public NetlinkMessageBuilder Attr(ushort type, ReadOnlySpan<byte> value)
    {
        var s = Grow(4 + value.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)(4 + value.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], type);
        value.CopyTo(s[4..]);
        return this;
    }

    public NetlinkMessageBuilder Attr(ushort type, uint value)
    {
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(v, value);
        return Attr(type, v);
    }

    public NetlinkMessageBuilder Attr(ushort type, string value)
    {
        Span<byte> v = stackalloc byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, v);
        return Attr(type, v);
    }

    /// <summary>Opens a nested attribute; returns its offset for <see cref="End"/>.</summary>
    public int Begin(ushort type)
    {
        var offset = _length;
        Grow(4);
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(offset + 2), (ushort)(type | Rt.NLA_F_NESTED));
        return offset;
    }

    public void End(int offset) => BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(offset), (ushort)(_length - offset));

    /// <summary>Marks an already written nested attribute as not NLA_F_NESTED (VETH_INFO_PEER carries an ifinfomsg first).</summary>
    public void ClearNestedFlag(int offset) =>
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(offset + 2),
            (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(offset + 2)) & ~Rt.NLA_F_NESTED));

    public ReadOnlySpan<byte> Finish(uint sequence)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer, (uint)_length);
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(8), sequence);
        return _buffer.AsSpan(0, _length);
    }
}

/// <summary>Walks the attributes of a received message (rtattr list).</summary>
internal ref struct AttributeReader
{
    private ReadOnlySpan<byte> _rest;

    public AttributeReader(ReadOnlySpan<byte> attributes) => _rest = attributes;

    public bool Next(out ushort type, out ReadOnlySpan<byte> value)
    {
        type = 0;
        value = default;
        if (_rest.Length < 4) return false;
        var len = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
        if (len < 4 || len > _rest.Length) return false;
        type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_rest[2..]) & 0x3fff);
        value = _rest[4..len];
        _rest = _rest[Math.Min(Rt.Align(len), _rest.Length)..];
        return true;
    }

    public static string ReadString(ReadOnlySpan<byte> value)
    {
        var zero = value.IndexOf((byte)0);
        return Encoding.UTF8.GetString(zero >= 0 ? value[..zero] : value);
    }
}
