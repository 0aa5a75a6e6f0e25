using System.Text;
using System.Text.Json;

namespace Berth.Cli.Tests;

/// <summary>
/// The container commands end to end: the real binary against a daemon of its own (berthd, or
/// dockerd with <c>BERTH_CLI_TEST_DAEMON=dockerd</c>), a busybox image made by <c>berth import</c>.
/// Every test removes its containers (BerthCli.Dispose does, even when an assertion failed).
/// </summary>
public sealed class ContainerTests
{
    private static BerthCli WithBusybox()
    {
        var cli = new BerthCli();
        try
        {
            cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "containers"), "busybox:latest");
            return cli;
        }
        catch
        {
            cli.Dispose();
            throw;
        }
    }

    private static void AssertExit(CliResult r, int code)
        => Assert.True(r.ExitCode == code, $"expected exit {code}: {r}");

    [Fact]
    public void RunOutputAndExitCodes()
    {
        using BerthCli cli = WithBusybox();
        CliResult hello = cli.Run("run", "--rm", "busybox", "echo", "hello", "-n");
        AssertExit(hello, 0);
        Assert.Equal("hello -n\n", hello.Stdout);

        CliResult both = cli.Run("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3");
        AssertExit(both, 3);
        Assert.Equal("out\n", both.Stdout);
        Assert.Equal("err\n", both.Errors);

        CliResult notFound = cli.Run("run", "--rm", "busybox", "/no/such/binary");
        AssertExit(notFound, 127);
        Assert.Contains("berth: Error response from daemon:", notFound.Stderr);
        Assert.Contains("See 'berth run --help'.", notFound.Stderr);

        CliResult notExecutable = cli.Run("run", "--rm", "busybox", "/etc/berth-test");
        AssertExit(notExecutable, 126);

        CliResult noImage = cli.Run("run", "--rm", "127.0.0.1:1/nosuch/image:1", "true");
        AssertExit(noImage, 125);
        Assert.Contains("Unable to find image '127.0.0.1:1/nosuch/image:1' locally", noImage.Stderr);

        CliResult badMemory = cli.Run("run", "--rm", "--memory", "lots", "busybox", "true");
        AssertExit(badMemory, 125);

        // --rm: nothing is left behind, whatever the exit code.
        Assert.Equal("", cli.Ok("ps", "-aq"));
    }

    [Fact]
    public void RunAppliesConfigurationFlags()
    {
        using BerthCli cli = WithBusybox();
        string envFile = Path.Combine(cli.Work, "env.list");
        File.WriteAllText(envFile, "# comment\nFROM_FILE=yes\n");
        CliResult r = cli.Run("run", "--rm", "-e", "A=1", "--env-file", envFile, "-w", "/tmp", "-u", "1000:1000", "--hostname", "boxhost",
            "--entrypoint", "/bin/sh", "busybox", "-c", "echo $A $FROM_FILE; pwd; id -u; id -g; hostname");
        AssertExit(r, 0);
        Assert.Equal("1 yes\n/tmp\n1000\n1000\nboxhost\n", r.Stdout);

        CliResult ro = cli.Run("run", "--rm", "--read-only", "busybox", "sh", "-c", "echo x > /file");
        Assert.NotEqual(0, ro.ExitCode);
        Assert.Contains("Read-only file system", ro.Stderr);

        string id = cli.Ok("create", "--name", "limits", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50", "--init",
            "--cap-drop", "NET_RAW", "--cap-add", "SYS_TIME", "--ulimit", "nofile=512:1024", "--tmpfs", "/scratch:size=1m",
            "-l", "team=berth", "--restart", "on-failure:2", "--stop-signal", "SIGUSR1", "--stop-timeout", "7", "-v", "/tmp:/host-tmp:ro",
            "busybox", "true").Trim();
        Assert.Matches("^[0-9a-f]{64}$", id);
        string inspect = cli.Ok("inspect", "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.Init}} {{json .HostConfig.CapDrop}} {{json .HostConfig.CapAdd}} {{json .HostConfig.Ulimits}} {{json .HostConfig.Tmpfs}} {{.Config.Labels.team}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.Config.StopSignal}} {{.Config.StopTimeout}} {{json .HostConfig.Binds}}",
            "limits");
        Assert.Equal("67108864 500000000 50 true [\"NET_RAW\"] [\"SYS_TIME\"] [{\"Hard\":1024,\"Name\":\"nofile\",\"Soft\":512}] {\"/scratch\":\"size=1m\"} berth on-failure 2 SIGUSR1 7 [\"/tmp:/host-tmp:ro\"]\n", inspect);

        // update: what is given changes, the rest stays; no flag at all is docker's usage error. The
        // names come first, then the daemon's warnings (dockerd's "IPv4 forwarding is disabled…" here).
        Assert.StartsWith("limits\n", cli.Ok("update", "--memory", "96m", "--cpus", "1.5", "--restart", "always", "limits"));
        Assert.Equal("100663296 1500000000 50 always\n",
            cli.Ok("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}", "limits"));
        if (File.Exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"))
        {
            // Real-time values: recorded (a container that is not running gets them at its next
            // start); berthd refuses a runtime above the period it would have (dockerd takes it).
            Assert.StartsWith("limits\n", cli.Ok("update", "--cpu-rt-period", "100000", "--cpu-rt-runtime", "1000", "limits"));
            Assert.Equal("100000 1000\n", cli.Ok("inspect", "-f", "{{.HostConfig.CpuRealtimePeriod}} {{.HostConfig.CpuRealtimeRuntime}}", "limits"));
            if (BerthCli.Daemon == DaemonKind.Berthd)
            {
                CliResult above = cli.Run("update", "--cpu-rt-runtime", "200000", "limits");
                Assert.True(above.ExitCode == 1, above.ToString());
                Assert.Contains("cpu real-time runtime cannot be higher than cpu real-time period", above.Stderr);
            }
        }
        CliResult none = cli.Run("update", "limits");
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("you must provide one or more flags when using this command", none.Stderr);
        CliResult missing = cli.Run("update", "--memory", "96m", "limits", "nosuch");
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("limits\n", missing.Stdout);
        Assert.Contains("No such container: nosuch", missing.Stderr);
    }

    /// <summary><c>--security-opt seccomp=PATH</c> sends the file's profile; a missing or broken file is docker's error.</summary>
    [Fact]
    public void SeccompProfileFromAFile()
    {
        using BerthCli cli = WithBusybox();
        string profile = Path.Combine(cli.Work, "profile.json");
        File.WriteAllText(profile, """{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }] }""");
        CliResult denied = cli.Run("run", "--rm", "--security-opt", "seccomp=" + profile, "busybox", "sh", "-c", "mkdir /made; echo $?");
        AssertExit(denied, 0);
        Assert.Equal("1\n", denied.Stdout);
        Assert.Contains("Operation not permitted", denied.Stderr);

        string missing = Path.Combine(cli.Work, "missing.json");
        CliResult gone = cli.Run("run", "--rm", "--security-opt", "seccomp=" + missing, "busybox", "true");
        AssertExit(gone, 125);
        Assert.Contains($"opening seccomp profile ({missing}) failed: open {missing}: no such file or directory", gone.Stderr);
        File.WriteAllText(profile, "{ not json");
        CliResult broken = cli.Run("run", "--rm", "--security-opt", "seccomp=" + profile, "busybox", "true");
        AssertExit(broken, 125);
        Assert.Contains($"compacting json for seccomp profile ({profile}) failed", broken.Stderr);
    }

    [Fact]
    public void DetachedLogsStopRm()
    {
        using BerthCli cli = WithBusybox();
        string id = cli.Ok("run", "-d", "--name", "ticker", "busybox", "sh", "-c", "echo first; echo to-stderr >&2; while true; do echo tick; sleep 0.2; done").Trim();
        Assert.Matches("^[0-9a-f]{64}$", id);
        string logs = "";
        for (int i = 0; i < 50 && !logs.Contains("tick"); i++)
        {
            Thread.Sleep(100);
            logs = cli.Ok("logs", "ticker");
        }
        Assert.StartsWith("first\n", logs);
        CliResult split = cli.Run("logs", "ticker");
        Assert.Contains("to-stderr", split.Stderr);
        Assert.DoesNotContain("to-stderr", split.Stdout);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z first\n", cli.Ok("logs", "-t", "ticker"));
        Assert.Equal("", cli.Ok("logs", "--since", "2099-01-01T00:00:00Z", "ticker"));

        Assert.Contains("ticker", cli.Ok("ps", "--format", "{{.Names}}"));
        Assert.Equal("ticker\n", cli.Ok("stop", "-t", "1", "ticker"));
        Assert.Equal("", cli.Ok("ps", "-q"));
        Assert.Equal("tick\n", cli.Ok("logs", "--tail", "1", "ticker"));
        Assert.Matches(@"^ticker Exited \(\d+\)", cli.Ok("ps", "-a", "--format", "{{.Names}} {{.Status}}"));
        Assert.Equal("exited\n", cli.Ok("inspect", "-f", "{{.State.Status}}", "ticker"));
        Assert.Equal("ticker\n", cli.Ok("rm", "ticker"));
        Assert.Equal("", cli.Ok("ps", "-aq"));

        CliResult gone = cli.Run("logs", "ticker");
        AssertExit(gone, 1);
        Assert.Contains("Error response from daemon: No such container: ticker", gone.Stderr);
    }

    /// <summary><c>--log-driver none</c>: output still reaches an attached client; nothing is kept, and logs says so.</summary>
    [Fact]
    public void NoneLogDriver()
    {
        using BerthCli cli = WithBusybox();
        CliResult attached = cli.Run("run", "--rm", "--log-driver", "none", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2");
        AssertExit(attached, 0);
        Assert.Equal("out\n", attached.Stdout);
        Assert.Equal("err\n", attached.Stderr);

        string id = cli.Ok("run", "-d", "--log-driver", "none", "busybox", "echo", "kept nowhere").Trim();
        cli.Ok("wait", id);
        CliResult logs = cli.Run("logs", id);
        AssertExit(logs, 1);
        Assert.Contains("configured logging driver does not support reading", logs.Stderr);
        Assert.Equal("none \n", cli.Ok("inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{.LogPath}}", id));

        // As dockerd: options mean nothing to "none" and are not checked; another driver is refused by name.
        cli.Ok("create", "--log-driver", "none", "--log-opt", "max-size=1m", "busybox", "true");
        if (BerthCli.Daemon == DaemonKind.Berthd)
        {
            CliResult splunk = cli.Run("create", "--log-driver", "splunk", "busybox", "true");
            AssertExit(splunk, 125);
            Assert.Contains("the `splunk` logging driver (json-file, local, syslog, gelf, fluentd, journald and none are served)", splunk.Stderr);
        }
    }

    /// <summary><c>--log-driver local</c> with its options through berth's own CLI: logs, --tail and -t read it; dockerd's
    /// error for an option the driver does not have.</summary>
    [Fact]
    public void LocalLogDriver()
    {
        using BerthCli cli = WithBusybox();
        string id = cli.Ok("run", "-d", "--log-driver", "local", "--log-opt", "max-size=1m", "--log-opt", "max-file=2", "--network", "none",
            "busybox", "sh", "-c", "echo one; echo two; echo three >&2").Trim();
        cli.Ok("wait", id);
        CliResult logs = cli.Run("logs", id);
        AssertExit(logs, 0);
        Assert.Equal(("one\ntwo\n", "three\n"), (logs.Stdout, logs.Stderr));
        CliResult tail = cli.Run("logs", "--tail", "2", "-t", id);
        AssertExit(tail, 0);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z two\n$", tail.Stdout);
        Assert.Equal("local 1m 2\n", cli.Ok("inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}} {{index .HostConfig.LogConfig.Config \"max-file\"}}", id));

        CliResult bad = cli.Run("create", "--log-driver", "local", "--log-opt", "foo=bar", "busybox", "true");
        AssertExit(bad, 125);
        Assert.Contains("unknown log opt 'foo' for log driver local", bad.Stderr);
    }

    [Fact]
    public void LogsFollowEndsWhenTheContainerExits()
    {
        using BerthCli cli = WithBusybox();
        cli.Ok("run", "-d", "--name", "short", "busybox", "sh", "-c", "echo one; sleep 1; echo two");
        CliResult follow = cli.Run("logs", "-f", "short");
        AssertExit(follow, 0);
        Assert.Equal("one\ntwo\n", follow.Stdout);
        Assert.Equal("0\n", cli.Ok("wait", "short"));
    }

    [Fact]
    public void RunForwardsSignalsToTheContainer()
    {
        using BerthCli cli = WithBusybox();
        var start = new System.Diagnostics.ProcessStartInfo(BerthCli.Binary)
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        foreach (string a in new[] { "run", "--rm", "busybox", "sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done" })
            start.ArgumentList.Add(a);
        cli.Configure(start);
        using var process = System.Diagnostics.Process.Start(start)!;
        try
        {
            Assert.Equal("ready", process.StandardOutput.ReadLine());
            BerthCli.RunProcess(new System.Diagnostics.ProcessStartInfo("kill", ["-TERM", process.Id.ToString()]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true });
            Assert.True(process.WaitForExit(20_000), "berth run did not end after SIGTERM");
            Assert.Equal("got TERM\n", process.StandardOutput.ReadToEnd());
            Assert.Equal(3, process.ExitCode);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(5000);
            }
        }
    }

    [Fact]
    public void InteractiveStdinPiped()
    {
        using BerthCli cli = WithBusybox();
        CliResult cat = cli.RunWith("line one\nline two\n"u8.ToArray(), "run", "--rm", "-i", "busybox", "cat");
        AssertExit(cat, 0);
        Assert.Equal("line one\nline two\n", cat.Stdout);

        byte[] big = new byte[1 << 20];
        new Random(7).NextBytes(big);
        CliResult count = cli.RunWith(big, "run", "--rm", "-i", "busybox", "wc", "-c");
        AssertExit(count, 0);
        Assert.Equal((1 << 20).ToString(), count.Stdout.Trim());

        // Without -i the container's stdin is closed, whatever berth's stdin holds.
        CliResult closed = cli.RunWith("ignored\n"u8.ToArray(), "run", "--rm", "busybox", "cat");
        AssertExit(closed, 0);
        Assert.Equal("", closed.Stdout);
    }

    [Fact]
    public void Exec()
    {
        using BerthCli cli = WithBusybox();
        cli.Ok("run", "-d", "--name", "box", "-e", "FROM_RUN=1", "busybox", "sleep", "60");
        CliResult echo = cli.Run("exec", "box", "echo", "in", "-n");
        AssertExit(echo, 0);
        Assert.Equal("in -n\n", echo.Stdout);
        AssertExit(cli.Run("exec", "box", "sh", "-c", "exit 5"), 5);
        Assert.Equal("x y\n", cli.RunWith("x y\n"u8.ToArray(), "exec", "-i", "box", "cat").Stdout);
        Assert.Equal("bar 1\n/tmp\n1000\n", cli.Ok("exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000", "box", "sh", "-c", "echo $FOO $FROM_RUN; pwd; id -u"));
        CliResult err = cli.Run("exec", "box", "sh", "-c", "echo oops >&2");
        Assert.Equal("oops\n", err.Errors);
        Assert.Equal("", err.Stdout);
        // The exec's exit code as the daemon records it: 126 (dockerd 20.10 with runc 1.1) or 127.
        Assert.Contains(cli.Run("exec", "box", "/no/such/binary").ExitCode, new[] { 126, 127 });
        Assert.Equal("", cli.Ok("exec", "-d", "box", "sh", "-c", "echo detached > /tmp/marker"));
        string marker = "";
        for (int i = 0; i < 50 && marker != "detached\n"; i++)
        {
            Thread.Sleep(100);
            marker = cli.Run("exec", "box", "cat", "/tmp/marker").Stdout;
        }
        Assert.Equal("detached\n", marker);

        cli.Ok("stop", "-t", "0", "box");
        CliResult stopped = cli.Run("exec", "box", "true");
        Assert.NotEqual(0, stopped.ExitCode);
        Assert.Contains("is not running", stopped.Stderr);
        cli.Ok("rm", "box");
    }

    [Fact]
    public void PsFormatsAndFilters()
    {
        using BerthCli cli = WithBusybox();
        string a = cli.Ok("run", "-d", "--name", "alpha", "-l", "role=web", "busybox", "sleep", "60").Trim();
        string b = cli.Ok("create", "--name", "beta", "busybox", "true").Trim();

        string table = cli.Ok("ps");
        string[] lines = table.TrimEnd('\n').Split('\n');
        Assert.Matches(@"^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$", lines[0]);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith(a[..12] + "   busybox   \"sleep 60\"", lines[1]);
        Assert.EndsWith("alpha", lines[1]);

        Assert.Equal($"{a[..12]}\n", cli.Ok("ps", "-q"));
        Assert.Equal(new[] { a, b }.Order().ToArray(), cli.Ok("ps", "-aq", "--no-trunc").Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToArray());
        Assert.Equal("beta\n", cli.Ok("ps", "-l", "--format", "{{.Names}}"));
        Assert.Equal("beta\n", cli.Ok("ps", "-n", "1", "--format", "{{.Names}}"));
        Assert.Equal("alpha\n", cli.Ok("ps", "-a", "--filter", "label=role=web", "--format", "{{.Names}}"));
        Assert.Equal("beta\n", cli.Ok("ps", "-a", "-f", "status=created", "--format", "{{.Names}}"));
        Assert.Equal("alpha\n", cli.Ok("ps", "-a", "-f", "name=alph", "--format", "{{.Names}}"));
        Assert.Matches(@"^NAMES\s+STATUS\nalpha\s+Up ", cli.Ok("ps", "--format", "table {{.Names}}\\t{{.Status}}"));

        using JsonDocument row = JsonDocument.Parse(cli.Ok("ps", "--format", "{{json .}}"));
        Assert.Equal(a[..12], row.RootElement.GetProperty("ID").GetString());
        Assert.Equal("alpha", row.RootElement.GetProperty("Names").GetString());
        Assert.Equal("\"sleep 60\"", row.RootElement.GetProperty("Command").GetString());
        Assert.Equal("running", row.RootElement.GetProperty("State").GetString());
        Assert.Equal("role=web", row.RootElement.GetProperty("Labels").GetString());
        Assert.False(row.RootElement.TryGetProperty("Label", out _)); // a method, as in docker's context: not in its JSON
        // docker's one-argument method: a label's value, "" when the container has none.
        Assert.Equal("beta \nalpha web\n", cli.Ok("ps", "-a", "--format", "{{.Names}} {{.Label \"role\"}}"));
        Assert.Matches(@"^NAMES\s+LABEL\nalpha\s+web\n", cli.Ok("ps", "--format", "table {{.Names}}\\t{{.Label \"role\"}}"));

        CliResult bad = cli.Run("ps", "--format", "{{.Nope}}");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("Nope", bad.Stderr);
    }

    [Fact]
    public void InspectContainersAndImages()
    {
        using BerthCli cli = WithBusybox();
        string id = cli.Ok("create", "--name", "insp", "-e", "K=V", "-l", "x=<&>", "busybox", "echo", "hi").Trim();
        using (JsonDocument doc = JsonDocument.Parse(cli.Ok("inspect", "insp")))
        {
            JsonElement c = doc.RootElement[0];
            Assert.Equal(id, c.GetProperty("Id").GetString());
            Assert.Equal("/insp", c.GetProperty("Name").GetString());
            Assert.Equal("created", c.GetProperty("State").GetProperty("Status").GetString());
            Assert.Equal("echo", c.GetProperty("Path").GetString());
        }
        Assert.Contains("\\u003c\\u0026\\u003e", cli.Ok("inspect", "insp")); // Go's JSON escaping
        Assert.Equal("/insp created [echo hi]\n", cli.Ok("inspect", "-f", "{{.Name}} {{.State.Status}} {{.Config.Cmd}}", "insp"));
        Assert.Contains("\"K=V\"", cli.Ok("inspect", "--format", "{{json .Config.Env}}", "insp"));
        Assert.Equal(id + "\n", cli.Ok("container", "inspect", "-f", "{{.Id}}", id[..12]));
        Assert.Matches("^sha256:[0-9a-f]{64}\n$", cli.Ok("inspect", "-f", "{{.Id}}", "busybox"));
        Assert.Matches("^sha256:[0-9a-f]{64}\n$", cli.Ok("inspect", "--type", "image", "-f", "{{.Id}}", "busybox"));

        CliResult missing = cli.Run("inspect", "insp", "nosuch");
        AssertExit(missing, 1);
        Assert.Contains("Error: No such object: nosuch", missing.Stderr);
        using (JsonDocument partial = JsonDocument.Parse(missing.Stdout)) Assert.Equal(1, partial.RootElement.GetArrayLength());
        AssertExit(cli.Run("inspect", "--type", "container", "busybox"), 1);
    }

    [Fact]
    public void CreateStartAttachWaitRenameRm()
    {
        using BerthCli cli = WithBusybox();
        cli.Ok("create", "--name", "once", "busybox", "sh", "-c", "echo started; exit 4");
        Assert.Equal("created\n", cli.Ok("inspect", "-f", "{{.State.Status}}", "once"));
        CliResult attached = cli.Run("start", "-a", "once");
        AssertExit(attached, 4);
        Assert.Equal("started\n", attached.Stdout);
        Assert.Equal("4\n", cli.Ok("wait", "once"));
        cli.Ok("rename", "once", "twice");
        Assert.Equal("twice\n", cli.Ok("ps", "-a", "--format", "{{.Names}}"));
        Assert.Equal("twice\n", cli.Ok("start", "twice"));
        Assert.Equal("4\n", cli.Ok("wait", "twice"));
        Assert.Equal("started\nstarted\n", cli.Ok("logs", "twice"));

        cli.Ok("run", "-d", "--name", "sleeper", "busybox", "sleep", "60");
        CliResult rmRunning = cli.Run("rm", "sleeper");
        AssertExit(rmRunning, 1);
        Assert.Contains("Error response from daemon:", rmRunning.Stderr);
        Assert.Equal("sleeper\n", cli.Ok("rm", "-f", "sleeper"));
        AssertExit(cli.Run("rm", "nosuch"), 1);
    }

    [Fact]
    public void AttachToARunningContainer()
    {
        using BerthCli cli = WithBusybox();
        // Docker ends an attach when its stdin ends (unless the container is StdinOnce), so the
        // output is read with --no-stdin: what the container writes after the attach, then its status.
        // The container says "waiting" until /tmp/go exists: a "waiting" the attach receives proves it
        // is in place, and only then does an exec create the file (no fixed delay to race).
        cli.Ok("run", "-d", "-i", "--name", "reader", "busybox", "sh", "-c",
            "until cat /tmp/go >/dev/null 2>&1; do echo waiting; sleep 0.1; done; echo got hello; echo bye >&2; exit 2");
        CliResult attached = cli.RunAndThen("waiting\n", () => cli.Ok("exec", "reader", "sh", "-c", "echo > /tmp/go"), "attach", "--no-stdin", "reader");
        AssertExit(attached, 2);
        string[] lines = attached.Stdout.Split('\n');
        Assert.True(lines.Length >= 3 && lines[^2] == "got hello" && lines[^1] == "" && lines[..^2].All(l => l == "waiting"), attached.ToString());
        Assert.Equal("bye\n", attached.Errors);

        CliResult stopped = cli.Run("attach", "reader");
        AssertExit(stopped, 1);
        Assert.Contains("You cannot attach to a stopped container", stopped.Stderr);
    }

    [Fact]
    public void KillPauseRestartTopStats()
    {
        using BerthCli cli = WithBusybox();
        cli.Ok("run", "-d", "--name", "target", "busybox", "sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.1; done");
        Assert.Contains("PID", cli.Ok("top", "target"));
        Assert.Equal("target\n", cli.Ok("pause", "target"));
        Assert.Equal("paused\n", cli.Ok("inspect", "-f", "{{.State.Status}}", "target"));
        Assert.Equal("target\n", cli.Ok("unpause", "target"));
        string stats = cli.Ok("stats", "--no-stream", "target");
        Assert.Matches(@"^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS\n[0-9a-f]{12}\s+target\s+\d+\.\d\d%", stats);
        Assert.Equal("target\n", cli.Ok("kill", "-s", "USR1", "target"));
        Assert.Equal("42\n", cli.Ok("wait", "target"));
        Assert.Equal("target\n", cli.Ok("restart", "-t", "1", "target"));
        Assert.Equal("running\n", cli.Ok("inspect", "-f", "{{.State.Status}}", "target"));
        Assert.Equal("target\n", cli.Ok("kill", "target"));
        Assert.Equal("137\n", cli.Ok("wait", "target"));
    }

    [Fact]
    public void CopyBothWays()
    {
        using BerthCli cli = WithBusybox();
        cli.Ok("run", "-d", "--name", "files", "busybox", "sleep", "60");
        string src = Path.Combine(cli.Work, "hello.txt");
        File.WriteAllText(src, "hello from the host\n");
        cli.Ok("cp", src, "files:/tmp/");
        Assert.Equal("hello from the host\n", cli.Ok("exec", "files", "cat", "/tmp/hello.txt"));
        cli.Ok("cp", src, "files:/tmp/renamed.txt");
        Assert.Equal("hello from the host\n", cli.Ok("exec", "files", "cat", "/tmp/renamed.txt"));

        string dir = Path.Combine(cli.Work, "tree");
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        File.WriteAllText(Path.Combine(dir, "sub", "leaf"), "leaf\n");
        cli.Ok("cp", dir, "files:/tmp/");
        Assert.Equal("leaf\n", cli.Ok("exec", "files", "cat", "/tmp/tree/sub/leaf"));

        cli.Ok("exec", "files", "sh", "-c", "mkdir -p /data/d && echo inside > /data/d/f && echo top > /data/top");
        string outFile = Path.Combine(cli.Work, "out.txt");
        cli.Ok("cp", "files:/data/top", outFile);
        Assert.Equal("top\n", File.ReadAllText(outFile));
        string outDir = Directory.CreateDirectory(Path.Combine(cli.Work, "outdir")).FullName;
        cli.Ok("cp", "files:/data", outDir);
        Assert.Equal("inside\n", File.ReadAllText(Path.Combine(outDir, "data", "d", "f")));
        cli.Ok("cp", "files:/data", Path.Combine(cli.Work, "copy-of-data"));
        Assert.Equal("inside\n", File.ReadAllText(Path.Combine(cli.Work, "copy-of-data", "d", "f")));

        string exported = Path.Combine(cli.Work, "export.tar");
        cli.Ok("export", "-o", exported, "files");
        using (var reader = new System.Formats.Tar.TarReader(File.OpenRead(exported)))
        {
            var names = new List<string>();
            while (reader.GetNextEntry() is { } entry) names.Add(entry.Name.TrimStart('.', '/'));
            Assert.Contains("bin/busybox", names);
            Assert.Contains("tmp/hello.txt", names);
        }

        CliResult missing = cli.Run("cp", "files:/no/such/file", outDir);
        AssertExit(missing, 1);
        Assert.Contains("Error response from daemon:", missing.Stderr);
        cli.Ok("rm", "-f", "files");
    }

    [Fact]
    public void TtyRunAndExec()
    {
        using BerthCli cli = WithBusybox();
        CliResult tty = cli.RunInTerminal(null, "run", "--rm", "-t", "busybox", "sh", "-c", "tty; exit 6");
        AssertExit(tty, 6);
        Assert.Contains("/dev/pts/", tty.Stdout);

        // Input is typed once the shell's prompt ("/ # ") shows, not after a fixed delay.
        CliResult interactive = cli.RunInTerminalAfterPrompt("# ", "echo typed-$((40+2))\nexit 9\n", "run", "--rm", "-it", "busybox", "sh");
        AssertExit(interactive, 9);
        Assert.Contains("typed-42", interactive.Stdout);

        cli.Ok("run", "-d", "--name", "ttybox", "busybox", "sleep", "60");
        CliResult exec = cli.RunInTerminalAfterPrompt("# ", "tty\nexit 3\n", "exec", "-it", "ttybox", "sh");
        AssertExit(exec, 3);
        Assert.Contains("/dev/pts/", exec.Stdout);

        // Detach keys: ctrl-p ctrl-q leaves the container running.
        CliResult detach = cli.RunInTerminalAfterPrompt("# ", "\x10\x11", "run", "-it", "--name", "detachable", "busybox", "sh");
        AssertExit(detach, 0);
        Assert.Equal("running\n", cli.Ok("inspect", "-f", "{{.State.Status}}", "detachable"));

        // -it without a terminal is refused as docker refuses it.
        CliResult noTty = cli.Run("run", "--rm", "-it", "busybox", "true");
        AssertExit(noTty, 1);
        Assert.Contains("the input device is not a TTY", noTty.Stderr);
    }

    /// <summary>
    /// The terminal's settings come back after -it, and the container's TTY follows the window:
    /// a static helper prints TIOCGWINSZ when it changes while the test resizes the pty (SIGWINCH).
    /// It ends as soon as it sees the size it is given (or after 30 s), so a slow machine only makes it wait longer.
    /// </summary>
    [Fact]
    public void TerminalRawModeRestoredAndWindowResized()
    {
        using var cli = new BerthCli();
        string source = Path.Combine(cli.Work, "winsz.c");
        File.WriteAllText(source, """
            #include <stdio.h>
            #include <sys/ioctl.h>
            #include <unistd.h>
            #include <stdlib.h>
            int main(int argc, char **argv) {
                if (argc != 3) return 2;
                int rows = atoi(argv[1]), cols = atoi(argv[2]), last_rows = -1, last_cols = -1;
                struct winsize w;
                for (int i = 0; i < 300; i++) {
                    if (ioctl(0, TIOCGWINSZ, &w)) return 1;
                    if (w.ws_row != last_rows || w.ws_col != last_cols) { printf("size %d %d\n", w.ws_row, w.ws_col); fflush(stdout); }
                    if (w.ws_row == rows && w.ws_col == cols) return 0;
                    last_rows = w.ws_row; last_cols = w.ws_col;
                    usleep(100000);
                }
                return 0;
            }
            """);
        string helper = Path.Combine(cli.Work, "winsz");
        CliResult gcc = BerthCli.RunProcess(new System.Diagnostics.ProcessStartInfo("gcc", ["-static", "-O2", "-o", helper, source])
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        });
        Assert.True(gcc.ExitCode == 0, "gcc -static: " + gcc);
        cli.Ok("import", cli.WriteBusyboxTar("rootfs.tar", "tty", new Dictionary<string, string> { ["bin/winsz"] = helper }), "busybox:latest");

        string before = Path.Combine(cli.Work, "stty.before"), after = Path.Combine(cli.Work, "stty.after");
        CliResult run = cli.RunShellInTerminal(
            $"stty rows 40 cols 100; stty -g > '{before}'; (sleep 2; stty rows 50 cols 120 </dev/tty) & \"$BERTH\" run -it --rm busybox winsz 50 120; stty -g > '{after}'");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(File.ReadAllText(before), File.ReadAllText(after));
        Assert.True(run.Stdout.Contains("size 50 120"), run.ToString());

        cli.Ok("run", "-d", "--name", "sized", "busybox", "sleep", "60");
        CliResult exec = cli.RunShellInTerminal("stty rows 30 cols 90; (sleep 2; stty rows 31 cols 91 </dev/tty) & \"$BERTH\" exec -it sized winsz 31 91");
        Assert.True(exec.ExitCode == 0, exec.ToString());
        Assert.True(exec.Stdout.Contains("size 31 91"), exec.ToString());
    }

    /// <summary>The resource, OOM, domain name, cgroupns and -P flags reach the container and its inspect.</summary>
    [Fact]
    public void ResourceOomDomainCgroupnsAndPublishAllFlags()
    {
        using BerthCli cli = WithBusybox();
        CliResult r = cli.Run("run", "--rm", "--oom-score-adj", "500", "--domainname", "example.org", "--cgroupns", "private",
            "--cpu-period", "50000", "--cpu-quota", "25000", "busybox", "sh", "-c",
            "cat /proc/self/oom_score_adj /proc/sys/kernel/domainname; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max");
        AssertExit(r, 0);
        Assert.Matches("^500\nexample.org\n(25000|25000 50000)\n$", r.Stdout);

        string id = cli.Ok("create", "--cpu-period", "50000", "--cpu-quota", "25000", "--memory", "64m", "--memory-reservation", "32m",
            "--memory-swappiness", "10", "--oom-kill-disable", "--cpuset-mems", "0", "--cgroupns", "private", "-P", "--expose", "80", "busybox", "true").Trim();
        Assert.Equal("50000 25000 33554432 10 true 0 private true\n", cli.Ok("inspect", "-f",
            "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.MemoryReservation}} {{.HostConfig.MemorySwappiness}} {{.HostConfig.OomKillDisable}} {{.HostConfig.CpusetMems}} {{.HostConfig.CgroupnsMode}} {{.HostConfig.PublishAllPorts}}", id));
    }

    /// <summary>
    /// The blkio flags: throttles land in the container's cgroup (v1 blkio.throttle.*, v2 io.max) for a
    /// disk of this machine; a weight is applied where the host's scheduler has weights and otherwise
    /// discarded with dockerd's warning; a path that is no block device is refused.
    /// </summary>
    [Fact]
    public void BlockIoLimits()
    {
        using BerthCli cli = WithBusybox();
        var (disk, numbers) = BlockDisk();
        CliResult r = cli.Run("run", "--rm", "--device-read-bps", $"{disk}:1mb", "--device-write-iops", $"{disk}:100", "busybox", "sh", "-c",
            "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device 2>/dev/null || cat /sys/fs/cgroup/io.max");
        AssertExit(r, 0);
        Assert.Matches($"^({numbers} 1048576\n{numbers} 100\n|{numbers} rbps=1048576 wbps=max riops=max wiops=100\n)$", r.Stdout);

        bool weights = File.Exists("/sys/fs/cgroup/blkio/blkio.weight") || File.Exists("/sys/fs/cgroup/blkio/blkio.bfq.weight")
            || (File.Exists("/sys/fs/cgroup/cgroup.controllers") && File.ReadAllText("/sys/fs/cgroup/cgroup.controllers").Split().Contains("io"));
        string id = cli.Ok("create", "--blkio-weight", "300", "busybox", "true").Trim();
        Assert.Equal(weights ? "300\n" : "0\n", cli.Ok("inspect", "-f", "{{.HostConfig.BlkioWeight}}", id));
        if (!weights)
            Assert.Contains("WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
                cli.Run("create", "--blkio-weight", "300", "busybox", "true").Stderr);

        CliResult badWeight = cli.Run("create", "--blkio-weight-device", $"{disk}:5", "busybox", "true");
        AssertExit(badWeight, 125);
        Assert.Contains("invalid weight for device", badWeight.Stderr);
        if (BerthCli.Daemon == DaemonKind.Berthd)
        {
            CliResult notBlock = cli.Run("run", "--rm", "--device-read-bps", "/dev/null:1mb", "busybox", "true");
            AssertExit(notBlock, 125);
            Assert.Contains("/dev/null: not a block device", notBlock.Stderr);
        }
    }

    /// <summary>A whole disk of this machine (throttles take disks, not partitions) and its "major:minor".</summary>
    private static (string Path, string Numbers) BlockDisk()
    {
        foreach (string dir in Directory.GetDirectories("/sys/block").Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(dir);
            if (name.StartsWith("loop", StringComparison.Ordinal) || name.StartsWith("ram", StringComparison.Ordinal) || !File.Exists("/dev/" + name)) continue;
            return ("/dev/" + name, File.ReadAllText(Path.Combine(dir, "dev")).Trim());
        }
        throw new InvalidOperationException("this machine has no disk under /sys/block with a node in /dev");
    }

    /// <summary><c>--cgroup-parent</c>, <c>--annotation</c>, <c>--label-file</c>, <c>--userns host</c>, and flags berthd refuses by name.</summary>
    [Fact]
    public void CgroupParentAnnotationLabelFileAndUsernsFlags()
    {
        using BerthCli cli = WithBusybox();
        string parent = "berth-cli-test-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            CliResult r = cli.Run("run", "--rm", "--cgroup-parent", "/" + parent, "busybox", "cat", "/proc/self/cgroup");
            AssertExit(r, 0);
            Assert.Matches($":/{parent}/[0-9a-f]{{64}}\n", r.Stdout);
        }
        finally
        {
            // The parent is the user's: neither dockerd nor berthd removes it.
            foreach (string dir in Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup").Select(d => Path.Combine(d, parent)).Where(Directory.Exists))
                Directory.Delete(dir);
        }

        string labels = Path.Combine(cli.Work, "labels");
        File.WriteAllText(labels, "team=a\n# a comment\n\nflag\n");
        string id = cli.Ok("create", "--label-file", labels, "--label", "team=b", "--annotation", "org.example.note=hi", "--userns", "host", "busybox", "true").Trim();
        Assert.Equal("{\"flag\":\"\",\"team\":\"b\"} host\n", cli.Ok("inspect", "-f", "{{json .Config.Labels}} {{.HostConfig.UsernsMode}}", id));
        if (BerthCli.Daemon == DaemonKind.Berthd) // API 1.43; dockerd 20.10 serves 1.41, without annotations
            Assert.Equal("{\"org.example.note\":\"hi\"}\n", cli.Ok("inspect", "-f", "{{json .HostConfig.Annotations}}", id));

        if (BerthCli.Daemon == DaemonKind.Berthd)
        {
            foreach (var (flags, message) in new (string[], string)[]
            {
                (["--userns", "private"], "user namespace mode `private`"),
                (["--storage-opt", "size=1G"], "HostConfig.StorageOpt"),
                (["--gpus", "all"], "HostConfig.DeviceRequests"),
                (["--cgroup-parent", "../escape"], "`.` and `..` are not allowed"),
                (["--disable-content-trust=false"], "Docker Content Trust"),
            })
            {
                CliResult refused = cli.Run(["create", .. flags, "busybox", "true"]);
                Assert.True(refused.ExitCode == 125, $"{string.Join(' ', flags)}: {refused}");
                Assert.Contains(message, refused.Stderr);
            }
        }
    }

    /// <summary><c>--cidfile</c>: the ID written once created; an existing file refuses the run; a failed create leaves none.</summary>
    [Fact]
    public void CidFile()
    {
        using BerthCli cli = WithBusybox();
        string cidFile = Path.Combine(cli.Work, "cid");
        string id = cli.Ok("run", "-d", "--cidfile", cidFile, "busybox", "true").Trim();
        Assert.Equal(id, File.ReadAllText(cidFile));
        CliResult again = cli.Run("run", "--rm", "--cidfile", cidFile, "busybox", "true");
        Assert.Equal(125, again.ExitCode);
        Assert.Contains($"Container ID file found, make sure the other container isn't running or delete {cidFile}", again.Stderr);
        Assert.Equal(id, File.ReadAllText(cidFile));

        string failed = Path.Combine(cli.Work, "cid-of-a-failed-create");
        CliResult refused = cli.Run("create", "--cidfile", failed, "--volumes-from", "no-such-container", "busybox", "true");
        Assert.Equal(125, refused.ExitCode);
        Assert.False(File.Exists(failed));
    }

    /// <summary>
    /// <c>--device</c> creates the host's node in the container with the cgroup access asked for;
    /// <c>--device-cgroup-rule</c> opens the device cgroup to a major number; bad ones are refused.
    /// </summary>
    [Fact]
    public void DevicesAndDeviceCgroupRules()
    {
        using BerthCli cli = WithBusybox();
        // /dev/loop-control (10:237) is outside the default rules, so "r" is all the container may do with it.
        CliResult mapped = cli.Run("run", "--rm", "--device", "/dev/zero:/dev/myzero", "--device", "/dev/loop-control:/dev/lc:r", "busybox", "sh", "-c",
            "busybox stat -c '%n %t:%T %F' /dev/myzero /dev/lc; busybox head -c 3 /dev/myzero | wc -c; true < /dev/lc && echo read; true > /dev/lc || echo no write");
        AssertExit(mapped, 0);
        Assert.Equal("/dev/myzero 1:5 character special file\n/dev/lc a:ed character special file\n3\nread\nno write\n", mapped.Stdout);
        Assert.Contains("Operation not permitted", mapped.Stderr);

        // A node the container makes itself (major 42: no driver) opens only once a rule allows it.
        const string open42 = "busybox mknod /tmp/n42 c 42 0; true < /tmp/n42";
        CliResult denied = cli.Run("run", "--rm", "busybox", "sh", "-c", open42);
        Assert.NotEqual(0, denied.ExitCode);
        Assert.Contains("Operation not permitted", denied.Stderr);
        CliResult allowed = cli.Run("run", "--rm", "--device-cgroup-rule", "c 42:* r", "busybox", "sh", "-c", open42);
        Assert.NotEqual(0, allowed.ExitCode);
        Assert.Contains("No such device or address", allowed.Stderr); // past the cgroup, to the missing driver

        Assert.Contains("\"CgroupPermissions\":\"rwm\",\"PathInContainer\":\"/dev/myzero\",\"PathOnHost\":\"/dev/zero\"",
            cli.Ok("inspect", "-f", "{{json .HostConfig.Devices}}", cli.Ok("create", "--device", "/dev/zero:/dev/myzero", "busybox", "true").Trim()));

        CliResult missing = cli.Run("run", "--rm", "--device", "/dev/no-such-device", "busybox", "true");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("error gathering device information while adding custom device \"/dev/no-such-device\"", missing.Stderr);
        CliResult badRule = cli.Run("run", "--rm", "--device-cgroup-rule", "x 1:2 r", "busybox", "true");
        Assert.Equal(125, badRule.ExitCode);
        Assert.Contains("invalid device cgroup format 'x 1:2 r'", badRule.Stderr);
        CliResult badMode = cli.Run("run", "--rm", "--device", "/dev/zero:/dev/z:rwx", "busybox", "true");
        Assert.Equal(125, badMode.ExitCode);
        Assert.Contains("bad mode specified: rwx", badMode.Stderr);
    }

    /// <summary>
    /// <c>diff</c> lists the container's own changes (not the mount points the runtime made in an
    /// image without /dev, /proc, /sys); <c>commit</c> makes them an image with the flags'
    /// config, whose new layer holds those changes and nothing of the engine's.
    /// </summary>
    [Fact]
    public void DiffAndCommit()
    {
        using BerthCli cli = WithBusybox();
        Assert.Equal("Imported from -\n", cli.Ok("image", "inspect", "--format", "{{.Comment}}", "busybox")); // import's default message
        cli.Ok("run", "--name", "changed", "busybox", "sh", "-c", "echo new > /tmp/new; rm /etc/berth-test; mkdir /srv");
        // In no set order: dockerd's follows its directory walk.
        static string[] Sorted(string lines) => [.. lines.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)];
        Assert.Equal(["A /srv", "A /tmp/new", "C /etc", "C /tmp", "D /etc/berth-test"], Sorted(cli.Ok("diff", "changed")));
        Assert.Equal(Sorted(cli.Ok("diff", "changed")), Sorted(cli.Ok("container", "diff", "changed")));

        string id = cli.Ok("commit", "-a", "Alice", "-m", "the test's", "-c", "ENV X=1", "-c", "CMD [\"/bin/sh\", \"-c\", \"echo $X\"]", "changed", "committed:1").Trim();
        Assert.Matches("^sha256:[0-9a-f]{64}$", id);
        Assert.Equal("1\n", cli.Ok("run", "--rm", "committed:1"));
        Assert.Equal("new\nbin\nsrv\ntmp\n", cli.Ok("run", "--rm", "committed:1", "sh", "-c", "cat /tmp/new; ls / | grep -v -x -e dev -e proc -e sys -e etc; ls /etc | grep berth-test; true"));
        using (JsonDocument inspect = JsonDocument.Parse(cli.Ok("image", "inspect", "committed:1")))
        {
            JsonElement image = inspect.RootElement[0];
            Assert.Equal(id, image.GetProperty("Id").GetString());
            Assert.Equal("Alice", image.GetProperty("Author").GetString());
            Assert.Equal("the test's", image.GetProperty("Comment").GetString());
            Assert.Equal(2, image.GetProperty("RootFS").GetProperty("Layers").GetArrayLength());
        }

        // The new layer, read from `save`: the changes only — no empty /dev, /proc, /sys, no /etc/hosts.
        string archive = Path.Combine(cli.Work, "committed.tar");
        cli.Ok("save", "-o", archive, "committed:1");
        Assert.Equal(["etc/", "etc/.wh.berth-test", "srv/", "tmp/", "tmp/new"], TopLayerNames(archive));

        // Without a name: an untagged image; -p=false commits without pausing.
        string untagged = cli.Ok("container", "commit", "-p=false", "changed").Trim();
        Assert.Matches("^sha256:[0-9a-f]{64}$", untagged);
        Assert.Contains(untagged[7..19], cli.Ok("images", "-q"));
        Assert.Contains("<none>", cli.Ok("images", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"));
        Assert.Contains($"Deleted: {untagged}", cli.Ok("rmi", untagged[7..19]));
        CliResult digest = cli.Run("commit", "changed", "x@sha256:" + new string('a', 64));
        Assert.NotEqual(0, digest.ExitCode);
        Assert.Contains("refusing to create a tag with a digest reference", digest.Stderr);
        CliResult missing = cli.Run("commit", "no-such-container", "x:1");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("No such container: no-such-container", missing.Stderr);
    }

    /// <summary>The entry names of the last layer of the only image in a docker-save archive, sorted.</summary>
    private static List<string> TopLayerNames(string archive)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using (FileStream stream = File.OpenRead(archive))
        using (var reader = new System.Formats.Tar.TarReader(stream))
            while (reader.GetNextEntry() is { } entry)
            {
                if (entry.DataStream is null) continue;
                var data = new MemoryStream();
                entry.DataStream.CopyTo(data);
                files[entry.Name] = data.ToArray();
            }
        using JsonDocument manifest = JsonDocument.Parse(files["manifest.json"]);
        string layer = manifest.RootElement[0].GetProperty("Layers").EnumerateArray().Last().GetString()!;
        Stream layerStream = new MemoryStream(files[layer]);
        if (files[layer] is [0x1f, 0x8b, ..]) layerStream = new System.IO.Compression.GZipStream(layerStream, System.IO.Compression.CompressionMode.Decompress);
        var names = new List<string>();
        using (var layerReader = new System.Formats.Tar.TarReader(layerStream))
            while (layerReader.GetNextEntry() is { } entry) names.Add(entry.Name.StartsWith("./", StringComparison.Ordinal) ? entry.Name[2..] : entry.Name);
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    [Fact]
    public void VersionAndInfo()
    {
        using var cli = new BerthCli();
        string version = cli.Ok("version");
        Assert.StartsWith("Client:\n Version:", version);
        Assert.Contains("\nServer:", version);
        Assert.Matches(@"^\d+\.\d+\n$", cli.Ok("version", "--format", "{{.Server.ApiVersion}}"));
        string info = cli.Ok("info");
        Assert.Contains(" Containers: 0\n", info);
        Assert.Contains(" Images: 0\n", info);
        Assert.Matches(@"^\d+\n$", cli.Ok("info", "--format", "{{.NCPU}}"));
    }

    /// <summary>
    /// <c>--use-api-socket</c> (docker 28's): the container reaches the daemon through /var/run/docker.sock
    /// (a berth binary run inside lists the containers) and finds the client's registry credentials at
    /// /run/secrets/docker/config.json (0600, DOCKER_CONFIG set); without credentials, or beside the
    /// user's own DOCKER_CONFIG, no file is copied in.
    /// </summary>
    [Fact]
    public void UseApiSocket()
    {
        if (BerthCli.Daemon == DaemonKind.Dockerd) return; // the flag is the client's: berth against dockerd's socket is the same test
        using BerthCli cli = WithBusybox();
        CliResult bare = cli.Run("run", "--rm", "--use-api-socket", "busybox", "sh", "-c",
            "[ -S /var/run/docker.sock ] && echo socket; ls /run/secrets 2>&1; echo \"[$DOCKER_CONFIG]\"");
        Assert.True(bare.ExitCode == 0, bare.ToString());
        Assert.Equal("socket\nls: /run/secrets: No such file or directory\n[]\n", bare.Stdout);

        File.WriteAllText(Path.Combine(cli.Work, "docker-config", "config.json"),
            """{"auths":{"registry.example:5000":{"auth":"dTpw"},"https://index.docker.io/v1/":{"username":"hub","password":"pw"},"empty.example":{}}}""");
        // A berth client inside (the host's libc bound in for it) talks to the daemon through the socket.
        CliResult inside = cli.Run("run", "--rm", "--name", "inner", "--use-api-socket", "-v", "/lib:/lib:ro", "-v", "/lib64:/lib64:ro",
            "-v", BerthCli.Binary + ":/berth:ro", "busybox", "sh", "-c",
            "busybox stat -c '%a %u' /run/secrets/docker/config.json; cat /run/secrets/docker/config.json; echo; echo $DOCKER_CONFIG; " +
            "/berth -H unix:///var/run/docker.sock ps --format '{{.Names}}'");
        Assert.True(inside.ExitCode == 0, inside.ToString());
        Assert.Equal("600 0\n{\n\t\"auths\": {\n\t\t\"https://index.docker.io/v1/\": {\n\t\t\t\"auth\": \"aHViOnB3\"\n\t\t},\n" +
            "\t\t\"registry.example:5000\": {\n\t\t\t\"auth\": \"dTpw\"\n\t\t}\n\t}\n}\n/run/secrets/docker\ninner\n", inside.Stdout);

        CliResult own = cli.Run("run", "--rm", "--use-api-socket", "-e", "DOCKER_CONFIG=/etc/mine", "busybox", "sh", "-c", "ls /run/secrets 2>&1; echo $DOCKER_CONFIG");
        Assert.Equal("ls: /run/secrets: No such file or directory\n/etc/mine\n", own.Stdout);

        // Credentials that cannot be read stop the run before anything is created.
        File.WriteAllText(Path.Combine(cli.Work, "docker-config", "config.json"), """{"auths":{"x.example":{"auth":"%%%"}}}""");
        CliResult broken = cli.Run("run", "--rm", "--name", "never", "--use-api-socket", "busybox", "true");
        Assert.True(broken.ExitCode == 125 && broken.Stderr.Contains("resolving credentials failed", StringComparison.Ordinal), broken.ToString());
        Assert.Equal("", cli.Ok("ps", "-a", "-q"));
    }
}
