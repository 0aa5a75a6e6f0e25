using Berth.Oci;

namespace Berth.Runtime.Tests.Integration;

/// <summary>process: args, env, cwd, user, groups, umask, rlimits, capabilities, noNewPrivileges, oomScoreAdj, fds.</summary>
public sealed class ProcessTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    static string Field(string status, string name) =>
        status.Split('\n').Single(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..].Trim();

    [IntegrationFact]
    public void Args_env_and_cwd_are_exactly_as_configured()
    {
        var bundle = _h.NewBundle("sh", "-c", "echo \"$0|$1|$2\"; pwd; env | sort", "arg zero", "two words", "*");
        bundle.Process.Env = ["PATH=/bin", "ONE=1", "SPACED=a b"];
        bundle.Process.Cwd = "/work/dir";
        var output = _h.Run(bundle.Writable()).ShouldSucceed().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("arg zero|two words|*", output[0]);
        Assert.Equal("/work/dir", output[1]); // created when missing, as runc does
        Assert.Contains("ONE=1", output);
        Assert.Contains("SPACED=a b", output);
        Assert.DoesNotContain(output, l => l.StartsWith("BT_OUT=", StringComparison.Ordinal)); // nothing of the runtime's environment
    }

    [IntegrationFact]
    public void Uid_gid_additional_gids_and_umask_apply()
    {
        var output = _h.RunScript("id -u; id -g; id -G; umask; touch /tmp/f && stat -c '%a %u:%g' /tmp/f; echo x > /root/denied 2>/dev/null || echo denied",
            b =>
            {
                b.Writable();
                b.Process.User = new User { Uid = 1234, Gid = 567, AdditionalGids = [10, 20], Umask = 0x3f }; // 077
                File.SetUnixFileMode(Path.Combine(b.Rootfs, "tmp"), (UnixFileMode)0x3ff); // 1777
                File.SetUnixFileMode(Path.Combine(b.Rootfs, "root"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            });
        var lines = output.Split('\n');
        Assert.Equal("1234", lines[0]);
        Assert.Equal("567", lines[1]);
        Assert.Equal(["10", "20", "567"], lines[2].Split(' ').Order());
        Assert.Equal("0077", lines[3]);
        Assert.Equal("600 1234:567", lines[4]);
        Assert.Equal("denied", lines[5]);
    }

    [IntegrationFact]
    public void Rlimits_are_set()
    {
        var output = _h.RunScript("ulimit -n; ulimit -Hn; ulimit -c",
            b => b.Process.Rlimits = [new PosixRlimit { Type = "RLIMIT_NOFILE", Soft = 321, Hard = 654 }, new PosixRlimit { Type = "RLIMIT_CORE", Soft = 0, Hard = 0 }]);
        Assert.Equal("321\n654\n0\n", output);
    }

    [IntegrationFact]
    public void Capabilities_inside_are_the_configured_sets()
    {
        var caps = new LinuxCapabilities
        {
            Bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"],
            Effective = ["CAP_CHOWN", "CAP_KILL"],
            Permitted = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            Inheritable = ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            Ambient = ["CAP_KILL"],
        };
        // The shell's own status (not a child's: exec changes the sets).
        var status = _h.RunScript("cat /proc/$$/status", b => b.Process.Capabilities = caps);
        Assert.Equal(Capabilities.ToMask(caps.Bounding), Convert.ToUInt64(Field(status, "CapBnd"), 16));
        Assert.Equal(Capabilities.ToMask(caps.Inheritable), Convert.ToUInt64(Field(status, "CapInh"), 16));
        Assert.Equal(Capabilities.ToMask(caps.Ambient), Convert.ToUInt64(Field(status, "CapAmb"), 16));
        // Root execs: the kernel makes permitted = effective = (inheritable ∩ … ) ∪ ambient … for uid 0 with
        // no file caps, permitted becomes the bounding set ∩ (permitted ∪ inheritable). runc shows the same.
        var permitted = Convert.ToUInt64(Field(status, "CapPrm"), 16);
        Assert.True((permitted & ~Capabilities.ToMask(caps.Bounding)) == 0, $"CapPrm {permitted:x} has caps outside the bounding set");
    }

    [IntegrationFact]
    public void Capabilities_of_a_non_root_user_are_exactly_the_configured_sets()
    {
        var caps = new LinuxCapabilities
        {
            Bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            Effective = ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            Permitted = ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            Inheritable = ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            Ambient = ["CAP_NET_BIND_SERVICE"],
        };
        var status = _h.RunScript("cat /proc/$$/status", b =>
        {
            b.Process.Capabilities = caps;
            b.Process.User = new User { Uid = 1000, Gid = 1000 };
        });
        // A non-root exec keeps only the ambient set in permitted/effective.
        Assert.Equal(Capabilities.ToMask(caps.Bounding), Convert.ToUInt64(Field(status, "CapBnd"), 16));
        Assert.Equal(Capabilities.ToMask(caps.Inheritable), Convert.ToUInt64(Field(status, "CapInh"), 16));
        Assert.Equal(Capabilities.ToMask(caps.Ambient), Convert.ToUInt64(Field(status, "CapAmb"), 16));
        Assert.Equal(Capabilities.ToMask(caps.Ambient), Convert.ToUInt64(Field(status, "CapPrm"), 16));
        Assert.Equal(Capabilities.ToMask(caps.Ambient), Convert.ToUInt64(Field(status, "CapEff"), 16));
        Assert.Equal("1000", Field(status, "Uid").Split('\t')[0]);
    }

    [IntegrationFact]
    public void No_new_privileges_and_oom_score_adj()
    {
        var status = _h.RunScript("grep NoNewPrivs /proc/$$/status; cat /proc/$$/oom_score_adj", b =>
        {
            b.Process.NoNewPrivileges = true;
            b.Process.OomScoreAdj = 321;
        });
        Assert.Equal("NoNewPrivs:\t1\n321\n", status);
        var off = _h.RunScript("grep NoNewPrivs /proc/$$/status", b => b.Process.NoNewPrivileges = false);
        Assert.Equal("NoNewPrivs:\t0\n", off);
    }

    [IntegrationFact]
    public void No_fd_of_the_runtime_leaks_into_the_container()
    {
        // ls itself, exec'd by the shell, lists its own fds: 0-2 and the directory it reads (3). A
        // shell would not do: busybox sh holds pipe fds while it builds a pipeline and keeps a copy
        // of stdout (fd 10) around an in-process applet with a redirection.
        var output = _h.RunScript("exec ls -1 /proc/self/fd");
        Assert.Equal("0 1 2 3", string.Join(' ', output.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [IntegrationFact]
    public void Preserve_fds_passes_the_extra_fds_and_no_others()
    {
        var file3 = _h.NewPath("fd3");
        var file4 = _h.NewPath("fd4");
        File.WriteAllText(file3, "three");
        File.WriteAllText(file4, "four");
        var bundle = _h.NewBundle().Script("cat <&3; echo; cat <&4; echo; exec ls -1 /proc/self/fd").Save();
        var result = _h.Runtime(["run", "--preserve-fds", "2", "--bundle", bundle.Dir, _h.NewId("fds")],
            redirections: $"3<'{file3}' 4<'{file4}' 5<'{file4}'").ShouldSucceed();
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("three", lines[0]);
        Assert.Equal("four", lines[1]);
        // 3 and 4 passed on, 5 not; ls's own directory fd comes next, at 5.
        Assert.Equal("0 1 2 3 4 5", string.Join(' ', lines[2..]));
    }

    [IntegrationFact]
    public void Stdio_is_given_to_a_non_root_user_who_can_open_it_again()
    {
        // As runc's fixStdioPermissions: the runtime's stdout and stderr (files owned by root here, an
        // engine's pipes in real use) are chowned to the container's uid, so that /dev/stdout opens.
        // stdin, the host's /dev/null opened read-only, is reopened on the container's /dev/null
        // read-write (runc's reOpenDevNull), and /dev/null itself is not given away.
        // (The script's stdout is reopened once, in append mode: the harness's stdout is a file, whose
        // offset a second open would not share.)
        var bundle = _h.NewBundle().Script(
            "exec >> /dev/stdout && echo out && echo err >> /proc/self/fd/2; echo in >&0 && echo stdin-writable; stat -c %u /dev/null; id -u");
        bundle.Process.User = new User { Uid = 1000, Gid = 1000 };
        var result = _h.Run(bundle).ShouldSucceed();
        Assert.Equal("out\nstdin-writable\n0\n1000\n", result.Stdout);
        Assert.Equal("err\n", result.Stderr);
        Assert.Equal("1000", TestEnvironment.Sh($"stat -c %u '{result.StdoutFile}'").Output.Trim());
    }

    [IntegrationFact]
    public void Home_comes_from_etc_passwd_when_the_env_has_none()
    {
        string Home(uint uid, params string[] env)
        {
            var bundle = _h.NewBundle().Script("echo \"[$HOME]\"");
            File.WriteAllText(Path.Combine(bundle.Rootfs, "etc/passwd"),
                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
            bundle.Process.Env = ["PATH=/bin", .. env];
            bundle.Process.User = new User { Uid = uid, Gid = uid };
            return _h.Run(bundle).ShouldSucceed().Stdout.Trim();
        }
        Assert.Equal("[/home/app]", Home(1000));
        Assert.Equal("[/root]", Home(0));
        Assert.Equal("[/]", Home(1234)); // no entry: runc's default
        Assert.Equal("[/home/app]", Home(1000, "HOME=")); // empty counts as none
        Assert.Equal("[/given]", Home(1000, "HOME=/given"));
    }

    [IntegrationFact]
    public void A_started_process_that_cannot_be_executed_says_so_on_its_stderr_and_exits_1()
    {
        // It passes create's check (it exists and is executable) but execve refuses it: as with
        // runc, the message goes to the container's stderr ("exec /app: exec format error").
        var bundle = _h.NewBundle("/bin/app");
        File.WriteAllBytes(Path.Combine(bundle.Rootfs, "bin/app"), [0x7f, (byte)'E', (byte)'L', (byte)'F', 1, 2, 3]);
        File.SetUnixFileMode(Path.Combine(bundle.Rootfs, "bin/app"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var result = _h.Run(bundle);
        Assert.Equal(1, result.Code);
        Assert.Equal("exec /bin/app: exec format error\n", result.Stderr);
    }
}
