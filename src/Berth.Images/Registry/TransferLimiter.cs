namespace Berth.Images.Registry;

/// <summary>
/// At most <see cref="Limit"/> blob transfers at once among every pull (or push) that shares this
/// limiter, as dockerd's transfer managers count them daemon-wide (<c>--max-concurrent-downloads</c>,
/// <c>--max-concurrent-uploads</c>); 0 is no limit, as in dockerd. Waiters are let in first come,
/// first served (SemaphoreSlim releases its asynchronous waiters in order).
/// </summary>
public sealed class TransferLimiter
{
    private readonly SemaphoreSlim? _slots;

    public TransferLimiter(int limit)
    {
        if (limit < 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "a transfer limit is 0 (none) or more");
        Limit = limit;
        _slots = limit == 0 ? null : new SemaphoreSlim(limit, limit);
    }

    public int Limit { get; }

    /// <summary>
    /// Takes a slot, calling <paramref name="queued"/> first when none is free (the transfer then
    /// shows as waiting); dispose the result to give the slot back.
    /// </summary>
    public async ValueTask<IDisposable> EnterAsync(Action? queued, CancellationToken cancellationToken)
    {
        if (_slots is null) return Slot.None;
        if (!_slots.Wait(0))
        {
            queued?.Invoke();
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        return new Slot(_slots);
    }

    private sealed class Slot(SemaphoreSlim? slots) : IDisposable
    {
        public static readonly Slot None = new(null);
        private SemaphoreSlim? _slots = slots;

        public void Dispose() => Interlocked.Exchange(ref _slots, null)?.Release();
    }
}
