namespace Berth.Daemon.Engine;

/// <summary>
/// The daemon's crash-safe file writes (ARCHITECTURE: any write that must survive a crash is
/// atomic): a temp file written and fsynced, renamed over the target, the directory fsynced; a
/// crash leaves the old or the new file, never half of one, and at worst a stale <c>.tmp</c>
/// that the owner's load removes.
/// </summary>
internal static class DurableFile
{
    /// <param name="durable">
    /// false: atomic but not fsynced, for states that matter only while the machine stays up (a
    /// crash of the process keeps the page cache; a power loss ends every container anyway).
    /// </param>
    public static void Write(string path, ReadOnlySpan<byte> bytes, bool durable = true)
    {
        string temp = path + ".tmp";
        using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            f.Write(bytes);
            if (durable) f.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        if (durable) FsyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>
    /// Removes a record directory: the record file first (fsynced away, so a crash midway leaves a
    /// directory without a record, which the owner's next load removes), then the rest.
    /// </summary>
    public static void DeleteRecordDirectory(string dir, string recordFile, bool durable = true)
    {
        string path = Path.Combine(dir, recordFile);
        if (File.Exists(path))
        {
            File.Delete(path);
            if (durable) FsyncDirectory(dir);
        }
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    /// <summary>fsync of a directory, so that a rename or unlink in it is durable (best effort: a missing directory is no error).</summary>
    public static void FsyncDirectory(string dir)
    {
        int fd = Interop.open_fd(dir, Interop.O_RDONLY | Interop.O_DIRECTORY | Interop.O_CLOEXEC, 0);
        if (fd < 0) return;
        Interop.fsync(fd);
        Interop.close(fd);
    }
}
