namespace Berth.Tests.Shared;

/// <summary>A /tmp/berth-test-* directory removed (recursively, without following symlinks) on Dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory(string? purpose = null)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(),
            $"berth-test-{purpose ?? "tmp"}-{Guid.NewGuid().ToString("N")[..12]}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public string CreateSubdirectory(string name) => Directory.CreateDirectory(Combine(name)).FullName;

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}
