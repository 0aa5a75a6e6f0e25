using System.Text.Json;
using Berth.Cgroups;
using Berth.Oci;
using Berth.Runtime.Hooks;
using Berth.Runtime.Native;

namespace Berth.Runtime.Container;

/// <summary>
/// The OCI runtime operations (create, start, state, kill, delete) over one state root,
/// as runc's libcontainer. Each operation lives in its own file.
/// </summary>
public sealed partial class ContainerRuntime(string root)
{
    public const string DefaultRoot = "/run/berth-runtime";

    public StateStore Store { get; } = new(root);

    /// <summary>Where containers without linux.cgroupsPath get their group: &lt;parent&gt;/&lt;id&gt; in every hierarchy.</summary>
    public string CgroupParent { get; init; } = "/berth";

    /// <summary>Warnings that do not fail an operation (a failing poststart hook), for the caller to log.</summary>
    public Action<string> Warn { get; set; } = _ => { };

    /// <summary>
    /// Called before a child of this process enters a pid namespace where container
    /// processes may already live (exec, a pid namespace joined by path), while nothing has
    /// been created yet: the CLI re-executes itself from a sealed copy there (CVE-2019-5736).
    /// </summary>
    public Action? BeforeEnteringSharedPidNamespace { get; set; }

    /// <summary>Debug output (--debug): e.g. the child's setup program, step by step.</summary>
    public Action<string>? Debug { get; set; }

    CgroupLayout? _layout;
    CgroupLayout Layout => _layout ??= CgroupLayout.Detect();

    /// <summary>The spec's state of a container, its status derived from the init process.</summary>
    public ContainerState GetState(string id) => ToState(Store.Load(id));

    public ContainerState ToState(ContainerRecord record)
    {
        var status = StatusOf(record);
        return new ContainerState
        {
            Id = record.Id,
            Status = status,
            Pid = status == ContainerStatus.Stopped ? 0 : record.InitPid,
            Bundle = record.Bundle,
            Rootfs = record.Rootfs,
            Created = record.Created,
            Owner = record.Owner,
            Annotations = record.Annotations,
        };
    }

    ContainerStatus StatusOf(ContainerRecord record)
    {
        if (!ProcessInfo.IsAlive(record.InitPid, record.InitStartTime)) return ContainerStatus.Stopped;
        if (record.Creating) return ContainerStatus.Creating;
        // The init blocks on the exec fifo until start; start removes it. A fifo that outlived the
        // init's execve is a start cut short between its write and the removal (its caller killed,
        // as berthd running start in-process can be): the container runs.
        if (File.Exists(Path.Combine(Store.DirectoryOf(record.Id), StateStore.ExecFifo)) && InitHoldsExecFifo(record) != false)
            return ContainerStatus.Created;
        if (IsFrozen(record)) return ContainerStatus.Paused;
        return ContainerStatus.Running;
    }

    /// <summary>
    /// Whether the init still has the exec fifo open, which it has until its execve (the fd is
    /// close-on-exec); null when its fds cannot be read (a rootless caller: the init is not
    /// dumpable), in which case the fifo alone decides, as runc has it.
    /// </summary>
    static bool? InitHoldsExecFifo(ContainerRecord record)
    {
        var suffix = "/" + record.Id + "/" + StateStore.ExecFifo;
        try
        {
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{record.InitPid}/fd"))
                if (new FileInfo(fd).LinkTarget is { } target && target.EndsWith(suffix, StringComparison.Ordinal)) return true;
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    static bool IsFrozen(ContainerRecord record)
    {
        if (record.CgroupPaths.TryGetValue("freezer", out var freezer))
            return LibC.ReadSmallFile(Path.Combine(freezer, "freezer.state"))?.Trim() == "FROZEN";
        if (record.CgroupPaths.TryGetValue(CgroupManager.UnifiedKey, out var unified))
            return LibC.ReadSmallFile(Path.Combine(unified, "cgroup.freeze"))?.Trim() == "1";
        return false;
    }

    public IEnumerable<ContainerState> List()
    {
        foreach (var id in Store.List())
        {
            ContainerRecord record;
            try { record = Store.Load(id); }
            catch (RuntimeException) { continue; } // removed meanwhile
            yield return ToState(record);
        }
    }

    /// <param name="pidSeenInContainer">For hooks run in the container's namespaces: "it is the pid as seen by the container".</param>
    /// <summary>
    /// Passes a seccomp listener fd on to linux.seccomp.listenerPath as runc does: one message on
    /// a new connection, the runtime spec's ContainerProcessState (ociVersion, fds
    /// ["seccompFd"], the process's pid, listenerMetadata, the container's state) with the fd as
    /// SCM_RIGHTS. The fd is closed here either way.
    /// </summary>
    static void PassSeccompListener(int listenerFd, LinuxSeccomp? seccomp, int pid, string stateJson)
    {
        try
        {
            if (string.IsNullOrEmpty(seccomp?.ListenerPath))
                throw new RuntimeException("the seccomp filter has a listener but linux.seccomp.listenerPath is empty");
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var json = new Utf8JsonWriter(buffer, HandWrittenJson.Options()))
            {
                json.WriteStartObject();
                json.WriteString("ociVersion", Spec.SupportedVersion);
                json.WriteStartArray("fds");
                json.WriteStringValue("seccompFd");
                json.WriteEndArray();
                json.WriteNumber("pid", pid);
                json.WriteString("metadata", seccomp.ListenerMetadata ?? "");
                json.WritePropertyName("state");
                json.WriteRawValue(stateJson);
                json.WriteEndObject();
            }
            int socket;
            try { socket = LibC.ConnectUnix(seccomp.ListenerPath); }
            catch (RuntimeException e) { throw new RuntimeException($"linux.seccomp.listenerPath: {e.Message}", e.Errno, e); }
            try { LibC.SendWithFd(socket, buffer.WrittenSpan, listenerFd, $"send the seccomp listener to {seccomp.ListenerPath}"); }
            finally { LibC.close(socket); }
        }
        finally { LibC.close(listenerFd); }
    }

    string StateJson(ContainerRecord record, ContainerStatus? status = null, bool pidSeenInContainer = false)
    {
        var state = ToState(record);
        if (status is { } s)
        {
            state.Status = s;
            state.Pid = record.InitPid;
        }
        if (pidSeenInContainer && state.Pid > 0) state.Pid = ProcessInfo.PidInItsNamespace(state.Pid);
        return ContainerStateWriter.Write(state);
    }

    /// <summary>
    /// Whether a process of the container could open /proc/PID/exe of the runtime's child
    /// while it joins the container (CVE-2019-5736). The child is non-dumpable, so that takes
    /// CAP_SYS_PTRACE over the runtime's user namespace: impossible from inside a user
    /// namespace, and otherwise only for a process whose bounding set still has it. Reading
    /// every process's CapBnd catches processes an earlier exec gave more than the init has.
    /// </summary>
    bool ContainerCanTraceTheRuntime(ContainerRecord record, Spec spec)
    {
        const ulong CapSysPtrace = 1UL << 19;
        if (spec.Linux?.HasNamespace(NamespaceType.User) == true) return false;
        IReadOnlyList<int> pids = LoadCgroup(record)?.GetPids() ?? [record.InitPid];
        foreach (var pid in pids)
        {
            var status = LibC.ReadSmallFile($"/proc/{pid}/status");
            var line = status?.Split('\n').FirstOrDefault(l => l.StartsWith("CapBnd:", StringComparison.Ordinal));
            // Unreadable or gone: assume the worst.
            if (line is null || !ulong.TryParse(line[7..].Trim(), System.Globalization.NumberStyles.HexNumber, null, out var bounding)) return true;
            if ((bounding & CapSysPtrace) != 0) return true;
        }
        return false;
    }

    /// <summary>
    /// Where compiled seccomp programs are kept between runtime processes: a directory of the
    /// state root whose name no container id can have ('@' is not allowed in ids).
    /// </summary>
    public const string SeccompStoreDirectory = "@seccomp-cache";

    /// <summary>
    /// linux.seccomp compiled here, in the parent, and cached (in this process, and on disk under
    /// the state root for the next process): the child only loads the finished program.
    /// </summary>
    Berth.Seccomp.SeccompProgram? CompileSeccomp(Spec spec)
    {
        try
        {
            if (spec.Linux?.Seccomp is not { } section) return null;
            var native = Berth.Seccomp.SeccompArchitectures.Native;
            return Berth.Seccomp.SeccompProgramCache.Shared.GetOrAdd(section, native, Berth.Seccomp.SeccompCompileOptions.Default,
                () => new Berth.Seccomp.SeccompProgramStore(Path.Combine(Store.Root, SeccompStoreDirectory)).GetOrCompile(section, native));
        }
        catch (Berth.Seccomp.SeccompException e) { throw new RuntimeException($"config.json: {e.Message}", 0, e); }
    }

    ICgroupManager? LoadCgroup(ContainerRecord record) =>
        record.CgroupPaths.Count == 0 ? null : CgroupManager.Load(Layout, record.CgroupPaths);

    void RunHooks(string phase, List<Hook>? hooks, string stateJson, int? namespacePid = null, bool warnOnly = false)
    {
        foreach (var hook in hooks ?? [])
        {
            try { HookRunner.Run(hook, stateJson, namespacePid); }
            catch (RuntimeException e) when (warnOnly) { Warn($"{phase} hook {hook.Path}: {e.Message}"); }
            catch (RuntimeException e) { throw new HookFailedException($"{phase} hook {hook.Path}: {e.Message}", e); }
        }
    }

    /// <summary>
    /// A prestart, createRuntime, createContainer or startContainer hook failed: "the runtime MUST
    /// generate an error, stop the container, and continue the lifecycle at step 12" — the
    /// container is destroyed and the poststop hooks run.
    /// </summary>
    sealed class HookFailedException(string message, RuntimeException inner) : RuntimeException(message, inner.Errno, inner);
}
