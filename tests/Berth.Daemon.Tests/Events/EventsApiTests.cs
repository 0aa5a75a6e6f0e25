using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Berth.Daemon.Tests.Containers;

namespace Berth.Daemon.Tests.Events;

/// <summary>
/// GET /events against berthd hosted in-process, with real containers: what a lifecycle emits and
/// in which order, filters, since/until (replay, and a live stream that ends at until), image
/// events. The daemon scope force-removes every container, even when an assertion fails.
/// </summary>
public sealed class EventsApiTests : DaemonTestBase
{
    internal static string Unix(DateTimeOffset t)
    {
        long ticks = t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        return $"{ticks / TimeSpan.TicksPerSecond}.{ticks % TimeSpan.TicksPerSecond * 100:D9}";
    }

    private static string FiltersJson(params (string Key, string Value)[] pairs)
        => Uri.EscapeDataString(JsonSerializer.Serialize(pairs.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.ToDictionary(p => p.Value, _ => true))));

    /// <summary>The events from <paramref name="since"/> until now (a replay: the response ends at once).</summary>
    internal static async Task<List<JsonElement>> PastEventsAsync(HttpClient client, DateTimeOffset since, string filters = "")
    {
        DateTimeOffset until = DateTimeOffset.UtcNow;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string body = await client.GetStringAsync($"/v1.45/events?since={Unix(since)}&until={Unix(until)}" + (filters.Length > 0 ? "&filters=" + filters : ""), cts.Token);
        return body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
    }

    private static string Action(JsonElement e) => e.GetProperty("Action").GetString()!;

    private static string Attr(JsonElement e, string key)
        => e.GetProperty("Actor").GetProperty("Attributes").TryGetProperty(key, out JsonElement v) ? v.GetString()! : "";

    private async Task<long> WaitAsync(string id)
    {
        using HttpResponseMessage response = await Client.PostAsync($"/containers/{id}/wait", null);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("StatusCode").GetInt64();
    }

    private async Task PostOkAsync(string path, HttpContent? body = null)
    {
        using HttpResponseMessage r = await Client.PostAsync(path, body);
        Assert.True(r.IsSuccessStatusCode, $"POST {path}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("waiting for " + what);
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_container_run_emits_create_connect_start_die_disconnect_destroy_in_order()
    {
        DateTimeOffset t0 = DateTimeOffset.UtcNow.AddMilliseconds(-1);
        string id = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "exit 7" }, Labels = new { team = "berth" } }, "ev-run");
        await PostOkAsync($"/containers/{id}/start");
        Assert.Equal(7, await WaitAsync(id));
        using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{id}")) Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);

        List<JsonElement> events = await PastEventsAsync(Client, t0);
        Assert.Equal(["container create", "network connect", "container start", "container die", "network disconnect", "container destroy"],
            events.Select(e => $"{e.GetProperty("Type").GetString()} {Action(e)}"));
        foreach (JsonElement e in events.Where(e => e.GetProperty("Type").GetString() == "container"))
        {
            Assert.Equal(id, e.GetProperty("id").GetString());
            Assert.Equal(id, e.GetProperty("Actor").GetProperty("ID").GetString());
            Assert.Equal(Action(e), e.GetProperty("status").GetString());
            Assert.Equal("busybox", e.GetProperty("from").GetString());
            Assert.Equal("busybox", Attr(e, "image"));
            Assert.Equal("ev-run", Attr(e, "name"));
            Assert.Equal("berth", Attr(e, "team")); // labels are attributes
            Assert.Equal("local", e.GetProperty("scope").GetString());
            long nano = e.GetProperty("timeNano").GetInt64();
            Assert.Equal(nano / 1_000_000_000, e.GetProperty("time").GetInt64());
        }
        JsonElement die = events.Single(e => Action(e) == "die");
        Assert.Equal("7", Attr(die, "exitCode"));
        Assert.Equal("0", Attr(die, "execDuration"));
        JsonElement connect = events.Single(e => Action(e) == "connect");
        Assert.Equal(id, Attr(connect, "container"));
        Assert.Equal("bridge", Attr(connect, "name"));
        Assert.False(connect.TryGetProperty("status", out _)); // status/id/from only for containers and images
        // Times never go back.
        var times = events.Select(e => e.GetProperty("timeNano").GetInt64()).ToList();
        Assert.Equal(times.Order(), times);
    }

    [Fact]
    public async Task Stop_kill_pause_rename_exec_top_restart_emit_their_events_with_attributes()
    {
        DateTimeOffset t0 = DateTimeOffset.UtcNow.AddMilliseconds(-1);
        string id = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sleep", "1000" }, HostConfig = new { NetworkMode = "none" } }, "ev-life");
        await PostOkAsync($"/containers/{id}/start");
        await PostOkAsync($"/containers/{id}/pause");
        await PostOkAsync($"/containers/{id}/unpause");
        await PostOkAsync($"/containers/{id}/rename?name=ev-renamed");
        using (HttpResponseMessage top = await Client.GetAsync($"/containers/{id}/top")) Assert.True(top.IsSuccessStatusCode);

        using HttpResponseMessage created = await Client.PostAsJsonAsync($"/containers/{id}/exec", new { Cmd = new[] { "sh", "-c", "exit 3" } });
        string execId = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("Id").GetString()!;
        await PostOkAsync($"/exec/{execId}/start", new StringContent("{\"Detach\":true}", Encoding.UTF8, "application/json"));
        await WaitForAsync(async () => (await Daemon.GetJsonAsync($"/exec/{execId}/json")).GetProperty("Running").GetBoolean() == false, "the exec's exit");

        // sleep as PID 1 ignores SIGTERM: stop (and restart's stop) sends it, then SIGKILL after the timeout.
        await PostOkAsync($"/containers/{id}/restart?t=0");
        await PostOkAsync($"/containers/{id}/stop?t=1");
        using (HttpResponseMessage again = await Client.PostAsync($"/containers/{id}/stop", null))
            Assert.Equal(HttpStatusCode.NotModified, again.StatusCode); // nothing happened: no event

        List<JsonElement> events = await PastEventsAsync(Client, t0, FiltersJson(("container", id)));
        Assert.All(events, e => Assert.Equal("container", e.GetProperty("Type").GetString()));
        List<string> actions = events.Select(Action).ToList();
        Assert.Equal(["create", "start", "pause", "unpause", "rename", "top", "exec_create: sh -c exit 3", "exec_start: sh -c exit 3", "exec_die",
            "kill", "kill", "die", "stop", "start", "restart", "kill", "kill", "die", "stop"], actions);
        Assert.Equal("/ev-life", Attr(events[4], "oldName"));
        Assert.Equal("ev-renamed", Attr(events[4], "name"));
        Assert.Equal("ev-life", Attr(events[3], "name"));
        Assert.All(events.Skip(6).Take(3), e => Assert.Equal(execId, Attr(e, "execID")));
        Assert.Equal("3", Attr(events[8], "exitCode"));
        Assert.Equal("15", Attr(events[9], "signal"));
        Assert.Equal("9", Attr(events[10], "signal"));
        Assert.Equal("137", Attr(events[11], "exitCode"));
        Assert.Equal("9", Attr(events[^3], "signal"));

        // Filtered by event: only those actions; exec_create matches the suffixed action.
        List<JsonElement> kills = await PastEventsAsync(Client, t0, FiltersJson(("event", "kill"), ("event", "exec_create")));
        Assert.Equal(["exec_create: sh -c exit 3", "kill", "kill", "kill", "kill"], kills.Select(Action));
    }

    [Fact]
    public async Task Since_and_until_select_from_the_ring_and_a_live_stream_ends_at_until()
    {
        var log = Daemon.Host.Engine.Events;
        log.Publish("volume", "create", "before");
        await Task.Delay(30);
        DateTimeOffset t1 = DateTimeOffset.UtcNow;
        await Task.Delay(30);
        log.Publish("volume", "create", "inside");
        await Task.Delay(30);
        DateTimeOffset t2 = DateTimeOffset.UtcNow;
        await Task.Delay(30);
        log.Publish("volume", "create", "after");

        string replay = await Client.GetStringAsync($"/events?since={Unix(t1)}&until={Unix(t2)}&filters={FiltersJson(("type", "volume"))}");
        JsonElement only = Assert.Single(replay.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement));
        Assert.Equal("inside", only.GetProperty("Actor").GetProperty("ID").GetString());
        // RFC 3339 works on the server too.
        string rfc = await Client.GetStringAsync($"/events?since={Uri.EscapeDataString(t1.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture))}&until={Unix(t2)}&filters={FiltersJson(("type", "volume"))}");
        Assert.Contains("\"inside\"", rfc);
        Assert.DoesNotContain("\"after\"", rfc);

        // since > until is refused as dockerd refuses it.
        using (HttpResponseMessage bad = await Client.GetAsync($"/events?since={Unix(t2)}&until={Unix(t1)}"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("cannot be after `until`", await bad.Content.ReadAsStringAsync());
        }
        using (HttpResponseMessage bad = await Client.GetAsync("/events?filters=" + FiltersJson(("colour", "red"))))
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        // Live: the replay since t1, then what comes, then the end at until (10 s from now: the
        // request, the replay and the live event must all happen before it, even on a loaded machine).
        DateTimeOffset until = DateTimeOffset.UtcNow.AddSeconds(10);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using HttpResponseMessage stream = await Client.GetAsync($"/events?since={Unix(t1)}&until={Unix(until)}&filters={FiltersJson(("type", "volume"))}",
            HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(cts.Token));
        Assert.Contains("\"inside\"", await reader.ReadLineAsync(cts.Token));
        Assert.Contains("\"after\"", await reader.ReadLineAsync(cts.Token));
        log.Publish("network", "create", "not-a-volume");
        log.Publish("volume", "create", "live");
        Assert.Contains("\"live\"", await reader.ReadLineAsync(cts.Token));
        Assert.Null(await reader.ReadLineAsync(cts.Token)); // the stream ends at until
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(9.5), $"ended after {watch.Elapsed}");
        await WaitForAsync(() => Task.FromResult(log.SubscriberCount == 0), "the subscriber to leave");
    }

    [Fact]
    public async Task A_client_that_leaves_unsubscribes()
    {
        var log = Daemon.Host.Engine.Events;
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            using HttpResponseMessage stream = await Client.GetAsync("/events", HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(cts.Token));
            await WaitForAsync(() => Task.FromResult(log.SubscriberCount == 1), "the subscription");
            string id = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox" }, "ev-live");
            JsonElement e = JsonDocument.Parse((await reader.ReadLineAsync(cts.Token))!).RootElement;
            Assert.Equal(("create", id), (Action(e), e.GetProperty("id").GetString()));
        }
        await WaitForAsync(() => Task.FromResult(log.SubscriberCount == 0), "the subscriber to leave");
    }

    [Fact]
    public async Task Image_tag_untag_delete_and_prune_events()
    {
        string imageId = (await Daemon.GetJsonAsync("/images/busybox:latest/json")).GetProperty("Id").GetString()!;
        DateTimeOffset t0 = DateTimeOffset.UtcNow.AddMilliseconds(-1);
        await PostOkAsync("/images/busybox:latest/tag?repo=127.0.0.1:5000/other&tag=v1");
        using (HttpResponseMessage r = await Client.DeleteAsync("/images/127.0.0.1:5000/other:v1")) Assert.True(r.IsSuccessStatusCode);
        string second = await Daemon.ImportBusyboxAsync("second:1");
        using (HttpResponseMessage r = await Client.DeleteAsync("/images/second:1")) Assert.True(r.IsSuccessStatusCode);

        List<JsonElement> events = await PastEventsAsync(Client, t0, FiltersJson(("type", "image")));
        // An import with a name tags it first, as dockerd's ImportImage does.
        Assert.Equal(["tag", "untag", "tag", "import", "untag", "delete"], events.Select(Action));
        Assert.Equal(imageId, events[0].GetProperty("id").GetString());
        Assert.Equal("127.0.0.1:5000/other:v1", Attr(events[0], "name"));
        Assert.False(events[0].TryGetProperty("from", out _));
        Assert.Equal(imageId, events[1].GetProperty("Actor").GetProperty("ID").GetString());
        Assert.Equal("127.0.0.1:5000/other:v1", Attr(events[1], "name"));
        Assert.Equal("second:1", Attr(events[2], "name"));
        Assert.All(events.Skip(2), e => Assert.Equal(second, e.GetProperty("Actor").GetProperty("ID").GetString()));

        // The image filter finds tag events by the name, with or without its tag.
        Assert.Equal(2, (await PastEventsAsync(Client, t0, FiltersJson(("image", "127.0.0.1:5000/other")))).Count);

        await PostOkAsync("/images/prune?filters=" + FiltersJson(("dangling", "false")));
        JsonElement prune = (await PastEventsAsync(Client, t0, FiltersJson(("event", "prune")))).Single();
        Assert.Equal("image", prune.GetProperty("Type").GetString());
        Assert.True(long.Parse(Attr(prune, "reclaimed"), CultureInfo.InvariantCulture) > 0);
    }
}
