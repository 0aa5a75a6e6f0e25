namespace Berth.Images.Tests.Layers;

/// <summary>
/// A directory outside the apply target holding a file; hostile-layer tests check that neither
/// changes (content, mode, mtime, the set of names) whatever the layer tried.
/// </summary>
internal sealed class Canary : IDisposable
{
    private readonly TempDirectory _dir = new("canary");
    private readonly DateTime _mtime;
    private readonly DateTime _dirMtime;

    public Canary()
    {
        File.WriteAllText(FilePath, "original");
        File.SetUnixFileMode(FilePath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetLastWriteTimeUtc(FilePath, new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        File.SetUnixFileMode(Directory, (UnixFileMode)0x1ED);
        Directory_SetTime();
        _mtime = File.GetLastWriteTimeUtc(FilePath);
        _dirMtime = System.IO.Directory.GetLastWriteTimeUtc(Directory);
    }

    private void Directory_SetTime() => System.IO.Directory.SetLastWriteTimeUtc(Directory, new DateTime(2002, 2, 2, 0, 0, 0, DateTimeKind.Utc));

    public string Directory => _dir.Path;
    public string FilePath => Path.Combine(_dir.Path, "canary");

    public void AssertUntouched()
    {
        Assert.Equal(["canary"], System.IO.Directory.EnumerateFileSystemEntries(Directory).Select(Path.GetFileName));
        Assert.Equal("original", File.ReadAllText(FilePath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(FilePath));
        Assert.Equal(_mtime, File.GetLastWriteTimeUtc(FilePath));
        Assert.Equal((UnixFileMode)0x1ED, File.GetUnixFileMode(Directory));
        Assert.Equal(_dirMtime, System.IO.Directory.GetLastWriteTimeUtc(Directory));
        Assert.Equal(1, (int)Interop.LStat(FilePath).Nlink);
    }

    public void Dispose() => _dir.Dispose();
}
