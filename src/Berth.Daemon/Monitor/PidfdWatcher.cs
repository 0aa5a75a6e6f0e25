namespace Berth.Daemon.Monitor;

/// <summary>One background thread polls every pidfd that is waited on, plus an eventfd that wakes it
/// when the set changes. Only this thread closes the pidfds, so a descriptor is never closed while
/// poll(2) still watches it (which could then watch a recycled descriptor number).</summary>
internal sealed class PidfdWatcher
{
    public static readonly PidfdWatcher Shared = new();

    private sealed class Wait(int fd, TaskCompletionSource done)
    {
        public readonly int Fd = fd;
        public readonly TaskCompletionSource Done = done;
        public volatile bool Cancelled;
        public CancellationTokenRegistration Registration;
    }

    private readonly Lock _gate = new();
    private readonly List<Wait> _waits = [];
    private int _wakeFd = -1;
    private Thread? _thread;

    public Task WaitAsync(int pidfd, CancellationToken ct)
    {
        var wait = new Wait(pidfd, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_gate)
        {
            if (_thread is null)
            {
                _wakeFd = MonitorInterop.eventfd(0, MonitorInterop.EFD_CLOEXEC | MonitorInterop.EFD_NONBLOCK);
                if (_wakeFd < 0) throw new IOException($"eventfd: {MonitorInterop.Describe(MonitorInterop.LastErrno)}");
                _thread = new Thread(Run) { IsBackground = true, Name = "berth pidfd watcher" };
                _thread.Start();
            }
            _waits.Add(wait);
        }
        if (ct.CanBeCanceled)
            wait.Registration = ct.Register(() =>
            {
                wait.Cancelled = true;
                wait.Done.TrySetCanceled(ct);
                Wake();
            });
        Wake();
        return wait.Done.Task;
    }

    private unsafe void Wake()
    {
        ulong one = 1;
        MonitorInterop.write(_wakeFd, &one, sizeof(ulong));
    }

    private unsafe void Run()
    {
        var ready = new List<Wait>();
        while (true)
        {
            Wait[] snapshot;
            lock (_gate) snapshot = [.. _waits];
            var fds = new MonitorInterop.PollFd[snapshot.Length + 1];
            fds[0] = new MonitorInterop.PollFd { Fd = _wakeFd, Events = MonitorInterop.POLLIN };
            for (int i = 0; i < snapshot.Length; i++) fds[i + 1] = new MonitorInterop.PollFd { Fd = snapshot[i].Fd, Events = MonitorInterop.POLLIN };
            int r;
            fixed (MonitorInterop.PollFd* p = fds) r = MonitorInterop.poll(p, (nuint)fds.Length, -1);
            if (r < 0) continue;   // EINTR
            if (fds[0].Revents != 0)
            {
                ulong value;
                MonitorInterop.read(_wakeFd, &value, sizeof(ulong));
            }
            ready.Clear();
            for (int i = 0; i < snapshot.Length; i++)
                if (fds[i + 1].Revents != 0 || snapshot[i].Cancelled) ready.Add(snapshot[i]);
            if (ready.Count == 0) continue;
            lock (_gate) foreach (Wait w in ready) _waits.Remove(w);
            foreach (Wait w in ready)
            {
                MonitorInterop.close(w.Fd);
                w.Registration.Dispose();
                w.Done.TrySetResult();
            }
        }
    }
}
