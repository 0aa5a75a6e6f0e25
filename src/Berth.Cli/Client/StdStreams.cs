using System.Buffers.Binary;
using Berth.Cli.Interop;

namespace Berth.Cli.Client;

/// <summary>
/// Copies container streams to the CLI's own descriptors. Without a TTY the daemon multiplexes
/// stdout and stderr in Docker's frames: an 8-byte header <c>[stream, 0, 0, 0, size (big-endian u32)]</c>
/// then <c>size</c> bytes; stream 1 is stdout, 2 stderr, 3 an error from the daemon (Docker's
/// "systemErr"). With a TTY the bytes are raw. Writes go straight to fd 1/2 with write(2), so
/// nothing is buffered between the container and the terminal.
/// </summary>
internal static class StdStreams
{
    public const int Stdin = 0, Stdout = 1, Stderr = 2;

    /// <summary>Copies raw bytes to stdout until the end of the stream.</summary>
    public static void CopyRaw(Func<byte[], int, int, int> read)
    {
        var buffer = new byte[32 * 1024];
        int n;
        while ((n = read(buffer, 0, buffer.Length)) > 0) Libc.WriteAll(Stdout, buffer.AsSpan(0, n));
    }

    /// <summary>Demultiplexes Docker's frames to stdout and stderr until the end of the stream.</summary>
    public static void Demultiplex(Func<byte[], int, int, int> read)
    {
        var header = new byte[8];
        var buffer = new byte[32 * 1024];
        while (ReadFull(read, header, 8))
        {
            int stream = header[0];
            long size = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4));
            var error = stream == 3 ? new MemoryStream() : null;
            while (size > 0)
            {
                int want = (int)Math.Min(size, buffer.Length);
                if (!ReadFull(read, buffer, want)) throw new EndOfStreamException("the daemon ended the stream inside a frame");
                if (error is not null) error.Write(buffer, 0, want);
                else Libc.WriteAll(stream == 2 ? Stderr : Stdout, buffer.AsSpan(0, want));
                size -= want;
            }
            if (error is not null) throw new IOException(System.Text.Encoding.UTF8.GetString(error.ToArray()).Trim());
        }
    }

    private static bool ReadFull(Func<byte[], int, int, int> read, byte[] buffer, int count)
    {
        int done = 0;
        while (done < count)
        {
            int n = read(buffer, done, count - done);
            if (n == 0)
            {
                if (done == 0) return false;
                throw new EndOfStreamException("the daemon ended the stream inside a frame");
            }
            done += n;
        }
        return true;
    }

    public static Func<byte[], int, int, int> Reader(HijackedConnection c) => (b, o, n) => c.Read(b.AsSpan(o, n));

    public static Func<byte[], int, int, int> Reader(Stream s) => (b, o, n) => s.Read(b, o, n);
}
