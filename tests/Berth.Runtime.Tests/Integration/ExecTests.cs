namespace Berth.Runtime.Tests.Integration;

/// <summary>exec: a new process in every namespace and the cgroup of a running container.</summary>
public sealed class ExecTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    static readonly string[] Namespaces = ["mnt", "pid", "net", "ipc", "uts", "cgroup"];

    (string Id, int InitPid) Running(string name, Action<Bundle>? configure = null)
    {
        var bundle = _h.NewBundle("sleep", "1000");
        configure?.Invoke(bundle);
        var id = _h.NewId(name);
        _h.CreateAndStart(id, bundle);
        return (id, _h.State(id).GetProperty("pid").GetInt32());
    }

    [IntegrationFact]
    public void The_process_joins_every_namespace_of_the_init_and_sees_it_as_pid_1()
    {
        var (id, init) = Running("ns");
        var script = string.Concat(Namespaces.Select(n => $"echo {n}=$(readlink /proc/self/ns/{n}); ")) + "echo self=$$; echo cg=$(grep -E ':memory:|^0::' /proc/self/cgroup | grep -m1 -E ':memory:|^0::'); ps";
        var result = _h.Runtime("exec", id, "sh", "-c", script).ShouldSucceed();
        var lines = result.Stdout.Split('\n');
        foreach (var ns in Namespaces)
        {
            var host = new FileInfo($"/proc/{init}/ns/{ns}").LinkTarget;
            Assert.Contains($"{ns}={host}", lines);
        }
        var self = int.Parse(lines.Single(l => l.StartsWith("self=", StringComparison.Ordinal))[5..]);
        Assert.InRange(self, 2, 20); // a small pid in the container's pid namespace
        // ps inside: PID 1 is the init, the exec'd shell is next to it.
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s*1\s+\S+\s+.*sleep 1000"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, $@"^\s*{self}\s"));
        // The init's cgroup, as the container sees it.
        var initCgroups = File.ReadAllLines($"/proc/{init}/cgroup");
        var initMemory = initCgroups.FirstOrDefault(l => l.Contains(":memory:")) ?? initCgroups.First(l => l.StartsWith("0::", StringComparison.Ordinal));
        Assert.Contains($"cg={initMemory}", lines);
    }

    [IntegrationFact]
    public void The_exit_code_comes_back_and_a_signal_gives_128_plus_its_number()
    {
        var (id, _) = Running("code");
        Assert.Equal(7, _h.Runtime("exec", id, "sh", "-c", "exit 7").Code);
        Assert.Equal(137, _h.Runtime("exec", id, "sh", "-c", "kill -9 $$").Code);
        Assert.Equal(0, _h.Runtime("exec", id, "true").Code);
    }

    [IntegrationFact]
    public void Env_user_and_cwd_flags_apply()
    {
        var (id, _) = Running("flags");
        var result = _h.Runtime("exec", "-e", "FOO=bar", "--env", "BAZ=qux", "-u", "1000:1001", "--cwd", "/tmp", id,
            "sh", "-c", "echo $FOO $BAZ $(id -u) $(id -g) $(pwd)").ShouldSucceed();
        Assert.Equal("bar qux 1000 1001 /tmp", result.Stdout.Trim());
        // Without flags: the container's process settings (root, cwd /, its PATH).
        var plain = _h.Runtime("exec", id, "sh", "-c", "echo $(id -u) $(pwd) $PATH").ShouldSucceed();
        Assert.StartsWith("0 / /usr/local/sbin", plain.Stdout.Trim());
    }

    [IntegrationFact]
    public void Home_and_stdio_of_a_non_root_user_as_runc_sets_them()
    {
        var (id, _) = Running("home", b => File.AppendAllText(Path.Combine(b.Rootfs, "etc/passwd"), "app:x:1000:1000::/home/app:/bin/sh\n"));
        // No HOME in the container's env: the user's home from the container's /etc/passwd; and
        // the runtime's stdout is the user's, so that /dev/stdout opens.
        var result = _h.Runtime("exec", "-u", "1000:1000", id, "sh", "-c", "echo $HOME > /dev/stdout").ShouldSucceed();
        Assert.Equal("/home/app", result.Stdout.Trim());
        Assert.Equal("/", _h.Runtime("exec", "-u", "1234:1234", id, "sh", "-c", "echo $HOME").ShouldSucceed().Stdout.Trim());
        Assert.Equal("/set", _h.Runtime("exec", "-e", "HOME=/set", "-u", "1000:1000", id, "sh", "-c", "echo $HOME").ShouldSucceed().Stdout.Trim());
    }

    [IntegrationFact]
    public void An_exec_whose_execve_fails_exits_1_with_runcs_message_from_the_process()
    {
        var (id, _) = Running("badexec", b =>
        {
            File.WriteAllBytes(Path.Combine(b.Rootfs, "bin/app"), [0x7f, (byte)'E', (byte)'L', (byte)'F', 1, 2, 3]);
            File.SetUnixFileMode(Path.Combine(b.Rootfs, "bin/app"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        });
        var result = _h.Runtime("exec", id, "/bin/app");
        Assert.Equal(1, result.Code);
        Assert.Equal("exec /bin/app: exec format error\n", result.Stderr);
    }

    [IntegrationFact]
    public void An_unknown_capability_is_refused_in_words()
    {
        var (id, _) = Running("badcap");
        var result = _h.Runtime("exec", "--cap", "CAP_BOGUS", id, "true").ShouldFail();
        Assert.Equal("berth-runtime: exec failed: process.capabilities.bounding: unknown capability \"CAP_BOGUS\"\n", result.Stderr);
    }

    [IntegrationFact]
    public void A_process_json_replaces_the_process_section()
    {
        var (id, _) = Running("procjson");
        var file = _h.NewPath("process.json");
        File.WriteAllText(file, """{"args":["sh","-c","echo $X $(id -u)"],"env":["X=fromjson","PATH=/bin"],"cwd":"/","user":{"uid":5,"gid":5}}""");
        var result = _h.Runtime("exec", "--process", file, id).ShouldSucceed();
        Assert.Equal("fromjson 5", result.Stdout.Trim());
    }

    [IntegrationFact]
    public void Detached_exec_returns_at_once_and_writes_the_pid_file()
    {
        var (id, _) = Running("detach");
        var pidFile = _h.NewPath("exec.pid");
        _h.Runtime("exec", "-d", "--pid-file", pidFile, id, "sleep", "500").ShouldSucceed();
        var pid = int.Parse(File.ReadAllText(pidFile));
        Assert.Contains("sleep", File.ReadAllText($"/proc/{pid}/cmdline"));
        Assert.Contains($"berth/{id}", File.ReadAllText($"/proc/{pid}/cgroup"));
        Assert.Contains(pid, _h.Runtime("ps", "--format", "json", id).ShouldSucceed().Stdout.Trim('[', ']', '\n').Split(',').Select(int.Parse));
    }

    [IntegrationFact]
    public void Exec_into_a_stopped_container_and_of_a_missing_command_fail_as_runc()
    {
        var bundle = _h.NewBundle("true");
        var id = _h.NewId("stopped");
        _h.CreateAndStart(id, bundle);
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the container stopped");
        var stopped = _h.Runtime("exec", id, "true").ShouldFail();
        Assert.Contains("stopped", stopped.Stderr);

        var (running, _) = Running("missing");
        var missing = _h.Runtime("exec", running, "no-such-command");
        Assert.Equal(255, missing.Code);
        Assert.Contains("executable file not found in $PATH", missing.Stderr);
        _h.Runtime("exec", "no-such-container", "true").ShouldFail();
    }

    [IntegrationFact]
    public void The_containers_seccomp_filter_applies_to_the_exec_process()
    {
        var (id, _) = Running("seccomp", b => b.Linux.Seccomp = new Berth.Oci.LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Syscalls = [new Berth.Oci.LinuxSyscall { Names = ["mkdir", "mkdirat"], Action = "SCMP_ACT_ERRNO", ErrnoRet = 1 }],
        });
        var result = _h.Runtime("exec", id, "sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?");
        Assert.Contains("Operation not permitted", result.Stdout);
    }
}
