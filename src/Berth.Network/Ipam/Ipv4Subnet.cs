using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Berth.Network;

/// <summary>An IPv4 prefix in host byte order, e.g. 172.17.0.0/16 (the network address is normalised).</summary>
public readonly record struct Ipv4Subnet
{
    public Ipv4Subnet(uint network, int prefixLength)
    {
        if (prefixLength is < 0 or > 32) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"prefix length {prefixLength} is not 0..32");
        PrefixLength = prefixLength;
        Network = network & Mask;
    }

    public Ipv4Subnet(IPAddress address, int prefixLength) : this(ToUInt(address), prefixLength) { }

    public uint Network { get; }
    public int PrefixLength { get; }
    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);
    public uint Broadcast => Network | ~Mask;
    public ulong Size => 1UL << (32 - PrefixLength);

    public bool Contains(uint address) => (address & Mask) == Network;
    public bool Contains(IPAddress address) => Contains(ToUInt(address));
    public bool Overlaps(Ipv4Subnet other) => Contains(other.Network) || other.Contains(Network);

    public static Ipv4Subnet Parse(string text)
    {
        var slash = text.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(text[..slash], out var ip) || ip.AddressFamily != AddressFamily.InterNetwork
            || !int.TryParse(text[(slash + 1)..], out var prefix) || prefix is < 0 or > 32)
        {
            throw new NetworkException(NetworkErrorKind.InvalidArgument, $"invalid IPv4 subnet \"{text}\" (want a.b.c.d/n)");
        }
        return new Ipv4Subnet(ip, prefix);
    }

    public override string ToString() => $"{ToAddress(Network)}/{PrefixLength}";

    public static uint ToUInt(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetwork) throw new NetworkException(NetworkErrorKind.InvalidArgument, $"{address} is not an IPv4 address");
        Span<byte> b = stackalloc byte[4];
        address.TryWriteBytes(b, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    public static IPAddress ToAddress(uint value) => new(ToBytes(value));

    public static byte[] ToBytes(uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        return b;
    }
}
