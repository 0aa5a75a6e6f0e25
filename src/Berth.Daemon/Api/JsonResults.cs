using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>Reads and writes source-generated JSON bodies (NativeAOT-safe, no reflection).</summary>
public static class JsonResults
{
    public static async Task WriteAsync<T>(HttpContext context, T value, JsonTypeInfo<T> type, int status = 200)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        byte[] line = Line(value, type);
        context.Response.ContentLength = line.Length;
        await context.Response.Body.WriteAsync(line, context.RequestAborted);
    }

    /// <summary>
    /// The value's JSON and its newline in one array, for one write: with chunked encoding each write is
    /// a chunk, and a newline arriving as a chunk of its own is what docker-py's stream splitter then
    /// tries to decode as a value ("Expecting value: line 2 column 1"). Go's json.Encoder writes both at once.
    /// </summary>
    public static byte[] Line<T>(T value, JsonTypeInfo<T> type)
    {
        // SerializeToUtf8Bytes, not a Utf8JsonWriter of our own: the writer's options, not the serializer's,
        // choose the escaping, and the API's is Go's (quotes stay readable).
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(value, type);
        byte[] line = new byte[json.Length + 1];
        json.CopyTo(line, 0);
        line[^1] = (byte)'\n';
        return line;
    }

    /// <summary>
    /// dockerd's CheckForJSON, which the endpoints that take a JSON document run first (through
    /// <see cref="ReadAsync"/>; commit and the hijacked exec start call it themselves): no Content-Type only
    /// with no body, otherwise application/json (parameters such as a charset allowed).
    /// </summary>
    public static void CheckForJson(HttpContext context)
        => CheckForJson(context.Request.ContentType, context.Request.ContentLength ?? (context.Request.Headers.TransferEncoding.Count > 0 ? -1 : 0));

    /// <inheritdoc cref="CheckForJson(HttpContext)"/>
    public static void CheckForJson(string? contentType, long contentLength)
    {
        if (string.IsNullOrEmpty(contentType) && contentLength == 0) return;
        if (System.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media)
            && string.Equals(media.MediaType, "application/json", StringComparison.OrdinalIgnoreCase)) return;
        throw ApiException.BadRequest($"Content-Type specified ({contentType}) must be 'application/json'");
    }

    /// <summary>
    /// The request's JSON body, after <see cref="CheckForJson(HttpContext)"/> (as moby's ReadJSON); default for an
    /// empty body or <c>null</c>; malformed JSON is a 400 naming the problem.
    /// </summary>
    public static async Task<T?> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> type)
    {
        CheckForJson(context);
        if (context.Request.ContentLength == 0) return default;
        try
        {
            return await JsonSerializer.DeserializeAsync(context.Request.Body, type, context.RequestAborted);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest("invalid JSON: " + Berth.Images.JsonErrorText.Describe(e));
        }
    }
}
