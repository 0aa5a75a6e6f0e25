using Berth.Oci;
using Berth.Runtime.Native;
using static Berth.Oci.MountFlags;

namespace Berth.Runtime.Init;

public sealed partial class InitCompiler
{
    // statfs f_flags that a bind remount keeps unless the options clear them: a remount
    // must not lift nosuid/nodev/noexec that the source had (in a user namespace the
    // kernel refuses it with EPERM; outside one it would quietly weaken the mount).
    const ulong PreservedOnRemount = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    const int StatfsFlagsOffset = 80;

    // The devices runc creates in every container's /dev (runc's specconv AllowedDevices).
    static readonly (string Path, long Major, long Minor)[] DefaultDevices =
    [
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
        ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    ];

    readonly HashSet<string> _ensuredDirectories = ["/"];
    Data _openHowPath, _openHowDir, _openHowCreate, _openHowReadDir;

    /// <summary>
    /// Mounts, /dev, hooks, pivot_root. Every path inside the rootfs is opened with openat2
    /// RESOLVE_IN_ROOT from an fd of the rootfs, so a symlink in the image cannot send a
    /// mount or a mkdir outside it (CVE-2021-30465 class); mounts then target the opened
    /// fd through /proc/self/fd/N, so nothing can swap the path between check and use.
    /// </summary>
    void EmitRootfs()
    {
        _openHowPath = OpenHow(Sys.O_PATH | Sys.O_CLOEXEC, 0);
        _openHowDir = OpenHow(Sys.O_PATH | Sys.O_DIRECTORY | Sys.O_CLOEXEC, 0);
        _openHowCreate = OpenHow(Sys.O_CREAT | Sys.O_EXCL | Sys.O_WRONLY | Sys.O_CLOEXEC, 0x1a4);
        _openHowReadDir = OpenHow(Sys.O_RDONLY | Sys.O_DIRECTORY | Sys.O_CLOEXEC, 0);

        // By default nothing done in this mount namespace propagates back to the host. A shared
        // rootfsPropagation (dockerd asks for it when a volume is rshared) keeps the copies of the
        // host's shared mounts in their peer groups, so that mounts propagate both ways.
        var explicitPropagation = !string.IsNullOrEmpty(_linux.RootfsPropagation);
        var rootPropagation = explicitPropagation ? Propagation.Parse(_linux.RootfsPropagation!) : MS_SLAVE | MS_REC;
        Sys0(Sys.Mount, $"make / {_linux.RootfsPropagation ?? "rslave"}", 0, Str("/"), 0, (long)rootPropagation, 0);
        if ((rootPropagation & MS_SHARED) != 0)
        {
            // As runc's rootfsParentMountPrivate: the mount holding the rootfs is made private, so
            // that binding the rootfs onto itself below does not propagate to the host, and pivot_root
            // accepts it (it refuses a new root whose parent mount is shared).
            if (JoinsNamespace(NamespaceType.Mount))
                throw new RuntimeException("linux.rootfsPropagation: shared propagation needs a new mount namespace, not one joined by path");
            var holder = MountHolding(_o.Rootfs, File.ReadAllText("/proc/self/mountinfo"));
            Sys0(Sys.Mount, $"make {holder}, the mount holding the rootfs, private", 0, Str(holder), 0, (long)MS_PRIVATE, 0);
        }
        // umask 0 while creating mount points and devices, as runc: modes are as given.
        Sys0(Sys.Umask, "umask 0", 0);

        // pivot_root needs the new root to be a mount point.
        var rootfs = Str(_o.Rootfs);
        Sys0(Sys.Mount, $"bind mount the rootfs {_o.Rootfs} onto itself", rootfs, rootfs, Str("bind"), (long)(MS_BIND | MS_REC), 0);
        Sys0(Sys.OpenAt, $"open the rootfs {_o.Rootfs}", Sys.AT_FDCWD, rootfs, Sys.O_PATH | Sys.O_DIRECTORY | Sys.O_CLOEXEC).Result = _rootFd;

        var devIsHostBind = false;
        var devIsOurs = false;
        var mounts = _spec.Mounts ?? [];
        for (var index = 0; index < mounts.Count; index++)
        {
            var mount = mounts[index];
            var dest = CleanDestination(mount.Destination);
            if (dest == "/dev")
            {
                var bind = mount.Type == "bind" || (mount.Options?.Any(o => o is "bind" or "rbind") ?? false);
                devIsHostBind = bind && mount.Source == "/dev";
                devIsOurs = !bind;
            }
            EmitMount(mount, dest, index);
        }
        if (!devIsHostBind)
        {
            EmitDevices();
            if (devIsOurs || Directory.Exists(Path.Combine(_o.Rootfs, "dev"))) EmitDevSymlinks();
        }
        var cwd = string.IsNullOrEmpty(_spec.Process?.Cwd) ? "/" : _spec.Process.Cwd;
        EnsureDirectory(cwd); // runc creates a missing cwd
        if (_spec.Process?.Terminal == true && !devIsHostBind) EnsureFile("/dev/console");

        var hooks = _spec.Hooks;
        if (hooks is not null && (hooks.Prestart?.Count > 0 || hooks.CreateRuntime?.Count > 0 || hooks.CreateContainer?.Count > 0))
        {
            Send(InitMessage.CreateHooks);
            WaitForParent("createRuntime and createContainer hooks");
        }

        if (_o.NoPivot) EmitMoveRoot(rootfs);
        else EmitPivotRoot();
        Close(_rootFd);
        // As runc: the propagation asked for is applied to the new / as well (the rootfs was bound
        // from a mount made private, or under / made slave, above).
        if (explicitPropagation)
            Sys0(Sys.Mount, $"make the new / {_linux.RootfsPropagation}", 0, Str("/"), 0, (long)rootPropagation, 0);
        if (!devIsHostBind) Emitter.ReopenDevNullStdio();
    }

    /// <summary>The mount point of the mount that holds <paramref name="path"/> (see <see cref="MountInfo.Holding"/>).</summary>
    internal static string MountHolding(string path, string mountinfo) => MountInfo.Holding(path, mountinfo).MountPoint;

    Data OpenHow(int flags, int mode) => _p.Struct(24, w => w
        .UInt64(0, (ulong)flags).UInt64(8, (ulong)mode)
        .UInt64(16, Sys.RESOLVE_IN_ROOT | Sys.RESOLVE_NO_MAGICLINKS));

    static string CleanDestination(string destination)
    {
        // runc accepts relative destinations and joins them to /; ".." cannot climb above /.
        var parts = new List<string>();
        foreach (var part in destination.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            if (part == "..") { if (parts.Count > 0) parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(part);
        }
        return "/" + string.Join('/', parts);
    }

    static string InRoot(string path) => path.TrimStart('/') is { Length: > 0 } p ? p : ".";

    /// <summary>Opens a path inside the rootfs (never leaving it) into <paramref name="slot"/>.</summary>
    Op OpenInRoot(string path, Slot slot, Data how, string what)
    {
        var op = Sys0(Sys.OpenAt2, $"open {path} in the rootfs ({what})", _rootFd, Str(InRoot(path)), how, 24);
        op.Result = slot;
        return op;
    }

    /// <summary>mkdir -p inside the rootfs, resolving every component within it.</summary>
    void EnsureDirectory(string path)
    {
        path = CleanDestination(path);
        if (_ensuredDirectories.Contains(path)) return;
        var parent = Path.GetDirectoryName(path) ?? "/";
        EnsureDirectory(parent);
        var name = Path.GetFileName(path);
        if (parent == "/")
            Sys0(Sys.MkdirAt, $"mkdir {path} in the rootfs", _rootFd, Str(name), 0x1ed).Tolerate(Sys.EEXIST);
        else
        {
            OpenInRoot(parent, _dirFd, _openHowDir, "mkdir");
            Sys0(Sys.MkdirAt, $"mkdir {path} in the rootfs", _dirFd, Str(name), 0x1ed).Tolerate(Sys.EEXIST);
            Close(_dirFd);
        }
        _ensuredDirectories.Add(path);
    }

    /// <summary>
    /// Creates an empty file as a mount point. O_EXCL: whatever the image already has there (a
    /// fifo that would block, a device node a write-open would touch, a symlink) is left
    /// unopened, as runc only creates what does not exist.
    /// </summary>
    void EnsureFile(string path)
    {
        EnsureDirectory(Path.GetDirectoryName(path) ?? "/");
        var exists = new Label();
        OpenInRoot(path, _tmp, _openHowCreate, "create mount point").Tolerate(Sys.EEXIST, exists);
        Close(_tmp);
        _p.Place(exists);
    }

    /// <summary>Opens <paramref name="dest"/> into _targetFd and writes its /proc/self/fd path into _fdPath.</summary>
    void OpenTarget(string dest, string what)
    {
        OpenInRoot(dest, _targetFd, _openHowPath, what);
        _p.Add(new Op { Kind = OpKind.FdPath, Args = [_fdPath, _targetFd.Index], Description = $"name the fd of {dest}" });
    }

    void EmitMount(Mount mount, string dest, int index)
    {
        var options = MountOptions.Parse(mount.Options);
        if (Container.IdmappedMounts.IsIdmapped(mount, options))
        {
            EmitIdmappedMount(mount, dest, index, options);
            return;
        }
        if (mount.Type is "cgroup" or "cgroup2")
        {
            EmitCgroupMount(dest, options);
            return;
        }
        var bind = mount.Type == "bind" || options.Bind;
        var what = $"{mount.Type ?? "bind"} {mount.Source} on {dest}";
        if (bind)
        {
            var source = ResolveSource(mount.Source, dest);
            if (Directory.Exists(source)) EnsureDirectory(dest); else EnsureFile(dest);
            OpenTarget(dest, "mount " + what);
            Sys0(Sys.Mount, "mount " + what, Str(source), _fdPath, 0, (long)(MS_BIND | (options.Recursive ? MS_REC : 0)), 0);
            Close(_targetFd);
            var extra = options.Flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
            if (extra != 0) EmitBindRemount(dest, extra, options.ClearFlags, what);
        }
        else
        {
            // A tmpfs over a directory the image has takes that directory's mode unless the options
            // give one, as with runc (not tmpfs's 1777: --tmpfs /root stays 0755, a 0700 data
            // directory stays 0700). Its mode is read before anything is created there.
            var takesImageMode = mount.Type == "tmpfs" && !options.Data.Split(',').Any(o => o.StartsWith("mode=", StringComparison.Ordinal));
            if (takesImageMode) EmitReadImageMode(dest);
            EnsureDirectory(dest);
            // tmpcopyup (runc and crun's extension, podman's default for --tmpfs): the tmpfs starts
            // with what the image has at dest. The directory is opened before the tmpfs hides it.
            // runc ignores it on other types. A read-only tmpfs is mounted writable until the copy
            // and the chmod are done.
            var copyUp = options.CopyUp && mount.Type == "tmpfs";
            var delayReadonly = copyUp || takesImageMode;
            var flags = delayReadonly ? options.Flags & ~MS_RDONLY : options.Flags;
            if (copyUp) OpenInRoot(dest, _copyFrom, _openHowReadDir, $"open {dest} to copy it into the tmpfs");
            OpenTarget(dest, "mount " + what);
            var source = Str(string.IsNullOrEmpty(mount.Source) ? mount.Type ?? "none" : mount.Source);
            var data = string.IsNullOrEmpty(options.Data) ? (OpArg)0 : Str(options.Data);
            var op = Sys0(Sys.Mount, "mount " + what, source, _fdPath, Str(mount.Type ?? ""), (long)flags, data);
            Close(_targetFd);
            if (copyUp) EmitCopyUp(dest);
            if (takesImageMode) EmitChmodToImageMode(dest);
            if (delayReadonly && (options.Flags & MS_RDONLY) != 0)
            {
                OpenTarget(dest, "remount read-only");
                Sys0(Sys.Mount, $"remount the tmpfs on {dest} read-only", 0, _fdPath, 0, (long)(options.Flags | MS_REMOUNT), data);
                Close(_targetFd);
            }
            if (mount.Type == "sysfs" && InUserNamespace)
            {
                // sysfs cannot be mounted in a user namespace that does not own the network
                // namespace: runc falls back to a recursive read-only bind of the host's /sys.
                var fallback = new Label();
                var done = new Label();
                op.Tolerate(Sys.EPERM, fallback);
                _p.Jump(done, "skip the sysfs fallback");
                _p.Place(fallback);
                OpenTarget(dest, "bind /sys");
                Sys0(Sys.Mount, $"bind mount /sys on {dest}", Str("/sys"), _fdPath, 0, (long)(MS_BIND | MS_REC), 0);
                Close(_targetFd);
                EmitBindRemount(dest, options.Flags | MS_RDONLY, 0, $"/sys on {dest}");
                _p.Place(done);
            }
        }
        EmitPropagation(dest, options.Propagations);
    }

    string ResolveSource(string? source, string dest)
    {
        if (string.IsNullOrEmpty(source)) throw new RuntimeException($"mount {dest}: a bind mount needs a source");
        var path = Path.IsPathRooted(source) ? source : Path.Combine(_o.BundleDir, source);
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new RuntimeException($"mount {dest}: source {path} does not exist");
        return path;
    }

    /// <summary>
    /// Read-only, nosuid… on a bind mount take a second mount call (MS_REMOUNT|MS_BIND) on the
    /// new mount: the target is opened again so the fd refers to the mount just made.
    /// </summary>
    void EmitBindRemount(string dest, ulong flags, ulong clear, string what)
    {
        // Without an atime option of its own, the remount keeps the source's noatime and
        // nodiratime (statfs's ST_NOATIME/ST_NODIRATIME are the MS_ values): a user namespace
        // locks them, and dropping them there fails with EPERM.
        const ulong AtimeOptions = MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
        var preserved = PreservedOnRemount | ((flags & AtimeOptions) == 0 ? MS_NOATIME | MS_NODIRATIME : 0);
        OpenTarget(dest, "remount " + what);
        Sys0(Sys.Statfs, $"statfs {dest}", _fdPath, _statfs);
        _p.Add(new Op
        {
            Kind = OpKind.Load, Args = [new OpArg(OpArgKind.Data, _statfs.Offset + StatfsFlagsOffset), (long)(preserved & ~clear), (long)(flags | MS_BIND | MS_REMOUNT)],
            Result = _flags, Description = $"flags for remounting {dest}",
        });
        Sys0(Sys.Mount, $"remount {what} ({MountFlagNames(flags)})", 0, _fdPath, 0, _flags, 0);
        Close(_targetFd);
    }

    /// <summary>
    /// An id-mapped bind: the parent made the detached, id-mapped copy of the source (IdmappedMounts);
    /// the child moves it onto dest, then applies flags and propagation as for any bind.
    /// </summary>
    void EmitIdmappedMount(Mount mount, string dest, int index, ParsedMountOptions options)
    {
        if (!_o.IdmappedMountFds.TryGetValue(index, out var fd))
            throw new RuntimeException($"mount {dest}: the id-mapped copy of {mount.Source} was not prepared");
        var tree = _p.Preset(fd);
        var source = ResolveSource(mount.Source, dest);
        var what = $"id-mapped bind {mount.Source} on {dest}";
        if (Directory.Exists(source)) EnsureDirectory(dest); else EnsureFile(dest);
        // Onto the opened target itself (T_EMPTY_PATH): move_mount does not follow a /proc/self/fd link
        // unless told to.
        OpenInRoot(dest, _targetFd, _openHowPath, "mount " + what);
        var empty = Str("");
        Sys0(Sys.MoveMount, "move the " + what + " into place", tree, empty, _targetFd, empty, Sys.MOVE_MOUNT_F_EMPTY_PATH | Sys.MOVE_MOUNT_T_EMPTY_PATH);
        Close(_targetFd);
        Close(tree);
        var extra = options.Flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
        if (extra != 0) EmitBindRemount(dest, extra, options.ClearFlags, what);
        EmitPropagation(dest, options.Propagations);
    }

    /// <summary>Copies the image's directory (opened into _copyFrom) into the tmpfs now at <paramref name="dest"/>.</summary>
    void EmitCopyUp(string dest)
    {
        OpenInRoot(dest, _tmp, _openHowReadDir, $"open the tmpfs on {dest}");
        _p.Add(new Op { Kind = OpKind.CopyTree, Args = [_copyFrom, _tmp], Description = $"copy {dest} of the image into its tmpfs (tmpcopyup)" });
        Close(_tmp);
        Close(_copyFrom);
    }

    // What _imageMode holds when the image has nothing at the path: no mode (a load must not be
    // negative, which the executor would take for an errno).
    const long NoImageMode = 0x10000;

    /// <summary>The mode of what the image has at <paramref name="dest"/> into _imageMode; NoImageMode when it has nothing there.</summary>
    void EmitReadImageMode(string dest)
    {
        var absent = new Label();
        _p.Add(new Op { Kind = OpKind.Load, Args = [new Data(0), 0, NoImageMode], Result = _imageMode, Description = $"no mode for {dest} yet" });
        OpenInRoot(dest, _tmp, _openHowPath, "read its mode").Tolerate(Sys.ENOENT, absent);
        Sys0(Sys.Fstat, $"fstat {dest}", _tmp, _stat);
        Close(_tmp);
        _p.Add(new Op { Kind = OpKind.Load, Args = [new OpArg(OpArgKind.Data, _stat.Offset + Sys.StatModeOffset), 0xfff, 0], Result = _imageMode, Description = $"the mode of {dest} in the image" });
        _p.Place(absent);
    }

    /// <summary>runc's chmod of a tmpfs to the mode of the directory it hides (read by EmitReadImageMode).</summary>
    void EmitChmodToImageMode(string dest)
    {
        var none = new Label();
        _p.JumpIfEqual(_imageMode, NoImageMode, none, $"the image has nothing at {dest}: the tmpfs keeps its mode");
        OpenTarget(dest, "chmod");
        Sys0(Sys.FchmodAt, $"chmod the tmpfs on {dest} to the image's mode", Sys.AT_FDCWD, _fdPath, _imageMode);
        Close(_targetFd);
        _p.Place(none);
    }

    void EmitPropagation(string dest, IReadOnlyList<ulong> propagations)
    {
        foreach (var flags in propagations)
        {
            OpenTarget(dest, "set propagation");
            Sys0(Sys.Mount, $"set propagation of {dest}", 0, _fdPath, 0, (long)flags, 0);
            Close(_targetFd);
        }
    }

    static string MountFlagNames(ulong flags)
    {
        var names = new List<string>();
        if ((flags & MS_RDONLY) != 0) names.Add("ro");
        if ((flags & MS_NOSUID) != 0) names.Add("nosuid");
        if ((flags & MS_NODEV) != 0) names.Add("nodev");
        if ((flags & MS_NOEXEC) != 0) names.Add("noexec");
        return names.Count == 0 ? "flags" : string.Join(',', names);
    }

    /// <summary>
    /// /sys/fs/cgroup as runc builds it. With a cgroup namespace the kernel shows the
    /// container's own group as the root, so cgroupfs is mounted directly; without one the
    /// container's groups are bind-mounted from the host. v1 gets a tmpfs holding one
    /// directory per hierarchy.
    /// </summary>
    void EmitCgroupMount(string dest, ParsedMountOptions options)
    {
        var plan = _o.Cgroups ?? throw new RuntimeException($"mount {dest}: cgroup mount requested but no cgroup hierarchy is available");
        var flags = options.Flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY | MS_RELATIME);
        var cgroupns = HasNamespace(NamespaceType.Cgroup);
        EnsureDirectory(dest);
        if (plan.Unified is not null && plan.V1.Count == 0)
        {
            OpenTarget(dest, "mount cgroup2");
            if (cgroupns) Sys0(Sys.Mount, $"mount cgroup2 on {dest}", Str("cgroup2"), _fdPath, Str("cgroup2"), (long)flags, 0);
            else Sys0(Sys.Mount, $"bind mount {plan.Unified} on {dest}", Str(plan.Unified), _fdPath, 0, (long)(MS_BIND | MS_REC), 0);
            Close(_targetFd);
            if (!cgroupns) EmitBindRemount(dest, flags, 0, $"cgroup2 on {dest}");
            return;
        }

        OpenTarget(dest, "mount tmpfs for cgroups");
        Sys0(Sys.Mount, $"mount tmpfs on {dest}", Str("tmpfs"), _fdPath, Str("tmpfs"), (long)(flags & ~MS_RDONLY), Str("mode=755"));
        Close(_targetFd);
        foreach (var (name, data, hostPath) in plan.V1)
        {
            var dir = $"{dest}/{name}";
            EnsureDirectory(dir);
            OpenTarget(dir, "mount cgroup hierarchy");
            if (cgroupns) Sys0(Sys.Mount, $"mount cgroup ({data}) on {dir}", Str("cgroup"), _fdPath, Str("cgroup"), (long)flags, Str(data));
            else Sys0(Sys.Mount, $"bind mount {hostPath} on {dir}", Str(hostPath), _fdPath, 0, (long)MS_BIND, 0);
            Close(_targetFd);
            if (!cgroupns) EmitBindRemount(dir, flags, 0, $"cgroup {name}");
            // Co-mounted controllers ("cpu,cpuacct") are also reachable by each name, as on the host.
            if (name.Contains(','))
                foreach (var controller in name.Split(','))
                    Sys0(Sys.SymlinkAt, $"symlink {dest}/{controller}", Str(name), _rootFd, Str(InRoot($"{dest}/{controller}"))).Tolerate(Sys.EEXIST);
        }
        if (plan.Unified is not null)
        {
            var dir = $"{dest}/unified";
            EnsureDirectory(dir);
            OpenTarget(dir, "mount cgroup2");
            if (cgroupns) Sys0(Sys.Mount, $"mount cgroup2 on {dir}", Str("cgroup2"), _fdPath, Str("cgroup2"), (long)flags, 0);
            else Sys0(Sys.Mount, $"bind mount {plan.Unified} on {dir}", Str(plan.Unified), _fdPath, 0, (long)MS_BIND, 0);
            Close(_targetFd);
            if (!cgroupns) EmitBindRemount(dir, flags, 0, "cgroup2 unified");
        }
        if ((flags & MS_RDONLY) != 0)
        {
            OpenTarget(dest, "remount cgroup tmpfs read-only");
            Sys0(Sys.Mount, $"remount {dest} read-only", 0, _fdPath, 0, (long)(MS_REMOUNT | MS_RDONLY | (flags & ~MS_RDONLY)), Str("mode=755"));
            Close(_targetFd);
        }
    }

    /// <summary>Device nodes: runc's defaults and linux.devices. In a user namespace mknod is
    /// not allowed, so the host's nodes are bind-mounted instead (as runc does).</summary>
    void EmitDevices()
    {
        var devices = DefaultDevices
            .Select(d => new LinuxDevice { Path = d.Path, Type = "c", Major = d.Major, Minor = d.Minor, FileMode = 0x1b6 })
            .Where(d => _linux.Devices?.Any(c => c.Path == d.Path) != true)
            .Concat(_linux.Devices ?? [])
            // As runc's createDevices: a /dev/ptmx in linux.devices (podman --privileged lists every
            // host device) gives way to the link into the container's devpts. In a user namespace it
            // would be a bind mount, which the link could not replace (EBUSY).
            .Where(d => !(PtmxFromDevpts && CleanDestination(d.Path) == "/dev/ptmx"));
        foreach (var device in devices)
        {
            var path = CleanDestination(device.Path);
            // Whatever the image has at the path goes first: a /dev/null that is a symlink
            // (to /proc/sysrq-trigger, say) would otherwise be what maskedPaths bind over
            // the paths they hide (runc's CVE-2025-31133 class).
            var parentDir = Path.GetDirectoryName(path) ?? "/";
            EnsureDirectory(parentDir);
            OpenInRoot(parentDir, _dirFd, _openHowDir, "replace device");
            Sys0(UnlinkAt, $"remove what the image has at {device.Path}", _dirFd, Str(Path.GetFileName(path)), 0).Tolerate(Sys.ENOENT);
            Close(_dirFd);
            if (InUserNamespace)
            {
                EnsureFile(path);
                OpenTarget(path, "bind device");
                Sys0(Sys.Mount, $"bind mount device {device.Path}", Str(device.Path), _fdPath, 0, (long)MS_BIND, 0);
                Close(_targetFd);
                continue;
            }
            var parent = Path.GetDirectoryName(path) ?? "/";
            EnsureDirectory(parent);
            OpenInRoot(parent, _dirFd, _openHowDir, "mknod");
            var type = device.Type switch
            {
                "c" or "u" => Sys.S_IFCHR, "b" => Sys.S_IFBLK, "p" => Sys.S_IFIFO,
                _ => throw new RuntimeException($"linux.devices: {device.Path}: unknown device type \"{device.Type}\""),
            };
            var mode = type | ((device.FileMode ?? 0x1b6) & 0xfff);
            var name = Str(Path.GetFileName(path));
            Sys0(Sys.MknodAt, $"mknod {device.Path} ({device.Type} {device.Major}:{device.Minor})", _dirFd, name, mode,
                MakeDev(device.Major ?? 0, device.Minor ?? 0));
            if (device.Uid is not null || device.Gid is not null)
                Sys0(Sys.FchownAt, $"chown {device.Path}", _dirFd, name, device.Uid ?? 0, device.Gid ?? 0, Sys.AT_SYMLINK_NOFOLLOW);
            Close(_dirFd);
        }
    }

    static long MakeDev(long major, long minor) =>
        (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xffL) << 12) | ((major & ~0xfffL) << 32);

    /// <summary>/dev/ptmx must be the ptmx of the container's own devpts instance, when it has one.</summary>
    bool PtmxFromDevpts => _spec.Mounts?.Any(m => CleanDestination(m.Destination) == "/dev/pts") == true;

    void EmitDevSymlinks()
    {
        OpenInRoot("/dev", _dirFd, _openHowDir, "/dev links");
        var links = new List<(string Target, string Name)>
        {
            ("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"),
        };
        if (_o.HostHasProcKcore) links.Add(("/proc/kcore", "core"));
        foreach (var (target, name) in links)
            Sys0(Sys.SymlinkAt, $"symlink /dev/{name} -> {target}", Str(target), _dirFd, Str(name)).Tolerate(Sys.EEXIST);
        if (PtmxFromDevpts)
        {
            Sys0(UnlinkAt, "remove /dev/ptmx", _dirFd, Str("ptmx"), 0).Tolerate(Sys.ENOENT);
            Sys0(Sys.SymlinkAt, "symlink /dev/ptmx -> pts/ptmx", Str("pts/ptmx"), _dirFd, Str("ptmx"));
        }
        Close(_dirFd);
    }

    static readonly long UnlinkAt = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture
        == System.Runtime.InteropServices.Architecture.Arm64 ? 35 : 263;

    /// <summary>
    /// runc's pivot_root(".", "."): the old root ends up stacked under the new one and is
    /// detached from there. It is made a slave first so that the detach cannot propagate
    /// to the host's mounts.
    /// </summary>
    void EmitPivotRoot()
    {
        Sys0(Sys.OpenAt, "open the old root", Sys.AT_FDCWD, Str("/"), Sys.O_DIRECTORY | Sys.O_RDONLY | Sys.O_CLOEXEC).Result = _tmp;
        Sys0(Sys.Fchdir, "chdir to the rootfs", _rootFd);
        Sys0(Sys.PivotRoot, $"pivot_root to {_o.Rootfs}", Str("."), Str("."));
        Sys0(Sys.Fchdir, "chdir to the old root", _tmp);
        Sys0(Sys.Mount, "make the old root a slave", 0, Str("."), 0, (long)(MS_SLAVE | MS_REC), 0);
        Sys0(Sys.Umount2, "detach the old root", Str("."), Sys.MNT_DETACH);
        Sys0(Sys.Chdir, "chdir to /", Str("/"));
        Close(_tmp);
    }

    /// <summary>--no-pivot: move the rootfs over / and chroot (for ramdisk roots, where pivot_root fails).</summary>
    void EmitMoveRoot(Data rootfs)
    {
        Sys0(Sys.Fchdir, "chdir to the rootfs", _rootFd);
        Sys0(Sys.Mount, "move the rootfs to /", rootfs, Str("/"), 0, (long)MS_MOVE, 0);
        Sys0(Sys.Chroot, "chroot to the rootfs", Str("."));
        Sys0(Sys.Chdir, "chdir to /", Str("/"));
    }
}
