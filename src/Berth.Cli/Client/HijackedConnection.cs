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
        var buffer = new List<byte>(1024);
        var chunk = new byte[4096];
        int end;
        while ((end = IndexOfHeadEnd(buffer)) < 0)
        {
            int n = await _socket.ReceiveAsync(chunk, SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) throw new IOException("the daemon closed the connection before answering");
            buffer.AddRange(chunk.AsSpan(0, n));
            if (buffer.Count > 64 * 1024) throw new IOException("the daemon's response head is too large");
        }
        byte[] all = buffer.ToArray();
        string[] lines = Encoding.ASCII.GetString(all, 0, end).Split("\r\n");
        string[] status = lines[0].Split(' ', 3);
        int code = status.Length >= 2 && int.TryParse(status[1], out int c) ? c : 0;
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon > 0) headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        _pending = all[(end + 4)..];
        if (code is 101 or 200) return;

        // An error: read the body (Content-Length or chunked, else until close) for the message.
        var body = new MemoryStream();
        body.Write(_pending);
        _pending = [];
        int m;
        while ((!headers.TryGetValue("Content-Length", out string? length) || body.Length < long.Parse(length))
               && (m = await _socket.ReceiveAsync(chunk, SocketFlags.None, ct).ConfigureAwait(false)) > 0)
        {
            body.Write(chunk, 0, m);
            if (headers.TryGetValue("Transfer-Encoding", out string? te) && te.Contains("chunked") && EndsWithLastChunk(body)) break;
        }
        string text = Encoding.UTF8.GetString(body.ToArray());
        if (headers.TryGetValue("Transfer-Encoding", out string? enc) && enc.Contains("chunked")) text = Dechunk(text);
        throw new DaemonException((HttpStatusCode)code, DaemonException.MessageOf(text, (HttpStatusCode)code));
    }

    private static bool EndsWithLastChunk(MemoryStream body)
    {
        byte[] b = body.GetBuffer();
        return body.Length >= 5 && Encoding.ASCII.GetString(b, (int)body.Length - 5, 5) == "0\r\n\r\n";
    }

    private static string Dechunk(string text)
    {
        var sb = new StringBuilder();
        int i = 0;
        while (i < text.Length)
        {
            int eol = text.IndexOf("\r\n", i, StringComparison.Ordinal);
            if (eol < 0) break;
            int size = Convert.ToInt32(text[i..eol].Split(';')[0].Trim(), 16);
            if (size == 0) break;
            sb.Append(text, eol + 2, Math.Min(size, text.Length - eol - 2));
            i = eol + 2 + size + 2;
        }
        return sb.ToString();
    }

    private static int IndexOfHeadEnd(List<byte> b)
    {
        for (int i = 0; i + 3 < b.Count; i++)
            if (b[i] == '\r' && b[i + 1] == '\n' && b[i + 2] == '\r' && b[i + 3] == '\n') return i;
        return -1;
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
