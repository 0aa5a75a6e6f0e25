using Berth.Oci;

namespace Berth.Runtime.Tests.Rootless;

/// <summary>
/// berth-runtime run by a real unprivileged user (created by <see cref="RootlessUser"/>), with
/// bundles made by `spec --rootless`: on this cgroup v1/hybrid host nothing is delegated, so
/// the container runs without a cgroup and a limit request is refused clearly.
/// </summary>
[Collection("rootless")]
public sealed class RootlessTests(RootlessUser user) : IClassFixture<RootlessUser>
{
    string NewRoot() => Path.Combine(user.Dir, "state-" + Guid.NewGuid().ToString("N")[..6]);

    static string Id(string name) => $"rl-{name}-{Guid.NewGuid().ToString("N")[..6]}";

    [RootlessFact]
    public void Run_makes_root_inside_the_callers_uid_outside_and_files_are_the_users()
    {
        var bundle = user.NewBundle();
        bundle.Spec.Root!.Readonly = false;
        bundle.Script("echo pid=$$; cat /proc/self/uid_map /proc/self/gid_map; echo id=$(id -u):$(id -g); " +
            "echo data > /tmp/made-inside; mkdir /tmp/dir-inside; " +
            "echo null > /dev/null && test -c /dev/null && head -c 4 /dev/urandom | wc -c; ls /sys/kernel >/dev/null && echo sys-ok; " +
            "grep ' /sys ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1").Save();
        // No --root: the default for an unprivileged user without XDG_RUNTIME_DIR.
        var result = user.Runtime(["run", "--bundle", bundle.Dir, Id("run")]);
        result.ShouldSucceed();

        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal("pid=1", lines[0]);
        Assert.Equal($"0 {user.Uid} 1", Normalize(lines[1]));
        Assert.Equal($"0 {user.Gid} 1", Normalize(lines[2]));
        Assert.Equal("id=0:0", lines[3]);
        Assert.Equal("4", lines[4]);
        Assert.Equal("sys-ok", lines[5]);
        Assert.Equal("ro", lines[6]);
        Assert.Contains("no cgroup is delegated", result.Stderr);

        var file = RootlessUser.Stat(Path.Combine(bundle.Rootfs, "tmp/made-inside"));
        Assert.Equal((user.Uid, user.Gid), (file.Uid, file.Gid));
        var dir = RootlessUser.Stat(Path.Combine(bundle.Rootfs, "tmp/dir-inside"));
        Assert.Equal((user.Uid, user.Gid), (dir.Uid, dir.Gid));

        // The state root is the user's and private; run removed the container's directory.
        var root = RootlessUser.Stat(user.DefaultRoot);
        Assert.Equal((user.Uid, "700"), (root.Uid, root.Mode));
        Assert.Empty(Directory.EnumerateFileSystemEntries(user.DefaultRoot));
    }

    static string Normalize(string line) => string.Join(' ', line.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    [RootlessFact]
    public void Create_start_state_kill_delete_work_unprivileged()
    {
        var root = NewRoot();
        var id = Id("life");
        var bundle = user.NewBundle("sleep", "60");
        user.Runtime(["--root", root, "create", "--bundle", bundle.Dir, id]).ShouldSucceed();
        Assert.Equal("700", RootlessUser.Stat(root).Mode);
        Assert.Equal("700", RootlessUser.Stat(Path.Combine(root, id)).Mode);
        Assert.Equal(user.Uid, RootlessUser.Stat(Path.Combine(root, id, "state.json")).Uid);

        var state = user.Runtime(["--root", root, "state", id]).ShouldSucceed().Stdout;
        Assert.Contains("\"status\": \"created\"", state);
        var pid = int.Parse(System.Text.RegularExpressions.Regex.Match(state, "\"pid\": (\\d+)").Groups[1].Value);
        // The init runs as the user on the host.
        var uidLine = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        Assert.Equal(user.Uid.ToString(), uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);

        user.Runtime(["--root", root, "start", id]).ShouldSucceed();
        Assert.Contains("\"status\": \"running\"", user.Runtime(["--root", root, "state", id]).ShouldSucceed().Stdout);
        Assert.Contains(id, user.Runtime(["--root", root, "list"]).ShouldSucceed().Stdout);
        // exec joins the user namespace first, then the others: unprivileged too.
        var exec = user.Runtime(["--root", root, "exec", id, "sh", "-c", "echo $(id -u) $(cat /proc/self/uid_map)"]).ShouldSucceed();
        Assert.Equal($"0 0 {user.Uid} 1", Normalize(exec.Stdout.Trim()));

        // Without a cgroup, kill --all falls back to the init (its pid namespace dies with it).
        user.Runtime(["--root", root, "kill", "--all", id, "KILL"]).ShouldSucceed();
        RuntimeHarness.WaitUntil(() => user.Runtime(["--root", root, "state", id]).Stdout.Contains("\"status\": \"stopped\""), "the container stopped");
        user.Runtime(["--root", root, "delete", id]).ShouldSucceed();
        user.Runtime(["--root", root, "state", id]).ShouldFail();
        Assert.False(Directory.Exists(Path.Combine(root, id)));
        RuntimeHarness.WaitUntil(() => user.Processes().Count == 0, "the container's processes are gone");
    }

    [RootlessFact]
    public void A_resource_limit_without_a_delegated_cgroup_fails_clearly_and_leaves_nothing()
    {
        var root = NewRoot();
        var id = Id("limit");
        var bundle = user.NewBundle("true");
        bundle.Linux.Resources = new LinuxResources { Memory = new LinuxMemory { Limit = 64 << 20 }, Pids = new LinuxPids { Limit = 50 } };
        bundle.Save();
        var result = user.Runtime(["--root", root, "run", "--bundle", bundle.Dir, id]).ShouldFail();
        Assert.Contains("berth-runtime: rootless: linux.resources sets a memory limit (linux.resources.memory), a pids limit (linux.resources.pids), but no cgroup is delegated", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
        Assert.False(Directory.Exists(Path.Combine(root, id)));
        Assert.Empty(user.Processes());
        foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup"))
            Assert.False(Directory.Exists(Path.Combine(hierarchy, "berth", id)));
    }

    [RootlessFact]
    public void A_multi_range_mapping_goes_through_newuidmap()
    {
        var sub = user.SubordinateStart;
        var bundle = user.NewBundle();
        bundle.Spec.Root!.Readonly = false;
        bundle.Linux.UidMappings = [new() { ContainerId = 0, HostId = user.Uid, Size = 1 }, new() { ContainerId = 1, HostId = sub, Size = RootlessUser.SubordinateCount }];
        bundle.Linux.GidMappings = [new() { ContainerId = 0, HostId = user.Gid, Size = 1 }, new() { ContainerId = 1, HostId = sub, Size = RootlessUser.SubordinateCount }];
        bundle.Process.User = new User { Uid = 1000, Gid = 1000 };
        bundle.Script("cat /proc/self/uid_map /proc/self/gid_map; echo id=$(id -u):$(id -g); echo x > /shared/by-1000").Save();
        var shared = Path.Combine(bundle.Rootfs, "shared");
        Directory.CreateDirectory(shared);
        TestEnvironment.Sh($"chown {user.Uid}:{user.Gid} '{shared}' && chmod 0777 '{shared}'");

        var result = user.Runtime(["--root", NewRoot(), "run", "--bundle", bundle.Dir, Id("multi")]).ShouldSucceed();
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Normalize).ToList();
        Assert.Equal([$"0 {user.Uid} 1", $"1 {sub} {RootlessUser.SubordinateCount}", $"0 {user.Gid} 1", $"1 {sub} {RootlessUser.SubordinateCount}", "id=1000:1000"], lines);
        var file = RootlessUser.Stat(Path.Combine(shared, "by-1000"));
        Assert.Equal((sub + 999, sub + 999), (file.Uid, file.Gid));
    }

    [RootlessFact]
    public void A_mapping_outside_the_users_subordinate_ids_names_the_missing_range()
    {
        var outside = user.SubordinateStart + RootlessUser.SubordinateCount; // just past the user's range
        var bundle = user.NewBundle("true");
        bundle.Linux.UidMappings = [new() { ContainerId = 0, HostId = user.Uid, Size = 1 }, new() { ContainerId = 1, HostId = outside, Size = 10 }];
        bundle.Save();
        var root = NewRoot();
        var result = user.Runtime(["--root", root, "run", "--bundle", bundle.Dir, Id("range")]).ShouldFail();
        Assert.Contains($"host uids {outside}-{outside + 9} (container 1-10) are not yours", result.Stderr);
        Assert.Contains($"/etc/subuid grants {user.Name} (uid {user.Uid}) only {user.SubordinateStart}-{user.SubordinateStart + RootlessUser.SubordinateCount - 1}", result.Stderr);
        Assert.Contains($"add \"{user.Name}:{outside}:10\" to /etc/subuid", result.Stderr);
        Assert.False(Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any());
    }

    [RootlessFact]
    public void What_needs_privilege_fails_with_a_clear_error()
    {
        var cases = new (string What, Action<RootlessBundle> Configure, string Expected)[]
        {
            ("host network namespace", b => b.Linux.Namespaces!.Add(new LinuxNamespace { Type = NamespaceType.Network, Path = "/proc/1/ns/net" }),
                "cannot join the network namespace /proc/1/ns/net"),
            ("no user namespace", b => { b.Linux.Namespaces!.RemoveAll(n => n.Type == NamespaceType.User); b.Linux.UidMappings = null; b.Linux.GidMappings = null; },
                "an unprivileged user needs a user namespace"),
            ("ext4 mount", b => b.Spec.Mounts!.Add(new Mount { Destination = "/mnt", Type = "ext4", Source = "/dev/sda1" }),
                "mount /mnt: a \"ext4\" filesystem can only be mounted with privilege in the host's user namespace"),
            ("oomScoreAdj", b => b.Process.OomScoreAdj = -500, "process.oomScoreAdj -500 is below the current value"),
            ("rlimit above the hard limit", b => b.Process.Rlimits = [new PosixRlimit { Type = "RLIMIT_NOFILE", Hard = 1UL << 40, Soft = 1024 }],
                "process.rlimits RLIMIT_NOFILE: hard limit 1099511627776 is above the current hard limit"),
            ("unmapped gid= mount option", b => b.Spec.Mounts!.First(m => m.Destination == "/dev/pts").Options!.Add("gid=5"),
                "mount /dev/pts: option gid=5 names a gid that is not mapped"),
            ("unmapped user", b => b.Process.User = new User { Uid = 1000, Gid = 0 }, "process.user.uid 1000 is not mapped"),
        };
        var failures = new List<string>();
        foreach (var (what, configure, expected) in cases)
        {
            var bundle = user.NewBundle("true");
            configure(bundle);
            bundle.Save();
            var root = NewRoot();
            var result = user.Runtime(["--root", root, "run", "--bundle", bundle.Dir, Id("deny")]);
            if (result.Code == 0 || !result.Stderr.Contains("berth-runtime: rootless: " , StringComparison.Ordinal) || !result.Stderr.Contains(expected, StringComparison.Ordinal) || result.Stderr.Contains("   at "))
                failures.Add($"{what}: expected a failure containing \"{expected}\"; got {result}");
            if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any()) failures.Add($"{what}: state left in {root}");
        }
        Assert.Empty(user.Processes());
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }
}

[CollectionDefinition("rootless", DisableParallelization = true)]
public sealed class RootlessCollection;
