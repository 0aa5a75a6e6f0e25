using System.Buffers.Binary;
using System.Text;
using Berth.Cgroups;
using Berth.Oci;
using Berth.Runtime.Init;
using Berth.Runtime.Native;

namespace Berth.Runtime.Container;

public sealed class CreateOptions
{
    public required string Bundle { get; init; }
    public string? PidFile { get; init; }
    public string? ConsoleSocket { get; init; }
    /// <summary>An already connected console socket (run's own pty relay), instead of <see cref="ConsoleSocket"/>.</summary>
    public int ConsoleSocketFd { get; init; } = -1;
    public bool NoPivot { get; init; }
    public int PreserveFds { get; init; }
    /// <summary>The bundle's config.json when the caller has already loaded it.</summary>
    public Spec? Spec { get; init; }
    /// <summary>How long the child may take to set up before create gives up.</summary>
    public TimeSpan SetupTimeout { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>
    /// The caller's NOTIFY_SOCKET (runc reads it from its environment): the container gets the
    /// state's notify directory at /run/notify and NOTIFY_SOCKET in its env (see NotifySocket).
    /// </summary>
    public string? NotifySocket { get; init; }
}

public sealed partial class ContainerRuntime
{
    /// <summary>
    /// Creates the container: namespaces, cgroup, rootfs, and an init that waits on the exec
    /// fifo until <see cref="Start"/>. On any failure nothing is left behind: the child is
    /// killed, the cgroup and the state directory are removed.
    /// </summary>
    public ContainerRecord Create(string id, CreateOptions options)
    {
        StateStore.ValidateId(id);
        var bundle = Path.GetFullPath(options.Bundle);
        var spec = options.Spec ?? SpecLoader.LoadFromBundle(bundle);
        SpecValidator.Validate(spec, bundle);
        if (Berth.Runtime.Container.Rootless.IsUnprivileged) Berth.Runtime.Container.Rootless.Validate(spec);
        if (spec.Linux?.FindNamespace(NamespaceType.Pid) is { Path.Length: > 0 }) BeforeEnteringSharedPidNamespace?.Invoke();
        var rootfs = spec.ResolveRootfs(bundle);
        var resources = CgroupResourcesMapper.Map(spec.Linux?.Resources);
        var seccompClock = System.Diagnostics.Stopwatch.StartNew();
        var seccomp = CompileSeccomp(spec);
        if (seccomp is not null) Debug?.Invoke($"seccomp: {seccomp.InstructionCount} instructions in {seccompClock.Elapsed.TotalMilliseconds:0.00} ms");

        var dir = Store.CreateDirectory(id);
        ICgroupManager? cgroup = null;
        int startFd = -1, parentFd = -1, childFd = -1, consoleFd = -1, cgroupFd = -1, pid = -1, initPid = -1;
        Dictionary<int, int> idmapped = [];
        try
        {
            // exec and update need the whole config later; state.json keeps only what every operation reads.
            // The copy is the bundle's: exec never sees the notify socket's variable, as with runc.
            File.Copy(Path.Combine(bundle, SpecLoader.ConfigFileName), Path.Combine(dir, SpecFile));
            if (!string.IsNullOrEmpty(options.NotifySocket))
            {
                NotifySocket.CreateDirectory(dir);
                NotifySocket.AddToSpec(spec, dir);
            }
            var fifo = Path.Combine(dir, StateStore.ExecFifo);
            LibC.Check(LibC.mkfifo(fifo, 0x180), $"mkfifo {fifo}");
            // O_RDWR never blocks on a fifo, and keeps a writer open so the child's read
            // blocks (instead of seeing end of file) until start writes a byte.
            startFd = LibC.open(fifo, Sys.O_RDWR | Sys.O_CLOEXEC, 0);
            LibC.Check(startFd, $"open {fifo}");

            cgroup = CreateContainerCgroup(spec, id); // null: rootless without a delegated cgroup

            Span<int> pair = stackalloc int[2];
            LibC.Check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC, 0, pair), "socketpair");
            (parentFd, childFd) = (pair[0], pair[1]);
            if (spec.Process?.Terminal == true)
            {
                if (options.ConsoleSocketFd >= 0) consoleFd = LibC.fcntl(options.ConsoleSocketFd, 1030 /* F_DUPFD_CLOEXEC */, 0);
                else if (options.ConsoleSocket is not null) consoleFd = LibC.ConnectUnix(options.ConsoleSocket);
                else throw new RuntimeException("process.terminal is true: --console-socket is required");
                LibC.Check(consoleFd, "dup the console socket");
            }

            // Without a user namespace the child joins its groups itself: the v1 ones by
            // writing "0" to their tasks files, the cgroup2 one by being cloned into it
            // (clone3 CLONE_INTO_CGROUP). Both avoid the threadgroup lock that moving a pid
            // through cgroup.procs takes. A child in a new user namespace may not write to
            // the host's cgroupfs, so there the parent moves it.
            var childJoinsCgroups = spec.Linux?.HasNamespace(NamespaceType.User) != true;
            var v1Groups = childJoinsCgroups && cgroup is not null
                ? cgroup.Paths.Where(p => p.Key != CgroupManager.UnifiedKey).Select(p => p.Value).Distinct().ToList()
                : [];
            if (childJoinsCgroups && cgroup is not null && cgroup.Paths.TryGetValue(CgroupManager.UnifiedKey, out var unifiedGroup))
            {
                cgroupFd = LibC.open(unifiedGroup, Sys.O_RDONLY | Sys.O_DIRECTORY | Sys.O_CLOEXEC, 0);
                LibC.Check(cgroupFd, $"open {unifiedGroup}");
            }
            idmapped = IdmappedMounts.Prepare(spec, bundle);
            var compiled = InitCompiler.Compile(new InitOptions
            {
                Spec = spec, Rootfs = rootfs, BundleDir = bundle, StartFd = startFd, ReportFd = childFd,
                ConsoleSocketFd = consoleFd, PreserveFds = options.PreserveFds, NoPivot = options.NoPivot,
                Cgroups = CgroupMountPlanFor(cgroup), Seccomp = seccomp, CgroupsToJoin = v1Groups,
                IdmappedMountFds = idmapped,
            });
            var program = compiled.Program;
            program.CgroupFd = cgroupFd;
            Debug?.Invoke($"container {id}: clone flags 0x{program.CloneFlags:x}, setup program:\n" +
                string.Join('\n', program.Ops.Select((op, i) => $"  {i,3} {op.Description}")));
            using (var native = program.Build(childFd))
                pid = Executor.Spawn(native);
            CloseFd(ref childFd);
            CloseFd(ref consoleFd);
            CloseFd(ref cgroupFd);
            CloseAll(idmapped);

            var record = new ContainerRecord
            {
                Id = id, Bundle = bundle, Rootfs = rootfs, Created = DateTimeOffset.UtcNow,
                Owner = LibC.getuid() == 0 ? "root" : LibC.getuid().ToString(), CgroupPaths = cgroup is null ? [] : new(cgroup.Paths),
                Annotations = spec.Annotations, Hooks = spec.Hooks,
                CgroupParentToPrune = string.IsNullOrEmpty(spec.Linux?.CgroupsPath) ? CgroupParent : null,
            };
            initPid = pid;
            Handshake(compiled, parentFd, ref pid, ref initPid, spec, childJoinsCgroups ? null : cgroup, record, options.SetupTimeout);
            // Limits go on once the setup is done, as runc does: the device rules would
            // otherwise forbid the mknod of /dev's nodes, and a memory limit would charge
            // the setup to the container.
            if (!resources.IsEmpty) cgroup?.Apply(ResourcesToApply(resources));
            record.InitPid = initPid;
            record.Creating = false;
            record.InitStartTime = ProcessInfo.Read(initPid)?.StartTime
                ?? throw new RuntimeException($"container init {initPid} exited during create");
            Store.Save(record);
            if (options.PidFile is { } pidFile) AtomicFile.Write(Path.GetFullPath(pidFile), Encoding.ASCII.GetBytes(initPid.ToString()));
            return record;
        }
        catch (Exception e)
        {
            foreach (var p in new[] { initPid, pid }.Where(p => p > 0).Distinct())
            {
                LibC.kill(p, Sys.SIGKILL);
                LibC.waitpid(p, out _, 0);
            }
            try
            {
                cgroup?.Destroy();
                // The default parent this create made goes with it when nothing else is in it (as at delete).
                if (cgroup is not null && string.IsNullOrEmpty(spec.Linux?.CgroupsPath)) PruneEmptyParent(cgroup.Paths.Values, CgroupParent);
            }
            catch (CgroupException) { }
            if (e is HookFailedException && spec.Hooks?.Poststop is { Count: > 0 } poststop)
            {
                var stopped = new ContainerRecord { Id = id, Bundle = bundle, Annotations = spec.Annotations };
                RunHooks("poststop", poststop, StateJson(stopped, ContainerStatus.Stopped), warnOnly: true);
            }
            Store.Remove(id);
            throw;
        }
        finally
        {
            CloseFd(ref startFd);
            CloseFd(ref parentFd);
            CloseFd(ref childFd);
            CloseFd(ref consoleFd);
            CloseFd(ref cgroupFd);
            CloseAll(idmapped);
        }
    }

    static void CloseAll(Dictionary<int, int> fds)
    {
        foreach (var fd in fds.Values) LibC.close(fd);
        fds.Clear();
    }

    /// <summary>
    /// Makes the container's groups. A delete that just pruned the shared, empty default
    /// parent (see Delete) can race with this mkdir -p: then simply make it again.
    /// </summary>
    static void CreateCgroup(ICgroupManager cgroup)
    {
        for (var attempt = 1; ; attempt++)
        {
            try { cgroup.Create(); return; }
            catch (CgroupException e) when (e.Errno == Sys.ENOENT && attempt < 5) { }
        }
    }

    static void CloseFd(ref int fd)
    {
        if (fd >= 0) LibC.close(fd);
        fd = -1;
    }

    string CgroupsPath(Spec spec, string id) =>
        string.IsNullOrEmpty(spec.Linux?.CgroupsPath) ? $"{CgroupParent.TrimEnd('/')}/{id}" : spec.Linux.CgroupsPath;

    CgroupMountPlan CgroupMountPlanFor(ICgroupManager? cgroup)
    {
        if (cgroup is null) return OwnCgroupMountPlan();
        var layout = Layout;
        cgroup.Paths.TryGetValue(CgroupManager.UnifiedKey, out var unified);
        var v1 = layout.V1Hierarchies
            .Select(h => (Name: Path.GetFileName(h.MountPoint), Data: string.Join(',', h.Controllers), Host: cgroup.Paths.GetValueOrDefault(h.Controllers[0])))
            .Where(h => h.Host is not null)
            .Select(h => (h.Name, h.Data, h.Host!))
            .ToList();
        return new CgroupMountPlan(unified, v1);
    }

    /// <summary>
    /// Answers the child's requests until it reports ready. The first child is <paramref name="pid"/>;
    /// the init is that child or, when it forks, the pid it reports.
    /// </summary>
    /// <remarks>
    /// <paramref name="pid"/> and <paramref name="initPid"/> are updated as soon as they change
    /// (the intermediate reaped, the init's pid reported), so that a failure at any later point
    /// kills the right process and never a reused pid.
    /// </remarks>
    void Handshake(CompiledInit compiled, int fd, ref int pid, ref int initPid, Spec spec, ICgroupManager? cgroupToJoin, ContainerRecord record, TimeSpan timeout)
    {
        var program = compiled.Program;
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (InitReport.Read(fd, deadline, $"container init did not finish its setup within {timeout.TotalSeconds:0} s") is not { } report)
                throw new RuntimeException($"container init exited during setup ({DescribeExit(initPid)})");
            var (kind, opIndex, value, passedFd) = report;
            if (passedFd >= 0 && kind != InitMessage.SeccompListener) LibC.close(passedFd);
            switch (kind)
            {
                case InitMessage.Failure:
                    throw new RuntimeException($"container init: {FailureText(program, opIndex, (int)value, spec.Process?.Capabilities)}", (int)value);
                case InitMessage.SeccompListener:
                    if (passedFd < 0) throw new RuntimeException("container init: the seccomp listener record came without its fd");
                    record.InitPid = initPid;
                    PassSeccompListener(passedFd, spec.Linux?.Seccomp, initPid, StateJson(record, ContainerStatus.Creating));
                    Reply(fd);
                    break;
                case InitMessage.ParentSetup:
                    SetUpFromParent(pid, spec, cgroupToJoin);
                    if (compiled.AwaitsParentSetupReply) Reply(fd);
                    break;
                case InitMessage.InitPid:
                    initPid = (int)value;
                    LibC.waitpid(pid, out _, 0); // the intermediate process exits after reporting
                    pid = -1;
                    // The init waits for this: its own reports must come after the pid is known.
                    Reply(fd);
                    break;
                case InitMessage.CreateHooks:
                    // Saved so that `state` answers "creating" while the hooks run.
                    record.InitPid = initPid;
                    record.InitStartTime = ProcessInfo.Read(initPid)?.StartTime ?? 0;
                    record.Creating = true;
                    Store.Save(record);
                    var state = StateJson(record, ContainerStatus.Creating);
                    RunHooks("prestart", spec.Hooks?.Prestart, state);
                    RunHooks("createRuntime", spec.Hooks?.CreateRuntime, state);
                    RunHooks("createContainer", spec.Hooks?.CreateContainer,
                        StateJson(record, ContainerStatus.Creating, pidSeenInContainer: true), namespacePid: initPid);
                    Reply(fd);
                    break;
                case InitMessage.Ready:
                    return;
                default:
                    throw new RuntimeException($"container init sent an unknown message {(int)kind}");
            }
        }
    }

    static void Reply(int fd)
    {
        ReadOnlySpan<byte> go = [1];
        if (LibC.write(fd, go, 1) != 1) throw LibC.Error("signal the container init", LibC.Errno);
    }

    static string DescribeExit(int pid)
    {
        if (LibC.waitpid(pid, out var status, LibC.WNOHANG) != pid) return "no exit status";
        var (code, signal) = LibC.DecodeWaitStatus(status);
        return signal != 0 ? $"killed by signal {signal}" : $"exit status {code}";
    }

    /// <summary>What the parent does for the child: id maps, cgroup (unless the child joins it), oom_score_adj.</summary>
    static void SetUpFromParent(int pid, Spec spec, ICgroupManager? cgroupToJoin)
    {
        var linux = spec.Linux;
        if (linux?.FindNamespace(NamespaceType.User) is { Path: null or "" })
        {
            if (Berth.Runtime.Container.Rootless.IsUnprivileged) Berth.Runtime.Container.Rootless.WriteIdMaps(pid, linux);
            else
            {
                WriteProcFile(pid, "uid_map", IdMap(linux.UidMappings));
                WriteProcFile(pid, "gid_map", IdMap(linux.GidMappings));
            }
        }
        cgroupToJoin?.AddProcess(pid);
        if (spec.Process?.OomScoreAdj is { } adj) WriteProcFile(pid, "oom_score_adj", adj.ToString());
    }

    /// <summary>
    /// The failed step in words and its errno. capset's EPERM says nothing of which capability: when the
    /// process asked for some the runtime itself cannot hold (outside its bounding set, as CAP_SYS_RESOURCE
    /// for root on some hosts), they are named. Read only on this failure path: a start pays nothing.
    /// </summary>
    static string FailureText(ChildProgram program, int opIndex, int errno, LinuxCapabilities? caps)
    {
        var op = opIndex < program.Ops.Count ? program.Ops[opIndex] : null;
        var text = $"{op?.Description ?? "finish the program"}: {LibC.Describe(errno)}";
        if (op is not { Kind: OpKind.Syscall } || op.Syscall != Sys.Capset || errno != Sys.EPERM || caps is null) return text;
        if (Capabilities.OwnBoundingSet() is not { } bounding) return text;
        var names = Capabilities.NamesOf((Capabilities.ToMask(caps.Permitted) | Capabilities.ToMask(caps.Effective)) & ~bounding);
        return names.Count == 0 ? text
            : $"{text}: {string.Join(", ", names)} {(names.Count == 1 ? "is" : "are")} not in the runtime's bounding set, so no process it starts can hold {(names.Count == 1 ? "it" : "them")}";
    }

    static string IdMap(List<LinuxIdMapping>? mappings) =>
        string.Concat((mappings ?? []).Select(m => $"{m.ContainerId} {m.HostId} {m.Size}\n"));

    static void WriteProcFile(int pid, string name, string content) => LibC.WriteSmallFile($"/proc/{pid}/{name}", content);
}
