using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Berth.Oci;
using Berth.Runtime.Container;
using Berth.Runtime.Native;
using Berth.Runtime.Tests.Init;
using static Berth.Oci.MountFlags;

namespace Berth.Runtime.Tests.Container;

/// <summary>
/// NOTIFY_SOCKET without a container: create's spec rewrite as the child program compiles it,
/// and the relay's rules (which message counts, what goes to the host, when the wait ends).
/// </summary>
public sealed class NotifySocketTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("berth-notify-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string StateDir()
    {
        var state = Path.Combine(_dir, "state");
        Directory.CreateDirectory(state);
        if (!Directory.Exists(NotifySocket.DirectoryIn(state))) NotifySocket.CreateDirectory(state);
        return state;
    }

    [Fact]
    public void Create_binds_the_notify_directory_read_only_at_run_notify_after_the_configs_mounts()
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Mounts = [new Mount { Destination = "/run", Type = "tmpfs", Source = "tmpfs" }];
        var state = StateDir();
        NotifySocket.AddToSpec(spec, state);

        var added = spec.Mounts[^1];
        Assert.Equal(2, spec.Mounts.Count);
        Assert.Equal("/run/notify", added.Destination);
        Assert.Equal(Path.Combine(state, "notify"), added.Source);
        Assert.Null(added.Type);
        Assert.Equal(["bind", "nosuid", "noexec", "nodev", "ro"], added.Options);

        using var p = CompiledProgram.Compile(spec, bundle: _dir);
        Op MountOp(string description) => p.Single(o => o.Syscall == Sys.Mount && o.Description == description, description);
        var tmpfs = p.IndexOf(MountOp("mount tmpfs tmpfs on /run"));
        var mkdir = p.MustFind("mkdir /run/notify in the rootfs");
        var bind = MountOp($"mount bind {added.Source} on /run/notify");
        Assert.Equal(added.Source, p.String(bind.Args[0]));
        Assert.Equal((long)MS_BIND, bind.Args[3].Value);
        var remount = p.IndexOf(MountOp($"remount bind {added.Source} on /run/notify (ro,nosuid,nodev,noexec)"));
        Assert.True(tmpfs < mkdir && mkdir < p.IndexOf(bind) && p.IndexOf(bind) < remount, p.Dump());
    }

    [Theory]
    [InlineData(new[] { "PATH=/bin", "A=1" }, new[] { "PATH=/bin", "A=1", "NOTIFY_SOCKET=/run/notify/notify.sock" })]
    // runc's init sets the env in order: its value wins at the place of the config's first entry.
    [InlineData(new[] { "NOTIFY_SOCKET=/custom/n.sock", "PATH=/bin", "NOTIFY_SOCKET=/other.sock" }, new[] { "NOTIFY_SOCKET=/run/notify/notify.sock", "PATH=/bin" })]
    [InlineData(new string[0], new[] { "NOTIFY_SOCKET=/run/notify/notify.sock" })]
    public void Create_sets_NOTIFY_SOCKET_in_the_process_env_whatever_the_config_said(string[] env, string[] expected)
    {
        var spec = UnitSpecs.Bare("pid", "mount");
        spec.Process!.Args = ["/bin/app"];
        spec.Process.Env = [.. env];
        NotifySocket.AddToSpec(spec, StateDir());
        Assert.Equal(expected, spec.Process.Env);

        using var p = CompiledProgram.Compile(spec, bundle: _dir);
        var envp = StringArray(p, p.Syscalls(Sys.Execve).Single().Args[2]);
        Assert.Equal(expected, envp.Where(e => !e.StartsWith("HOME=", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("READY=1", "READY=1")]
    [InlineData("READY=1\nSTATUS=up\n", "READY=1")]
    [InlineData("READY=0", "READY=0")]
    [InlineData("STATUS=starting\nREADY=1", null)] // runc looks at the start of the datagram only
    [InlineData("STATUS=up", null)]
    [InlineData("MAINPID=7", null)]
    [InlineData("", null)]
    public void Only_a_message_that_begins_with_READY_counts_and_its_first_line_is_relayed(string message, string? relayed)
    {
        var line = NotifySocket.ReadyLineOf(Encoding.ASCII.GetBytes(message));
        Assert.Equal(relayed, line is null ? null : Encoding.ASCII.GetString(line));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // "@name": an abstract socket, as systemd may give
    public void The_relay_passes_READY_and_MAINPID_to_the_host_and_drops_everything_else(bool abstractHost)
    {
        using var host = new HostSocket(abstractHost ? $"@berth-notify-test-{Guid.NewGuid():N}" : Path.Combine(_dir, "host.sock"));
        var self = Environment.ProcessId;
        using var notify = NotifySocket.Listen(StateDir(), host.Address, self, ProcessInfo.Read(self)!.Value.StartTime);
        Assert.Equal("777", Convert.ToString((int)File.GetUnixFileMode(notify.SocketPath), 8));

        SendTo(notify.SocketPath, "STATUS=starting", "STATUS=x\nREADY=1", "READY=1\nSTATUS=up", "READY=2");
        Assert.True(notify.RelayReady(mainPid: 4242));
        Assert.Equal(["READY=1\n", "MAINPID=4242\n"], host.Receive(2));
        Assert.Empty(host.Receive(1, TimeSpan.FromMilliseconds(200)));
    }

    [Fact]
    public void The_wait_ends_without_a_relay_once_the_init_is_gone_but_what_it_sent_before_still_counts()
    {
        using var host = new HostSocket(Path.Combine(_dir, "host.sock"));
        var (pid, startTime) = ExitedProcess();
        var state = StateDir();
        using (var notify = NotifySocket.Listen(state, host.Address, pid, startTime))
        {
            var clock = Stopwatch.StartNew();
            Assert.False(notify.RelayReady());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"the wait took {clock.Elapsed}");
        }
        Assert.Empty(host.Receive(1, TimeSpan.FromMilliseconds(200)));

        File.Delete(Path.Combine(NotifySocket.DirectoryIn(state), NotifySocket.SocketName));
        using (var notify = NotifySocket.Listen(state, host.Address, pid, startTime))
        {
            SendTo(notify.SocketPath, "STATUS=last words", "READY=1");
            Assert.True(notify.RelayReady());
        }
        Assert.Equal(["READY=1\n", $"MAINPID={pid}\n"], host.Receive(2));
    }

    [Fact]
    public void A_host_socket_that_is_not_there_fails_the_relay_naming_it()
    {
        var self = Environment.ProcessId;
        using var notify = NotifySocket.Listen(StateDir(), Path.Combine(_dir, "nobody.sock"), self, ProcessInfo.Read(self)!.Value.StartTime);
        var e = Assert.Throws<RuntimeException>(() => notify.RelayReady());
        Assert.Contains($"connect to NOTIFY_SOCKET {Path.Combine(_dir, "nobody.sock")}: no such file or directory", e.Message);
    }

    [Fact]
    public void Listening_in_a_container_created_without_NOTIFY_SOCKET_says_so()
    {
        var state = Path.Combine(_dir, "plain");
        Directory.CreateDirectory(state);
        var e = Assert.Throws<RuntimeException>(() => NotifySocket.Listen(state, "/run/host.sock", 1, 0));
        Assert.Contains("created without NOTIFY_SOCKET", e.Message);
        Assert.Equal(Sys.ENOENT, e.Errno);
    }

    static (int Pid, ulong StartTime) ExitedProcess()
    {
        using var process = System.Diagnostics.Process.Start(new ProcessStartInfo("/bin/sleep", "0.2"))!;
        var startTime = ProcessInfo.Read(process.Id)?.StartTime ?? 0;
        process.WaitForExit();
        return (process.Id, startTime);
    }

    static void SendTo(string path, params string[] messages)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        foreach (var message in messages) socket.Send(Encoding.ASCII.GetBytes(message));
    }

    static unsafe List<string> StringArray(CompiledProgram p, OpArg array)
    {
        var result = new List<string>();
        for (var ptr = (long*)p.Address(array); *ptr != 0; ptr++)
            result.Add(System.Runtime.InteropServices.Marshal.PtrToStringUTF8((IntPtr)(*ptr))!);
        return result;
    }
}
