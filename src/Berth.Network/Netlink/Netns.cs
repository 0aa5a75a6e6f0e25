using Berth.Network.Interop;

namespace Berth.Network.Netlink;

/// <summary>
/// Runs a short piece of work inside another network namespace.
///
/// setns(CLONE_NEWNET) changes only the calling thread. A pool thread must never carry a
/// foreign namespace back into the pool, so the work runs on a dedicated thread that we create,
/// switch, use and let die; it also switches back before returning, so that even a runtime that
/// reused the OS thread would see the original namespace. What the work creates — a netlink or
/// UDP socket, an open /proc/sys file — stays bound to the target namespace after the thread is
/// gone, which is how the rest of this library acts inside containers from any thread.
/// </summary>
public static class Netns
{
    public static T RunIn<T>(string netnsPath, string operation, Func<T> work)
    {
        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var target = Libc.OpenReadOnly(netnsPath, operation);
                using var original = Libc.OpenReadOnly("/proc/thread-self/ns/net", operation);
                var errno = Libc.SetNetns(target);
                if (errno != 0) throw new NetlinkException($"{operation}: setns {netnsPath}", errno);
                try
                {
                    result = work();
                }
                finally
                {
                    // If this fails the thread still ends right after, taking the namespace with it.
                    Libc.SetNetns(original);
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        }, maxStackSize: 256 * 1024) { IsBackground = true, Name = "berth-netns" };
        thread.Start();
        thread.Join();
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        return result!;
    }

    public static void RunIn(string netnsPath, string operation, Action work) =>
        RunIn<object?>(netnsPath, operation, () => { work(); return null; });

    /// <summary>Opens a namespace file (for IFLA_NET_NS_FD) as an owned, close-on-exec handle.</summary>
    public static Microsoft.Win32.SafeHandles.SafeFileHandle Open(string netnsPath) => Libc.OpenReadOnly(netnsPath, "open network namespace");
}
