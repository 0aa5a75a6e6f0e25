using Berth.Seccomp.Bpf;

namespace Berth.Seccomp.Tests.Support;

/// <summary>Runs two filters on the same probes and reports the first input they disagree on.</summary>
public static class Equivalence
{
    public static readonly uint[] Audits =
    [
        SeccompArch.X86_64.AuditArch(), SeccompArch.X86.AuditArch(), SeccompArch.Aarch64.AuditArch(), SeccompArch.Arm.AuditArch(), 0x12345678,
    ];

    public static readonly SeccompArch[] AllArches = [SeccompArch.X86_64, SeccompArch.X86, SeccompArch.X32, SeccompArch.Aarch64, SeccompArch.Arm];

    /// <summary>Returns the number of probes run.</summary>
    public static int AssertSame(LinuxSeccomp seccomp, SockFilter[] expected, SockFilter[] actual, int seed = 1)
    {
        var random = new Random(seed);
        var numbers = Numbers(seccomp, AllArches);
        var values = ArgValues(seccomp);
        var conditional = new HashSet<uint>();
        foreach (var arch in AllArches)
            foreach (var name in (seccomp.Syscalls ?? []).Where(s => s.Args is { Count: > 0 }).SelectMany(s => s.Names))
                if (SyscallTable.TryGetNumber(arch, name, out var nr)) conditional.Add(nr);

        var probes = 0;
        foreach (var audit in Audits)
            foreach (var nr in numbers)
            {
                var tries = conditional.Contains(nr) ? 300 : 3;
                for (var t = 0; t < tries; t++)
                {
                    var input = t == 0
                        ? new SeccompData(audit, nr)
                        : new SeccompData(audit, nr, Pick(), Pick(), Pick(), Pick(), Pick(), Pick());
                    var want = BpfInterpreter.Run(expected, input);
                    var got = BpfInterpreter.Run(actual, input);
                    probes++;
                    if (want != got)
                        Assert.Fail($"{input}: expected {SeccompReturn.Describe(want)}, got {SeccompReturn.Describe(got)}; default {seccomp.DefaultAction}; rules: {Describe(seccomp, nr)}");
                }
            }
        return probes;

        ulong Pick() => random.Next(4) == 0 ? (ulong)random.NextInt64() : values[random.Next(values.Count)];
    }

    private static string Describe(LinuxSeccomp seccomp, uint nr) => string.Join("; ",
        (seccomp.Syscalls ?? []).Where(s => s.Names.Any(n => AllArches.Any(a => SyscallTable.TryGetNumber(a, n, out var x) && (x == nr || x == (nr | 0x40000000)))))
            .Select(s => $"{string.Join(",", s.Names)} {s.Action}({s.ErrnoRet}) [{string.Join(" && ", (s.Args ?? []).Select(a => $"a{a.Index} {a.Op} 0x{a.Value:x} 0x{a.ValueTwo:x}"))}]"));
}
