namespace Berth.Runtime.Tests.Security;

/// <summary>
/// CVE-2024-21626: runc leaked an fd of the host's /sys/fs/cgroup into the init, and a
/// process.cwd of /proc/self/fd/N made the container's working directory a host directory
/// (`cd ../../..` then reached the host's /). Only 0/1/2 and --preserve-fds may reach the
/// container, and the cwd must be inside the container's root whatever fds the init holds.
/// </summary>
public sealed class FdLeakAndCwdTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    string HostSecretDir()
    {
        var dir = _h.NewDir("host-secret");
        File.WriteAllText(Path.Combine(dir, "HOST_SECRET_FILE"), "secret");
        return dir;
    }

    /// <summary>fds the caller of berth-runtime left open (not CLOEXEC, no --preserve-fds) stay out, directories included.</summary>
    [IntegrationFact]
    public void Fds_inherited_from_the_caller_do_not_reach_the_container()
    {
        var secret = HostSecretDir();
        // ls is a child of PID 1 (no pipe in the shell, whose pipe fds would show up): it lists PID 1's fds.
        var bundle = _h.NewBundle().Script("ls /proc/1/fd; true").Save();
        var result = _h.Runtime(["run", "--bundle", bundle.Dir, _h.NewId("fds")],
            redirections: $"5<'{secret}' 7<'{secret}' 9<'{Path.Combine(secret, "HOST_SECRET_FILE")}'").ShouldSucceed();
        Assert.Equal("0\n1\n2\n", result.Stdout);
    }

    /// <summary>
    /// The exploit of CVE-2024-21626 with an fd the caller leaked: fd 7 is a host directory,
    /// process.cwd is /proc/self/fd/7. Create must fail, or the container's cwd must be inside its
    /// root (the host's directory must not be listable, `..` must not reach the host's /).
    /// runc closes it with verifyCwd (getcwd must not report an unreachable path) after chdir.
    /// </summary>
    [IntegrationFact]
    public void A_cwd_through_a_leaked_directory_fd_does_not_reach_the_host()
    {
        var secret = HostSecretDir();
        foreach (var cwd in new[] { "/proc/self/fd/7", "/proc/self/fd/7/..", "/proc/thread-self/fd/7" })
        {
            var bundle = _h.NewBundle().Script("echo cwd=$(pwd); ls -a; echo ---; ls -a ../../../..; readlink /proc/self/cwd");
            bundle.Process.Cwd = cwd;
            bundle.Save();
            var result = _h.Runtime(["run", "--bundle", bundle.Dir, _h.NewId("cwdfd")], redirections: $"7<'{secret}'");
            if (result.Code != 0)
            {
                Assert.Contains("berth-runtime:", result.Stderr); // a clear refusal is fine
                continue;
            }
            Assert.False(result.Stdout.Contains("HOST_SECRET_FILE", StringComparison.Ordinal),
                $"process.cwd {cwd} with a leaked host directory fd 7 put the container's cwd on the host (CVE-2024-21626):\n{result}");
            var hostRoot = Directory.EnumerateFileSystemEntries("/").Select(Path.GetFileName).Where(n => n is "boot" or "home" or "srv" or "media").ToList();
            foreach (var name in hostRoot)
                Assert.False(result.Stdout.Split('\n').Contains(name!), $"`ls ../../../..` from cwd {cwd} listed the host's /:\n{result}");
        }
    }

    /// <summary>Without any leaked fd: whatever fd numbers the init holds during setup, none is a directory of the host.</summary>
    [IntegrationFact]
    public void A_cwd_of_any_proc_self_fd_path_never_lands_outside_the_root()
    {
        var failures = new List<string>();
        for (var fd = 3; fd <= 24; fd++)
        {
            var bundle = _h.NewBundle("sleep", "30");
            bundle.Process.Cwd = $"/proc/self/fd/{fd}";
            var id = _h.NewId("cwdn");
            bundle.Save();
            var created = _h.Runtime("create", "--bundle", bundle.Dir, id);
            if (created.Code != 0) continue; // ENOTDIR/ENOENT: refused
            var pid = _h.State(id).GetProperty("pid").GetInt32();
            var cwd = new FileInfo($"/proc/{pid}/cwd").LinkTarget ?? "";
            var root = new FileInfo($"/proc/{pid}/root").LinkTarget ?? "";
            if (!(cwd == root || cwd.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal)))
                failures.Add($"cwd /proc/self/fd/{fd}: the init's cwd is {cwd}, outside its root {root}");
            _h.Runtime("delete", "--force", id);
        }
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    /// <summary>--preserve-fds N passes exactly fds 3..3+N-1; a directory fd passed on purpose still leaves the cwd inside.</summary>
    [IntegrationFact]
    public void Preserve_fds_passes_exactly_the_requested_fds()
    {
        var secret = HostSecretDir();
        // ls is a child of PID 1 (no pipe in the shell, whose pipe fds would show up): it lists PID 1's fds.
        var bundle = _h.NewBundle().Script("ls /proc/1/fd; true").Save();
        var result = _h.Runtime(["run", "--preserve-fds", "1", "--bundle", bundle.Dir, _h.NewId("pfd")],
            redirections: $"3<'{secret}' 4<'{secret}' 8<'{secret}'").ShouldSucceed();
        Assert.Equal("0\n1\n2\n3\n", result.Stdout);
    }
}
