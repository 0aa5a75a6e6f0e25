using Berth.Oci;
using Berth.Runtime.Native;

namespace Berth.Runtime.Init;

/// <summary>What the exec compiler needs: the process to run and what the parent opened for it.</summary>
public sealed class ExecOptions
{
    /// <summary>The process as it will run: the container's process section with the exec flags applied, or process.json.</summary>
    public required Berth.Oci.Process Process { get; init; }
    /// <summary>
    /// The namespaces of the container's init to join, opened O_CLOEXEC by the parent from
    /// /proc/&lt;init&gt;/ns/* (the ones the runtime already shares are left out): type → fd.
    /// </summary>
    public required IReadOnlyList<(string Type, int Fd)> Namespaces { get; init; }
    /// <summary>The child's end of the report socket (see InitMessage).</summary>
    public required int ReportFd { get; init; }
    /// <summary>A connected socket to send the pty master to (process.terminal), or -1.</summary>
    public int ConsoleSocketFd { get; init; } = -1;
    public int PreserveFds { get; init; }
    /// <summary>
    /// cgroup v1 group directories the intermediate joins itself ("0" to their tasks files,
    /// before any setns) so that the process is forked inside them; the cgroup2 group is
    /// joined by the clone (ChildProgram.CgroupFd). Null: the parent moves the process through
    /// cgroup.procs and the process waits for it before execve.
    /// </summary>
    public IReadOnlyList<string>? CgroupsToJoin { get; init; }
    /// <summary>The container's linux.seccomp compiled to BPF in the parent.</summary>
    public Berth.Seccomp.SeccompProgram? Seccomp { get; init; }
}

/// <summary>
/// Compiles an <c>exec</c> into the child program the native executor runs, as runc's
/// nsexec + setns_init_linux.go: the first child joins every namespace of the container's
/// init (user first, mount last), then forks, because a joined pid namespace applies only to
/// children. CLONE_PARENT makes the exec'd process a child of the runtime, which reaps it and
/// reports its exit code; the intermediate reports the pid and exits. The intermediate joins
/// the container's cgroups before forking (or, when it cannot, the exec'd process waits until
/// the runtime has moved it), so nothing the user asked for runs outside the cgroup. The exec'd
/// process sets itself up (<see cref="ProcessEmitter"/>) and execs.
/// </summary>
public sealed class ExecCompiler
{
    readonly ExecOptions _o;
    readonly ChildProgram _p = new();
    readonly Slot _report, _console, _pid, _scratch;

    ExecCompiler(ExecOptions options)
    {
        _o = options;
        _report = _p.Preset(options.ReportFd);
        _console = _p.Preset(options.ConsoleSocketFd);
        _pid = _p.NewSlot();
        _scratch = _p.NewSlot();
    }

    /// <summary>The program; its Fork op's parent branch reports <see cref="InitMessage.InitPid"/> with the exec'd process's pid.</summary>
    public static ChildProgram Compile(ExecOptions options)
    {
        var compiler = new ExecCompiler(options);
        compiler.Emit();
        return compiler._p;
    }

    // User first: it grants the rights to join the others. Mount last: the namespace files
    // are opened by the parent, but nothing may resolve a path in the wrong root.
    static int JoinOrder(string type) => type switch { NamespaceType.User => 0, NamespaceType.Mount => 2, _ => 1 };

    void Emit()
    {
        var process = _o.Process;
        if (process.Args is not { Count: > 0 } args) throw new RuntimeException("exec: process.args must not be empty");
        if (process.Terminal && _o.ConsoleSocketFd < 0) throw new RuntimeException("exec: a terminal (-t) needs --console-socket");
        var env = process.Env ?? [];
        var emit = new ProcessEmitter(_p);

        // A thread that moves itself into a v1 group does not take the cgroup threadgroup lock
        // (whose write side waits for an RCU grace period); first, while paths are the host's.
        if (_o.CgroupsToJoin is { } groups)
        {
            var zero = _p.Bytes("0"u8);
            foreach (var group in groups)
            {
                var tasks = Path.Combine(group, "tasks");
                _p.Syscall(Sys.OpenAt, $"open {tasks}", Sys.AT_FDCWD, _p.String(tasks), Sys.O_WRONLY | Sys.O_CLOEXEC).Result = _scratch;
                _p.Syscall(Sys.Write, $"join cgroup {group}", _scratch, zero, 1);
                _p.Syscall(Sys.Close, "close", _scratch);
            }
        }
        foreach (var (type, fd) in _o.Namespaces.OrderBy(n => JoinOrder(n.Type)))
        {
            var slot = _p.Preset(fd);
            _p.Syscall(Sys.Setns, $"join the container's {type} namespace", slot, (long)InitCompiler.CloneFlag(type));
            _p.Syscall(Sys.Close, "close", slot);
        }
        var tail = new Label();
        _p.Add(new Op
        {
            Kind = OpKind.Fork, Args = [(long)Sys.CLONE_PARENT], Result = _pid, OnSuccess = tail,
            Description = "fork the process into the container's pid namespace",
        });

        // The exec'd process, in runc's order (setns_init_linux.go).
        _p.Syscall(Sys.Setsid, "setsid");
        if (process.Terminal) emit.Console(process, _console, null);
        emit.ExecLabel(process.ApparmorProfile, process.SelinuxLabel, _scratch);
        emit.Credentials(process, _o.PreserveFds, _o.Seccomp, _report);
        var candidates = ProcessEmitter.ExecCandidates(args[0], env);
        emit.ExecutableCheck(args[0], candidates);
        if (_o.CgroupsToJoin is null) emit.WaitForByte(_report, "wait for the runtime (cgroup)");
        if (process.NoNewPrivileges) emit.Seccomp(_o.Seccomp, _report);
        emit.Exec(args, env, candidates);

        // The intermediate process: report the pid, exit.
        _p.Place(tail);
        var message = _p.Struct(16, w => w.Int32(0, (int)InitMessage.InitPid));
        _p.Add(new Op { Kind = OpKind.Store, Args = [new OpArg(OpArgKind.Data, message.Offset + 8), _pid.Index, 8], Description = "record the process's pid" });
        _p.Syscall(Sys.Write, "report the process's pid to the runtime", _report, message, 16);
        _p.Add(new Op { Kind = OpKind.Exit, Args = [0], Description = "exit the intermediate process" });
    }
}
