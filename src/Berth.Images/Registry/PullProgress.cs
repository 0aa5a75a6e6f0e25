using Berth.Images.Content;

namespace Berth.Images.Registry;

public enum PullState
{
    /// <summary>To be downloaded (Docker's "Pulling fs layer"), announced before any starts.</summary>
    Pending,
    /// <summary>Queued behind other downloads (every slot of <see cref="RegistryClientOptions.Downloads"/> taken).</summary>
    Waiting,
    Downloading,
    /// <summary>The download failed and starts again after <see cref="PullProgress.RetryIn"/> (Docker's "Retrying in N seconds").</summary>
    Retrying,
    /// <summary>Downloaded and verified into the content store.</summary>
    Complete,
    /// <summary>Already in the content store (or fetched by a concurrent pull): not downloaded.</summary>
    AlreadyExists,
    Failed,
}

/// <summary>Progress of one blob of a pull (a layer or the config): what a CLI renders per line.</summary>
public sealed record PullProgress(Digest Digest, string MediaType, PullState State, long Current, long Total)
{
    /// <summary>For <see cref="PullState.Retrying"/>: the back-off before the next attempt.</summary>
    public TimeSpan RetryIn { get; init; }
}

public enum PushState
{
    /// <summary>To be pushed (Docker's "Preparing"), announced before any upload starts.</summary>
    Preparing,
    /// <summary>Queued behind other uploads (every slot of <see cref="RegistryClientOptions.Uploads"/> taken).</summary>
    Waiting,
    Uploading,
    Pushed,
    /// <summary>The registry already had it in this repository.</summary>
    AlreadyExists,
    /// <summary>Mounted from another repository of the same registry, not uploaded.</summary>
    Mounted,
    Failed,
}

/// <summary>Progress of one blob of a push.</summary>
public sealed record PushProgress(Digest Digest, string MediaType, PushState State, long Current, long Total);
