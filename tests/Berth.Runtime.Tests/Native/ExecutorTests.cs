using System.Buffers.Binary;
using Berth.Runtime.Native;

namespace Berth.Runtime.Tests.Native;

/// <summary>The native executor running small programs in a real child (no namespaces: no root needed).</summary>
public sealed class ExecutorTests
{
    static int SpawnAndWait(ChildProgram program, int reportFd = 2)
    {
        int pid;
        using (var native = program.Build(reportFd)) pid = Executor.Spawn(native);
        Assert.Equal(pid, LibC.waitpid(pid, out var status, 0));
        var (code, signal) = LibC.DecodeWaitStatus(status);
        Assert.Equal(0, signal);
        return code;
    }

    [NativeFact]
    public void A_program_runs_in_the_child_and_exits_with_its_code()
    {
        var p = new ChildProgram();
        p.Add(new Op { Kind = OpKind.Exit, Args = [42], Description = "exit 42" });
        Assert.Equal(42, SpawnAndWait(p));
    }

    [NativeFact]
    public void Tolerated_errno_jumps_to_its_label_and_success_follows_on_success()
    {
        var p = new ChildProgram();
        var tolerated = new Label();
        p.Syscall(Sys.Close, "close a bad fd", 1000).Tolerate(Sys.EBADF, tolerated);
        p.Add(new Op { Kind = OpKind.Exit, Args = [1], Description = "not reached" });
        p.Place(tolerated);
        var end = new Label();
        p.Jump(end, "skip");
        p.Add(new Op { Kind = OpKind.Exit, Args = [2], Description = "skipped" });
        p.Place(end);
        p.Add(new Op { Kind = OpKind.Exit, Args = [7], Description = "exit 7" });
        Assert.Equal(7, SpawnAndWait(p));
    }

    [NativeFact]
    public void A_failing_op_is_reported_with_its_index_and_errno_and_the_child_exits_1()
    {
        Span<int> pair = stackalloc int[2];
        LibC.Check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC, 0, pair), "socketpair");
        try
        {
            var p = new ChildProgram();
            p.Syscall(Sys.Umask, "harmless", 0x12);
            p.Syscall(Sys.Close, "close a bad fd", 1000);
            Assert.Equal(1, SpawnAndWait(p, pair[1]));
            Span<byte> report = stackalloc byte[16];
            Assert.Equal(16, (int)LibC.read(pair[0], report, 16));
            Assert.Equal(1, BinaryPrimitives.ReadInt32LittleEndian(report)); // REPORT_FAILURE
            Assert.Equal(1, BinaryPrimitives.ReadInt32LittleEndian(report[4..])); // op index
            Assert.Equal(Sys.EBADF, (int)BinaryPrimitives.ReadInt64LittleEndian(report[8..]));
        }
        finally { LibC.close(pair[0]); LibC.close(pair[1]); }
    }

    [NativeFact]
    public void Fork_with_clone_parent_makes_a_sibling_whose_pid_the_parent_side_can_report()
    {
        Span<int> pair = stackalloc int[2];
        LibC.Check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC, 0, pair), "socketpair");
        try
        {
            var p = new ChildProgram();
            var report = p.Preset(pair[1]);
            var child = p.NewSlot();
            var parentSide = new Label();
            p.Add(new Op { Kind = OpKind.Fork, Args = [(long)Sys.CLONE_PARENT], Result = child, OnSuccess = parentSide, Description = "fork" });
            p.Add(new Op { Kind = OpKind.Exit, Args = [5], Description = "the forked child exits 5" });
            p.Place(parentSide);
            var message = p.Struct(16, w => w.Int32(0, 3));
            p.Add(new Op { Kind = OpKind.Store, Args = [new OpArg(OpArgKind.Data, message.Offset + 8), child.Index, 8], Description = "store pid" });
            p.Syscall(Sys.Write, "report", report, message, 16);
            p.Add(new Op { Kind = OpKind.Exit, Args = [3], Description = "the intermediate exits 3" });
            Assert.Equal(3, SpawnAndWait(p));

            Span<byte> buffer = stackalloc byte[16];
            Assert.Equal(16, (int)LibC.read(pair[0], buffer, 16));
            var sibling = (int)BinaryPrimitives.ReadInt64LittleEndian(buffer[8..]);
            // CLONE_PARENT: the forked process is our child, so we can reap it.
            Assert.Equal(sibling, LibC.waitpid(sibling, out var status, 0));
            Assert.Equal((5, 0), LibC.DecodeWaitStatus(status));
        }
        finally { LibC.close(pair[0]); LibC.close(pair[1]); }
    }

    [NativeFact]
    public void Conditional_jumps_compare_slots_and_immediates()
    {
        var p = new ChildProgram();
        var value = p.Preset(7);
        var equal = new Label();
        var different = new Label();
        p.JumpIfDifferent(value, 7, different, "7 is 7: no jump");
        p.JumpIfEqual(value, 7, equal, "7 is 7: jump");
        p.Add(new Op { Kind = OpKind.Exit, Args = [1], Description = "not reached" });
        p.Place(different);
        p.Add(new Op { Kind = OpKind.Exit, Args = [2], Description = "not reached either" });
        p.Place(equal);
        var end = new Label();
        p.JumpIfEqual(value, 8, different, "7 is not 8: no jump");
        p.JumpIfDifferent(value, 8, end, "7 is not 8: jump");
        p.Add(new Op { Kind = OpKind.Exit, Args = [3], Description = "not reached" });
        p.Place(end);
        p.Add(new Op { Kind = OpKind.Exit, Args = [value], Description = "exit with the slot" });
        Assert.Equal(7, SpawnAndWait(p));
    }

    /// <summary>Runs PasswdHome on a file with <paramref name="passwd"/> for <paramref name="uid"/>: (result, buffer up to its NUL).</summary>
    static (int Result, string Home) PasswdHome(string passwd, uint uid)
    {
        var dir = Directory.CreateTempSubdirectory("berth-passwd-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "passwd"), passwd);
            var input = LibC.open(Path.Combine(dir, "passwd"), Sys.O_RDONLY | Sys.O_CLOEXEC, 0);
            var output = LibC.open(Path.Combine(dir, "out"), Sys.O_WRONLY | Sys.O_CREAT | Sys.O_CLOEXEC, 0x180);
            Assert.True(input >= 0 && output >= 0);
            try
            {
                var p = new ChildProgram();
                var buffer = new byte[64];
                "HOME=/"u8.CopyTo(buffer);
                var home = p.Bytes(buffer, 8);
                var result = p.NewSlot();
                p.Add(new Op { Kind = OpKind.PasswdHome, Args = [p.Preset(input), uid, home, buffer.Length], Result = result, Description = "passwd home" });
                p.Syscall(Sys.Write, "write the buffer", p.Preset(output), home, buffer.Length);
                p.Add(new Op { Kind = OpKind.Exit, Args = [result], Description = "exit with the result" });
                var code = SpawnAndWait(p);
                var written = File.ReadAllBytes(Path.Combine(dir, "out"));
                return (code, System.Text.Encoding.UTF8.GetString(written, 0, Array.IndexOf(written, (byte)0)));
            }
            finally { LibC.close(input); LibC.close(output); }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [NativeFact]
    public void PasswdHome_finds_the_first_entry_of_the_uid_as_runc_reads_passwd()
    {
        var longLine = "long:x:1000:1000:" + new string('g', 5000) + ":/wrong:/bin/sh\n";
        var passwd = "root:x:0:0:root:/root:/bin/sh\n" +
            "\n" +
            "bad:x:1x:0::/bad:/bin/sh\n" +
            longLine +
            "app:x:1000:1000:app:/home/app:/bin/sh\r\n" +
            "again:x:1000:1000::/home/again:/bin/sh\n" +
            "nohome:x:77:77\n" +
            "  spaced:x:42:42::/home/spaced  \n" +
            "last:x:5:5::/home/last:/bin/sh"; // no newline at the end
        Assert.Equal((1, "HOME=/root"), PasswdHome(passwd, 0));
        Assert.Equal((1, "HOME=/home/app"), PasswdHome(passwd, 1000)); // the over-long line is skipped, CR trimmed
        Assert.Equal((1, "HOME="), PasswdHome(passwd, 77)); // an entry without a home field gives an empty HOME (runc too)
        Assert.Equal((1, "HOME=/home/spaced"), PasswdHome(passwd, 42));
        Assert.Equal((1, "HOME=/home/last"), PasswdHome(passwd, 5));
        Assert.Equal((0, "HOME=/"), PasswdHome(passwd, 1234)); // not found: the buffer is untouched
        Assert.Equal((0, "HOME=/"), PasswdHome("", 0));
    }

    [NativeFact]
    public void A_failed_execve_marked_so_tells_its_own_stderr_in_runcs_words()
    {
        var dir = Directory.CreateTempSubdirectory("berth-exec-error-").FullName;
        try
        {
            var badElf = Path.Combine(dir, "bad");
            File.WriteAllBytes(badElf, [0x7f, (byte)'E', (byte)'L', (byte)'F', 1, 2, 3]);
            File.SetUnixFileMode(badElf, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            var stderr = LibC.open(Path.Combine(dir, "stderr"), Sys.O_WRONLY | Sys.O_CREAT | Sys.O_CLOEXEC, 0x180);
            Assert.True(stderr >= 0);
            try
            {
                var p = new ChildProgram();
                p.Syscall(Sys.Dup3, "stderr to the file", p.Preset(stderr), 2, 0);
                var argv = p.StringArray(["bad"]);
                var envp = p.StringArray([]);
                p.Syscall(Sys.Execve, "exec bad", p.String(badElf), argv, envp).ExecErrorToStderr = true;
                p.Syscall(Sys.Execve, "exec missing", p.String(Path.Combine(dir, "missing")), argv, envp).ExecErrorToStderr = true;
                // The first failure ends the program (exit 1): the second execve is not reached.
                Assert.Equal(1, SpawnAndWait(p, reportFd: 1000));
                Assert.Equal($"exec {badElf}: exec format error\n", File.ReadAllText(Path.Combine(dir, "stderr")));
            }
            finally { LibC.close(stderr); }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
