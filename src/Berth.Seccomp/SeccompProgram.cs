using System.Runtime.InteropServices;
using Berth.Seccomp.Bpf;

namespace Berth.Seccomp;

/// <summary>
/// A compiled filter, ready for the container's child to load with
/// <c>seccomp(SECCOMP_SET_MODE_FILTER, Flags, &amp;(struct sock_fprog){ Filter.Length / 8, Filter })</c>
/// (or <c>prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, …)</c> when <see cref="Flags"/> is 0).
/// </summary>
public sealed class SeccompProgram
{
    /// <summary>SECCOMP_FILTER_FLAG_* bits (linux/seccomp.h).</summary>
    public const uint FlagTsync = 1, FlagLog = 2, FlagSpecAllow = 4, FlagNewListener = 8, FlagTsyncEsrch = 16,
        FlagWaitKillableRecv = 32;

    internal SeccompProgram(SockFilter[] instructions, uint flags, IReadOnlyList<string> skippedArchitectures)
    {
        Filter = MemoryMarshal.AsBytes(instructions.AsSpan()).ToArray();
        Flags = flags;
        SkippedArchitectures = skippedArchitectures;
    }

    /// <summary>The <c>struct sock_filter[]</c>, 8 bytes per instruction in host byte order.</summary>
    public byte[] Filter { get; }

    /// <summary>The flags argument of seccomp(2).</summary>
    public uint Flags { get; }

    /// <summary>
    /// A rule returns SCMP_ACT_NOTIFY: <see cref="Flags"/> holds SECCOMP_FILTER_FLAG_NEW_LISTENER, seccomp(2) returns the
    /// listener fd, and the runtime hands it to the agent at <c>linux.seccomp.listenerPath</c>.
    /// </summary>
    public bool NeedsListener => (Flags & FlagNewListener) != 0;

    public int InstructionCount => Filter.Length / 8;

    public ReadOnlySpan<SockFilter> Instructions => MemoryMarshal.Cast<byte, SockFilter>(Filter);

    /// <summary>Architectures the section lists that Berth has no syscall table for; their processes get the bad-arch action (KILL_THREAD).</summary>
    public IReadOnlyList<string> SkippedArchitectures { get; }
}
