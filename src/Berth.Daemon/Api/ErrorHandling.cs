using System.Text.Json;
using Berth.Images;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Berth.Daemon.Api;

/// <summary>Turns every failure into Docker's status code and <c>{"message": …}</c> body.</summary>
public static partial class ErrorHandling
{
    public static async Task Middleware(HttpContext context, RequestDelegate next, ILogger logger)
    {
        try
        {
            await next(context);
        }
        catch (Exception e) when (!context.RequestAborted.IsCancellationRequested || e is not OperationCanceledException)
        {
            (int status, string message) = Map(e);
            // A registry out of reach is the world, not a bug: one line, as dockerd logs it, no stack.
            if (e is ImagesException { Kind: ImagesErrorKind.Unavailable }) LogUnavailable(logger, context.Request.Method, context.Request.Path, message);
            else if (status >= 500 && e is not ApiException) LogFailed(logger, context.Request.Method, context.Request.Path, e);
            else LogRefused(logger, context.Request.Method, context.Request.Path, status, message);
            if (context.Response.HasStarted)
            {
                // A stream already under way (pull, save): nothing sensible can be appended; cut it.
                context.Abort();
                return;
            }
            await WriteAsync(context, status, message);
        }
    }

    public static (int Status, string Message) Map(Exception e) => e switch
    {
        ApiException a => (a.StatusCode, a.Message),
        ImagesException i => (ApiException.StatusOf(i.Kind), i.Message),
        JsonException j => (400, "invalid JSON: " + JsonErrorText.Describe(j)),
        BadHttpRequestException b => (b.StatusCode, b.Message),
        _ => (500, e.Message),
    };

    public static Task WriteAsync(HttpContext context, int status, string message)
    {
        context.Response.Clear();
        context.Response.StatusCode = status;
        return JsonResults.WriteAsync(context, new ErrorResponse(message), ApiJson.Context.ErrorResponse, status);
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "{Method} {Path} failed")]
    private static partial void LogFailed(ILogger logger, string method, string? path, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "{Method} {Path} failed: {Message}")]
    private static partial void LogUnavailable(ILogger logger, string method, string? path, string message);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "{Method} {Path} refused with {Status}: {Message}")]
    private static partial void LogRefused(ILogger logger, string method, string? path, int status, string message);
}
