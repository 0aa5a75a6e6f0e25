namespace Berth.Images.Layers;

/// <summary>The kinds of tar entry a layer may hold.</summary>
internal enum TarEntryKind
{
    File,
    Directory,
    Symlink,
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// <summary>One tar entry, with the PAX and GNU extensions already folded in.</summary>
internal sealed class TarHeader
{
    public required string Name { get; set; }
    public string LinkName { get; set; } = "";
    public TarEntryKind Kind { get; set; }
    public long Size { get; set; }
    public uint Mode { get; set; }
    public long Uid { get; set; }
    public long Gid { get; set; }
    public long MtimeSeconds { get; set; }
    public uint MtimeNanoseconds { get; set; }
    public uint DevMajor { get; set; }
    public uint DevMinor { get; set; }

    /// <summary>Extended attributes (PAX <c>SCHILY.xattr.*</c>), values as raw bytes.</summary>
    public List<KeyValuePair<string, byte[]>> Xattrs { get; } = [];
}
