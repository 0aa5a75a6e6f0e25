using Berth.Oci;

namespace Berth.Runtime.Tests.Integration;

/// <summary>The mounts array, the read-only root, masked and read-only paths, /dev as runc builds it.</summary>
public sealed class MountTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    [IntegrationFact]
    public void Bind_mounts_read_only_and_read_write()
    {
        var ro = _h.NewDir("ro");
        var rw = _h.NewDir("rw");
        File.WriteAllText(Path.Combine(ro, "file"), "from-host");
        var output = _h.RunScript(
            "cat /mnt/ro/file; echo; touch /mnt/ro/x 2>/dev/null && echo ro-writable || echo ro-refused; " +
            "echo written > /mnt/rw/new && echo rw-ok; grep ' /mnt/ro ' /proc/mounts",
            b => b.Spec.Mounts!.AddRange([
                new Mount { Destination = "/mnt/ro", Type = "bind", Source = ro, Options = ["rbind", "ro"] },
                new Mount { Destination = "/mnt/rw", Type = "bind", Source = rw, Options = ["rbind", "rw"] },
            ]));
        var lines = output.Split('\n');
        Assert.Equal("from-host", lines[0]);
        Assert.Equal("ro-refused", lines[1]);
        Assert.Equal("rw-ok", lines[2]);
        Assert.Matches(@"\sro[,\s]", lines[3]);
        Assert.Equal("written\n", File.ReadAllText(Path.Combine(rw, "new")));
        Assert.False(File.Exists(Path.Combine(ro, "x")));
    }

    [IntegrationFact]
    public void A_bind_mounted_file_and_nosuid_nodev_noexec_options()
    {
        var file = _h.NewPath("single");
        File.WriteAllText(file, "one-file");
        var dir = _h.NewDir("flags");
        var output = _h.RunScript(
            "cat /etc/single; echo; grep ' /mnt/flags ' /proc/mounts",
            b => b.Spec.Mounts!.AddRange([
                new Mount { Destination = "/etc/single", Type = "bind", Source = file, Options = ["bind", "ro"] },
                new Mount { Destination = "/mnt/flags", Type = "bind", Source = dir, Options = ["bind", "nosuid", "nodev", "noexec"] },
            ]));
        var lines = output.Split('\n');
        Assert.Equal("one-file", lines[0]);
        var options = lines[1].Split(' ')[3].Split(',');
        Assert.Contains("nosuid", options);
        Assert.Contains("nodev", options);
        Assert.Contains("noexec", options);
    }

    [IntegrationFact]
    public void Tmpfs_options_size_mode_and_flags_are_applied()
    {
        var output = _h.RunScript(
            "grep ' /scratch ' /proc/mounts; stat -c %a /scratch",
            b => b.Spec.Mounts!.Add(new Mount { Destination = "/scratch", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "nodev", "noexec", "size=2m", "mode=1770"] }));
        var lines = output.Split('\n');
        var fields = lines[0].Split(' ');
        Assert.Equal("tmpfs", fields[2]);
        var options = fields[3].Split(',');
        Assert.Contains("size=2048k", options);
        Assert.Contains("nosuid", options);
        Assert.Contains("noexec", options);
        Assert.Equal("1770", lines[1]);
    }

    [IntegrationFact]
    public void A_tmpfs_over_an_image_directory_takes_its_mode_unless_the_options_give_one()
    {
        // As runc: the directory's mode (0700 here) rather than tmpfs's 1777, also read-only; a mode=
        // option wins; where the image has nothing the tmpfs keeps 1777.
        var output = _h.RunScript(
            "stat -c %a /private /private-ro /given /new; grep ' /private-ro ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1",
            b =>
            {
                foreach (var dir in new[] { "private", "private-ro", "given" })
                {
                    Directory.CreateDirectory(Path.Combine(b.Rootfs, dir));
                    File.SetUnixFileMode(Path.Combine(b.Rootfs, dir), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }
                b.Spec.Mounts!.AddRange([
                    new Mount { Destination = "/private", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid"] },
                    new Mount { Destination = "/private-ro", Type = "tmpfs", Source = "tmpfs", Options = ["ro"] },
                    new Mount { Destination = "/given", Type = "tmpfs", Source = "tmpfs", Options = ["mode=750"] },
                    new Mount { Destination = "/new", Type = "tmpfs", Source = "tmpfs", Options = ["size=1m"] },
                ]);
            });
        Assert.Equal("700\n700\n750\n1777\nro\n", output);
    }

    [IntegrationFact]
    public void Tmpcopyup_fills_the_tmpfs_with_what_the_image_has_there()
    {
        var output = _h.RunScript(
            "grep ' /data ' /proc/mounts | cut -d' ' -f3,4; cat /data/file; stat -c '%a %u:%g' /data/file; " +
            "[ $(stat -c %Y /data/file) -gt 1000000000 ] && echo mtime-of-the-copy; " +
            "readlink /data/link; stat -c '%a %u:%g' /data/sub /data/sub/deeper/fifo; cat /data/sub/deeper/leaf; " +
            "stat -c '%a %u:%g' /data; " +
            "grep ' /ro ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; cat /ro/kept; touch /ro/x 2>/dev/null || echo ro-refused",
            b =>
            {
                // What the image has at /data: a file with an odd mode, owner and mtime, a symlink,
                // a nested directory with a fifo. The container sees it on a tmpfs, with owners and
                // modes kept (the tmpfs's root too: the directory's owner and mode); times are those of
                // the copy, as with runc and crun.
                var data = Path.Combine(b.Rootfs, "data");
                Directory.CreateDirectory(Path.Combine(data, "sub", "deeper"));
                File.WriteAllText(Path.Combine(data, "file"), "from-image\n");
                Assert.Equal(0, TestEnvironment.Sh(
                    $"cd '{data}' && chmod 606 file && chown 12:34 file && touch -d @1000000000 file && ln -s file link && " +
                    $"chmod 751 sub && chown 5:6 sub && mkfifo sub/deeper/fifo && chmod 604 sub/deeper/fifo && " +
                    $"echo leaf > sub/deeper/leaf && chown 7:8 . && chmod 705 . && mkdir ../ro && echo kept > ../ro/kept").Code);
                b.Spec.Mounts!.Add(new Mount { Destination = "/data", Type = "tmpfs", Source = "tmpfs", Options = ["tmpcopyup", "size=1m"] });
                b.Spec.Mounts!.Add(new Mount { Destination = "/ro", Type = "tmpfs", Source = "tmpfs", Options = ["tmpcopyup", "ro"] });
            });
        Assert.Equal(
            "tmpfs rw,relatime,size=1024k\nfrom-image\n606 12:34\nmtime-of-the-copy\nfile\n751 5:6\n604 0:0\nleaf\n705 7:8\nro\nkept\nro-refused\n",
            output);
    }

    [IntegrationFact]
    public void Mount_propagation_rslave_sees_host_mounts_made_after_start_and_private_does_not()
    {
        // A shared host directory: mounts made under it later propagate to slave copies.
        var shared = _h.NewDir("shared");
        Assert.Equal(0, TestEnvironment.Sh($"mount --bind '{shared}' '{shared}' && mount --make-shared '{shared}'").Code);
        try
        {
            var bundle = _h.NewBundle().Script("echo ready; while [ ! -e /slave/sub/marker ]; do sleep 0.05; done; echo slave-saw-it; ls /private/sub");
            bundle.Spec.Mounts!.AddRange([
                new Mount { Destination = "/slave", Type = "bind", Source = shared, Options = ["rbind", "rslave"] },
                new Mount { Destination = "/private", Type = "bind", Source = shared, Options = ["rbind", "rprivate"] },
            ]);
            var id = _h.NewId("prop");
            var created = _h.CreateAndStart(id, bundle);
            RuntimeHarness.WaitForOutput(created, "ready");
            var sub = Path.Combine(shared, "sub");
            Directory.CreateDirectory(sub);
            Assert.Equal(0, TestEnvironment.Sh($"mount -t tmpfs tmpfs '{sub}' && touch '{sub}/marker'").Code);
            var output = RuntimeHarness.WaitForOutput(created, "slave-saw-it");
            RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the container finished");
            // /private/sub is the empty directory: the host's tmpfs did not propagate into it.
            Assert.DoesNotContain("marker", created.CurrentStdout().Split("slave-saw-it")[1]);
            _ = output;
        }
        finally
        {
            TestEnvironment.Sh($"umount -R '{shared}'");
        }
    }

    [IntegrationFact]
    public void Shared_rootfs_propagation_sends_mounts_in_an_rshared_volume_back_to_the_host()
    {
        // What dockerd asks for with `-v SRC:DST:rshared`: rootfsPropagation shared and an rshared bind.
        var shared = _h.NewDir("shared");
        Assert.Equal(0, TestEnvironment.Sh($"mount --bind '{shared}' '{shared}' && mount --make-shared '{shared}'").Code);
        try
        {
            var bundle = _h.NewBundle().Script(
                "mkdir -p /vol/sub && mount -t tmpfs tmpfs /vol/sub && echo hi > /vol/sub/from-container && " +
                "awk '$5 == \"/\"' /proc/self/mountinfo | wc -l; awk '$5 == \"/\"' /proc/self/mountinfo | grep -c shared:");
            bundle.Linux.RootfsPropagation = "rshared";
            bundle.Process.Capabilities = new LinuxCapabilities { Bounding = ["CAP_SYS_ADMIN"], Effective = ["CAP_SYS_ADMIN"], Permitted = ["CAP_SYS_ADMIN"] };
            bundle.Spec.Mounts!.Add(new Mount { Destination = "/vol", Type = "bind", Source = shared, Options = ["rbind", "rshared"] });
            var hostMountsBefore = File.ReadAllLines("/proc/self/mountinfo").Length;
            var output = _h.Run(bundle).ShouldSucceed().Stdout;
            // Inside: one root mount, and it is shared as asked.
            Assert.Equal("1\n1\n", output);
            // The host sees the tmpfs the container mounted in the volume, and nothing else of the container's.
            Assert.Equal("hi\n", File.ReadAllText(Path.Combine(shared, "sub", "from-container")));
            Assert.Equal(hostMountsBefore + 1, File.ReadAllLines("/proc/self/mountinfo").Length);
        }
        finally
        {
            TestEnvironment.Sh($"umount -R '{shared}'");
        }
    }

    [IntegrationFact]
    public void Readonly_root_refuses_writes_but_tmpfs_mounts_stay_writable()
    {
        var output = _h.RunScript("touch /rootfile 2>/dev/null && echo root-writable || echo root-ro; touch /dev/shm/x && echo shm-ok");
        Assert.Equal("root-ro\nshm-ok\n", output);
        var writable = _h.RunScript("touch /rootfile && echo root-writable", b => b.Writable());
        Assert.Equal("root-writable\n", writable);
    }

    [IntegrationFact]
    public void Masked_paths_are_empty_and_readonly_paths_cannot_be_written()
    {
        // Only what exists on this host can be checked: masking a missing path is skipped.
        var files = new[] { "/proc/keys", "/proc/timer_list", "/proc/kcore" }.Where(File.Exists).ToList();
        var dirs = new[] { "/proc/acpi", "/proc/scsi", "/sys/firmware" }.Where(Directory.Exists).ToList();
        var script = string.Concat(files.Select(f => $"echo \"{f}=$(wc -c < {f})\"; "))
            + string.Concat(dirs.Select(d => $"echo \"{d}=$(ls -A {d} | wc -l) $(grep ' {d} ' /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1)\"; "))
            + "echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo sys=writable || echo sys=ro; "
            + "echo \"sysmount=$(grep ' /proc/sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1)\"";
        var output = _h.RunScript(script).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1].Trim());
        foreach (var f in files) Assert.True(output[f] == "0", $"masked file {f} has {output[f]} bytes inside (expected /dev/null over it)");
        foreach (var d in dirs) Assert.True(output[d] == "0 tmpfs ro", $"masked directory {d}: \"{output[d]}\" (expected an empty read-only tmpfs)");
        Assert.Equal("ro", output["sys"]);
        Assert.Equal("ro", output["sysmount"]);
    }

    [IntegrationFact]
    public void A_masked_path_that_does_not_exist_is_skipped()
    {
        var output = _h.RunScript("echo ok", b => b.Linux.MaskedPaths!.Add("/proc/no-such-entry"));
        Assert.Equal("ok\n", output);
    }

    [IntegrationFact]
    public void Dev_is_built_as_runc_builds_it()
    {
        var output = _h.RunScript(
            "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; " +
            "for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; " +
            "grep -E ' /dev(/pts|/shm|/mqueue)? ' /proc/mounts | cut -d' ' -f2,3; " +
            "echo hello > /dev/null && head -c 4 /dev/zero | wc -c; ls /dev | sort | tr '\\n' ' '");
        var lines = output.Split('\n');
        Assert.Equal("/dev/null character special file 1:3 666", lines[0]);
        Assert.Equal("/dev/zero character special file 1:5 666", lines[1]);
        Assert.Equal("/dev/full character special file 1:7 666", lines[2]);
        Assert.Equal("/dev/random character special file 1:8 666", lines[3]);
        Assert.Equal("/dev/urandom character special file 1:9 666", lines[4]);
        Assert.Equal("/dev/tty character special file 5:0 666", lines[5]);
        Assert.Equal(["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2", "pts/ptmx"], lines[6..11]);
        var mounts = lines[11..15].ToHashSet();
        Assert.Contains("/dev tmpfs", mounts);
        Assert.Contains("/dev/pts devpts", mounts);
        Assert.Contains("/dev/shm tmpfs", mounts);
        Assert.Contains("/dev/mqueue mqueue", mounts);
        Assert.Equal("4", lines[15].Trim());
        // Nothing of the host's /dev beyond what runc puts there.
        var entries = lines[16].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.DoesNotContain("sda", entries);
        Assert.DoesNotContain("kmsg", entries);
        Assert.DoesNotContain("mem", entries);
    }

    [IntegrationFact]
    public void Linux_devices_are_created_with_their_mode_and_owner()
    {
        var output = _h.RunScript("stat -c '%F %t:%T %a %u:%g' /dev/mynull /dev/sub/full",
            b => b.Linux.Devices = [
                new LinuxDevice { Path = "/dev/mynull", Type = "c", Major = 1, Minor = 3, FileMode = 0x1a4, Uid = 1000, Gid = 1001 },
                new LinuxDevice { Path = "/dev/sub/full", Type = "c", Major = 1, Minor = 7 },
            ]);
        var lines = output.Split('\n');
        Assert.Equal("character special file 1:3 644 1000:1001", lines[0]);
        Assert.StartsWith("character special file 1:7", lines[1]);
    }

    [IntegrationFact]
    public void Sysctl_hostname_and_domainname_are_set_inside()
    {
        var output = _h.RunScript("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni; hostname; cat /proc/sys/kernel/domainname",
            b =>
            {
                b.Spec.Hostname = "sysctl-box";
                b.Spec.Domainname = "example.test";
                b.Linux.Sysctl = new() { ["net.ipv4.ip_forward"] = "1", ["kernel.shmmni"] = "2048" };
                b.Linux.ReadonlyPaths!.Remove("/proc/sys");
            });
        Assert.Equal("1\n2048\nsysctl-box\nexample.test\n", output);
        Assert.NotEqual("example.test", File.ReadAllText("/proc/sys/kernel/domainname").Trim());
    }

    [IntegrationFact]
    public void No_pivot_moves_the_rootfs_and_chroots()
    {
        var bundle = _h.NewBundle().Script("echo pid=$$; ls /bin/busybox; cat /proc/self/mountinfo | wc -l");
        var result = _h.Run(bundle, "nopivot", "--no-pivot").ShouldSucceed();
        var lines = result.Stdout.Split('\n');
        Assert.Equal("pid=1", lines[0]);
        Assert.Equal("/bin/busybox", lines[1]);
    }

    [IntegrationFact]
    public void A_symlink_in_the_rootfs_cannot_send_a_mount_outside_it()
    {
        var outside = _h.NewDir("outside");
        var bundle = _h.NewBundle().Script("ls /escape; echo done");
        File.CreateSymbolicLink(Path.Combine(bundle.Rootfs, "escape"), outside);
        bundle.Spec.Mounts!.Add(new Mount { Destination = "/escape/target", Type = "tmpfs", Source = "tmpfs" });
        var result = _h.Run(bundle, "escape");
        // Either the mount is resolved inside the rootfs (a "target" dir under rootfs/<outside path>) or refused;
        // never a directory in the host's outside folder.
        Assert.False(Directory.Exists(Path.Combine(outside, "target")), $"a rootfs symlink sent a mkdir outside the rootfs: {result}");
        Assert.Empty(RuntimeHarness.MountPointsUnder(outside));
    }
}
