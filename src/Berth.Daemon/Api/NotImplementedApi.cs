using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>
/// Endpoint groups of the Engine API that this berthd does not serve yet: a clear 501 instead of a
/// puzzling 404.
/// </summary>
public static class NotImplementedApi
{
    /// <summary>The first path segments dockerd serves that berthd does not yet.</summary>
    public static readonly string[] Groups = ["plugins", "swarm", "nodes", "services", "tasks", "secrets", "configs", "session", "distribution", "grpc"];

    public static Task Handle(HttpContext context)
    {
        string path = context.Request.Path.Value ?? "";
        string group = path.TrimStart('/').Split('/')[0];
        throw ApiException.NotImplemented($"/{group} is not implemented in this version of berthd");
    }
}
