using System.Globalization;
using Berth.Cgroups.Interop;
using Microsoft.Win32.SafeHandles;

namespace Berth.Cgroups.V1;

/// <summary>
/// cgroup v1 OOM notification: an eventfd registered through cgroup.event_control on
/// memory.oom_control. The kernel adds to the eventfd on every OOM in the group, and also when
/// the group is removed — told apart by checking whether the group still exists, as runc does.
/// A second eventfd, signalled by the cancellation token, makes the wait cancellable.
/// </summary>
internal sealed class OomWatcher : IOomWatcher
{
    private readonly string _path;
    private readonly SafeFileHandle _event;
    private readonly SafeFileHandle _oomControl;
    private readonly SafeFileHandle _cancel;

    public OomWatcher(string memoryPath)
    {
        _path = memoryPath;
        _event = Libc.EventFd();
        try
        {
            _oomControl = Libc.Open(Path.Combine(memoryPath, MemoryController.OomControl), Libc.O_RDONLY);
            _cancel = Libc.EventFd();
            var registration = string.Create(CultureInfo.InvariantCulture, $"{_event.DangerousGetHandle()} {_oomControl.DangerousGetHandle()}");
            CgroupFs.Write(memoryPath, "cgroup.event_control", registration);
        }
        catch
        {
            _event.Dispose();
            _oomControl?.Dispose();
            _cancel?.Dispose();
            throw;
        }
    }

    public bool WaitForOom(CancellationToken cancellationToken = default)
    {
        using var registration = cancellationToken.Register(() => Libc.SignalEventFd(_cancel));
        Span<byte> counter = stackalloc byte[8];
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Libc.PollReadable([_event, _cancel], -1) == 0)
            {
                break;
            }
            // Drain the cancel signal so that the next wait starts clean.
            Libc.Read(_cancel, counter, "cancel eventfd");
        }
        Libc.Read(_event, counter, "OOM eventfd");
        return File.Exists(Path.Combine(_path, MemoryController.OomControl));
    }

    public void Dispose()
    {
        _event.Dispose();
        _oomControl.Dispose();
        _cancel.Dispose();
    }
}
