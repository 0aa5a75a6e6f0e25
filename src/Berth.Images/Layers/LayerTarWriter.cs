using System.Text;

namespace Berth.Images.Layers;

/// <summary>
/// Writes ustar entries, preceded by a PAX header when a field does not fit (long names, large
/// ids or sizes) or when the entry has extended attributes, whose values are written as the raw
/// bytes they are (<c>SCHILY.xattr.*</c>, as GNU tar and Docker do). Times are whole seconds,
/// so that the same tree always gives the same bytes.
/// </summary>
internal sealed class LayerTarWriter(Stream output)
{
    private const int Block = 512;
    private const long MaxOctal7 = 0x1FFFFF;       // 07777777
    private const long MaxOctal11 = 0x1FFFFFFFF;   // 077777777777
    private readonly byte[] _header = new byte[Block];

    public void WriteEntry(TarHeader h, Stream? data = null)
    {
        string name = h.Kind == TarEntryKind.Directory && !h.Name.EndsWith('/') ? h.Name + "/" : h.Name;
        var pax = new List<(string Key, byte[] Value)>();
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        byte[] linkBytes = Encoding.UTF8.GetBytes(h.LinkName);
        (byte[] prefix, byte[] shortName) = SplitUstarName(nameBytes);
        if (shortName.Length == 0)
        {
            pax.Add(("path", nameBytes));
            shortName = Truncate(nameBytes, 100);
            prefix = [];
        }
        if (linkBytes.Length > 100) pax.Add(("linkpath", linkBytes));
        if (h.Uid > MaxOctal7) pax.Add(("uid", Ascii(h.Uid)));
        if (h.Gid > MaxOctal7) pax.Add(("gid", Ascii(h.Gid)));
        if (h.Size > MaxOctal11) pax.Add(("size", Ascii(h.Size)));
        if (h.MtimeSeconds is < 0 or > MaxOctal11) pax.Add(("mtime", Ascii(h.MtimeSeconds)));
        foreach (var (key, value) in h.Xattrs) pax.Add(("SCHILY.xattr." + key, value));

        if (pax.Count > 0)
        {
            byte[] records = PaxRecords(pax);
            string leaf = name.TrimEnd('/');
            leaf = leaf[(leaf.LastIndexOf('/') + 1)..];
            FillHeader(Truncate(Encoding.UTF8.GetBytes("PaxHeaders/" + leaf), 100), [], [], (byte)'x', records.Length, 0x1A4, 0, 0, 0, 0, 0);
            output.Write(_header);
            output.Write(records);
            Pad(records.Length);
        }

        byte type = h.Kind switch
        {
            TarEntryKind.File => (byte)'0',
            TarEntryKind.Hardlink => (byte)'1',
            TarEntryKind.Symlink => (byte)'2',
            TarEntryKind.CharDevice => (byte)'3',
            TarEntryKind.BlockDevice => (byte)'4',
            TarEntryKind.Directory => (byte)'5',
            TarEntryKind.Fifo => (byte)'6',
            _ => throw new ArgumentOutOfRangeException(nameof(h)),
        };
        long size = h.Kind == TarEntryKind.File ? h.Size : 0;
        FillHeader(shortName, prefix, Truncate(linkBytes, 100), type, Math.Min(size, MaxOctal11), h.Mode,
            Math.Min(h.Uid, MaxOctal7), Math.Min(h.Gid, MaxOctal7), Math.Clamp(h.MtimeSeconds, 0, MaxOctal11), h.DevMajor, h.DevMinor);
        output.Write(_header);
        if (size > 0)
        {
            if (data is null) throw new ArgumentNullException(nameof(data));
            CopyExactly(data, size, h.Name);
            Pad(size);
        }
    }

    /// <summary>The end-of-archive marker: two zero blocks.</summary>
    public void Finish()
    {
        output.Write(new byte[2 * Block]);
        output.Flush();
    }

    private void CopyExactly(Stream data, long size, string name)
    {
        byte[] buffer = new byte[128 * 1024];
        long left = size;
        while (left > 0)
        {
            int n = data.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n == 0) throw new ImagesException(ImagesErrorKind.Conflict, $"`{name}` shrank while being archived");
            output.Write(buffer, 0, n);
            left -= n;
        }
    }

    private void Pad(long size)
    {
        int padding = (int)((Block - size % Block) % Block);
        if (padding > 0) output.Write(new byte[padding]);
    }

    private void FillHeader(byte[] name, byte[] prefix, byte[] link, byte type, long size, uint mode, long uid, long gid, long mtime, uint devMajor, uint devMinor)
    {
        Array.Clear(_header);
        name.CopyTo(_header, 0);
        Octal(100, 8, mode & 0xFFF);
        Octal(108, 8, uid);
        Octal(116, 8, gid);
        Octal(124, 12, size);
        Octal(136, 12, mtime);
        _header[156] = type;
        link.CopyTo(_header, 157);
        "ustar\0"u8.CopyTo(_header.AsSpan(257));
        "00"u8.CopyTo(_header.AsSpan(263));
        if (type is (byte)'3' or (byte)'4')
        {
            Octal(329, 8, devMajor);
            Octal(337, 8, devMinor);
        }
        prefix.CopyTo(_header, 345);
        "        "u8.CopyTo(_header.AsSpan(148));
        long sum = 0;
        foreach (byte b in _header) sum += b;
        Octal(148, 7, sum);
        _header[155] = (byte)' ';
    }

    private void Octal(int offset, int length, long value)
    {
        string digits = Convert.ToString(value, 8).PadLeft(length - 1, '0');
        Encoding.ASCII.GetBytes(digits, 0, length - 1, _header, offset);
        _header[offset + length - 1] = 0;
    }

    /// <summary>ustar holds up to 155 bytes of prefix + '/' + 100 bytes of name; (_, []) if it does not fit.</summary>
    private static (byte[] Prefix, byte[] Name) SplitUstarName(byte[] name)
    {
        if (name.Length <= 100) return ([], name);
        for (int i = Math.Min(name.Length - 1, 155); i > 0; i--)
        {
            if (name[i] == '/' && name.Length - i - 1 <= 100 && name.Length - i - 1 > 0) return (name[..i], name[(i + 1)..]);
        }
        return ([], []);
    }

    private static byte[] PaxRecords(List<(string Key, byte[] Value)> records)
    {
        var ms = new MemoryStream();
        foreach (var (key, value) in records)
        {
            byte[] k = Encoding.UTF8.GetBytes(key);
            int body = 1 + k.Length + 1 + value.Length + 1; // " key=value\n"
            int length = body + 1;
            while (length != body + length.ToString().Length) length = body + length.ToString().Length;
            ms.Write(Encoding.ASCII.GetBytes(length.ToString()));
            ms.WriteByte((byte)' ');
            ms.Write(k);
            ms.WriteByte((byte)'=');
            ms.Write(value);
            ms.WriteByte((byte)'\n');
        }
        return ms.ToArray();
    }

    private static byte[] Ascii(long value) => Encoding.ASCII.GetBytes(value.ToString());

    private static byte[] Truncate(byte[] bytes, int max) => bytes.Length <= max ? bytes : bytes[..max];
}
