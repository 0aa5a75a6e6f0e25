using System.Formats.Tar;
using System.Text;

namespace Berth.Images.Tests.Layers;

/// <summary>Builds layer tars in memory with System.Formats.Tar, the way a hostile registry could.</summary>
internal sealed class TarBuilder
{
    private readonly MemoryStream _stream = new();
    private readonly TarWriter _writer;
    private readonly TarEntryFormat _format;

    public TarBuilder(TarEntryFormat format = TarEntryFormat.Pax)
    {
        _format = format;
        _writer = new TarWriter(_stream, format, leaveOpen: true);
    }

    public static readonly DateTimeOffset Time = new(2020, 5, 17, 12, 34, 56, TimeSpan.Zero);

    private TarEntry New(TarEntryType type, string name, IEnumerable<KeyValuePair<string, string>>? pax = null)
    {
        TarEntry e = _format switch
        {
            TarEntryFormat.Gnu => new GnuTarEntry(type, name),
            TarEntryFormat.Ustar => new UstarTarEntry(type, name),
            _ => pax is null ? new PaxTarEntry(type, name) : new PaxTarEntry(type, name, pax),
        };
        e.ModificationTime = Time;
        e.Mode = (UnixFileMode)0x1A4;
        return e;
    }

    public TarBuilder File(string name, string content, int mode = 0x1A4, int uid = 0, int gid = 0, DateTimeOffset? mtime = null, IEnumerable<KeyValuePair<string, string>>? pax = null)
    {
        TarEntry e = New(_format == TarEntryFormat.V7 ? TarEntryType.V7RegularFile : TarEntryType.RegularFile, name, pax);
        e.DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content));
        e.Mode = (UnixFileMode)mode;
        e.Uid = uid;
        e.Gid = gid;
        if (mtime is { } t) e.ModificationTime = t;
        _writer.WriteEntry(e);
        return this;
    }

    public TarBuilder Dir(string name, int mode = 0x1ED, int uid = 0, int gid = 0, DateTimeOffset? mtime = null)
    {
        TarEntry e = New(TarEntryType.Directory, name);
        e.Mode = (UnixFileMode)mode;
        e.Uid = uid;
        e.Gid = gid;
        if (mtime is { } t) e.ModificationTime = t;
        _writer.WriteEntry(e);
        return this;
    }

    public TarBuilder Symlink(string name, string target)
    {
        TarEntry e = New(TarEntryType.SymbolicLink, name);
        e.LinkName = target;
        e.Mode = (UnixFileMode)0x1FF;
        _writer.WriteEntry(e);
        return this;
    }

    public TarBuilder Hardlink(string name, string target)
    {
        TarEntry e = New(TarEntryType.HardLink, name);
        e.LinkName = target;
        _writer.WriteEntry(e);
        return this;
    }

    public TarBuilder Device(string name, bool block, int major, int minor, int mode = 0x1B6)
    {
        var e = (PosixTarEntry)New(block ? TarEntryType.BlockDevice : TarEntryType.CharacterDevice, name);
        e.DeviceMajor = major;
        e.DeviceMinor = minor;
        e.Mode = (UnixFileMode)mode;
        _writer.WriteEntry(e);
        return this;
    }

    public TarBuilder Fifo(string name, int mode = 0x1A4)
    {
        TarEntry e = New(TarEntryType.Fifo, name);
        e.Mode = (UnixFileMode)mode;
        _writer.WriteEntry(e);
        return this;
    }

    public byte[] ToArray()
    {
        _writer.Dispose();
        return _stream.ToArray();
    }

    public MemoryStream ToStream() => new(ToArray());
}
