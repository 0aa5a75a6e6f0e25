using System.Text;

namespace Berth.Network.State;

/// <summary>
/// Crash-safe file replacement: write a temp file in the same directory, fsync it, rename over,
/// fsync the directory. With <c>durable: false</c> the two fsyncs are left out: the replacement is
/// still atomic for any reader and survives a crash of berthd (the page cache outlives the
/// process), only not a crash of the machine — right for state that a reboot makes void anyway
/// (endpoints and the addresses they hold: every veth and container is gone after a reboot, and
/// the start-up reconcile frees what they held).
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, string content, bool durable = true)
    {
        var directory = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.None))
            {
                stream.Write(Encoding.UTF8.GetBytes(content));
                stream.Flush(flushToDisk: durable);
            }
            File.Move(temp, path, overwrite: true);
            if (durable) SyncDirectory(directory);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    public static void Delete(string path, bool durable = true)
    {
        if (!File.Exists(path)) return;
        File.Delete(path);
        if (durable) SyncDirectory(Path.GetDirectoryName(path)!);
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
