using System.Buffers.Text;
using System.Text;

namespace Berth.Images.Layers;

/// <summary>
/// A strict streaming reader of ustar/PAX/GNU tar, written for layers rather than taken from
/// System.Formats.Tar because that one decodes PAX values as UTF-8 text, which corrupts binary
/// extended attributes such as <c>security.capability</c>. Metadata records (PAX, GNU long names)
/// are capped so a hostile archive cannot make us allocate without bound. Entry names must be
/// valid UTF-8; anything else is refused rather than silently rewritten.
/// </summary>
internal sealed class LayerTarReader(Stream stream)
{
    private const int Block = 512;
    private const int MaxMetadataSize = 1 << 20;
    private readonly byte[] _block = new byte[Block];
    private readonly Dictionary<string, byte[]> _globalPax = new(StringComparer.Ordinal);
    private long _remaining;   // data bytes of the current entry not yet consumed
    private long _padding;     // padding after them
    private bool _ended;

    /// <summary>The next entry, or null at the end of the archive. The previous entry's data is skipped.</summary>
    public TarHeader? Next()
    {
        SkipData();
        if (_ended) return null;
        Dictionary<string, byte[]>? pax = null;
        string? gnuLongName = null, gnuLongLink = null;
        while (true)
        {
            if (!ReadBlock(allowEof: true) || IsZero(_block))
            {
                _ended = true;
                return null;
            }
            VerifyChecksum();
            byte type = _block[156];
            long size = ParseNumber(124, 12, "size");
            if (size < 0) throw Bad($"negative size in entry `{RawName()}`");
            switch (type)
            {
                case (byte)'x':
                    pax ??= new Dictionary<string, byte[]>(StringComparer.Ordinal);
                    ParsePax(ReadMetadata(size), pax);
                    continue;
                case (byte)'g':
                    ParsePax(ReadMetadata(size), _globalPax);
                    continue;
                case (byte)'L':
                    gnuLongName = CString(ReadMetadata(size));
                    continue;
                case (byte)'K':
                    gnuLongLink = CString(ReadMetadata(size));
                    continue;
            }
            return BuildHeader(type, size, pax, gnuLongName, gnuLongLink);
        }
    }

    /// <summary>Copies the current entry's data to <paramref name="destination"/>.</summary>
    public void CopyData(Stream destination)
    {
        byte[] buffer = new byte[128 * 1024];
        while (_remaining > 0)
        {
            int n = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, _remaining));
            if (n == 0) throw Bad("archive truncated inside an entry's data");
            destination.Write(buffer, 0, n);
            _remaining -= n;
        }
    }

    /// <summary>Reads the rest of the underlying stream (the trailing zero blocks and anything after).</summary>
    public void Drain()
    {
        SkipData();
        stream.CopyTo(Stream.Null);
    }

    private TarHeader BuildHeader(byte type, long size, Dictionary<string, byte[]>? pax, string? gnuLongName, string? gnuLongLink)
    {
        string name = gnuLongName ?? UstarName();
        string link = gnuLongLink ?? Text(157, 100);
        var header = new TarHeader
        {
            Name = name,
            Mode = (uint)(ParseNumber(100, 8, "mode") & 0xFFF),
            Uid = ParseNumber(108, 8, "uid"),
            Gid = ParseNumber(116, 8, "gid"),
            MtimeSeconds = ParseNumber(136, 12, "mtime"),
        };
        if (type is (byte)'3' or (byte)'4')
        {
            header.DevMajor = (uint)ParseNumber(329, 8, "devmajor");
            header.DevMinor = (uint)ParseNumber(337, 8, "devminor");
        }

        IEnumerable<KeyValuePair<string, byte[]>> records = _globalPax;
        if (pax is not null) records = records.Concat(pax);
        foreach (var (key, value) in records)
        {
            switch (key)
            {
                case "path": name = Decode(value, "path"); header.Name = name; break;
                case "linkpath": link = Decode(value, "linkpath"); break;
                case "size": size = PaxInteger(value, key); break;
                case "uid": header.Uid = PaxInteger(value, key); break;
                case "gid": header.Gid = PaxInteger(value, key); break;
                case "mtime": ParsePaxTime(value, header); break;
                default:
                    if (key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
                        header.Xattrs.Add(new(key["SCHILY.xattr.".Length..], value));
                    else if (key.StartsWith("GNU.sparse.", StringComparison.Ordinal))
                        throw Bad($"entry `{name}`: sparse files are not supported");
                    break;
            }
        }
        header.LinkName = link;
        header.Kind = type switch
        {
            (byte)'0' or 0 or (byte)'7' => name.EndsWith('/') ? TarEntryKind.Directory : TarEntryKind.File,
            (byte)'1' => TarEntryKind.Hardlink,
            (byte)'2' => TarEntryKind.Symlink,
            (byte)'3' => TarEntryKind.CharDevice,
            (byte)'4' => TarEntryKind.BlockDevice,
            (byte)'5' => TarEntryKind.Directory,
            (byte)'6' => TarEntryKind.Fifo,
            _ => throw Bad($"entry `{name}`: unsupported tar entry type `{(char)type}`"),
        };
        if (header.Uid < 0 || header.Uid > uint.MaxValue || header.Gid < 0 || header.Gid > uint.MaxValue)
            throw Bad($"entry `{name}`: uid/gid {header.Uid}/{header.Gid} out of range");
        if (size < 0) throw Bad($"entry `{name}`: negative size");
        // Only regular files carry data; a size on anything else is skipped, as GNU tar does.
        header.Size = header.Kind == TarEntryKind.File ? size : 0;
        _remaining = size;
        _padding = (Block - size % Block) % Block;
        return header;
    }

    private void SkipData()
    {
        long skip = _remaining + _padding;
        _remaining = _padding = 0;
        while (skip > 0)
        {
            int n = stream.Read(_block, 0, (int)Math.Min(Block, skip));
            if (n == 0) throw Bad("archive truncated inside an entry's data");
            skip -= n;
        }
    }

    private bool ReadBlock(bool allowEof)
    {
        int total = 0;
        while (total < Block)
        {
            int n = stream.Read(_block, total, Block - total);
            if (n == 0)
            {
                if (total == 0 && allowEof) return false;
                throw Bad("archive truncated inside a header");
            }
            total += n;
        }
        return true;
    }

    private byte[] ReadMetadata(long size)
    {
        if (size > MaxMetadataSize) throw Bad($"extended header of {size} bytes exceeds the {MaxMetadataSize}-byte limit");
        byte[] data = new byte[size];
        long padding = (Block - size % Block) % Block;
        try
        {
            stream.ReadExactly(data);
            if (padding > 0) stream.ReadExactly(_block, 0, (int)padding);
        }
        catch (EndOfStreamException)
        {
            throw Bad("archive truncated inside an extended header");
        }
        return data;
    }

    private static void ParsePax(byte[] data, Dictionary<string, byte[]> into)
    {
        int pos = 0;
        while (pos < data.Length)
        {
            int space = Array.IndexOf(data, (byte)' ', pos);
            if (space < 0 || !Utf8Parser.TryParse(data.AsSpan(pos, space - pos), out int length, out int used) || used != space - pos
                || length <= space - pos + 1 || pos + length > data.Length || data[pos + length - 1] != '\n')
                throw Bad("malformed PAX record");
            int equals = Array.IndexOf(data, (byte)'=', space + 1, pos + length - space - 1);
            if (equals < 0) throw Bad("malformed PAX record: no `=`");
            string key = Decode(data.AsSpan(space + 1, equals - space - 1).ToArray(), "PAX key");
            byte[] value = data.AsSpan(equals + 1, pos + length - equals - 2).ToArray();
            if (value.Length == 0) into.Remove(key); // an empty value deletes the record
            else into[key] = value;
            pos += length;
        }
    }

    private static long PaxInteger(byte[] value, string key)
        => Utf8Parser.TryParse(value, out long n, out int used) && used == value.Length ? n : throw Bad($"malformed PAX {key}");

    private static void ParsePaxTime(byte[] value, TarHeader header)
    {
        string text = Decode(value, "mtime");
        string[] parts = text.Split('.', 2);
        if (!long.TryParse(parts[0], out long seconds)) throw Bad($"malformed PAX mtime `{text}`");
        header.MtimeSeconds = seconds;
        header.MtimeNanoseconds = 0;
        if (parts.Length == 2 && parts[1].Length > 0 && !text.StartsWith('-'))
        {
            string frac = (parts[1] + "000000000")[..9];
            if (!uint.TryParse(frac, out uint ns)) throw Bad($"malformed PAX mtime `{text}`");
            header.MtimeNanoseconds = ns;
        }
    }

    private long ParseNumber(int offset, int length, string field)
    {
        ReadOnlySpan<byte> f = _block.AsSpan(offset, length);
        if ((f[0] & 0x80) != 0)
        {
            // GNU base-256: big-endian, the first byte's top bit is the marker. Negative values
            // (first byte 0xff) have no meaning for a layer entry.
            if (f[0] == 0xff) throw Bad($"negative {field} in entry `{RawName()}`");
            long v = f[0] & 0x7f;
            for (int i = 1; i < length; i++)
            {
                if (v > (long.MaxValue >> 8)) throw Bad($"{field} out of range in entry `{RawName()}`");
                v = (v << 8) | f[i];
            }
            return v;
        }
        long n = 0;
        bool digits = false;
        foreach (byte b in f)
        {
            if (b is (byte)' ' or 0)
            {
                if (digits) break;
                continue;
            }
            if (b is < (byte)'0' or > (byte)'7') throw Bad($"malformed {field} field in entry `{RawName()}`");
            digits = true;
            n = checked(n * 8 + (b - '0'));
        }
        return n;
    }

    private void VerifyChecksum()
    {
        long expected = ParseNumber(148, 8, "checksum");
        long unsigned = 0, signed = 0;
        for (int i = 0; i < Block; i++)
        {
            byte b = i is >= 148 and < 156 ? (byte)' ' : _block[i];
            unsigned += b;
            signed += (sbyte)b;
        }
        if (expected != unsigned && expected != signed) throw Bad("tar header checksum mismatch (not a tar archive, or corrupt)");
    }

    private string UstarName()
    {
        string name = Text(0, 100);
        bool ustar = _block.AsSpan(257, 6).SequenceEqual("ustar\0"u8);
        if (ustar && _block[345] != 0) name = Text(345, 155) + "/" + name;
        return name;
    }

    private string RawName() => Encoding.Latin1.GetString(_block, 0, Math.Max(0, Array.IndexOf(_block, (byte)0, 0, 100) is int i and >= 0 ? i : 100));

    private string Text(int offset, int length)
    {
        int end = Array.IndexOf(_block, (byte)0, offset, length);
        return Decode(_block.AsSpan(offset, (end < 0 ? offset + length : end) - offset).ToArray(), "name");
    }

    private static string CString(byte[] data)
    {
        int end = Array.IndexOf(data, (byte)0);
        return Decode(end < 0 ? data : data[..end], "GNU long name");
    }

    private static string Decode(byte[] bytes, string what)
    {
        try
        {
            return Interop.Strict.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Bad($"{what} is not valid UTF-8: `{Encoding.Latin1.GetString(bytes)}`");
        }
    }

    private static bool IsZero(byte[] block) => block.AsSpan().IndexOfAnyExcept((byte)0) < 0;

    private static ImagesException Bad(string message) => new(ImagesErrorKind.InvalidArgument, "invalid layer tar: " + message);
}
