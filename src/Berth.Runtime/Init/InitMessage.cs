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
}

/// <summary>Reads the child's records (struct berth_report) from the parent's end of the report socket.</summary>
public static class InitReport
{
    /// <summary>The next record, or null at end of file (the child exec'd or died). Throws <paramref name="timeoutMessage"/> past the deadline.</summary>
    public static (InitMessage Kind, int OpIndex, long Value)? Read(int fd, DateTime deadline, string timeoutMessage)
    {
        Span<byte> buffer = stackalloc byte[16];
        while (true)
        {
            var remaining = (int)Math.Max(0, (deadline - DateTime.UtcNow).TotalMilliseconds);
            Span<LibC.PollFd> poll = [new LibC.PollFd { Fd = fd, Events = LibC.POLLIN }];
            var ready = LibC.poll(poll, 1, remaining);
            if (ready < 0 && LibC.Errno == Sys.EINTR) continue;
            if (ready == 0) throw new RuntimeException(timeoutMessage);
            var n = LibC.read(fd, buffer, 16);
            if (n < 0 && LibC.Errno == Sys.EINTR) continue;
            if (n <= 0) return null;
            return ((InitMessage)BinaryPrimitives.ReadInt32LittleEndian(buffer),
                BinaryPrimitives.ReadInt32LittleEndian(buffer[4..]), BinaryPrimitives.ReadInt64LittleEndian(buffer[8..]));
        }
    }
}
