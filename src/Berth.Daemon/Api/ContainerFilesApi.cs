using System.Text;
using System.Text.Json;
using Berth.Daemon.Containers;
using Berth.Images.Manifests;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>
/// <c>/containers/{id}/archive</c> (HEAD stat, GET copy out, PUT copy in), <c>/export</c>,
/// <c>/changes</c> and <c>POST /commit</c>; the logic is in <see cref="ContainerFiles"/>.
/// </summary>
public static class ContainerFilesApi
{
    private const string StatHeader = "X-Docker-Container-Path-Stat";

    public static Task Archive(HttpContext context, string id)
    {
        string method = context.Request.Method;
        if (HttpMethods.IsHead(method)) return Stat(context, id);
        if (HttpMethods.IsGet(method)) return CopyOut(context, id);
        if (HttpMethods.IsPut(method)) return CopyIn(context, id);
        throw ApiException.NotFound("page not found");
    }

    private static string PathArg(HttpContext context)
        => QueryArgs.String(context, "path") ?? throw ApiException.BadRequest("Path cannot be empty");

    private static string Encode(ContainerPathStat stat)
        => Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(stat, ApiJson.Context.ContainerPathStat));

    private static async Task Stat(HttpContext context, string id)
    {
        ContainerService service = ContainersApi.Containers(context);
        ContainerEntry entry = service.Find(id);
        ContainerPathStat stat = await ContainerFiles.StatAsync(service, entry, PathArg(context), context.RequestAborted);
        context.Response.StatusCode = 200;
        context.Response.Headers[StatHeader] = Encode(stat);
    }

    private static async Task CopyOut(HttpContext context, string id)
    {
        ContainerService service = ContainersApi.Containers(context);
        ContainerEntry entry = service.Find(id);
        RequestBody.AllowSynchronousIO(context);
        await ContainerFiles.ArchiveAsync(service, entry, PathArg(context), stat =>
        {
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-tar";
            context.Response.Headers[StatHeader] = Encode(stat);
            return context.Response.Body;
        }, context.RequestAborted);
        service.PublishEvent(entry.Record, "archive-path");
    }

    private static async Task CopyIn(HttpContext context, string id)
    {
        ContainerService service = ContainersApi.Containers(context);
        ContainerEntry entry = service.Find(id);
        bool noOverwriteDirNonDir = QueryArgs.Bool(context, "noOverwriteDirNonDir");
        _ = QueryArgs.Bool(context, "copyUIDGID"); // validated; owners always come from the archive (see README)
        RequestBody.AllowSynchronousIO(context);
        await ContainerFiles.ExtractAsync(service, entry, PathArg(context), context.Request.Body, noOverwriteDirNonDir, context.RequestAborted);
        service.PublishEvent(entry.Record, "extract-to-dir");
        context.Response.StatusCode = 200;
    }

    public static async Task Export(HttpContext context, string id)
    {
        ContainerService service = ContainersApi.Containers(context);
        ContainerEntry entry = service.Find(id);
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/x-tar";
        RequestBody.AllowSynchronousIO(context);
        await ContainerFiles.ExportAsync(service, entry, context.Response.Body, context.RequestAborted);
        service.PublishEvent(entry.Record, "export");
    }

    public static async Task Changes(HttpContext context, string id)
    {
        ContainerService service = ContainersApi.Containers(context);
        ContainerEntry entry = service.Find(id);
        List<ContainerChange>? changes = await ContainerFiles.ChangesAsync(service, entry, context.RequestAborted);
        await JsonResults.WriteAsync(context, changes, ApiJson.Context.ListContainerChange);
    }

    /// <summary>POST /commit?container=&amp;repo=&amp;tag=&amp;comment=&amp;author=&amp;pause=&amp;changes= with an optional Config body.</summary>
    public static async Task Commit(HttpContext context)
    {
        if (!HttpMethods.IsPost(context.Request.Method)) throw ApiException.NotFound("page not found");
        JsonResults.CheckForJson(context);
        string container = QueryArgs.String(context, "container") ?? throw ApiException.NotFound("No such container: ");
        ContainerService service = ContainersApi.Containers(context);
        ContainerEntry entry = service.Find(container);
        ContainerConfig? config = null;
        using (var body = new MemoryStream())
        {
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            string text = Encoding.UTF8.GetString(body.ToArray()).Trim();
            if (text.Length > 0 && text != "null")
            {
                try
                {
                    config = JsonSerializer.Deserialize(text, ApiJson.Context.ContainerConfig);
                }
                catch (JsonException e)
                {
                    throw ApiException.BadRequest("invalid JSON: " + Berth.Images.JsonErrorText.Describe(e));
                }
            }
        }
        // pause defaults to true, as in dockerd.
        bool pause = QueryArgs.String(context, "pause") is null || QueryArgs.Bool(context, "pause");
        var request = new CommitRequest(
            QueryArgs.String(context, "repo"), QueryArgs.String(context, "tag"), QueryArgs.String(context, "comment"),
            QueryArgs.String(context, "author"), pause, context.Request.Query["changes"].Where(c => !string.IsNullOrEmpty(c)).Select(c => c!).ToList(), config);
        string imageId = await ContainerFiles.CommitAsync(service, entry, request, context.RequestAborted);
        string imageRef = request.Repo is { Length: > 0 } repo ? repo + (request.Tag is { Length: > 0 } tag ? ":" + tag : "") : "";
        service.PublishEvent(entry.Record, "commit", ("comment", request.Comment ?? ""), ("imageID", imageId), ("imageRef", imageRef));
        await JsonResults.WriteAsync(context, new IdResponse(imageId), ApiJson.Context.IdResponse, 201);
    }

}
