using System.Buffers.Binary;
using System.Text;

namespace Berth.Daemon.Monitor;

/// <summary>
/// Docker's local log driver format (moby daemon/logger/local) as berth-monitor writes it: each entry is a frame
/// <c>[u32 big-endian length N][N bytes of protobuf LogEntry][the same u32 again]</c>; the footer lets a reader walk
/// backwards. LogEntry is api/types/plugins/logdriver/entry.proto: <c>string source = 1; int64 time_nano = 2;
/// bytes line = 3; bool partial = 4; PartialLogEntryMetadata partial_log_metadata = 5</c> with
/// <c>PartialLogEntryMetadata { bool last = 1; string id = 2; int32 ordinal = 3; }</c>. The line is kept without its
/// newline; readers give one back to every entry but the non-last parts of a long line. Protobuf by hand: varints and
/// length-delimited fields are all it takes.
/// </summary>
public static class LocalLog
{
    /// <summary>A frame longer than this is corruption (berth-monitor's are at most 16 KiB of line and a few bytes more;
    /// dockerd's own reader gives up at 1 MiB too).</summary>
    public const int MaxFrame = 1024 * 1024;

    /// <summary>One framed entry, encoded as berth-monitor does (proto3: fields in order, zero values left out).</summary>
    public static byte[] Frame(string source, long timeNano, ReadOnlySpan<byte> line, bool partial = false, bool last = false,
        string id = "", int ordinal = 0)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(id);
        var proto = new List<byte>(line.Length + 64);
        if (source.Length > 0) Bytes(proto, 1, Encoding.UTF8.GetBytes(source));
        if (timeNano != 0) Varint(proto, 2 << 3, (ulong)timeNano);
        if (line.Length > 0) Bytes(proto, 3, line);
        if (partial)
        {
            var md = new List<byte>(96);
            if (last) Varint(md, 1 << 3, 1);
            if (id.Length > 0) Bytes(md, 2, Encoding.UTF8.GetBytes(id));
            if (ordinal != 0) Varint(md, 3 << 3, (ulong)(long)ordinal);
            Varint(proto, 4 << 3, 1);
            Bytes(proto, 5, [.. md]);
        }
        byte[] frame = new byte[proto.Count + 8];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)proto.Count);
        proto.CopyTo(frame, 4);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4 + proto.Count), (uint)proto.Count);
        return frame;
    }

    private static void Varint(List<byte> to, ulong tag, ulong value)
    {
        WriteVarint(to, tag);
        WriteVarint(to, value);
    }

    private static void Bytes(List<byte> to, int field, ReadOnlySpan<byte> value)
    {
        WriteVarint(to, (ulong)(field << 3 | 2));
        WriteVarint(to, (ulong)value.Length);
        foreach (byte b in value) to.Add(b);
    }

    private static void WriteVarint(List<byte> to, ulong v)
    {
        for (; v >= 0x80; v >>= 7) to.Add((byte)(v | 0x80));
        to.Add((byte)v);
    }

    /// <summary>One LogEntry message as it is stored (the line without its newline).</summary>
    public sealed record Message(string Source, long TimeNano, byte[] Line, bool Partial, bool Last, string Id, int Ordinal);

    /// <summary>The entry one LogEntry message holds, as readers give it (with the newline), or null when the bytes
    /// are not one.</summary>
    public static LogEntry? DecodeEntry(ReadOnlySpan<byte> p)
        => Decode(p, withNewline: true) is { } m ? new LogEntry(m.Source, DateTimeOffset.UnixEpoch.AddTicks(m.TimeNano / 100), m.Line) : null;

    /// <summary>The fields of one LogEntry message, or null when the bytes are not one. Unknown fields (attrs = 6,
    /// which berth-monitor does not write) are skipped, as protobuf readers do.</summary>
    public static Message? Decode(ReadOnlySpan<byte> p) => Decode(p, withNewline: false);

    /// <summary>withNewline: the line as readers give it: dockerd's readers add the newline the copier took off,
    /// except to the parts of a line that are not its last.</summary>
    private static Message? Decode(ReadOnlySpan<byte> p, bool withNewline)
    {
        string? source = null, id = "";
        long timeNano = 0;
        ReadOnlySpan<byte> line = default;
        bool partial = false, last = false;
        int ordinal = 0;
        int pos = 0;
        while (pos < p.Length)
        {
            if (!ReadVarint(p, ref pos, out ulong tag) || tag >> 3 is 0 or > int.MaxValue) return null;
            int field = (int)(tag >> 3);
            switch ((int)(tag & 7))
            {
                case 0:
                    if (!ReadVarint(p, ref pos, out ulong v)) return null;
                    if (field == 2) timeNano = (long)v;
                    else if (field == 4) partial = v != 0;
                    break;
                case 2:
                    if (!ReadVarint(p, ref pos, out ulong length) || length > (ulong)(p.Length - pos)) return null;
                    ReadOnlySpan<byte> value = p.Slice(pos, (int)length);
                    pos += (int)length;
                    if (field == 1) source = value.SequenceEqual("stdout"u8) ? "stdout" : value.SequenceEqual("stderr"u8) ? "stderr" : Encoding.UTF8.GetString(value);
                    else if (field == 3) line = value;
                    else if (field == 5 && !DecodeMetadata(value, out last, out id, out ordinal)) return null;
                    break;
                case 1:
                    if (p.Length - pos < 8) return null;
                    pos += 8;
                    break;
                case 5:
                    if (p.Length - pos < 4) return null;
                    pos += 4;
                    break;
                default:
                    return null;
            }
        }
        if (source is null) return null;
        bool newline = withNewline && (!partial || last);
        byte[] bytes = new byte[line.Length + (newline ? 1 : 0)];
        line.CopyTo(bytes);
        if (newline) bytes[^1] = (byte)'\n';
        return new Message(source, timeNano, bytes, partial, last, id, ordinal);
    }

    private static bool DecodeMetadata(ReadOnlySpan<byte> p, out bool last, out string id, out int ordinal)
    {
        (last, id, ordinal) = (false, "", 0);
        int pos = 0;
        while (pos < p.Length)
        {
            if (!ReadVarint(p, ref pos, out ulong tag)) return false;
            switch ((int)(tag & 7))
            {
                case 0:
                    if (!ReadVarint(p, ref pos, out ulong v)) return false;
                    if (tag >> 3 == 1) last = v != 0;
                    else if (tag >> 3 == 3) ordinal = (int)v;   // int32: a negative one is ten bytes, its low 32 bits count
                    break;
                case 2:
                    if (!ReadVarint(p, ref pos, out ulong length) || length > (ulong)(p.Length - pos)) return false;
                    if (tag >> 3 == 2) id = Encoding.UTF8.GetString(p.Slice(pos, (int)length));
                    pos += (int)length;
                    break;
                case 1 when p.Length - pos >= 8: pos += 8; break;
                case 5 when p.Length - pos >= 4: pos += 4; break;
                default: return false;
            }
        }
        return true;
    }

    private static bool ReadVarint(ReadOnlySpan<byte> p, ref int pos, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= p.Length) return false;
            byte b = p[pos++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return true;
        }
        return false;
    }

    /// <summary>
    /// Frames off the start of the bytes. An incomplete frame at the end waits for the rest (it is being written, or
    /// the read stopped inside it); one that can never be completed (a torn frame at the end of a rotated file, after a
    /// crash) is dropped. A frame whose length is implausible, whose footer does not repeat its length, or whose
    /// message does not decode is corruption: the bytes up to the next whole, valid frame are skipped, so that one
    /// damaged entry costs only itself (dockerd's reader likewise retries past a bad frame). Only a frame proven bad
    /// starts that search: a valid frame's line may hold bytes that look like frames.
    /// </summary>
    internal sealed class Decoder : ILogDecoder
    {
        private enum Frame { Valid, Incomplete, Corrupt }

        public int Decode(ReadOnlySpan<byte> buffer, bool complete, List<LogEntry> entries)
        {
            int pos = 0;
            while (buffer.Length - pos >= 4)
            {
                Frame state = Check(buffer, pos, out int length, out LogEntry? entry);
                if (state == Frame.Valid)
                {
                    entries.Add(entry!);
                    pos += 8 + length;
                    continue;
                }
                if (state == Frame.Incomplete && !complete) return pos;
                int next = pos + 1;
                while (buffer.Length - next >= 8 && Check(buffer, next, out _, out _) != Frame.Valid) next++;
                if (buffer.Length - next < 8) return complete ? buffer.Length : pos;   // wait for more, from here
                pos = next;
            }
            return complete ? buffer.Length : pos;
        }

        private static Frame Check(ReadOnlySpan<byte> buffer, int pos, out int length, out LogEntry? entry)
        {
            entry = null;
            uint n = BinaryPrimitives.ReadUInt32BigEndian(buffer[pos..]);
            length = (int)Math.Min(n, int.MaxValue);
            if (n > MaxFrame) return Frame.Corrupt;
            if (buffer.Length - pos < 8 + length) return Frame.Incomplete;
            if (BinaryPrimitives.ReadUInt32BigEndian(buffer[(pos + 4 + length)..]) != n) return Frame.Corrupt;
            entry = DecodeEntry(buffer.Slice(pos + 4, length));
            return entry is null ? Frame.Corrupt : Frame.Valid;
        }
    }
}
