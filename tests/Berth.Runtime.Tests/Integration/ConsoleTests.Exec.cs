using System.Net.Sockets;
using Berth.Runtime.Native;

namespace Berth.Runtime.Tests.Integration;

public sealed partial class ConsoleTests
{
    [IntegrationFact]
    public async Task Exec_with_a_tty_sends_a_new_pty_of_the_containers_devpts_to_the_console_socket()
    {
        var bundle = _h.NewBundle("sleep", "1000");
        var id = _h.NewId("exectty");
        _h.CreateAndStart(id, bundle);

        var socketPath = _h.NewPath("exec-console.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        listener.Listen(1);
        var received = Task.Run(async () =>
        {
            using var connection = await listener.AcceptAsync();
            return ReceiveFd(connection);
        });
        var pidFile = _h.NewPath("exec-tty.pid");
        _h.Runtime("exec", "-t", "-d", "--pid-file", pidFile, "--console-socket", socketPath, id,
            "sh", "-c", "echo tty=$(tty); echo pid=$$; echo done; sleep 100").ShouldSucceed();
        Assert.True(received.Wait(TimeSpan.FromSeconds(30)), "no fd arrived on the console socket");
        var (master, _) = await received;
        Assert.True(master >= 0, "SCM_RIGHTS message without an fd");
        try
        {
            var output = ReadUntil(master, "done", TimeSpan.FromSeconds(30)).Replace("\r", "");
            Assert.Matches(@"tty=/dev/pts/\d+", output);
            Assert.DoesNotContain("not a tty", output);
            Assert.Matches(@"pid=([2-9]|1\d)\n", output);
            Assert.True(File.Exists(pidFile));
        }
        finally { LibC.close(master); }
    }
}
