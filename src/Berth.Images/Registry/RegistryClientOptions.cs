namespace Berth.Images.Registry;

/// <summary>Settings of a <see cref="RegistryClient"/>.</summary>
public sealed class RegistryClientOptions
{
    /// <summary>
    /// Registries (host[:port]) spoken to over plain HTTP. Loopback registries (localhost,
    /// 127.0.0.0/8, ::1) always are; every other registry is HTTPS with certificate checks.
    /// </summary>
    public IReadOnlyCollection<string> InsecureRegistries { get; init; } = [];

    /// <summary>
    /// Docker Hub mirrors (dockerd's <c>--registry-mirror</c>): <c>http(s)://host[:port]</c>, no path.
    /// A pull of a docker.io image tries each, in order, then Docker Hub; the scheme of a mirror is
    /// the one it names. Pulls from other registries and pushes never use them.
    /// </summary>
    public IReadOnlyList<Uri> Mirrors { get; init; } = [];

    /// <summary>Told when a mirror fails a pull, before the next mirror (or Docker Hub) is tried.</summary>
    public Action<Uri, Exception>? MirrorFailed { get; init; }

    /// <summary>Where credentials come from; by default <c>~/.docker/config.json</c>.</summary>
    public ICredentialProvider? Credentials { get; init; }

    /// <summary>The HTTP handler (tests wrap it); by default a SocketsHttpHandler.</summary>
    public HttpMessageHandler? Handler { get; init; }

    /// <summary>Attempts per request other than a blob download, for connection errors, 5xx and 429 (1 = no retry).</summary>
    public int MaxAttempts { get; init; } = 4;

    /// <summary>
    /// Attempts of each blob download (dockerd's <c>max-download-attempts</c>, default 5): a connection
    /// error, a 5xx answer or a transfer cut short starts it again after a back-off; a 4xx answer
    /// (unknown blob, refused credentials, rate limit) fails it at once, as dockerd does.
    /// </summary>
    public int MaxDownloadAttempts { get; init; } = 5;

    /// <summary>The first back-off delay; each retry doubles it (a Retry-After header wins, up to <see cref="MaxRetryDelay"/>).</summary>
    public TimeSpan InitialRetryDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How many layers are downloaded at once (dockerd's <c>max-concurrent-downloads</c>, default 3);
    /// clients given the same limiter share it, as a daemon's pulls do.
    /// </summary>
    public TransferLimiter Downloads { get; init; } = new(3);

    /// <summary>How many blobs are uploaded at once (dockerd's <c>max-concurrent-uploads</c>, default 5), shared likewise.</summary>
    public TransferLimiter Uploads { get; init; } = new(5);

    /// <summary>The size of each PATCH of a chunked upload.</summary>
    public int UploadChunkSize { get; init; } = 8 * 1024 * 1024;

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The User-Agent sent with every request.</summary>
    public string UserAgent { get; init; } = "berth";
}
