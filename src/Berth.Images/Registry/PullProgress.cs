using Berth.Images.Content;

namespace Berth.Images.Registry;

public enum PullState
{
    /// <summary>Queued behind other downloads.</summary>
    Waiting,
    Downloading,
    /// <summary>Downloaded and verified into the content store.</summary>
    Complete,
    /// <summary>Already in the content store (or fetched by a concurrent pull): not downloaded.</summary>
    AlreadyExists,
    Failed,
}

/// <summary>Progress of one blob of a pull (a layer or the config): what a CLI renders per line.</summary>
public sealed record PullProgress(Digest Digest, string MediaType, PullState State, long Current, long Total);

public enum PushState
{
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
