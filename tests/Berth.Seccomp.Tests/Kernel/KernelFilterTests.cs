namespace Berth.Seccomp.Tests.Kernel;

/// <summary>Filters loaded into the real kernel by the C helper; each probe is one raw syscall in a fresh child.</summary>
public sealed class KernelFilterTests
{
    private static readonly SeccompArch Native = SeccompArchitectures.Native;

    private static string Probe(string name, params string[] args) => string.Join(",", [Nr(name, Native).ToString(), .. args]);

    [KernelFact]
    public void Denied_mkdir_returns_the_configured_errno_and_allowed_calls_work()
    {
        var section = Section("SCMP_ACT_ALLOW", new LinuxSyscall { Names = ["mkdir", "mkdirat"], Action = "SCMP_ACT_ERRNO", ErrnoRet = 13 });
        var program = SeccompCompiler.Compile(section, Native);
        var lines = SeccompHelper.Run(program.Instructions, program.Flags,
            Probe("mkdirat", "-100", "s:$DIR/denied", "0755"), Probe("getpid"), Probe("rmdir", "s:$DIR/none"));
        Assert.Equal("ret=-1 errno=13", lines[0]);
        Assert.Matches(@"^ret=[1-9]\d* errno=0$", lines[1]);
        Assert.Equal("ret=-1 errno=2", lines[2]);  // ENOENT from the kernel: the call went through
    }

    [KernelFact]
    public void Every_action_behaves_as_the_kernel_defines_it()
    {
        var section = Section("SCMP_ACT_ALLOW",
            Rule("SCMP_ACT_TRAP", "getppid"), Rule("SCMP_ACT_KILL_PROCESS", "getuid"), Rule("SCMP_ACT_KILL", "getgid"),
            new LinuxSyscall { Names = ["geteuid"], Action = "SCMP_ACT_ERRNO", ErrnoRet = 99 },
            Rule("SCMP_ACT_LOG", "getegid"), Rule("SCMP_ACT_TRACE", "getpgrp"), Rule("SCMP_ACT_NOTIFY", "getsid"));
        var program = SeccompCompiler.Compile(section, Native);
        Assert.True(program.NeedsListener);
        var lines = SeccompHelper.Run(program.Instructions, program.Flags,
            Probe("getppid"), Probe("getuid"), Probe("getgid"), Probe("geteuid"), Probe("getegid"), Probe("getpgrp"), Probe("getsid", "0"));
        Assert.Equal("trap data=0", lines[0]);
        Assert.Equal("signal=31", lines[1]);          // SIGSYS
        Assert.Equal("signal=31", lines[2]);
        Assert.Equal("ret=-1 errno=99", lines[3]);
        Assert.Matches("^ret=\\d+ errno=0$", lines[4]);
        Assert.Equal("ret=-1 errno=38", lines[5]);    // TRACE with no tracer: ENOSYS
        Assert.Equal("ret=-1 errno=38", lines[6]);    // NOTIFY with the listener closed: ENOSYS
    }

    [KernelFact]
    public void Argument_rules_hold_in_the_kernel()
    {
        var section = Section("SCMP_ACT_ALLOW",
            Rule("SCMP_ACT_ERRNO", "kill", Arg(1, "EQ", 0x1_0000_0000)),
            Rule("SCMP_ACT_ERRNO", "lseek", Arg(1, "GT", 0xffff_ffff)));
        var program = SeccompCompiler.Compile(section, Native);
        var lines = SeccompHelper.Run(program.Instructions, program.Flags,
            Probe("kill", "0", "0x100000000"), Probe("kill", "0", "0"),
            Probe("lseek", "0", "0x100000000", "0"), Probe("lseek", "9999", "0xffffffff", "0"));
        Assert.Equal(["ret=-1 errno=1", "ret=0 errno=0", "ret=-1 errno=1", "ret=-1 errno=9"], lines);
    }

    [KernelFact]
    public void Docker_default_profile_in_the_kernel_agrees_with_libseccomp()
    {
        var section = DockerDefaultProfile.For(DockerDefaultProfile.DefaultCapabilities, Native);
        var ours = SeccompCompiler.Compile(section, Native);
        string[] probes =
        [
            Probe("mkdirat", "-100", "s:$DIR/allowed", "0755"), Probe("unshare", "0x20000"), Probe("mount", "s:none", "s:$DIR", "s:tmpfs", "0", "0"),
            Probe("personality", "0xffffffff"), Probe("personality", "0x0400000"), Probe("socket", "40", "1", "0"), Probe("umask", "0022"),
            Probe("clone3", "0", "0"), Probe("reboot", "0", "0", "0", "0"),
        ];
        var lines = SeccompHelper.Run(ours.Instructions, ours.Flags, probes);
        Assert.Equal("ret=0 errno=0", lines[0]);
        Assert.Equal("ret=-1 errno=1", lines[1]);
        Assert.Equal("ret=-1 errno=1", lines[2]);
        Assert.StartsWith("ret=", lines[3]);
        Assert.NotEqual("ret=-1 errno=1", lines[3]);
        Assert.Equal("ret=-1 errno=1", lines[4]);
        Assert.Equal("ret=-1 errno=1", lines[5]);    // AF_VSOCK
        Assert.Matches("^ret=\\d+ errno=0$", lines[6]);
        Assert.Equal("ret=-1 errno=38", lines[7]);   // clone3: ENOSYS so libc falls back to clone
        Assert.Equal("ret=-1 errno=1", lines[8]);

        // A syscall newer than every one the profile names: runc's stub answers ENOSYS, not EPERM.
        var newer = SeccompHelper.Run(ours.Instructions, ours.Flags, "600");
        Assert.Equal("ret=-1 errno=38", newer[0]);

        if (Libseccomp.IsAvailable)
            Assert.Equal(lines, SeccompHelper.Run(Libseccomp.Compile(section, Native), 0, probes));
    }
}
