using System.Text;
using Berth.Oci;
using Berth.Runtime.Native;

namespace Berth.Runtime.Init;

public sealed partial class InitCompiler
{
    public static ulong CloneFlag(string type) => type switch
    {
        NamespaceType.User => Sys.CLONE_NEWUSER,
        NamespaceType.Mount => Sys.CLONE_NEWNS,
        NamespaceType.Pid => Sys.CLONE_NEWPID,
        NamespaceType.Uts => Sys.CLONE_NEWUTS,
        NamespaceType.Ipc => Sys.CLONE_NEWIPC,
        NamespaceType.Network => Sys.CLONE_NEWNET,
        NamespaceType.Cgroup => Sys.CLONE_NEWCGROUP,
        NamespaceType.Time => Sys.CLONE_NEWTIME,
        _ => throw new RuntimeException($"unknown namespace type \"{type}\""),
    };

    // A joined user namespace first: it grants the rights to join the others. Mount last:
    // after it, paths of the other namespace files would mean something else (they are
    // opened before any setns anyway).
    static int JoinOrder(string type) => type switch { NamespaceType.User => 0, NamespaceType.Mount => 2, _ => 1 };

    readonly Label _initPidTail = new();

    void EmitNamespaces()
    {
        var namespaces = _linux.Namespaces ?? [];
        var joined = namespaces.Where(n => !string.IsNullOrEmpty(n.Path)).OrderBy(n => JoinOrder(n.Type)).ToList();
        var created = namespaces.Where(n => string.IsNullOrEmpty(n.Path)).Select(n => n.Type).ToHashSet();

        if (joined.Count == 0)
        {
            // Fast path: one clone creates every namespace and the child is the init (PID 1 of a
            // new pid namespace) at once. Two are left out of the clone: cgroup, which must be
            // unshared after the parent moved the child into the container's cgroup (the
            // namespace's root is the cgroup of its creator), and time, which is no clone flag.
            foreach (var type in created.Where(t => t is not (NamespaceType.Cgroup or NamespaceType.Time)))
                _p.CloneFlags |= CloneFlag(type);
            // The parent's first write to cgroup.procs can wait 5-17 ms for the kernel (an RCU
            // grace period): the child does not wait for it unless it must. It must with a user
            // namespace (nothing works before the id maps) and before creating its cgroup
            // namespace (whose root is the cgroup the child is in at that moment).
            if (created.Contains(NamespaceType.User)) EmitDumpableForIdMaps(true);
            Send(InitMessage.ParentSetup);
            if (created.Contains(NamespaceType.User) || created.Contains(NamespaceType.Cgroup))
                WaitForParentSetup();
            if (created.Contains(NamespaceType.User)) EmitDumpableForIdMaps(false);
            if (created.Contains(NamespaceType.User)) EmitBecomeRoot();
            if (created.Contains(NamespaceType.Cgroup)) Sys0(Sys.Unshare, "unshare the cgroup namespace", Sys.CLONE_NEWCGROUP);
            EmitTimeNamespace();
            return;
        }

        // General path, as runc's nsexec: the child is cloned without namespaces, opens and
        // joins the given ones, creates the rest with unshare, and forks the init if the pid
        // namespace only applies to its children (unshare or setns of a pid namespace).
        var fds = new List<(LinuxNamespace Ns, Slot Fd)>();
        foreach (var ns in joined)
        {
            var fd = _p.NewSlot();
            Sys0(Sys.OpenAt, $"open {ns.Type} namespace {ns.Path}", Sys.AT_FDCWD, Str(ns.Path!), Sys.O_RDONLY | Sys.O_CLOEXEC).Result = fd;
            fds.Add((ns, fd));
        }
        foreach (var (ns, fd) in fds)
        {
            Sys0(Sys.Setns, $"join {ns.Type} namespace {ns.Path}", fd, (long)CloneFlag(ns.Type));
            Close(fd);
        }
        if (created.Contains(NamespaceType.User))
            Sys0(Sys.Unshare, "unshare the user namespace", Sys.CLONE_NEWUSER);
        // Here the child always waits: the init it forks must be born in the container's cgroup.
        if (created.Contains(NamespaceType.User)) EmitDumpableForIdMaps(true);
        Send(InitMessage.ParentSetup);
        WaitForParentSetup();
        if (created.Contains(NamespaceType.User)) EmitDumpableForIdMaps(false);
        if (HasNamespace(NamespaceType.User)) EmitBecomeRoot();

        ulong unshare = 0;
        foreach (var type in created.Where(t => t is not (NamespaceType.User or NamespaceType.Time)))
            unshare |= CloneFlag(type);
        if (unshare != 0) Sys0(Sys.Unshare, $"unshare namespaces ({string.Join(", ", created)})", (long)unshare);
        EmitTimeNamespace();

        if (created.Contains(NamespaceType.Pid) || JoinsNamespace(NamespaceType.Pid))
        {
            // CLONE_PARENT makes the init a child of the runtime, not of this intermediate process.
            ForksInit = true;
            _p.Add(new Op
            {
                Kind = OpKind.Fork, Args = [(long)Sys.CLONE_PARENT], Result = _tmp, OnSuccess = _initPidTail,
                Description = "fork the container init into its pid namespace",
            });
            // The init goes on only once the parent has its pid, so that none of the init's own
            // reports (a failure, the hook point) can overtake the intermediate's InitPid.
            WaitForParent("the runtime records the init's pid");
        }
    }

    public bool AwaitsParentSetupReply { get; private set; }

    /// <summary>
    /// The executor makes the child non-dumpable (CVE-2019-5736), which makes its /proc files
    /// root's: an unprivileged runtime (or newuidmap, which checks the owner) could not write
    /// its uid_map. As runc's nsexec: dumpable only while the parent writes the maps.
    /// </summary>
    void EmitDumpableForIdMaps(bool dumpable)
    {
        if (!_o.UnprivilegedParent) return;
        Sys0(Sys.Prctl, dumpable ? "set dumpable for the id maps" : "set non-dumpable again", 4 /* PR_SET_DUMPABLE */, dumpable ? 1 : 0, 0, 0, 0);
    }

    void WaitForParentSetup()
    {
        WaitForParent("id maps, cgroup, oom_score_adj");
        AwaitsParentSetupReply = true;
    }

    /// <summary>The intermediate process's last steps: tell the runtime the init's pid, exit.</summary>
    void EmitInitPidTail()
    {
        if (!ForksInit) return;
        _p.Place(_initPidTail);
        var message = _p.Struct(16, w => w.Int32(0, (int)InitMessage.InitPid));
        _p.Add(new Op { Kind = OpKind.Store, Args = [new OpArg(OpArgKind.Data, message.Offset + 8), _tmp.Index, 8], Description = "record the init's pid" });
        _p.Syscall(Sys.Write, "report the init's pid to the runtime", _report, message, 16);
        _p.Add(new Op { Kind = OpKind.Exit, Args = [0], Description = "exit the intermediate process" });
    }

    /// <summary>
    /// After the parent wrote the id maps: become root of the user namespace, so that files
    /// the setup creates are owned by the mapped root and not by the overflow id.
    /// </summary>
    void EmitBecomeRoot()
    {
        Sys0(Sys.Setresgid, "setresgid(0) in the user namespace", 0, 0, 0).Tolerate(Sys.EINVAL);
        Sys0(Sys.Setresuid, "setresuid(0) in the user namespace", 0, 0, 0).Tolerate(Sys.EINVAL);
    }

    /// <summary>
    /// A time namespace applies to the children of the unsharing process and, since Linux
    /// 5.8, to the process itself from its next execve; its offsets must be written before
    /// any process enters it, so before the init is forked or execs.
    /// </summary>
    void EmitTimeNamespace()
    {
        if (!NewNamespace(NamespaceType.Time)) return;
        Sys0(Sys.Unshare, "unshare the time namespace", (long)Sys.CLONE_NEWTIME);
        if (_linux.TimeOffsets is not { Count: > 0 } offsets) return;
        var text = new StringBuilder();
        foreach (var (clock, offset) in offsets)
            text.Append($"{clock} {offset.Secs} {offset.Nanosecs}\n");
        var bytes = Encoding.ASCII.GetBytes(text.ToString());
        Sys0(Sys.OpenAt, "open /proc/self/timens_offsets", Sys.AT_FDCWD, Str("/proc/self/timens_offsets"), Sys.O_WRONLY | Sys.O_CLOEXEC).Result = _tmp;
        Sys0(Sys.Write, $"write time offsets ({text.ToString().Trim().Replace('\n', ',')})", _tmp, _p.Bytes(bytes), bytes.Length);
        Close(_tmp);
    }
}
