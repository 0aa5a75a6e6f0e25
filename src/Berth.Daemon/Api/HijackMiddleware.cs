using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Berth.Daemon.Containers;
using Berth.Daemon.Engine;
using Berth.Daemon.Hosting;
using Berth.Daemon.Monitor;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;

namespace Berth.Daemon.Api;

/// <summary>
/// Attach and exec start take over the HTTP connection (Docker's "hijack": 101 UPGRADED, then a
/// raw bidirectional stream). Kestrel cannot serve them: since .NET 6 it ignores
/// <c>Connection: Upgrade</c> on a request with a body, and Docker's exec start has a JSON body.
/// So this connection middleware reads the head of the connection's request itself: a hijack
/// request is served here on the raw transport; anything else is handed to Kestrel with the bytes
/// already read put back in front. It only ever looks at a connection's first request, so every
/// response Kestrel sends carries <c>Connection: close</c> (see ApiRoutes): each request comes on
/// a connection of its own, and a hijack request can never arrive on a kept-alive one.
/// </summary>
public static partial class HijackMiddleware
{
    private const int MaxHead = DaemonHost.MaxRequestHeadBytes;
    private const int MaxBody = 1024 * 1024;

    [GeneratedRegex(@"^(?:/v[0-9]+\.[0-9]+)?/(?:containers/(?<container>.+)/attach|exec/(?<exec>[^/]+)/start)$", RegexOptions.CultureInvariant)]
    private static partial Regex HijackPath();

    public static Func<ConnectionDelegate, ConnectionDelegate> Create(Func<BerthEngine?> engine) => next => async connection =>
    {
        PipeReader input = connection.Transport.Input;
        byte[] read;
        int headLength;
        while (true)
        {
            ReadResult result = await input.ReadAsync(connection.ConnectionClosed);
            ReadOnlySequence<byte> buffer = result.Buffer;
            SequencePosition? end = FindHeadEnd(buffer);
            if (end is not null || result.IsCompleted || buffer.Length > MaxHead)
            {
                read = buffer.ToArray();
                headLength = end is null ? -1 : (int)buffer.Slice(0, end.Value).Length;
                input.AdvanceTo(buffer.End);
                break;
            }
            input.AdvanceTo(buffer.Start, buffer.End);
        }

        RequestHead? head = headLength > 0 ? RequestHead.Parse(read.AsSpan(0, headLength)) : null;
        Match match = head is null ? Match.Empty : HijackPath().Match(head.Path);
        if (head is null || head.Method != "POST" || !match.Success || engine() is not { } berth)
        {
            // Not ours: Kestrel reads the same bytes, then the rest of the connection.
            var prefixed = new Berth.Images.PrefixedStream(read, input.AsStream(leaveOpen: true));
            connection.Transport = new DuplexPipe(PipeReader.Create(prefixed), connection.Transport.Output);
            await next(connection);
            return;
        }

        Stream output = connection.Transport.Output.AsStream(leaveOpen: true);
        Stream rest = new Berth.Images.PrefixedStream(read.AsMemory(headLength).ToArray(), input.AsStream(leaveOpen: true));
        try
        {
            byte[] body = await ReadBodyAsync(head, rest, connection.ConnectionClosed);
            // Not ConnectionClosed: Kestrel fires it when the client half-closes (docker closes its
            // write side when it attaches no stdin), and the output must go on. A client that is
            // really gone shows as a failed write.
            var session = new HijackSession(berth, head, output, rest, CancellationToken.None);
            if (match.Groups["container"].Success) await session.AttachAsync(Uri.UnescapeDataString(match.Groups["container"].Value));
            else await session.ExecStartAsync(Uri.UnescapeDataString(match.Groups["exec"].Value), body);
        }
        catch (ApiException e)
        {
            await WriteErrorAsync(output, e.StatusCode, e.Message);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            // Usually the client went away; said on stderr (berthd's log) so that a lost stream
            // can be told from a client that left.
            Console.Error.WriteLine($"berthd: hijacked {head.Method} {head.Path} ended: {e.Message}");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A bug: the stream is cut either way, but the reason must reach the log.
            Console.Error.WriteLine($"berthd: hijacked {head.Method} {head.Path} failed: {e}");
        }
        await output.FlushAsync();
    };

    /// <summary>
    /// The end of the request head: the first empty line. Lines may end in a bare LF, as Go's
    /// net/http (dockerd) and Kestrel accept: Docker.DotNet ends its header lines with "\n".
    /// </summary>
    private static SequencePosition? FindHeadEnd(ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (reader.TryAdvanceTo((byte)'\n', advancePastDelimiter: true))
        {
            if (reader.IsNext((byte)'\n', advancePast: true) || reader.IsNext("\r\n"u8, advancePast: true)) return reader.Position;
        }
        return null;
    }

    private static async Task<byte[]> ReadBodyAsync(RequestHead head, Stream rest, CancellationToken cancellationToken)
    {
        if (head.Header("Transfer-Encoding") is { Length: > 0 }) throw ApiException.BadRequest("a chunked body is not accepted on attach or exec start");
        if (!long.TryParse(head.Header("Content-Length"), out long length) || length <= 0) return [];
        if (length > MaxBody) throw ApiException.BadRequest("request body too large");
        byte[] body = new byte[length];
        await rest.ReadExactlyAsync(body, cancellationToken);
        return body;
    }

    internal static async Task WriteErrorAsync(Stream output, int status, string message)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(new ErrorResponse(message), ApiJson.Context.ErrorResponse);
        string reason = status switch { 400 => "Bad Request", 404 => "Not Found", 409 => "Conflict", 501 => "Not Implemented", _ => "Internal Server Error" };
        string headers = $"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {json.Length + 1}\r\nConnection: close\r\nApi-Version: {ApiVersion.Current}\r\nOSType: linux\r\nServer: Berth/{BerthEngine.Version} (linux)\r\n\r\n";
        await output.WriteAsync(Encoding.ASCII.GetBytes(headers));
        await output.WriteAsync(json);
        await output.WriteAsync("\n"u8.ToArray());
        await output.FlushAsync();
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}

/// <summary>The request line and headers of a hijack request.</summary>
internal sealed class RequestHead
{
    public string Method { get; private init; } = "";
    public string Path { get; private init; } = "";
    public Dictionary<string, StringValues> Query { get; private init; } = [];
    private Dictionary<string, string> Headers { get; } = new(StringComparer.OrdinalIgnoreCase);

    public string? Header(string name) => Headers.GetValueOrDefault(name);

    public bool Upgrade => (Header("Connection") ?? "").Contains("upgrade", StringComparison.OrdinalIgnoreCase);

    public static RequestHead? Parse(ReadOnlySpan<byte> bytes)
    {
        string text = Encoding.Latin1.GetString(bytes);
        string[] lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToArray(); // CRLF, or a bare LF (see FindHeadEnd)
        string[] requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || !requestLine[2].StartsWith("HTTP/1.", StringComparison.Ordinal)) return null;
        string target = requestLine[1];
        int q = target.IndexOf('?');
        var head = new RequestHead
        {
            Method = requestLine[0],
            Path = q < 0 ? target : target[..q],
            Query = q < 0 ? [] : QueryHelpers.ParseQuery(target[q..]),
        };
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon > 0) head.Headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        return head;
    }

    public bool Bool(string name) => QueryArgs.ParseBool(name, Query.TryGetValue(name, out StringValues v) ? v.ToString() : null);

    public string? String(string name) => Query.TryGetValue(name, out StringValues v) && !string.IsNullOrEmpty(v) ? v.ToString() : null;
}

/// <summary>One hijacked attach or exec start: the 101 response, then the relay between client and monitor.</summary>
internal sealed class HijackSession(BerthEngine engine, RequestHead head, Stream output, Stream input, CancellationToken aborted)
{
    private static readonly byte[] DefaultDetachKeys = [0x10, 0x11]; // ctrl-p ctrl-q

    private ContainerService Containers => engine.Containers;

    public async Task AttachAsync(string reference)
    {
        ContainerEntry entry = Containers.Find(reference);
        bool stdin = head.Bool("stdin"), stdout = head.Bool("stdout"), stderr = head.Bool("stderr");
        bool stream = head.Bool("stream"), logs = head.Bool("logs");
        bool tty = entry.Record.Config.Tty;
        byte[] detachKeys = ParseDetachKeys(head.String("detachKeys"));
        if (stdin && !entry.Record.Config.OpenStdin) stdin = false; // dockerd: stdin only when the container has it open

        // Before the 101, so a client that is told "upgraded" is attached for sure.
        // Output is relayed to the client until the end: lossless, so a slow reader gets all of it (as from dockerd).
        Task<AttachConnection>? connecting = stream ? ConnectForAttachAsync(entry, lossless: stdout || stderr) : null;
        Containers.PublishEvent(entry.Record, "attach");
        await WriteUpgradeAsync(tty);
        if (logs && Containers.LogOf(entry.Record) is { } log)
        {
            await foreach (LogEntry e in LogReader.ReadAsync(log, null, null, -1, false, () => true, aborted))
            {
                int s = e.Stream == "stderr" ? 2 : 1;
                if ((s == 1 && stdout) || (s == 2 && stderr)) await WriteFrameAsync(s, e.Line, tty);
            }
            await output.FlushAsync(aborted);
        }
        if (connecting is null) return;
        AttachConnection connection;
        try
        {
            connection = await connecting;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or System.Net.Sockets.SocketException)
        {
            return; // the start failed, or the container exited before the monitor could be reached
        }
        await using var _ = connection;
        await RelayAsync(connection, stdin, stdout, stderr, tty, detachKeys, entry.Record.Config.StdinOnce);
    }

    /// <summary>
    /// Connects to the running container's monitor, or registers with the next start and waits for
    /// it (dockerd's attach to a created container, which `docker start -a` and `docker run` rely on).
    /// </summary>
    private async Task<AttachConnection> ConnectForAttachAsync(ContainerEntry entry, bool lossless)
    {
        TaskCompletionSource connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<string> monitorDir;
        lock (entry.PendingAttaches)
        {
            if (entry.StartingMonitorDir is { } starting) monitorDir = Task.FromResult(starting);
            else if (entry.Record.State.Running) monitorDir = Task.FromResult(Containers.MonitorDirectory(entry.Record.Id));
            else
            {
                entry.PendingAttaches.Add(connected);
                monitorDir = entry.NextStart.Task;
            }
        }
        try
        {
            string dir = await monitorDir.WaitAsync(aborted);
            return await AttachConnection.ConnectAsync(dir, aborted, lossless);
        }
        finally
        {
            connected.TrySetResult();
        }
    }

    /// <summary>
    /// dockerd's order: the body is checked (Content-Type, JSON), then the exec and its container
    /// (404, 409 not running or paused, 409 already run); each refusal is an HTTP answer, before the 101.
    /// </summary>
    public async Task ExecStartAsync(string id, byte[] bodyBytes)
    {
        JsonResults.CheckForJson(head.Header("Content-Type"), bodyBytes.Length);
        ExecStartBody body;
        try
        {
            body = bodyBytes.Length == 0 ? new ExecStartBody()
                : JsonSerializer.Deserialize(bodyBytes, ApiJson.Context.ExecStartBody) ?? new ExecStartBody();
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest("invalid JSON: " + Berth.Images.JsonErrorText.Describe(e));
        }
        ExecInstance exec = Containers.FindExec(id);
        ContainerService.CheckCanExec(exec.Container.Record);
        bool tty = body.Tty || exec.Config.Tty;
        if (body.Detach)
        {
            await Containers.StartExecAsync(exec, tty, waitForAttach: false, aborted);
            await output.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), aborted);
            return;
        }
        if (exec.Started) throw ApiException.Conflict($"Error: Exec command {exec.Id} has already run");
        await WriteUpgradeAsync(tty);
        try
        {
            await Containers.StartExecAsync(exec, tty, waitForAttach: true, aborted);
        }
        catch (ApiException e)
        {
            // dockerd writes the failure into the hijacked stream; the client reads the exit code (126/127) from inspect.
            await WriteFrameAsync(1, Encoding.UTF8.GetBytes(e.Message + "\r\n"), tty);
            await output.FlushAsync(aborted);
            return;
        }
        await using (AttachConnection connection = await ConnectWithRetryAsync(exec.StateDir, lossless: exec.Config.AttachStdout || exec.Config.AttachStderr))
        {
            (ushort, ushort)? size = body.ConsoleSize is [int h, int w] ? ((ushort)h, (ushort)w) : null;
            lock (exec)
            {
                exec.Relay = connection;
                size = exec.PendingSize ?? size;
            }
            if (size is (ushort rows, ushort cols) && tty) await connection.TryResizeAsync(rows, cols, aborted);
            try
            {
                await RelayAsync(connection, exec.Config.AttachStdin, exec.Config.AttachStdout, exec.Config.AttachStderr, tty,
                    ParseDetachKeys(exec.Config.DetachKeys), stdinOnce: true);
            }
            finally
            {
                lock (exec) exec.Relay = null;
            }
        }
        // The monitor closes attach connections after it has written the exit file: record it before
        // the client, which asks /exec/{id}/json next, sees the end of the stream.
        await exec.Exited.Task.WaitAsync(TimeSpan.FromSeconds(5), aborted).ContinueWith(_ => { }, TaskScheduler.Default);
        Containers.RecordExecExit(exec);
    }

    /// <summary>The exec's monitor listens before it answers its launch; a refused connect under load is retried briefly.</summary>
    private async Task<AttachConnection> ConnectWithRetryAsync(string stateDir, bool lossless)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return await AttachConnection.ConnectAsync(stateDir, aborted, lossless);
            }
            catch (IOException) when (attempt < 5)
            {
                await Task.Delay(20 * (attempt + 1), aborted);
            }
        }
    }

    private async Task WriteUpgradeAsync(bool tty)
    {
        string contentType = tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
        string text = head.Upgrade
            ? $"HTTP/1.1 101 UPGRADED\r\nContent-Type: {contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nApi-Version: {ApiVersion.Current}\r\n\r\n"
            : $"HTTP/1.1 200 OK\r\nContent-Type: {contentType}\r\nApi-Version: {ApiVersion.Current}\r\n\r\n";
        await output.WriteAsync(Encoding.ASCII.GetBytes(text), aborted);
        await output.FlushAsync(aborted);
    }

    private async Task WriteFrameAsync(int stream, ReadOnlyMemory<byte> data, bool tty)
    {
        if (!tty)
        {
            byte[] header = new byte[8];
            header[0] = (byte)stream;
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), (uint)data.Length);
            await output.WriteAsync(header, aborted);
        }
        await output.WriteAsync(data, aborted);
    }

    /// <summary>
    /// Output from the monitor to the client until the process ends (the monitor closes); input from
    /// the client to the process until the client closes its side (then stdin is closed when the
    /// container was made with StdinOnce) or types the detach keys (tty only; then only this attach ends).
    /// </summary>
    private async Task RelayAsync(AttachConnection connection, bool stdin, bool stdout, bool stderr, bool tty, byte[] detachKeys, bool stdinOnce)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        Task outputLoop = Task.Run(async () =>
        {
            while (await connection.ReadAsync(cts.Token) is { } frame)
            {
                if ((frame.Stream == 1 && !stdout) || (frame.Stream == 2 && !stderr)) continue;
                await WriteFrameAsync(frame.Stream, frame.Data, tty);
                await output.FlushAsync(cts.Token);
            }
        }, cts.Token);
        // As dockerd (container/stream/attach.go): the end of the client's stdin closes the
        // container's only without a tty. With one, a client that detached (its CLI may spot the
        // detach keys itself and just hang up) must leave the container's terminal open.
        Task<bool> inputLoop = stdin ? Task.Run(() => CopyStdinAsync(connection, tty ? detachKeys : [], stdinOnce && !tty, cts.Token), cts.Token) : Task.FromResult(false);
        bool clientGone = false;
        while (true)
        {
            Task done = await Task.WhenAny(outputLoop, inputLoop);
            if (done == outputLoop)
            {
                clientGone = outputLoop.IsFaulted; // a write to the client failed
                break;
            }
            if (inputLoop.IsCompletedSuccessfully && inputLoop.Result) break; // detached
            if (inputLoop.IsFaulted) // the client went away
            {
                clientGone = true;
                break;
            }
            inputLoop = new TaskCompletionSource<bool>().Task; // stdin closed: keep relaying output
        }
        await cts.CancelAsync();
        try
        {
            await outputLoop;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
        }
        // A client that vanished (a reset connection, a failed write) ends the process's stdin as its EOF
        // would have, as in dockerd, whose stdin copy ends on the read error and closes it. Without this an
        // `exec -i` reading stdin (cat) whose client was killed ran on for good, with its monitor, the
        // monitor's connection and berthd's watch of it.
        if (clientGone && stdin && stdinOnce && !tty) await connection.TryCloseStdinAsync(CancellationToken.None);
    }

    /// <returns>True when the client typed the detach keys.</returns>
    private async Task<bool> CopyStdinAsync(AttachConnection connection, byte[] detachKeys, bool stdinOnce, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[32 * 1024];
        int matched = 0;
        while (true)
        {
            int n = await input.ReadAsync(buffer, cancellationToken);
            if (n == 0)
            {
                if (stdinOnce) await connection.TryCloseStdinAsync(cancellationToken);
                return false;
            }
            if (detachKeys.Length > 0)
            {
                // Bytes that might start the detach sequence are held back until it is decided.
                var forward = new List<byte>(n + matched);
                for (int i = 0; i < n; i++)
                {
                    if (buffer[i] == detachKeys[matched])
                    {
                        if (++matched == detachKeys.Length) return true;
                        continue;
                    }
                    forward.AddRange(detachKeys.AsSpan(0, matched).ToArray());
                    matched = 0;
                    if (buffer[i] == detachKeys[0]) matched = 1;
                    else forward.Add(buffer[i]);
                }
                if (forward.Count > 0 && !await connection.TryWriteStdinAsync(forward.ToArray(), cancellationToken)) return false;
            }
            // A monitor that hung up has a process that takes no more input, but its output is
            // still to be relayed: that is the end of stdin, not of the session (a failed write
            // here ended the relay and lost the output of `... | docker exec -i c echo x`).
            else if (!await connection.TryWriteStdinAsync(buffer.AsMemory(0, n), cancellationToken)) return false;
        }
    }

    /// <summary>Docker's detach key syntax: <c>ctrl-p,ctrl-q</c>, letters, <c>ctrl-@</c>…<c>ctrl-_</c>.</summary>
    internal static byte[] ParseDetachKeys(string? text)
    {
        if (string.IsNullOrEmpty(text)) return DefaultDetachKeys;
        var keys = new List<byte>();
        foreach (string key in text.Split(','))
        {
            if (key.Length == 1) keys.Add((byte)key[0]);
            else if (key.StartsWith("ctrl-", StringComparison.Ordinal) && key.Length == 6)
            {
                char c = char.ToLowerInvariant(key[5]);
                if (c is >= 'a' and <= 'z') keys.Add((byte)(c - 'a' + 1));
                else if (c is '@' or '[' or '\\' or ']' or '^' or '_') keys.Add((byte)(c == '@' ? 0 : c - '[' + 27));
                else throw ApiException.BadRequest($"Invalid detach keys ({text}) provided");
            }
            else throw ApiException.BadRequest($"Invalid detach keys ({text}) provided");
        }
        return [.. keys];
    }
}
