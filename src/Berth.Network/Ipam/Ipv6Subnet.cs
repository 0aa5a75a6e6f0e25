using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Berth.Network;

/// <summary>An IPv6 prefix as a 128-bit number, e.g. fd00:db8:1::/64 (the network address is normalised).</summary>
public readonly record struct Ipv6Subnet
{
    public Ipv6Subnet(UInt128 network, int prefixLength)
    {
        if (prefixLength is < 0 or > 128) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"prefix length {prefixLength} is not 0..128");
        PrefixLength = prefixLength;
        Network = network & Mask;
    }

    public Ipv6Subnet(IPAddress address, int prefixLength) : this(ToUInt128(address), prefixLength) { }

    public UInt128 Network { get; }
    public int PrefixLength { get; }
    public UInt128 Mask => PrefixLength == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - PrefixLength);
    public UInt128 Last => Network | ~Mask;

    public bool Contains(UInt128 address) => (address & Mask) == Network;
    public bool Contains(IPAddress address) => address.AddressFamily == AddressFamily.InterNetworkV6 && Contains(ToUInt128(address));
    public bool Overlaps(Ipv6Subnet other) => Contains(other.Network) || other.Contains(Network);

    /// <summary>True for text that names an IPv6 prefix (has a ':'), to tell the families of IPAM.Config entries apart.</summary>
    public static bool LooksLikeIpv6(string text) => text.Contains(':', StringComparison.Ordinal);

    /// <summary>Parses <c>addr/n</c>. The address must be the network address (docker: "invalid subnet X: it should be Y").</summary>
    public static Ipv6Subnet Parse(string text)
    {
        var slash = text.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(text[..slash], out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6 || ip.ScopeId != 0
            || !int.TryParse(text[(slash + 1)..], System.Globalization.NumberStyles.None, null, out var prefix) || prefix is < 0 or > 128)
        {
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid IPv6 subnet \"{text}\" (want an IPv6 prefix such as fd00:db8:1::/64)");
        }
        var subnet = new Ipv6Subnet(ip, prefix);
        if (subnet.Network != ToUInt128(ip))
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid subnet {text}: it should be {subnet}");
        return subnet;
    }

    public override string ToString() => $"{ToAddress(Network)}/{PrefixLength}";

    public static UInt128 ToUInt128(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"{address} is not an IPv6 address");
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out _);
        return BinaryPrimitives.ReadUInt128BigEndian(b);
    }

    public static IPAddress ToAddress(UInt128 value)
    {
        var b = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(b, value);
        return new IPAddress(b);
    }
}
