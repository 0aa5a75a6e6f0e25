using Berth.Daemon.Configuration;

namespace Berth.Daemon.Tests;

/// <summary>
/// What the API test classes share: a berthd of the class's own (<see cref="DaemonScope"/>) with
/// busybox:latest imported, disposed even when its start failed half way.
/// </summary>
public abstract class DaemonTestBase : IAsyncLifetime
{
    protected DaemonScope Daemon { get; private set; } = null!;

    protected HttpClient Client => Daemon.Client;

    /// <summary>The daemon's options beyond DaemonScope's defaults.</summary>
    protected virtual DaemonOptions Configure(DaemonOptions options) => options;

    /// <summary>The Dockerfile instruction busybox's import applies.</summary>
    protected virtual string BusyboxChange => "CMD [\"sh\"]";

    public virtual async Task InitializeAsync()
    {
        Daemon = await DaemonScope.StartAsync(Configure);
        await Daemon.ImportBusyboxAsync("busybox:latest", BusyboxChange);
    }

    public virtual async Task DisposeAsync()
    {
        if (Daemon is not null) await Daemon.DisposeAsync();
    }
}
