using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>
/// Docker's chunked stream of JSON progress messages (pull, push, load, import): one JSON object
/// per line, flushed as it comes. Progress callbacks fire on transfer threads, so messages go
/// through a channel to one writer loop that owns the response body.
/// </summary>
public sealed class JsonMessageStream : IAsyncDisposable
{
    private readonly Channel<JsonMessage> _channel = Channel.CreateUnbounded<JsonMessage>();
    private readonly HttpContext _context;
    private readonly Task _writer;

    private JsonMessageStream(HttpContext context)
    {
        _context = context;
        _writer = WriteLoopAsync();
    }

    /// <summary>
    /// Prepares a 200 stream. The headers go with the first message, as dockerd's flushed writer
    /// does: until then (<see cref="Posted"/> false) a failure can still be an HTTP error status.
    /// </summary>
    public static Task<JsonMessageStream> StartAsync(HttpContext context)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        return Task.FromResult(new JsonMessageStream(context));
    }

    /// <summary>True once a message was posted: errors must then travel in the stream (errorDetail).</summary>
    public bool Posted => Volatile.Read(ref _posted);

    private bool _posted;

    public void Post(JsonMessage message)
    {
        Volatile.Write(ref _posted, true);
        _channel.Writer.TryWrite(message);
    }

    private async Task WriteLoopAsync()
    {
        Stream body = _context.Response.Body;
        try
        {
            await foreach (JsonMessage message in _channel.Reader.ReadAllAsync())
            {
                // One write per message, its line end included: with chunked encoding a separate
                // "\r\n" can arrive as a chunk of its own, which docker-py's stream splitter
                // then tries to decode as a message.
                byte[] json = JsonSerializer.SerializeToUtf8Bytes(message, ApiJson.Context.JsonMessage);
                byte[] line = new byte[json.Length + 2];
                json.CopyTo(line, 0);
                line[^2] = (byte)'\r';
                line[^1] = (byte)'\n';
                await body.WriteAsync(line, _context.RequestAborted);
                if (_channel.Reader.Count == 0) await body.FlushAsync(_context.RequestAborted);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The client went away; the operation itself is cancelled through RequestAborted.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        await _writer;
    }
}

/// <summary>Docker's progress bar text (pkg/jsonmessage JSONProgress.String) and human sizes.</summary>
public static class ProgressText
{
    public static string Bar(long current, long total)
    {
        if (total <= 0) return $"{HumanSize(current)}";
        const int width = 50;
        int filled = (int)Math.Clamp(width * current / total, 0, width);
        string bar = filled == 0 ? new string(' ', width) : new string('=', filled - 1) + (filled < width ? ">" : "=") + new string(' ', width - filled);
        return $"[{bar}] {HumanSize(current),8}/{HumanSize(total)}";
    }

    /// <summary>go-units HumanSize: decimal units, four significant digits.</summary>
    public static string HumanSize(double size)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB", "PB"];
        int i = 0;
        while (size >= 1000 && i < units.Length - 1)
        {
            size /= 1000;
            i++;
        }
        return size.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) + units[i];
    }
}
