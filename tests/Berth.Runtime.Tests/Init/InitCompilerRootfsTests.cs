using Berth.Oci;
using Berth.Runtime.Init;
using Berth.Runtime.Native;
using static Berth.Oci.MountFlags;

namespace Berth.Runtime.Tests.Init;

public sealed class InitCompilerRootfsTests : IDisposable
{
    readonly string _bundle = Directory.CreateTempSubdirectory("berth-unit-").FullName;
    public void Dispose() => Directory.Delete(_bundle, recursive: true);

    CompiledProgram Compile(Spec spec, bool noPivot = false) => CompiledProgram.Compile(spec, bundle: _bundle, noPivot: noPivot);

    static Spec WithMount(Mount mount)
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Mounts = [mount];
        return spec;
    }

    [Fact]
    public void Rootfs_setup_makes_root_rslave_and_bind_mounts_the_rootfs_onto_itself()
    {
        using var p = Compile(UnitSpecs.Bare("pid", "mount"));
        var mounts = p.Syscalls(Sys.Mount).ToList();
        Assert.Equal("/", p.String(mounts[0].Args[1]));
        Assert.Equal((long)(MS_SLAVE | MS_REC), mounts[0].Args[3].Value);
        Assert.Equal("/tmp/berth-unit-rootfs", p.String(mounts[1].Args[0]));
        Assert.Equal("/tmp/berth-unit-rootfs", p.String(mounts[1].Args[1]));
        Assert.Equal((long)(MS_BIND | MS_REC), mounts[1].Args[3].Value);
    }

    [Fact]
    public void Rootfs_propagation_is_applied_before_and_after_pivot_root()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Linux!.RootfsPropagation = "rprivate";
        using (var p = Compile(spec))
        {
            Assert.Equal((long)(MS_PRIVATE | MS_REC), p.Syscalls(Sys.Mount).First().Args[3].Value);
            var after = p.Ops[p.MustFind("make the new / rprivate")];
            Assert.True(p.IndexOf(after) > p.MustFind("pivot_root"));
            Assert.Equal((long)(MS_PRIVATE | MS_REC), after.Args[3].Value);
            Assert.Equal(-1, p.Find("the mount holding the rootfs"));
        }
        spec.Linux.RootfsPropagation = "private";
        using (var p = Compile(spec))
            Assert.Equal((long)MS_PRIVATE, p.Syscalls(Sys.Mount).First().Args[3].Value);
        spec.Linux.RootfsPropagation = null;
        using (var p = Compile(spec))
            Assert.Equal(-1, p.Find("make the new /"));
    }

    [Fact]
    public void Shared_rootfs_propagation_makes_the_mount_holding_the_rootfs_private_before_binding_it()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Linux!.RootfsPropagation = "rshared";
        // The holder is found from the real path of the rootfs: one that exists.
        CompiledProgram Shared() => CompiledProgram.Compile(spec, rootfs: _bundle, bundle: _bundle);
        using var p = Shared();
        var mounts = p.Syscalls(Sys.Mount).ToList();
        Assert.Equal((long)(MS_SHARED | MS_REC), mounts[0].Args[3].Value);
        var holder = InitCompiler.MountHolding(_bundle, File.ReadAllText("/proc/self/mountinfo"));
        Assert.Equal(holder, p.String(mounts[1].Args[1]));
        Assert.Equal((long)MS_PRIVATE, mounts[1].Args[3].Value);
        Assert.Equal((long)(MS_BIND | MS_REC), mounts[2].Args[3].Value);

        spec.Linux.Namespaces = [.. spec.Linux.Namespaces!.Where(n => n.Type != "mount"), new() { Type = "mount", Path = "/proc/1/ns/mnt" }];
        Assert.Contains("new mount namespace", Assert.Throws<RuntimeException>(() => Shared()).Message);
    }

    [Fact]
    public void The_mount_holding_a_path_is_the_longest_mount_point_above_it()
    {
        var dir = Directory.CreateTempSubdirectory("berth-holder-").FullName;
        try
        {
            var mountinfo = $"""
                27 1 254:0 / / rw - ext4 /dev/vda rw
                30 27 0:30 / /tmp/x rw - tmpfs tmpfs rw
                31 27 0:31 / {dir} rw - tmpfs tmpfs rw
                32 27 0:32 / {dir}\040more rw - tmpfs tmpfs rw
                """;
            Assert.Equal(dir, InitCompiler.MountHolding(Path.Combine(dir, "."), mountinfo));
            Directory.CreateDirectory(Path.Combine(dir, "rootfs"));
            Assert.Equal(dir, InitCompiler.MountHolding(Path.Combine(dir, "rootfs"), mountinfo));
            Directory.CreateDirectory(dir + " more");
            Assert.Equal(dir + " more", InitCompiler.MountHolding(dir + " more", mountinfo));
            Assert.Equal("/", InitCompiler.MountHolding("/usr", mountinfo));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
            if (Directory.Exists(dir + " more")) Directory.Delete(dir + " more");
        }
    }

    [Fact]
    public void An_idmapped_bind_moves_the_prepared_detached_mount_onto_the_opened_target()
    {
        var spec = WithMount(new Mount { Destination = "/data", Type = "bind", Source = _bundle, Options = ["rbind", "ro", "idmap"] });
        var (program, _) = InitCompiler.Compile(new InitOptions
        {
            Spec = spec, Rootfs = "/tmp/berth-unit-rootfs", BundleDir = _bundle, StartFd = CompiledProgram.StartFd, ReportFd = CompiledProgram.ReportFd,
            HostHasProcKcore = true, IdmappedMountFds = new Dictionary<int, int> { [0] = 77 },
        });
        using var p = new CompiledProgram(program, false);
        var move = p.Single(o => o.Syscall == Sys.MoveMount, "moves the id-mapped mount");
        var open = p.Ops[p.IndexOf(move) - 1];
        Assert.Equal(Sys.OpenAt2, open.Syscall);
        Assert.Equal("data", p.String(open.Args[1]));
        Assert.Equal(new OpArg(OpArgKind.Slot, open.Result!.Value.Index), move.Args[2]);
        Assert.Equal((long)(Sys.MOVE_MOUNT_F_EMPTY_PATH | Sys.MOVE_MOUNT_T_EMPTY_PATH), move.Args[4].Value);
        Assert.Equal(OpArgKind.Slot, move.Args[0].Kind); // the fd the parent preset: 77
        Assert.DoesNotContain(p.Syscalls(Sys.Mount), o => o.Description.StartsWith("mount bind", StringComparison.Ordinal));
        Assert.True(p.Find("remount id-mapped bind") > p.IndexOf(move), p.Dump()); // ro after the move

        // Without the prepared fd (a caller that skipped IdmappedMounts.Prepare) the compile fails, naming the mount.
        Assert.Contains("mount /data: the id-mapped copy", Assert.Throws<RuntimeException>(() => Compile(spec)).Message);
    }

    [Fact]
    public void A_tmpfs_without_a_mode_is_chmodded_to_the_mode_the_image_has_there_before_a_readonly_remount()
    {
        using var p = Compile(WithMount(new Mount { Destination = "/data", Type = "tmpfs", Source = "tmpfs", Options = ["ro", "nosuid"] }));
        var readMode = p.MustFind("the mode of /data in the image");
        Assert.Equal((long)0xfff, p.Ops[readMode].Args[1].Value);
        var mkdir = p.MustFind("mkdir /data");
        var mount = p.IndexOf(p.Single(o => o.Syscall == Sys.Mount && o.Description == "mount tmpfs tmpfs on /data", "mounts the tmpfs"));
        var chmod = p.MustFind("chmod the tmpfs on /data to the image's mode");
        var remount = p.MustFind("remount the tmpfs on /data read-only");
        // Read before the mount point is created (else a new directory's 0755 would be taken for the image's).
        Assert.True(readMode < mkdir && mkdir < mount && mount < chmod && chmod < remount, p.Dump());
        Assert.Equal((long)MS_NOSUID, p.Ops[mount].Args[3].Value); // writable until the chmod
        Assert.Equal(new OpArg(OpArgKind.Slot, p.Ops[readMode].Result!.Value.Index), p.Ops[chmod].Args[2]);

        // A mode= option wins: nothing is read or chmodded, and a read-only tmpfs is mounted read-only at once.
        using var given = Compile(WithMount(new Mount { Destination = "/data", Type = "tmpfs", Source = "tmpfs", Options = ["ro", "mode=700"] }));
        Assert.Equal(-1, given.Find("the mode of /data in the image"));
        Assert.Equal(-1, given.Find("chmod the tmpfs"));
        Assert.Equal(-1, given.Find("remount the tmpfs"));
    }

    [Fact]
    public void Tmpcopyup_opens_the_directory_before_the_tmpfs_hides_it_and_copies_into_the_tmpfs()
    {
        using var p = Compile(WithMount(new Mount { Destination = "/etc/app", Type = "tmpfs", Source = "tmpfs", Options = ["tmpcopyup", "ro", "nosuid"] }));
        var openImage = p.MustFind("open /etc/app to copy it into the tmpfs");
        var mount = p.IndexOf(p.Single(o => o.Syscall == Sys.Mount && o.Description == "mount tmpfs tmpfs on /etc/app", "mounts the tmpfs"));
        var openTmpfs = p.MustFind("open the tmpfs on /etc/app");
        var copy = p.MustFind("copy /etc/app of the image into its tmpfs");
        var remount = p.MustFind("remount the tmpfs on /etc/app read-only");
        Assert.True(openImage < mount && mount < openTmpfs && openTmpfs < copy && copy < remount, p.Dump());
        Assert.Equal((long)(Sys.O_RDONLY | Sys.O_DIRECTORY | Sys.O_CLOEXEC), p.Int64(p.Ops[openImage].Args[2], 0));
        // Mounted writable for the copy, then made read-only.
        Assert.Equal((long)MS_NOSUID, p.Ops[mount].Args[3].Value);
        Assert.Equal((long)(MS_NOSUID | MS_RDONLY | MS_REMOUNT), p.Ops[remount].Args[3].Value);
        var op = p.Ops[copy];
        Assert.Equal(OpKind.CopyTree, op.Kind);
        Assert.Equal(new OpArg(OpArgKind.Slot, p.Ops[openImage].Result!.Value.Index), op.Args[0]);
        Assert.Equal(new OpArg(OpArgKind.Slot, p.Ops[openTmpfs].Result!.Value.Index), op.Args[1]);

        // Without ro nothing is remounted; on a bind, tmpcopyup means nothing (runc ignores it).
        using var rw = Compile(WithMount(new Mount { Destination = "/etc/app", Type = "tmpfs", Source = "tmpfs", Options = ["tmpcopyup"] }));
        Assert.Equal(-1, rw.Find("remount the tmpfs"));
        using var bind = Compile(WithMount(new Mount { Destination = "/src", Type = "bind", Source = _bundle, Options = ["rbind", "tmpcopyup"] }));
        Assert.DoesNotContain(bind.Ops, o => o.Kind == OpKind.CopyTree);
    }

    [Fact]
    public void A_mount_target_is_opened_with_openat2_resolve_in_root_and_mounted_through_proc_self_fd()
    {
        using var p = Compile(WithMount(new Mount { Destination = "/data/cache", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "size=1m", "mode=700"] }));
        var mount = p.Single(o => o.Syscall == Sys.Mount && o.Description.Contains("tmpfs tmpfs on /data/cache"), "mounts the tmpfs");
        var index = p.IndexOf(mount);
        var fdPath = p.Ops[index - 1];
        var open = p.Ops[index - 2];

        Assert.Equal(Sys.OpenAt2, open.Syscall);
        Assert.Equal(OpArgKind.Slot, open.Args[0].Kind); // the rootfs fd
        Assert.Equal("data/cache", p.String(open.Args[1])); // relative to the rootfs fd
        Assert.Equal(24L, open.Args[3].Value); // sizeof(struct open_how)
        Assert.Equal((long)(Sys.O_PATH | Sys.O_CLOEXEC), p.Int64(open.Args[2], 0));
        var resolve = (ulong)p.Int64(open.Args[2], 16);
        Assert.True((resolve & Sys.RESOLVE_IN_ROOT) != 0, $"open_how.resolve = {resolve:x}: RESOLVE_IN_ROOT missing");
        Assert.True((resolve & Sys.RESOLVE_NO_MAGICLINKS) != 0, $"open_how.resolve = {resolve:x}: RESOLVE_NO_MAGICLINKS missing");

        Assert.Equal(OpKind.FdPath, fdPath.Kind);
        Assert.Equal(open.Result!.Value.Index, fdPath.Args[1].Value);
        Assert.Equal(fdPath.Args[0], mount.Args[1]); // the target is the /proc/self/fd/N buffer
        Assert.Equal("tmpfs", p.String(mount.Args[0]));
        Assert.Equal("tmpfs", p.String(mount.Args[2]));
        Assert.Equal((long)MS_NOSUID, mount.Args[3].Value);
        Assert.Equal("size=1m,mode=700", p.String(mount.Args[4]));

        // The parent directories were created inside the rootfs, component by component.
        var mkdirs = p.Syscalls(Sys.MkdirAt).Select(o => p.String(o.Args[1])).ToList();
        Assert.Equal(["data", "cache"], mkdirs.Take(2));
    }

    [Fact]
    public void A_read_only_bind_mount_is_remounted_and_keeps_the_source_flags()
    {
        using var p = Compile(WithMount(new Mount { Destination = "/src", Type = "bind", Source = _bundle, Options = ["rbind", "ro", "nodev"] }));
        var bind = p.Single(o => o.Syscall == Sys.Mount && o.Description.StartsWith("mount bind", StringComparison.Ordinal), "bind mounts the source");
        Assert.Equal(_bundle, p.String(bind.Args[0]));
        Assert.Equal((long)(MS_BIND | MS_REC), bind.Args[3].Value);

        var remount = p.Single(o => o.Syscall == Sys.Mount && o.Description.StartsWith("remount bind", StringComparison.Ordinal), "remounts it");
        Assert.True(p.IndexOf(remount) > p.IndexOf(bind));
        // Flags come from statfs of the new mount: (f_flags & nosuid|nodev|noexec, and noatime|nodiratime
        // when the options name no atime flag) | the asked flags.
        var load = p.Ops[p.IndexOf(remount) - 1];
        Assert.Equal(OpKind.Load, load.Kind);
        Assert.Equal((long)(MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME), load.Args[1].Value);
        Assert.Equal((long)(MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NODEV), load.Args[2].Value);
        Assert.Equal(new OpArg(OpArgKind.Slot, load.Result!.Value.Index), remount.Args[3]);
        Assert.Equal(Sys.Statfs, p.Ops[p.IndexOf(load) - 1].Syscall);
    }

    [Fact]
    public void A_plain_bind_mount_is_not_remounted_and_a_missing_source_is_refused()
    {
        using (var p = Compile(WithMount(new Mount { Destination = "/src", Type = "bind", Source = _bundle, Options = ["bind"] })))
        {
            var bind = p.Single(o => o.Syscall == Sys.Mount && o.Description.StartsWith("mount bind", StringComparison.Ordinal), "bind mounts the source");
            Assert.Equal((long)MS_BIND, bind.Args[3].Value);
            Assert.DoesNotContain(p.Ops, o => o.Description.StartsWith("remount bind", StringComparison.Ordinal));
        }
        var e = Assert.Throws<RuntimeException>(() => Compile(WithMount(new Mount { Destination = "/x", Type = "bind", Source = "/nonexistent/berth", Options = ["bind"] })));
        Assert.Contains("/nonexistent/berth", e.Message);
    }

    [Fact]
    public void Propagation_options_are_applied_after_the_mount()
    {
        using var p = Compile(WithMount(new Mount { Destination = "/src", Type = "bind", Source = _bundle, Options = ["rbind", "rslave"] }));
        var propagation = p.Single(o => o.Description.StartsWith("set propagation of /src", StringComparison.Ordinal), "sets the propagation");
        Assert.Equal((long)(MS_SLAVE | MS_REC), propagation.Args[3].Value);
        Assert.True(p.IndexOf(propagation) > p.MustFind("mount bind"));
    }

    [Fact]
    public void Masked_paths_bind_dev_null_and_fall_back_to_a_read_only_tmpfs_on_enotdir()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Linux!.MaskedPaths = ["/proc/kcore"];
        using var p = Compile(spec);
        var mask = p.Single(o => o.Description == "mask /proc/kcore", "masks with /dev/null");
        Assert.Equal("/dev/null", p.String(mask.Args[0]));
        Assert.Equal("/proc/kcore", p.String(mask.Args[1]));
        Assert.Equal((long)MS_BIND, mask.Args[3].Value);

        var enotdir = mask.Tolerated.Single(t => t.Errno == Sys.ENOTDIR).Then!;
        var directory = p.Ops[enotdir.Target];
        Assert.Equal(Sys.Mount, directory.Syscall);
        Assert.Equal("tmpfs", p.String(directory.Args[2]));
        Assert.Equal((long)MS_RDONLY, directory.Args[3].Value);
        Assert.Equal("/proc/kcore", p.String(directory.Args[1]));
        // A path that does not exist is skipped past both mounts.
        var enoent = mask.Tolerated.Single(t => t.Errno == Sys.ENOENT).Then!;
        Assert.True(enoent.Target > enotdir.Target, p.Dump());
    }

    [Fact]
    public void Readonly_paths_are_bound_onto_themselves_and_remounted_read_only()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Linux!.ReadonlyPaths = ["/proc/sys"];
        using var p = Compile(spec);
        var bind = p.Single(o => o.Description == "bind mount readonly path /proc/sys", "binds the path");
        Assert.Equal((long)(MS_BIND | MS_REC), bind.Args[3].Value);
        Assert.Contains(bind.Tolerated, t => t.Errno == Sys.ENOENT);
        var remount = p.Ops.Skip(p.IndexOf(bind) + 1).First(o => o.Syscall == Sys.Mount);
        Assert.Equal("/proc/sys", p.String(remount.Args[1]));
        var flags = remount.Args[3].Kind == OpArgKind.Slot
            ? p.Ops.Take(p.IndexOf(remount)).Last(o => o.Kind == OpKind.Load).Args[2].Value
            : remount.Args[3].Value;
        Assert.Equal((long)(MS_BIND | MS_REMOUNT | MS_RDONLY), flags & (long)(MS_BIND | MS_REMOUNT | MS_RDONLY));
    }

    [Fact]
    public void Dev_gets_runc_default_devices_the_fd_links_and_ptmx_from_devpts()
    {
        using var p = Compile(UnitSpecs.Default("pid", "mount"));
        var nodes = p.Syscalls(Sys.MknodAt).ToDictionary(o => p.String(o.Args[1]), o => (Mode: o.Args[2].Value, Dev: o.Args[3].Value));
        Assert.Equal(["full", "null", "random", "tty", "urandom", "zero"], nodes.Keys.Order());
        Assert.Equal(0x2000L | 0x1b6, nodes["null"].Mode); // S_IFCHR | 0666
        Assert.Equal((1L << 8) | 3, nodes["null"].Dev);
        Assert.Equal((5L << 8) | 0, nodes["tty"].Dev);

        var links = p.Syscalls(Sys.SymlinkAt).ToDictionary(o => p.String(o.Args[2]), o => p.String(o.Args[0]));
        Assert.Equal("/proc/self/fd", links["fd"]);
        Assert.Equal("/proc/self/fd/0", links["stdin"]);
        Assert.Equal("/proc/self/fd/1", links["stdout"]);
        Assert.Equal("/proc/self/fd/2", links["stderr"]);
        Assert.Equal("/proc/kcore", links["core"]);
        Assert.Equal("pts/ptmx", links["ptmx"]);
        Assert.True(p.MustFind("remove /dev/ptmx") < p.MustFind("symlink /dev/ptmx"));
    }

    [Fact]
    public void In_a_user_namespace_devices_are_bind_mounted_from_the_host()
    {
        using var p = Compile(UnitSpecs.Default("pid", "user", "mount"));
        Assert.Empty(p.Syscalls(Sys.MknodAt));
        var binds = p.Syscalls(Sys.Mount).Where(o => o.Description.StartsWith("bind mount device", StringComparison.Ordinal)).Select(o => p.String(o.Args[0])).ToList();
        Assert.Equal(["/dev/full", "/dev/null", "/dev/random", "/dev/tty", "/dev/urandom", "/dev/zero"], binds.Order());
    }

    [Fact]
    public void A_ptmx_in_the_devices_gives_way_to_the_devpts_link_as_with_runc()
    {
        // podman --privileged lists every host device, /dev/ptmx included; in a user namespace a
        // bound /dev/ptmx could not be replaced by the link (EBUSY), and runc skips it.
        foreach (var namespaces in new[] { new[] { "pid", "mount" }, ["pid", "user", "mount"] })
        {
            var spec = UnitSpecs.Default(namespaces);
            spec.Linux!.Devices = [new LinuxDevice { Path = "/dev/ptmx", Type = "c", Major = 5, Minor = 2 }, new LinuxDevice { Path = "/dev/fuse", Type = "c", Major = 10, Minor = 229 }];
            using var p = Compile(spec);
            Assert.DoesNotContain(p.Ops, o => o.Description.Contains("device /dev/ptmx") || o.Description.Contains("mknod /dev/ptmx"));
            Assert.Contains(p.Ops, o => o.Description.Contains("/dev/fuse (c 10:229)") || o.Description.Contains("device /dev/fuse"));
            Assert.True(p.MustFind("remove /dev/ptmx") < p.MustFind("symlink /dev/ptmx"));
        }
        // Without a devpts mount there is no link to make: the device is created as asked.
        var noDevpts = UnitSpecs.Default("pid", "mount");
        noDevpts.Mounts!.RemoveAll(m => m.Destination == "/dev/pts");
        noDevpts.Linux!.Devices = [new LinuxDevice { Path = "/dev/ptmx", Type = "c", Major = 5, Minor = 2 }];
        using var plain = Compile(noDevpts);
        Assert.Contains(plain.Ops, o => o.Description.Contains("mknod /dev/ptmx"));
    }

    [Fact]
    public void Pivot_root_then_the_old_root_is_made_slave_and_detached_and_no_pivot_moves_and_chroots()
    {
        using (var p = Compile(UnitSpecs.Bare("pid", "mount")))
        {
            var pivot = p.Single(o => o.Syscall == Sys.PivotRoot, "pivots");
            Assert.Equal((".", "."), (p.String(pivot.Args[0]), p.String(pivot.Args[1])));
            var slave = p.First(o => o.Syscall == Sys.Mount && p.IndexOf(o) > p.IndexOf(pivot), "after pivot_root");
            Assert.Equal((long)(MS_SLAVE | MS_REC), slave.Args[3].Value);
            var detach = p.Single(o => o.Syscall == Sys.Umount2, "detaches the old root");
            Assert.Equal((long)Sys.MNT_DETACH, detach.Args[1].Value);
            Assert.True(p.IndexOf(slave) < p.IndexOf(detach));
            Assert.Empty(p.Syscalls(Sys.Chroot));
        }
        using var noPivot = Compile(UnitSpecs.Bare("pid", "mount"), noPivot: true);
        Assert.Empty(noPivot.Syscalls(Sys.PivotRoot));
        var move = noPivot.Single(o => o.Syscall == Sys.Mount && o.Args[3].Value == (long)MS_MOVE, "moves the rootfs");
        Assert.Equal("/", noPivot.String(move.Args[1]));
        var chroot = noPivot.Single(o => o.Syscall == Sys.Chroot, "chroots");
        Assert.Equal(".", noPivot.String(chroot.Args[0]));
        Assert.True(noPivot.IndexOf(move) < noPivot.IndexOf(chroot));
    }

    [Fact]
    public void Without_a_mount_namespace_the_child_only_chroots()
    {
        using var p = Compile(UnitSpecs.Bare("pid", "uts"));
        Assert.Empty(p.Syscalls(Sys.Mount));
        var chroot = p.Single(o => o.Syscall == Sys.Chroot, "chroots");
        Assert.Equal("/tmp/berth-unit-rootfs", p.String(chroot.Args[0]));
    }

    [Fact]
    public void Create_hooks_are_requested_between_the_mounts_and_pivot_root_only_when_there_are_some()
    {
        var spec = UnitSpecs.Default("pid", "mount");
        using (var none = Compile(spec))
            Assert.DoesNotContain(none.Ops, o => o.Syscall == Sys.Write && o.Args[1].Kind == OpArgKind.Data && none.Int32(o.Args[1], 0) == (int)InitMessage.CreateHooks);

        spec.Hooks = new Berth.Oci.Hooks { CreateContainer = [new Hook { Path = "/bin/true" }] };
        using var p = Compile(spec);
        var report = p.Single(o => o.Syscall == Sys.Write && o.Args[1].Kind == OpArgKind.Data && p.Int32(o.Args[1], 0) == (int)InitMessage.CreateHooks, "asks for the hooks");
        var wait = p.Ops[p.IndexOf(report) + 1];
        Assert.Equal(Sys.Read, wait.Syscall);
        Assert.True(wait.FailOnZero);
        var lastMount = p.Ops.ToList().FindLastIndex(o => o.Syscall == Sys.Mount && p.IndexOf(o) < p.IndexOf(p.Syscalls(Sys.PivotRoot).Single()));
        Assert.True(lastMount < p.IndexOf(report) && p.IndexOf(wait) < p.IndexOf(p.Syscalls(Sys.PivotRoot).Single()), p.Dump());
    }

    [Fact]
    public void The_cgroup_mount_on_v1_is_a_tmpfs_with_one_bind_per_hierarchy_and_links_for_co_mounted_controllers()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Mounts = [new Mount { Destination = "/sys/fs/cgroup", Type = "cgroup", Source = "cgroup", Options = ["nosuid", "noexec", "nodev", "relatime", "ro"] }];
        var plan = new CgroupMountPlan("/sys/fs/cgroup/unified/berth/x",
            [("memory", "memory", "/sys/fs/cgroup/memory/berth/x"), ("cpu,cpuacct", "cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/berth/x")]);
        using var p = CompiledProgram.Compile(spec, bundle: _bundle, cgroups: plan);
        var binds = p.Syscalls(Sys.Mount).Where(o => o.Description.StartsWith("bind mount /sys/fs/cgroup", StringComparison.Ordinal)).Select(o => p.String(o.Args[0])).ToList();
        Assert.Equal(["/sys/fs/cgroup/memory/berth/x", "/sys/fs/cgroup/cpu,cpuacct/berth/x", "/sys/fs/cgroup/unified/berth/x"], binds);
        var links = p.Syscalls(Sys.SymlinkAt).Select(o => (Target: p.String(o.Args[0]), Link: p.String(o.Args[2]))).ToList();
        Assert.Contains(("cpu,cpuacct", "sys/fs/cgroup/cpu"), links);
        Assert.Contains(("cpu,cpuacct", "sys/fs/cgroup/cpuacct"), links);
        Assert.Contains(p.Ops, o => o.Description == "remount /sys/fs/cgroup read-only");

        spec.Mounts[0].Options = ["ro"];
        Assert.Throws<RuntimeException>(() => CompiledProgram.Compile(spec, bundle: _bundle, cgroups: null));
    }
}
