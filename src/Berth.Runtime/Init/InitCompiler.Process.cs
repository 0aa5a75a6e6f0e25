using Berth.Oci;
using Berth.Runtime.Native;
using static Berth.Oci.MountFlags;

namespace Berth.Runtime.Init;

public sealed partial class InitCompiler
{
    const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    const uint CapabilityVersion3 = 0x20080522;

    /// <summary>
    /// Everything after the rootfs, in runc's order: console, read-only root, hostname,
    /// sysctls, readonly and masked paths, no_new_privs, fds, capabilities and user, cwd;
    /// then "ready", the wait for start, and execve.
    /// </summary>
    void EmitProcess()
    {
        var process = _spec.Process ?? throw new RuntimeException("config.json: process must be set to create a container");
        if (process.Args is not { Count: > 0 } args) throw new RuntimeException("config.json: process.args must not be empty");
        var env = process.Env ?? [];

        Sys0(Sys.Setsid, "setsid");
        if (process.Terminal) EmitConsole(process);
        if (HasNamespace(NamespaceType.Mount) && _spec.Root?.Readonly == true) EmitRemountRootReadonly();
        if (_spec.Hostname is { Length: > 0 } hostname)
            Sys0(Sys.SetHostname, $"sethostname {hostname}", Str(hostname), System.Text.Encoding.UTF8.GetByteCount(hostname));
        if (_spec.Domainname is { Length: > 0 } domain)
            Sys0(Sys.SetDomainname, $"setdomainname {domain}", Str(domain), System.Text.Encoding.UTF8.GetByteCount(domain));
        EmitSysctls();
        if (HasNamespace(NamespaceType.Mount))
        {
            foreach (var path in _linux.ReadonlyPaths ?? []) EmitReadonlyPath(path);
            foreach (var path in _linux.MaskedPaths ?? []) EmitMaskedPath(path);
        }
        foreach (var rlimit in process.Rlimits ?? [])
        {
            if (!Rlimits.TryParse(rlimit.Type, out var resource))
                throw new RuntimeException($"config.json: process.rlimits: unknown type \"{rlimit.Type}\"");
            var limit = _p.Struct(16, w => w.UInt64(0, rlimit.Soft).UInt64(8, rlimit.Hard));
            Sys0(Sys.Prlimit64, $"set {rlimit.Type} to soft {rlimit.Soft}, hard {rlimit.Hard}", 0, resource, limit, 0);
        }
        if (process.NoNewPrivileges) Sys0(Sys.Prctl, "set no_new_privs", Sys.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

        // CVE-2024-21626: no fd of the runtime may reach the container. Everything above
        // 2 (and the --preserve-fds) is marked close-on-exec; the report socket and the
        // exec fifo are needed until execve and go with it.
        Sys0(Sys.CloseRange, "mark inherited fds close-on-exec", 3 + _o.PreserveFds, uint.MaxValue, Sys.CLOSE_RANGE_CLOEXEC);

        var cwd = string.IsNullOrEmpty(process.Cwd) ? "/" : process.Cwd;
        // As runc: try the cwd before the user change (root may reach what the user cannot),
        // and again after it.
        Sys0(Sys.Chdir, $"chdir to {cwd}", Str(cwd)).Tolerate(Sys.EACCES).Tolerate(Sys.EPERM);
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the user change
        // may drop: load it first (runc does the same). With no_new_privs, as late as possible.
        if (!process.NoNewPrivileges) EmitSeccomp();
        EmitUserAndCapabilities(process);
        Sys0(Sys.Chdir, $"chdir to {cwd} as the container user", Str(cwd));
        Sys0(Sys.Umask, "set the umask", process.User.Umask ?? 0x12);

        var candidates = ExecCandidates(args[0], env);
        EmitExecutableCheck(args[0], candidates);
        Send(InitMessage.Ready);
        _p.Syscall(Sys.Read, "wait for start", _start, _byte, 1).FailOnZero = true;
        if (process.NoNewPrivileges) EmitSeccomp();
        var argv = _p.StringArray(args);
        var envp = _p.StringArray(env);
        foreach (var candidate in candidates)
        {
            var op = Sys0(Sys.Execve, $"exec {candidate}", Str(candidate), argv, envp);
            if (candidates.Count > 1) op.Tolerate(Sys.ENOENT).Tolerate(Sys.ENOTDIR).Tolerate(Sys.EACCES);
        }
        if (candidates.Count > 1)
            _p.Add(new Op { Kind = OpKind.Fail, Args = [Sys.ENOENT], Description = $"exec: \"{args[0]}\": executable file not found in $PATH" });
        EmitInitPidTail();
    }

    static List<string> ExecCandidates(string command, List<string> env)
    {
        if (command.Contains('/')) return [command];
        var path = env.LastOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..] ?? DefaultPath;
        return path.Split(':').Select(dir => dir.Length == 0 ? "." : dir).Select(dir => $"{dir.TrimEnd('/')}/{command}").ToList();
    }

    /// <summary>As runc, a command that cannot be executed fails create, not start.</summary>
    void EmitExecutableCheck(string command, List<string> candidates)
    {
        const int X_OK = 1;
        var found = new Label();
        foreach (var candidate in candidates)
        {
            // runc's wording ("exec: \"x\": stat x: …"): dockerd reads it to choose exit code 126 or 127.
            var op = Sys0(Sys.FaccessAt, $"exec: \"{command}\": stat {candidate}", Sys.AT_FDCWD, Str(candidate), X_OK);
            if (candidates.Count > 1)
            {
                op.OnSuccess = found;
                op.Tolerate(Sys.ENOENT).Tolerate(Sys.ENOTDIR).Tolerate(Sys.EACCES);
            }
        }
        if (candidates.Count > 1)
            _p.Add(new Op { Kind = OpKind.Fail, Args = [Sys.ENOENT], Description = $"exec: \"{command}\": executable file not found in $PATH" });
        _p.Place(found);
    }

    void EmitUserAndCapabilities(Berth.Oci.Process process)
    {
        var caps = process.Capabilities;
        var bounding = Capabilities.ToMask(caps?.Bounding);
        // The bounding set is dropped while we still hold CAP_SETPCAP; unknown to this
        // kernel (EINVAL) means there is nothing to drop.
        for (var cap = 0; cap <= Capabilities.Last; cap++)
        {
            if ((bounding & (1UL << cap)) != 0) continue;
            Sys0(Sys.Prctl, $"drop {Capabilities.NameOf(cap)} from the bounding set", Sys.PR_CAPBSET_DROP, cap, 0, 0, 0).Tolerate(Sys.EINVAL);
        }
        // Keep the permitted set across setresuid; capset below sets exactly what is asked.
        Sys0(Sys.Prctl, "keep capabilities across the user change", Sys.PR_SET_KEEPCAPS, 1, 0, 0, 0);
        var user = process.User;
        var groups = user.AdditionalGids ?? [];
        var groupArray = _p.Bytes(groups.SelectMany(BitConverter.GetBytes).ToArray().AsSpan(), 4);
        Sys0(Sys.Setgroups, $"setgroups [{string.Join(' ', groups)}]", groups.Count, groups.Count == 0 ? 0 : groupArray);
        Sys0(Sys.Setresgid, $"setresgid {user.Gid}", user.Gid, user.Gid, user.Gid);
        Sys0(Sys.Setresuid, $"setresuid {user.Uid}", user.Uid, user.Uid, user.Uid);
        Sys0(Sys.Prctl, "stop keeping capabilities", Sys.PR_SET_KEEPCAPS, 0, 0, 0, 0);

        var effective = Capabilities.ToMask(caps?.Effective);
        var permitted = Capabilities.ToMask(caps?.Permitted);
        var inheritable = Capabilities.ToMask(caps?.Inheritable);
        var header = _p.Struct(8, w => w.Int32(0, unchecked((int)CapabilityVersion3)).Int32(4, 0));
        var data = _p.Struct(24, w => w
            .Int32(0, (int)(uint)effective).Int32(4, (int)(uint)permitted).Int32(8, (int)(uint)inheritable)
            .Int32(12, (int)(uint)(effective >> 32)).Int32(16, (int)(uint)(permitted >> 32)).Int32(20, (int)(uint)(inheritable >> 32)));
        Sys0(Sys.Capset, "set capabilities (effective, permitted, inheritable)", header, data);
        foreach (var name in caps?.Ambient ?? [])
        {
            var cap = Capabilities.Parse(name);
            // The kernel allows an ambient capability only when it is both permitted and
            // inheritable (EPERM otherwise); runc goes on without it, and so do we.
            Sys0(Sys.Prctl, $"raise ambient {name}", Sys.PR_CAP_AMBIENT, Sys.PR_CAP_AMBIENT_RAISE, cap, 0, 0).Tolerate(Sys.EPERM);
        }
    }

    void EmitSeccomp()
    {
        if (_o.Seccomp is not { } seccomp) return;
        if (seccomp.NeedsListener)
            throw new RuntimeException("linux.seccomp: SCMP_ACT_NOTIFY (a listener at listenerPath) is not supported yet");
        const int SECCOMP_SET_MODE_FILTER = 1;
        var filter = _p.Bytes(seccomp.Filter, 8);
        var fprog = _p.Struct(16, w => w.Int32(0, seccomp.InstructionCount).Pointer(8, filter));
        Sys0(Sys.Seccomp, $"load the seccomp filter ({seccomp.InstructionCount} instructions)", SECCOMP_SET_MODE_FILTER, seccomp.Flags, fprog);
    }

    void EmitSysctls()
    {
        foreach (var (key, value) in _linux.Sysctl ?? [])
        {
            var path = "/proc/sys/" + key.Replace('.', '/');
            Sys0(Sys.OpenAt, $"open sysctl {key}", Sys.AT_FDCWD, Str(path), Sys.O_WRONLY | Sys.O_TRUNC | Sys.O_CLOEXEC).Result = _tmp;
            var bytes = System.Text.Encoding.UTF8.GetBytes(value);
            Sys0(Sys.Write, $"write sysctl {key}={value}", _tmp, _p.Bytes(bytes), bytes.Length);
            Close(_tmp);
        }
    }

    void EmitRemountRootReadonly()
    {
        Sys0(Sys.Statfs, "statfs /", Str("/"), _statfs);
        _p.Add(new Op
        {
            Kind = OpKind.Load, Args = [new OpArg(OpArgKind.Data, _statfs.Offset + StatfsFlagsOffset), (long)PreservedOnRemount, (long)(MS_BIND | MS_REMOUNT | MS_RDONLY)],
            Result = _flags, Description = "flags for a read-only root",
        });
        Sys0(Sys.Mount, "remount / read-only", 0, Str("/"), 0, _flags, 0);
    }

    void EmitReadonlyPath(string path)
    {
        var done = new Label();
        var target = Str(path);
        Sys0(Sys.Mount, $"bind mount readonly path {path}", target, target, 0, (long)(MS_BIND | MS_REC), 0).Tolerate(Sys.ENOENT, done);
        Sys0(Sys.Statfs, $"statfs {path}", target, _statfs);
        _p.Add(new Op
        {
            Kind = OpKind.Load, Args = [new OpArg(OpArgKind.Data, _statfs.Offset + StatfsFlagsOffset), (long)PreservedOnRemount, (long)(MS_BIND | MS_REMOUNT | MS_RDONLY)],
            Result = _flags, Description = $"flags for read-only {path}",
        });
        Sys0(Sys.Mount, $"remount {path} read-only", 0, target, 0, _flags, 0);
        _p.Place(done);
    }

    /// <summary>/dev/null over a file, a read-only empty tmpfs over a directory (runc's maskPath).</summary>
    void EmitMaskedPath(string path)
    {
        var directory = new Label();
        var done = new Label();
        var target = Str(path);
        Sys0(Sys.Mount, $"mask {path}", Str("/dev/null"), target, 0, (long)MS_BIND, 0)
            .Tolerate(Sys.ENOENT, done).Tolerate(Sys.ENOTDIR, directory);
        _p.Jump(done, $"{path} masked");
        _p.Place(directory);
        Sys0(Sys.Mount, $"mask directory {path}", Str("tmpfs"), target, Str("tmpfs"), (long)MS_RDONLY, 0);
        _p.Place(done);
    }

    /// <summary>
    /// A pty from the container's own devpts: the master goes to the console socket
    /// (SCM_RIGHTS), the slave becomes stdio, the controlling terminal and /dev/console.
    /// TIOCGPTPEER opens the slave from the master without a path.
    /// </summary>
    void EmitConsole(Berth.Oci.Process process)
    {
        if (_o.ConsoleSocketFd < 0) throw new RuntimeException("process.terminal is true but no --console-socket was given");
        var master = _p.NewSlot();
        var slave = _p.NewSlot();
        Sys0(Sys.OpenAt, "open /dev/ptmx", Sys.AT_FDCWD, Str("/dev/ptmx"), Sys.O_RDWR | Sys.O_NOCTTY | Sys.O_CLOEXEC).Result = master;
        Sys0(Sys.Ioctl, "unlock the pty", master, Sys.TIOCSPTLCK, _p.Zeroes(8));
        Sys0(Sys.Ioctl, "open the pty slave", master, Sys.TIOCGPTPEER, Sys.O_RDWR | Sys.O_NOCTTY | Sys.O_CLOEXEC).Result = slave;
        if (process.ConsoleSize is { } size)
        {
            var winsize = _p.Struct(8, w => w.Int32(0, (int)((size.Height & 0xffff) | ((size.Width & 0xffff) << 16))));
            Sys0(Sys.Ioctl, $"set the console size to {size.Width}x{size.Height}", slave, Sys.TIOCSWINSZ, winsize);
        }
        if (HasNamespace(NamespaceType.Mount))
        {
            _p.Add(new Op { Kind = OpKind.FdPath, Args = [_fdPath, slave.Index], Description = "name the pty slave" });
            Sys0(Sys.Mount, "bind mount the pty on /dev/console", _fdPath, Str("/dev/console"), 0, (long)MS_BIND, 0);
        }

        var name = _p.String("/dev/ptmx");
        var iov = _p.Struct(16, w => w.Pointer(0, name).Int64(8, "/dev/ptmx".Length));
        var control = _p.Struct(24, w => w.Int64(0, 20).Int32(8, 1 /* SOL_SOCKET */).Int32(12, 1 /* SCM_RIGHTS */));
        var message = _p.Struct(56, w => w.Pointer(16, iov).Int64(24, 1).Pointer(32, control).Int64(40, 24));
        _p.Add(new Op { Kind = OpKind.Store, Args = [new OpArg(OpArgKind.Data, control.Offset + 16), master.Index, 4], Description = "put the pty master in the message" });
        Sys0(Sys.Sendmsg, "send the pty master to the console socket", _console, message, 0);
        Close(master);
        for (var fd = 0; fd < 3; fd++)
            Sys0(Sys.Dup3, $"make the pty fd {fd}", slave, fd, 0).Tolerate(Sys.EINVAL);
        Sys0(Sys.Ioctl, "make the pty the controlling terminal", 0, Sys.TIOCSCTTY, 0);
        Close(_console);
    }
}
