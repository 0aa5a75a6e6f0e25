namespace Berth.Runtime.Tests.Integration;

/// <summary>
/// NOTIFY_SOCKET in the runtime's environment, as systemd gives it to a Type=notify unit: the
/// container sends sd_notify messages to /run/notify/notify.sock and the runtime passes READY on
/// to the host's socket with MAINPID, as runc 1.1 does. The container's sender is a small static
/// C program (busybox has no systemd-notify).
/// </summary>
public sealed class NotifySocketTests : IClassFixture<NotifySender>, IDisposable
{
    readonly RuntimeHarness _h = new();
    readonly NotifySender _sender;
    public void Dispose() => _h.Dispose();

    public NotifySocketTests(NotifySender sender) => _sender = sender;

    HostSocket NewHostSocket() => new(_h.NewPath("host.sock"));

    static string With(HostSocket host) => With(host.Address);
    static string With(string notifySocket) => $"env NOTIFY_SOCKET='{notifySocket}'";

    Bundle NewBundle(string script)
    {
        var bundle = _h.NewBundle().Script(script);
        _sender.CopyInto(bundle);
        return bundle.Save();
    }

    string Run(string[] args, HostSocket host, bool succeed = true)
    {
        var result = _h.Runtime(args, wrapper: With(host));
        if (succeed) result.ShouldSucceed();
        return result.Stdout;
    }

    [IntegrationFact]
    public void Run_detached_returns_once_READY_is_relayed_with_the_inits_pid_and_exec_sees_nothing_of_it()
    {
        using var host = NewHostSocket();
        var bundle = NewBundle("""
            env | grep NOTIFY_SOCKET; grep ' /run/notify ' /proc/self/mountinfo | cut -d' ' -f5,6
            sdnotify STATUS=starting 'READY=1\nSTATUS=up' READY=2; exec sleep 1000
            """);
        // The config's own NOTIFY_SOCKET gives way to the runtime's, as with runc.
        bundle.Process.Env = ["NOTIFY_SOCKET=/elsewhere/n.sock", .. bundle.Process.Env ?? []];
        bundle.Save();
        var id = _h.NewId("notify-d");
        var run = _h.Runtime(["run", "-d", "--bundle", bundle.Dir, id], wrapper: With(host)).ShouldSucceed();

        var pid = _h.State(id).GetProperty("pid").GetInt32();
        Assert.Equal(["READY=1\n", $"MAINPID={pid}\n"], host.Receive(2));
        Assert.Empty(host.Receive(1, TimeSpan.FromMilliseconds(300)));
        // The container wrote this before it sent READY, so before run returned.
        var seen = run.CurrentStdout().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, seen.Length);
        Assert.Equal("NOTIFY_SOCKET=/run/notify/notify.sock", seen[0]);
        Assert.StartsWith("/run/notify ro,nosuid,nodev,noexec", seen[1]);
        Assert.Equal("running", _h.Status(id));

        // exec: the config's env as it is (runc's exec reads the bundle's config.json); the socket is there all the same.
        var exec = _h.Runtime(["exec", id, "sh", "-c", "echo \"[$NOTIFY_SOCKET]\"; test -S /run/notify/notify.sock && echo socket"], wrapper: With(host));
        Assert.Equal("[/elsewhere/n.sock]\nsocket\n", exec.ShouldSucceed().Stdout);
        Assert.Empty(host.Receive(1, TimeSpan.FromMilliseconds(200)));

        var notifyDir = Path.Combine(_h.Root, id, "notify");
        Assert.True(File.Exists(Path.Combine(notifyDir, "notify.sock")));
        _h.Runtime("delete", "--force", id).ShouldSucceed();
        Assert.False(Directory.Exists(notifyDir), "delete left the notify directory");
    }

    [IntegrationFact]
    public void Start_waits_for_READY_then_relays_it_with_the_inits_pid()
    {
        using var host = NewHostSocket();
        var bundle = NewBundle("while [ ! -e /tmp/go ]; do sleep 0.05; done; sdnotify READY=1; exec sleep 1000");
        var id = _h.NewId("notify-start");
        _h.Runtime(["create", "--bundle", bundle.Dir, id], wrapper: With(host)).ShouldSucceed();
        var socket = Path.Combine(_h.Root, id, "notify", "notify.sock");
        Assert.False(File.Exists(socket), "create binds nothing: start does");

        var start = Task.Run(() => _h.Runtime(["start", id], wrapper: With(host)));
        Assert.False(start.Wait(TimeSpan.FromMilliseconds(800)), $"start returned before READY: {(start.IsCompleted ? start.Result : null)}");
        Assert.Equal("running", _h.Status(id));
        Assert.Equal("777", Convert.ToString((int)File.GetUnixFileMode(socket), 8));

        File.WriteAllText(Path.Combine(bundle.Rootfs, "tmp/go"), "");
        Assert.True(start.Wait(TimeSpan.FromSeconds(20)), "start did not return after READY");
        start.Result.ShouldSucceed();
        Assert.Equal(["READY=1\n", $"MAINPID={_h.State(id).GetProperty("pid").GetInt32()}\n"], host.Receive(2));
    }

    [IntegrationFact]
    public void A_container_that_exits_without_READY_ends_the_wait_of_start_and_of_run_relaying_nothing()
    {
        using var host = NewHostSocket();
        var bundle = NewBundle("sleep 0.3; exit 4");
        var id = _h.NewId("notify-none");
        _h.Runtime(["create", "--bundle", bundle.Dir, id], wrapper: With(host)).ShouldSucceed();
        _h.Runtime(["start", id], wrapper: With(host)).ShouldSucceed();
        RuntimeHarness.WaitUntil(() => _h.Status(id) == "stopped", "the container exits");

        // runc 1.1 waits for ever here (run -d: its init stays a zombie; run: READY alone ends its
        // wait): Berth's wait ends with the init.
        var detached = _h.NewId("notify-none-d");
        _h.Runtime(["run", "-d", "--bundle", bundle.Dir, detached], wrapper: With(host)).ShouldSucceed();
        Assert.Equal(4, _h.Runtime(["run", "--bundle", bundle.Dir, _h.NewId("notify-none-fg")], wrapper: With(host)).Code);
        Assert.Empty(host.Receive(1, TimeSpan.FromMilliseconds(300)));
    }

    [IntegrationFact]
    public void Run_in_the_foreground_gives_its_own_pid_as_MAINPID_and_a_non_root_user_may_send()
    {
        using var host = NewHostSocket();
        var bundle = NewBundle("sdnotify READY=1 && exit 7");
        bundle.Process.User = new Berth.Oci.User { Uid = 1000, Gid = 1000 };
        bundle.Save();
        var pidFile = _h.NewPath("runtime-pid");
        // The runtime's pid: the shell that execs it keeps its pid.
        var result = _h.Runtime(["run", "--bundle", bundle.Dir, _h.NewId("notify-fg")],
            wrapper: $"sh -c 'echo $$ >{pidFile}; exec \"$@\"' sh {With(host)}");
        Assert.Equal(7, result.Code);
        Assert.Equal(["READY=1\n", $"MAINPID={File.ReadAllText(pidFile).Trim()}\n"], host.Receive(2));
    }

    [IntegrationFact]
    public void Start_fails_as_runc_does_on_a_host_socket_that_is_not_there_and_on_a_container_created_without_one()
    {
        using var host = NewHostSocket();
        var bundle = NewBundle("exec sleep 1000");

        // The host's socket is connected after the container started, as runc does: it runs.
        var id = _h.NewId("notify-nohost");
        _h.Runtime(["create", "--bundle", bundle.Dir, id], wrapper: With(host)).ShouldSucceed();
        var missing = _h.NewPath("missing.sock");
        var failed = _h.Runtime(["start", id], wrapper: With(missing)).ShouldFail();
        Assert.Contains($"connect to NOTIFY_SOCKET {missing}: no such file or directory", failed.Stderr);
        Assert.Equal("running", _h.Status(id));

        // Created without NOTIFY_SOCKET: there is no notify directory to bind in, and the container stays created.
        var plain = _h.NewId("notify-plain");
        _h.Runtime("create", "--bundle", bundle.Dir, plain).ShouldSucceed();
        failed = _h.Runtime(["start", plain], wrapper: With(host)).ShouldFail();
        Assert.Contains("the container was created without NOTIFY_SOCKET", failed.Stderr);
        Assert.Equal("created", _h.Status(plain));
    }

    [IntegrationFact]
    public void A_create_that_fails_leaves_no_notify_directory()
    {
        using var host = NewHostSocket();
        var bundle = NewBundle("true");
        bundle.Process.Args = ["/no/such/command"];
        bundle.Save();
        var id = _h.NewId("notify-fail");
        _h.Runtime(["create", "--bundle", bundle.Dir, id], wrapper: With(host)).ShouldFail();
        Assert.False(Directory.Exists(Path.Combine(_h.Root, id)), "the failed create left its state directory");
    }
}

/// <summary>
/// systemd-notify for the busybox rootfs (tests/compat/sdnotify.c), built once per test class with
/// gcc -static: sends each argument ("\n" for a newline) as one datagram to $NOTIFY_SOCKET.
/// </summary>
public sealed class NotifySender : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("berth-sdnotify-").FullName;
    readonly Lazy<string?> _binary;

    public NotifySender() => _binary = new(() =>
        TestEnvironment.RepoRoot is { } repo && File.Exists(Path.Combine(repo, "tests/compat/sdnotify.c"))
            ? SecurityHelpers.BuildStatic(File.ReadAllText(Path.Combine(repo, "tests/compat/sdnotify.c")), Path.Combine(_dir, "sdnotify"))
            : null);

    public void CopyInto(Bundle bundle)
    {
        var binary = _binary.Value;
        Assert.True(binary is not null, "tests/compat/sdnotify.c not found or gcc -static failed (install gcc and libc6-dev)");
        File.Copy(binary, Path.Combine(bundle.Rootfs, "bin/sdnotify"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
