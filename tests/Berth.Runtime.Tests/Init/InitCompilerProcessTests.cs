using Berth.Oci;
using Berth.Runtime.Init;
using Berth.Runtime.Native;

namespace Berth.Runtime.Tests.Init;

public sealed class InitCompilerProcessTests
{
    [Fact]
    public void Every_capability_outside_the_bounding_set_is_dropped_before_the_user_change()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Process!.Capabilities = new LinuxCapabilities
        {
            Bounding = ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"], Effective = ["CAP_KILL"], Permitted = ["CAP_KILL", "CAP_CHOWN"],
            Inheritable = ["CAP_CHOWN"], Ambient = ["CAP_CHOWN"],
        };
        using var p = CompiledProgram.Compile(spec);
        var drops = p.Ops.Where(o => o.Syscall == Sys.Prctl && o.Args[0].Value == Sys.PR_CAPBSET_DROP).ToList();
        var dropped = drops.Select(o => (int)o.Args[1].Value).ToList();
        var kept = new[] { "CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW" }.Select(Capabilities.Parse).ToHashSet();
        Assert.Equal(Enumerable.Range(0, Capabilities.Last + 1).Where(c => !kept.Contains(c)), dropped);
        Assert.All(drops, d => Assert.Contains(d.Tolerated, t => t.Errno == Sys.EINVAL));
        var setresuid = p.Syscalls(Sys.Setresuid).Last();
        Assert.True(p.IndexOf(drops[^1]) < p.IndexOf(setresuid), "the bounding set needs CAP_SETPCAP: drop it before the user change");

        // capset(v3 header, data[2]) with the three sets, after the user change.
        var capset = p.Syscalls(Sys.Capset).Single();
        Assert.True(p.IndexOf(capset) > p.IndexOf(setresuid));
        Assert.Equal(0x20080522, p.Int32(capset.Args[0], 0));
        var data = capset.Args[1];
        Assert.Equal(1 << Capabilities.Parse("CAP_KILL"), p.Int32(data, 0)); // effective
        Assert.Equal((1 << Capabilities.Parse("CAP_KILL")) | (1 << Capabilities.Parse("CAP_CHOWN")), p.Int32(data, 4)); // permitted
        Assert.Equal(1 << Capabilities.Parse("CAP_CHOWN"), p.Int32(data, 8)); // inheritable
        var ambient = p.Single(o => o.Syscall == Sys.Prctl && o.Args[0].Value == Sys.PR_CAP_AMBIENT, "raises the ambient cap");
        Assert.Equal((long)Capabilities.Parse("CAP_CHOWN"), ambient.Args[2].Value);
        Assert.True(p.IndexOf(ambient) > p.IndexOf(capset));
    }

    [Fact]
    public void Process_setup_comes_in_runc_order()
    {
        var spec = UnitSpecs.Default("pid", "mount", "uts", "network");
        spec.Hostname = "box";
        spec.Domainname = "example.org";
        spec.Linux!.Sysctl = new() { ["net.ipv4.ip_forward"] = "1" };
        spec.Process!.NoNewPrivileges = true;
        using var p = CompiledProgram.Compile(spec);
        var order = new[]
        {
            p.MustFind("pivot_root"), p.MustFind("setsid"), p.MustFind("remount / read-only"), p.MustFind("sethostname box"),
            p.MustFind("setdomainname example.org"), p.MustFind("open sysctl net.ipv4.ip_forward"), p.MustFind("bind mount readonly path /proc/bus"),
            p.MustFind("mask /proc/acpi"), p.MustFind("set RLIMIT_NOFILE"), p.MustFind("set no_new_privs"), p.MustFind("mark inherited fds close-on-exec"),
            p.MustFind("from the bounding set"), p.MustFind("setgroups"), p.MustFind("setresgid 0"), p.MustFind("setresuid 0"), p.MustFind("set capabilities"),
            p.MustFind("as the container user"), p.MustFind("set the umask"), p.MustFind("report Ready"), p.MustFind("wait for start"), p.MustFind("exec "),
        };
        Assert.True(order.SequenceEqual(order.Order()), $"out of order: [{string.Join(", ", order)}]\n{p.Dump()}");
        var sysctl = p.Ops[p.MustFind("open sysctl")];
        Assert.Equal("/proc/sys/net/ipv4/ip_forward", p.String(sysctl.Args[1]));
        var write = p.Ops[p.MustFind("write sysctl")];
        Assert.Equal("1", p.Bytes(write.Args[1], (int)write.Args[2].Value));
        var hostname = p.Ops[p.MustFind("sethostname")];
        Assert.Equal(("box", 3L), (p.String(hostname.Args[0]), hostname.Args[1].Value));
    }

    [Fact]
    public void Rlimits_are_set_with_prlimit64_and_unknown_types_are_refused()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Process!.Rlimits = [new PosixRlimit { Type = "RLIMIT_NOFILE", Soft = 123, Hard = 456 }, new PosixRlimit { Type = "RLIMIT_CORE", Soft = 0, Hard = ulong.MaxValue }];
        using (var p = CompiledProgram.Compile(spec))
        {
            var limits = p.Syscalls(Sys.Prlimit64).ToList();
            Assert.Equal(2, limits.Count);
            Assert.Equal(0L, limits[0].Args[0].Value); // this process
            Assert.Equal(7L, limits[0].Args[1].Value); // RLIMIT_NOFILE
            Assert.Equal((123L, 456L), (p.Int64(limits[0].Args[2], 0), p.Int64(limits[0].Args[2], 8)));
            Assert.Equal(4L, limits[1].Args[1].Value); // RLIMIT_CORE
            Assert.Equal(-1L, p.Int64(limits[1].Args[2], 8)); // RLIM_INFINITY
        }
        spec.Process.Rlimits = [new PosixRlimit { Type = "RLIMIT_BOGUS", Soft = 1, Hard = 1 }];
        var e = Assert.Throws<RuntimeException>(() => CompiledProgram.Compile(spec));
        Assert.Contains("RLIMIT_BOGUS", e.Message);
    }

    [Fact]
    public void Close_range_marks_everything_above_the_preserved_fds_close_on_exec()
    {
        using var p = CompiledProgram.Compile(UnitSpecs.Bare("pid", "mount"), preserveFds: 2);
        var close = p.Syscalls(Sys.CloseRange).Single();
        Assert.Equal(5L, close.Args[0].Value);
        Assert.Equal((long)uint.MaxValue, close.Args[1].Value);
        Assert.Equal((long)Sys.CLOSE_RANGE_CLOEXEC, close.Args[2].Value);
    }

    [Fact]
    public void User_groups_and_umask_are_set_as_configured()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Process!.User = new User { Uid = 1000, Gid = 100, AdditionalGids = [10, 20], Umask = 0x3f };
        using var p = CompiledProgram.Compile(spec);
        var groups = p.Syscalls(Sys.Setgroups).Single();
        Assert.Equal(2L, groups.Args[0].Value);
        Assert.Equal((10, 20), (p.Int32(groups.Args[1], 0), p.Int32(groups.Args[1], 4)));
        Assert.Equal([100L, 100L, 100L], p.Syscalls(Sys.Setresgid).Last().Args.Select(a => a.Value));
        Assert.Equal([1000L, 1000L, 1000L], p.Syscalls(Sys.Setresuid).Last().Args.Select(a => a.Value));
        Assert.Equal(0x3fL, p.Syscalls(Sys.Umask).Last().Args[0].Value);

        using var defaults = CompiledProgram.Compile(UnitSpecs.Bare("pid", "mount"));
        Assert.Equal(0L, defaults.Syscalls(Sys.Setgroups).Single().Args[0].Value);
        Assert.Equal(0x12L, defaults.Syscalls(Sys.Umask).Last().Args[0].Value); // 022
    }

    [Fact]
    public void Exec_candidates_follow_path_in_order_and_end_in_a_not_found_failure()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Process!.Args = ["app", "--flag"];
        spec.Process.Env = ["PATH=/opt/bin:/usr/bin/", "A=1"];
        using var p = CompiledProgram.Compile(spec);
        var execs = p.Syscalls(Sys.Execve).ToList();
        Assert.Equal(["/opt/bin/app", "/usr/bin/app"], execs.Select(e => p.String(e.Args[0])));
        Assert.All(execs, e => Assert.Equal([Sys.ENOENT, Sys.ENOTDIR, Sys.EACCES], e.Tolerated.Select(t => t.Errno)));
        var fail = p.Ops[p.IndexOf(execs[^1]) + 1];
        Assert.Equal(OpKind.Fail, fail.Kind);
        Assert.Equal((long)Sys.ENOENT, fail.Args[0].Value);
        Assert.Contains("executable file not found in $PATH", fail.Description);
        Assert.Equal(["app", "--flag"], ReadStringArray(p, execs[0].Args[1]));
        // No HOME in the env: the last entry is the one the /etc/passwd lookup fills ("/" until then).
        Assert.Equal(["PATH=/opt/bin:/usr/bin/", "A=1", "HOME=/"], ReadStringArray(p, execs[0].Args[2]));

        // create fails when nothing is executable: faccessat of each candidate before "ready".
        var checks = p.Syscalls(Sys.FaccessAt).Select(o => p.String(o.Args[1])).ToList();
        Assert.Equal(["/opt/bin/app", "/usr/bin/app"], checks);
        Assert.True(p.IndexOf(p.Syscalls(Sys.FaccessAt).Last()) < p.MustFind("report Ready"));
    }

    [Fact]
    public void Without_path_the_default_path_is_searched_and_an_absolute_command_is_executed_directly()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Process!.Args = ["sh"];
        spec.Process.Env = [];
        using (var p = CompiledProgram.Compile(spec))
            Assert.Equal(["/usr/local/sbin/sh", "/usr/local/bin/sh", "/usr/sbin/sh", "/usr/bin/sh", "/sbin/sh", "/bin/sh"],
                p.Syscalls(Sys.Execve).Select(e => p.String(e.Args[0])));
        spec.Process.Args = ["/bin/echo", "hi"];
        using var direct = CompiledProgram.Compile(spec);
        var exec = direct.Syscalls(Sys.Execve).Single();
        Assert.Equal("/bin/echo", direct.String(exec.Args[0]));
        Assert.Empty(exec.Tolerated);
        Assert.DoesNotContain(direct.Ops, o => o.Kind == OpKind.Fail);
    }

    [Fact]
    public void The_init_reports_ready_and_blocks_on_the_exec_fifo_right_before_execve()
    {
        using var p = CompiledProgram.Compile(UnitSpecs.Bare("pid", "mount"));
        var read = p.Single(o => o.Description == "wait for start", "waits for start");
        Assert.Equal(Sys.Read, read.Syscall);
        Assert.Equal(new OpArg(OpArgKind.Slot, 1), read.Args[0]); // the preset exec fifo slot
        Assert.True(read.FailOnZero, "end of file on the fifo means the runtime went away: the init must not exec");
        var ready = p.Ops[p.IndexOf(read) - 1];
        Assert.Equal((int)InitMessage.Ready, p.Int32(ready.Args[1], 0));
        Assert.Equal(Sys.Execve, p.Ops[p.IndexOf(read) + 1].Syscall);
    }

    [Fact]
    public void A_terminal_needs_a_console_socket_and_sends_the_pty_master_over_it()
    {
        var spec = UnitSpecs.Default("pid", "mount");
        spec.Process!.Terminal = true;
        spec.Process.ConsoleSize = new ConsoleSize { Height = 24, Width = 80 };
        Assert.Throws<RuntimeException>(() => CompiledProgram.Compile(spec));

        using var p = CompiledProgram.Compile(spec, consoleFd: 9);
        var open = p.Ops[p.MustFind("open /dev/ptmx")];
        Assert.Equal("/dev/ptmx", p.String(open.Args[1]));
        var peer = p.Ops[p.MustFind("open the pty slave")];
        Assert.Equal((long)Sys.TIOCGPTPEER, peer.Args[1].Value);
        var size = p.Ops[p.MustFind("set the console size")];
        Assert.Equal((24, 80), (p.Int32(size.Args[2], 0) & 0xffff, p.Int32(size.Args[2], 0) >> 16));
        var send = p.Ops[p.MustFind("send the pty master")];
        Assert.Equal(Sys.Sendmsg, send.Syscall);
        Assert.Equal(new OpArg(OpArgKind.Slot, 2), send.Args[0]); // the preset console socket slot
        var dups = p.Syscalls(Sys.Dup3).Where(o => o.Description.StartsWith("make the pty fd")).Select(o => o.Args[1].Value).ToList();
        Assert.Equal([0L, 1L, 2L], dups);
        Assert.Contains(p.Ops, o => o.Syscall == Sys.Ioctl && o.Args[1].Value == Sys.TIOCSCTTY);
        Assert.True(p.MustFind("send the pty master") < p.MustFind("report Ready"));
    }

    static unsafe List<string> ReadStringArray(CompiledProgram p, OpArg array)
    {
        var result = new List<string>();
        for (var ptr = (long*)p.Address(array); *ptr != 0; ptr++)
            result.Add(System.Runtime.InteropServices.Marshal.PtrToStringUTF8((IntPtr)(*ptr))!);
        return result;
    }

    [Fact]
    public void Stdio_goes_to_the_user_and_home_is_looked_up_as_root_before_the_user_change()
    {
        var spec = UnitSpecs.Default("pid", "mount");
        spec.Process!.User = new User { Uid = 1000, Gid = 1000 };
        spec.Process.Env = ["PATH=/bin"];
        using var p = CompiledProgram.Compile(spec);
        var setuid = p.MustFind("setresuid 1000");
        var chowns = p.Syscalls(Sys.Fchown).ToList();
        Assert.Equal([0L, 2L, 1L], chowns.Select(o => o.Args[0].Value)); // runc's order
        Assert.All(chowns, o => Assert.Equal(1000L, o.Args[1].Value));
        Assert.All(chowns, o => Assert.Equal([Sys.EINVAL, Sys.EPERM, Sys.EROFS], o.Tolerated.Select(t => t.Errno)));
        Assert.All(chowns, o => Assert.True(p.IndexOf(o) < setuid));
        // Each chown is skipped for /dev/null.
        Assert.Equal(3, p.Ops.Count(o => o.Kind == OpKind.JumpIfEqual && o.Args[1].Value == Sys.DevNullRdev));
        var home = p.Ops.Single(o => o.Kind == OpKind.PasswdHome);
        Assert.Equal(1000L, home.Args[1].Value);
        Assert.True(p.IndexOf(home) < setuid);
        Assert.True(p.MustFind("pivot_root") < p.IndexOf(home)); // the container's /etc/passwd

        // stdio that is /dev/null is reopened on the container's /dev/null, once in the new root.
        var reopen = p.Syscalls(Sys.Dup3).Where(o => o.Description.Contains("container's /dev/null")).ToList();
        Assert.Equal([0L, 1L, 2L], reopen.Select(o => o.Args[1].Value));
        Assert.True(p.MustFind("pivot_root") < p.MustFind("open /dev/null to reopen stdio"));

        // A HOME in the env: no lookup.
        spec.Process.Env = ["PATH=/bin", "HOME=/home/given"];
        using var given = CompiledProgram.Compile(spec);
        Assert.DoesNotContain(given.Ops, o => o.Kind == OpKind.PasswdHome);
    }

    [Fact]
    public void Stdio_is_not_reopened_when_dev_is_the_hosts()
    {
        var spec = UnitSpecs.Default("pid", "mount");
        spec.Mounts = [.. spec.Mounts!.Where(m => m.Destination != "/dev"), new Mount { Destination = "/dev", Type = "bind", Source = "/dev", Options = ["rbind"] }];
        using var p = CompiledProgram.Compile(spec);
        Assert.DoesNotContain(p.Ops, o => o.Description.StartsWith("open /dev/null to reopen stdio"));
    }
}
