using System.Formats.Tar;
using Berth.Images.Content;
using Berth.Images.Layers;

namespace Berth.Images.Tests.Layers;

public sealed class LayerDifferTests : IDisposable
{
    private readonly TempDirectory _a = new("diff-a");
    private readonly TempDirectory _b = new("diff-b");

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }

    private static readonly byte[] Capability = [0x01, 0x00, 0x00, 0x02, 0x80, 0x24, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    private static MemoryStream RichLayer()
    {
        var tar = new MemoryStream();
        var w = new LayerTarWriter(tar);
        void Add(TarHeader h, string? data = null)
            => w.WriteEntry(h, data is null ? null : new MemoryStream(System.Text.Encoding.UTF8.GetBytes(data)));
        Add(new TarHeader { Name = "etc", Kind = TarEntryKind.Directory, Mode = 0x1ED, MtimeSeconds = 1_500_000_000 });
        Add(new TarHeader { Name = "etc/passwd", Kind = TarEntryKind.File, Mode = 0x1A4, Size = 5, MtimeSeconds = 1_500_000_001 }, "root\n");
        Add(new TarHeader { Name = "etc/.wh.shadow", Kind = TarEntryKind.File });
        Add(new TarHeader { Name = "var/cache", Kind = TarEntryKind.Directory, Mode = 0x1C0, Uid = 7, Gid = 8, MtimeSeconds = 1_400_000_000 });
        Add(new TarHeader { Name = "var/cache/.wh..wh..opq", Kind = TarEntryKind.File });
        Add(new TarHeader { Name = "var/cache/new", Kind = TarEntryKind.File, Mode = 0x180, Size = 3, Uid = 1000, Gid = 1000, MtimeSeconds = 1_400_000_001 }, "new");
        var ping = new TarHeader { Name = "usr/bin/ping", Kind = TarEntryKind.File, Mode = 0xDED, Size = 4, MtimeSeconds = 1_300_000_000 };
        ping.Xattrs.Add(new("security.capability", Capability));
        ping.Xattrs.Add(new("user.note", [1, 2, 3, 0xff]));
        Add(ping, "ping");
        Add(new TarHeader { Name = "usr/bin/ping6", Kind = TarEntryKind.Hardlink, LinkName = "usr/bin/ping" });
        Add(new TarHeader { Name = "usr/bin/sh", Kind = TarEntryKind.Symlink, LinkName = "/bin/busybox", Uid = 3, Gid = 4, MtimeSeconds = 1_200_000_000 });
        Add(new TarHeader { Name = "dev/null", Kind = TarEntryKind.CharDevice, Mode = 0x1B6, DevMajor = 1, DevMinor = 3, MtimeSeconds = 5 });
        Add(new TarHeader { Name = "dev/sda", Kind = TarEntryKind.BlockDevice, Mode = 0x1B0, DevMajor = 8, DevMinor = 0, MtimeSeconds = 5 });
        Add(new TarHeader { Name = "run/fifo", Kind = TarEntryKind.Fifo, Mode = 0x180, MtimeSeconds = 6 });
        string longName = string.Join('/', Enumerable.Range(0, 40).Select(i => $"d{i:000}")) + "/file";
        Add(new TarHeader { Name = longName, Kind = TarEntryKind.File, Mode = 0x1A4, Size = 4, Uid = 3_000_000, Gid = 3_000_001, MtimeSeconds = 9 }, "long");
        w.Finish();
        tar.Position = 0;
        return tar;
    }

    [Fact]
    public void Apply_diff_apply_gives_the_same_tree()
    {
        LayerApplier.Apply(RichLayer(), _a.Path);
        var diff = new MemoryStream();
        LayerDiffResult result = LayerDiffer.Diff(_a.Path, diff);
        diff.Position = 0;

        LayerApplyResult applied = LayerApplier.Apply(diff, _b.Path);

        Assert.Equal(result.DiffId, applied.DiffId);
        Assert.Equal(Digest.Compute(diff.ToArray()), result.DiffId);
        List<string> a = TreeSnapshot.Capture(_a.Path), b = TreeSnapshot.Capture(_b.Path);
        Assert.Equal(a, b);
        Assert.Contains(a, l => l.StartsWith("usr/bin/ping ") && l.Contains("xattr:security.capability=" + Convert.ToHexString(Capability)));
        Assert.Contains(a, l => l.StartsWith("usr/bin/ping6 ") && l.Contains("link-of=usr/bin/ping"));
        Assert.Contains(a, l => l.StartsWith("var/cache ") && l.Contains("xattr:trusted.overlay.opaque=79"));
    }

    [Fact]
    public void Diff_writes_docker_whiteouts_and_is_readable_by_other_tar_readers()
    {
        LayerApplier.Apply(RichLayer(), _a.Path);
        var diff = new MemoryStream();
        LayerDiffer.Diff(_a.Path, diff);
        diff.Position = 0;

        var entries = new List<(string Name, TarEntryType Type)>();
        using (var reader = new TarReader(diff))
            while (reader.GetNextEntry() is { } e) entries.Add((e.Name, e.EntryType));

        Assert.Contains(("etc/.wh.shadow", TarEntryType.RegularFile), entries);
        Assert.Contains(("var/cache/.wh..wh..opq", TarEntryType.RegularFile), entries);
        Assert.Contains(("usr/bin/ping6", TarEntryType.HardLink), entries);
        Assert.Contains(("dev/sda", TarEntryType.BlockDevice), entries);
        int dir = entries.FindIndex(e => e.Name == "var/cache/");
        int opq = entries.FindIndex(e => e.Name == "var/cache/.wh..wh..opq");
        Assert.True(dir >= 0 && dir < opq, "a directory comes before its contents");
        Assert.DoesNotContain(entries, e => e.Name.Contains("trusted.overlay"));
    }

    [Fact]
    public void The_same_tree_gives_the_same_diffid()
    {
        LayerApplier.Apply(RichLayer(), _a.Path);
        LayerDiffResult first = LayerDiffer.Diff(_a.Path, Stream.Null);
        LayerDiffResult second = LayerDiffer.Diff(_a.Path, Stream.Null);
        Assert.Equal(first, second);
    }

    [Fact]
    public void Symlinks_in_the_upper_directory_are_archived_not_followed()
    {
        File.CreateSymbolicLink(_a.Combine("etc"), "/etc");
        var diff = new MemoryStream();
        LayerDiffer.Diff(_a.Path, diff);
        diff.Position = 0;
        using var reader = new TarReader(diff);
        TarEntry only = reader.GetNextEntry()!;
        Assert.Equal((TarEntryType.SymbolicLink, "/etc"), (only.EntryType, only.LinkName));
        Assert.Null(reader.GetNextEntry());
    }
}
