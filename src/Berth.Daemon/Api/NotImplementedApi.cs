using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>
/// Endpoint groups of the Engine API that this berthd does not serve yet: a clear 501 instead of a
/// puzzling 404 (but for listing and inspecting plugins, of which berthd has none).
/// </summary>
public static class NotImplementedApi
{
    /// <summary>The first path segments dockerd serves that berthd does not yet.</summary>
    public static readonly string[] Groups = ["plugins", "swarm", "nodes", "services", "tasks", "secrets", "configs", "session", "distribution", "grpc"];

    public static Task Handle(HttpContext context)
    {
        string path = context.Request.Path.Value ?? "";
        string group = path.TrimStart('/').Split('/')[0];
        if (group == "plugins" && HttpMethods.IsGet(context.Request.Method))
        {
            // berthd has no plugins: the list is empty and no name is found. The docker CLI's
            // `inspect NAME` asks for a plugin after containers, images, networks and volumes and
            // says "No such object" only when that answer is a 404.
            string rest = path.TrimStart('/')["plugins".Length..].Trim('/');
            if (rest.Length == 0)
            {
                context.Response.ContentType = "application/json";
                return context.Response.WriteAsync("[]\n");
            }
            if (rest.EndsWith("/json", StringComparison.Ordinal) && rest.Length > "/json".Length)
                throw ApiException.NotFound($"plugin \"{rest[..^"/json".Length]}\" not found");
        }
        throw ApiException.NotImplemented($"/{group} is not implemented in this version of berthd");
    }
}
