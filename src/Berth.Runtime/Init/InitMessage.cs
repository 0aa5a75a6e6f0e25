using System.Buffers.Binary;
using Berth.Runtime.Native;

namespace Berth.Runtime.Init;

/// <summary>
/// The records the child writes to the report socket (16 bytes: kind, op index, value),
/// mirrored by struct berth_report in native/executor/berth_exec.c.
/// </summary>
public enum InitMessage
{
    /// <summary>An op failed: value is the errno. Written by the executor itself.</summary>
    Failure = 1,
    /// <summary>The child waits for the parent to write id maps, join the cgroup, set oom_score_adj.</summary>
    ParentSetup = 2,
    /// <summary>The intermediate process forked the container init: value is its pid.</summary>
    InitPid = 3,
    /// <summary>The mounts are done, pivot_root is next: the parent runs createRuntime/createContainer hooks.</summary>
    CreateHooks = 4,
    /// <summary>The container is set up and waits for start.</summary>
    Ready = 5,
    /// <summary>
    /// The seccomp filter is loaded and has a listener, whose fd comes with this record
    /// (SCM_RIGHTS): the parent passes it on to linux.seccomp.listenerPath, then answers a byte.
    /// </summary>
    SeccompListener = 6,
}

/// <summary>Reads the child's records (struct berth_report) from the parent's end of the report socket.</summary>
public static class InitReport
{
    /// <summary>
    /// The next record and the fd that came with it (SCM_RIGHTS; -1 when none), or null at end
    /// of file (the child exec'd or died). Throws <paramref name="timeoutMessage"/> past the deadline.
    /// </summary>
    public static unsafe (InitMessage Kind, int OpIndex, long Value, int Fd)? Read(int fd, DateTime deadline, string timeoutMessage)
    {
        var buffer = stackalloc byte[16];
        var control = stackalloc byte[64];
        while (true)
        {
            var remaining = (int)Math.Max(0, (deadline - DateTime.UtcNow).TotalMilliseconds);
            Span<LibC.PollFd> poll = [new LibC.PollFd { Fd = fd, Events = LibC.POLLIN }];
            var ready = LibC.poll(poll, 1, remaining);
            if (ready < 0 && LibC.Errno == Sys.EINTR) continue;
            if (ready == 0) throw new RuntimeException(timeoutMessage);
            var iov = new LibC.IoVec { Base = (nint)buffer, Length = 16 };
            var message = new LibC.MsgHdr { Iov = (nint)(&iov), IovLength = 1, Control = (nint)control, ControlLength = 64 };
            var n = LibC.recvmsg(fd, ref message, 0x40000000 /* MSG_CMSG_CLOEXEC */);
            if (n < 0 && LibC.Errno == Sys.EINTR) continue;
            if (n <= 0) return null;
            // struct cmsghdr { size_t len; int level; int type; } then the fd: one SCM_RIGHTS fd at most.
            var passed = message.ControlLength >= 20 && *(int*)(control + 8) == 1 && *(int*)(control + 12) == 1 ? *(int*)(control + 16) : -1;
            var record = new ReadOnlySpan<byte>(buffer, 16);
            return ((InitMessage)BinaryPrimitives.ReadInt32LittleEndian(record),
                BinaryPrimitives.ReadInt32LittleEndian(record[4..]), BinaryPrimitives.ReadInt64LittleEndian(record[8..]), passed);
        }
    }
}
