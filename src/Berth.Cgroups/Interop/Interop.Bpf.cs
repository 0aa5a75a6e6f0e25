using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Berth.Cgroups.Interop;

/// <summary>
/// bpf(2) for cgroup device programs: load, attach, query, detach. The <c>union bpf_attr</c>
/// layouts are written field by field into a zeroed buffer (the kernel refuses non-zero bytes
/// past the fields it knows, so the buffer is exactly as large as needed).
/// </summary>
internal static unsafe class Bpf
{
    internal const int BPF_PROG_LOAD = 5;
    internal const int BPF_PROG_ATTACH = 8;
    internal const int BPF_PROG_DETACH = 9;
    internal const int BPF_PROG_GET_FD_BY_ID = 13;
    internal const int BPF_PROG_QUERY = 16;
    internal const uint BPF_PROG_TYPE_CGROUP_DEVICE = 15;
    internal const uint BPF_CGROUP_DEVICE = 6;
    internal const uint BPF_F_ALLOW_MULTI = 2;

    private static long SyscallNumber => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        var a => throw new CgroupException($"bpf: unsupported architecture {a}", CgroupErrorKind.Unavailable),
    };

    private static long Call(int cmd, byte* attr, int size) => Libc.Syscall(SyscallNumber, cmd, attr, size);

    /// <summary>Loads a BPF_PROG_TYPE_CGROUP_DEVICE program; the verifier log is part of the error.</summary>
    internal static SafeFileHandle LoadDeviceProgram(ReadOnlySpan<byte> instructions, string license = "Apache-2.0")
    {
        var licenseBytes = System.Text.Encoding.ASCII.GetBytes(license + "\0");
        var log = new byte[65536];
        var attr = stackalloc byte[72];
        new Span<byte>(attr, 72).Clear();
        fixed (byte* insns = instructions)
        fixed (byte* lic = licenseBytes)
        fixed (byte* logBuf = log)
        {
            *(uint*)(attr + 0) = BPF_PROG_TYPE_CGROUP_DEVICE;
            *(uint*)(attr + 4) = (uint)(instructions.Length / 8);
            *(ulong*)(attr + 8) = (ulong)insns;
            *(ulong*)(attr + 16) = (ulong)lic;
            var fd = Call(BPF_PROG_LOAD, attr, 72);
            if (fd >= 0)
            {
                return new SafeFileHandle((nint)fd, ownsHandle: true);
            }
            // Retry with the verifier's log so the error says why.
            var errno = Marshal.GetLastPInvokeError();
            *(uint*)(attr + 24) = 1;
            *(uint*)(attr + 28) = (uint)log.Length;
            *(ulong*)(attr + 32) = (ulong)logBuf;
            Call(BPF_PROG_LOAD, attr, 72);
            var text = System.Text.Encoding.ASCII.GetString(log).TrimEnd('\0').Trim();
            throw new CgroupException($"bpf(BPF_PROG_LOAD) device program: {Marshal.GetPInvokeErrorMessage(errno)}{(text.Length > 0 ? "; verifier: " + text : "")}",
                errno is 1 or 38 ? CgroupErrorKind.Unavailable : CgroupErrorKind.Io, errno);
        }
    }

    internal static void Attach(SafeFileHandle cgroup, SafeFileHandle program, string path)
    {
        var attr = stackalloc byte[20];
        new Span<byte>(attr, 20).Clear();
        *(uint*)(attr + 0) = (uint)cgroup.DangerousGetHandle();
        *(uint*)(attr + 4) = (uint)program.DangerousGetHandle();
        *(uint*)(attr + 8) = BPF_CGROUP_DEVICE;
        *(uint*)(attr + 12) = BPF_F_ALLOW_MULTI;
        if (Call(BPF_PROG_ATTACH, attr, 20) < 0)
        {
            throw Libc.Error($"bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE) to {path}", path);
        }
    }

    internal static void Detach(SafeFileHandle cgroup, SafeFileHandle program, string path)
    {
        var attr = stackalloc byte[20];
        new Span<byte>(attr, 20).Clear();
        *(uint*)(attr + 0) = (uint)cgroup.DangerousGetHandle();
        *(uint*)(attr + 4) = (uint)program.DangerousGetHandle();
        *(uint*)(attr + 8) = BPF_CGROUP_DEVICE;
        if (Call(BPF_PROG_DETACH, attr, 20) < 0)
        {
            throw Libc.Error($"bpf(BPF_PROG_DETACH, BPF_CGROUP_DEVICE) from {path}", path);
        }
    }

    /// <summary>The ids of the device programs attached directly to the group.</summary>
    internal static uint[] QueryDevicePrograms(SafeFileHandle cgroup, string path)
    {
        var ids = new uint[64];
        var attr = stackalloc byte[40];
        new Span<byte>(attr, 40).Clear();
        fixed (uint* idp = ids)
        {
            *(uint*)(attr + 0) = (uint)cgroup.DangerousGetHandle();
            *(uint*)(attr + 4) = BPF_CGROUP_DEVICE;
            *(ulong*)(attr + 16) = (ulong)idp;
            *(uint*)(attr + 24) = (uint)ids.Length;
            if (Call(BPF_PROG_QUERY, attr, 40) < 0)
            {
                throw Libc.Error($"bpf(BPF_PROG_QUERY, BPF_CGROUP_DEVICE) on {path}", path);
            }
            return ids[..(int)Math.Min(*(uint*)(attr + 24), (uint)ids.Length)];
        }
    }

    internal static SafeFileHandle ProgramById(uint id)
    {
        var attr = stackalloc byte[12];
        new Span<byte>(attr, 12).Clear();
        *(uint*)attr = id;
        var fd = Call(BPF_PROG_GET_FD_BY_ID, attr, 12);
        return fd < 0 ? throw Libc.Error($"bpf(BPF_PROG_GET_FD_BY_ID, {id})") : new SafeFileHandle((nint)fd, ownsHandle: true);
    }
}
