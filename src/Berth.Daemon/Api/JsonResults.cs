using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>Writes source-generated JSON bodies (NativeAOT-safe, no reflection).</summary>
public static class JsonResults
{
    public static async Task WriteAsync<T>(HttpContext context, T value, JsonTypeInfo<T> type, int status = 200)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(value, type);
        context.Response.ContentLength = bytes.Length + 1;
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
        await context.Response.Body.WriteAsync("\n"u8.ToArray(), context.RequestAborted);
    }
}
