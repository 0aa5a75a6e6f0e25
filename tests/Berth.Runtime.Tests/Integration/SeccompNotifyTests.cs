using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using Berth.Runtime.Native;

namespace Berth.Runtime.Tests.Integration;

/// <summary>
/// SCMP_ACT_NOTIFY: the runtime passes each filter's listener fd to linux.seccomp.listenerPath
/// (runc's protocol: the ContainerProcessState JSON with the fd as SCM_RIGHTS), and the syscalls
/// the rule names wait for the agent's answer.
/// </summary>
public sealed class SeccompNotifyTests : IDisposable
{
    readonly RuntimeHarness _h = new();
    public void Dispose() => _h.Dispose();

    const int EOPNOTSUPP = 95;

    static Berth.Oci.LinuxSeccomp Notifying(string listenerPath) => new()
    {
        DefaultAction = "SCMP_ACT_ALLOW",
        ListenerPath = listenerPath,
        ListenerMetadata = "from-the-test",
        Syscalls = [new Berth.Oci.LinuxSyscall { Names = ["mkdir", "mkdirat"], Action = "SCMP_ACT_NOTIFY" }],
    };

    [IntegrationTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_agent_gets_the_listener_and_the_state_and_answers_the_containers_syscalls(bool noNewPrivileges)
    {
        using var agent = new SeccompAgent(_h.NewPath("agent.sock"), EOPNOTSUPP);
        var bundle = _h.NewBundle().Script("mkdir /tmp/made 2>&1; echo rc=$?");
        bundle.Process.NoNewPrivileges = noNewPrivileges;
        bundle.Linux.Seccomp = Notifying(agent.Path);
        var output = _h.Run(bundle, "notify").ShouldSucceed().Stdout;

        Assert.Contains("rc=1", output);
        Assert.True(output.Contains("Operation not supported"), output); // the agent's errno, not the kernel's
        var state = Assert.Single(agent.States);
        Assert.Equal(["seccompFd"], state.GetProperty("fds").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal("from-the-test", state.GetProperty("metadata").GetString());
        Assert.True(state.GetProperty("pid").GetInt32() > 0, state.ToString());
        Assert.Equal("creating", state.GetProperty("state").GetProperty("status").GetString());
        Assert.Contains("notify", state.GetProperty("state").GetProperty("id").GetString());
        Assert.Contains(agent.Notifications, n => n.Nr is 83 or 258); // mkdir / mkdirat (x86_64)
        Assert.All(agent.Notifications, n => Assert.True(n.Pid > 0, $"notification from pid {n.Pid}"));
    }

    [IntegrationFact]
    public void An_exec_process_gets_a_listener_of_its_own()
    {
        using var agent = new SeccompAgent(_h.NewPath("agent.sock"), EOPNOTSUPP);
        var bundle = _h.NewBundle("sleep", "1000");
        bundle.Linux.Seccomp = Notifying(agent.Path);
        var id = _h.NewId("notifyexec");
        _h.CreateAndStart(id, bundle);
        var initPid = _h.State(id).GetProperty("pid").GetInt32();

        var result = _h.Runtime("exec", id, "sh", "-c", "mkdir /tmp/made 2>&1; echo rc=$?").ShouldSucceed();
        Assert.Contains("Operation not supported", result.Stdout);
        Assert.Equal(2, agent.States.Count);
        var exec = agent.States.Last();
        Assert.Equal("running", exec.GetProperty("state").GetProperty("status").GetString());
        Assert.Equal(id, exec.GetProperty("state").GetProperty("id").GetString());
        Assert.NotEqual(initPid, exec.GetProperty("pid").GetInt32());
        Assert.Contains(agent.Notifications, n => n.Nr is 83 or 258);
    }

    [IntegrationFact]
    public void Create_fails_clearly_when_no_agent_listens_and_leaves_nothing()
    {
        var bundle = _h.NewBundle("true");
        bundle.Linux.Seccomp = Notifying(_h.NewPath("nobody.sock"));
        var id = _h.NewId("noagent");
        var result = _h.Runtime("create", "--bundle", bundle.Save().Dir, id).ShouldFail();
        Assert.Contains("linux.seccomp.listenerPath", result.Stderr);
        Assert.Contains("nobody.sock", result.Stderr);
        Assert.NotEqual(0, _h.Runtime("state", id).Code); // no container left behind
    }

    /// <summary>
    /// A seccomp agent: accepts the runtime's connections, keeps the ContainerProcessState of
    /// each and answers every notification on its listener with -<c>errno</c>.
    /// </summary>
    sealed unsafe class SeccompAgent : IDisposable
    {
        // _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp).
        const ulong NotifRecv = 0xc0502100, NotifSend = 0xc0182101;

        [DllImport("libc", SetLastError = true)] static extern int ioctl(int fd, ulong request, void* argument);

        readonly Socket _socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        readonly CancellationTokenSource _stop = new();
        readonly List<Thread> _threads = [];
        readonly int _errno;
        readonly ConcurrentQueue<JsonElement> _states = new();
        readonly ConcurrentQueue<(int Nr, int Pid)> _notifications = new();

        public SeccompAgent(string path, int errno)
        {
            Path = path;
            _errno = errno;
            _socket.Bind(new UnixDomainSocketEndPoint(path));
            _socket.Listen(4);
            Start(AcceptLoop);
        }

        public string Path { get; }
        public List<JsonElement> States => [.. _states];
        public List<(int Nr, int Pid)> Notifications => [.. _notifications];

        void Start(Action loop)
        {
            var thread = new Thread(() => loop()) { IsBackground = true };
            lock (_threads) _threads.Add(thread);
            thread.Start();
        }

        void AcceptLoop()
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket connection;
                try { connection = _socket.Accept(); }
                catch (SocketException) { return; }
                catch (ObjectDisposedException) { return; }
                using (connection)
                {
                    var (json, fd) = Receive((int)connection.Handle);
                    _states.Enqueue(JsonDocument.Parse(json).RootElement.Clone());
                    if (fd >= 0) Start(() => Answer(fd));
                }
            }
        }

        static (string Json, int Fd) Receive(int socket)
        {
            var payload = new byte[65536];
            var control = stackalloc byte[64];
            fixed (byte* data = payload)
            {
                var iov = new LibC.IoVec { Base = (nint)data, Length = (nuint)payload.Length };
                var message = new LibC.MsgHdr { Iov = (nint)(&iov), IovLength = 1, Control = (nint)control, ControlLength = 64 };
                var n = (int)LibC.recvmsg(socket, ref message, 0x40000000 /* MSG_CMSG_CLOEXEC */);
                if (n <= 0) return ("{}", -1);
                var fd = message.ControlLength >= 20 && *(int*)(control + 12) == 1 ? *(int*)(control + 16) : -1;
                // The rest of the JSON, if the stream split it.
                var total = n;
                while (total < payload.Length && !IsCompleteJson(payload.AsSpan(0, total)))
                {
                    var more = (int)LibC.read(socket, payload.AsSpan(total), payload.Length - total);
                    if (more <= 0) break;
                    total += more;
                }
                return (System.Text.Encoding.UTF8.GetString(payload, 0, total), fd);
            }
        }

        static bool IsCompleteJson(ReadOnlySpan<byte> json)
        {
            try { using var _ = JsonDocument.Parse(json.ToArray()); return true; }
            catch (JsonException) { return false; }
        }

        void Answer(int listener)
        {
            try
            {
                var notification = stackalloc byte[80];
                var response = stackalloc byte[24];
                while (!_stop.IsCancellationRequested)
                {
                    Span<LibC.PollFd> poll = [new LibC.PollFd { Fd = listener, Events = LibC.POLLIN }];
                    var ready = LibC.poll(poll, 1, 100);
                    if (ready <= 0) continue;
                    if ((poll[0].Revents & LibC.POLLIN) == 0) return; // every process of the filter is gone
                    new Span<byte>(notification, 80).Clear();
                    if (ioctl(listener, NotifRecv, notification) != 0) continue; // the process died meanwhile
                    _notifications.Enqueue((*(int*)(notification + 16), *(int*)(notification + 8)));
                    *(ulong*)response = *(ulong*)notification; // id
                    *(long*)(response + 8) = 0; // val
                    *(int*)(response + 16) = -_errno;
                    *(int*)(response + 20) = 0; // flags
                    ioctl(listener, NotifSend, response);
                }
            }
            finally { LibC.close(listener); }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _socket.Dispose();
            List<Thread> threads;
            lock (_threads) threads = [.. _threads];
            foreach (var thread in threads) thread.Join(TimeSpan.FromSeconds(5));
            try { File.Delete(Path); } catch (IOException) { }
        }
    }
}
