using Microsoft.Win32.SafeHandles;

namespace Berth.Images.Engine;

/// <summary>
/// Reads small files of an image's root filesystem (/etc/passwd, /etc/group) without trusting it.
///
/// Security: the path is resolved by the kernel with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
/// on an fd of the rootfs, so every symlink — absolute or with `..` — is resolved as if the rootfs
/// were `/` (as Docker's FollowSymlinkInScope and runc's securejoin do): an /etc/passwd pointing at
/// /etc/shadow reads the image's own /etc/shadow, never the host's. The file is first opened O_PATH
/// and must be a regular file (a FIFO would block, a device node must not be opened); it is then
/// reopened for reading through its fd, so the inode checked is the inode read.
/// </summary>
internal static class RootfsFile
{
    /// <summary>Largest file read (a group file with many members is still far below).</summary>
    public const int MaxSize = 16 * 1024 * 1024;

    /// <summary>The file's bytes, or null when it does not exist (ENOENT, or a component is not a directory).</summary>
    public static byte[]? TryRead(string rootfs, string path)
    {
        using SafeFileHandle root = Interop.Open(Path.GetFullPath(rootfs), Interop.O_PATH | Interop.O_DIRECTORY);
        string relative = path.TrimStart('/');
        using SafeFileHandle? file = Interop.TryOpenAt2(root, relative, Interop.O_PATH,
            Interop.RESOLVE_IN_ROOT | Interop.RESOLVE_NO_MAGICLINKS, out int errno);
        if (file is null)
        {
            if (errno is Interop.Errno.ENOENT or Interop.Errno.ENOTDIR) return null;
            if (errno == Interop.Errno.ENOSYS)
                throw new ImagesException(ImagesErrorKind.Internal, "openat2(2) is not available: Linux 5.6 or later is required to read the image's files safely");
            throw new NativeCallException(errno, "openat2", path, $"in rootfs `{rootfs}`");
        }
        Interop.Statx st = Interop.Stat(file, path);
        if (st.Type != Interop.S_IFREG)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"`{path}` in the image's rootfs is not a regular file");
        if (st.Size > MaxSize)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"`{path}` in the image's rootfs is larger than {MaxSize} bytes");
        using SafeFileHandle data = Interop.Open(Interop.ProcFdPath(file), Interop.O_RDONLY | Interop.O_NOCTTY | Interop.O_NONBLOCK);
        using var stream = new FileStream(data, FileAccess.Read, bufferSize: 0);
        var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            if (buffer.Length + n > MaxSize)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"`{path}` in the image's rootfs is larger than {MaxSize} bytes");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }
}
