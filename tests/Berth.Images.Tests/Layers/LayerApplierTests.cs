using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Berth.Images.Content;
using Berth.Images.Layers;

namespace Berth.Images.Tests.Layers;

public sealed class LayerApplierTests : IDisposable
{
    private readonly TempDirectory _target = new("apply");

    public void Dispose() => _target.Dispose();

    private string P(string relative) => _target.Combine(relative);

    private static byte[] SampleLayer() => new TarBuilder()
        .Dir("etc/", mode: 0x1ED, mtime: TarBuilder.Time.AddDays(-1))
        .File("etc/hostname", "berth\n", mode: 0x1A4, uid: 1000, gid: 1001)
        .File("usr/bin/sudo", "#!/bin/sh\n", mode: 0xDED /* 04755 */)
        .Dir("tmp", mode: 0x3FF /* 01777 */)
        .Symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
        .Symlink("bin", "usr/bin")
        .Hardlink("usr/bin/sudoedit", "usr/bin/sudo")
        .Fifo("run-fifo", mode: 0x180)
        .Device("dev/null", block: false, 1, 3)
        .Device("dev/loop0", block: true, 7, 0, mode: 0x1B0)
        .ToArray();

    [Fact]
    public void Applies_every_entry_kind_with_owner_mode_and_time()
    {
        byte[] tar = SampleLayer();
        LayerApplyResult result = LayerApplier.Apply(new MemoryStream(tar), _target.Path);

        Assert.Equal(Digest.Compute(tar), result.DiffId);
        Assert.Equal(tar.Length, result.UncompressedSize);
        Assert.Equal(LayerCompression.None, result.Compression);

        Assert.Equal("berth\n", File.ReadAllText(P("etc/hostname")));
        var hostname = Interop.LStat(P("etc/hostname"));
        Assert.Equal((1000u, 1001u, 0x1A4u), (hostname.Uid, hostname.Gid, hostname.Permissions));
        Assert.Equal(TarBuilder.Time.ToUnixTimeSeconds(), hostname.MtimeSec);

        Assert.Equal(0xDEDu, Interop.LStat(P("usr/bin/sudo")).Permissions);
        Assert.Equal(0x3FFu, Interop.LStat(P("tmp")).Permissions);
        Assert.Equal("/usr/share/zoneinfo/UTC", new FileInfo(P("etc/localtime")).LinkTarget);
        Assert.Equal("usr/bin", new FileInfo(P("bin")).LinkTarget);

        var sudo = Interop.LStat(P("usr/bin/sudo"));
        var sudoedit = Interop.LStat(P("usr/bin/sudoedit"));
        Assert.Equal(sudo.Ino, sudoedit.Ino);
        Assert.Equal(2u, sudo.Nlink);

        var fifo = Interop.LStat(P("run-fifo"));
        Assert.Equal((Interop.S_IFIFO, 0x180u), (fifo.Type, fifo.Permissions));
        var devNull = Interop.LStat(P("dev/null"));
        Assert.Equal((Interop.S_IFCHR, 1u, 3u, 0x1B6u), (devNull.Type, devNull.RdevMajor, devNull.RdevMinor, devNull.Permissions));
        var loop = Interop.LStat(P("dev/loop0"));
        Assert.Equal((Interop.S_IFBLK, 7u, 0u, 0x1B0u), (loop.Type, loop.RdevMajor, loop.RdevMinor, loop.Permissions));

        // Directory times are set after their contents were created.
        Assert.Equal(TarBuilder.Time.AddDays(-1).ToUnixTimeSeconds(), Interop.LStat(P("etc")).MtimeSec);
        Assert.Equal(TarBuilder.Time.ToUnixTimeSeconds(), Interop.LStat(P("etc/localtime")).MtimeSec);
    }

    [Theory]
    [InlineData(LayerCompression.Gzip)]
    [InlineData(LayerCompression.Zstd)]
    public void Compressed_layers_are_detected_and_the_diffid_is_of_the_uncompressed_tar(LayerCompression compression)
    {
        byte[] tar = SampleLayer();
        var compressed = new MemoryStream();
        using (Stream c = compression == LayerCompression.Gzip
            ? new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true)
            : new ZstdSharp.CompressionStream(compressed, 3, leaveOpen: true))
            c.Write(tar);
        compressed.Position = 0;

        LayerApplyResult result = LayerApplier.Apply(compressed, _target.Path);

        Assert.Equal(compression, result.Compression);
        Assert.Equal(Digest.Compute(tar), result.DiffId);
        Assert.Equal("berth\n", File.ReadAllText(P("etc/hostname")));
    }

    /// <summary>xz and bzip2 are read (as dockerd's DecompressStream reads them); corrupt data is refused naming the format.</summary>
    [Theory]
    [InlineData(new byte[] { 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3 }, "xz")]
    [InlineData(new byte[] { (byte)'B', (byte)'Z', (byte)'h', (byte)'9', 1, 2, 3, 4, 5, 6, 7, 8, 9 }, "bzip2")]
    public void Corrupt_xz_and_bzip2_layers_are_refused_clearly(byte[] data, string format)
    {
        var e = Assert.Throws<ImagesException>(() => LayerApplier.Apply(new MemoryStream(data), _target.Path));
        Assert.Contains($"Error processing tar file({format})", e.Message);
    }

    [Theory]
    [InlineData("xz")]
    [InlineData("bzip2")]
    public void Xz_and_bzip2_layers_are_applied(string tool)
    {
        byte[] tar = new TarBuilder(TarEntryFormat.Pax).File("hello.txt", "compressed").ToArray();
        LayerApplier.Apply(new MemoryStream(CompressTool.Compress(tool, tar)), _target.Path);
        Assert.Equal("compressed", File.ReadAllText(Path.Combine(_target.Path, "hello.txt")));
    }

    [Theory]
    [InlineData(TarEntryFormat.Pax)]
    [InlineData(TarEntryFormat.Gnu)]
    public void Long_names_and_long_link_targets(TarEntryFormat format)
    {
        string deep = string.Join('/', Enumerable.Range(0, 30).Select(i => $"directory{i:00}")) + "/file-with-a-rather-long-name.txt";
        string target = "/" + string.Join('/', Enumerable.Range(0, 20).Select(i => $"target{i:00}"));
        byte[] tar = new TarBuilder(format).File(deep, "deep").Symlink("long-link", target).Hardlink("hl", deep).ToArray();

        LayerApplier.Apply(new MemoryStream(tar), _target.Path);

        Assert.True(deep.Length > 255);
        Assert.Equal("deep", File.ReadAllText(P(deep)));
        Assert.Equal(target, new FileInfo(P("long-link")).LinkTarget);
        Assert.Equal("deep", File.ReadAllText(P("hl")));
    }

    [Fact]
    public void Xattrs_from_pax_records_are_applied_including_binary_security_capability()
    {
        // VFS_CAP_REVISION_2 with CAP_SETUID|CAP_NET_BIND_SERVICE|CAP_NET_RAW permitted and effective:
        // bytes >= 0x80 that a text decoding of the PAX value would corrupt.
        byte[] capability = [0x01, 0x00, 0x00, 0x02, 0x80, 0x24, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        var header = new TarHeader { Name = "usr/bin/ping", Kind = TarEntryKind.File, Mode = 0x1ED, Size = 4, MtimeSeconds = 1 };
        header.Xattrs.Add(new("security.capability", capability));
        header.Xattrs.Add(new("user.comment", "héllo"u8.ToArray()));
        header.Xattrs.Add(new("trusted.overlay.redirect", "/etc"u8.ToArray()));
        var dirHeader = new TarHeader { Name = "usr/bin", Kind = TarEntryKind.Directory, Mode = 0x1ED };
        dirHeader.Xattrs.Add(new("trusted.berth", [0xff, 0x00, 0x01]));
        var tar = new MemoryStream();
        var writer = new LayerTarWriter(tar);
        writer.WriteEntry(dirHeader);
        writer.WriteEntry(header, new MemoryStream("ping"u8.ToArray()));
        writer.Finish();
        tar.Position = 0;

        LayerApplier.Apply(tar, _target.Path);

        Assert.Equal(capability, Interop.GetXattr(P("usr/bin/ping"), "security.capability", "ping"));
        Assert.Equal("héllo"u8.ToArray(), Interop.GetXattr(P("usr/bin/ping"), "user.comment", "ping"));
        Assert.Equal([0xff, 0x00, 0x01], Interop.GetXattr(P("usr/bin"), "trusted.berth", "usr/bin"));
        // overlay metadata can only come from .wh. names, never from a layer's xattrs.
        Assert.Null(Interop.GetXattr(P("usr/bin/ping"), "trusted.overlay.redirect", "ping"));
    }

    [Fact]
    public void Xattrs_on_symlinks_and_devices_are_set_on_the_node_itself()
    {
        var link = new TarHeader { Name = "link", Kind = TarEntryKind.Symlink, LinkName = "target", MtimeSeconds = 1 };
        link.Xattrs.Add(new("trusted.label", "on-the-link"u8.ToArray()));
        var fifo = new TarHeader { Name = "fifo", Kind = TarEntryKind.Fifo, Mode = 0x1A4 };
        fifo.Xattrs.Add(new("trusted.label", "on-the-fifo"u8.ToArray()));
        var tar = new MemoryStream();
        var writer = new LayerTarWriter(tar);
        writer.WriteEntry(new TarHeader { Name = "target", Kind = TarEntryKind.File, Mode = 0x1A4 }, new MemoryStream());
        writer.WriteEntry(link);
        writer.WriteEntry(fifo);
        writer.Finish();
        tar.Position = 0;

        LayerApplier.Apply(tar, _target.Path);

        using (var fd = Interop.Open(P("link"), Interop.O_PATH | Interop.O_NOFOLLOW))
            Assert.Equal("on-the-link"u8.ToArray(), Assert.Single(Interop.ListXattrs(fd, "link")).Value);
        Assert.Null(Interop.GetXattr(P("target"), "trusted.label", "target"));
        Assert.Equal("on-the-fifo"u8.ToArray(), Interop.GetXattr(P("fifo"), "trusted.label", "fifo"));
    }

    [Fact]
    public void Text_xattrs_written_by_System_Formats_Tar_are_read()
    {
        byte[] tar = new TarBuilder().File("f", "x", pax: [new("SCHILY.xattr.user.mime_type", "text/plain")]).ToArray();
        LayerApplier.Apply(new MemoryStream(tar), _target.Path);
        Assert.Equal("text/plain"u8.ToArray(), Interop.GetXattr(P("f"), "user.mime_type", "f"));
    }

    [Fact]
    public void Whiteouts_become_overlay_whiteouts_and_opaque_directories()
    {
        Directory.CreateDirectory(P("var/cache"));
        File.WriteAllText(P("gone-from-this-dir-too"), "x");
        byte[] tar = new TarBuilder()
            .File("etc/.wh.passwd", "")
            .File(".wh.gone-from-this-dir-too", "")
            .Dir("var/cache")
            .File("var/cache/.wh..wh..opq", "")
            .File("var/cache/kept", "new")
            .File("opaque-only/.wh..wh..opq", "")
            .File(".wh..wh.plnk", "")
            .ToArray();

        LayerApplier.Apply(new MemoryStream(tar), _target.Path);

        foreach (string whiteout in new[] { "etc/passwd", "gone-from-this-dir-too" })
        {
            var st = Interop.LStat(P(whiteout));
            Assert.Equal((Interop.S_IFCHR, 0u, 0u), (st.Type, st.RdevMajor, st.RdevMinor));
        }
        Assert.False(File.Exists(P("etc/.wh.passwd")));
        Assert.Equal("y"u8.ToArray(), Interop.GetXattr(P("var/cache"), "trusted.overlay.opaque", "var/cache"));
        Assert.Equal("new", File.ReadAllText(P("var/cache/kept")));
        Assert.False(File.Exists(P("var/cache/.wh..wh..opq")));
        Assert.Equal("y"u8.ToArray(), Interop.GetXattr(P("opaque-only"), "trusted.overlay.opaque", "opaque-only"));
        Assert.False(File.Exists(P(".wh..wh.plnk")));
    }

    [Fact]
    public void Later_entries_replace_earlier_ones_of_any_kind()
    {
        byte[] tar = new TarBuilder()
            .File("a", "file")
            .Dir("a")
            .File("a/inside", "x")
            .File("a", "file again")
            .Symlink("b", "nowhere")
            .File("b", "not a link")
            .Dir("c")
            .Dir("c", mode: 0x1C0)
            .ToArray();

        LayerApplier.Apply(new MemoryStream(tar), _target.Path);

        Assert.Equal("file again", File.ReadAllText(P("a")));
        Assert.Null(new FileInfo(P("b")).LinkTarget);
        Assert.Equal("not a link", File.ReadAllText(P("b")));
        Assert.Equal(0x1C0u, Interop.LStat(P("c")).Permissions);
    }

    [Fact]
    public void Absolute_and_dot_names_are_relative_to_the_target()
    {
        byte[] tar = new TarBuilder().Dir("./").File("/etc/abs", "abs").File("./rel/./x", "rel").File("a/../b", "b").ToArray();

        LayerApplier.Apply(new MemoryStream(tar), _target.Path);

        Assert.Equal("abs", File.ReadAllText(P("etc/abs")));
        Assert.Equal("rel", File.ReadAllText(P("rel/x")));
        Assert.Equal("b", File.ReadAllText(P("b")));
        Assert.False(Directory.Exists(P("a")));
    }

    [Fact]
    public void Symlinks_inside_the_target_are_followed_for_parents()
    {
        byte[] tar = new TarBuilder().Dir("usr/lib").Symlink("lib", "usr/lib").File("lib/libc.so", "libc").ToArray();
        LayerApplier.Apply(new MemoryStream(tar), _target.Path);
        Assert.Equal("libc", File.ReadAllText(P("usr/lib/libc.so")));
    }

    [Fact]
    public void Ownership_can_be_left_to_the_caller()
    {
        byte[] tar = new TarBuilder().File("f", "x", uid: 1234, gid: 5678).ToArray();
        LayerApplier.Apply(new MemoryStream(tar), _target.Path, new LayerApplyOptions { PreserveOwnership = false });
        Assert.Equal(0u, Interop.LStat(P("f")).Uid);
    }

    [Fact]
    public void Trailing_data_after_the_end_marker_is_part_of_the_diffid()
    {
        byte[] tar = new TarBuilder().File("f", "x").ToArray();
        byte[] padded = [.. tar, .. new byte[10240]];
        LayerApplyResult result = LayerApplier.Apply(new MemoryStream(padded), _target.Path);
        Assert.Equal(Digest.Compute(padded), result.DiffId);
    }

    [Fact]
    public void A_corrupt_header_is_refused()
    {
        byte[] tar = new TarBuilder().File("f", "x").ToArray();
        tar[10] ^= 0x55;
        var e = Assert.Throws<ImagesException>(() => LayerApplier.Apply(new MemoryStream(tar), _target.Path));
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("checksum", e.Message);
    }

    [Fact]
    public void A_truncated_archive_is_refused()
    {
        byte[] tar = new TarBuilder().File("f", new string('x', 2000)).ToArray();
        var e = Assert.Throws<ImagesException>(() => LayerApplier.Apply(new MemoryStream(tar[..1000]), _target.Path));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Non_utf8_names_are_refused_not_rewritten()
    {
        var tar = new MemoryStream();
        var writer = new LayerTarWriter(tar);
        writer.WriteEntry(new TarHeader { Name = "placeholder", Kind = TarEntryKind.Fifo, Mode = 0x1A4 });
        writer.Finish();
        byte[] bytes = tar.ToArray();
        bytes[0] = 0xff; // the name becomes "\xFFlaceholder"; fix the checksum
        Encoding.ASCII.GetBytes("        ").CopyTo(bytes, 148);
        long sum = bytes.Take(512).Sum(b => (long)b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(bytes, 148);

        var e = Assert.Throws<ImagesException>(() => LayerApplier.Apply(new MemoryStream(bytes), _target.Path));
        Assert.Contains("UTF-8", e.Message);
    }
}
