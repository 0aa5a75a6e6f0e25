using System.Text;

namespace Berth.Network.State;

/// <summary>Crash-safe file replacement: write a temp file in the same directory, fsync it, rename over, fsync the directory.</summary>
internal static class AtomicFile
{
    public static void Write(string path, string content)
    {
        var directory = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.None))
            {
                stream.Write(Encoding.UTF8.GetBytes(content));
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            SyncDirectory(directory);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    public static void Delete(string path)
    {
        if (!File.Exists(path)) return;
        File.Delete(path);
        SyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>Removes temp files a crash left between create and rename.</summary>
    public static void RemoveLeftovers(string directory)
    {
        if (!Directory.Exists(directory)) return;
        foreach (var f in Directory.EnumerateFiles(directory, ".*.tmp")) File.Delete(f);
    }

    private static void SyncDirectory(string directory)
    {
        // The rename is durable only once the directory entry is: open the directory read-only and fsync it.
        Interop.Libc.FsyncDirectory(directory);
    }
}
