using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

internal static class RequestBody
{
    /// <summary>
    /// Lets a handler read the request body synchronously: tar readers (import, load, cp, build
    /// contexts) run on a worker thread of their own, where a blocking read costs nothing.
    /// </summary>
    public static void AllowSynchronousIO(HttpContext context)
    {
        if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpBodyControlFeature>() is { } body) body.AllowSynchronousIO = true;
    }
}
