using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Berth.Network;

/// <summary>The one question of a DNS query, its name lower-cased and without the root's trailing dot.</summary>
public readonly record struct DnsQuestion(string Name, ushort Type, ushort Class);

/// <summary>
/// The little of the DNS wire format (RFC 1035) the embedded server needs: read the header and the
/// first question of a query, write an answer to it. Everything else in a query — EDNS options,
/// further questions, which no resolver sends — is not interpreted; a query that is not understood
/// is forwarded as it came, or answered FORMERR when it cannot even be read.
/// </summary>
public static class DnsMessage
{
    public const ushort TypeA = 1, TypePtr = 12, TypeAaaa = 28, ClassIn = 1;
    public const byte RcodeNoError = 0, RcodeFormErr = 1, RcodeServFail = 2, RcodeNxDomain = 3, RcodeRefused = 5;
    public const int HeaderLength = 12;
    /// <summary>The size a UDP answer may have without EDNS (RFC 1035 4.2.1); larger answers are truncated (TC) and asked again over TCP.</summary>
    public const int MaxUdpLength = 512;
    /// <summary>dockerd's TTL for container names: they change when containers come and go.</summary>
    public const uint AnswerTtl = 600;

    /// <summary>
    /// Reads a standard query's first question. False when the packet is not one: too short, a
    /// response, another opcode, no question, or a name that runs past the packet or uses compression
    /// (never done in a question that is the first name of a message).
    /// </summary>
    public static bool TryReadQuery(ReadOnlySpan<byte> packet, out DnsQuestion question, out int questionEnd)
    {
        question = default;
        questionEnd = 0;
        if (packet.Length < HeaderLength) return false;
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        bool isResponse = (flags & 0x8000) != 0;
        int opcode = (flags >> 11) & 0xF;
        if (isResponse || opcode != 0 || BinaryPrimitives.ReadUInt16BigEndian(packet[4..]) == 0) return false;
        var name = new StringBuilder();
        int at = HeaderLength;
        while (true)
        {
            if (at >= packet.Length) return false;
            int length = packet[at++];
            if (length == 0) break;
            if (length > 63 || at + length > packet.Length) return false;
            if (name.Length > 0) name.Append('.');
            foreach (byte b in packet.Slice(at, length))
                name.Append(b is >= (byte)'A' and <= (byte)'Z' ? (char)(b + 32) : (char)b);
            at += length;
            if (name.Length > 253) return false;
        }
        if (at + 4 > packet.Length) return false;
        question = new DnsQuestion(name.ToString(), BinaryPrimitives.ReadUInt16BigEndian(packet[at..]), BinaryPrimitives.ReadUInt16BigEndian(packet[(at + 2)..]));
        questionEnd = at + 4;
        return true;
    }

    /// <summary>The query's ID (the first two bytes), which the answer must repeat.</summary>
    public static ushort IdOf(ReadOnlySpan<byte> packet) => BinaryPrimitives.ReadUInt16BigEndian(packet);

    /// <summary>
    /// The answer to a query read by <see cref="TryReadQuery"/>: its header (ID, RD copied, QR, AA, RA set),
    /// its question as it came, and one resource record per item of <paramref name="records"/>, each
    /// naming the question's name by a compression pointer. Over UDP (<paramref name="maxLength"/> 512)
    /// records that do not fit are left out and TC set, so that the client asks again over TCP.
    /// </summary>
    public static byte[] Answer(ReadOnlySpan<byte> query, int questionEnd, byte rcode, IReadOnlyList<DnsRecord> records, int maxLength = ushort.MaxValue)
    {
        var buffer = new byte[Math.Min(maxLength, questionEnd + records.Sum(r => 12 + r.Data.Length))];
        query[..questionEnd].CopyTo(buffer);
        int at = questionEnd, count = 0;
        bool truncated = false;
        foreach (DnsRecord r in records)
        {
            if (at + 12 + r.Data.Length > buffer.Length)
            {
                truncated = true;
                break;
            }
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(at), 0xC000 | HeaderLength); // the question's name
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(at + 2), r.Type);
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(at + 4), ClassIn);
            BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(at + 6), AnswerTtl);
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(at + 10), (ushort)r.Data.Length);
            r.Data.CopyTo(buffer, at + 12);
            at += 12 + r.Data.Length;
            count++;
        }
        ushort queryFlags = BinaryPrimitives.ReadUInt16BigEndian(query[2..]);
        ushort flags = (ushort)(0x8000 | (queryFlags & 0x0100) | 0x0080 | rcode); // QR, RD as asked, RA
        if (rcode == RcodeNoError || rcode == RcodeNxDomain) flags |= 0x0400; // AA: the names of containers are ours
        if (truncated) flags |= 0x0200;
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(2), flags);
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(6), (ushort)count);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(8), 0); // no authority, no additional (the query's EDNS record is not echoed)
        return buffer[..at];
    }

    /// <summary>An answer with no question section, for a query that could not be read (FORMERR): only its ID is repeated.</summary>
    public static byte[] FormatError(ReadOnlySpan<byte> query)
    {
        var buffer = new byte[HeaderLength];
        if (query.Length >= 2) query[..2].CopyTo(buffer);
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(2), 0x8000 | 0x0080 | RcodeFormErr);
        return buffer;
    }

    /// <summary>A name in wire format (labels, no compression), for PTR data.</summary>
    public static byte[] EncodeName(string name)
    {
        var bytes = new List<byte>();
        foreach (string label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            byte[] l = Encoding.ASCII.GetBytes(label);
            if (l.Length > 63) throw new ArgumentException($"DNS label too long in \"{name}\"", nameof(name));
            bytes.Add((byte)l.Length);
            bytes.AddRange(l);
        }
        bytes.Add(0);
        return [.. bytes];
    }

    /// <summary>
    /// The address a reverse name stands for: "4.3.2.1.in-addr.arpa" → 1.2.3.4, the 32 nibbles of
    /// ip6.arpa → an IPv6 address; null for any other name (a partial one included).
    /// </summary>
    public static IPAddress? ReverseNameAddress(string name)
    {
        if (name.EndsWith(".in-addr.arpa", StringComparison.Ordinal))
        {
            string[] octets = name[..^".in-addr.arpa".Length].Split('.');
            if (octets.Length != 4) return null;
            Array.Reverse(octets);
            return IPAddress.TryParse(string.Join('.', octets), out IPAddress? v4) && v4.AddressFamily == AddressFamily.InterNetwork
                && octets.All(o => o.Length is > 0 and <= 3 && o.All(char.IsAsciiDigit)) ? v4 : null;
        }
        if (name.EndsWith(".ip6.arpa", StringComparison.Ordinal))
        {
            string[] nibbles = name[..^".ip6.arpa".Length].Split('.');
            if (nibbles.Length != 32 || nibbles.Any(n => n.Length != 1 || !char.IsAsciiHexDigit(n[0]))) return null;
            var bytes = new byte[16];
            for (int i = 0; i < 32; i++)
            {
                int value = Convert.ToInt32(nibbles[31 - i], 16);
                bytes[i / 2] |= (byte)(i % 2 == 0 ? value << 4 : value);
            }
            return new IPAddress(bytes);
        }
        return null;
    }
}

/// <summary>One answer record: its type (A, AAAA, PTR) and its data in wire format.</summary>
public sealed record DnsRecord(ushort Type, byte[] Data)
{
    public static DnsRecord Address(IPAddress address)
        => new(address.AddressFamily == AddressFamily.InterNetwork ? DnsMessage.TypeA : DnsMessage.TypeAaaa, address.GetAddressBytes());

    public static DnsRecord Pointer(string name) => new(DnsMessage.TypePtr, DnsMessage.EncodeName(name));
}
