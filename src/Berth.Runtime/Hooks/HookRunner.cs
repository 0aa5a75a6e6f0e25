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
        Span<int> pipe = stackalloc int[2];
        LibC.Check(LibC.pipe2(pipe, Sys.O_CLOEXEC), "pipe2");
        int readFd = pipe[0], writeFd = pipe[1], pid;
        try
        {
            var program = Compile(hook, readFd, namespacePid);
            using (var native = program.Build(2))
                pid = Executor.Spawn(native);
        }
        finally { LibC.close(readFd); }

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

    static ChildProgram Compile(Hook hook, int stdinFd, int? namespacePid)
    {
        var p = new ChildProgram();
        var fd = p.NewSlot();
        if (namespacePid is { } nsPid)
        {
            foreach (var (file, flag) in JoinOrder)
            {
                var theirs = $"/proc/{nsPid}/ns/{file}";
                if (SameNamespace(theirs, $"/proc/self/ns/{file}")) continue;
                p.Syscall(Sys.OpenAt, $"open {theirs}", Sys.AT_FDCWD, p.String(theirs), Sys.O_RDONLY | Sys.O_CLOEXEC).Result = fd;
                p.Syscall(Sys.Setns, $"join {theirs}", fd, (long)flag);
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
