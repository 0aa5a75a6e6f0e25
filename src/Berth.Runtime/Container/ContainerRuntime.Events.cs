using System.Text.Json.Serialization;
using Berth.Cgroups;
using Berth.Oci;

namespace Berth.Runtime.Container;

/// <summary>One line of `events`, as runc's types.Event: {"type":"stats"|"oom","id":…,"data":…}.</summary>
public sealed class ContainerEvent
{
    [JsonPropertyName("type")] public string Type { get; set; } = "";
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("data"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public CgroupStats? Data { get; set; }
}

[JsonSerializable(typeof(ContainerEvent))]
public sealed partial class EventsJsonContext : JsonSerializerContext;

public sealed partial class ContainerRuntime
{
    /// <summary>The container's cgroup figures (runc events --stats).</summary>
    public ContainerEvent Stats(string id)
    {
        var record = Store.Load(id);
        if (StatusOf(record) == ContainerStatus.Stopped) throw new InvalidStateException($"container with id {id} is not running");
        var cgroup = LoadCgroup(record) ?? throw new RuntimeException($"container \"{id}\" has no cgroup");
        return new ContainerEvent { Type = "stats", Id = id, Data = cgroup.Stats() };
    }

    /// <summary>
    /// Reports a stats event every <paramref name="interval"/> and an oom event whenever the
    /// kernel OOM-kills a process of the container, until the container stops or
    /// <paramref name="cancellationToken"/> fires. <paramref name="emit"/> is called from two
    /// threads, never at the same time.
    /// </summary>
    public void Events(string id, TimeSpan interval, Action<ContainerEvent> emit, CancellationToken cancellationToken = default)
    {
        var record = Store.Load(id);
        if (StatusOf(record) == ContainerStatus.Stopped) throw new InvalidStateException($"container with id {id} is not running");
        var cgroup = LoadCgroup(record) ?? throw new RuntimeException($"container \"{id}\" has no cgroup");
        var gate = new object();
        void Emit(ContainerEvent e) { lock (gate) emit(e); }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        IOomWatcher? watcher = null;
        try { watcher = cgroup.WatchOom(); }
        catch (CgroupException e) { Warn($"events: OOM kills cannot be reported: {e.Message}"); }
        var oomThread = watcher is null ? null : new Thread(() =>
        {
            try
            {
                while (watcher.WaitForOom(stop.Token)) Emit(new ContainerEvent { Type = "oom", Id = id });
            }
            catch (OperationCanceledException) { }
            catch (CgroupException e) { Warn($"events: {e.Message}"); }
        }) { IsBackground = true, Name = "oom watcher" };
        oomThread?.Start();
        try
        {
            var next = DateTime.UtcNow + interval;
            while (!stop.IsCancellationRequested)
            {
                // The container's end is checked often, the figures read every interval.
                var wait = TimeSpan.FromMilliseconds(Math.Min(200, Math.Max(0, (next - DateTime.UtcNow).TotalMilliseconds)));
                if (stop.Token.WaitHandle.WaitOne(wait)) break;
                if (StatusOf(record) == ContainerStatus.Stopped)
                {
                    // An OOM kill of the init itself: let the watcher report it before we go.
                    Thread.Sleep(50);
                    break;
                }
                if (DateTime.UtcNow < next) continue;
                next += interval;
                try { Emit(new ContainerEvent { Type = "stats", Id = id, Data = cgroup.Stats() }); }
                catch (CgroupException e) { Warn($"events: stats: {e.Message}"); }
            }
        }
        finally
        {
            stop.Cancel();
            oomThread?.Join(TimeSpan.FromSeconds(1));
            watcher?.Dispose();
        }
    }
}
