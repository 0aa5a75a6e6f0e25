using Berth.Daemon.Configuration;
using Microsoft.Win32.SafeHandles;

namespace Berth.Daemon.Hosting;

/// <summary>
/// An exclusive flock(2) on <c>&lt;data-root&gt;/berthd.lock</c>, held for the daemon's life: a
/// second berthd on the same data root is refused. The kernel drops the lock when the process
/// dies, so a crash never leaves a stale lock behind (unlike a PID file).
/// </summary>
public sealed class DataRootLock : IDisposable
{
    private readonly SafeFileHandle _handle;

    private DataRootLock(SafeFileHandle handle, string path)
    {
        _handle = handle;
        Path = path;
    }

    public string Path { get; }

    public static DataRootLock Acquire(string dataRoot)
    {
        string path = System.IO.Path.Combine(dataRoot, "berthd.lock");
        // open(2) directly: .NET's FileStream takes its own flock to emulate FileShare, which would
        // collide with this one and hide the reason.
        SafeFileHandle handle = Interop.open(path, Interop.O_RDWR | Interop.O_CREAT | Interop.O_CLOEXEC, 0x180 /* 0600 */);
        if (handle.IsInvalid)
        {
            int errno = Interop.LastErrno;
            handle.Dispose();
            throw new DaemonConfigException($"open `{path}`: {Interop.Describe(errno)}");
        }
        // A daemon killed with SIGKILL can leave the lock held for a moment by a child it was forking
        // (the lock belongs to the open file description until the child's exec closes it): retry
        // briefly before deciding that another daemon runs.
        var deadline = DateTime.UtcNow.AddSeconds(2);
        while (Interop.flock(handle, Interop.LOCK_EX | Interop.LOCK_NB) < 0)
        {
            int errno = Interop.LastErrno;
            if (errno == Interop.EINTR) continue;
            if (errno == Interop.EAGAIN && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
                continue;
            }
            handle.Dispose();
            if (errno == Interop.EAGAIN)
                throw new DaemonConfigException($"another berthd is running on data root `{dataRoot}` (it holds the lock on `{path}`)");
            throw new DaemonConfigException($"flock `{path}`: {Interop.Describe(errno)}");
        }
        return new DataRootLock(handle, path);
    }

    public void Dispose() => _handle.Dispose();
}
