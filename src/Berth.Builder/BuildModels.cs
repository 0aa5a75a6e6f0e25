using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.Store;

namespace Berth.Builder;

/// <summary>What went wrong in a build; the daemon maps the kinds to status codes (before the stream) or errorDetail lines.</summary>
public enum BuildErrorKind
{
    /// <summary>A bad Dockerfile, flag, build argument or context path.</summary>
    InvalidArgument,
    /// <summary>A base image, stage or source file that does not exist.</summary>
    NotFound,
    /// <summary>A RUN step that exited non-zero.</summary>
    StepFailed,
    /// <summary>Anything else.</summary>
    Internal,
}

public sealed class BuildException(BuildErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public BuildErrorKind Kind { get; } = kind;

    /// <summary>The exit code of the failed RUN step (Docker reports it as errorDetail.code).</summary>
    public int ExitCode { get; init; } = 1;
}

/// <summary>The parameters of <c>POST /build</c> (<c>docker build</c>'s flags) the builder honours.</summary>
public sealed class BuildOptions
{
    /// <summary>The Dockerfile's path relative to the context root (<c>-f</c>).</summary>
    public string Dockerfile { get; init; } = "Dockerfile";

    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary><c>--build-arg</c>: a null value means "take it from the environment", which the client already did.</summary>
    public IReadOnlyDictionary<string, string?> BuildArgs { get; init; } = new Dictionary<string, string?>();

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary><c>--target</c>: the stage to stop at (name or index).</summary>
    public string? Target { get; init; }

    public bool NoCache { get; init; }

    /// <summary>
    /// <c>--cache-from</c>: images whose steps this build may take instead of running them (matched by
    /// their history, as dockerd's classic builder does); with it, only they (and their parents) are the cache.
    /// </summary>
    public IReadOnlyList<string> CacheFrom { get; init; } = [];

    /// <summary><c>--pull</c>: fetch base images again even when present.</summary>
    public bool Pull { get; init; }

    /// <summary><c>--network</c> for RUN steps (the engine's default network when null).</summary>
    public string? NetworkMode { get; init; }

    /// <summary><c>--add-host</c> for RUN steps: <c>name:address</c> lines of their /etc/hosts (not part of the cache key, as dockerd's).</summary>
    public IReadOnlyList<string> ExtraHosts { get; init; } = [];

    /// <summary><c>--shm-size</c> for RUN steps, in bytes (0: the engine's default).</summary>
    public long ShmSize { get; init; }

    public Platform? Platform { get; init; }

    /// <summary>
    /// <c>--rm</c> (dockerd's default): a step's containers are removed once the step worked; a failed
    /// step's container is kept, as dockerd keeps it, for <c>docker logs</c> or <c>commit</c>.
    /// </summary>
    public bool Remove { get; init; } = true;

    /// <summary><c>--force-rm</c>: a step's containers are removed whatever happened.</summary>
    public bool ForceRemove { get; init; }
}

/// <summary>Where the classic <c>Step N/M</c> progress goes (the daemon wraps each write in a <c>{"stream": …}</c> message).</summary>
public interface IBuildOutput
{
    void Write(string text);

    /// <summary>A stage is built: its image (the classic builder's aux message, one per stage).</summary>
    void StageBuilt(Digest imageId)
    {
    }
}

/// <summary>A RUN step for the engine to execute in a container made from <see cref="BaseImage"/>.</summary>
public sealed record BuildRunRequest(
    Image BaseImage,
    IReadOnlyList<string> Command,
    IReadOnlyList<string> Env,
    string? User,
    string? WorkingDir,
    string? NetworkMode,
    /// <summary>The config the new image gets (the stage's, not the RUN command's).</summary>
    ContainerConfig CommitConfig,
    string CreatedBy)
{
    /// <summary>RUN --mount: what the step's container has mounted, never part of the committed layer.</summary>
    public IReadOnlyList<BuildRunMount> Mounts { get; init; } = [];

    /// <summary>The build's <see cref="BuildOptions.ExtraHosts"/>.</summary>
    public IReadOnlyList<string> ExtraHosts { get; init; } = [];

    /// <summary>The build's <see cref="BuildOptions.ShmSize"/>.</summary>
    public long ShmSize { get; init; }

    /// <summary>The new image's <c>container_config</c>: the step's container as dockerd records it.</summary>
    public ContainerConfig? RecordedConfig { get; init; }
}

/// <summary>
/// A mount of a RUN step's container: a bind of <paramref name="Source"/> (a build-context path, a cache
/// directory, a copy for a writable bind) or a tmpfs (<paramref name="Source"/> null, <paramref name="TmpfsSize"/>).
/// </summary>
public sealed record BuildRunMount(string Target, string? Source, bool ReadOnly, long? TmpfsSize = null);

/// <summary>
/// What the engine provides to the builder: base images, and containers for RUN steps (with the
/// engine's networking, its monitor and its runtime). The builder does the rest itself (COPY/ADD
/// into snapshots, metadata commits, the cache).
/// </summary>
public interface IBuildBackend
{
    /// <summary>The image <paramref name="reference"/>, pulled when missing or when <paramref name="pull"/>; progress goes to <paramref name="output"/>.</summary>
    Task<Image> ResolveImageAsync(string reference, bool pull, Platform? platform, IBuildOutput output, CancellationToken cancellationToken);

    /// <summary>
    /// Runs the step in a new container, streaming its output, and commits its writable layer on
    /// success. The container stays: the builder removes it (<see cref="RemoveContainerAsync"/>) as
    /// <c>--rm</c>/<c>--force-rm</c> say.
    /// </summary>
    /// <returns>The committed image.</returns>
    /// <exception cref="BuildException">StepFailed with the exit code when the command fails.</exception>
    Task<Image> RunAsync(BuildRunRequest request, IBuildOutput output, Action<string> containerCreated, CancellationToken cancellationToken);

    /// <summary>
    /// Creates, and does not start, the container dockerd's classic builder makes for a step that only
    /// changes the config (its Cmd the step's <c>#(nop)</c> comment); its ID goes in the step's image.
    /// </summary>
    /// <returns>The container's ID.</returns>
    Task<string> CreateContainerAsync(Image baseImage, ContainerConfig config, CancellationToken cancellationToken);

    /// <summary>Removes a step's container and its anonymous volumes.</summary>
    Task RemoveContainerAsync(string id);
}

/// <summary>The outcome of a build: the final image and the names it got.</summary>
public sealed record BuildResult(Image Image, IReadOnlyList<string> Tags);
