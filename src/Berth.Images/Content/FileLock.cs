using Microsoft.Win32.SafeHandles;

namespace Berth.Images.Content;

/// <summary>
/// An exclusive flock(2) on a lock file that is unlinked on release. flock locks open file
/// descriptions, so it excludes writers in this process and in other processes alike.
/// Because the holder unlinks the file before unlocking, a waiter can end up holding a lock on an
/// unlinked inode; after locking it therefore checks that the path still names the inode it
/// locked, and starts over if not (the classic lock-file-with-unlink protocol).
/// </summary>
internal sealed class FileLock : IDisposable
{
    private readonly SafeFileHandle _fd;
    private readonly string _path;

    private FileLock(SafeFileHandle fd, string path)
    {
        _fd = fd;
        _path = path;
    }

    public static async Task<FileLock> AcquireAsync(string path, CancellationToken cancellationToken)
    {
        int delayMs = 2;
        while (true)
        {
            FileLock? held = TryAcquire(path);
            if (held is not null) return held;
            await Task.Delay(delayMs, cancellationToken).ConfigureAwait(false);
            delayMs = Math.Min(delayMs * 2, 50);
        }
    }

    /// <summary>Takes the lock if nobody holds it; null if it is held.</summary>
    public static FileLock? TryAcquire(string path)
    {
        while (true)
        {
            SafeFileHandle fd = Interop.Open(path, Interop.O_RDWR | Interop.O_CREAT | Interop.O_NOFOLLOW, 0x180 /* 0600 */);
            if (Interop.flock(fd, Interop.LOCK_EX | Interop.LOCK_NB) < 0)
            {
                int errno = Interop.LastErrno;
                fd.Dispose();
                if (errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR) return null;
                throw new NativeCallException(errno, "flock", path);
            }
            Interop.Statx locked = Interop.Stat(fd, path);
            Interop.Statx current;
            try
            {
                current = Interop.LStat(path);
            }
            catch (NativeCallException e) when (e.Errno == Interop.Errno.ENOENT)
            {
                fd.Dispose();
                continue; // the previous holder unlinked it after we opened it
            }
            if (current.Ino == locked.Ino && current.DevMajor == locked.DevMajor && current.DevMinor == locked.DevMinor)
                return new FileLock(fd, path);
            fd.Dispose();
        }
    }

    public void Dispose()
    {
        // Unlink while still holding the lock, then unlock: explicitly, since a child another thread is
        // forking may hold a copy of the descriptor until its exec, and the lock is the description's.
        File.Delete(_path);
        Interop.flock(_fd, Interop.LOCK_UN);
        _fd.Dispose();
    }
}
