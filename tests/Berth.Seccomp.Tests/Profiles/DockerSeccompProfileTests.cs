namespace Berth.Seccomp.Tests.Profiles;

/// <summary>A seccomp profile of one's own in Docker's format (<c>--security-opt seccomp=profile.json</c>).</summary>
public sealed class DockerSeccompProfileTests
{
    private static readonly uint X64 = SeccompArch.X86_64.AuditArch();
    private static readonly string[] DefaultCaps = [.. DockerDefaultProfile.DefaultCapabilities];

    private const string Conditional = """
        {
          "defaultAction": "SCMP_ACT_ERRNO",
          "defaultErrnoRet": 1,
          "archMap": [
            { "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
            { "architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"] }
          ],
          "syscalls": [
            { "names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW", "comment": "Go ignores unknown fields" },
            { "name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13 },
            { "names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["CAP_SYS_ADMIN"] } },
            { "names": ["chroot"], "action": "SCMP_ACT_ALLOW", "excludes": { "caps": ["CAP_SYS_ADMIN"] } },
            { "names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": { "arches": ["amd64"] } },
            { "names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": { "minKernel": "4.8" } },
            { "names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "excludes": { "minKernel": "5.0" } },
            { "names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_EQ" }] }
          ]
        }
        """;

    private static bool Has(LinuxSeccomp section, string name) => section.Syscalls!.Any(s => s.Names.Contains(name));

    [Fact]
    public void Rules_hold_by_capability_arch_and_kernel_as_dockerd_decides()
    {
        var profile = DockerSeccompProfile.Parse(Conditional);
        LinuxSeccomp plain = profile.For(DefaultCaps, SeccompArch.X86_64, new Version(6, 1))!;
        Assert.Equal("SCMP_ACT_ERRNO", plain.DefaultAction);
        Assert.Equal(1u, plain.DefaultErrnoRet);
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], plain.Architectures);
        Assert.Contains(plain.Syscalls!, s => s.Names.SequenceEqual(["mkdir"]) && s.Action == "SCMP_ACT_ERRNO" && s.ErrnoRet == 13);
        Assert.False(Has(plain, "mount"));
        Assert.True(Has(plain, "chroot"));
        Assert.True(Has(plain, "arch_prctl"));
        Assert.True(Has(plain, "ptrace"));
        Assert.False(Has(plain, "kcmp"));
        LinuxSyscall socket = Assert.Single(plain.Syscalls!, s => s.Names.Contains("socket"));
        Assert.Equal(("SCMP_CMP_EQ", 0u, 1ul), (socket.Args![0].Op, socket.Args[0].Index, socket.Args[0].Value));

        LinuxSeccomp admin = profile.For([.. DefaultCaps, "CAP_SYS_ADMIN"], SeccompArch.X86_64, new Version(4, 4))!;
        Assert.True(Has(admin, "mount"));
        Assert.False(Has(admin, "chroot"));
        Assert.False(Has(admin, "ptrace"));
        Assert.True(Has(admin, "kcmp"));

        LinuxSeccomp arm = profile.For(DefaultCaps, SeccompArch.Aarch64, new Version(6, 1))!;
        Assert.Equal(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"], arm.Architectures);
        Assert.False(Has(arm, "arch_prctl"));
    }

    [Fact]
    public void The_compiled_profile_returns_the_errno_it_names()
    {
        LinuxSeccomp section = DockerSeccompProfile.Parse(Conditional).For(DefaultCaps, SeccompArch.X86_64)!;
        SeccompProgram program = SeccompCompiler.Compile(section, SeccompArch.X86_64);
        uint Run(string name, ulong a0 = 0) => BpfInterpreter.Run(program.Instructions, new SeccompData(X64, Nr(name), a0));
        Assert.Equal(SeccompReturn.Errno | 13, Run("mkdir"));
        Assert.Equal(SeccompReturn.Allow, Run("read"));
        Assert.Equal(SeccompReturn.Errno | 1, Run("mount"));
        Assert.Equal(SeccompReturn.Allow, Run("socket", 1));
        Assert.Equal(SeccompReturn.Errno | 1, Run("socket", 2));
    }

    [Fact]
    public void The_OCI_fields_and_a_plain_architecture_list_pass_through()
    {
        var profile = DockerSeccompProfile.Parse("""
            { "defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
              "listenerPath": "/run/agent.sock", "listenerMetadata": "m", "syscalls": null }
            """);
        LinuxSeccomp section = profile.For(DefaultCaps, SeccompArch.X86_64)!;
        Assert.Equal("SCMP_ACT_LOG", section.DefaultAction);
        Assert.Null(section.DefaultErrnoRet);
        Assert.Equal(["SCMP_ARCH_X86_64"], section.Architectures);
        Assert.Equal(["SECCOMP_FILTER_FLAG_LOG"], section.Flags);
        Assert.Equal(("/run/agent.sock", "m"), (section.ListenerPath, section.ListenerMetadata));
        Assert.Empty(section.Syscalls!);
    }

    [Fact]
    public void A_profile_without_default_action_or_rules_is_no_filter()
        => Assert.Null(DockerSeccompProfile.Parse("{}").For(DefaultCaps, SeccompArch.X86_64));

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[]", "a profile is a JSON object")]
    [InlineData("""{"defaultAction": 1}""", "defaultAction: expected a string")]
    [InlineData("""{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": -1}""", "defaultErrnoRet: expected a number")]
    [InlineData("""{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}""", "defaultAction: missing")]
    [InlineData("""{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read"}]}""", "syscalls[0].names: expected an array of strings")]
    [InlineData("""{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["write"]}]}""", "syscalls[0]: use either 'name' or 'names'")]
    [InlineData("""{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{}, {"names": ["x"], "args": [{"index": 0, "value": "1"}]}]}""", "syscalls[1].args[0].value: expected a number")]
    [InlineData("""{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "includes": {"minKernel": "4"}}]}""", "syscalls[0].includes.minKernel: invalid kernel version \"4\"")]
    [InlineData("""{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "excludes": []}]}""", "syscalls[0].excludes: expected an object")]
    [InlineData("""{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}""", "use either 'architectures' or 'archMap'")]
    public void A_broken_profile_is_refused_naming_the_field(string json, string message)
        => Assert.Contains(message, Assert.Throws<SeccompException>(() => DockerSeccompProfile.Parse(json)).Message);

    /// <summary>
    /// A real profile in the same format: containers-common's seccomp.json (installed with podman), read
    /// and compiled for this host. Its includes/excludes and archMap are what Docker's default.json has.
    /// </summary>
    [Fact]
    public void Podmans_profile_parses_and_compiles()
    {
        const string path = "/usr/share/containers/seccomp.json";
        Assert.True(File.Exists(path), $"{path} is missing: apt-get install podman (golang-github-containers-common)");
        var profile = DockerSeccompProfile.Parse(File.ReadAllText(path));
        LinuxSeccomp section = profile.For(DefaultCaps, SeccompArch.X86_64, new Version(6, 1))!;
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], section.Architectures);
        Assert.True(Has(section, "read"));
        SeccompProgram program = SeccompCompiler.Compile(section, SeccompArch.X86_64);
        Assert.Equal(SeccompReturn.Allow, BpfInterpreter.Run(program.Instructions, new SeccompData(X64, Nr("read"))));
        // bpf: allowed with CAP_SYS_ADMIN (includes), EPERM without it (excludes).
        Assert.Equal(SeccompReturn.Errno | 1, BpfInterpreter.Run(program.Instructions, new SeccompData(X64, Nr("bpf"))));
        SeccompProgram admin = SeccompCompiler.Compile(profile.For([.. DefaultCaps, "CAP_SYS_ADMIN"], SeccompArch.X86_64)!, SeccompArch.X86_64);
        Assert.Equal(SeccompReturn.Allow, BpfInterpreter.Run(admin.Instructions, new SeccompData(X64, Nr("bpf"))));
        SeccompCompiler.Compile(profile.AllRules(SeccompArch.X86_64), SeccompArch.X86_64);
    }
}
