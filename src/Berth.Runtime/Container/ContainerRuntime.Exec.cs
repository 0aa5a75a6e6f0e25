using System.Buffers.Binary;
using System.Text;
using Berth.Oci;
using Berth.Runtime.Init;
using Berth.Runtime.Native;

namespace Berth.Runtime.Container;

/// <summary>What `exec` changes in the container's process section (runc's exec flags); null or empty: unchanged.</summary>
public sealed class ExecOverrides
{
    public List<string>? Args { get; init; }
    /// <summary>Appended to the container's environment (a later NAME= wins at lookup, as runc).</summary>
    public List<string>? Env { get; init; }
    public uint? Uid { get; init; }
    public uint? Gid { get; init; }
    public List<uint>? AdditionalGids { get; init; }
    public string? Cwd { get; init; }
    /// <summary>Added to the bounding, effective, permitted, inheritable and ambient sets.</summary>
    public List<string>? Capabilities { get; init; }
    /// <summary>runc: <c>-t</c> decides, whatever config.json says.</summary>
    public bool Terminal { get; init; }
    public bool? NoNewPrivileges { get; init; }
    public string? ApparmorProfile { get; init; }
    public string? ProcessLabel { get; init; }
}

public sealed class ExecRequest
{
    /// <summary>The whole process (--process process.json): used as is, as runc does.</summary>
    public Berth.Oci.Process? Process { get; init; }
    public ExecOverrides? Overrides { get; init; }
    public string? ConsoleSocket { get; init; }
    /// <summary>An already connected console socket (exec -t relaying the pty itself).</summary>
    public int ConsoleSocketFd { get; init; } = -1;
    public string? PidFile { get; init; }
    public int PreserveFds { get; init; }
    public TimeSpan SetupTimeout { get; init; } = TimeSpan.FromMinutes(1);
}

public sealed partial class ContainerRuntime
{
    /// <summary>The copy of config.json that create keeps in the container's state directory (exec and update read it).</summary>
    public const string SpecFile = "config.json";

    // The namespace files of /proc/PID/ns that exec joins.
    static readonly (string File, string Type)[] ExecNamespaces =
    [
        ("user", NamespaceType.User), ("mnt", NamespaceType.Mount), ("pid", NamespaceType.Pid), ("ipc", NamespaceType.Ipc),
        ("uts", NamespaceType.Uts), ("net", NamespaceType.Network), ("cgroup", NamespaceType.Cgroup), ("time", NamespaceType.Time),
    ];

    /// <summary>
    /// Starts a new process in a running (or created) container and returns its host pid once
    /// it has exec'd: it joins the init's namespaces and cgroup and gets the container's
    /// process settings with the overrides applied. The process is a child of this process:
    /// wait for it with <see cref="WaitForExit(int)"/>.
    /// </summary>
    public int Exec(string id, ExecRequest request)
    {
        var record = Store.Load(id);
        var status = StatusOf(record);
        if (status == ContainerStatus.Stopped) throw new InvalidStateException("cannot exec in a stopped container");
        if (status == ContainerStatus.Paused) throw new InvalidStateException("cannot exec in a paused container");
        var spec = LoadSpec(record);
        var process = request.Process ?? BuildExecProcess(spec.Process, request.Overrides ?? new ExecOverrides());
        if (process.Args is not { Count: > 0 }) throw new RuntimeException("exec args cannot be empty");
        // As create's config.json check: a name this runtime does not know is refused, not dropped.
        foreach (var (set, names) in process.Capabilities?.Sets() ?? [])
            foreach (var name in names ?? [])
                if (!Capabilities.TryParse(name, out _)) throw new RuntimeException($"process.capabilities.{set}: unknown capability \"{name}\"");
        if (ContainerCanTraceTheRuntime(record, spec)) BeforeEnteringSharedPidNamespace?.Invoke();
        var seccomp = CompileSeccomp(spec);

        var namespaces = new List<(string Type, int Fd)>();
        int parentFd = -1, childFd = -1, consoleFd = -1, cgroupFd = -1, intermediate = -1, pid = -1;
        ChildProgram? program = null;
        try
        {
            // Every namespace file is opened before the child joins any, and the init is
            // checked afterwards: if its pid was recycled in between, these fds are not ours.
            foreach (var (file, type) in ExecNamespaces)
            {
                var theirs = $"/proc/{record.InitPid}/ns/{file}";
                var target = ReadLink(theirs);
                if (target is null || target == ReadLink($"/proc/self/ns/{file}")) continue; // shared with us, or not on this kernel
                var fd = LibC.open(theirs, Sys.O_RDONLY | Sys.O_CLOEXEC, 0);
                LibC.Check(fd, $"open {theirs}");
                namespaces.Add((type, fd));
            }
            if (!ProcessInfo.IsAlive(record.InitPid, record.InitStartTime)) throw new InvalidStateException("cannot exec in a stopped container");

            Span<int> pair = stackalloc int[2];
            LibC.Check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC, 0, pair), "socketpair");
            (parentFd, childFd) = (pair[0], pair[1]);
            if (process.Terminal)
            {
                if (request.ConsoleSocketFd >= 0) consoleFd = LibC.fcntl(request.ConsoleSocketFd, 1030 /* F_DUPFD_CLOEXEC */, 0);
                else if (request.ConsoleSocket is not null) consoleFd = LibC.ConnectUnix(request.ConsoleSocket);
                else throw new RuntimeException("cannot allocate a tty without --console-socket");
                LibC.Check(consoleFd, "connect to the console socket");
            }

            // The intermediate starts in the runtime's user namespace, so it can always join the
            // container's groups itself (v1: "0" to tasks; cgroup2: clone3 CLONE_INTO_CGROUP)
            // and the process is forked inside them: no pid moved through cgroup.procs.
            var v1Groups = record.CgroupPaths.Where(p => p.Key != Berth.Cgroups.CgroupManager.UnifiedKey).Select(p => p.Value).Distinct().ToList();
            if (record.CgroupPaths.TryGetValue(Berth.Cgroups.CgroupManager.UnifiedKey, out var unifiedGroup))
            {
                cgroupFd = LibC.open(unifiedGroup, Sys.O_RDONLY | Sys.O_DIRECTORY | Sys.O_CLOEXEC, 0);
                LibC.Check(cgroupFd, $"open {unifiedGroup}");
            }
            program = ExecCompiler.Compile(new ExecOptions
            {
                Process = process, Namespaces = namespaces, ReportFd = childFd, ConsoleSocketFd = consoleFd,
                PreserveFds = request.PreserveFds, Seccomp = seccomp, CgroupsToJoin = v1Groups,
            });
            program.CgroupFd = cgroupFd;
            Debug?.Invoke($"exec in {id}: program:\n" + string.Join('\n', program.Ops.Select((op, i) => $"  {i,3} {op.Description}")));
            using (var native = program.Build(childFd))
                intermediate = Executor.Spawn(native);
            CloseFd(ref childFd);
            CloseFd(ref consoleFd);
            CloseFd(ref cgroupFd);
            foreach (var (_, fd) in namespaces) LibC.close(fd);
            namespaces.Clear();

            pid = ExecHandshake(program, parentFd, intermediate, record, process, spec.Linux?.Seccomp, request.SetupTimeout, parentJoinsCgroup: false);
            if (request.PidFile is { } pidFile) AtomicFile.Write(Path.GetFullPath(pidFile), Encoding.ASCII.GetBytes(pid.ToString()));
            return pid;
        }
        catch
        {
            foreach (var p in new[] { pid, intermediate }.Where(p => p > 0))
            {
                LibC.kill(p, Sys.SIGKILL);
                LibC.waitpid(p, out _, 0);
            }
            throw;
        }
        finally
        {
            foreach (var (_, fd) in namespaces) LibC.close(fd);
            CloseFd(ref parentFd);
            CloseFd(ref childFd);
            CloseFd(ref consoleFd);
            CloseFd(ref cgroupFd);
        }
    }

    /// <summary>
    /// Learns the process's pid from the intermediate and, unless the intermediate joined the
    /// groups itself, moves the process into the container's cgroup (every hierarchy) and lets it go on; returns once it has exec'd (the report
    /// socket reaches end of file: the intermediate exited, the process's end closed on exec).
    /// </summary>
    int ExecHandshake(ChildProgram program, int fd, int intermediate, ContainerRecord record, Berth.Oci.Process process, LinuxSeccomp? seccompSection, TimeSpan timeout,
        bool parentJoinsCgroup)
    {
        var pid = -1;
        string? failure = null;
        var failureErrno = 0;
        var deadline = DateTime.UtcNow + timeout;
        var pendingListener = -1;
        var killWhenPidKnown = false;
        // A failure to pass the listener on is the exec's failure: the process, which waits for
        // the byte, is killed, so that its end of the socket closes and the loop ends.
        void PassListener(int listener)
        {
            if (failure is not null) { LibC.close(listener); return; }
            try
            {
                PassSeccompListener(listener, seccompSection, pid, StateJson(record));
                ReadOnlySpan<byte> passed = [1];
                if (LibC.write(fd, passed, 1) != 1) failure ??= $"the exec'd process exited during setup ({LibC.Describe(LibC.Errno)})";
            }
            catch (RuntimeException e)
            {
                failure ??= e.Message;
                LibC.kill(pid, Sys.SIGKILL); // it waits for the byte: its end of the socket must close
            }
        }
        while (true)
        {
            if (InitReport.Read(fd, deadline, $"the exec'd process did not finish its setup within {timeout.TotalSeconds:0} s") is not { } report)
                break;
            var (kind, opIndex, value, passedFd) = report;
            if (passedFd >= 0 && kind != InitMessage.SeccompListener) LibC.close(passedFd);
            switch (kind)
            {
                case InitMessage.SeccompListener:
                    if (passedFd < 0)
                    {
                        // The process waits for the byte that will never come: it must go.
                        failure ??= "the seccomp listener record came without its fd";
                        if (pid > 0) LibC.kill(pid, Sys.SIGKILL);
                        else killWhenPidKnown = true;
                        break;
                    }
                    // The process's pid comes from the intermediate, maybe after this record.
                    if (pid < 0) { pendingListener = passedFd; break; }
                    PassListener(passedFd);
                    break;
                case InitMessage.Failure:
                    // The execve itself failed (a binary for another architecture, a missing interpreter):
                    // as with runc the process was started; it said why on its own stderr and exits 1,
                    // which is the exec's exit code.
                    if (opIndex >= 0 && opIndex < program.Ops.Count && program.Ops[opIndex].ExecErrorToStderr) break;
                    // Keep reading until end of file: the pid may still arrive, and both processes must be reaped.
                    failure = failureErrno == 0 ? FailureText(program, opIndex, (int)value, process.Capabilities) : failure;
                    failureErrno = (int)value;
                    break;
                case InitMessage.InitPid:
                    pid = (int)value;
                    LibC.waitpid(intermediate, out _, 0);
                    if (killWhenPidKnown) LibC.kill(pid, Sys.SIGKILL);
                    if (pendingListener >= 0)
                    {
                        var listener = pendingListener;
                        pendingListener = -1;
                        PassListener(listener);
                    }
                    if (failure is not null) break;
                    if (!parentJoinsCgroup)
                    {
                        if (process.OomScoreAdj is { } score) WriteProcFile(pid, "oom_score_adj", score.ToString());
                        break;
                    }
                    try
                    {
                        LoadCgroup(record)?.AddProcess(pid);
                        if (process.OomScoreAdj is { } adj) WriteProcFile(pid, "oom_score_adj", adj.ToString());
                    }
                    catch (Exception e) when (e is Berth.Cgroups.CgroupException or RuntimeException)
                    {
                        LibC.kill(pid, Sys.SIGKILL);
                        LibC.waitpid(pid, out _, 0);
                        throw new RuntimeException($"join the container's cgroup: {e.Message}", 0, e);
                    }
                    // A failed write means the process is gone: its failure report is still to be read.
                    ReadOnlySpan<byte> go = [1];
                    if (LibC.write(fd, go, 1) != 1) failure ??= $"the exec'd process exited during setup ({LibC.Describe(LibC.Errno)})";
                    break;
                default:
                    throw new RuntimeException($"the exec'd process sent an unknown message {(int)kind}");
            }
        }
        if (pendingListener >= 0) LibC.close(pendingListener); // the pid never came: the exec failed
        if (failure is not null)
        {
            if (pid > 0) LibC.waitpid(pid, out _, 0);
            else LibC.waitpid(intermediate, out _, 0);
            throw new RuntimeException(failure, failureErrno);
        }
        if (pid <= 0) throw new RuntimeException($"the exec'd process exited during setup ({DescribeExit(intermediate)})");
        return pid;
    }

    /// <summary>runc's exec: the container's process section with the flags applied on top.</summary>
    public static Berth.Oci.Process BuildExecProcess(Berth.Oci.Process? container, ExecOverrides o)
    {
        container ??= new Berth.Oci.Process();
        var caps = container.Capabilities;
        var p = new Berth.Oci.Process
        {
            Terminal = o.Terminal,
            ConsoleSize = container.ConsoleSize,
            User = new User
            {
                Uid = o.Uid ?? container.User.Uid, Gid = o.Gid ?? container.User.Gid, Umask = container.User.Umask,
                AdditionalGids = [.. container.User.AdditionalGids ?? [], .. o.AdditionalGids ?? []],
                Username = container.User.Username,
            },
            Args = o.Args is { Count: > 0 } ? [.. o.Args] : container.Args is null ? null : [.. container.Args],
            Env = [.. container.Env ?? [], .. o.Env ?? []],
            Cwd = string.IsNullOrEmpty(o.Cwd) ? container.Cwd : o.Cwd,
            Capabilities = caps is null && o.Capabilities is not { Count: > 0 } ? null : new LinuxCapabilities
            {
                Bounding = Add(caps?.Bounding, o.Capabilities), Effective = Add(caps?.Effective, o.Capabilities),
                Permitted = Add(caps?.Permitted, o.Capabilities), Inheritable = Add(caps?.Inheritable, o.Capabilities),
                Ambient = Add(caps?.Ambient, o.Capabilities),
            },
            Rlimits = container.Rlimits,
            NoNewPrivileges = o.NoNewPrivileges ?? container.NoNewPrivileges,
            ApparmorProfile = string.IsNullOrEmpty(o.ApparmorProfile) ? container.ApparmorProfile : o.ApparmorProfile,
            SelinuxLabel = string.IsNullOrEmpty(o.ProcessLabel) ? container.SelinuxLabel : o.ProcessLabel,
            OomScoreAdj = container.OomScoreAdj,
        };
        return p;

        static List<string>? Add(List<string>? set, List<string>? added)
        {
            if (added is not { Count: > 0 }) return set;
            var result = new List<string>(set ?? []);
            foreach (var cap in added)
            {
                var name = cap.StartsWith("CAP_", StringComparison.OrdinalIgnoreCase) ? cap.ToUpperInvariant() : "CAP_" + cap.ToUpperInvariant();
                if (!result.Contains(name)) result.Add(name);
            }
            return result;
        }
    }

    /// <summary>The container's config.json as create saw it (the copy in the state directory; older containers: the bundle's).</summary>
    public Spec LoadSpec(ContainerRecord record)
    {
        var copy = Path.Combine(Store.DirectoryOf(record.Id), SpecFile);
        return File.Exists(copy) ? SpecLoader.Parse(File.ReadAllBytes(copy), copy) : SpecLoader.LoadFromBundle(record.Bundle);
    }

    static string? ReadLink(string path)
    {
        try { return new FileInfo(path).LinkTarget; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
