using Berth.Cgroups.Interop;
using Microsoft.Win32.SafeHandles;

namespace Berth.Cgroups.V2;

/// <summary>
/// cgroup v2 OOM notification: inotify on memory.events, reporting when its oom_kill count
/// goes above the last one seen (the count at creation to start with). The kernel sends
/// IN_MODIFY when the file's figures change and IN_IGNORED when the group is removed.
/// A second descriptor, an eventfd signalled by the cancellation token, makes the wait cancellable.
/// </summary>
internal sealed class OomWatcher : IOomWatcher
{
    private readonly string _path;
    private readonly SafeFileHandle _inotify;
    private readonly SafeFileHandle _cancel;
    private ulong _seen;

    public OomWatcher(string path)
    {
        _path = path;
        _inotify = Libc.InotifyInit();
        try
        {
            Libc.InotifyAddWatch(_inotify, Path.Combine(path, "memory.events"), Libc.IN_MODIFY | Libc.IN_DELETE_SELF);
            _cancel = Libc.EventFd();
            _seen = MemoryController.OomKillCount(path);
        }
        catch
        {
            _inotify.Dispose();
            _cancel?.Dispose();
            throw;
        }
    }

    public bool WaitForOom(CancellationToken cancellationToken = default)
    {
        using var registration = cancellationToken.Register(() => Libc.SignalEventFd(_cancel));
        Span<byte> buffer = stackalloc byte[4096];
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = CurrentCount();
            if (count is null)
            {
                return false;
            }
            if (count > _seen)
            {
                _seen = count.Value;
                return true;
            }
            if (Libc.PollReadable([_inotify, _cancel], -1) != 0)
            {
                // Drain the cancel signal so that the next wait starts clean.
                Libc.Read(_cancel, buffer[..8], "cancel eventfd");
                continue;
            }
            Libc.Read(_inotify, buffer, "inotify memory.events");
        }
    }

    private ulong? CurrentCount()
    {
        try
        {
            return MemoryController.OomKillCount(_path);
        }
        catch (CgroupException e) when (e.Errno == CgroupFs.ENOENT || !Directory.Exists(_path))
        {
            return null;
        }
    }

    public void Dispose()
    {
        _inotify.Dispose();
        _cancel.Dispose();
    }
}
