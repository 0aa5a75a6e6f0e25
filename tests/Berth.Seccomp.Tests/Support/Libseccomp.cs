using System.Runtime.InteropServices;
using Berth.Oci;
using Berth.Seccomp.Bpf;

namespace Berth.Seccomp.Tests.Support;

/// <summary>
/// The reference: libseccomp.so.2 compiling a section the way runc's libcontainer/seccomp does (native arch plus
/// the listed ones, rules equal to the default dropped, unknown names skipped, same-argument conditions split into
/// separate rules, binary tree optimisation above 32 rules), without runc's -ENOSYS stub.
/// </summary>
public static unsafe partial class Libseccomp
{
    private const string Lib = "libseccomp.so.2";

    public static bool IsAvailable { get; } = NativeLibrary.TryLoad(Lib, out _);

    [StructLayout(LayoutKind.Sequential)]
    private struct ScmpArgCmp { public uint Arg; public int Op; public ulong DatumA; public ulong DatumB; }

    [DllImport(Lib)] private static extern IntPtr seccomp_init(uint defaultAction);
    [DllImport(Lib)] private static extern void seccomp_release(IntPtr ctx);
    [DllImport(Lib)] private static extern int seccomp_arch_add(IntPtr ctx, uint archToken);
    [DllImport(Lib)] private static extern int seccomp_attr_set(IntPtr ctx, int attr, uint value);
    [DllImport(Lib)] private static extern int seccomp_rule_add_array(IntPtr ctx, uint action, int syscall, uint argCount, ScmpArgCmp* args);
    [DllImport(Lib)] private static extern int seccomp_export_bpf(IntPtr ctx, int fd);
    [DllImport(Lib, CharSet = CharSet.Ansi)] private static extern int seccomp_syscall_resolve_name(string name);
    [DllImport(Lib, CharSet = CharSet.Ansi)] private static extern int seccomp_syscall_resolve_name_arch(uint archToken, string name);
    [DllImport("libc", SetLastError = true)] private static extern int memfd_create(string name, uint flags);

    private const int AttrOptimize = 8;

    public static uint ArchToken(SeccompArch arch) => arch switch
    {
        SeccompArch.X32 => 62 | 0x40000000u,  // SCMP_ARCH_X32 is EM_X86_64|LE, without the 64-bit bit
        _ => arch.AuditArch(),
    };

    /// <summary>libseccomp's number for the syscall on an architecture, or null.</summary>
    public static int? Resolve(SeccompArch arch, string name)
    {
        var nr = seccomp_syscall_resolve_name_arch(ArchToken(arch), name);
        return nr < 0 ? null : nr;
    }

    public static SockFilter[] Compile(LinuxSeccomp seccomp, SeccompArch native)
    {
        var defaultAction = SeccompReturn.FromAction(seccomp.DefaultAction, seccomp.DefaultErrnoRet);
        var ctx = seccomp_init(defaultAction);
        if (ctx == IntPtr.Zero) throw new InvalidOperationException("seccomp_init failed");
        try
        {
            foreach (var name in seccomp.Architectures ?? [])
            {
                if (!SeccompArchitectures.TryParse(name, out var arch)) continue;
                var rc = seccomp_arch_add(ctx, ArchToken(arch));
                if (rc < 0 && rc != -17) throw new InvalidOperationException($"seccomp_arch_add({name}): {rc}");
            }
            var syscalls = seccomp.Syscalls ?? [];
            if (syscalls.Sum(s => s.Names.Count) > 32) Check(seccomp_attr_set(ctx, AttrOptimize, 2), "attr optimize");
            foreach (var syscall in syscalls)
            {
                var action = SeccompReturn.FromAction(syscall.Action, syscall.ErrnoRet);
                if (action == defaultAction) continue;
                var args = syscall.Args ?? [];
                var conditions = args.Select(a => new ScmpArgCmp { Arg = a.Index, Op = OpCode(a.Op), DatumA = a.Value, DatumB = a.ValueTwo ?? 0 }).ToArray();
                var split = args.GroupBy(a => a.Index).Any(g => g.Count() > 1);
                foreach (var name in syscall.Names)
                {
                    var nr = seccomp_syscall_resolve_name(name);
                    if (nr == -1) continue;
                    if (split)
                        foreach (var c in conditions) { var one = c; Check(seccomp_rule_add_array(ctx, action, nr, 1, &one), $"rule {name}"); }
                    else
                        fixed (ScmpArgCmp* p = conditions) Check(seccomp_rule_add_array(ctx, action, nr, (uint)conditions.Length, p), $"rule {name}");
                }
            }
            var fd = memfd_create("bpf", 1 /* MFD_CLOEXEC */);
            if (fd < 0) throw new InvalidOperationException("memfd_create failed");
            using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
            Check(seccomp_export_bpf(ctx, fd), "export");
            var length = RandomAccess.GetLength(handle);
            var bytes = new byte[length];
            RandomAccess.Read(handle, bytes, 0);
            return MemoryMarshal.Cast<byte, SockFilter>(bytes).ToArray();
        }
        finally { seccomp_release(ctx); }
    }

    private static int OpCode(string op) => op switch
    {
        "SCMP_CMP_NE" => 1, "SCMP_CMP_LT" => 2, "SCMP_CMP_LE" => 3, "SCMP_CMP_EQ" => 4,
        "SCMP_CMP_GE" => 5, "SCMP_CMP_GT" => 6, "SCMP_CMP_MASKED_EQ" => 7,
        _ => throw new ArgumentException(op),
    };

    private static void Check(int rc, string what)
    {
        if (rc < 0) throw new InvalidOperationException($"libseccomp {what}: {rc}");
    }
}
