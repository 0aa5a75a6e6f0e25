using Berth.Oci;
using Berth.Runtime.Native;

namespace Berth.Runtime.Init;

/// <summary>What the compiler needs besides config.json.</summary>
public sealed class InitOptions
{
    public required Spec Spec { get; init; }
    public required string Rootfs { get; init; }
    public required string BundleDir { get; init; }
    /// <summary>The fd of the exec fifo, opened O_RDWR by the parent: the child blocks reading it until start.</summary>
    public required int StartFd { get; init; }
    /// <summary>The child's end of the report socket (see InitMessage).</summary>
    public required int ReportFd { get; init; }
    /// <summary>A connected socket to send the pty master to (terminal: true), or -1.</summary>
    public int ConsoleSocketFd { get; init; } = -1;
    public int PreserveFds { get; init; }
    public bool NoPivot { get; init; }
    /// <summary>Where the container's cgroup lives in each hierarchy, for the cgroup mount.</summary>
    public CgroupMountPlan? Cgroups { get; init; }
    public bool HostHasProcKcore { get; init; } = File.Exists("/proc/kcore");
    /// <summary>
    /// cgroup v1 group directories the child joins itself, by writing "0" to their tasks files
    /// (empty: the parent moves it). See ContainerRuntime.Create for why.
    /// </summary>
    public IReadOnlyList<string> CgroupsToJoin { get; init; } = [];
    /// <summary>linux.seccomp compiled to BPF in the parent; the child only loads it.</summary>
    public Berth.Seccomp.SeccompProgram? Seccomp { get; init; }
    /// <summary>Detached id-mapped copies of the id-mapped bind mounts' sources, by index in spec.mounts (see IdmappedMounts).</summary>
    public IReadOnlyDictionary<int, int> IdmappedMountFds { get; init; } = new Dictionary<int, int>();
    /// <summary>The runtime runs unprivileged (rootless): it can only write the id maps of a dumpable child.</summary>
    public bool UnprivilegedParent { get; init; } = Container.Rootless.IsUnprivileged;
}

/// <summary>The compiled child program and what the parent must know to talk to it.</summary>
/// <param name="ForksInit">The init is forked by an intermediate child, which reports its pid (InitPid).</param>
/// <param name="AwaitsParentSetupReply">The child reads a reply to its ParentSetup message; when false the
/// parent does the setup while the child goes on, and must not reply.</param>
public sealed record CompiledInit(ChildProgram Program, bool ForksInit, bool AwaitsParentSetupReply)
{
    public void Deconstruct(out ChildProgram program, out bool forksInit) => (program, forksInit) = (Program, ForksInit);
}

/// <summary>How /sys/fs/cgroup looks inside the container.</summary>
/// <param name="Unified">cgroup v2 only: the container's group in the v2 hierarchy.</param>
/// <param name="V1">Each v1 hierarchy: its directory name (e.g. "cpu,cpuacct"), mount data, and the container's group.</param>
public sealed record CgroupMountPlan(string? Unified, IReadOnlyList<(string Name, string Data, string HostPath)> V1);

/// <summary>
/// Compiles config.json into the child program that the native executor runs between
/// clone and execve (see ChildProgram). The order of the steps follows runc's
/// nsexec.c and standard_init_linux.go; each is commented where the order matters.
/// </summary>
public sealed partial class InitCompiler
{
    readonly InitOptions _o;
    readonly Spec _spec;
    readonly Linux _linux;
    readonly ChildProgram _p = new();

    // Slots preset by the parent before the clone.
    readonly Slot _report, _start, _console;
    // Scratch slots reused by consecutive steps.
    readonly Slot _rootFd, _dirFd, _targetFd, _tmp, _flags, _copyFrom, _imageMode;
    // Scratch memory: a "/proc/self/fd/N" buffer, a statfs buffer, a stat buffer, a one-byte buffer.
    readonly Data _fdPath, _statfs, _stat, _byte;
    readonly Dictionary<InitMessage, Data> _messages = [];
    ProcessEmitter? _emitter;
    ProcessEmitter Emitter => _emitter ??= new ProcessEmitter(_p);

    bool NewNamespace(string type) => _linux.FindNamespace(type) is { } ns && string.IsNullOrEmpty(ns.Path);
    bool JoinsNamespace(string type) => _linux.FindNamespace(type) is { Path: { Length: > 0 } };
    bool HasNamespace(string type) => _linux.HasNamespace(type);
    bool InUserNamespace => HasNamespace(NamespaceType.User);

    /// <summary>Whether the init is forked by an intermediate child (a pid namespace joined by path,
    /// or namespaces created by unshare): the parent then learns its pid from an InitPid message.</summary>
    public bool ForksInit { get; private set; }

    InitCompiler(InitOptions options)
    {
        _o = options;
        _spec = options.Spec;
        _linux = _spec.Linux ?? new Linux();
        _report = _p.Preset(options.ReportFd);
        _start = _p.Preset(options.StartFd);
        _console = _p.Preset(options.ConsoleSocketFd);
        _rootFd = _p.NewSlot(); _dirFd = _p.NewSlot(); _targetFd = _p.NewSlot();
        _tmp = _p.NewSlot(); _flags = _p.NewSlot(); _copyFrom = _p.NewSlot(); _imageMode = _p.NewSlot();
        _fdPath = _p.Zeroes(32);
        _statfs = _p.Zeroes(120);
        _stat = _p.Zeroes(Sys.StatSize);
        _byte = _p.Zeroes(8);
    }

    public static CompiledInit Compile(InitOptions options)
    {
        var compiler = new InitCompiler(options);
        compiler.Emit();
        return new CompiledInit(compiler._p, compiler.ForksInit, compiler.AwaitsParentSetupReply);
    }

    void Emit()
    {
        EmitJoinCgroups();
        EmitNamespaces();
        if (HasNamespace(NamespaceType.Mount)) EmitRootfs();
        else Sys0(Sys.Chroot, $"chroot to {_o.Rootfs}", Str(_o.Rootfs));
        EmitProcess();
    }

    /// <summary>
    /// A thread that moves itself ("0") into a v1 group does not take the cgroup threadgroup
    /// lock, whose write side can wait 5-15 ms for an RCU grace period when the parent moves
    /// a pid through cgroup.procs. First, before any setns can change what the paths mean.
    /// </summary>
    void EmitJoinCgroups()
    {
        if (_o.CgroupsToJoin.Count == 0) return;
        var zero = _p.Bytes("0"u8);
        foreach (var group in _o.CgroupsToJoin)
        {
            var tasks = Path.Combine(group, "tasks");
            Sys0(Sys.OpenAt, $"open {tasks}", Sys.AT_FDCWD, Str(tasks), Sys.O_WRONLY | Sys.O_CLOEXEC).Result = _tmp;
            Sys0(Sys.Write, $"join cgroup {group}", _tmp, zero, 1);
            Close(_tmp);
        }
    }

    // ---- small emit helpers -------------------------------------------------------

    Data Str(string s) => _p.String(s);

    Op Sys0(long nr, string description, params OpArg[] args) => _p.Syscall(nr, description, args);

    Op Close(Slot fd) => _p.Syscall(Sys.Close, "close", fd);

    void Send(InitMessage message)
    {
        if (!_messages.TryGetValue(message, out var buffer))
            _messages[message] = buffer = _p.Struct(16, w => w.Int32(0, (int)message));
        _p.Syscall(Sys.Write, $"report {message} to the runtime", _report, buffer, 16);
    }

    /// <summary>Waits for the parent's one-byte go-ahead; end of file means the runtime died.</summary>
    void WaitForParent(string why)
    {
        _p.Syscall(Sys.Read, $"wait for the runtime ({why})", _report, _byte, 1).FailOnZero = true;
    }
}
