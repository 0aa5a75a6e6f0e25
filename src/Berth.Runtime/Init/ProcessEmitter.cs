using Berth.Oci;
using Berth.Runtime.Native;
using static Berth.Oci.MountFlags;

namespace Berth.Runtime.Init;

/// <summary>
/// The process part of a child program, shared by the container init (<see cref="InitCompiler"/>)
/// and <c>exec</c> (<see cref="ExecCompiler"/>): console, rlimits, no_new_privs, inherited fds,
/// cwd, seccomp, capabilities and user, umask, the executable check and execve with the PATH
/// search. Each method emits its ops at the end of the program; the callers decide the order
/// (runc's standard_init_linux.go and setns_init_linux.go, which differ only around them).
/// </summary>
internal sealed class ProcessEmitter(ChildProgram p)
{
    public const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    const uint CapabilityVersion3 = 0x20080522;

    Data? _byte;

    Op Sys0(long nr, string description, params OpArg[] args) => p.Syscall(nr, description, args);

    /// <summary>
    /// The part runc's standard_init and setns_init share, in their order: rlimits,
    /// no_new_privs, inherited fds, cwd, seccomp (here without no_new_privs: loading a filter
    /// then needs CAP_SYS_ADMIN, which the user change may drop), user and capabilities,
    /// cwd as the user, umask. Seccomp with no_new_privs is the caller's, right before execve.
    /// </summary>
    public void Credentials(Berth.Oci.Process process, int preserveFds, Berth.Seccomp.SeccompProgram? seccomp, Slot report)
    {
        Rlimits(process);
        if (process.NoNewPrivileges) NoNewPrivileges();
        MarkInheritedFdsCloseOnExec(preserveFds);
        var cwd = string.IsNullOrEmpty(process.Cwd) ? "/" : process.Cwd;
        ChdirAsRoot(cwd);
        if (!process.NoNewPrivileges) Seccomp(seccomp, report);
        HomeFromPasswd(process);
        UserAndCapabilities(process);
        ChdirAsUser(cwd);
        Umask(process.User);
    }

    public void Rlimits(Berth.Oci.Process process)
    {
        foreach (var rlimit in process.Rlimits ?? [])
        {
            if (!Berth.Oci.Rlimits.TryParse(rlimit.Type, out var resource))
                throw new RuntimeException($"config.json: process.rlimits: unknown type \"{rlimit.Type}\"");
            var limit = p.Struct(16, w => w.UInt64(0, rlimit.Soft).UInt64(8, rlimit.Hard));
            Sys0(Sys.Prlimit64, $"set {rlimit.Type} to soft {rlimit.Soft}, hard {rlimit.Hard}", 0, resource, limit, 0);
        }
    }

    public void NoNewPrivileges() => Sys0(Sys.Prctl, "set no_new_privs", Sys.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

    /// <summary>
    /// CVE-2024-21626: no fd of the runtime may reach the container. Everything above 2 (and
    /// the preserved fds) is marked close-on-exec; what the program still needs (the report
    /// socket, the exec fifo) goes with execve.
    /// </summary>
    public void MarkInheritedFdsCloseOnExec(int preserveFds) =>
        Sys0(Sys.CloseRange, "mark inherited fds close-on-exec", 3 + preserveFds, uint.MaxValue, Sys.CLOSE_RANGE_CLOEXEC);

    /// <summary>As runc: the cwd is tried before the user change (root may reach what the user cannot); failures wait for the second try.</summary>
    public void ChdirAsRoot(string cwd) => Chdir(cwd, "", tolerateDenied: true);

    public void ChdirAsUser(string cwd) => Chdir(cwd, " as the container user", tolerateDenied: false);

    Slot? _rootFd, _cwdFd;
    Data? _openHowDir;

    /// <summary>
    /// CVE-2024-21626: a cwd such as /proc/self/fd/7 would follow an fd the runtime inherited
    /// (open until execve) to a directory outside the container. The cwd is resolved from the
    /// container's root with openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS, so it can neither
    /// climb out nor follow a /proc magic link, and entered with fchdir.
    /// </summary>
    void Chdir(string cwd, string who, bool tolerateDenied)
    {
        _rootFd ??= p.NewSlot();
        _cwdFd ??= p.NewSlot();
        _openHowDir ??= p.Struct(24, w => w
            .UInt64(0, (ulong)(Sys.O_PATH | Sys.O_DIRECTORY | Sys.O_CLOEXEC))
            .UInt64(16, Sys.RESOLVE_IN_ROOT | Sys.RESOLVE_NO_MAGICLINKS));
        var done = new Label();
        Sys0(Sys.OpenAt, "open / for the cwd", Sys.AT_FDCWD, p.String("/"), Sys.O_PATH | Sys.O_DIRECTORY | Sys.O_CLOEXEC).Result = _rootFd;
        var relative = cwd.TrimStart('/') is { Length: > 0 } r ? r : ".";
        var open = Sys0(Sys.OpenAt2, $"chdir to {cwd}{who}", _rootFd.Value, p.String(relative), _openHowDir.Value, 24);
        open.Result = _cwdFd;
        if (tolerateDenied) open.Tolerate(Sys.EACCES, done).Tolerate(Sys.EPERM, done);
        var enter = Sys0(Sys.Fchdir, $"chdir to {cwd}{who}", _cwdFd.Value);
        if (tolerateDenied) enter.Tolerate(Sys.EACCES).Tolerate(Sys.EPERM);
        Sys0(Sys.Close, "close", _cwdFd.Value);
        p.Place(done);
        Sys0(Sys.Close, "close", _rootFd.Value);
    }

    public void Umask(User user) => Sys0(Sys.Umask, "set the umask", user.Umask ?? 0x12);

    /// <summary>Waits for a one-byte go-ahead on <paramref name="fd"/>; end of file means the runtime died.</summary>
    public void WaitForByte(Slot fd, string description)
    {
        _byte ??= p.Zeroes(8);
        p.Syscall(Sys.Read, description, fd, _byte.Value, 1).FailOnZero = true;
    }

    /// <summary>
    /// Loads the filter. With a SCMP_ACT_NOTIFY rule, seccomp(2) returns the listener's fd
    /// (SECCOMP_FILTER_FLAG_NEW_LISTENER): it goes to the runtime on the report socket (an
    /// <see cref="InitMessage.SeccompListener"/> record with the fd as SCM_RIGHTS), which passes it
    /// on to linux.seccomp.listenerPath and answers one byte; then the child closes its copy. The
    /// few syscalls from here to execve (sendmsg, read, close, write, execve) must be allowed by
    /// the filter, as with runc: one routed to the listener would wait for an agent not yet there.
    /// </summary>
    public void Seccomp(Berth.Seccomp.SeccompProgram? seccomp, Slot report)
    {
        if (seccomp is null) return;
        const int SECCOMP_SET_MODE_FILTER = 1;
        var filter = p.Bytes(seccomp.Filter, 8);
        var fprog = p.Struct(16, w => w.Int32(0, seccomp.InstructionCount).Pointer(8, filter));
        var load = Sys0(Sys.Seccomp, $"load the seccomp filter ({seccomp.InstructionCount} instructions)", SECCOMP_SET_MODE_FILTER, seccomp.Flags, fprog);
        if (!seccomp.NeedsListener) return;
        var listener = p.NewSlot();
        load.Result = listener;
        var record = p.Struct(16, w => w.Int32(0, (int)InitMessage.SeccompListener));
        var iov = p.Struct(16, w => w.Pointer(0, record).Int64(8, 16));
        var control = p.Struct(24, w => w.Int64(0, 20).Int32(8, 1 /* SOL_SOCKET */).Int32(12, 1 /* SCM_RIGHTS */));
        var message = p.Struct(56, w => w.Pointer(16, iov).Int64(24, 1).Pointer(32, control).Int64(40, 24));
        p.Add(new Op { Kind = OpKind.Store, Args = [new OpArg(OpArgKind.Data, control.Offset + 16), listener.Index, 4], Description = "put the seccomp listener in the message" });
        Sys0(Sys.Sendmsg, "send the seccomp listener to the runtime", report, message, 0);
        WaitForByte(report, "wait for the runtime (seccomp listener passed on)");
        p.Syscall(Sys.Close, "close", listener);
    }

    Data? _stat, _home;
    Slot? _statField;

    /// <summary>Loads a field of the struct stat buffer (a uid, gid or rdev) into the scratch slot.</summary>
    Slot LoadStatField(int offset, ulong mask, string description)
    {
        _statField ??= p.NewSlot();
        p.Add(new Op { Kind = OpKind.Load, Args = [new OpArg(OpArgKind.Data, _stat!.Value.Offset + offset), mask, 0], Result = _statField, Description = description });
        return _statField.Value;
    }

    /// <summary>
    /// runc's fixStdioPermissions, before the user change: stdio made outside the container (the
    /// engine's pipes, a pty) is given to the container's uid, so that a non-root process can open
    /// it again (/dev/stdout, /proc/self/fd/1). /dev/null and the gid stay as they are; an fd whose
    /// owner or gid is not mapped here (EINVAL, EPERM) or that is on a read-only filesystem (EROFS)
    /// is left alone, as runc leaves it.
    /// </summary>
    public void GiveStdioToUser(User user)
    {
        _stat ??= p.Zeroes(Sys.StatSize);
        foreach (var fd in (int[])[0, 2, 1])
        {
            var next = new Label();
            Sys0(Sys.Fstat, $"fstat stdio fd {fd}", fd, _stat.Value).Tolerate(Sys.EBADF, next);
            var rdev = LoadStatField(Sys.StatRdevOffset, ulong.MaxValue, $"st_rdev of fd {fd}");
            p.JumpIfEqual(rdev, Sys.DevNullRdev, next, $"fd {fd} is /dev/null: left as it is");
            var gid = LoadStatField(Sys.StatGidOffset, uint.MaxValue, $"st_gid of fd {fd}");
            Sys0(Sys.Fchown, $"chown stdio fd {fd} to uid {user.Uid}", fd, user.Uid, gid)
                .Tolerate(Sys.EINVAL).Tolerate(Sys.EPERM).Tolerate(Sys.EROFS);
            p.Place(next);
        }
    }

    /// <summary>
    /// runc's reOpenDevNull, for the init once in its new root when the runtime made /dev: stdio
    /// that is /dev/null (an engine's stdin, often opened read-only on the host) becomes the
    /// container's own /dev/null, opened read-write.
    /// </summary>
    public void ReopenDevNullStdio()
    {
        _stat ??= p.Zeroes(Sys.StatSize);
        var devNull = p.NewSlot();
        var devNullRdev = p.NewSlot();
        Sys0(Sys.OpenAt, "open /dev/null to reopen stdio on it", Sys.AT_FDCWD, p.String("/dev/null"), Sys.O_RDWR | Sys.O_CLOEXEC).Result = devNull;
        Sys0(Sys.Fstat, "fstat /dev/null", devNull, _stat.Value);
        p.Add(new Op { Kind = OpKind.Load, Args = [new OpArg(OpArgKind.Data, _stat.Value.Offset + Sys.StatRdevOffset), ulong.MaxValue, 0], Result = devNullRdev, Description = "st_rdev of /dev/null" });
        for (var fd = 0; fd < 3; fd++)
        {
            var next = new Label();
            Sys0(Sys.Fstat, $"fstat stdio fd {fd}", fd, _stat.Value).Tolerate(Sys.EBADF, next);
            var rdev = LoadStatField(Sys.StatRdevOffset, ulong.MaxValue, $"st_rdev of fd {fd}");
            p.JumpIfDifferent(rdev, devNullRdev, next, $"fd {fd} is not /dev/null");
            Sys0(Sys.Dup3, $"reopen stdio fd {fd} on the container's /dev/null", devNull, fd, 0);
            p.Place(next);
        }
        p.Syscall(Sys.Close, "close", devNull);
    }

    /// <summary>
    /// runc's setupUser: a process whose env has no HOME (or an empty one) gets the home of its uid
    /// in the container's /etc/passwd, read as root before the user change, or "/" when no entry has
    /// the uid or there is no readable /etc/passwd. <see cref="Exec"/> adds it to the environment.
    /// </summary>
    public void HomeFromPasswd(Berth.Oci.Process process)
    {
        if (process.Env?.Any(e => e.StartsWith("HOME=", StringComparison.Ordinal) && e.Length > 5) == true) return;
        // "HOME=" and a path of up to PATH_MAX bytes; "HOME=/" until the lookup finds one.
        var buffer = new byte[5 + 4096 + 1];
        "HOME=/"u8.CopyTo(buffer);
        _home = p.Bytes(buffer, 8);
        var passwd = p.NewSlot();
        var done = new Label();
        Sys0(Sys.OpenAt, "open /etc/passwd for HOME", Sys.AT_FDCWD, p.String("/etc/passwd"), Sys.O_RDONLY | Sys.O_CLOEXEC)
            .Tolerate(Sys.ENOENT, done).Tolerate(Sys.ENOTDIR, done).Tolerate(Sys.EACCES, done).Result = passwd;
        p.Add(new Op { Kind = OpKind.PasswdHome, Args = [passwd, process.User.Uid, _home.Value, buffer.Length], Description = $"read the home of uid {process.User.Uid} in /etc/passwd" });
        p.Syscall(Sys.Close, "close", passwd);
        p.Place(done);
    }

    /// <summary>Bounding set, groups, setresgid/setresuid with the permitted set kept, capset, ambient.</summary>
    public void UserAndCapabilities(Berth.Oci.Process process)
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
        GiveStdioToUser(user);
        var groups = user.AdditionalGids ?? [];
        var groupArray = p.Bytes(groups.SelectMany(BitConverter.GetBytes).ToArray().AsSpan(), 4);
        var setgroups = Sys0(Sys.Setgroups, $"setgroups [{string.Join(' ', groups)}]", groups.Count, groups.Count == 0 ? 0 : groupArray);
        // A rootless user namespace whose gid map was written unprivileged has setgroups "deny":
        // clearing the groups is then impossible, and skipped as runc does.
        if (groups.Count == 0) setgroups.Tolerate(Sys.EPERM);
        Sys0(Sys.Setresgid, $"setresgid {user.Gid}", user.Gid, user.Gid, user.Gid);
        Sys0(Sys.Setresuid, $"setresuid {user.Uid}", user.Uid, user.Uid, user.Uid);
        Sys0(Sys.Prctl, "stop keeping capabilities", Sys.PR_SET_KEEPCAPS, 0, 0, 0, 0);

        var effective = Capabilities.ToMask(caps?.Effective);
        var permitted = Capabilities.ToMask(caps?.Permitted);
        var inheritable = Capabilities.ToMask(caps?.Inheritable);
        var header = p.Struct(8, w => w.Int32(0, unchecked((int)CapabilityVersion3)).Int32(4, 0));
        var data = p.Struct(24, w => w
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

    /// <summary>The files execve tries: the command itself when it has a slash, else each PATH entry (the last PATH= wins).</summary>
    public static List<string> ExecCandidates(string command, List<string> env)
    {
        if (command.Contains('/')) return [command];
        var path = env.LastOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..] ?? DefaultPath;
        return path.Split(':').Select(dir => dir.Length == 0 ? "." : dir).Select(dir => $"{dir.TrimEnd('/')}/{command}").ToList();
    }

    /// <summary>faccessat(X_OK) of each candidate: a command that cannot be executed fails before the point of no return.</summary>
    public void ExecutableCheck(string command, List<string> candidates)
    {
        const int X_OK = 1;
        var found = new Label();
        foreach (var candidate in candidates)
        {
            // runc's wording ("exec: \"x\": stat x: …"): dockerd reads it to choose exit code 126 or 127.
            var op = Sys0(Sys.FaccessAt, $"exec: \"{command}\": stat {candidate}", Sys.AT_FDCWD, p.String(candidate), X_OK);
            if (candidates.Count > 1)
            {
                op.OnSuccess = found;
                op.Tolerate(Sys.ENOENT).Tolerate(Sys.ENOTDIR).Tolerate(Sys.EACCES);
            }
        }
        if (candidates.Count > 1)
            p.Add(new Op { Kind = OpKind.Fail, Args = [Sys.ENOENT], Description = $"exec: \"{command}\": executable file not found in $PATH" });
        p.Place(found);
    }

    /// <summary>execve of each candidate in turn; when all fail, the PATH search's error.</summary>
    public void Exec(List<string> args, List<string> env, List<string> candidates)
    {
        var argv = p.StringArray(args);
        // With HOME from /etc/passwd (HomeFromPasswd), an empty HOME= gives way to it.
        var envp = _home is { } home
            ? p.PointerArray([.. env.Where(e => e != "HOME=").Select(p.String), home])
            : p.StringArray(env);
        foreach (var candidate in candidates)
        {
            var op = Sys0(Sys.Execve, $"exec {candidate}", p.String(candidate), argv, envp);
            op.ExecErrorToStderr = true;
            if (candidates.Count > 1) op.Tolerate(Sys.ENOENT).Tolerate(Sys.ENOTDIR).Tolerate(Sys.EACCES);
        }
        if (candidates.Count > 1)
            p.Add(new Op { Kind = OpKind.Fail, Args = [Sys.ENOENT], Description = $"exec: \"{args[0]}\": executable file not found in $PATH" });
    }

    /// <summary>
    /// A pty from the container's own devpts: the master goes to the console socket
    /// (SCM_RIGHTS), the slave becomes stdio and the controlling terminal (and, for the init,
    /// /dev/console: <paramref name="devConsoleFdPath"/> is a scratch buffer for its fd path).
    /// TIOCGPTPEER opens the slave from the master without a path.
    /// </summary>
    public void Console(Berth.Oci.Process process, Slot consoleSocket, Data? devConsoleFdPath)
    {
        var master = p.NewSlot();
        var slave = p.NewSlot();
        Sys0(Sys.OpenAt, "open /dev/ptmx", Sys.AT_FDCWD, p.String("/dev/ptmx"), Sys.O_RDWR | Sys.O_NOCTTY | Sys.O_CLOEXEC).Result = master;
        Sys0(Sys.Ioctl, "unlock the pty", master, Sys.TIOCSPTLCK, p.Zeroes(8));
        Sys0(Sys.Ioctl, "open the pty slave", master, Sys.TIOCGPTPEER, Sys.O_RDWR | Sys.O_NOCTTY | Sys.O_CLOEXEC).Result = slave;
        if (process.ConsoleSize is { } size)
        {
            var winsize = p.Struct(8, w => w.Int32(0, (int)((size.Height & 0xffff) | ((size.Width & 0xffff) << 16))));
            Sys0(Sys.Ioctl, $"set the console size to {size.Width}x{size.Height}", slave, Sys.TIOCSWINSZ, winsize);
        }
        if (devConsoleFdPath is { } fdPath)
        {
            p.Add(new Op { Kind = OpKind.FdPath, Args = [fdPath, slave.Index], Description = "name the pty slave" });
            Sys0(Sys.Mount, "bind mount the pty on /dev/console", fdPath, p.String("/dev/console"), 0, (long)MS_BIND, 0);
        }

        var name = p.String("/dev/ptmx");
        var iov = p.Struct(16, w => w.Pointer(0, name).Int64(8, "/dev/ptmx".Length));
        var control = p.Struct(24, w => w.Int64(0, 20).Int32(8, 1 /* SOL_SOCKET */).Int32(12, 1 /* SCM_RIGHTS */));
        var message = p.Struct(56, w => w.Pointer(16, iov).Int64(24, 1).Pointer(32, control).Int64(40, 24));
        p.Add(new Op { Kind = OpKind.Store, Args = [new OpArg(OpArgKind.Data, control.Offset + 16), master.Index, 4], Description = "put the pty master in the message" });
        Sys0(Sys.Sendmsg, "send the pty master to the console socket", consoleSocket, message, 0);
        p.Syscall(Sys.Close, "close", master);
        for (var fd = 0; fd < 3; fd++)
            Sys0(Sys.Dup3, $"make the pty fd {fd}", slave, fd, 0).Tolerate(Sys.EINVAL);
        Sys0(Sys.Ioctl, "make the pty the controlling terminal", 0, Sys.TIOCSCTTY, 0);
        p.Syscall(Sys.Close, "close", consoleSocket);
    }

    /// <summary>
    /// An LSM label for the next execve (runc's apparmor.ApplyProfile / selinux.SetExecLabel):
    /// written to /proc/thread-self/attr/… of the process, which is the container's /proc
    /// once in its mount namespace.
    /// </summary>
    public void ExecLabel(string? apparmorProfile, string? selinuxLabel, Slot scratch)
    {
        // A label the host cannot enforce is refused, not silently dropped.
        if (!string.IsNullOrEmpty(apparmorProfile) && LibC.ReadSmallFile("/sys/module/apparmor/parameters/enabled")?.StartsWith('Y') != true)
            throw new RuntimeException($"process.apparmorProfile \"{apparmorProfile}\": AppArmor is not enabled on this host");
        if (!string.IsNullOrEmpty(selinuxLabel) && !File.Exists("/sys/fs/selinux/enforce"))
            throw new RuntimeException($"process.selinuxLabel \"{selinuxLabel}\": SELinux is not enabled on this host");
        if (!string.IsNullOrEmpty(apparmorProfile))
            WriteAttr("/proc/thread-self/attr/apparmor/exec", $"exec {apparmorProfile}", $"set the AppArmor profile {apparmorProfile}", scratch);
        if (!string.IsNullOrEmpty(selinuxLabel))
            WriteAttr("/proc/thread-self/attr/exec", selinuxLabel, $"set the SELinux label {selinuxLabel}", scratch);
    }

    void WriteAttr(string path, string value, string what, Slot fd)
    {
        Sys0(Sys.OpenAt, $"open {path} ({what})", Sys.AT_FDCWD, p.String(path), Sys.O_WRONLY | Sys.O_CLOEXEC).Result = fd;
        var bytes = System.Text.Encoding.UTF8.GetBytes(value);
        Sys0(Sys.Write, what, fd, p.Bytes(bytes), bytes.Length);
        p.Syscall(Sys.Close, "close", fd);
    }
}
