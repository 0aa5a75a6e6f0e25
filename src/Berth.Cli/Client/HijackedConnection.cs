using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Berth.Cli.Client;

/// <summary>
/// A request whose connection the daemon takes over (Docker's "hijack": attach and exec start).
/// HttpClient cannot hand back the raw connection, so this writes the HTTP/1.1 request itself on
/// its own unix socket, reads the response head (<c>101 Switching Protocols</c>, or <c>200</c> from
/// daemons that skip the upgrade) and from then on is a plain byte stream both ways. Bytes that
/// arrived with the head are served first. <see cref="CloseWrite"/> half-closes the socket, which
/// is how the daemon learns that stdin ended.
/// </summary>
internal sealed class HijackedConnection : IDisposable
{
    private readonly Socket _socket;
    private byte[] _pending = [];
    private int _pendingOffset;

    private HijackedConnection(Socket socket) => _socket = socket;

    public static async Task<HijackedConnection> OpenAsync(DaemonClient client, string pathAndQuery, JsonNode? body, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var connection = new HijackedConnection(socket);
        try
        {
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(client.SocketPath), ct).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                throw new DaemonUnreachableException(client.Host, e);
            }
            byte[] payload = body is null ? [] : Encoding.UTF8.GetBytes(body.ToJsonString());
            var head = new StringBuilder()
                .Append("POST ").Append(pathAndQuery).Append(" HTTP/1.1\r\n")
                .Append("Host: berth\r\nUser-Agent: berth-cli/1.0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n");
            if (body is not null) head.Append("Content-Type: application/json\r\n");
            head.Append("Content-Length: ").Append(payload.Length).Append("\r\n\r\n");
            await socket.SendAsync(Encoding.ASCII.GetBytes(head.ToString()), SocketFlags.None, ct).ConfigureAwait(false);
            if (payload.Length > 0) await socket.SendAsync(payload, SocketFlags.None, ct).ConfigureAwait(false);
            await connection.ReadResponseHeadAsync(ct).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private async Task ReadResponseHeadAsync(CancellationToken ct)
    {
        ResponseHead head = await ResponseHead.ReadAsync(_socket, ct).ConfigureAwait(false);
        if (head.Status is 101 or 200)
        {
            _pending = head.Rest;
            return;
        }
        // An error: its body (Content-Length, chunked, or until close) holds the message. The body
        // stream is not disposed here: the socket is this connection's, disposed with it.
        var body = new ResponseBodyStream(_socket, head.Rest, head.ContentLength, head.Chunked);
        using var reader = new StreamReader(body, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, bufferSize: 4096, leaveOpen: true);
        string text = await reader.ReadToEndAsync(ct).ConfigureAwait(false);
        throw new DaemonException((HttpStatusCode)head.Status, DaemonException.MessageOf(text, (HttpStatusCode)head.Status));
    }

    /// <summary>Reads what the daemon sends; 0 at the end of the stream.</summary>
    public int Read(Span<byte> buffer)
    {
        if (_pendingOffset < _pending.Length)
        {
            int n = Math.Min(buffer.Length, _pending.Length - _pendingOffset);
            _pending.AsSpan(_pendingOffset, n).CopyTo(buffer);
            _pendingOffset += n;
            return n;
        }
        try
        {
            return _socket.Receive(buffer);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.OperationAborted)
        {
            return 0;
        }
        catch (ObjectDisposedException)
        {
            return 0;
        }
    }

    /// <summary>Reads exactly buffer.Length bytes; false at a clean end of stream before the first byte.</summary>
    public bool ReadExactly(Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = Read(buffer[done..]);
            if (n == 0)
            {
                if (done == 0) return false;
                throw new EndOfStreamException("the daemon ended the stream inside a frame");
            }
            done += n;
        }
        return true;
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        int done = 0;
        while (done < data.Length) done += _socket.Send(data[done..]);
    }

    /// <summary>Half-close: the daemon reads end of file on the container's stdin.</summary>
    public void CloseWrite()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Dispose() => _socket.Dispose();
}
