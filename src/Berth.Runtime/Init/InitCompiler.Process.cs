using Berth.Oci;
using Berth.Runtime.Native;
using static Berth.Oci.MountFlags;

namespace Berth.Runtime.Init;

public sealed partial class InitCompiler
{
    /// <summary>
    /// Everything after the rootfs, in runc's order: console, read-only root, hostname,
    /// sysctls, readonly and masked paths, no_new_privs, fds, capabilities and user, cwd;
    /// then "ready", the wait for start, and execve. The process steps are shared with
    /// exec (<see cref="ProcessEmitter"/>).
    /// </summary>
    void EmitProcess()
    {
        var process = _spec.Process ?? throw new RuntimeException("config.json: process must be set to create a container");
        if (process.Args is not { Count: > 0 } args) throw new RuntimeException("config.json: process.args must not be empty");
        var env = process.Env ?? [];
        var emit = Emitter;

        Sys0(Sys.Setsid, "setsid");
        if (process.Terminal)
        {
            if (_o.ConsoleSocketFd < 0) throw new RuntimeException("process.terminal is true but no --console-socket was given");
            emit.Console(process, _console, HasNamespace(NamespaceType.Mount) ? _fdPath : null);
        }
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
        emit.ExecLabel(process.ApparmorProfile, process.SelinuxLabel, _tmp);
        // The report socket and the exec fifo stay open until execve and go with it.
        emit.Credentials(process, _o.PreserveFds, _o.Seccomp, _report);

        var candidates = ProcessEmitter.ExecCandidates(args[0], env);
        emit.ExecutableCheck(args[0], candidates);
        // With no_new_privs the filter comes as late as possible, after start, unless it has a
        // listener: that goes through this create, which is gone by the time start comes (runc
        // too loads such a filter before waiting for start).
        var listenerFilter = _o.Seccomp?.NeedsListener == true;
        if (process.NoNewPrivileges && listenerFilter) emit.Seccomp(_o.Seccomp, _report);
        Send(InitMessage.Ready);
        _p.Syscall(Sys.Read, "wait for start", _start, _byte, 1).FailOnZero = true;
        if (process.NoNewPrivileges && !listenerFilter) emit.Seccomp(_o.Seccomp, _report);
        emit.Exec(args, env, candidates);
        EmitInitPidTail();
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
}
