using Berth.Daemon.Containers;
using Microsoft.Win32.SafeHandles;
using Native = Berth.Daemon.Containers.ContainerFiles.Native;

namespace Berth.Daemon.Volumes;

/// <summary>
/// Docker's copy-up: when an empty volume is first mounted at a path where the image has content,
/// that content is copied into the volume (directories, files, symlinks as links; owner, mode and
/// modification times kept; device nodes, fifos and sockets left out), and the volume's root takes
/// the owner and mode of the image's directory.
/// <para>
/// Safety: the destination is resolved inside the container's rootfs with openat2
/// RESOLVE_IN_ROOT, so a symlink in the image cannot point the copy at the host; below it nothing
/// is followed (symlinks are copied as links). The caller runs this while it holds the volume's
/// mount lock and before any container has it mounted, so no container process can swap a
/// directory being filled for a symlink.
/// </para>
/// </summary>
public static class VolumeCopyUp
{
    /// <returns>True when something was copied.</returns>
    public static bool Copy(string rootfs, string destination, string volumeDirectory)
    {
        if (Directory.EnumerateFileSystemEntries(volumeDirectory).Any()) return false;
        string rootPath = Path.GetFullPath(rootfs);
        using SafeFileHandle root = Native.Open(rootPath, Native.O_PATH | Native.O_DIRECTORY);
        string relative = string.Join('/', destination.Split('/').Where(p => p is not ("" or ".")));
        if (relative.Length == 0) return false;
        using SafeFileHandle? dir = Native.TryOpenAt2(root, relative, Native.O_PATH | Native.O_DIRECTORY,
            Native.RESOLVE_IN_ROOT | Native.RESOLVE_NO_MAGICLINKS, out _);
        if (dir is null) return false; // nothing there (or not a directory): nothing to copy
        string? source = Native.ReadLink(Native.ProcFdPath(dir));
        string? realRoot = Native.ReadLink(Native.ProcFdPath(root));
        if (source is null || realRoot is null || !source.StartsWith(realRoot + "/", StringComparison.Ordinal)) return false;
        CopyOwnerAndMode(source, volumeDirectory);
        return CopyTree(source, volumeDirectory);
    }

    private static readonly EnumerationOptions All = new() { AttributesToSkip = 0, RecurseSubdirectories = false, IgnoreInaccessible = false };

    private static bool CopyTree(string source, string target)
    {
        bool any = false;
        foreach (string from in Directory.EnumerateFileSystemEntries(source, "*", All))
        {
            string to = Path.Combine(target, Path.GetFileName(from));
            switch (Interop.FileType(from))
            {
                case 0x4000: // directory
                    Directory.CreateDirectory(to);
                    CopyTree(from, to);
                    CopyOwnerAndMode(from, to);
                    Directory.SetLastWriteTimeUtc(to, Directory.GetLastWriteTimeUtc(from));
                    break;
                case 0x8000: // regular file
                    File.Copy(from, to);
                    CopyOwnerAndMode(from, to);
                    File.SetLastWriteTimeUtc(to, File.GetLastWriteTimeUtc(from));
                    break;
                case 0xA000: // symlink: the link itself, never what it points at
                    File.CreateSymbolicLink(to, new FileInfo(from).LinkTarget!);
                    if (Interop.Owner(from) is { } owner) Interop.lchown(to, owner.Uid, owner.Gid);
                    break;
                default:
                    continue; // devices, fifos, sockets: not content a volume is seeded with
            }
            any = true;
        }
        return any;
    }

    /// <summary>Owner first: chown clears set-id bits, which the mode then puts back.</summary>
    private static void CopyOwnerAndMode(string from, string to)
    {
        if (Interop.Owner(from) is { } owner && Interop.lchown(to, owner.Uid, owner.Gid) < 0)
            throw new IOException($"lchown {to}: {Interop.Describe(Interop.LastErrno)}");
        File.SetUnixFileMode(to, File.GetUnixFileMode(from));
    }
}
