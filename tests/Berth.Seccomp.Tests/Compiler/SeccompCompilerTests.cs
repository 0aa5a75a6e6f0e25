namespace Berth.Seccomp.Tests.Compiler;

/// <summary>The generated program, run in the interpreter, for each action, operator, 64-bit edge, arch and flag.</summary>
public sealed class SeccompCompilerTests
{
    private static readonly uint X64 = SeccompArch.X86_64.AuditArch();
    private static readonly SeccompCompileOptions NoStub = new() { EnosysStub = false };

    private static uint Run(LinuxSeccomp section, SeccompData input, SeccompCompileOptions? options = null) =>
        BpfInterpreter.Run(SeccompCompiler.Compile(section, SeccompArch.X86_64, options ?? NoStub).Instructions, input);

    [Theory]
    [InlineData("SCMP_ACT_KILL", null, SeccompReturn.KillThread)]
    [InlineData("SCMP_ACT_KILL_THREAD", null, SeccompReturn.KillThread)]
    [InlineData("SCMP_ACT_KILL_PROCESS", null, SeccompReturn.KillProcess)]
    [InlineData("SCMP_ACT_TRAP", null, SeccompReturn.Trap)]
    [InlineData("SCMP_ACT_ERRNO", null, SeccompReturn.Errno | 1)]
    [InlineData("SCMP_ACT_ERRNO", 13u, SeccompReturn.Errno | 13)]
    [InlineData("SCMP_ACT_TRACE", null, SeccompReturn.Trace | 1)]
    [InlineData("SCMP_ACT_TRACE", 42u, SeccompReturn.Trace | 42)]
    [InlineData("SCMP_ACT_LOG", null, SeccompReturn.Log)]
    [InlineData("SCMP_ACT_NOTIFY", null, SeccompReturn.UserNotif)]
    public void Each_action_returns_its_value(string action, uint? errnoRet, uint expected)
    {
        var section = Section("SCMP_ACT_ALLOW", new LinuxSyscall { Names = ["mkdir"], Action = action, ErrnoRet = errnoRet });
        Assert.Equal(expected, Run(section, new(X64, Nr("mkdir"))));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(X64, Nr("rmdir"))));
    }

    [Theory]
    [InlineData("SCMP_ACT_ERRNO", null, SeccompReturn.Errno | 1)]
    [InlineData("SCMP_ACT_ERRNO", 38u, SeccompReturn.Errno | 38)]
    [InlineData("SCMP_ACT_KILL_PROCESS", null, SeccompReturn.KillProcess)]
    public void Default_action_and_errno(string action, uint? errnoRet, uint expected)
    {
        var section = new LinuxSeccomp { DefaultAction = action, DefaultErrnoRet = errnoRet, Syscalls = [Rule("SCMP_ACT_ALLOW", "read")] };
        Assert.Equal(expected, Run(section, new(X64, Nr("write"))));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(X64, Nr("read"))));
    }

    public static TheoryData<string, ulong, ulong, bool> Comparisons() => new()
    {
        // op, rule value, argument, matches
        { "EQ", 0x1_0000_0005, 0x1_0000_0005, true }, { "EQ", 0x1_0000_0005, 0x5, false }, { "EQ", 0x1_0000_0005, 0x2_0000_0005, false },
        { "EQ", 0xffffffff, 0xffffffff, true }, { "EQ", 0xffffffff, ulong.MaxValue, false },
        { "NE", 0x1_0000_0005, 0x5, true }, { "NE", 0x1_0000_0005, 0x1_0000_0005, false }, { "NE", 0x5, 0x1_0000_0005, true },
        { "GT", 0x1_0000_0000, 0xffffffff, false }, { "GT", 0x1_0000_0000, 0x1_0000_0001, true }, { "GT", 0x1_0000_0000, 0x1_0000_0000, false },
        { "GT", 0x0_ffff_ffff, 0x1_0000_0000, true }, { "GT", 0x2_0000_0005, 0x1_ffff_ffff, false }, { "GT", 5, ulong.MaxValue, true },
        { "GE", 0x1_0000_0000, 0x1_0000_0000, true }, { "GE", 0x1_0000_0000, 0xffffffff, false }, { "GE", 0x1_0000_0005, 0x1_0000_0004, false },
        { "GE", 0x1_0000_0005, 0x2_0000_0000, true },
        { "LT", 0x1_0000_0000, 0xffffffff, true }, { "LT", 0x1_0000_0000, 0x1_0000_0000, false }, { "LT", 0x1_0000_0005, 0x1_0000_0004, true },
        { "LT", 0x1_0000_0005, 0x2_0000_0000, false }, { "LT", 0, 0, false },
        { "LE", 0x1_0000_0005, 0x1_0000_0005, true }, { "LE", 0x1_0000_0005, 0x1_0000_0006, false }, { "LE", 0x1_0000_0005, 0x0_ffff_ffff, true },
        { "LE", 0x1_0000_0005, 0x2_0000_0000, false }, { "LE", ulong.MaxValue, ulong.MaxValue, true },
    };

    [Theory]
    [MemberData(nameof(Comparisons))]
    public void Comparisons_are_64_bit_unsigned(string op, ulong value, ulong argument, bool matches)
    {
        var section = Section("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "lseek", Arg(1, op, value)));
        var expected = matches ? SeccompReturn.Errno | 1 : SeccompReturn.Allow;
        Assert.Equal(expected, Run(section, new(X64, Nr("lseek"), A1: argument)));
    }

    [Theory]
    [InlineData(0x7E020000ul, 0ul, 0x11ul, true)]                   // Docker's clone rule: no namespace flag
    [InlineData(0x7E020000ul, 0ul, 0x10000000ul, false)]            // CLONE_NEWUSER
    [InlineData(0x7E020000ul, 0ul, 0x20000ul, false)]               // CLONE_NEWNS
    [InlineData(0xff00_0000_0000_00f0ul, 0x1200_0000_0000_0030ul, 0x12ab_cdef_0000_0f3ful, true)]
    [InlineData(0xff00_0000_0000_00f0ul, 0x1200_0000_0000_0030ul, 0x13ab_cdef_0000_0f3ful, false)]
    [InlineData(0xf0ul, 0x1234ul, 0x30ul, true)]                     // the datum is masked too, as libseccomp does
    public void Masked_equal(ulong mask, ulong datum, ulong argument, bool matches)
    {
        var section = Section("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "clone", Arg(0, "MASKED_EQ", mask, datum)));
        var expected = matches ? SeccompReturn.Errno | 1 : SeccompReturn.Allow;
        Assert.Equal(expected, Run(section, new(X64, Nr("clone"), A0: argument)));
    }

    [Fact]
    public void Conditions_are_ANDed_and_rules_ORed()
    {
        var section = Section("SCMP_ACT_ERRNO",
            Rule("SCMP_ACT_ALLOW", "socket", Arg(0, "EQ", 1), Arg(1, "EQ", 2)),
            Rule("SCMP_ACT_ALLOW", "socket", Arg(0, "EQ", 10)));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(X64, Nr("socket"), 1, 2)));
        Assert.Equal(SeccompReturn.Errno | 1, Run(section, new(X64, Nr("socket"), 1, 3)));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(X64, Nr("socket"), 10, 99)));
        Assert.Equal(SeccompReturn.Errno | 1, Run(section, new(X64, Nr("socket"), 11, 2)));
    }

    [Fact]
    public void Two_conditions_on_one_argument_are_ORed_like_runc()
    {
        var section = Section("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", "prctl", Arg(0, "EQ", 15), Arg(0, "EQ", 16)));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(X64, Nr("prctl"), 15)));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(X64, Nr("prctl"), 16)));
        Assert.Equal(SeccompReturn.Errno | 1, Run(section, new(X64, Nr("prctl"), 17)));
    }

    [Fact]
    public void Unknown_names_are_skipped_and_rules_equal_to_the_default_dropped()
    {
        var section = Section("SCMP_ACT_ERRNO", Rule("SCMP_ACT_ALLOW", ["no_such_syscall", "mmap2", "read"]), Rule("SCMP_ACT_ERRNO", "write"));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(X64, Nr("read"))));
        Assert.Equal(SeccompReturn.Errno | 1, Run(section, new(X64, Nr("write"))));
    }

    [Fact]
    public void Other_architectures_are_killed_and_listed_ones_use_their_own_numbers()
    {
        var section = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO", Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
            Syscalls = [Rule("SCMP_ACT_ALLOW", ["mkdirat", "mmap2"])],
        };
        Assert.Equal(SeccompReturn.Allow, Run(section, new(X64, 258)));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(SeccompArch.X86.AuditArch(), 296)));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(SeccompArch.X86.AuditArch(), 192)));      // mmap2, i386 only
        Assert.Equal(SeccompReturn.Errno | 1, Run(section, new(SeccompArch.X86.AuditArch(), 258)));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(SeccompArch.Aarch64.AuditArch(), 34)));
        Assert.Equal(SeccompReturn.KillThread, Run(section, new(SeccompArch.Arm.AuditArch(), 323)));  // not listed
        Assert.Equal(SeccompReturn.KillThread, Run(section, new(0xdeadbeef, 0)));
    }

    [Fact]
    public void X32_numbers_are_killed_unless_x32_is_listed()
    {
        var without = new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW", Architectures = ["SCMP_ARCH_X86_64"] };
        Assert.Equal(SeccompReturn.KillThread, Run(without, new(X64, 0x40000000 | 83)));
        Assert.Equal(SeccompReturn.Allow, Run(without, new(X64, 0xffffffff)));  // -1: a tracer skipped the syscall
        var with = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW", Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"], Syscalls = [Rule("SCMP_ACT_ERRNO", "mkdir")],
        };
        Assert.Equal(SeccompReturn.Errno | 1, Run(with, new(X64, 0x40000000 | 83)));
        Assert.Equal(SeccompReturn.Errno | 1, Run(with, new(X64, 83)));
        Assert.Equal(SeccompReturn.Allow, Run(with, new(X64, 0x40000000 | 84)));
    }

    [Fact]
    public void Thirty_two_bit_arches_compare_the_low_half()
    {
        var section = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW", Architectures = ["SCMP_ARCH_X86"],
            Syscalls = [Rule("SCMP_ACT_ERRNO", "kill", Arg(1, "EQ", 0x1_0000_0009))],
        };
        var i386 = SeccompArch.X86.AuditArch();
        Assert.Equal(SeccompReturn.Errno | 1, Run(section, new(i386, Nr("kill", SeccompArch.X86), 0, 9)));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(X64, Nr("kill"), 0, 9)));
    }

    [Fact]
    public void Socket_rules_cover_socketcall_on_i386()
    {
        var section = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW", Architectures = ["SCMP_ARCH_X86"], Syscalls = [Rule("SCMP_ACT_ERRNO", ["connect", "shmat"])],
        };
        var i386 = SeccompArch.X86.AuditArch();
        Assert.Equal(SeccompReturn.Errno | 1, Run(section, new(i386, 362)));        // connect
        Assert.Equal(SeccompReturn.Errno | 1, Run(section, new(i386, 102, A0: 3)));  // socketcall(SYS_CONNECT)
        Assert.Equal(SeccompReturn.Allow, Run(section, new(i386, 102, A0: 1)));      // socketcall(SYS_SOCKET)
        Assert.Equal(SeccompReturn.Errno | 1, Run(section, new(i386, 117, A0: 21))); // ipc(SHMAT)
    }

    [Fact]
    public void Enosys_stub_answers_syscalls_newer_than_the_profile()
    {
        var section = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO", Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            Syscalls = [Rule("SCMP_ACT_ALLOW", ["read", "openat"]), Rule("SCMP_ACT_ERRNO", "mkdir")],
        };
        var enosys = SeccompReturn.Errno | SeccompReturn.ENOSYS;
        Assert.Equal(SeccompReturn.Errno | 1, Run(section, new(X64, 100), SeccompCompileOptions.Default));  // below openat (257)
        Assert.Equal(enosys, Run(section, new(X64, 258), SeccompCompileOptions.Default));
        Assert.Equal(enosys, Run(section, new(X64, 0x40000000 | 300), SeccompCompileOptions.Default));
        Assert.Equal(SeccompReturn.Allow, Run(section, new(X64, 257), SeccompCompileOptions.Default));
        // Not when the default already allows.
        section.DefaultAction = "SCMP_ACT_LOG";
        Assert.Equal(SeccompReturn.Log, Run(section, new(X64, 400), SeccompCompileOptions.Default));
    }

    [Fact]
    public void Flags_map_to_seccomp_flag_bits()
    {
        var section = new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        };
        var program = SeccompCompiler.Compile(section, SeccompArch.X86_64);
        Assert.Equal(1u | 2 | 4, program.Flags);  // WAIT_KILLABLE_RECV needs a listener
        Assert.False(program.NeedsListener);

        section.Syscalls = [Rule("SCMP_ACT_NOTIFY", "mkdir")];
        program = SeccompCompiler.Compile(section, SeccompArch.X86_64);
        Assert.True(program.NeedsListener);
        Assert.Equal(1u | 2 | 4 | 8 | 16 | 32, program.Flags);
    }

    [Theory]
    [InlineData("SCMP_ACT_NOTIFY", "linux.seccomp.defaultAction")]
    [InlineData("SCMP_ACT_BOGUS", "linux.seccomp.defaultAction")]
    public void Bad_default_actions_are_refused(string action, string field)
    {
        var error = Assert.Throws<SeccompException>(() => SeccompCompiler.Compile(Section(action), SeccompArch.X86_64));
        Assert.StartsWith(field, error.Message);
    }

    [Fact]
    public void Bad_rules_are_refused_naming_the_field()
    {
        var error = Assert.Throws<SeccompException>(() => SeccompCompiler.Compile(
            Section("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "read"), Rule("SCMP_ACT_ERRNO", "write", Arg(7, "EQ", 1))), SeccompArch.X86_64));
        Assert.StartsWith("linux.seccomp.syscalls[1].args[0].index", error.Message);
        error = Assert.Throws<SeccompException>(() => SeccompCompiler.Compile(
            Section("SCMP_ACT_ALLOW", Rule("SCMP_ACT_ERRNO", "write", Arg(0, "XX", 1))), SeccompArch.X86_64));
        Assert.StartsWith("linux.seccomp.syscalls[0].args[0].op", error.Message);
        error = Assert.Throws<SeccompException>(() => SeccompCompiler.Compile(
            new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW", Architectures = ["SCMP_ARCH_Z80"] }, SeccompArch.X86_64));
        Assert.StartsWith("linux.seccomp.architectures[0]", error.Message);
    }

    [Fact]
    public void Architectures_without_a_table_are_reported_and_killed()
    {
        var program = SeccompCompiler.Compile(new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW", Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_MIPS"] }, SeccompArch.X86_64);
        Assert.Equal(["SCMP_ARCH_MIPS"], program.SkippedArchitectures);
    }

    [Fact]
    public void Long_programs_use_trampolines_and_stay_valid()
    {
        // Every x86_64 syscall with its own argument rule: far more than 255 instructions between jumps and targets.
        var names = SyscallTable.For(SeccompArch.X86_64).Keys.Order(StringComparer.Ordinal).ToArray();
        var section = Section("SCMP_ACT_ERRNO", [.. names.Select((n, i) => Rule("SCMP_ACT_ALLOW", n, Arg(0, "EQ", (ulong)i)))]);
        var program = SeccompCompiler.Compile(section, SeccompArch.X86_64, NoStub);
        Assert.True(program.InstructionCount > 1000);
        for (var i = 0; i < names.Length; i++)
        {
            var nr = Nr(names[i]);
            Assert.Equal(SeccompReturn.Allow, BpfInterpreter.Run(program.Instructions, new(X64, nr, (ulong)i)));
            Assert.Equal(SeccompReturn.Errno | 1, BpfInterpreter.Run(program.Instructions, new(X64, nr, (ulong)i + 1)));
        }
    }
}
