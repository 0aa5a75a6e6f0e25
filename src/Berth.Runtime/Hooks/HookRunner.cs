using System.Text;
using Berth.Oci;
using Berth.Runtime.Native;

namespace Berth.Runtime.Hooks;

/// <summary>
/// Runs an OCI hook with the container state on its stdin. Hooks are spawned by the same
/// native executor as containers (no managed code between fork and exec); a hook that
/// must run "in the container namespace" first joins the namespaces of the container's
/// init (not its pid namespace, which would need a second fork).
/// </summary>
public static class HookRunner
{
    // User first: it grants the rights to join the others.
    static readonly (string File, ulong Flag)[] JoinOrder =
    [
        ("user", Sys.CLONE_NEWUSER), ("mnt", Sys.CLONE_NEWNS), ("ipc", Sys.CLONE_NEWIPC), ("uts", Sys.CLONE_NEWUTS),
        ("net", Sys.CLONE_NEWNET), ("cgroup", Sys.CLONE_NEWCGROUP),
    ];

    public static void Run(Hook hook, string stateJson, int? namespacePid = null)
    {
        Span<int> fds = stackalloc int[2];
        LibC.Check(LibC.pipe2(fds, Sys.O_CLOEXEC), "pipe2");
        int readFd = fds[0], writeFd = fds[1];
        // A failure before execve is reported here (struct berth_report); execve closes it.
        LibC.Check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC, 0, fds), "socketpair");
        int reportFd = fds[0], childReportFd = fds[1], pid;
        ChildProgram program;
        try
        {
            program = Compile(hook, readFd, namespacePid);
            using (var native = program.Build(childReportFd))
                pid = Executor.Spawn(native);
        }
        catch
        {
            LibC.close(reportFd);
            LibC.close(writeFd);
            throw;
        }
        finally
        {
            LibC.close(readFd);
            LibC.close(childReportFd);
        }
        var setupError = ReadFailure(reportFd, program);
        LibC.close(reportFd);
        if (setupError is not null)
        {
            LibC.close(writeFd);
            LibC.waitpid(pid, out _, 0);
            throw new RuntimeException(setupError);
        }

        try
        {
            var bytes = Encoding.UTF8.GetBytes(stateJson);
            // A hook that does not read its stdin closes the pipe: EPIPE is its business.
            LibC.write(writeFd, bytes, bytes.Length);
        }
        finally { LibC.close(writeFd); }

        var deadline = hook.Timeout is int seconds and > 0 ? DateTime.UtcNow.AddSeconds(seconds) : DateTime.MaxValue;
        var delay = 1;
        while (true)
        {
            var result = LibC.waitpid(pid, out var status, LibC.WNOHANG);
            if (result == pid)
            {
                var (code, signal) = LibC.DecodeWaitStatus(status);
                if (signal != 0) throw new RuntimeException($"killed by signal {signal}");
                if (code != 0) throw new RuntimeException($"exited with status {code}");
                return;
            }
            if (result < 0 && LibC.Errno != Sys.EINTR) throw LibC.Error($"wait for hook {pid}", LibC.Errno);
            if (DateTime.UtcNow > deadline)
            {
                LibC.kill(pid, Sys.SIGKILL);
                LibC.waitpid(pid, out _, 0);
                throw new RuntimeException($"timed out after {hook.Timeout} s");
            }
            Thread.Sleep(delay);
            delay = Math.Min(delay * 2, 20);
        }
    }

    /// <summary>Blocks until the child execs (end of file) or reports the step that failed.</summary>
    static string? ReadFailure(int fd, ChildProgram program)
    {
        Span<byte> report = stackalloc byte[16];
        nint n;
        do n = LibC.read(fd, report, 16);
        while (n < 0 && LibC.Errno == Sys.EINTR);
        if (n != 16) return null;
        var index = BitConverter.ToInt32(report[4..]);
        var errno = (int)BitConverter.ToInt64(report[8..]);
        var what = index < program.Ops.Count ? program.Ops[index].Description : "run";
        return $"{what}: {LibC.Describe(errno)}";
    }

    static ChildProgram Compile(Hook hook, int stdinFd, int? namespacePid)
    {
        var p = new ChildProgram();
        if (namespacePid is { } nsPid)
        {
            // Every namespace file is opened before the first setns: once in the container's
            // mount namespace, /proc is the container's and the host pid means nothing.
            var joins = new List<(string Path, ulong Flag, Slot Fd)>();
            foreach (var (file, flag) in JoinOrder)
            {
                var theirs = $"/proc/{nsPid}/ns/{file}";
                if (SameNamespace(theirs, $"/proc/self/ns/{file}")) continue;
                var fd = p.NewSlot();
                p.Syscall(Sys.OpenAt, $"open {theirs}", Sys.AT_FDCWD, p.String(theirs), Sys.O_RDONLY | Sys.O_CLOEXEC).Result = fd;
                joins.Add((theirs, flag, fd));
            }
            foreach (var (path, flag, fd) in joins)
            {
                p.Syscall(Sys.Setns, $"join {path}", fd, (long)flag);
                p.Syscall(Sys.Close, "close", fd);
            }
        }
        p.Syscall(Sys.Dup3, "make the state pipe stdin", stdinFd, 0, 0);
        p.Syscall(Sys.CloseRange, "mark fds close-on-exec", 3, uint.MaxValue, Sys.CLOSE_RANGE_CLOEXEC);
        var args = hook.Args is { Count: > 0 } a ? a : [hook.Path];
        p.Syscall(Sys.Execve, $"exec {hook.Path}", p.String(hook.Path), p.StringArray(args), p.StringArray(hook.Env ?? []));
        return p;
    }

    static bool SameNamespace(string a, string b)
    {
        try { return File.ResolveLinkTarget(a, false)?.Name == File.ResolveLinkTarget(b, false)?.Name; }
        catch (IOException) { return false; }
    }
}
