using System.Text.Json;
using Berth.Daemon.Containers;
using Berth.Daemon.Monitor;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary><c>POST /containers/{id}/exec</c> and <c>/exec/{id}/…</c> (start is hijacked: see <see cref="HijackMiddleware"/>).</summary>
public static class ExecApi
{
    public static Task Dispatch(HttpContext context)
    {
        string rest = ((string?)context.Request.RouteValues["rest"] ?? "").Trim('/');
        string[] parts = rest.Split('/');
        if (parts.Length != 2) throw ApiException.NotFound("page not found");
        bool get = HttpMethods.IsGet(context.Request.Method), post = HttpMethods.IsPost(context.Request.Method);
        return (parts[1], get, post) switch
        {
            ("json", true, _) => Inspect(context, parts[0]),
            ("resize", _, true) => Resize(context, parts[0]),
            ("start", _, true) => StartDetached(context, parts[0]),
            _ => throw ApiException.NotFound("page not found"),
        };
    }

    public static async Task Create(HttpContext context, string containerId)
    {
        ExecCreateBody? body = await JsonResults.ReadAsync(context, ApiJson.Context.ExecCreateBody);
        if (body is null) throw ApiException.BadRequest("No exec command specified");
        ExecInstance exec = ContainersApi.Containers(context).CreateExec(containerId, body);
        await JsonResults.WriteAsync(context, new IdResponse(exec.Id), ApiJson.Context.IdResponse, 201);
    }

    private static Task Inspect(HttpContext context, string id)
    {
        ContainerService service = ContainersApi.Containers(context);
        ExecInstance exec = service.FindExec(id);
        if (exec.Running) service.RecordExecExit(exec);
        List<string> cmd = exec.Config.Cmd ?? [];
        var result = new ExecInspectJson
        {
            ID = exec.Id,
            Running = exec.Running,
            ExitCode = exec.ExitCode,
            ProcessConfig = new ExecProcessConfigJson(exec.Config.Tty, cmd.FirstOrDefault() ?? "", cmd.Skip(1).ToList(), exec.Config.Privileged, string.IsNullOrEmpty(exec.Config.User) ? null : exec.Config.User),
            OpenStdin = exec.Config.AttachStdin,
            OpenStdout = exec.Config.AttachStdout,
            OpenStderr = exec.Config.AttachStderr,
            ContainerID = exec.Container.Record.Id,
            Pid = exec.Pid,
            DetachKeys = exec.Config.DetachKeys ?? "",
        };
        return JsonResults.WriteAsync(context, result, ApiJson.Context.ExecInspectJson);
    }

    private static async Task Resize(HttpContext context, string id)
    {
        ExecInstance exec = ContainersApi.Containers(context).FindExec(id);
        (ushort h, ushort w) = ContainersApi.ResizeArgs(context);
        AttachConnection? relay;
        lock (exec)
        {
            if (exec.ExitCode is not null) throw ApiException.Conflict($"Exec {id} is not running");
            relay = exec.Relay;
            if (relay is null) exec.PendingSize = (h, w); // applied when the relay connects
        }
        if (relay is not null && !await relay.TryResizeAsync(h, w, context.RequestAborted))
            throw ApiException.Conflict($"Exec {id} is not running"); // it ended as the resize came
        context.Response.StatusCode = 200;
    }

    /// <summary>A start that reached Kestrel: only a detached one can be served without the raw connection.</summary>
    private static async Task StartDetached(HttpContext context, string id)
    {
        ExecStartBody body = await JsonResults.ReadAsync(context, ApiJson.Context.ExecStartBody) ?? new ExecStartBody();
        if (!body.Detach) throw ApiException.BadRequest("an attached exec start needs a connection upgrade (Connection: Upgrade, Upgrade: tcp)");
        ContainerService service = ContainersApi.Containers(context);
        await service.StartExecAsync(service.FindExec(id), body.Tty, waitForAttach: false, context.RequestAborted);
        context.Response.StatusCode = 200;
    }
}
