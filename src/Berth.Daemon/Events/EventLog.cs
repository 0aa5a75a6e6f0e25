using System.Threading.Channels;

namespace Berth.Daemon.Events;

/// <summary>
/// The engine's event log, as dockerd's daemon/events: the last <see cref="Capacity"/> events in a
/// ring (what <c>GET /events?since=</c> replays) and a fan-out to live subscribers.
/// <para>
/// Concurrency: <see cref="Publish"/> is called from anywhere (container locks held, exit
/// watchers, API handlers) and must never wait on a reader. One short lock orders the ring and the
/// subscribers: an event gets its time, enters the ring and is offered to every subscriber under
/// it, so a subscriber that takes its replay under the same lock sees each event exactly once,
/// either in the replay or live, and in time order. Each subscriber has a bounded channel; one that
/// falls <see cref="SubscriberBuffer"/> events behind is completed with
/// <see cref="EventSubscriberTooSlowException"/> (its stream ends) rather than slowing the engine
/// or silently missing events.
/// </para>
/// </summary>
public sealed class EventLog
{
    public const int Capacity = 1024;
    public const int SubscriberBuffer = 1024;

    private readonly EventMessage[] _ring;
    private readonly List<Subscriber> _subscribers = [];
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private int _start;
    private int _count;
    private long _lastNano;

    public EventLog(TimeProvider? time = null, int capacity = Capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _time = time ?? TimeProvider.System;
        _ring = new EventMessage[capacity];
    }

    /// <summary>
    /// Records an event and hands it to the subscribers; never blocks. <paramref name="type"/> is
    /// dockerd's event type (<c>container</c>, <c>image</c>, <c>network</c>, <c>volume</c>,
    /// <c>daemon</c>), <paramref name="action"/> its action (<c>create</c>, <c>start</c>, <c>die</c>,
    /// …), <paramref name="id"/> the actor's ID (a container ID, an image ID or reference, a
    /// network ID, a volume name), <paramref name="attributes"/> the actor's attributes (for
    /// containers <c>image</c>, <c>name</c> and the labels; for volumes <c>driver</c>; …).
    /// </summary>
    public EventMessage Publish(string type, string action, string id, IReadOnlyDictionary<string, string>? attributes = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(type);
        ArgumentException.ThrowIfNullOrEmpty(action);
        ArgumentNullException.ThrowIfNull(id);
        var attrs = attributes is null ? new Dictionary<string, string>(StringComparer.Ordinal) : new Dictionary<string, string>(attributes, StringComparer.Ordinal);
        bool legacy = type is "container" or "image";
        lock (_lock)
        {
            // Kept non-decreasing so the ring stays sorted by time even if the clock steps back.
            long nano = Math.Max(ToUnixNano(_time.GetUtcNow()), _lastNano);
            _lastNano = nano;
            var message = new EventMessage
            {
                Status = legacy ? action : null,
                Id = legacy ? id : null,
                From = type == "container" && attrs.TryGetValue("image", out string? image) ? image : null,
                Type = type,
                Action = action,
                Actor = new EventActor(id, attrs),
                Time = nano / 1_000_000_000,
                TimeNano = nano,
            };
            if (_count < _ring.Length) _ring[(_start + _count++) % _ring.Length] = message;
            else
            {
                _ring[_start] = message;
                _start = (_start + 1) % _ring.Length;
            }
            for (int i = _subscribers.Count - 1; i >= 0; i--)
            {
                Subscriber s = _subscribers[i];
                if (s.Filter is not null && !s.Filter(message)) continue;
                if (!s.Channel.Writer.TryWrite(message))
                {
                    _subscribers.RemoveAt(i);
                    s.Channel.Writer.TryComplete(new EventSubscriberTooSlowException());
                }
            }
            return message;
        }
    }

    /// <summary>
    /// Subscribes to the events <paramref name="filter"/> accepts. The replay holds the ring's
    /// events as dockerd's loadBufferedEvents picks them: none when neither bound is given,
    /// otherwise those at or after <paramref name="since"/> and not after <paramref name="until"/>.
    /// Live events follow without gap or repetition. Dispose the subscription to leave.
    /// </summary>
    public EventSubscription Subscribe(DateTimeOffset? since, DateTimeOffset? until, Func<EventMessage, bool>? filter)
    {
        long sinceNano = since is { } s ? ToUnixNano(s) : 0;
        long untilNano = until is { } u ? ToUnixNano(u) : 0;
        var past = new List<EventMessage>();
        var subscriber = new Subscriber(filter, Channel.CreateBounded<EventMessage>(new BoundedChannelOptions(SubscriberBuffer)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full; Publish never waits
        }));
        lock (_lock)
        {
            if (since is not null || until is not null)
                for (int i = 0; i < _count; i++)
                {
                    EventMessage e = _ring[(_start + i) % _ring.Length];
                    if (e.TimeNano < sinceNano) continue;
                    if (untilNano > 0 && e.TimeNano > untilNano) break;
                    if (filter is null || filter(e)) past.Add(e);
                }
            _subscribers.Add(subscriber);
        }
        return new EventSubscription(past, subscriber.Channel.Reader, () => Unsubscribe(subscriber));
    }

    /// <summary>The events in the ring, oldest first.</summary>
    public IReadOnlyList<EventMessage> Recent()
    {
        lock (_lock)
        {
            var list = new List<EventMessage>(_count);
            for (int i = 0; i < _count; i++) list.Add(_ring[(_start + i) % _ring.Length]);
            return list;
        }
    }

    internal int SubscriberCount
    {
        get
        {
            lock (_lock) return _subscribers.Count;
        }
    }

    private void Unsubscribe(Subscriber subscriber)
    {
        lock (_lock) _subscribers.Remove(subscriber);
        subscriber.Channel.Writer.TryComplete();
    }

    public static long ToUnixNano(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    private sealed record Subscriber(Func<EventMessage, bool>? Filter, Channel<EventMessage> Channel);
}

/// <summary>A subscriber's replay and its live events; disposing it unsubscribes.</summary>
public sealed class EventSubscription(IReadOnlyList<EventMessage> past, ChannelReader<EventMessage> live, Action unsubscribe) : IDisposable
{
    private int _disposed;

    public IReadOnlyList<EventMessage> Past { get; } = past;

    /// <summary>Completes with <see cref="EventSubscriberTooSlowException"/> when the reader fell too far behind.</summary>
    public ChannelReader<EventMessage> Live { get; } = live;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) unsubscribe();
    }
}

public sealed class EventSubscriberTooSlowException()
    : Exception($"the event subscriber fell more than {EventLog.SubscriberBuffer} events behind and was dropped");
