using Berth.Oci;
using Berth.Runtime.Init;
using Berth.Runtime.Native;

namespace Berth.Runtime.Tests.Init;

public sealed class InitCompilerNamespaceTests
{
    const ulong NewPidNetIpcUtsMnt = Sys.CLONE_NEWPID | Sys.CLONE_NEWNET | Sys.CLONE_NEWIPC | Sys.CLONE_NEWUTS | Sys.CLONE_NEWNS;

    [Fact]
    public void Fast_path_clones_every_new_namespace_except_cgroup_and_time_and_starts_with_the_parent_setup()
    {
        using var p = CompiledProgram.Compile(UnitSpecs.Default("pid", "network", "ipc", "uts", "mount", "cgroup", "time"));
        Assert.Equal(NewPidNetIpcUtsMnt, p.Program.CloneFlags);
        Assert.False(p.ForksInit);
        Assert.DoesNotContain(p.Ops, o => o.Kind == OpKind.Fork);

        // Op 0 reports ParentSetup on the report socket (preset slot 0), op 1 waits for the reply.
        var report = p.Ops[0];
        Assert.Equal((OpKind.Syscall, Sys.Write), (report.Kind, report.Syscall));
        Assert.Equal(new OpArg(OpArgKind.Slot, 0), report.Args[0]);
        Assert.Equal((int)InitMessage.ParentSetup, p.Int32(report.Args[1], 0));
        Assert.Equal(16L, report.Args[2].Value);
        var wait = p.Ops[1];
        Assert.Equal((OpKind.Syscall, Sys.Read), (wait.Kind, wait.Syscall));
        Assert.Equal(new OpArg(OpArgKind.Slot, 0), wait.Args[0]);
        Assert.True(wait.FailOnZero, "end of file on the report socket (the runtime died) must fail the child");

        // cgroup and time come by unshare after the parent moved the child into its cgroup.
        var cgroup = p.Single(o => o.Syscall == Sys.Unshare && o.Args[0].Value == (long)Sys.CLONE_NEWCGROUP, "unshares the cgroup namespace");
        var time = p.Single(o => o.Syscall == Sys.Unshare && o.Args[0].Value == (long)Sys.CLONE_NEWTIME, "unshares the time namespace");
        Assert.True(p.IndexOf(cgroup) > 1 && p.IndexOf(time) > 1, p.Dump());
    }

    [Fact]
    public void Fast_path_with_a_user_namespace_becomes_root_of_it_after_the_parent_wrote_the_maps()
    {
        using var p = CompiledProgram.Compile(UnitSpecs.Default("pid", "user", "mount"));
        Assert.Equal(Sys.CLONE_NEWPID | Sys.CLONE_NEWUSER | Sys.CLONE_NEWNS, p.Program.CloneFlags);
        Assert.Equal(Sys.Setresgid, p.Ops[2].Syscall);
        Assert.Equal([0L, 0L, 0L], p.Ops[2].Args.Select(a => a.Value));
        Assert.Equal(Sys.Setresuid, p.Ops[3].Syscall);
        Assert.Equal([0L, 0L, 0L], p.Ops[3].Args.Select(a => a.Value));
    }

    [Fact]
    public void Joining_a_namespace_by_path_takes_the_general_path_open_setns_unshare_and_fork()
    {
        using var p = CompiledProgram.Compile(UnitSpecs.Default("pid", "network=/proc/1/ns/net", "ipc", "uts", "mount"));
        Assert.Equal(0UL, p.Program.CloneFlags);
        Assert.True(p.ForksInit);

        var open = p.Ops[0];
        Assert.Equal(Sys.OpenAt, open.Syscall);
        Assert.Equal("/proc/1/ns/net", p.String(open.Args[1]));
        Assert.Equal((long)(Sys.O_RDONLY | Sys.O_CLOEXEC), open.Args[2].Value);
        Assert.NotNull(open.Result);
        var setns = p.Ops[1];
        Assert.Equal(Sys.Setns, setns.Syscall);
        Assert.Equal(new OpArg(OpArgKind.Slot, open.Result!.Value.Index), setns.Args[0]);
        Assert.Equal((long)Sys.CLONE_NEWNET, setns.Args[1].Value);

        var report = p.First(o => o.Syscall == Sys.Write && o.Args.Length == 3 && o.Args[1].Kind == OpArgKind.Data && p.Int32(o.Args[1], 0) == (int)InitMessage.ParentSetup, "reports ParentSetup");
        var unshare = p.Single(o => o.Syscall == Sys.Unshare, "unshares the new namespaces");
        Assert.Equal((long)(Sys.CLONE_NEWPID | Sys.CLONE_NEWIPC | Sys.CLONE_NEWUTS | Sys.CLONE_NEWNS), unshare.Args[0].Value);
        var fork = p.Single(o => o.Kind == OpKind.Fork, "forks the init");
        Assert.Equal((long)Sys.CLONE_PARENT, fork.Args[0].Value);
        Assert.True(p.IndexOf(setns) < p.IndexOf(report) && p.IndexOf(report) < p.IndexOf(unshare) && p.IndexOf(unshare) < p.IndexOf(fork), p.Dump());

        // The intermediate process (the Fork's parent side) reports the init's pid and exits.
        Assert.NotNull(fork.OnSuccess);
        var tail = p.Ops.Skip(fork.OnSuccess!.Target).ToList();
        Assert.Equal(OpKind.Store, tail[0].Kind);
        Assert.Equal(fork.Result!.Value.Index, tail[0].Args[1].Value);
        Assert.Equal(Sys.Write, tail[1].Syscall);
        Assert.Equal((int)InitMessage.InitPid, p.Int32(tail[1].Args[1], 0));
        Assert.Equal(OpKind.Exit, tail[2].Kind);
        Assert.Equal(0L, tail[2].Args[0].Value);
        // The init's program (the Fork's child side) ends in execve before the tail.
        Assert.True(p.Syscalls(Sys.Execve).All(e => p.IndexOf(e) < fork.OnSuccess.Target), p.Dump());
    }

    [Fact]
    public void Joined_user_namespace_comes_first_and_mount_last()
    {
        using var p = CompiledProgram.Compile(UnitSpecs.Default("mount=/proc/1/ns/mnt", "uts=/proc/1/ns/uts", "user=/proc/1/ns/user", "pid"));
        var joins = p.Syscalls(Sys.Setns).Select(o => o.Args[1].Value).ToList();
        Assert.Equal([(long)Sys.CLONE_NEWUSER, (long)Sys.CLONE_NEWUTS, (long)Sys.CLONE_NEWNS], joins);
        // Every namespace file is opened before the first setns: after joining the mount
        // namespace, /proc paths would mean something else.
        var lastOpen = p.Ops.ToList().FindLastIndex(o => o.Syscall == Sys.OpenAt && p.String(o.Args[1]).StartsWith("/proc/1/ns/", StringComparison.Ordinal));
        Assert.True(lastOpen < p.IndexOf(p.Syscalls(Sys.Setns).First()), p.Dump());
    }

    [Fact]
    public void Joining_a_pid_namespace_forks_the_init_and_creating_none_does_not()
    {
        using (var joinsPid = CompiledProgram.Compile(UnitSpecs.Default("pid=/proc/1/ns/pid", "mount")))
        {
            Assert.True(joinsPid.ForksInit);
            Assert.Single(joinsPid.Ops, o => o.Kind == OpKind.Fork);
        }
        using var noPid = CompiledProgram.Compile(UnitSpecs.Default("uts=/proc/1/ns/uts", "mount"));
        Assert.False(noPid.ForksInit);
        Assert.DoesNotContain(noPid.Ops, o => o.Kind == OpKind.Fork);
    }

    [Fact]
    public void Time_namespace_offsets_are_written_before_the_init_is_forked()
    {
        var spec = UnitSpecs.Default("pid", "time", "mount", "uts=/proc/1/ns/uts");
        spec.Linux!.TimeOffsets = new() { ["monotonic"] = new LinuxTimeOffset { Secs = 86400 }, ["boottime"] = new LinuxTimeOffset { Secs = 3600, Nanosecs = 5 } };
        using var p = CompiledProgram.Compile(spec);
        var unshare = p.Single(o => o.Syscall == Sys.Unshare && o.Args[0].Value == (long)Sys.CLONE_NEWTIME, "unshares the time namespace");
        var open = p.Single(o => o.Syscall == Sys.OpenAt && p.String(o.Args[1]) == "/proc/self/timens_offsets", "opens timens_offsets");
        var write = p.Ops[p.IndexOf(open) + 1];
        Assert.Equal(Sys.Write, write.Syscall);
        Assert.Equal("monotonic 86400 0\nboottime 3600 5\n", p.Bytes(write.Args[1], (int)write.Args[2].Value));
        var fork = p.Single(o => o.Kind == OpKind.Fork, "forks the init");
        Assert.True(p.IndexOf(unshare) < p.IndexOf(open) && p.IndexOf(write) < p.IndexOf(fork), p.Dump());
    }

    [Fact]
    public void Unknown_namespace_type_is_refused_by_name()
    {
        var e = Assert.Throws<RuntimeException>(() => CompiledProgram.Compile(UnitSpecs.Default("pid", "mount", "bogus")));
        Assert.Contains("\"bogus\"", e.Message);
    }
}
