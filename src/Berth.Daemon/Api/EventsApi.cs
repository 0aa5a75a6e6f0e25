using System.Text.Json;
using Berth.Daemon.Engine;
using Berth.Daemon.Events;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace Berth.Daemon.Api;

/// <summary>
/// <c>GET /events?since=&amp;until=&amp;filters=</c>: newline-delimited JSON, as dockerd's
/// getEvents. With <c>since</c> (or <c>until</c>) the ring's matching events come first; then live
/// ones until <c>until</c> passes, the client leaves, or berthd stops. An <c>until</c> in the past
/// gives only the replay and ends the response.
/// </summary>
public static class EventsApi
{
    public static async Task Handle(HttpContext context)
    {
        SystemApi.RequireGet(context);
        BerthEngine engine = SystemApi.Engine(context);
        DateTimeOffset now = engine.Time.GetUtcNow();
        string? sinceText = QueryArgs.String(context, "since"), untilText = QueryArgs.String(context, "until");
        DateTimeOffset? since = DockerTime.Parse(sinceText, now, "since");
        DateTimeOffset? until = DockerTime.Parse(untilText, now, "until");
        if (until is not null && until < (since ?? DateTimeOffset.MinValue))
            throw ApiException.BadRequest($"`since` time ({sinceText}) cannot be after `until` time ({untilText})");
        var filter = new EventFilter(QueryArgs.Filters(context, EventFilter.Keys));
        bool onlyPast = until is not null && until < now;

        using EventSubscription subscription = engine.Events.Subscribe(since, until, filter.Matches);
        HttpResponse response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "application/json";
        await response.StartAsync(context.RequestAborted);
        await response.Body.FlushAsync(context.RequestAborted);
        foreach (EventMessage e in subscription.Past) await WriteAsync(response, e, context.RequestAborted);
        await response.Body.FlushAsync(context.RequestAborted);
        if (onlyPast) return;

        // The stream also ends when berthd stops: an open events stream must not hold shutdown up.
        CancellationToken stopping = context.RequestServices.GetService(typeof(IHostApplicationLifetime)) is IHostApplicationLifetime life ? life.ApplicationStopping : default;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        Task? deadline = until is { } u ? Task.Delay(u - now, engine.Time, cts.Token) : null;
        long untilNano = until is { } limit ? EventLog.ToUnixNano(limit) : long.MaxValue;
        try
        {
            while (true)
            {
                Task<bool> ready = subscription.Live.WaitToReadAsync(cts.Token).AsTask();
                if (deadline is not null && await Task.WhenAny(ready, deadline) == deadline) return;
                if (!await ready) return;
                while (subscription.Live.TryRead(out EventMessage? e))
                {
                    if (e.TimeNano > untilNano) return;
                    await WriteAsync(response, e, cts.Token);
                }
                await response.Body.FlushAsync(cts.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // the client left, or berthd stops
        }
        catch (EventSubscriberTooSlowException)
        {
            // dropped for lagging too far behind: the end of the stream tells the client
        }
    }

    private static async Task WriteAsync(HttpResponse response, EventMessage e, CancellationToken cancellationToken) =>
        await response.Body.WriteAsync(JsonResults.Line(e, EventsJson.Context.EventMessage), cancellationToken);
}
