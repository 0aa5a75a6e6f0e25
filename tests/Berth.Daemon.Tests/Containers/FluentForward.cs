using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace Berth.Daemon.Tests.Containers;

/// <summary>What the tests' Forward-protocol servers decode: the msgpack of fluent-logger-golang's messages.</summary>
internal static class FluentForward
{
    /// <summary>fluentd's answer to a message whose option carried a chunk id: <c>{"ack": ID}</c>.</summary>
    public static byte[] Ack(string chunk)
    {
        byte[] id = Encoding.UTF8.GetBytes(chunk);
        return [0x81, 0xa3, (byte)'a', (byte)'c', (byte)'k', 0xd9, (byte)id.Length, .. id];
    }

    /// <summary>A server's side of one connection: the messages it receives, one at a time.</summary>
    public sealed class Connection(Socket socket) : IDisposable
    {
        private readonly List<byte> pending = [];

        public Socket Socket { get; } = socket;

        /// <summary>The next message; EndOfStreamException when the client closed the connection before one.</summary>
        public async Task<object?[]> NextAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var buffer = new byte[65536];
            for (;;)
            {
                if (pending.Count > 0)
                {
                    byte[] bytes = [.. pending];
                    int at = 0;
                    try
                    {
                        var message = (object?[])Decode(bytes, ref at)!;
                        pending.RemoveRange(0, at);
                        return message;
                    }
                    catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException) { }   // not all of it yet
                }
                int n = await Socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                if (n == 0) throw new EndOfStreamException("the client closed the connection");
                pending.AddRange(buffer[..n]);
            }
        }

        /// <summary>Whether anything more comes within <paramref name="wait"/>.</summary>
        public bool Receives(TimeSpan wait) => pending.Count > 0 || Socket.Poll(wait, SelectMode.SelectRead);

        public void Dispose() => Socket.Dispose();
    }

    public static object? Decode(byte[] b, ref int at)
    {
        var reader = new MsgPackReader(b) { Pos = at };
        object? value = reader.Read();
        at = reader.Pos;
        return value;
    }

    /// <summary>The msgpack of fluent-logger-golang's messages: strings, integers, EventTimes (seconds, nanoseconds), arrays, string maps.</summary>
    internal sealed class MsgPackReader(byte[] b)
    {
        public int Pos { get; set; }

        public object? Read()
        {
            byte t = b[Pos++];
            switch (t)
            {
                case <= 0x7f: return (long)t;
                case >= 0x80 and <= 0x8f: return Map(t & 15);
                case >= 0x90 and <= 0x9f: return Array(t & 15);
                case >= 0xa0 and <= 0xbf: return Str(t & 31);
                case 0xd9: return Str(Length(1));
                case 0xda: return Str(Length(2));
                case 0xdb: return Str(Length(4));
                case 0xde: return Map(Length(2));
                case 0xd1: { long v = BinaryPrimitives.ReadInt16BigEndian(b.AsSpan(Pos, 2)); Pos += 2; return v; }
                case 0xd2: { long v = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(Pos, 4)); Pos += 4; return v; }
                case 0xd3: { long v = BinaryPrimitives.ReadInt64BigEndian(b.AsSpan(Pos, 8)); Pos += 8; return v; }
                case 0xd7:
                    {
                        Assert.Equal(0, b[Pos]);          // EventTime
                        var v = ((long)BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(Pos + 1, 4)), (long)BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(Pos + 5, 4)));
                        Pos += 9;
                        return v;
                    }
                default: throw new InvalidDataException($"msgpack type 0x{t:x2} is not one fluent-logger-golang sends dockerd's messages in");
            }
        }

        private int Length(int size)
        {
            int n = size == 1 ? b[Pos] : size == 2 ? BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(Pos, 2)) : (int)BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(Pos, 4));
            Pos += size;
            return n;
        }

        private string Str(int n)
        {
            if (Pos + n > b.Length) throw new IndexOutOfRangeException();
            string s = Encoding.UTF8.GetString(b, Pos, n);
            Pos += n;
            return s;
        }

        private object?[] Array(int n)
        {
            var a = new object?[n];
            for (int k = 0; k < n; k++) a[k] = Read();
            return a;
        }

        private Dictionary<string, string> Map(int n)
        {
            var d = new Dictionary<string, string>();
            for (int k = 0; k < n; k++)
            {
                string key = (string)Read()!;
                d.Add(key, (string)Read()!);
            }
            return d;
        }
    }
}
