using Berth.Oci;

namespace Berth.Seccomp.Tests.Support;

/// <summary>Small builders for seccomp sections and the probe inputs that exercise them.</summary>
public static class Profiles
{
    public static LinuxSeccomp Section(string defaultAction, params LinuxSyscall[] syscalls) =>
        new() { DefaultAction = defaultAction, Syscalls = [.. syscalls] };

    public static LinuxSyscall Rule(string action, string[] names, params LinuxSeccompArg[] args) =>
        new() { Names = [.. names], Action = action, Args = args.Length == 0 ? null : [.. args] };

    public static LinuxSyscall Rule(string action, string name, params LinuxSeccompArg[] args) => Rule(action, [name], args);

    public static LinuxSeccompArg Arg(uint index, string op, ulong value, ulong? valueTwo = null) =>
        new() { Index = index, Op = "SCMP_CMP_" + op, Value = value, ValueTwo = valueTwo };

    public static uint Nr(string name, SeccompArch arch = SeccompArch.X86_64) =>
        SyscallTable.TryGetNumber(arch, name, out var nr) ? nr : throw new ArgumentException(name);

    /// <summary>Interesting values around every constant the section compares against.</summary>
    public static List<ulong> ArgValues(LinuxSeccomp seccomp)
    {
        var values = new HashSet<ulong> { 0, 1, uint.MaxValue, (ulong)uint.MaxValue + 1, ulong.MaxValue, 0x8000000000000000 };
        foreach (var arg in (seccomp.Syscalls ?? []).SelectMany(s => s.Args ?? []))
        {
            foreach (var v in new[] { arg.Value, arg.ValueTwo ?? 0 })
            {
                values.Add(v); values.Add(v + 1); values.Add(v - 1);
                values.Add(v ^ 0x100000000); values.Add(v & 0xffffffff); values.Add(v | 0xffffffff00000000);
                values.Add((v & 0xffffffff) + 1); values.Add(v - 0x100000000);
            }
            values.Add(arg.Value & (arg.ValueTwo ?? 0));
            values.Add(~arg.Value);
        }
        return [.. values];
    }

    /// <summary>Syscall numbers worth probing on an architecture: every number the section names, its neighbours, edges.</summary>
    public static List<uint> Numbers(LinuxSeccomp seccomp, IEnumerable<SeccompArch> arches)
    {
        var numbers = new HashSet<uint> { 0, 1, 999, 0x3fffffff, 0x40000000, 0x40000001, 0x7fffffff, 0xfffffffe, 0xffffffff, 0x800000 };
        foreach (var arch in arches)
            foreach (var name in (seccomp.Syscalls ?? []).SelectMany(s => s.Names))
                if (SyscallTable.TryGetNumber(arch, name, out var nr))
                    foreach (var n in new[] { nr - 1, nr, nr + 1, nr | 0x40000000, nr & ~0x40000000u })
                        numbers.Add(n);
        return [.. numbers];
    }
}
