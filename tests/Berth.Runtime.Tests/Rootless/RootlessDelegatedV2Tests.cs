using System.Diagnostics;
using Berth.Oci;
using Process = System.Diagnostics.Process;

namespace Berth.Runtime.Tests.Rootless;

/// <summary>
/// Rootless with a delegated cgroup v2 subtree, as systemd's <c>Delegate=yes</c> gives a user
/// session on every current distribution: a directory of the cgroup2 hierarchy owned by the user
/// (with its cgroup.procs, cgroup.threads and cgroup.subtree_control), and the user's processes
/// inside it. This host is hybrid, so, as <see cref="Cgroups.PureCgroupV2Tests"/> does, the
/// runtime runs in a private mount namespace with the cgroup2 hierarchy at /sys/fs/cgroup; there
/// the unprivileged runtime must create the container's group inside the delegated one, apply a
/// limit to it, freeze and thaw it, and remove it.
/// </summary>
[Collection("rootless")]
public sealed class RootlessDelegatedV2Tests(RootlessUser user) : IClassFixture<RootlessUser>, IDisposable
{
    const string HostUnified = "/sys/fs/cgroup/unified";
    readonly string _delegated = $"berth-deleg-{Guid.NewGuid().ToString("N")[..8]}";

    static string HostCgroup2Root() => Directory.Exists(HostUnified) ? HostUnified : "/sys/fs/cgroup";

    string HostDelegated => Path.Combine(HostCgroup2Root(), _delegated);

    [RootlessFact]
    public void An_unprivileged_runtime_uses_a_delegated_v2_subtree_for_groups_limits_and_pause()
    {
        Assert.True(Directory.Exists(HostUnified) || File.Exists("/sys/fs/cgroup/cgroup.controllers"), "no cgroup2 hierarchy on this host");
        // The delegation, as systemd makes it: the directory and its three delegation files are the user's.
        Directory.CreateDirectory(HostDelegated);
        foreach (var file in new[] { "", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control" })
            Assert.Equal(0, TestEnvironment.Sh($"chown {user.Uid}:{user.Gid} '{Path.Combine(HostDelegated, file)}'").Code);

        var printer = user.NewBundle("grep", "^0::", "/proc/self/cgroup"); // the v2 line (the host's v1 hierarchies are listed too)
        printer.Linux.CgroupsPath = $"/{_delegated}/c3";
        printer.Save();
        var sleeper = user.NewBundle("sleep", "60");
        sleeper.Linux.CgroupsPath = $"/{_delegated}/c4";
        sleeper.Linux.Resources = new LinuxResources { Unified = new() { ["cgroup.max.descendants"] = "5" } };
        sleeper.Save();
        var root = Path.Combine(user.Dir, "state-" + Guid.NewGuid().ToString("N")[..6]);
        var status = "sed -n 's/.*\"status\": *\"\\([a-z]*\\)\".*/\\1/p'";
        var script = $"""
            set -e
            R="$BERTH --root {root}"
            $R run --bundle {printer.Dir} c3
            $R create --bundle {sleeper.Dir} c4
            $R start c4
            echo descendants=$(cat /sys/fs/cgroup/{_delegated}/c4/cgroup.max.descendants)
            $R pause c4
            echo paused=$($R state c4 | {status}) freeze=$(cat /sys/fs/cgroup/{_delegated}/c4/cgroup.freeze)
            $R resume c4
            echo resumed=$($R state c4 | {status}) freeze=$(cat /sys/fs/cgroup/{_delegated}/c4/cgroup.freeze)
            $R kill c4 KILL
            n=0; while [ "$($R state c4 | {status})" != stopped ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done
            $R delete c4
            test ! -e /sys/fs/cgroup/{_delegated}/c4 && test ! -e /sys/fs/cgroup/{_delegated}/c3 && echo groups-removed
            """;

        var (code, stdout, stderr) = RunAsUserInPureV2(script);

        Assert.True(code == 0, $"exit {code}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
        Assert.Equal($"""
            0::/{_delegated}/c3
            descendants=5
            paused=paused freeze=1
            resumed=running freeze=0
            groups-removed

            """, stdout);
        Assert.DoesNotContain("no cgroup is delegated", stderr);
    }

    /// <summary>
    /// In a private mount namespace with cgroup2 at /sys/fs/cgroup: root moves the shell into the
    /// delegated group (a user may move processes only between groups below one whose cgroup.procs
    /// it owns), then becomes the user and runs <paramref name="script"/> with $BERTH set.
    /// </summary>
    (int Code, string Stdout, string Stderr) RunAsUserInPureV2(string script)
    {
        var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-m", "sh", "-c",
            "mount --make-rprivate / && umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && " +
            "echo $$ > \"/sys/fs/cgroup/$BT_DELEGATED/cgroup.procs\" && cd \"$BT_DIR\" && " +
            "exec setpriv --reuid \"$BT_UID\" --regid \"$BT_GID\" --init-groups env -u XDG_RUNTIME_DIR sh -c \"$BT_SCRIPT\" </dev/null" })
            start.ArgumentList.Add(a);
        start.Environment["BT_DELEGATED"] = _delegated;
        start.Environment["BT_DIR"] = user.Dir;
        start.Environment["BT_UID"] = user.Uid.ToString();
        start.Environment["BT_GID"] = user.Gid.ToString();
        start.Environment["BT_SCRIPT"] = script;
        start.Environment["BERTH"] = TestEnvironment.RuntimeBinary!;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit();
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    public void Dispose()
    {
        // Children first (a failed run may have left the containers' groups), each emptied of
        // processes by the fixture's kill of the user's processes, or by the runtime's delete.
        if (!Directory.Exists(HostDelegated)) return;
        foreach (var child in Directory.GetDirectories(HostDelegated))
        {
            foreach (var pid in File.ReadAllLines(Path.Combine(child, "cgroup.procs")))
                try { Process.GetProcessById(int.Parse(pid)).Kill(); } catch (Exception) { }
            for (var i = 0; i < 50 && File.ReadAllText(Path.Combine(child, "cgroup.procs")).Length > 0; i++) Thread.Sleep(20);
            Directory.Delete(child);
        }
        Directory.Delete(HostDelegated);
    }
}
