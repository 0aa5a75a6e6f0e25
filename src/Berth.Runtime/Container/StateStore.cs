using Berth.Oci;
using Berth.Runtime.Native;

namespace Berth.Runtime.Container;

/// <summary>
/// The runtime's state directory (--root): one directory per container holding
/// state.json (written atomically: temp file, fsync, rename) and, until start, exec.fifo.
/// </summary>
public sealed class StateStore(string root)
{
    public const string StateFile = "state.json";
    public const string ExecFifo = "exec.fifo";

    public string Root { get; } = Path.GetFullPath(root);

    public string DirectoryOf(string id) => Path.Combine(Root, ValidateId(id));

    /// <summary>runc's rule: an id is letters, digits and _ + - . (and not . or ..).</summary>
    public static string ValidateId(string id)
    {
        if (string.IsNullOrEmpty(id) || id is "." or ".." || id.Length > 1024
            || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '+' or '-' or '.'))
            throw new RuntimeException($"invalid container id \"{id}\": use letters, digits and _ + - . only");
        return id;
    }

    /// <summary>Makes the container's directory; fails if the id is taken.</summary>
    public string CreateDirectory(string id)
    {
        Directory.CreateDirectory(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (Rootless.IsUnprivileged) SecureRoot();
        var dir = DirectoryOf(id);
        try
        {
            // Directory.CreateDirectory succeeds on an existing directory: mkdir(2) tells us who won.
            if (LibC.mkdir(dir, 0x1c0) != 0)
            {
                var errno = LibC.Errno;
                if (errno == Sys.EEXIST) throw new RuntimeException($"container with id \"{id}\" already exists");
                throw LibC.Error($"mkdir {dir}", errno);
            }
        }
        catch (RuntimeException) { throw; }
        return dir;
    }

    /// <summary>
    /// An unprivileged user's root (often below /tmp) must be its own and private: chmod 0700
    /// succeeds only for the owner, so it checks both.
    /// </summary>
    void SecureRoot()
    {
        if (new DirectoryInfo(Root).LinkTarget is not null)
            throw new RuntimeException($"state directory {Root} is a symbolic link: choose another --root");
        try
        {
            if (File.GetUnixFileMode(Root) != (UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute))
                File.SetUnixFileMode(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch (UnauthorizedAccessException)
        {
            throw new RuntimeException($"state directory {Root} is not owned by uid {Rootless.EffectiveUid}: refusing to keep container state there; choose another --root");
        }
    }

    public bool Exists(string id) => File.Exists(Path.Combine(DirectoryOf(id), StateFile));

    public ContainerRecord Load(string id)
    {
        var file = Path.Combine(DirectoryOf(id), StateFile);
        byte[] json;
        try { json = File.ReadAllBytes(file); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { throw new ContainerNotFoundException(id); }
        try { return ContainerRecordJson.Read(json, file); }
        catch (SpecException e) { throw new RuntimeException($"corrupt state: {e.Message}"); }
    }

    public void Save(ContainerRecord record)
    {
        var dir = DirectoryOf(record.Id);
        AtomicFile.Write(Path.Combine(dir, StateFile), ContainerRecordJson.Write(record));
    }

    public void Remove(string id)
    {
        var dir = DirectoryOf(id);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    public IEnumerable<string> List() =>
        Directory.Exists(Root)
            ? Directory.EnumerateDirectories(Root).Select(Path.GetFileName).Where(id => File.Exists(Path.Combine(Root, id!, StateFile))).Order()!
            : [];
}

public static class AtomicFile
{
    /// <summary>
    /// Temp file in the same directory, then rename: readers see the old or the new content,
    /// never a part. Not fsynced, as runc does not: this is the state of processes, kept where
    /// a reboot ends them anyway (/run is a tmpfs), and an fsync on a disk-backed --root cost
    /// ~0.5 ms per save.
    /// </summary>
    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        var fd = LibC.open(temp, Sys.O_WRONLY | Sys.O_CREAT | Sys.O_TRUNC | Sys.O_CLOEXEC | Sys.O_NOFOLLOW, 0x1a4);
        if (fd < 0) throw LibC.Error($"open {temp}", LibC.Errno);
        try
        {
            while (!content.IsEmpty)
            {
                var n = LibC.write(fd, content, content.Length);
                if (n < 0 && LibC.Errno == Sys.EINTR) continue;
                if (n < 0) throw LibC.Error($"write {temp}", LibC.Errno);
                content = content[(int)n..];
            }
        }
        catch
        {
            LibC.close(fd);
            File.Delete(temp);
            throw;
        }
        if (LibC.close(fd) != 0) throw LibC.Error($"close {temp}", LibC.Errno);
        File.Move(temp, path, overwrite: true);
    }
}
