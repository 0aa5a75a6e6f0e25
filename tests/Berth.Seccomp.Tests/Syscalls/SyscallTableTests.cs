using System.Text.RegularExpressions;

namespace Berth.Seccomp.Tests.Syscalls;

public sealed partial class SyscallTableTests
{
    [Theory]
    [InlineData(SeccompArch.X86_64, "x86_64-linux-gnu/asm/unistd_64.h", 0u)]
    [InlineData(SeccompArch.X86, "x86_64-linux-gnu/asm/unistd_32.h", 0u)]
    public void Numbers_match_the_kernel_headers(SeccompArch arch, string header, uint bit)
    {
        var path = Path.Combine("/usr/include", header);
        if (!File.Exists(path)) return;  // linux-libc-dev not installed: the generated table is the record
        var matched = 0;
        foreach (Match m in Define().Matches(File.ReadAllText(path)))
        {
            Assert.True(SyscallTable.TryGetNumber(arch, m.Groups[1].Value, out var nr), $"{arch}: {m.Groups[1].Value} missing");
            Assert.Equal(uint.Parse(m.Groups[2].Value) | bit, nr);
            matched++;
        }
        Assert.True(matched > 300, $"only {matched} syscalls in {path}");
    }

    [Fact]
    public void A_sample_of_well_known_numbers()
    {
        Assert.Equal(0u, Nr("read"));
        Assert.Equal(83u, Nr("mkdir"));
        Assert.Equal(435u, Nr("clone3"));
        Assert.Equal(39u, Nr("mkdir", SeccompArch.X86));
        Assert.Equal(102u, Nr("socketcall", SeccompArch.X86));
        Assert.Equal(0x40000000u | 512, Nr("rt_sigaction", SeccompArch.X32));
        Assert.Equal(34u, Nr("mkdirat", SeccompArch.Aarch64));
        Assert.False(SyscallTable.TryGetNumber(SeccompArch.Aarch64, "mkdir", out _));
        Assert.Equal(0xf0005u, Nr("set_tls", SeccompArch.Arm));
        Assert.True(SyscallTable.For(SeccompArch.X86_64).Count >= 360);
    }

    /// <summary>Every name both know gets the same number from libseccomp (aarch64's and arm's tables are checked only here).</summary>
    [LibseccompTheory]
    [InlineData(SeccompArch.X86_64)]
    [InlineData(SeccompArch.X86)]
    [InlineData(SeccompArch.X32)]
    [InlineData(SeccompArch.Aarch64)]
    [InlineData(SeccompArch.Arm)]
    public void Numbers_match_libseccomp(SeccompArch arch)
    {
        var known = 0;
        foreach (var (name, nr) in SyscallTable.For(arch))
        {
            if (Libseccomp.Resolve(arch, name) is not { } theirs) continue;
            Assert.True((uint)theirs == nr, $"{arch} {name}: ours {nr}, libseccomp {theirs}");
            known++;
        }
        Assert.True(known > 250, $"{arch}: only {known} names in common");
    }

    [GeneratedRegex(@"^#define __NR_(\w+)\s+(\d+)\s*$", RegexOptions.Multiline)]
    private static partial Regex Define();
}
