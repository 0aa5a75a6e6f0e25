using Berth.Daemon.Api;
using Berth.Daemon.Events;

namespace Berth.Daemon.Tests.Events;

/// <summary>The event ring, fan-out, filters and time parsing, without a daemon.</summary>
public sealed class EventLogTests
{
    /// <summary>A clock the test moves by hand.</summary>
    private sealed class ManualTime(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;
        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static readonly DateTimeOffset T0 = new(2024, 5, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Messages_have_dockers_fields()
    {
        var log = new EventLog(new ManualTime(T0.AddTicks(1234567)));
        EventMessage c = log.Publish("container", "start", "abc", new Dictionary<string, string> { ["image"] = "busybox", ["name"] = "web" });
        Assert.Equal("start", c.Status);
        Assert.Equal("abc", c.Id);
        Assert.Equal("busybox", c.From);
        Assert.Equal(T0.ToUnixTimeSeconds(), c.Time);
        Assert.Equal(T0.ToUnixTimeSeconds() * 1_000_000_000 + 123456700, c.TimeNano);
        string json = System.Text.Json.JsonSerializer.Serialize(c, EventsJson.Context.EventMessage);
        Assert.Equal("{\"status\":\"start\",\"id\":\"abc\",\"from\":\"busybox\",\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"abc\",\"Attributes\":{\"image\":\"busybox\",\"name\":\"web\"}},\"scope\":\"local\",\"time\":"
            + c.Time + ",\"timeNano\":" + c.TimeNano + "}", json);

        EventMessage image = log.Publish("image", "tag", "sha256:1", new Dictionary<string, string> { ["name"] = "x:1" });
        Assert.Equal(("tag", "sha256:1", (string?)null), (image.Status, image.Id, image.From));
        EventMessage volume = log.Publish("volume", "create", "v1", null);
        Assert.Null(volume.Status);
        Assert.Null(volume.Id);
        Assert.DoesNotContain("\"status\"", System.Text.Json.JsonSerializer.Serialize(volume, EventsJson.Context.EventMessage));
        Assert.Empty(volume.Actor.Attributes);
    }

    [Fact]
    public void The_ring_keeps_the_last_1024_and_replays_between_since_and_until()
    {
        var time = new ManualTime(T0);
        var log = new EventLog(time);
        for (int i = 0; i < 1500; i++)
        {
            log.Publish("container", "start", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            time.Now += TimeSpan.FromSeconds(1);
        }
        IReadOnlyList<EventMessage> recent = log.Recent();
        Assert.Equal(EventLog.Capacity, recent.Count);
        Assert.Equal("476", recent[0].Actor.Id);
        Assert.Equal("1499", recent[^1].Actor.Id);

        // No bound: no replay, as dockerd.
        using (EventSubscription none = log.Subscribe(null, null, null)) Assert.Empty(none.Past);
        using (EventSubscription between = log.Subscribe(T0.AddSeconds(1000), T0.AddSeconds(1002), null))
            Assert.Equal(["1000", "1001", "1002"], between.Past.Select(e => e.Actor.Id));
        using (EventSubscription filtered = log.Subscribe(T0, null, e => e.Actor.Id.EndsWith("99", StringComparison.Ordinal)))
            Assert.Equal(["499", "599", "699", "799", "899", "999", "1099", "1199", "1299", "1399", "1499"], filtered.Past.Select(e => e.Actor.Id));
        using (EventSubscription onlyUntil = log.Subscribe(null, T0.AddSeconds(480), null))
            Assert.Equal(["476", "477", "478", "479", "480"], onlyUntil.Past.Select(e => e.Actor.Id));
    }

    [Fact]
    public void Time_never_goes_back_in_the_ring()
    {
        var time = new ManualTime(T0);
        var log = new EventLog(time);
        log.Publish("container", "a", "1");
        time.Now = T0.AddSeconds(-30);
        EventMessage b = log.Publish("container", "b", "2");
        Assert.Equal(log.Recent()[0].TimeNano, b.TimeNano);
    }

    [Fact]
    public async Task Subscribers_get_live_events_in_order_without_gap_after_the_replay()
    {
        var log = new EventLog(new ManualTime(T0));
        log.Publish("container", "create", "old");
        using EventSubscription s = log.Subscribe(T0, null, e => e.Type == "container");
        log.Publish("network", "create", "n");
        log.Publish("container", "start", "new");
        Assert.Equal(["old"], s.Past.Select(e => e.Actor.Id));
        Assert.True(await s.Live.WaitToReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.True(s.Live.TryRead(out EventMessage? live));
        Assert.Equal("new", live.Actor.Id);
        Assert.False(s.Live.TryRead(out _));
        s.Dispose();
        Assert.Equal(0, log.SubscriberCount);
    }

    [Fact]
    public async Task A_subscriber_that_never_reads_is_dropped_and_never_blocks_the_publisher()
    {
        var log = new EventLog(new ManualTime(T0));
        using EventSubscription slow = log.Subscribe(null, null, null);
        using EventSubscription fast = log.Subscribe(null, null, null);
        // The fast subscriber drains between publishes on this thread: a reader task could be
        // starved on a loaded machine and rightly be dropped too, which is not what this tests.
        var read = new List<string>();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < EventLog.SubscriberBuffer * 3; i++)
        {
            log.Publish("container", "start", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            while (fast.Live.TryRead(out EventMessage? e)) read.Add(e.Actor.Id);
        }
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), "publishing waited on a subscriber");
        // The slow one holds exactly its buffer, then ends with the reason.
        int buffered = 0;
        while (slow.Live.TryRead(out _)) buffered++;
        Assert.Equal(EventLog.SubscriberBuffer, buffered);
        await Assert.ThrowsAsync<EventSubscriberTooSlowException>(() => slow.Live.Completion.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(1, log.SubscriberCount);
        Assert.Equal(EventLog.SubscriberBuffer * 3, read.Count);
    }

    private static EventMessage Event(string type, string action, string id, params (string, string)[] attributes)
        => new EventLog().Publish(type, action, id, attributes.ToDictionary(a => a.Item1, a => a.Item2));

    private static EventFilter Filter(params (string Key, string Value)[] pairs)
        => new(pairs.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Select(p => p.Value).ToList()));

    [Fact]
    public void Filters_match_as_dockerd_matches_them()
    {
        EventMessage start = Event("container", "start", "0123456789ab", ("image", "busybox:latest"), ("name", "web"), ("team", "a"));
        EventMessage exec = Event("container", "exec_create: sh -c date", "0123456789ab", ("image", "busybox"), ("name", "web"), ("execID", "e"));
        EventMessage tag = Event("image", "tag", "sha256:feed", ("name", "127.0.0.1:5000/app:v1"));
        EventMessage connect = Event("network", "connect", "net1", ("container", "0123456789ab"), ("name", "bridge"), ("type", "bridge"));

        Assert.True(Filter().Matches(start));
        Assert.True(Filter(("container", "web")).Matches(start));
        Assert.True(Filter(("container", "0123")).Matches(start)); // ID prefix
        Assert.True(Filter(("container", "we")).Matches(start)); // name prefix, as dockerd's fuzzy match
        Assert.False(Filter(("container", "db")).Matches(start));
        Assert.False(Filter(("container", "web")).Matches(connect)); // other types never match a container filter
        Assert.True(Filter(("network", "bridge")).Matches(connect));
        Assert.True(Filter(("type", "image"), ("type", "network")).Matches(connect));
        Assert.False(Filter(("type", "image")).Matches(start));
        Assert.True(Filter(("event", "start"), ("event", "die")).Matches(start));
        Assert.False(Filter(("event", "exec_create")).Matches(start));
        Assert.True(Filter(("event", "exec_create")).Matches(exec)); // the suffixed actions match by prefix
        Assert.False(Filter(("event", "exec")).Matches(exec));
        Assert.True(Filter(("image", "busybox")).Matches(start)); // tag stripped
        Assert.True(Filter(("image", "busybox:latest")).Matches(start));
        Assert.True(Filter(("image", "127.0.0.1:5000/app")).Matches(tag));
        Assert.True(Filter(("image", "sha256:feed")).Matches(tag));
        Assert.False(Filter(("image", "alpine")).Matches(tag));
        Assert.True(Filter(("label", "team")).Matches(start));
        Assert.True(Filter(("label", "team=a")).Matches(start));
        Assert.False(Filter(("label", "team=b")).Matches(start));
        Assert.False(Filter(("label", "team=a"), ("label", "other")).Matches(start));
        Assert.True(Filter(("scope", "local")).Matches(start));
        Assert.False(Filter(("scope", "swarm")).Matches(start));
    }

    [Theory]
    [InlineData("1714564800", 1714564800_000000000L)]
    [InlineData("1714564800.5", 1714564800_500000000L)]
    [InlineData("1714564800.000000001", 1714564800_000000001L)]
    [InlineData("2024-05-01T12:00:00Z", 1714564800_000000000L)]
    [InlineData("2024-05-01T14:00:00+02:00", 1714564800_000000000L)]
    [InlineData("2024-05-01T12:00:00.25Z", 1714564800_250000000L)]
    [InlineData("2024-05-01T12:00", 1714564800_000000000L)]
    [InlineData("2024-05-01", 1714521600_000000000L)]
    [InlineData("10m", 1714564800_000000000L - 600_000000000L)]
    [InlineData("1h30m", 1714564800_000000000L - 5400_000000000L)]
    [InlineData("1.5s", 1714564800_000000000L - 1_500000000L)]
    [InlineData("-5s", 1714564800_000000000L + 5_000000000L)]
    public void Times_take_every_form_docker_clients_send(string text, long unixNano)
    {
        DateTimeOffset? t = DockerTime.Parse(text, new DateTimeOffset(2024, 5, 1, 12, 0, 0, TimeSpan.Zero), "since");
        Assert.Equal(unixNano / 100 * 100, EventLog.ToUnixNano(t!.Value)); // DateTimeOffset holds 100 ns ticks
    }

    [Theory]
    [InlineData("yesterday")]
    [InlineData("10x")]
    [InlineData("2024-13-45")]
    [InlineData("12.3.4")]
    public void Bad_times_are_400_naming_the_parameter(string text)
    {
        ApiException e = Assert.Throws<ApiException>(() => DockerTime.Parse(text, DateTimeOffset.UnixEpoch, "until"));
        Assert.Equal(400, e.StatusCode);
        Assert.Contains("until", e.Message);
    }

    [Fact]
    public void No_bound_is_null()
    {
        Assert.Null(DockerTime.Parse(null, DateTimeOffset.UnixEpoch, "since"));
        Assert.Null(DockerTime.Parse("", DateTimeOffset.UnixEpoch, "since"));
        Assert.Null(DockerTime.Parse("0", DateTimeOffset.UnixEpoch, "since"));
    }
}
