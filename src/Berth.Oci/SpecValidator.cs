using System.Text.RegularExpressions;

namespace Berth.Oci;

/// <summary>Everything wrong with a config, plus what runc would accept but warn about.</summary>
public sealed record SpecValidationResult(IReadOnlyList<SpecException> Errors, IReadOnlyList<string> Warnings)
{
    public bool IsValid => Errors.Count == 0;
}

/// <summary>
/// Refuses a config before anything is created, with a message naming the field, following runc's
/// libcontainer/configs/validate/validator.go plus the checks runc makes later while converting or mounting
/// (rlimit and capability names, /proc mount destinations) and the spec's MUSTs.
/// </summary>
public static partial class SpecValidator
{
    /// <summary>Throws the first error as a <see cref="SpecException"/>; returns the warnings.</summary>
    public static IReadOnlyList<string> Validate(Spec spec, string bundleDir)
    {
        var result = Check(spec, bundleDir);
        if (!result.IsValid) throw result.Errors[0];
        return result.Warnings;
    }

    /// <summary>Collects every error and warning.</summary>
    public static SpecValidationResult Check(Spec spec, string bundleDir)
    {
        var checker = new Checker(spec, bundleDir);
        checker.Run();
        return new SpecValidationResult(checker.Errors, checker.Warnings);
    }

    // Destinations under /proc runc lets through: files lxcfs emulates.
    private static readonly string[] s_allowedProcMounts =
    [
        "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime",
        "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled",
    ];

    // IPC-namespaced sysctls (runc's validSysctlMap); fs.mqueue.* is matched by prefix.
    private static readonly HashSet<string> s_ipcSysctls = new(StringComparer.Ordinal)
    {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
        "kernel.shmmni", "kernel.shm_rmid_forced",
    };

    private static readonly string[] s_schedulerPolicies =
        ["SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE"];

    private static readonly string[] s_ioPriorityClasses = ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"];

    [GeneratedRegex(@"^1\.\d+(\.\d+)?([-+].*)?$")]
    private static partial Regex Version1();

    private sealed class Checker(Spec spec, string bundleDir)
    {
        public List<SpecException> Errors { get; } = [];
        public List<string> Warnings { get; } = [];

        private Linux Linux { get; } = spec.Linux ?? new Linux();

        private void Error(string field, string problem) => Errors.Add(new SpecException(field, problem));

        private void Warn(string field, string problem) => Warnings.Add($"{SpecException.DefaultFile}: {field}: {problem}");

        public void Run()
        {
            CheckVersion();
            CheckRoot();
            CheckProcess();
            CheckHooks();
            CheckNamespaces();
            CheckIdMappings();
            CheckUts();
            CheckTimeOffsets();
            CheckSysctls();
            CheckMounts();
            CheckPaths();
            CheckDevices();
            CheckResources();
            CheckSeccomp();
            CheckMisc();
        }

        private void CheckVersion()
        {
            if (string.IsNullOrEmpty(spec.OciVersion))
                Error("ociVersion", "must be set");
            else if (!Version1().IsMatch(spec.OciVersion))
                Error("ociVersion", $"unsupported version \"{spec.OciVersion}\", want 1.x");
        }

        private void CheckRoot()
        {
            if (spec.Root is null)
            {
                Error("root", "must be set");
                return;
            }
            if (string.IsNullOrEmpty(spec.Root.Path))
            {
                Error("root.path", "must be set");
                return;
            }
            var rootfs = spec.ResolveRootfs(bundleDir);
            if (!Directory.Exists(rootfs))
                Error("root.path", File.Exists(rootfs) ? $"rootfs {rootfs} is not a directory" : $"rootfs {rootfs} does not exist");
        }

        private void CheckProcess()
        {
            var process = spec.Process;
            if (process is null)
            {
                Error("process", "must be set");
                return;
            }

            if (process.Args is not { Count: > 0 })
                Error("process.args", "must not be empty");
            else if (string.IsNullOrEmpty(process.Args[0]))
                Error("process.args[0]", "must not be empty");

            if (string.IsNullOrEmpty(process.Cwd))
                Error("process.cwd", "must be set");
            else if (!process.Cwd.StartsWith('/'))
                Error("process.cwd", $"must be an absolute path, got \"{process.Cwd}\"");

            CheckEnv("process.env", process.Env);
            CheckRlimits(process.Rlimits);

            foreach (var (set, names) in process.Capabilities?.Sets() ?? [])
                for (var i = 0; i < (names?.Count ?? 0); i++)
                    if (!Capabilities.TryParse(names![i], out _))
                        Error($"process.capabilities.{set}[{i}]", $"unknown capability \"{names[i]}\"");

            if (process.OomScoreAdj is < -1000 or > 1000)
                Error("process.oomScoreAdj", $"{process.OomScoreAdj} is out of range [-1000, 1000]");

            if (process.IoPriority is { } io)
            {
                if (!s_ioPriorityClasses.Contains(io.Class))
                    Error("process.ioPriority.class", $"unknown class \"{io.Class}\", want one of {string.Join(", ", s_ioPriorityClasses)}");
                if (io.Priority is < 0 or > 7)
                    Error("process.ioPriority.priority", $"{io.Priority} is out of range [0, 7]");
            }

            if (process.Scheduler is { } scheduler)
            {
                if (!s_schedulerPolicies.Contains(scheduler.Policy))
                    Error("process.scheduler.policy", $"unknown policy \"{scheduler.Policy}\"");
                if (scheduler.Nice is < -20 or > 19)
                    Error("process.scheduler.nice", $"{scheduler.Nice} is out of range [-20, 19]");
            }
        }

        private void CheckEnv(string field, List<string>? env)
        {
            for (var i = 0; i < (env?.Count ?? 0); i++)
            {
                var entry = env![i];
                var eq = entry.IndexOf('=');
                if (eq < 0) Error($"{field}[{i}]", $"\"{entry}\" is not NAME=value");
                else if (eq == 0) Error($"{field}[{i}]", $"\"{entry}\" has an empty name");
                else if (entry.Contains('\0')) Error($"{field}[{i}]", "contains a NUL byte");
            }
        }

        private void CheckRlimits(List<PosixRlimit>? rlimits)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < (rlimits?.Count ?? 0); i++)
            {
                var rlimit = rlimits![i];
                var field = $"process.rlimits[{i}]";
                if (!Rlimits.TryParse(rlimit.Type, out _))
                    Error($"{field}.type", $"unknown rlimit type \"{rlimit.Type}\"");
                else if (!seen.Add(rlimit.Type))
                    Error($"{field}.type", $"duplicate rlimit type \"{rlimit.Type}\"");
                if (rlimit.Soft > rlimit.Hard)
                    Error(field, $"soft limit {rlimit.Soft} is greater than hard limit {rlimit.Hard}");
            }
        }

        private void CheckHooks()
        {
            foreach (var (name, hooks) in spec.Hooks?.All() ?? [])
            {
                for (var i = 0; i < (hooks?.Count ?? 0); i++)
                {
                    var hook = hooks![i];
                    var field = $"hooks.{name}[{i}]";
                    if (!Path.IsPathRooted(hook.Path))
                        Error($"{field}.path", $"must be an absolute path, got \"{hook.Path}\"");
                    if (hook.Timeout is <= 0)
                        Error($"{field}.timeout", $"must be greater than zero, got {hook.Timeout}");
                    CheckEnv($"{field}.env", hook.Env);
                }
            }
        }

        private void CheckNamespaces()
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var namespaces = Linux.Namespaces ?? [];
            for (var i = 0; i < namespaces.Count; i++)
            {
                var ns = namespaces[i];
                var field = $"linux.namespaces[{i}]";
                if (!NamespaceType.IsKnown(ns.Type))
                    Error($"{field}.type", $"unknown namespace type \"{ns.Type}\"");
                else if (!seen.Add(ns.Type))
                    Error($"{field}.type", $"duplicate namespace \"{ns.Type}\"");

                if (string.IsNullOrEmpty(ns.Path)) continue;
                if (!ns.Path.StartsWith('/'))
                    Error($"{field}.path", $"must be an absolute path, got \"{ns.Path}\"");
                else if (!File.Exists(ns.Path))
                    Error($"{field}.path", $"{ns.Path} does not exist");
            }
        }

        private void CheckIdMappings()
        {
            var userNs = Linux.FindNamespace(NamespaceType.User);
            var hasUidMap = Linux.UidMappings is { Count: > 0 };
            var hasGidMap = Linux.GidMappings is { Count: > 0 };
            if (userNs is null)
            {
                if (hasUidMap) Error("linux.uidMappings", "id mappings need a user namespace in linux.namespaces");
                if (hasGidMap) Error("linux.gidMappings", "id mappings need a user namespace in linux.namespaces");
            }
            else if (string.IsNullOrEmpty(userNs.Path))
            {
                if (!hasUidMap) Error("linux.uidMappings", "a new user namespace needs uid mappings");
                if (!hasGidMap) Error("linux.gidMappings", "a new user namespace needs gid mappings");
            }
            CheckMappingSizes("linux.uidMappings", Linux.UidMappings);
            CheckMappingSizes("linux.gidMappings", Linux.GidMappings);
        }

        private void CheckMappingSizes(string field, List<LinuxIdMapping>? mappings)
        {
            for (var i = 0; i < (mappings?.Count ?? 0); i++)
                if (mappings![i].Size == 0)
                    Error($"{field}[{i}].size", "must be greater than zero");
        }

        private void CheckUts()
        {
            // Like runc, a joined uts namespace is fine too: containerd sets the sandbox's hostname on
            // every container of a pod, each joining the sandbox's namespace.
            if (Linux.HasNamespace(NamespaceType.Uts)) return;
            if (!string.IsNullOrEmpty(spec.Hostname))
                Error("hostname", "setting the hostname needs a uts namespace in linux.namespaces");
            if (!string.IsNullOrEmpty(spec.Domainname))
                Error("domainname", "setting the domainname needs a uts namespace in linux.namespaces");
        }

        private void CheckTimeOffsets()
        {
            if (Linux.TimeOffsets is not { Count: > 0 } offsets) return;
            var timeNs = Linux.FindNamespace(NamespaceType.Time);
            if (timeNs is null)
                Error("linux.timeOffsets", "time offsets need a time namespace in linux.namespaces");
            else if (!string.IsNullOrEmpty(timeNs.Path))
                Error("linux.timeOffsets", "time offsets cannot be set on a joined time namespace");
            foreach (var (clock, offset) in offsets)
            {
                if (clock is not ("monotonic" or "boottime"))
                    Error($"linux.timeOffsets.{clock}", "unknown clock, want monotonic or boottime");
                else if (offset.Nanosecs >= 1_000_000_000)
                    Error($"linux.timeOffsets.{clock}.nanosecs", $"{offset.Nanosecs} is not below one second");
            }
        }

        private void CheckSysctls()
        {
            bool? hostNetwork = null;
            foreach (var name in Linux.Sysctl?.Keys ?? Enumerable.Empty<string>())
            {
                if (SysctlProblem(name, ref hostNetwork) is { } problem)
                    Error($"linux.sysctl['{name}']", problem);
            }
        }

        // runc's rule: a sysctl is only allowed when the namespace it belongs to is the container's own.
        private string? SysctlProblem(string name, ref bool? hostNetwork)
        {
            if (s_ipcSysctls.Contains(name) || name.StartsWith("fs.mqueue.", StringComparison.Ordinal))
                return Linux.HasNamespace(NamespaceType.Ipc) ? null : "is not allowed in the host's ipc namespace";
            if (name.StartsWith("net.", StringComparison.Ordinal))
                return (hostNetwork ??= UsesHostNetwork()) ? "is not allowed in the host's network namespace" : null;
            if (Linux.HasNamespace(NamespaceType.Uts))
            {
                if (name == "kernel.domainname") return null;
                if (name == "kernel.hostname") return "conflicts with the \"hostname\" field; set that instead";
            }
            return "is not in a separate kernel namespace";
        }

        // "Host" means the namespace the runtime runs in, as in runc.
        private bool UsesHostNetwork()
        {
            var netNs = Linux.FindNamespace(NamespaceType.Network);
            if (netNs is null) return true;
            if (string.IsNullOrEmpty(netNs.Path)) return false;
            return NamespaceIdentity(netNs.Path) is { } id && id == NamespaceIdentity("/proc/self/ns/net");
        }

        // /proc/<pid>/ns/* are links to "net:[inode]". A bind-mounted nsfs file (/run/netns/x) is not
        // a link, and can only name another namespace than the host's in practice.
        private static string? NamespaceIdentity(string path)
        {
            try
            {
                return new FileInfo(path).LinkTarget;
            }
            catch (IOException)
            {
                return null;
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }
        }

        private void CheckMounts()
        {
            var mounts = spec.Mounts ?? [];
            for (var i = 0; i < mounts.Count; i++)
            {
                var mount = mounts[i];
                var field = $"mounts[{i}]";
                var destination = mount.Destination;
                if (string.IsNullOrEmpty(destination))
                {
                    Error($"{field}.destination", "must be set");
                    continue;
                }
                if (!destination.StartsWith('/'))
                {
                    Warn($"{field}.destination", $"\"{destination}\" is not absolute; it is taken relative to / as runc does");
                    destination = "/" + destination;
                }
                if (CleanInRoot(destination) is not { } clean)
                {
                    Error($"{field}.destination", $"\"{mount.Destination}\" escapes the container's root with \"..\"");
                    continue;
                }
                if (IsUnderProc(clean) && !s_allowedProcMounts.Contains(clean))
                    Error($"{field}.destination", $"\"{clean}\" cannot be mounted because it is inside /proc");

                var bind = MountOptions.IsBind(mount);
                if (bind && string.IsNullOrEmpty(mount.Source))
                    Error($"{field}.source", "a bind mount needs a source");

                var idMapped = mount.UidMappings is { Count: > 0 } || mount.GidMappings is { Count: > 0 };
                if (idMapped)
                {
                    if (mount.UidMappings is not { Count: > 0 } || mount.GidMappings is not { Count: > 0 })
                        Error(field, "an id-mapped mount needs both uidMappings and gidMappings");
                    if (!bind)
                        Error(field, "id mappings are only supported on bind mounts");
                    CheckMappingSizes($"{field}.uidMappings", mount.UidMappings);
                    CheckMappingSizes($"{field}.gidMappings", mount.GidMappings);
                }
            }
        }

        private static bool IsUnderProc(string clean) => clean.StartsWith("/proc/", StringComparison.Ordinal);

        /// <summary>The lexically cleaned absolute path, or null when ".." climbs above "/".</summary>
        private static string? CleanInRoot(string path)
        {
            var parts = new List<string>();
            foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                if (part == ".") continue;
                if (part == "..")
                {
                    if (parts.Count == 0) return null;
                    parts.RemoveAt(parts.Count - 1);
                }
                else parts.Add(part);
            }
            return "/" + string.Join('/', parts);
        }

        private void CheckPaths()
        {
            foreach (var (name, paths) in new[] { ("maskedPaths", Linux.MaskedPaths), ("readonlyPaths", Linux.ReadonlyPaths) })
            {
                if (paths is not { Count: > 0 }) continue;
                if (!Linux.HasNamespace(NamespaceType.Mount))
                    Error($"linux.{name}", "needs a mount namespace in linux.namespaces");
                for (var i = 0; i < paths.Count; i++)
                    if (!paths[i].StartsWith('/'))
                        Error($"linux.{name}[{i}]", $"must be an absolute path, got \"{paths[i]}\"");
            }

            if (!Propagation.TryParse(Linux.RootfsPropagation, out _))
                Error("linux.rootfsPropagation", $"unknown propagation \"{Linux.RootfsPropagation}\", want one of {string.Join(", ", Propagation.Names)}");
        }

        private void CheckDevices()
        {
            var devices = Linux.Devices ?? [];
            for (var i = 0; i < devices.Count; i++)
            {
                var device = devices[i];
                var field = $"linux.devices[{i}]";
                if (!device.Path.StartsWith('/'))
                    Error($"{field}.path", $"must be an absolute path, got \"{device.Path}\"");
                if (device.Type is not ("c" or "b" or "u" or "p"))
                    Error($"{field}.type", $"unknown device type \"{device.Type}\", want c, b, u or p");
                else if (device.Type != "p")
                {
                    if (device.Major is null) Error($"{field}.major", $"must be set for a device of type {device.Type}");
                    if (device.Minor is null) Error($"{field}.minor", $"must be set for a device of type {device.Type}");
                }
            }
        }

        private void CheckResources()
        {
            if (Linux.Resources is not { } resources) return;

            var devices = resources.Devices ?? [];
            for (var i = 0; i < devices.Count; i++)
            {
                var rule = devices[i];
                var field = $"linux.resources.devices[{i}]";
                if (rule.Type is not (null or "" or "a" or "c" or "b"))
                    Error($"{field}.type", $"unknown device type \"{rule.Type}\", want a, c or b");
                if (rule.Access is { } access && access.Any(c => c is not ('r' or 'w' or 'm')))
                    Error($"{field}.access", $"\"{access}\" may only contain r, w and m");
            }

            if (resources.Memory is { } memory)
            {
                if (memory.Swap is long swap and not -1 && memory.Limit is long limit and > 0 && swap < limit)
                    Error("linux.resources.memory.swap", $"memory+swap limit {swap} is less than the memory limit {limit}");
                if (memory.Swappiness is > 100)
                    Error("linux.resources.memory.swappiness", $"{memory.Swappiness} is out of range [0, 100]");
            }

            if (resources.BlockIo is { } blockIo)
            {
                // 0 means "not set": Docker sends blockIO.weight 0 for every container, and runc ignores it.
                if (blockIo.Weight is { } weight and not 0 and (< 10 or > 1000))
                    Error("linux.resources.blockIO.weight", $"{weight} is out of range [10, 1000] (or 0 for not set)");
                if (blockIo.LeafWeight is { } leaf and not 0 and (< 10 or > 1000))
                    Error("linux.resources.blockIO.leafWeight", $"{leaf} is out of range [10, 1000] (or 0 for not set)");
            }
        }

        private void CheckSeccomp()
        {
            if (Linux.Seccomp is not { } seccomp) return;
            const string field = "linux.seccomp";

            if (!SeccompNames.Actions.Contains(seccomp.DefaultAction))
                Error($"{field}.defaultAction", $"unknown action \"{seccomp.DefaultAction}\"");
            else if (seccomp.DefaultAction == "SCMP_ACT_NOTIFY")
                Error($"{field}.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action");
            if (seccomp.DefaultErrnoRet is not null && !SeccompNames.TakesErrno(seccomp.DefaultAction))
                Error($"{field}.defaultErrnoRet", $"only applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {seccomp.DefaultAction}");

            for (var i = 0; i < (seccomp.Architectures?.Count ?? 0); i++)
                if (!SeccompNames.Architectures.Contains(seccomp.Architectures![i]))
                    Error($"{field}.architectures[{i}]", $"unknown architecture \"{seccomp.Architectures[i]}\"");
            for (var i = 0; i < (seccomp.Flags?.Count ?? 0); i++)
                if (!SeccompNames.Flags.Contains(seccomp.Flags![i]))
                    Error($"{field}.flags[{i}]", $"unknown flag \"{seccomp.Flags[i]}\"");

            var syscalls = seccomp.Syscalls ?? [];
            var notifies = false;
            for (var i = 0; i < syscalls.Count; i++)
            {
                var syscall = syscalls[i];
                var at = $"{field}.syscalls[{i}]";
                if (syscall.Names.Count == 0 || syscall.Names.Any(string.IsNullOrEmpty))
                    Error($"{at}.names", "must list at least one syscall, none empty");
                if (!SeccompNames.Actions.Contains(syscall.Action))
                    Error($"{at}.action", $"unknown action \"{syscall.Action}\"");
                notifies |= syscall.Action == "SCMP_ACT_NOTIFY";
                if (syscall.ErrnoRet is not null && !SeccompNames.TakesErrno(syscall.Action))
                    Error($"{at}.errnoRet", $"only applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {syscall.Action}");
                var args = syscall.Args ?? [];
                for (var j = 0; j < args.Count; j++)
                {
                    if (args[j].Index > 5)
                        Error($"{at}.args[{j}].index", $"{args[j].Index} is out of range [0, 5]");
                    if (!SeccompNames.Operators.Contains(args[j].Op))
                        Error($"{at}.args[{j}].op", $"unknown operator \"{args[j].Op}\"");
                }
            }
            if (notifies && string.IsNullOrEmpty(seccomp.ListenerPath))
                Error($"{field}.listenerPath", "must be set when a rule uses SCMP_ACT_NOTIFY");
        }

        private void CheckMisc()
        {
            if (Linux.Personality is { } personality && personality.Domain is not ("LINUX" or "LINUX32"))
                Error("linux.personality.domain", $"unknown domain \"{personality.Domain}\", want LINUX or LINUX32");

            if (Linux.IntelRdt?.ClosId is { } closId && (closId is "." or ".." || closId.Contains('/')))
                Error("linux.intelRdt.closID", $"\"{closId}\" is not a valid directory name");
        }
    }
}
