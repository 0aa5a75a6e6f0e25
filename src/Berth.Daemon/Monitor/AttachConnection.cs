using System.Net.Sockets;

namespace Berth.Daemon.Monitor;

/// <summary>One packet of container output: <see cref="Stream"/> 1 is stdout (and a tty), 2 stderr.</summary>
public sealed record AttachFrame(int Stream, ReadOnlyMemory<byte> Data);

/// <summary>A client of a monitor's <c>attach.sock</c> (SOCK_SEQPACKET: one packet per message, so the
/// type byte always leads). The monitor drops a client that does not keep up with the output, so read
/// continuously. Reads and writes may run concurrently; two concurrent reads (or writes) may not.</summary>
public sealed class AttachConnection : IAsyncDisposable
{
    /// <summary>The monitor's largest packet (type byte included).</summary>
    public const int MaxPacket = 32 * 1024;

    private const byte StdinPacket = 0, ClosePacket = (byte)'C', ResizePacket = (byte)'R', LosslessPacket = (byte)'L';

    private readonly Socket _socket;
    private readonly byte[] _receive = new byte[MaxPacket + 1];
    private readonly byte[] _send = new byte[MaxPacket];

    private AttachConnection(Socket socket) => _socket = socket;

    /// <param name="lossless">
    /// The monitor holds the container's output back while this connection lags (as dockerd's
    /// attach blocks the container) instead of dropping it after 1 MiB. Only for a caller that
    /// reads the connection until its end: the container waits for it.
    /// </param>
    public static async Task<AttachConnection> ConnectAsync(string stateDir, CancellationToken ct, bool lossless = false)
    {
        string path = Path.Combine(stateDir, MonitorProcess.AttachSocketName);
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"connect {path}: {e.Message} (the container may have exited)", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return await OpenAsync(socket, lossless, ct).ConfigureAwait(false);
    }

    /// <summary>The connection over a socket connected to a monitor; sends the lossless request when asked.</summary>
    internal static async Task<AttachConnection> OpenAsync(Socket connected, bool lossless, CancellationToken ct)
    {
        var connection = new AttachConnection(connected);
        if (!lossless) return connection;
        connection._send[0] = LosslessPacket;
        try
        {
            // The monitor may already have hung up: an exec as short as `echo x` is done, its output
            // sent and its monitor gone between our connect and this send (EPIPE). What it sent is
            // still queued for us, so the connection is kept and read to its end; treating the failed
            // request as a failed connect lost that output (the retry then found no socket).
            await UnlessHungUp(connection.SendAsync(1, ct)).ConfigureAwait(false);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return connection;
    }

    /// <summary>The next output packet; null once the monitor closed the connection (the process exited
    /// and all output was delivered, or this client was dropped for being too slow).</summary>
    public async ValueTask<AttachFrame?> ReadAsync(CancellationToken ct)
    {
        while (true)
        {
            int n;
            try { n = await _socket.ReceiveAsync(_receive, SocketFlags.None, ct).ConfigureAwait(false); }
            // The monitor closed with something of ours unread (a resize, stdin): the kernel reports
            // that reset before the packets still queued for us. It is cleared by being reported:
            // read on to get them, then the end of file.
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset) { continue; }
            if (n == 0) return null;
            if (_receive[0] is 1 or 2) return new AttachFrame(_receive[0], _receive.AsSpan(1, n - 1).ToArray());
            // Unknown packet types are skipped (room for later extensions).
        }
    }

    public async ValueTask WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            do
            {
                int len = Math.Min(data.Length, MaxPacket - 1);
                _send[0] = StdinPacket;
                data.Span[..len].CopyTo(_send.AsSpan(1));
                await SendAsync(len + 1, ct).ConfigureAwait(false);
                data = data[len..];
            } while (!data.IsEmpty);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Closes the container's stdin (EOF for the process; on a tty, the EOF character ^D).</summary>
    public async ValueTask CloseStdinAsync(CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _send[0] = ClosePacket;
            await SendAsync(1, ct).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>TIOCSWINSZ on the container's pty (ignored without --tty). Safe to call while another task writes stdin.</summary>
    public async ValueTask ResizeAsync(ushort rows, ushort cols, CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _send[0] = ResizePacket;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(_send.AsSpan(1), rows);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(_send.AsSpan(3), cols);
            await SendAsync(5, ct).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>
    /// A resize that may find the monitor gone: false then (a tty exec as short as `echo x` ends,
    /// and its monitor hangs up, before the first resize goes out), and what it sent stays
    /// readable. A failed resize ended the relay and lost that output (`docker exec -t` printing
    /// nothing, 3 in 300 here).
    /// </summary>
    public ValueTask<bool> TryResizeAsync(ushort rows, ushort cols, CancellationToken ct) => UnlessHungUp(ResizeAsync(rows, cols, ct));

    /// <summary>Stdin for the process; false when the monitor has hung up (the process ended, and what it wrote stays readable).</summary>
    public ValueTask<bool> TryWriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken ct) => UnlessHungUp(WriteStdinAsync(data, ct));

    /// <summary>Closes the process's stdin; false when the monitor has hung up.</summary>
    public ValueTask<bool> TryCloseStdinAsync(CancellationToken ct) => UnlessHungUp(CloseStdinAsync(ct));

    private static async ValueTask<bool> UnlessHungUp(ValueTask send)
    {
        try
        {
            await send.ConfigureAwait(false);
            return true;
        }
        catch (IOException e) when (MonitorHungUp(e))
        {
            return false;
        }
    }

    /// <summary>A send that failed because the monitor had closed the connection (EPIPE, ECONNRESET).</summary>
    private static bool MonitorHungUp(IOException e)
        => e.InnerException is SocketException { SocketErrorCode: SocketError.Shutdown or SocketError.ConnectionReset };

    // One send buffer: the relay's stdin copy and a resize request may write at the same time.
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    private async ValueTask SendAsync(int length, CancellationToken ct)
    {
        try
        {
            int sent = await _socket.SendAsync(_send.AsMemory(0, length), SocketFlags.None, ct).ConfigureAwait(false);
            if (sent != length) throw new IOException($"attach: short send ({sent} of {length} bytes)");
        }
        catch (SocketException e)
        {
            throw new IOException($"attach: {e.Message} (the container may have exited)", e);
        }
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
