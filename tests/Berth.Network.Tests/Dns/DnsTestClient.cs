using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Berth.Network.Tests.Dns;

/// <summary>A DNS answer as a test reads it: the header's flags, and each answer record's type and data.</summary>
public sealed record DnsReply(ushort Id, ushort Flags, IReadOnlyList<(ushort Type, byte[] Data)> Answers)
{
    public byte Rcode => (byte)(Flags & 0xF);
    public bool Truncated => (Flags & 0x0200) != 0;
    public IEnumerable<IPAddress> Addresses => Answers.Where(a => a.Type is DnsMessage.TypeA or DnsMessage.TypeAaaa).Select(a => new IPAddress(a.Data));
}

/// <summary>Queries written and answers read independently of <see cref="DnsMessage"/>, so the tests check it against the RFC, not against itself.</summary>
public static class DnsTestClient
{
    public static byte[] Query(ushort id, string name, ushort type, bool withEdns = false)
    {
        var q = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, (byte)(withEdns ? 1 : 0) };
        foreach (string label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            q.Add((byte)label.Length);
            q.AddRange(Encoding.ASCII.GetBytes(label));
        }
        q.AddRange([0, (byte)(type >> 8), (byte)type, 0, 1]);
        if (withEdns) q.AddRange([0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]); // OPT, 4096-byte payload
        return [.. q];
    }

    public static DnsReply Parse(byte[] packet)
    {
        ushort qd = BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(4)), an = BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(6));
        int at = 12;
        for (int i = 0; i < qd; i++) at = SkipName(packet, at) + 4;
        var answers = new List<(ushort, byte[])>();
        for (int i = 0; i < an; i++)
        {
            at = SkipName(packet, at);
            ushort type = BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(at));
            ushort length = BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(at + 8));
            answers.Add((type, packet.AsSpan(at + 10, length).ToArray()));
            at += 10 + length;
        }
        return new DnsReply(BinaryPrimitives.ReadUInt16BigEndian(packet), BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(2)), answers);
    }

    /// <summary>A name in wire format as text ("web.mynet"), for PTR data.</summary>
    public static string ReadName(byte[] data)
    {
        var labels = new List<string>();
        for (int at = 0; data[at] != 0; at += 1 + data[at]) labels.Add(Encoding.ASCII.GetString(data, at + 1, data[at]));
        return string.Join('.', labels);
    }

    private static int SkipName(byte[] packet, int at)
    {
        while (true)
        {
            byte length = packet[at];
            if (length == 0) return at + 1;
            if ((length & 0xC0) == 0xC0) return at + 2;
            at += 1 + length;
        }
    }

    public static async Task<byte[]> AskUdpAsync(IPEndPoint server, byte[] query)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        await socket.ConnectAsync(server);
        await socket.SendAsync(query);
        var buffer = new byte[65535];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return buffer[..n];
    }

    public static async Task<byte[]> AskTcpAsync(IPEndPoint server, byte[] query)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server);
        var framed = new byte[2 + query.Length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed, 2);
        await socket.SendAsync(framed);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var prefix = new byte[2];
        await ReceiveExactlyAsync(socket, prefix, timeout.Token);
        var reply = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
        await ReceiveExactlyAsync(socket, reply, timeout.Token);
        return reply;
    }

    private static async Task ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (n == 0) throw new IOException("the server closed the connection");
            buffer = buffer[n..];
        }
    }
}
