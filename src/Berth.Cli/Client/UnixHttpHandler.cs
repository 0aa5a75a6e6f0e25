using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Berth.Cli.Client;

/// <summary>
/// HTTP/1.1 over the daemon's unix socket, one connection per request (<c>Connection: close</c>),
/// under <see cref="HttpClient"/>. SocketsHttpHandler does the same job with a connection pool,
/// timers and HTTP/2 machinery that a CLI making four requests never uses; building it cost about
/// 1 ms of a `berth` invocation's 3–6 ms (a throw-away comparison of two NativeAOT programs making
/// the same two requests: 4.6 ms with SocketsHttpHandler, 3.6 ms with this). Request bodies of
/// unknown length (a build context from stdin, a tar stream) go out chunked; response bodies are
/// read by Content-Length, chunked, or to the end of the connection, and streamed to the caller
/// (logs -f, events and pull progress are read as they come).
/// </summary>
internal sealed class UnixHttpHandler(string host, string socketPath) : HttpMessageHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                throw new DaemonUnreachableException(host, e);
            }
            await WriteRequestAsync(socket, request, ct).ConfigureAwait(false);
            ResponseHead head = await ResponseHead.ReadAsync(socket, ct).ConfigureAwait(false);
            var response = new HttpResponseMessage((HttpStatusCode)head.Status)
            {
                ReasonPhrase = head.Reason,
                RequestMessage = request,
                Version = HttpVersion.Version11,
            };
            bool noBody = request.Method == HttpMethod.Head || head.Status is 204 or 304 or (>= 100 and < 200);
            response.Content = new StreamContent(new ResponseBodyStream(socket, head.Rest, noBody ? 0 : head.ContentLength, !noBody && head.Chunked));
            foreach ((string name, string value) in head.Headers)
            {
                if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)) continue;
                if (!response.Headers.TryAddWithoutValidation(name, value)) response.Content.Headers.TryAddWithoutValidation(name, value);
            }
            return response;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task WriteRequestAsync(Socket socket, HttpRequestMessage request, CancellationToken ct)
    {
        var head = new StringBuilder()
            .Append(request.Method.Method).Append(' ').Append(request.RequestUri!.PathAndQuery).Append(" HTTP/1.1\r\n")
            .Append("Host: berth\r\nConnection: close\r\n");
        foreach (var (name, values) in request.Headers.NonValidated) head.Append(name).Append(": ").Append(values.ToString()).Append("\r\n");
        HttpContent? content = request.Content;
        long? length = null;
        if (content is not null)
        {
            foreach (var (name, values) in content.Headers.NonValidated)
                if (!name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) head.Append(name).Append(": ").Append(values.ToString()).Append("\r\n");
            length = content.Headers.ContentLength;
            head.Append(length is long n ? $"Content-Length: {n}\r\n" : "Transfer-Encoding: chunked\r\n");
        }
        else if (request.Method == HttpMethod.Post || request.Method == HttpMethod.Put)
        {
            head.Append("Content-Length: 0\r\n");
        }
        head.Append("\r\n");

        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), ct).ConfigureAwait(false);
        if (content is null) return;
        try
        {
            if (length is not null)
            {
                await content.CopyToAsync(stream, ct).ConfigureAwait(false);
            }
            else
            {
                await using var chunked = new ChunkedRequestStream(stream);
                await content.CopyToAsync(chunked, ct).ConfigureAwait(false);
                await chunked.FinishAsync(ct).ConfigureAwait(false);
            }
        }
        catch (IOException) when (!ct.IsCancellationRequested)
        {
            // The daemon answered (an error) and closed before taking the whole body: its answer,
            // read next, says why, which is more useful than a broken pipe.
        }
    }

    /// <summary>Writes what it is given as HTTP/1.1 chunks; <see cref="FinishAsync"/> writes the last, empty one.</summary>
    private sealed class ChunkedRequestStream(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            if (buffer.IsEmpty) return;
            await inner.WriteAsync(Encoding.ASCII.GetBytes($"{buffer.Length:x}\r\n"), ct).ConfigureAwait(false);
            await inner.WriteAsync(buffer, ct).ConfigureAwait(false);
            await inner.WriteAsync("\r\n"u8.ToArray(), ct).ConfigureAwait(false);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct)
            => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, default).GetAwaiter().GetResult();

        public Task FinishAsync(CancellationToken ct) => inner.WriteAsync("0\r\n\r\n"u8.ToArray(), ct).AsTask();

        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

/// <summary>The status line and headers of an HTTP/1.1 response, and the bytes read past them.</summary>
internal sealed record ResponseHead(int Status, string Reason, IReadOnlyList<(string Name, string Value)> Headers, byte[] Rest)
{
    private const int MaxHead = 64 * 1024;

    public string? this[string name]
        => Headers.Where(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).LastOrDefault();

    /// <summary>The declared body length; null when there is none (chunked, or until the connection closes).</summary>
    public long? ContentLength
        => !Chunked && long.TryParse(this["Content-Length"], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n) ? n : null;

    public bool Chunked => this["Transfer-Encoding"]?.Contains("chunked", StringComparison.OrdinalIgnoreCase) == true;

    public static async Task<ResponseHead> ReadAsync(Socket socket, CancellationToken ct)
    {
        byte[] buffer = new byte[4096];
        int filled = 0, end;
        while ((end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (filled == buffer.Length)
            {
                if (buffer.Length >= MaxHead) throw new HttpRequestException("the daemon's response head is too large");
                Array.Resize(ref buffer, buffer.Length * 2);
            }
            int n = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) throw new HttpRequestException("the daemon closed the connection before answering");
            filled += n;
        }
        string[] lines = Encoding.Latin1.GetString(buffer, 0, end).Split("\r\n");
        string[] status = lines[0].Split(' ', 3);
        if (status.Length < 2 || !status[0].StartsWith("HTTP/1.", StringComparison.Ordinal)
            || !int.TryParse(status[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int code))
            throw new HttpRequestException($"the daemon's answer is not HTTP/1.x: `{lines[0]}`");
        var headers = new List<(string, string)>();
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon > 0) headers.Add((line[..colon].Trim(), line[(colon + 1)..].Trim()));
        }
        return new ResponseHead(code, status.Length > 2 ? status[2] : "", headers, buffer[(end + 4)..filled]);
    }
}

/// <summary>
/// A response body off the socket (which it owns): <c>length</c> bytes, or chunked, or — with
/// neither — everything until the daemon closes. Bytes that came with the head are served first.
/// </summary>
internal sealed class ResponseBodyStream(Socket socket, byte[] rest, long? length, bool chunked) : Berth.Images.ReadOnlyStream
{
    private byte[] _pending = rest;
    private int _pendingOffset;
    private long _left = length ?? -1;      // bytes left of a Content-Length body or the current chunk
    private bool _done = length == 0 && !chunked;
    private readonly byte[] _one = new byte[1];

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (_done || buffer.IsEmpty) return 0;
        if (chunked && _left <= 0)
        {
            if (_left == 0) await ExpectCrLfAsync(ct).ConfigureAwait(false); // the end of the previous chunk
            _left = await ReadChunkSizeAsync(ct).ConfigureAwait(false);
            if (_left == 0)
            {
                _done = true; // trailers, if any, are not read: the connection closes anyway
                return 0;
            }
        }
        int want = _left >= 0 ? (int)Math.Min(buffer.Length, _left) : buffer.Length;
        int n = await ReadRawAsync(buffer[..want], ct).ConfigureAwait(false);
        if (n == 0)
        {
            if (_left > 0) throw new IOException("the daemon closed the connection in the middle of a response");
            _done = true;
            return 0;
        }
        if (_left >= 0) _left -= n;
        if (_left == 0 && !chunked) _done = true;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct)
        => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    private async ValueTask<int> ReadRawAsync(Memory<byte> buffer, CancellationToken ct)
    {
        if (_pendingOffset < _pending.Length)
        {
            int n = Math.Min(buffer.Length, _pending.Length - _pendingOffset);
            _pending.AsMemory(_pendingOffset, n).CopyTo(buffer);
            _pendingOffset += n;
            return n;
        }
        return await socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
    }

    private async ValueTask<byte> ReadByteAsync(CancellationToken ct)
    {
        if (await ReadRawAsync(_one, ct).ConfigureAwait(false) == 0) throw new IOException("the daemon closed the connection in the middle of a chunked response");
        return _one[0];
    }

    private async ValueTask ExpectCrLfAsync(CancellationToken ct)
    {
        if (await ReadByteAsync(ct).ConfigureAwait(false) != '\r' || await ReadByteAsync(ct).ConfigureAwait(false) != '\n')
            throw new IOException("malformed chunked response from the daemon");
    }

    private async ValueTask<long> ReadChunkSizeAsync(CancellationToken ct)
    {
        var line = new StringBuilder();
        for (byte b; (b = await ReadByteAsync(ct).ConfigureAwait(false)) != '\n';)
        {
            if (line.Length > 1024) throw new IOException("malformed chunked response from the daemon");
            line.Append((char)b);
        }
        string size = line.ToString().TrimEnd('\r').Split(';')[0].Trim();
        if (!long.TryParse(size, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out long n) || n < 0)
            throw new IOException($"malformed chunk size `{size}` in the daemon's response");
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) socket.Dispose();
        base.Dispose(disposing);
    }
}
