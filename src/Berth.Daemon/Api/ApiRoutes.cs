using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Berth.Daemon.Api;

/// <summary>
/// The Engine API's routes. Each resource group is one dispatcher that matches method and path
/// itself, so a wrong method gives Docker's 404 "page not found" rather than ASP.NET's bare 405.
/// The container service adds its group here (replacing the 501 for <c>/containers</c>,
/// <c>/exec</c>; attach and exec start use Kestrel's IHttpUpgradeFeature for the 101 hijack).
/// </summary>
public static class ApiRoutes
{
    public static void Map(WebApplication app)
    {
        ILogger logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Berth.Daemon.Api");
        app.Use((context, next) => ErrorHandling.Middleware(context, next, logger));
        app.Use(ApiVersion.Middleware);
        // One request per connection: HijackMiddleware looks only at a connection's first request.
        app.Use((context, next) =>
        {
            context.Response.Headers.Connection = "close";
            return next(context);
        });
        app.UseRouting();

        app.Map("/_ping", SystemApi.Ping);
        app.Map("/version", SystemApi.Version);
        app.Map("/info", SystemApi.Info);
        app.Map("/auth", SystemApi.Auth);
        app.Map("/images/{**rest}", ImagesApi.Dispatch);
        app.Map("/containers/{**rest}", ContainersApi.Dispatch);
        app.Map("/exec/{**rest}", ExecApi.Dispatch);
        app.Map("/commit", ContainerFilesApi.Commit);
        app.Map("/networks", NetworksApi.Dispatch);
        app.Map("/networks/{**rest}", NetworksApi.Dispatch);
        app.Map("/volumes", VolumesApi.Dispatch);
        app.Map("/volumes/{**rest}", VolumesApi.Dispatch);
        app.Map("/events", EventsApi.Handle);
        app.Map("/build", BuildApi.Build);
        app.Map("/build/prune", BuildApi.Prune);
        app.Map("/system/{**rest}", SystemDfApi.Dispatch);
        foreach (string group in NotImplementedApi.Groups)
        {
            app.Map($"/{group}", NotImplementedApi.Handle);
            app.Map($"/{group}/{{**rest}}", NotImplementedApi.Handle);
        }
        app.MapFallback((RequestDelegate)(_ => throw ApiException.NotFound("page not found")));
    }

    private static T GetRequiredService<T>(this IServiceProvider services) where T : notnull
        => (T)(services.GetService(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T).Name} is not registered"));
}
