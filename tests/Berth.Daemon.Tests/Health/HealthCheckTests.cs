using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Berth.Daemon.Configuration;
using Berth.Daemon.Hosting;
using Berth.Daemon.Tests.Containers;
using Berth.Daemon.Tests.Events;

namespace Berth.Daemon.Tests.Health;

/// <summary>
/// Health checks against berthd hosted in-process with real containers: probes run as execs in
/// the container, State.Health and the ps status follow them, health_status events are published.
/// Intervals are 100–300 ms so each test takes a few seconds. Each test's daemon force-removes its
/// containers and its directories when it is disposed, whatever the outcome.
/// </summary>
public sealed class HealthCheckTests : DaemonTestBase
{
    private const long Ms = 1_000_000; // nanoseconds

    private async Task<string> RunAsync(object healthcheck, string name, string[]? cmd = null, string image = "busybox")
    {
        // API 1.44+: older versions drop Healthcheck.StartInterval, as dockerd does.
        string id = await ContainersApiTests.CreateAsync(Client, new { Image = image, Cmd = cmd ?? ["sleep", "100"], Healthcheck = healthcheck }, name, apiVersion: "1.47");
        using HttpResponseMessage started = await Client.PostAsync($"/containers/{id}/start", null);
        Assert.True(started.StatusCode == HttpStatusCode.NoContent, await started.Content.ReadAsStringAsync());
        return id;
    }

    private async Task<JsonElement> StateAsync(string id) => (await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("State");

    /// <summary>Polls inspect until State.Health satisfies <paramref name="condition"/>; returns that Health.</summary>
    private async Task<JsonElement> WaitForHealthAsync(string id, Func<JsonElement, bool> condition, string what, int seconds = 20)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonElement state;
        do
        {
            state = await StateAsync(id);
            if (state.TryGetProperty("Health", out JsonElement h) && condition(h)) return h;
            await Task.Delay(50);
        } while (DateTime.UtcNow < deadline);
        throw new TimeoutException($"waiting for {what}; State: {state}");
    }

    private Task<JsonElement> WaitForStatusAsync(string id, string status)
        => WaitForHealthAsync(id, h => h.GetProperty("Status").GetString() == status, "health status " + status);

    private async Task<string> PsStatusAsync(string id)
    {
        JsonElement list = await Daemon.GetJsonAsync("/containers/json?all=1&filters=" + Uri.EscapeDataString($"{{\"id\":[\"{id}\"]}}"));
        return list.EnumerateArray().Single().GetProperty("Status").GetString()!;
    }

    private async Task<List<string>> NamesWithHealthAsync(string health)
    {
        JsonElement list = await Daemon.GetJsonAsync("/containers/json?all=1&filters=" + Uri.EscapeDataString($"{{\"health\":[\"{health}\"]}}"));
        return list.EnumerateArray().Select(c => c.GetProperty("Names")[0].GetString()!.TrimStart('/')).Order(StringComparer.Ordinal).ToList();
    }

    private static DateTimeOffset Time(JsonElement e, string name) => DateTimeOffset.Parse(e.GetProperty(name).GetString()!, CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_passing_check_goes_from_starting_to_healthy_with_its_log_events_and_ps_status()
    {
        DateTimeOffset since = DateTimeOffset.UtcNow.AddSeconds(-1);
        string id = await RunAsync(new { Test = new[] { "CMD-SHELL", "echo ok; echo err >&2" }, Interval = 200 * Ms }, "good");

        // Right after the start: starting, no probe yet (the first comes an interval later). On a
        // loaded machine the first probe may already have completed, so "starting" is asserted only
        // while the log is still empty. Health (status and log) is replaced as a whole, so an empty
        // log in a later inspect proves no probe had completed when ps and the filter were asked.
        JsonElement health = (await StateAsync(id)).GetProperty("Health");
        string psStatus = await PsStatusAsync(id);
        List<string> startingNames = await NamesWithHealthAsync("starting");
        bool noProbeYet = (await StateAsync(id)).GetProperty("Health").GetProperty("Log").GetArrayLength() == 0;
        if (health.GetProperty("Log").GetArrayLength() == 0)
        {
            Assert.Equal("starting", health.GetProperty("Status").GetString());
            Assert.Equal(0, health.GetProperty("FailingStreak").GetInt32());
        }
        if (noProbeYet)
        {
            Assert.Contains("(health: starting)", psStatus);
            Assert.Equal(["good"], startingNames);
        }

        health = await WaitForStatusAsync(id, "healthy");
        JsonElement probe = health.GetProperty("Log")[0];
        Assert.Equal(0, probe.GetProperty("ExitCode").GetInt32());
        Assert.Equal("ok\nerr\n", probe.GetProperty("Output").GetString());
        Assert.True(Time(probe, "End") >= Time(probe, "Start"));
        Assert.Matches(@"^Up .* \(healthy\)$", await PsStatusAsync(id));

        // The ps filter: healthy matches, the others do not, an unknown value is a 400.
        string other = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "true" } }, "plain");
        Assert.Equal(["good"], await NamesWithHealthAsync("healthy"));
        Assert.Empty(await NamesWithHealthAsync("unhealthy"));
        Assert.Equal(["plain"], await NamesWithHealthAsync("none"));
        using (HttpResponseMessage bad = await Client.GetAsync("/containers/json?filters=" + Uri.EscapeDataString("{\"health\":[\"fine\"]}")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("Unrecognised filter value for health: fine", await bad.Content.ReadAsStringAsync());
        }
        _ = other;

        // The log keeps the last 5 results.
        health = await WaitForHealthAsync(id, h => h.GetProperty("Log").GetArrayLength() == 5, "5 log entries");
        await Task.Delay(600);
        health = (await StateAsync(id)).GetProperty("Health");
        Assert.Equal(5, health.GetProperty("Log").GetArrayLength());
        Assert.Equal(0, health.GetProperty("FailingStreak").GetInt32());

        // Events: one health_status: healthy, and the probes as execs (dockerd publishes them too).
        List<JsonElement> events = await EventsApiTests.PastEventsAsync(Client, since);
        List<string> actions = events.Where(e => e.GetProperty("Actor").GetProperty("ID").GetString() == id).Select(e => e.GetProperty("Action").GetString()!).ToList();
        Assert.Equal(1, actions.Count(a => a == "health_status: healthy"));
        Assert.Contains("exec_create: /bin/sh -c echo ok; echo err >&2", actions);
        Assert.Contains("exec_start: /bin/sh -c echo ok; echo err >&2", actions);
        Assert.Contains("exec_die", actions);
        JsonElement healthEvent = events.First(e => e.GetProperty("Action").GetString() == "health_status: healthy");
        Assert.Equal("good", healthEvent.GetProperty("Actor").GetProperty("Attributes").GetProperty("name").GetString());
        Assert.Equal("health_status: healthy", healthEvent.GetProperty("status").GetString());
        string filtered = await Client.GetStringAsync($"/events?since={since.ToUnixTimeSeconds()}&until={DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1}&filters="
            + Uri.EscapeDataString("{\"event\":[\"health_status\"]}"));
        Assert.Single(filtered.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        // Stopped: the status stays, no more probes; started again: starting, streak 0, the log kept.
        using (HttpResponseMessage stop = await Client.PostAsync($"/containers/{id}/stop?t=0", null))
            Assert.Equal(HttpStatusCode.NoContent, stop.StatusCode);
        JsonElement stopped = (await StateAsync(id)).GetProperty("Health");
        Assert.Equal("healthy", stopped.GetProperty("Status").GetString());
        string lastProbe = stopped.GetProperty("Log")[4].GetProperty("Start").GetString()!;
        await Task.Delay(500);
        Assert.Equal(lastProbe, (await StateAsync(id)).GetProperty("Health").GetProperty("Log")[4].GetProperty("Start").GetString());
        Assert.StartsWith("Exited (137)", await PsStatusAsync(id));
        // Probes are not kept as exec instances of the container once they have run.
        Assert.Equal(JsonValueKind.Null, (await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("ExecIDs").ValueKind);

        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null))
            Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);
        health = (await StateAsync(id)).GetProperty("Health");
        Assert.Equal(5, health.GetProperty("Log").GetArrayLength());
        // Starting until the first probe of the new run lands: asserted only while the newest log
        // entry is still the one from before the stop (a loaded machine may already have probed).
        if (health.GetProperty("Log")[4].GetProperty("Start").GetString() == lastProbe)
        {
            Assert.Equal("starting", health.GetProperty("Status").GetString());
            Assert.Equal(0, health.GetProperty("FailingStreak").GetInt32());
        }
        await WaitForHealthAsync(id, h => h.GetProperty("Status").GetString() == "healthy" && h.GetProperty("Log")[4].GetProperty("Start").GetString() != lastProbe, "healthy again");
    }

    [Fact]
    public async Task A_failing_check_becomes_unhealthy_after_retries_failures()
    {
        DateTimeOffset since = DateTimeOffset.UtcNow.AddSeconds(-1);
        // Exit 2 (dockerd's "reserved") is a failure too.
        string id = await RunAsync(new { Test = new[] { "CMD", "sh", "-c", "echo bad; exit 2" }, Interval = 100 * Ms, Retries = 3 }, "bad");

        JsonElement health = await WaitForHealthAsync(id, h => h.GetProperty("FailingStreak").GetInt32() >= 1, "a first failure");
        if (health.GetProperty("FailingStreak").GetInt32() < 3) Assert.Equal("starting", health.GetProperty("Status").GetString());
        health = await WaitForStatusAsync(id, "unhealthy");
        Assert.True(health.GetProperty("FailingStreak").GetInt32() >= 3, health.ToString());
        JsonElement last = health.GetProperty("Log").EnumerateArray().Last();
        Assert.Equal(2, last.GetProperty("ExitCode").GetInt32());
        Assert.Equal("bad\n", last.GetProperty("Output").GetString());
        Assert.Matches(@"^Up .* \(unhealthy\)$", await PsStatusAsync(id));
        Assert.Equal(["bad"], await NamesWithHealthAsync("unhealthy"));

        // Persisted in the record (config.v2.json) like the rest of the state: the save follows the
        // in-memory change, so a loaded machine may need a moment.
        string recordPath = Path.Combine(Daemon.Options.DataRoot, "containers", id, "config.v2.json");
        string? persisted = null;
        for (int i = 0; i < 100 && persisted != "unhealthy"; i++)
        {
            if (i > 0) await Task.Delay(50);
            persisted = JsonDocument.Parse(await File.ReadAllTextAsync(recordPath)).RootElement.GetProperty("State").GetProperty("Health").GetProperty("Status").GetString();
        }
        Assert.Equal("unhealthy", persisted);

        await Task.Delay(400); // more failures: no second event
        List<string> actions = (await EventsApiTests.PastEventsAsync(Client, since)).Select(e => e.GetProperty("Action").GetString()!).ToList();
        Assert.Equal(1, actions.Count(a => a == "health_status: unhealthy"));
        Assert.DoesNotContain("health_status: healthy", actions);
    }

    [Fact]
    public async Task A_probe_that_exceeds_its_timeout_is_killed_and_counts_as_a_failure()
    {
        // A distinctive duration, so that the /proc scan below cannot match another test's "sleep 30".
        string id = await RunAsync(new { Test = new[] { "CMD-SHELL", "echo slow; exec sleep 30.4242" }, Interval = 100 * Ms, Timeout = 300 * Ms, Retries = 1 }, "slow");
        JsonElement health = await WaitForStatusAsync(id, "unhealthy");
        JsonElement probe = health.GetProperty("Log")[0];
        Assert.Equal(-1, probe.GetProperty("ExitCode").GetInt32());
        Assert.Equal("Health check exceeded timeout (300ms): slow\n", probe.GetProperty("Output").GetString());
        TimeSpan took = Time(probe, "End") - Time(probe, "Start");
        Assert.True(took >= TimeSpan.FromMilliseconds(300) && took < TimeSpan.FromSeconds(5), $"the probe took {took}");

        // The killed probes are gone: only the container's own sleep (and what ps runs) remains.
        using (HttpResponseMessage stop = await Client.PostAsync($"/containers/{id}/stop?t=0", null))
            Assert.Equal(HttpStatusCode.NoContent, stop.StatusCode);
        Assert.DoesNotContain(Directory.EnumerateDirectories("/proc").Select(d => Path.GetFileName(d)).Where(p => p.All(char.IsAsciiDigit)),
            pid => ReadCmdline(pid) == "sleep 30.4242");
    }

    private static string ReadCmdline(string pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
        }
        catch (IOException)
        {
            return "";
        }
    }

    [Fact]
    public async Task Failures_in_the_start_period_do_not_count_until_the_first_success()
    {
        // Fails throughout: during the 1.5 s start period it stays starting with no streak.
        string id = await RunAsync(new { Test = new[] { "CMD", "false" }, Interval = 100 * Ms, StartPeriod = 1500 * Ms, StartInterval = 100 * Ms, Retries = 1 }, "warming");
        DateTimeOffset started = Time(await StateAsync(id), "StartedAt");
        JsonElement health = await WaitForHealthAsync(id, h => h.GetProperty("Log").GetArrayLength() >= 2, "two probes");
        if (DateTimeOffset.UtcNow - started < TimeSpan.FromMilliseconds(1300))
        {
            Assert.Equal("starting", health.GetProperty("Status").GetString());
            Assert.Equal(0, health.GetProperty("FailingStreak").GetInt32());
        }
        health = await WaitForStatusAsync(id, "unhealthy");
        JsonElement counted = health.GetProperty("Log").EnumerateArray().Last();
        Assert.True(Time(counted, "Start") - started >= TimeSpan.FromMilliseconds(1500), $"counted at {Time(counted, "Start") - started} after the start");

        // A success ends the start period: a failure afterwards counts at once, long before its end.
        string other = await RunAsync(new { Test = new[] { "CMD", "test", "-e", "/ready" }, Interval = 100 * Ms, StartPeriod = 60_000 * Ms, StartInterval = 100 * Ms, Retries = 1 }, "ready");
        await WaitForHealthAsync(other, h => h.GetProperty("Log").GetArrayLength() >= 2, "two failed probes");
        Assert.Equal("starting", (await StateAsync(other)).GetProperty("Health").GetProperty("Status").GetString());
        await ExecAsync(other, "touch", "/ready");
        await WaitForStatusAsync(other, "healthy");
        await ExecAsync(other, "busybox", "rm", "/ready");
        health = await WaitForStatusAsync(other, "unhealthy");
        // Probes go on every 100 ms, so more failures may have counted by the time inspect sees it:
        // the streak is every failure since the last success (none discounted by the start period).
        int streak = health.GetProperty("FailingStreak").GetInt32();
        List<int> exitCodes = health.GetProperty("Log").EnumerateArray().Select(e => e.GetProperty("ExitCode").GetInt32()).ToList();
        int trailingFailures = exitCodes.AsEnumerable().Reverse().TakeWhile(c => c != 0).Count();
        Assert.True(streak >= 1 && trailingFailures >= 1, health.ToString());
        if (trailingFailures < exitCodes.Count) Assert.True(streak == trailingFailures, $"a success then {trailingFailures} failure(s) but a streak of {streak}: {health}");
        else Assert.True(streak >= trailingFailures, health.ToString());
    }

    private async Task ExecAsync(string id, params string[] cmd)
    {
        using HttpResponseMessage created = await Client.PostAsJsonAsync($"/containers/{id}/exec", new { Cmd = cmd });
        string exec = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("Id").GetString()!;
        using var body = new StringContent("{\"Detach\":true}", System.Text.Encoding.UTF8, "application/json"); // exec start takes no chunked body
        using HttpResponseMessage started = await Client.PostAsync($"/exec/{exec}/start", body);
        Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
        for (int i = 0; i < 100; i++)
        {
            JsonElement e = await Daemon.GetJsonAsync($"/exec/{exec}/json");
            if (!e.GetProperty("Running").GetBoolean() && e.GetProperty("ExitCode").ValueKind == JsonValueKind.Number)
            {
                Assert.Equal(0, e.GetProperty("ExitCode").GetInt32());
                return;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"exec {string.Join(' ', cmd)}");
    }

    [Fact]
    public async Task The_image_check_is_inherited_field_by_field_and_NONE_disables_it()
    {
        await Daemon.ImportBusyboxAsync("health:latest", "HEALTHCHECK --interval=150ms --retries=4 CMD echo from-image");
        JsonElement imageConfig = (await Daemon.GetJsonAsync("/images/health:latest/json")).GetProperty("Config").GetProperty("Healthcheck");
        Assert.Equal("[\"CMD-SHELL\",\"echo from-image\"]", imageConfig.GetProperty("Test").GetRawText());
        Assert.Equal(150 * Ms, imageConfig.GetProperty("Interval").GetInt64());

        string inherited = await ContainersApiTests.CreateAsync(Client, new { Image = "health:latest", Cmd = new[] { "sleep", "100" } }, "inherited");
        JsonElement config = (await Daemon.GetJsonAsync($"/containers/{inherited}/json")).GetProperty("Config").GetProperty("Healthcheck");
        Assert.Equal("[\"CMD-SHELL\",\"echo from-image\"]", config.GetProperty("Test").GetRawText());
        Assert.Equal(4, config.GetProperty("Retries").GetInt32());
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{inherited}/start", null))
            Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);
        JsonElement health = await WaitForStatusAsync(inherited, "healthy");
        Assert.Equal("from-image\n", health.GetProperty("Log")[0].GetProperty("Output").GetString());

        // The container's fields win where set; the others come from the image.
        string mixed = await ContainersApiTests.CreateAsync(Client, new { Image = "health:latest", Cmd = new[] { "sleep", "100" }, Healthcheck = new { Retries = 9, Timeout = 2000 * Ms } }, "mixed");
        config = (await Daemon.GetJsonAsync($"/containers/{mixed}/json")).GetProperty("Config").GetProperty("Healthcheck");
        Assert.Equal("[\"CMD-SHELL\",\"echo from-image\"]", config.GetProperty("Test").GetRawText());
        Assert.Equal(150 * Ms, config.GetProperty("Interval").GetInt64());
        Assert.Equal(2000 * Ms, config.GetProperty("Timeout").GetInt64());
        Assert.Equal(9, config.GetProperty("Retries").GetInt32());

        // --no-healthcheck: Test ["NONE"] disables the image's check: no Health, plain status, health=none.
        string none = await RunAsync(new { Test = new[] { "NONE" } }, "none", image: "health:latest");
        await Task.Delay(500);
        JsonElement state = await StateAsync(none);
        Assert.False(state.TryGetProperty("Health", out _), state.ToString());
        Assert.Matches(@"^Up [^(]*$", await PsStatusAsync(none));
        Assert.Equal(["mixed", "none"], await NamesWithHealthAsync("none"));
    }

    [Fact]
    public async Task Create_refuses_bad_durations_and_retries_with_dockerd_messages()
    {
        async Task<(HttpStatusCode, string)> Create(object healthcheck)
        {
            using HttpResponseMessage r = await Client.PostAsJsonAsync("/v1.45/containers/create", new { Image = "busybox", Healthcheck = healthcheck });
            return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("message").GetString()!);
        }
        Assert.Equal((HttpStatusCode.BadRequest, "Interval in Healthcheck cannot be less than 1ms"), await Create(new { Interval = -10 * Ms }));
        Assert.Equal((HttpStatusCode.BadRequest, "Interval in Healthcheck cannot be less than 1ms"), await Create(new { Interval = 500_000 }));
        Assert.Equal((HttpStatusCode.BadRequest, "Timeout in Healthcheck cannot be less than 1ms"), await Create(new { Interval = 1000 * Ms, Timeout = -100 * Ms }));
        Assert.Equal((HttpStatusCode.BadRequest, "Retries in Healthcheck cannot be negative"), await Create(new { Retries = -1 }));
        Assert.Equal((HttpStatusCode.BadRequest, "StartPeriod in Healthcheck cannot be less than 1ms"), await Create(new { StartPeriod = 100 }));
        Assert.Equal((HttpStatusCode.BadRequest, "StartInterval in Healthcheck cannot be less than 1ms"), await Create(new { StartInterval = -1 }));
        Assert.Empty(Daemon.Host.Engine.Containers.Snapshot());

        // StartInterval came with API 1.44: an older client's is ignored, as dockerd ignores it.
        using HttpResponseMessage old = await Client.PostAsJsonAsync("/v1.43/containers/create", new { Image = "busybox", Healthcheck = new { Test = new[] { "CMD", "true" }, StartInterval = 100 * Ms } });
        string id = JsonDocument.Parse(await old.Content.ReadAsStringAsync()).RootElement.GetProperty("Id").GetString()!;
        Assert.False((await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("Config").GetProperty("Healthcheck").TryGetProperty("StartInterval", out _));
    }
}

/// <summary>
/// berthd stopped and started again on the same directories while a container with a health check
/// runs: the record kept its health and monitoring resumes. Its own daemon (the scope's cleanup
/// needs the daemon that made the containers); the containers are removed even when it fails.
/// </summary>
public sealed class HealthRestoreTests
{
    [Fact]
    public async Task Monitoring_resumes_after_aDaemon_restart()
    {
        await using RestartableDaemon daemon = await RestartableDaemon.StartAsync("health-restart");
        string id;
        string last;
        using (HttpClient client = DaemonScope.CreateClient(daemon.Socket))
        {
            id = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "sleep", "100" }, Healthcheck = new { Test = new[] { "CMD", "true" }, Interval = 150_000_000 } }, "kept");
            using (HttpResponseMessage started = await client.PostAsync($"/containers/{id}/start", null))
                Assert.Equal(HttpStatusCode.NoContent, started.StatusCode);
            JsonElement health = await WaitAsync(client, id, h => h.GetProperty("Status").GetString() == "healthy" && h.GetProperty("Log").GetArrayLength() >= 2, "healthy");
            last = health.GetProperty("Log").EnumerateArray().Last().GetProperty("End").GetString()!;
        }

        await daemon.StopAsync(); // the container runs on
        await daemon.StartAgainAsync();
        using (HttpClient client = DaemonScope.CreateClient(daemon.Socket))
        {
            JsonElement health = await WaitAsync(client, id, h => h.GetProperty("Log").GetArrayLength() >= 2, "the health kept in the record");
            await WaitAsync(client, id, h => h.GetProperty("Status").GetString() == "healthy"
                && string.CompareOrdinal(h.GetProperty("Log").EnumerateArray().Last().GetProperty("End").GetString(), last) > 0, "a probe after the restart");
            _ = health;
        }
    }

    private static async Task<JsonElement> WaitAsync(HttpClient client, string id, Func<JsonElement, bool> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(20);
        JsonElement state;
        do
        {
            state = JsonDocument.Parse(await client.GetStringAsync($"/containers/{id}/json")).RootElement.GetProperty("State").Clone();
            if (state.TryGetProperty("Health", out JsonElement h) && condition(h)) return h;
            await Task.Delay(50);
        } while (DateTime.UtcNow < deadline);
        throw new TimeoutException($"waiting for {what}; State: {state}");
    }
}
