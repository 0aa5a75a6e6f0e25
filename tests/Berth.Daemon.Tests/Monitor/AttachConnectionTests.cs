using System.Net.Sockets;
using Berth.Daemon.Monitor;

namespace Berth.Daemon.Tests.Monitor;

/// <summary>The client side of a monitor's attach.sock, against a fake monitor (a SOCK_SEQPACKET listener).</summary>
public sealed class AttachConnectionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("berth-attach-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A monitor's listening attach.sock in the test's directory.</summary>
    private Socket FakeMonitor()
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(Path.Combine(_dir, "attach.sock")));
        listener.Listen(4);
        return listener;
    }

    /// <summary>The connection yields one stdout packet holding <paramref name="expected"/>, then its end.</summary>
    private static async Task AssertOutputThenEndAsync(AttachConnection connection, byte[] expected)
    {
        AttachFrame? frame = await connection.ReadAsync(CancellationToken.None);
        Assert.NotNull(frame);
        Assert.Equal(1, frame.Stream);
        Assert.Equal(expected, frame.Data.ToArray());
        Assert.Null(await connection.ReadAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Output_of_a_monitor_that_hung_up_before_the_lossless_request_is_still_read()
    {
        // A short exec (`echo x`): the monitor accepts, sends all the output, exits — all before the
        // client's lossless request goes out, whose send then fails with EPIPE. The output queued
        // for the client must not be lost with it (the empty `docker exec` output of sessions 2–6).
        using Socket listener = FakeMonitor();
        var client = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(Path.Combine(_dir, "attach.sock")));
        using (Socket monitorSide = await listener.AcceptAsync())
        {
            await monitorSide.SendAsync(new byte[] { 1, (byte)'x', (byte)'\n' }, SocketFlags.None);
            monitorSide.Shutdown(SocketShutdown.Both);
        }

        await using AttachConnection connection = await AttachConnection.OpenAsync(client, lossless: true, CancellationToken.None);

        await AssertOutputThenEndAsync(connection, "x\n"u8.ToArray());
    }

    [Fact]
    public async Task A_resize_or_stdin_that_finds_the_monitor_gone_leaves_its_output_readable()
    {
        // `docker exec -t c echo x`: the process ends and the monitor hangs up before the relay's
        // first resize; the resize fails (EPIPE) and must not cost the output.
        using Socket listener = FakeMonitor();
        await using AttachConnection connection = await AttachConnection.ConnectAsync(_dir, CancellationToken.None, lossless: true);
        using (Socket monitorSide = await listener.AcceptAsync())
        {
            byte[] lossless = new byte[16];
            Assert.Equal(1, await monitorSide.ReceiveAsync(lossless, SocketFlags.None));
            await monitorSide.SendAsync(new byte[] { 1, (byte)'x', (byte)'\r', (byte)'\n' }, SocketFlags.None);
        }

        Assert.False(await connection.TryResizeAsync(24, 80, CancellationToken.None));
        // Stdin that comes after the process ended (`yes | docker exec -i c echo x`) likewise.
        Assert.False(await connection.TryWriteStdinAsync(new byte[] { (byte)'y' }, CancellationToken.None));
        Assert.False(await connection.TryCloseStdinAsync(CancellationToken.None));
        await AssertOutputThenEndAsync(connection, "x\r\n"u8.ToArray());
    }

    [Fact]
    public async Task A_monitor_that_stays_gets_the_lossless_request()
    {
        using Socket listener = FakeMonitor();

        await using AttachConnection connection = await AttachConnection.ConnectAsync(_dir, CancellationToken.None, lossless: true);
        using Socket monitorSide = await listener.AcceptAsync();
        byte[] packet = new byte[16];
        int n = await monitorSide.ReceiveAsync(packet, SocketFlags.None);
        Assert.Equal("L"u8.ToArray(), packet[..n]);
    }
}
