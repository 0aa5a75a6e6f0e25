using Berth.Oci;
using Berth.Runtime.Container;
using Berth.Runtime.Init;
using Berth.Runtime.Native;

namespace Berth.Runtime.Tests.Init;

public sealed class ExecCompilerTests
{
    const int ConsoleFd = 13;

    static Berth.Oci.Process Process(params string[] args)
    {
        var process = UnitSpecs.Bare().Process!;
        process.Args = args.Length == 0 ? ["sh"] : [.. args];
        return process;
    }

    static readonly (string, int)[] AllNamespaces =
    [
        (NamespaceType.Mount, 21), (NamespaceType.Pid, 22), (NamespaceType.Network, 23), (NamespaceType.User, 24),
        (NamespaceType.Ipc, 25), (NamespaceType.Uts, 26), (NamespaceType.Cgroup, 27), (NamespaceType.Time, 28),
    ];

    static CompiledProgram Compile(Berth.Oci.Process process, (string, int)[]? namespaces = null, int consoleFd = -1,
        int preserveFds = 0, Berth.Seccomp.SeccompProgram? seccomp = null, IReadOnlyList<string>? cgroups = null) =>
        new(ExecCompiler.Compile(new ExecOptions
        {
            Process = process, Namespaces = namespaces ?? AllNamespaces, ReportFd = CompiledProgram.ReportFd,
            ConsoleSocketFd = consoleFd, PreserveFds = preserveFds, Seccomp = seccomp, CgroupsToJoin = cgroups,
        }), forksInit: true);

    [Fact]
    public void The_intermediate_joins_the_v1_groups_before_any_setns_so_the_process_is_forked_inside_them()
    {
        using var p = Compile(Process(), cgroups: ["/sys/fs/cgroup/memory/berth/x", "/sys/fs/cgroup/pids/berth/x"]);
        var opens = p.Syscalls(Sys.OpenAt).Where(o => p.String(o.Args[1]).EndsWith("/tasks", StringComparison.Ordinal)).ToList();
        Assert.Equal(["/sys/fs/cgroup/memory/berth/x/tasks", "/sys/fs/cgroup/pids/berth/x/tasks"], opens.Select(o => p.String(o.Args[1])));
        var writes = p.Ops.Where(o => o.Description.StartsWith("join cgroup", StringComparison.Ordinal)).ToList();
        Assert.All(writes, w => Assert.Equal("0", p.Bytes(w.Args[1], 1)));
        Assert.True(p.IndexOf(writes[^1]) < p.IndexOf(p.Syscalls(Sys.Setns).First()));
        Assert.Equal(-1, p.Find("wait for the runtime (cgroup)"));
    }

    [Fact]
    public void Every_namespace_is_joined_user_first_and_mount_last_then_the_process_is_forked_as_a_child_of_the_runtime()
    {
        using var p = Compile(Process());
        var joins = p.Syscalls(Sys.Setns).ToList();
        Assert.Equal(8, joins.Count);
        Assert.Equal((long)Sys.CLONE_NEWUSER, joins[0].Args[1].Value);
        Assert.Equal((long)Sys.CLONE_NEWNS, joins[^1].Args[1].Value);
        Assert.Equal(
            new[] { Sys.CLONE_NEWUSER, Sys.CLONE_NEWNS, Sys.CLONE_NEWPID, Sys.CLONE_NEWNET, Sys.CLONE_NEWIPC, Sys.CLONE_NEWUTS, Sys.CLONE_NEWCGROUP, Sys.CLONE_NEWTIME }
                .Select(f => (long)f).Order(),
            joins.Select(j => j.Args[1].Value).Order());
        // The fds the parent opened arrive as preset slots; each is closed after its setns.
        Assert.All(joins, j => Assert.Equal(OpArgKind.Slot, j.Args[0].Kind));
        Assert.All(joins, j => Assert.Equal(Sys.Close, p.Ops[p.IndexOf(j) + 1].Syscall));

        var fork = p.Single(o => o.Kind == OpKind.Fork, "forks");
        Assert.Equal((long)Sys.CLONE_PARENT, fork.Args[0].Value);
        Assert.True(p.IndexOf(joins[^1]) < p.IndexOf(fork), "the pid namespace applies to children: fork after the last setns");
        Assert.True(p.IndexOf(fork) < p.MustFind("setsid"));

        // The intermediate's branch: report the pid, exit.
        var report = p.Ops[p.MustFind("report the process's pid")];
        Assert.True(p.IndexOf(report) > p.IndexOf(p.Syscalls(Sys.Execve).Last()));
        Assert.Equal((int)InitMessage.InitPid, p.Int32(report.Args[1], 0));
        Assert.Equal(OpKind.Exit, p.Ops[^1].Kind);
    }

    [Fact]
    public void Namespaces_the_runtime_shares_are_not_joined()
    {
        using var p = Compile(Process(), [(NamespaceType.Mount, 21), (NamespaceType.Pid, 22)]);
        Assert.Equal(2, p.Syscalls(Sys.Setns).Count());
    }

    [Fact]
    public void The_process_is_set_up_as_the_container_init_and_waits_for_the_cgroup_before_execve()
    {
        var process = Process("app", "--flag");
        process.Env = ["PATH=/opt/bin:/bin", "A=1"];
        process.User = new User { Uid = 1000, Gid = 100, AdditionalGids = [10] };
        process.Cwd = "/work";
        process.Rlimits = [new PosixRlimit { Type = "RLIMIT_NOFILE", Soft = 10, Hard = 20 }];
        process.NoNewPrivileges = true;
        using var p = Compile(process, preserveFds: 1);
        var order = new[]
        {
            p.MustFind("fork the process"), p.MustFind("setsid"), p.MustFind("set RLIMIT_NOFILE"), p.MustFind("set no_new_privs"),
            p.MustFind("mark inherited fds close-on-exec"), p.MustFind("chdir to /work"), p.MustFind("from the bounding set"),
            p.MustFind("setresgid 100"), p.MustFind("setresuid 1000"), p.MustFind("set capabilities"), p.MustFind("as the container user"),
            p.MustFind("set the umask"), p.MustFind("stat /opt/bin/app"), p.MustFind("wait for the runtime (cgroup)"), p.MustFind("exec /opt/bin/app"),
        };
        Assert.True(order.SequenceEqual(order.Order()), $"out of order: [{string.Join(", ", order)}]\n{p.Dump()}");
        Assert.Equal(4L, p.Syscalls(Sys.CloseRange).Single().Args[0].Value);
        var wait = p.Ops[p.MustFind("wait for the runtime (cgroup)")];
        Assert.True(wait.FailOnZero, "end of file on the report socket means the runtime died");
        Assert.Equal(["/opt/bin/app", "/bin/app"], p.Syscalls(Sys.Execve).Select(e => p.String(e.Args[0])));
        Assert.DoesNotContain(p.Ops, o => o.Description.Contains("pivot_root") || o.Description.Contains("sethostname") || o.Syscall == Sys.Mount);
    }

    [Fact]
    public void Seccomp_is_loaded_before_the_user_change_without_no_new_privs_and_last_with_it()
    {
        var seccomp = Berth.Seccomp.SeccompProgramCache.Shared.GetOrCompile(
            new LinuxSeccomp { DefaultAction = "SCMP_ACT_ALLOW", Syscalls = [new LinuxSyscall { Names = ["mkdir"], Action = "SCMP_ACT_ERRNO" }] },
            Berth.Seccomp.SeccompArchitectures.Native);
        var plain = Process();
        plain.NoNewPrivileges = false;
        using (var p = Compile(plain, seccomp: seccomp))
        {
            var load = p.IndexOf(p.Syscalls(Sys.Seccomp).Single());
            Assert.True(load < p.MustFind("setresuid"), "without no_new_privs, loading needs CAP_SYS_ADMIN: before the user change");
        }
        var nnp = Process();
        nnp.NoNewPrivileges = true;
        using (var p = Compile(nnp, seccomp: seccomp))
        {
            var load = p.IndexOf(p.Syscalls(Sys.Seccomp).Single());
            Assert.True(load > p.MustFind("wait for the runtime (cgroup)") && load < p.IndexOf(p.Syscalls(Sys.Execve).First()));
        }
    }

    [Fact]
    public void A_terminal_sends_a_new_pty_to_the_console_socket_and_leaves_dev_console_alone()
    {
        var process = Process();
        process.Terminal = true;
        Assert.Throws<RuntimeException>(() => Compile(process));
        using var p = Compile(process, consoleFd: ConsoleFd);
        Assert.True(p.MustFind("open /dev/ptmx") > p.MustFind("fork the process"));
        p.MustFind("send the pty master to the console socket");
        p.MustFind("make the pty the controlling terminal");
        Assert.Equal(-1, p.Find("/dev/console"));
    }

    [Fact]
    public void Flags_override_the_containers_process_as_runc_exec_does()
    {
        var container = Process("sleep", "100");
        container.Terminal = true;
        container.Env = ["PATH=/bin", "A=1"];
        container.User = new User { Uid = 0, Gid = 0, AdditionalGids = [1] };
        container.Capabilities = new LinuxCapabilities { Bounding = ["CAP_KILL"], Effective = ["CAP_KILL"], Permitted = ["CAP_KILL"] };
        var merged = ContainerRuntime.BuildExecProcess(container, new ExecOverrides
        {
            Args = ["ps"], Env = ["A=2"], Uid = 1000, Gid = 1001, AdditionalGids = [2], Cwd = "/tmp", Capabilities = ["net_admin"],
        });
        Assert.Equal(["ps"], merged.Args);
        Assert.False(merged.Terminal); // -t decides
        Assert.Equal(["PATH=/bin", "A=1", "A=2"], merged.Env);
        Assert.Equal((1000u, 1001u), (merged.User.Uid, merged.User.Gid));
        Assert.Equal([1u, 2u], merged.User.AdditionalGids);
        Assert.Equal("/tmp", merged.Cwd);
        Assert.Equal(["CAP_KILL", "CAP_NET_ADMIN"], merged.Capabilities!.Bounding);
        Assert.Equal(["CAP_NET_ADMIN"], merged.Capabilities.Ambient);
        Assert.Equal(["sleep", "100"], container.Args); // the container's own process is unchanged

        var unchanged = ContainerRuntime.BuildExecProcess(container, new ExecOverrides { Args = ["true"] });
        Assert.Equal(("/", 0u), (unchanged.Cwd, unchanged.User.Uid));
        Assert.Equal(["CAP_KILL"], unchanged.Capabilities!.Effective);
    }

    [Fact]
    public void Update_merges_field_by_field()
    {
        var current = new LinuxResources
        {
            Memory = new LinuxMemory { Limit = 100, Reservation = 50 }, Pids = new LinuxPids { Limit = 10 },
            Cpu = new LinuxCpu { Shares = 512, Quota = 1000 },
        };
        var merged = ContainerRuntime.MergeResources(current, new LinuxResources
        {
            Memory = new LinuxMemory { Limit = 200 }, Cpu = new LinuxCpu { Period = 100_000 },
        });
        Assert.Equal((200L, 50L), (merged.Memory!.Limit, merged.Memory.Reservation));
        Assert.Equal((512UL, 1000L, 100_000UL), (merged.Cpu!.Shares!.Value, merged.Cpu.Quota!.Value, merged.Cpu.Period!.Value));
        Assert.Equal(10L, merged.Pids!.Limit);
    }
}
