using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;

namespace Berth.Images.Registry;

/// <summary>What a pull stored.</summary>
/// <param name="Root">The descriptor the reference resolved to: an index or a manifest.</param>
/// <param name="Manifest">The manifest chosen (the root itself, or the platform's entry of the index).</param>
/// <param name="Config">The config's digest: the image ID.</param>
public sealed record PullResult(ImageReference Reference, Descriptor Root, Descriptor Manifest, Digest Config);

/// <summary>One repository a registry's search found.</summary>
public sealed record SearchResult(string Name, string Description, int StarCount, bool IsOfficial, bool IsAutomated);

/// <summary>What a push sent.</summary>
public sealed record PushResult(ImageReference Reference, Descriptor Root);

/// <summary>Options of a push.</summary>
public sealed class PushOptions
{
    /// <summary>Repositories (paths, on the same registry) to try to mount blobs from before uploading them.</summary>
    public IReadOnlyList<string> MountFrom { get; init; } = [];

    public IProgress<PushProgress>? Progress { get; init; }
}

/// <summary>
/// A client of the Distribution API v2 (the OCI distribution spec). Pulls into and pushes from an
/// <see cref="IContentStore"/>; every blob is verified by the store against the digest that names
/// it, and every manifest against the digest it was fetched by (or the one the registry claims).
///
/// Concurrency: layers download (and blobs upload) at most as many at once as
/// <see cref="RegistryClientOptions.Downloads"/> (<see cref="RegistryClientOptions.Uploads"/>)
/// lets, counted across every client sharing that limiter. A blob being downloaded by one pull is awaited, not downloaded again, by any
/// other pull through this client; across processes the store's per-digest lock does the same,
/// because the download only starts once the store asks for the first byte.
/// </summary>
public sealed class RegistryClient : IDisposable
{
    private const int MaxErrorBodySize = 64 * 1024;
    private readonly RegistryClientOptions _options;
    private readonly HttpClient _http;
    private readonly RegistryAuthenticator _auth;
    private readonly ConcurrentDictionary<Digest, Lazy<Task>> _downloads = new();
    private readonly Dictionary<string, string> _mirrorSchemes = new(StringComparer.OrdinalIgnoreCase);

    public RegistryClient(RegistryClientOptions? options = null)
    {
        _options = options ?? new RegistryClientOptions();
        if (_options.MaxAttempts < 1 || _options.MaxDownloadAttempts < 1 || _options.UploadChunkSize < 1)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, "RegistryClientOptions: MaxAttempts, MaxDownloadAttempts and UploadChunkSize must be positive");
        HttpMessageHandler handler = _options.Handler ?? new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
        };
        _http = new HttpClient(handler, disposeHandler: _options.Handler is null) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd(_options.UserAgent);
        _auth = new RegistryAuthenticator(_http, _options.Credentials ?? DockerConfigCredentials.LoadDefault(), _options.TimeProvider);
        foreach (Uri mirror in _options.Mirrors)
        {
            if (mirror.Scheme is not ("http" or "https") || mirror.AbsolutePath != "/" || mirror.Query.Length > 0 || mirror.UserInfo.Length > 0)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"RegistryClientOptions: mirror {mirror} must be http(s)://host[:port] without a path");
            _mirrorSchemes.TryAdd(mirror.Authority, mirror.Scheme);
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>
    /// The base URL of a registry: a mirror's own scheme, HTTP for loopback and insecure registries,
    /// HTTPS otherwise; Docker Hub's API host for docker.io.
    /// </summary>
    public Uri BaseUri(string registry)
    {
        if (_mirrorSchemes.TryGetValue(registry, out string? scheme)) return new Uri($"{scheme}://{registry}/v2/");
        string host = registry == ImageReference.DefaultDomain ? "registry-1.docker.io" : registry;
        return new Uri($"{(IsInsecure(registry) ? "http" : "https")}://{host}/v2/");
    }

    private bool IsInsecure(string registry)
    {
        if (_options.InsecureRegistries.Contains(registry, StringComparer.OrdinalIgnoreCase)) return true;
        string host = registry.StartsWith('[') ? registry[..(registry.IndexOf(']') + 1)] : registry.Split(':')[0];
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return IPAddress.TryParse(host.Trim('[', ']'), out IPAddress? ip) && IPAddress.IsLoopback(ip);
    }

    // ---- login --------------------------------------------------------------------------------

    /// <summary>
    /// Checks this client's credentials for <paramref name="registry"/> as dockerd does for
    /// <c>docker login</c>: <c>GET /v2/</c>, answering the registry's challenge (basic auth, or a
    /// token for no repository). Throws a <see cref="RegistryException"/> of kind
    /// <see cref="ImagesErrorKind.Unauthorized"/> when the registry or its token endpoint refuses
    /// them; a registry that asks for no credentials accepts any.
    /// </summary>
    public async Task LoginAsync(string registry, CancellationToken cancellationToken = default)
    {
        var ctx = new RequestContext(registry, "", "", "");
        using HttpResponseMessage response = await SendAsync(ctx, () => new HttpRequestMessage(HttpMethod.Get, BaseUri(registry)),
            HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
            throw new RegistryException(ImagesErrorKind.Unauthorized,
                $"registry {registry}: login to {BaseUri(registry)} refused: HTTP 401 {response.ReasonPhrase} (check the user name and password)",
                registry, "", null, response.StatusCode);
        if (!response.IsSuccessStatusCode)
            throw new RegistryException(response.StatusCode == HttpStatusCode.Forbidden ? ImagesErrorKind.Unauthorized : ImagesErrorKind.Unavailable,
                $"registry {registry}: login to {BaseUri(registry)} failed: HTTP {(int)response.StatusCode} {response.ReasonPhrase}",
                registry, "", null, response.StatusCode);
    }

    // ---- search -------------------------------------------------------------------------------

    /// <summary>The most a search answer may be: an index gives at most 100 results of a few hundred bytes.</summary>
    private const int MaxSearchResponse = 1 << 20;

    /// <summary>
    /// <c>docker search</c>: the registry's v1 search API (<c>GET /v1/search?q=…&amp;n=…</c>), which Docker
    /// Hub's index.docker.io serves; the Distribution registry does not (a 404 names the index).
    /// <paramref name="index"/> is a registry host, or docker.io for Docker Hub's index.
    /// </summary>
    public async Task<IReadOnlyList<SearchResult>> SearchAsync(string index, string term, int limit, CancellationToken cancellationToken = default)
    {
        string host = index == ImageReference.DefaultDomain ? "index.docker.io" : index;
        var url = new Uri($"{(IsInsecure(index) ? "http" : "https")}://{host}/v1/search?q={Uri.EscapeDataString(term)}&n={limit}");
        var ctx = new RequestContext(index, "", term, "");
        using HttpResponseMessage response = await SendAsync(ctx, () => new HttpRequestMessage(HttpMethod.Get, url),
            HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new RegistryException(response.StatusCode == HttpStatusCode.NotFound ? ImagesErrorKind.NotFound : ImagesErrorKind.Unavailable,
                $"search of {host} for `{term}`: {url} answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}"
                + (response.StatusCode == HttpStatusCode.NotFound ? " (the registry has no v1 search API)" : ""),
                index, "", term, response.StatusCode);
        byte[] body;
        await using (Stream s = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false))
            body = await ReadAllAsync(s, MaxSearchResponse, cancellationToken).ConfigureAwait(false);
        try
        {
            using JsonDocument doc = JsonDocument.Parse(body);
            if (!doc.RootElement.TryGetProperty("results", out JsonElement results) || results.ValueKind != JsonValueKind.Array)
                throw new JsonException("no `results` array");
            var list = new List<SearchResult>();
            foreach (JsonElement r in results.EnumerateArray())
            {
                string Text(string name) => r.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
                bool Flag(string name) => r.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.True;
                int stars = r.TryGetProperty("star_count", out JsonElement s) && s.TryGetInt32(out int n) ? n : 0;
                if (Text("name") is { Length: > 0 } name) list.Add(new SearchResult(name, Text("description"), stars, Flag("is_official"), Flag("is_automated")));
            }
            return list;
        }
        catch (JsonException e)
        {
            throw new RegistryException(ImagesErrorKind.InvalidArgument, $"search of {host} for `{term}`: the answer is not a search result: {e.Message}", index, "", term);
        }
    }

    // ---- manifests ----------------------------------------------------------------------------

    /// <summary>
    /// Fetches a manifest or index by tag or digest. Refuses one over the size limit before reading
    /// it, and one whose bytes do not match the digest asked for (or the Docker-Content-Digest the
    /// registry announced for a tag).
    /// </summary>
    public async Task<ManifestDocument> GetManifestAsync(ImageReference reference, CancellationToken cancellationToken = default)
        => await GetManifestAsync(reference, reference.Reference, cancellationToken).ConfigureAwait(false);

    private async Task<ManifestDocument> GetManifestAsync(ImageReference repo, string reference, CancellationToken cancellationToken)
    {
        var ctx = new RequestContext(repo.Domain, repo.Path, reference, Scope(repo.Path, push: false));
        using HttpResponseMessage response = await SendAsync(ctx, () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Get, Url(repo, $"manifests/{reference}"));
            foreach (string type in MediaTypes.Manifests) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
            return request;
        }, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, ctx, "manifest", cancellationToken).ConfigureAwait(false);

        string what = $"manifest {repo.Repository}:{reference}".Replace(":sha256:", "@sha256:");
        if (response.Content.Headers.ContentLength is long length) ManifestParser.CheckManifestSize(length, what);
        byte[] bytes = await ReadLimitedAsync(response.Content, ManifestParser.MaxManifestSize, what, cancellationToken).ConfigureAwait(false);

        Digest? expected = null;
        if (Digest.TryParse(reference, out Digest byDigest)) expected = byDigest;
        else if (response.Headers.TryGetValues("Docker-Content-Digest", out var values) && Digest.TryParse(values.FirstOrDefault(), out Digest announced))
            expected = announced;
        return ManifestParser.Parse(bytes, response.Content.Headers.ContentType?.MediaType, expected, what);
    }

    /// <summary>Uploads a manifest or index under a tag or its digest; returns its digest (checked against the registry's).</summary>
    public async Task<Digest> PutManifestAsync(ImageReference repo, string reference, string mediaType, byte[] bytes, CancellationToken cancellationToken = default)
    {
        Digest digest = Digest.Compute(bytes);
        var ctx = new RequestContext(repo.Domain, repo.Path, reference, Scope(repo.Path, push: true));
        using HttpResponseMessage response = await SendAsync(ctx, () =>
        {
            var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
            return new HttpRequestMessage(HttpMethod.Put, Url(repo, $"manifests/{reference}")) { Content = content };
        }, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, ctx, "manifest", cancellationToken).ConfigureAwait(false);
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var values) && Digest.TryParse(values.FirstOrDefault(), out Digest theirs) && theirs != digest)
            throw new RegistryException(ImagesErrorKind.DataLoss, $"registry {repo.Domain}: repository {repo.Path}: stored manifest {reference} as {theirs}, but its digest is {digest}",
                repo.Domain, repo.Path, reference);
        return digest;
    }

    // ---- blobs --------------------------------------------------------------------------------

    /// <summary>Whether the repository has the blob (HEAD).</summary>
    public async Task<bool> BlobExistsAsync(ImageReference repo, Digest digest, bool forPush = false, CancellationToken cancellationToken = default)
    {
        var ctx = new RequestContext(repo.Domain, repo.Path, digest.Value, Scope(repo.Path, forPush));
        using HttpResponseMessage response = await SendAsync(ctx, () => new HttpRequestMessage(HttpMethod.Head, Url(repo, $"blobs/{digest}")),
            HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        await EnsureSuccessAsync(response, ctx, "blob", cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Opens a blob's bytes (unverified: hand them to <see cref="IContentStore.WriteAsync"/>, which verifies).</summary>
    public Task<Stream> OpenBlobAsync(ImageReference repo, Digest digest, CancellationToken cancellationToken = default)
        => OpenBlobAsync(repo, digest, retry: true, cancellationToken);

    private async Task<Stream> OpenBlobAsync(ImageReference repo, Digest digest, bool retry, CancellationToken cancellationToken)
    {
        var ctx = new RequestContext(repo.Domain, repo.Path, digest.Value, Scope(repo.Path, push: false));
        HttpResponseMessage response = await SendAsync(ctx, () => new HttpRequestMessage(HttpMethod.Get, Url(repo, $"blobs/{digest}")),
            HttpCompletionOption.ResponseHeadersRead, cancellationToken, retry).ConfigureAwait(false);
        try
        {
            await EnsureSuccessAsync(response, ctx, "blob", cancellationToken).ConfigureAwait(false);
            return new ResponseStream(response, await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Downloads a blob into the store, unless present; verified by the store. Concurrent calls for
    /// one digest download it once. <paramref name="sink"/>, when given, sees the bytes as they
    /// arrive and is finished before this returns or throws (complete only if it saw them all).
    /// </summary>
    public async Task<bool> FetchBlobAsync(ImageReference repo, Descriptor descriptor, IContentStore store, IProgress<PullProgress>? progress = null,
        CancellationToken cancellationToken = default, IBlobSink? sink = null)
    {
        bool sinkComplete = false;
        try
        {
            return await FetchBlobCoreAsync(repo, descriptor, store, progress, sink, complete => sinkComplete = complete, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            sink?.Finish(sinkComplete);
        }
    }

    private async Task<bool> FetchBlobCoreAsync(ImageReference repo, Descriptor descriptor, IContentStore store, IProgress<PullProgress>? progress,
        IBlobSink? sink, Action<bool> sinkOutcome, CancellationToken cancellationToken)
    {
        Digest digest = descriptor.ParsedDigest;
        if (store.Exists(digest))
        {
            progress?.Report(new PullProgress(digest, descriptor.MediaType, PullState.AlreadyExists, descriptor.Size, descriptor.Size));
            return false;
        }
        var mine = new Lazy<Task>(() => DownloadAsync(repo, descriptor, store, progress, sink, sinkOutcome, cancellationToken));
        Lazy<Task> running = _downloads.GetOrAdd(digest, mine);
        try
        {
            await running.Value.ConfigureAwait(false);
        }
        finally
        {
            if (ReferenceEquals(running, mine)) _downloads.TryRemove(new KeyValuePair<Digest, Lazy<Task>>(digest, mine));
        }
        if (!ReferenceEquals(running, mine))
        {
            progress?.Report(new PullProgress(digest, descriptor.MediaType, PullState.AlreadyExists, descriptor.Size, descriptor.Size));
            return false;
        }
        return true;
    }

    private async Task DownloadAsync(ImageReference repo, Descriptor descriptor, IContentStore store, IProgress<PullProgress>? progress,
        IBlobSink? sink, Action<bool> sinkOutcome, CancellationToken cancellationToken)
    {
        Digest digest = descriptor.ParsedDigest;
        // Every attempt is one GET (no retries inside it): max-download-attempts counts them all.
        for (int attempt = 1; ; attempt++)
        {
            // The response is opened only when the store reads the first byte: a store that already
            // has the blob (another process wrote it while we waited for its lock) never downloads it.
            Stream? opened = null;
            TeeStream? tee = null;
            var lazy = new LazyStream(async ct =>
            {
                progress?.Report(new PullProgress(digest, descriptor.MediaType, PullState.Downloading, 0, descriptor.Size));
                opened = await OpenBlobAsync(repo, digest, retry: false, ct).ConfigureAwait(false);
                Stream counted = new ProgressStream(opened, n => progress?.Report(new PullProgress(digest, descriptor.MediaType, PullState.Downloading, n, descriptor.Size)));
                // Only the first attempt feeds the sink: a retry starts the bytes over.
                return attempt == 1 && sink is not null ? tee = new TeeStream(counted, sink) : counted;
            });
            try
            {
                await using (lazy.ConfigureAwait(false))
                    await store.WriteAsync(lazy, digest, descriptor.Size, cancellationToken).ConfigureAwait(false);
                // The store verified size and digest of exactly the bytes the tee passed on.
                sinkOutcome(tee is { SinkTookAll: true } && tee.Delivered == descriptor.Size);
                progress?.Report(new PullProgress(digest, descriptor.MediaType, opened is null ? PullState.AlreadyExists : PullState.Complete, descriptor.Size, descriptor.Size));
                return;
            }
            catch (Exception e) when (attempt < _options.MaxDownloadAttempts && IsRetryableDownloadError(e) && !cancellationToken.IsCancellationRequested)
            {
                sink?.Finish(false); // it saw part of a failed attempt; the retry is not passed on
                TimeSpan delay = Backoff(attempt, null);
                progress?.Report(new PullProgress(digest, descriptor.MediaType, PullState.Retrying, 0, descriptor.Size) { RetryIn = delay });
                await Task.Delay(delay, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                progress?.Report(new PullProgress(digest, descriptor.MediaType, PullState.Failed, 0, descriptor.Size));
                if (e is ImagesException { Kind: ImagesErrorKind.DataLoss } dataLoss)
                    throw new RegistryException(ImagesErrorKind.DataLoss, $"registry {repo.Domain}: repository {repo.Path}: blob {digest}: {dataLoss.Message}", repo.Domain, repo.Path, digest.Value, inner: e);
                if (IsRetryableDownloadError(e) && !cancellationToken.IsCancellationRequested)
                    throw new RegistryException(ImagesErrorKind.Unavailable, $"registry {repo.Domain}: repository {repo.Path}: downloading blob {digest} failed after {attempt} attempt{(attempt == 1 ? "" : "s")}: {e.Message}",
                        repo.Domain, repo.Path, digest.Value, (e as RegistryException)?.StatusCode, inner: e);
                throw;
            }
        }
    }

    /// <summary>
    /// What a blob download tries again, as dockerd's retryOnError: a connection that failed or broke
    /// off, a 5xx answer. Not a 4xx answer (the registry said no), nor a full disk (ENOSPC).
    /// </summary>
    private static bool IsRetryableDownloadError(Exception e) => e switch
    {
        RegistryException r => r.Kind == ImagesErrorKind.Unavailable && (r.StatusCode is null || (int)r.StatusCode >= 500),
        HttpRequestException => true,
        IOException io => io.HResult != 28, // ENOSPC
        _ => false,
    };

    /// <summary>
    /// Uploads a blob from the store unless the repository has it: first a cross-repository mount
    /// from each of <paramref name="mountFrom"/>, then a chunked upload (POST, PATCH…, PUT).
    /// </summary>
    public async Task<PushState> PushBlobAsync(ImageReference repo, Descriptor descriptor, IContentStore store, IReadOnlyList<string>? mountFrom = null,
        IProgress<PushProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Digest digest = descriptor.ParsedDigest;
        long size = descriptor.Size;
        if (await BlobExistsAsync(repo, digest, forPush: true, cancellationToken).ConfigureAwait(false))
        {
            progress?.Report(new PushProgress(digest, descriptor.MediaType, PushState.AlreadyExists, size, size));
            return PushState.AlreadyExists;
        }

        Uri? location = null;
        foreach (string from in mountFrom ?? [])
        {
            if (from == repo.Path) continue;
            var mountCtx = new RequestContext(repo.Domain, repo.Path, digest.Value, Scope(repo.Path, push: true) + " " + Scope(from, push: false));
            using HttpResponseMessage mount = await SendAsync(mountCtx,
                () => new HttpRequestMessage(HttpMethod.Post, Url(repo, $"blobs/uploads/?mount={digest}&from={Uri.EscapeDataString(from)}")),
                HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
            if (mount.StatusCode == HttpStatusCode.Created)
            {
                progress?.Report(new PushProgress(digest, descriptor.MediaType, PushState.Mounted, size, size));
                return PushState.Mounted;
            }
            await EnsureSuccessAsync(mount, mountCtx, "blob upload", cancellationToken).ConfigureAwait(false);
            location = LocationOf(mount, mountCtx); // 202: the registry opened an upload instead
            break;
        }

        var ctx = new RequestContext(repo.Domain, repo.Path, digest.Value, Scope(repo.Path, push: true));
        if (location is null)
        {
            using HttpResponseMessage start = await SendAsync(ctx, () => new HttpRequestMessage(HttpMethod.Post, Url(repo, "blobs/uploads/")),
                HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
            await EnsureSuccessAsync(start, ctx, "blob upload", cancellationToken).ConfigureAwait(false);
            location = LocationOf(start, ctx);
        }

        progress?.Report(new PushProgress(digest, descriptor.MediaType, PushState.Uploading, 0, size));
        byte[] chunk = new byte[(int)Math.Min(_options.UploadChunkSize, Math.Max(size, 1))];
        long offset = 0;
        await using (Stream source = store.OpenRead(digest))
        {
            while (true)
            {
                int length = await source.ReadAtLeastAsync(chunk, chunk.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                if (length == 0) break;
                location = await PatchChunkAsync(ctx, location, chunk, length, offset, cancellationToken).ConfigureAwait(false);
                offset += length;
                progress?.Report(new PushProgress(digest, descriptor.MediaType, PushState.Uploading, offset, size));
            }
        }
        if (offset != size)
            throw new ImagesException(ImagesErrorKind.DataLoss, $"blob {digest}: the store holds {offset} bytes, the descriptor says {size}");

        Uri finish = WithQuery(location, "digest=" + Uri.EscapeDataString(digest.Value));
        using (HttpResponseMessage done = await SendAsync(ctx, () => new HttpRequestMessage(HttpMethod.Put, finish) { Content = new ByteArrayContent([]) },
            HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false))
            await EnsureSuccessAsync(done, ctx, "blob upload", cancellationToken).ConfigureAwait(false);
        progress?.Report(new PushProgress(digest, descriptor.MediaType, PushState.Pushed, size, size));
        return PushState.Pushed;
    }

    /// <summary>
    /// PATCHes one chunk. A chunk that fails midway (connection error, 5xx, 416) is resumed from
    /// where the registry says the upload stands (GET on the upload URL returns its Range).
    /// </summary>
    private async Task<Uri> PatchChunkAsync(RequestContext ctx, Uri location, byte[] chunk, int length, long offset, CancellationToken cancellationToken)
    {
        int sent = 0;
        for (int attempt = 1; ; attempt++)
        {
            HttpResponseMessage? response = null;
            Exception? failure = null;
            int from = sent;
            try
            {
                response = await SendAsync(ctx, () =>
                {
                    var content = new ByteArrayContent(chunk, from, length - from);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    var request = new HttpRequestMessage(HttpMethod.Patch, location) { Content = content };
                    request.Headers.TryAddWithoutValidation("Content-Range", $"{offset + from}-{offset + length - 1}");
                    return request;
                }, HttpCompletionOption.ResponseContentRead, cancellationToken, retry: false).ConfigureAwait(false);
                if (response.IsSuccessStatusCode) return LocationOf(response, ctx);
                if (attempt >= _options.MaxAttempts || !(IsRetryable(response.StatusCode) || response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable))
                    await EnsureSuccessAsync(response, ctx, "blob upload", cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (attempt < _options.MaxAttempts)
            {
                failure = e;
            }
            finally
            {
                response?.Dispose();
            }
            _ = failure;
            await Task.Delay(Backoff(attempt, null), _options.TimeProvider, cancellationToken).ConfigureAwait(false);

            // Where does the upload stand? Range: 0-<last byte received>.
            using HttpResponseMessage status = await SendAsync(ctx, () => new HttpRequestMessage(HttpMethod.Get, location),
                HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
            await EnsureSuccessAsync(status, ctx, "blob upload status", cancellationToken).ConfigureAwait(false);
            long received = 0;
            if (status.Headers.TryGetValues("Range", out var ranges) && ranges.FirstOrDefault() is { } range
                && range.Split('-') is [_, var last] && long.TryParse(last, out long lastByte))
                received = lastByte + 1;
            if (received < offset || received > offset + length)
                throw new RegistryException(ImagesErrorKind.Unavailable, $"registry {ctx.Registry}: repository {ctx.Repository}: upload of {ctx.Reference} cannot resume: the registry has {received} bytes, this chunk spans {offset}-{offset + length - 1}",
                    ctx.Registry, ctx.Repository, ctx.Reference);
            sent = (int)(received - offset);
            location = LocationOf(status, ctx, fallback: location);
            if (sent == length) return location;
        }
    }

    // ---- pull and push ------------------------------------------------------------------------

    /// <summary>
    /// Pulls an image into the store: its manifest (or index, then the manifest for
    /// <paramref name="platform"/>, the host's by default), config and layers, layers in parallel.
    /// A docker.io image comes from the first of <see cref="RegistryClientOptions.Mirrors"/> that
    /// serves it whole, else from Docker Hub.
    /// </summary>
    /// <param name="layerSinks">
    /// Asked once per layer, after the config is read, for a sink that sees the layer's bytes as
    /// they download (see <see cref="IBlobSink"/>); every sink it returns is finished before this returns or throws.
    /// </param>
    public async Task<PullResult> PullAsync(ImageReference reference, IContentStore store, Platform? platform = null,
        IProgress<PullProgress>? progress = null, CancellationToken cancellationToken = default, LayerSinkFactory? layerSinks = null)
    {
        // dockerd's endpoint order for Docker Hub: each mirror, then Docker Hub itself. Whatever a
        // mirror fails with (unreachable, unknown image, bad content, no such platform) sends the
        // pull to the next endpoint, as dockerd's fallback does for mirrors; what a failed attempt
        // stored is verified content and stays, so the next endpoint does not fetch it again.
        if (reference.Domain == ImageReference.DefaultDomain)
        {
            foreach (Uri mirror in _options.Mirrors)
            {
                try
                {
                    PullResult pulled = await PullFromAsync(reference.WithDomain(mirror.Authority), store, platform, progress, layerSinks, cancellationToken).ConfigureAwait(false);
                    return pulled with { Reference = reference };
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                {
                    _options.MirrorFailed?.Invoke(mirror, e);
                }
            }
        }
        return await PullFromAsync(reference, store, platform, progress, layerSinks, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A pull from the registry <paramref name="reference"/> names (a mirror's host for a mirror).</summary>
    private async Task<PullResult> PullFromAsync(ImageReference reference, IContentStore store, Platform? platform,
        IProgress<PullProgress>? progress, LayerSinkFactory? layerSinks, CancellationToken cancellationToken)
    {
        ManifestDocument root = await GetManifestAsync(reference, cancellationToken).ConfigureAwait(false);
        ManifestDocument manifest = root;
        if (root.Index is { } index)
        {
            Descriptor chosen = PlatformMatcher.Select(index, platform, $"{reference}");
            manifest = await GetManifestAsync(reference, chosen.Digest, cancellationToken).ConfigureAwait(false);
            if (manifest.IsIndex)
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{reference}: index entry {chosen.Digest} is itself an index; nested indexes are not supported");
        }
        ImageManifest m = manifest.Manifest!;
        if (!MediaTypes.IsConfig(m.Config.MediaType))
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{reference}: config media type `{m.Config.MediaType}` is not an image config (an artifact?)");
        foreach (Descriptor layer in m.Layers)
            if (!MediaTypes.IsLayer(layer.MediaType))
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{reference}: layer {layer.Digest} has unsupported media type `{layer.MediaType}`");

        // Config first (it is small and says how many layers to expect), then layers in parallel.
        await FetchBlobAsync(reference, m.Config, store, progress, cancellationToken).ConfigureAwait(false);
        ImageConfig config;
        await using (Stream s = store.OpenRead(m.Config.ParsedDigest))
            config = ManifestParser.ParseConfig(await ReadAllAsync(s, ManifestParser.MaxConfigSize, cancellationToken).ConfigureAwait(false), m.Config.ParsedDigest);
        if (config.RootFS.DiffIds.Count != m.Layers.Count)
            throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{reference}: manifest has {m.Layers.Count} layers but the config has {config.RootFS.DiffIds.Count} diff_ids");

        // Docker's order of lines: "Pulling fs layer" for every layer to fetch, then "Waiting" for
        // those that find no free download slot, "Downloading" for each as it starts.
        foreach (Descriptor layer in m.Layers)
            if (!store.Exists(layer.ParsedDigest))
                progress?.Report(new PullProgress(layer.ParsedDigest, layer.MediaType, PullState.Pending, 0, layer.Size));
        var sinks = new IBlobSink?[m.Layers.Count];
        try
        {
            for (int i = 0; i < sinks.Length && layerSinks is not null; i++)
                sinks[i] = layerSinks(i, m.Layers[i], config);
            List<int> fetched = Enumerable.Range(0, m.Layers.Count).Where(i => !MediaTypes.IsNondistributable(m.Layers[i].MediaType) || m.Layers[i].Urls is null).ToList();
            // One task per layer, each taking a slot of the (possibly shared) limiter in layer order;
            // Parallel.ForEachAsync cancels the others at the first failure and reports that failure.
            await Parallel.ForEachAsync(fetched,
                new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, fetched.Count), CancellationToken = cancellationToken },
                async (i, ct) =>
                {
                    Descriptor layer = m.Layers[i];
                    using IDisposable slot = await _options.Downloads.EnterAsync(
                        () => progress?.Report(new PullProgress(layer.ParsedDigest, layer.MediaType, PullState.Waiting, 0, layer.Size)), ct).ConfigureAwait(false);
                    await FetchBlobAsync(reference, layer, store, progress, ct, sinks[i]).ConfigureAwait(false);
                }).ConfigureAwait(false);
        }
        finally
        {
            // Layers never fetched (a sibling failed first, or cancellation) finish their sinks here.
            foreach (IBlobSink? sink in sinks) sink?.Finish(false);
        }

        // Manifests last: a manifest in the store means everything it names is there too.
        await store.WriteAsync(new MemoryStream(manifest.Bytes), manifest.Digest, manifest.Bytes.Length, cancellationToken).ConfigureAwait(false);
        if (!ReferenceEquals(root, manifest))
            await store.WriteAsync(new MemoryStream(root.Bytes), root.Digest, root.Bytes.Length, cancellationToken).ConfigureAwait(false);
        Descriptor manifestDescriptor = ReferenceEquals(root, manifest)
            ? manifest.ToDescriptor()
            : root.Index!.Manifests.First(d => d.Digest == manifest.Digest.Value);
        return new PullResult(reference, root.ToDescriptor(), manifestDescriptor, m.Config.ParsedDigest);
    }

    /// <summary>
    /// Pushes the manifest or index <paramref name="root"/> from the store to <paramref name="target"/>
    /// (by its tag, or by digest): blobs first (in parallel), then manifests, then the index.
    /// </summary>
    public async Task<PushResult> PushAsync(ImageReference target, IContentStore store, Descriptor root, PushOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new PushOptions();
        ManifestDocument document = await ReadManifestAsync(store, root, cancellationToken).ConfigureAwait(false);
        if (document.Index is { } index)
        {
            foreach (Descriptor child in index.Manifests)
            {
                if (!store.Exists(child.ParsedDigest))
                    throw new ImagesException(ImagesErrorKind.NotFound,
                        $"cannot push {target}: manifest {child.Digest} ({child.Platform?.ToString() ?? "no platform"}) of the index is not in the local store");
                ManifestDocument childDoc = await ReadManifestAsync(store, child, cancellationToken).ConfigureAwait(false);
                await PushManifestAndBlobsAsync(target, store, childDoc, childDoc.Digest.Value, options, cancellationToken).ConfigureAwait(false);
            }
            await PutManifestAsync(target, target.Reference, document.MediaType, document.Bytes, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await PushManifestAndBlobsAsync(target, store, document, target.Reference, options, cancellationToken).ConfigureAwait(false);
        }
        return new PushResult(target, document.ToDescriptor());
    }

    private async Task PushManifestAndBlobsAsync(ImageReference target, IContentStore store, ManifestDocument document, string reference, PushOptions options, CancellationToken cancellationToken)
    {
        ImageManifest m = document.Manifest!;
        var blobs = m.Layers.Where(l => !MediaTypes.IsNondistributable(l.MediaType)).Prepend(m.Config).ToList();
        foreach (Descriptor blob in blobs)
            options.Progress?.Report(new PushProgress(blob.ParsedDigest, blob.MediaType, PushState.Preparing, 0, blob.Size));
        await Parallel.ForEachAsync(blobs,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, blobs.Count), CancellationToken = cancellationToken },
            async (blob, ct) =>
            {
                using IDisposable slot = await _options.Uploads.EnterAsync(
                    () => options.Progress?.Report(new PushProgress(blob.ParsedDigest, blob.MediaType, PushState.Waiting, 0, blob.Size)), ct).ConfigureAwait(false);
                await PushBlobAsync(target, blob, store, options.MountFrom, options.Progress, ct).ConfigureAwait(false);
            }).ConfigureAwait(false);
        await PutManifestAsync(target, reference, document.MediaType, document.Bytes, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<ManifestDocument> ReadManifestAsync(IContentStore store, Descriptor descriptor, CancellationToken cancellationToken)
    {
        ManifestParser.CheckManifestSize(descriptor.Size, descriptor.Digest);
        await using Stream s = store.OpenRead(descriptor.ParsedDigest);
        byte[] bytes = await ReadAllAsync(s, ManifestParser.MaxManifestSize, cancellationToken).ConfigureAwait(false);
        return ManifestParser.Parse(bytes, descriptor.MediaType, descriptor.ParsedDigest);
    }

    // ---- HTTP ---------------------------------------------------------------------------------

    private sealed record RequestContext(string Registry, string Repository, string Reference, string Scope)
    {
        /// <summary>What the request was for, as errors name it; a search has a term and no repository.</summary>
        public string Subject => Repository.Length == 0 ? $"registry {Registry}: search for \"{Reference}\"" : $"registry {Registry}: repository {Repository}, reference {Reference}";
    }

    private static string Scope(string path, bool push) => $"repository:{path}:{(push ? "pull,push" : "pull")}";

    private Uri Url(ImageReference repo, string relative) => new(BaseUri(repo.Domain), $"{repo.Path}/{relative}");

    /// <summary>
    /// Sends a request made fresh by <paramref name="create"/> for each attempt: answers one 401
    /// challenge, and retries connection errors, 5xx and 429 with exponential back-off (honouring
    /// Retry-After) up to <see cref="RegistryClientOptions.MaxAttempts"/>.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(RequestContext ctx, Func<HttpRequestMessage> create, HttpCompletionOption completion,
        CancellationToken cancellationToken, bool retry = true)
    {
        bool authenticated = false;
        for (int attempt = 1; ; attempt++)
        {
            HttpResponseMessage response;
            using (HttpRequestMessage request = create())
            {
                _auth.Apply(request, ctx.Registry, ctx.Scope);
                try
                {
                    response = await _http.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
                }
                catch (HttpRequestException e) when (retry && attempt < _options.MaxAttempts)
                {
                    _ = e;
                    await Task.Delay(Backoff(attempt, null), _options.TimeProvider, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                catch (HttpRequestException e)
                {
                    throw new RegistryException(ImagesErrorKind.Unavailable,
                        $"{ctx.Subject}: cannot reach {BaseUri(ctx.Registry)}: {e.Message}",
                        ctx.Registry, ctx.Repository, ctx.Reference, inner: e);
                }
            }
            if (response.StatusCode == HttpStatusCode.Unauthorized && !authenticated)
            {
                authenticated = true;
                bool ok;
                try
                {
                    ok = await _auth.AuthenticateAsync(response, ctx.Registry, ctx.Repository, ctx.Scope, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    response.Dispose();
                    throw;
                }
                if (ok)
                {
                    response.Dispose();
                    attempt--;
                    continue;
                }
                return response;
            }
            if (retry && attempt < _options.MaxAttempts && IsRetryable(response.StatusCode))
            {
                TimeSpan delay = Backoff(attempt, response.Headers.RetryAfter);
                response.Dispose();
                await Task.Delay(delay, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
                continue;
            }
            return response;
        }
    }

    private static bool IsRetryable(HttpStatusCode status) => status == HttpStatusCode.TooManyRequests || (int)status >= 500;

    private TimeSpan Backoff(int attempt, RetryConditionHeaderValue? retryAfter)
    {
        TimeSpan delay = _options.InitialRetryDelay * Math.Pow(2, attempt - 1);
        if (retryAfter?.Delta is { } delta) delay = delta;
        else if (retryAfter?.Date is { } date) delay = date - _options.TimeProvider.GetUtcNow();
        if (delay < TimeSpan.Zero) delay = TimeSpan.Zero;
        return delay > _options.MaxRetryDelay ? _options.MaxRetryDelay : delay;
    }

    /// <summary>Turns an error response into a <see cref="RegistryException"/> naming registry, repository, reference and the API error codes.</summary>
    private static async Task EnsureSuccessAsync(HttpResponseMessage response, RequestContext ctx, string what, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode) return;
        var codes = new List<string>();
        var messages = new List<string>();
        try
        {
            byte[] body = await ReadLimitedAsync(response.Content, MaxErrorBodySize, what, cancellationToken, truncate: true).ConfigureAwait(false);
            if (body.Length > 0)
            {
                using JsonDocument doc = JsonDocument.Parse(body);
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("errors", out JsonElement errors) && errors.ValueKind == JsonValueKind.Array)
                    foreach (JsonElement e in errors.EnumerateArray())
                    {
                        string? code = e.TryGetProperty("code", out JsonElement c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                        string? message = e.TryGetProperty("message", out JsonElement m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
                        if (code is not null) codes.Add(code);
                        messages.Add(code is null ? message ?? "" : $"{code}: {message}");
                    }
            }
        }
        catch (JsonException)
        {
        }

        HttpStatusCode status = response.StatusCode;
        ImagesErrorKind kind = status switch
        {
            HttpStatusCode.NotFound => ImagesErrorKind.NotFound,
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => ImagesErrorKind.Unauthorized,
            HttpStatusCode.TooManyRequests => ImagesErrorKind.Unavailable,
            HttpStatusCode.Conflict => ImagesErrorKind.Conflict,
            _ when (int)status >= 500 => ImagesErrorKind.Unavailable,
            _ => ImagesErrorKind.InvalidArgument,
        };
        if (codes.Contains("MANIFEST_UNKNOWN") || codes.Contains("BLOB_UNKNOWN") || codes.Contains("NAME_UNKNOWN")) kind = ImagesErrorKind.NotFound;
        string summary = status switch
        {
            HttpStatusCode.NotFound => $"{what} not found",
            HttpStatusCode.Unauthorized => "authentication required or refused (check the credentials for this registry)",
            HttpStatusCode.Forbidden => "access denied",
            HttpStatusCode.TooManyRequests => "too many requests (rate limited); retries exhausted",
            _ => $"{what} request failed",
        };
        string detail = messages.Count > 0 ? " (" + string.Join("; ", messages) + ")" : "";
        throw new RegistryException(kind,
            $"{ctx.Subject}: {summary}: HTTP {(int)status} {response.ReasonPhrase}{detail}",
            ctx.Registry, ctx.Repository, ctx.Reference, status, codes);
    }

    private static Uri LocationOf(HttpResponseMessage response, RequestContext ctx, Uri? fallback = null)
    {
        Uri? location = response.Headers.Location;
        if (location is null)
            return fallback ?? throw new RegistryException(ImagesErrorKind.Internal, $"registry {ctx.Registry}: repository {ctx.Repository}: upload response without a Location", ctx.Registry, ctx.Repository, ctx.Reference);
        return location.IsAbsoluteUri ? location : new Uri(response.RequestMessage!.RequestUri!, location);
    }

    private static Uri WithQuery(Uri uri, string parameter)
    {
        var builder = new UriBuilder(uri);
        builder.Query = string.IsNullOrEmpty(builder.Query) || builder.Query == "?" ? parameter : builder.Query.TrimStart('?') + "&" + parameter;
        return builder.Uri;
    }

    private static async Task<byte[]> ReadLimitedAsync(HttpContent content, int limit, string what, CancellationToken cancellationToken, bool truncate = false)
    {
        await using Stream s = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        return await ReadAllAsync(s, limit, cancellationToken, truncate ? null : what).ConfigureAwait(false);
    }

    /// <summary>Reads a stream to its end, refusing more than <paramref name="limit"/> bytes (or truncating when <paramref name="what"/> is null).</summary>
    internal static async Task<byte[]> ReadAllAsync(Stream s, int limit, CancellationToken cancellationToken, string? what = "document")
    {
        var buffer = new MemoryStream();
        byte[] chunk = new byte[64 * 1024];
        int n;
        while ((n = await s.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > limit)
            {
                if (what is null) return buffer.ToArray();
                throw new ImagesException(ImagesErrorKind.InvalidArgument, $"{what}: larger than the limit of {limit} bytes; refused");
            }
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }
}
