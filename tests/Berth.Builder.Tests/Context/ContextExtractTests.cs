using System.Formats.Tar;
using System.Text;
using Berth.Builder.Context;

namespace Berth.Builder.Tests.Context;

/// <summary>
/// The context tar as clients send it. The 20.10 docker client's <c>build -f - DIR</c> (DIR with a
/// .dockerignore) ends its stream right after the last file's data, without the padding and the
/// end-of-archive blocks; Go's archive/tar (dockerd) reads that as the end, so berthd must too, but
/// a stream cut inside a file's data or a header is still a broken archive.
/// </summary>
public sealed class ContextExtractTests : IDisposable
{
    private readonly DirectoryInfo _temp = Directory.CreateTempSubdirectory("berth-context-test-");

    public void Dispose() => _temp.Delete(recursive: true);

    private const string Dockerfile = "FROM busybox\nRUN true\n";
    private const string Last = "the last file, no padding after its data\n";

    /// <summary>A ustar archive of a Dockerfile and <see cref="Last"/>, with where the last file's data ends.</summary>
    private static (byte[] Tar, int LastDataEnd) Archive()
    {
        var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "Dockerfile") { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(Dockerfile)) });
            writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, ".dockerignore.last") { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(Last)) });
        }
        // Dockerfile: header + one data block; the last file: header + its data.
        return (tar.ToArray(), 512 + 512 + 512 + Encoding.UTF8.GetByteCount(Last));
    }

    private BuildContext Extract(byte[] tar, int length)
        => BuildContext.Extract(new MemoryStream(tar, 0, length), _temp.FullName, "Dockerfile", CancellationToken.None);

    [Fact]
    public void A_stream_that_ends_after_the_last_files_data_is_the_end_of_the_archive()
    {
        (byte[] tar, int dataEnd) = Archive();
        foreach (int length in new[] { dataEnd, dataEnd + 10, 2048, tar.Length })
        {
            using BuildContext context = Extract(tar, length);
            Assert.Equal(Dockerfile, context.DockerfileText);
            Assert.Equal(Last, File.ReadAllText(Path.Combine(context.Root, ".dockerignore.last")));
        }
    }

    [Fact]
    public void A_stream_cut_inside_a_files_data_or_a_header_is_refused()
    {
        (byte[] tar, int dataEnd) = Archive();
        foreach (int length in new[] { dataEnd - 1, 1024 + 100, 100, 520 })
        {
            Exception? e = Record.Exception(() => Extract(tar, length).Dispose());
            Assert.True(e is BuildException { Kind: BuildErrorKind.InvalidArgument } && e.Message.Contains("not a valid tar archive"), $"cut at {length}: {e?.ToString() ?? "accepted"}");
        }
        Assert.Empty(_temp.EnumerateFileSystemInfos());
    }
}
