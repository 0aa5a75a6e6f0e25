using System.Net;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Registry;
using Berth.Images.Store;
using Berth.Images.Tests.Store;

namespace Berth.Images.Tests.Registry;

/// <summary>
/// dockerd's transfer settings in the registry client, against Debian's Distribution registry:
/// at most N layer downloads (uploads) at once, counted across clients sharing a limiter, the rest
/// shown waiting; each download tried up to max-download-attempts times on network errors and 5xx,
/// never again on a 4xx.
/// </summary>
[Collection(RegistryCollection.Name)]
public sealed class RegistryTransferTests(RegistryFixture fixture)
{
    private readonly RegistryProcess _registry = fixture.Registry;

    /// <summary>Pushes an image of <paramref name="layers"/> small distinct layers; returns its name.</summary>
    /// <param name="configs">Collects the image's config digest: a pull fetches it outside the download limit, as dockerd does.</param>
    private async Task<string> PushImageAsync(int layers, ICollection<string>? configs = null)
    {
        string name = $"{_registry.Host}/test/transfer-{Guid.NewGuid().ToString("N")[..8]}:v1";
        using var local = new StoreScope();
        var contents = Enumerable.Range(0, layers).Select(i => TestImages.FileLayer($"layer{i}", name + i)).ToList();
        Descriptor manifest = await TestImages.StoreImageAsync(local.Content, contents);
        local.Images.SetReference(ImageReference.Parse(name), manifest with { Platform = null });
        configs?.Add(local.Images.Get(name).Manifest.Config.Digest);
        using RegistryClient client = RegistryPullPushTests.Client();
        await local.Images.PushAsync(client, name);
        return name;
    }

    private static RegistryClient Client(HttpMessageHandler handler, TransferLimiter? downloads = null, TransferLimiter? uploads = null, int attempts = 5)
        => new(new RegistryClientOptions
        {
            Handler = handler,
            Credentials = DockerConfigCredentials.Empty,
            InitialRetryDelay = TimeSpan.FromMilliseconds(10),
            Downloads = downloads ?? new TransferLimiter(3),
            Uploads = uploads ?? new TransferLimiter(5),
            MaxDownloadAttempts = attempts,
        });

    [Fact]
    public async Task A_pull_downloads_at_most_the_limit_at_once_and_shows_the_others_waiting()
    {
        string name = await PushImageAsync(5);
        using var handler = new InFlightHandler("GET", "/blobs/sha256:");
        using RegistryClient client = Client(handler, downloads: new TransferLimiter(2));
        using var local = new StoreScope();
        var progress = new ListProgress<PullProgress>();
        Image image = await local.Images.PullAsync(client, name, progress: progress);

        Assert.Equal(2, handler.MaxInFlight);
        var layers = image.Manifest.Layers.Select(l => l.ParsedDigest).ToHashSet();
        Assert.Equal(5, progress.Items.Count(p => p.State == PullState.Pending && layers.Contains(p.Digest)));
        Assert.Equal(3, progress.Items.Count(p => p.State == PullState.Waiting));
        Assert.Equal(5, progress.Items.Count(p => p.State == PullState.Complete && layers.Contains(p.Digest)));
        // Every layer announced before any waits or downloads, as Docker prints "Pulling fs layer" for all first.
        int lastPending = progress.Items.FindLastIndex(p => p.State == PullState.Pending);
        Assert.True(lastPending < progress.Items.FindIndex(p => p.State is PullState.Waiting or PullState.Downloading && layers.Contains(p.Digest)));
    }

    [Fact]
    public async Task Clients_sharing_a_limiter_share_its_slots_and_zero_is_no_limit()
    {
        var configs = new List<string>();
        string a = await PushImageAsync(3, configs), b = await PushImageAsync(3, configs);
        // Layers only: one pull's config may be fetched while the other's layers hold both slots.
        using var handler = new InFlightHandler("GET", "/blobs/sha256:", except: configs);
        var shared = new TransferLimiter(2);
        using (RegistryClient first = Client(handler, downloads: shared))
        using (RegistryClient second = Client(handler, downloads: shared))
        using (var local = new StoreScope())
            await Task.WhenAll(local.Images.PullAsync(first, a), local.Images.PullAsync(second, b));
        Assert.Equal(2, handler.MaxInFlight);

        using var unlimited = new InFlightHandler("GET", "/blobs/sha256:");
        using (RegistryClient client = Client(unlimited, downloads: new TransferLimiter(0)))
        using (var local = new StoreScope())
            await local.Images.PullAsync(client, a);
        Assert.Equal(3, unlimited.MaxInFlight);
    }

    [Fact]
    public async Task A_push_uploads_at_most_the_limit_at_once()
    {
        string name = $"{_registry.Host}/test/upload-{Guid.NewGuid().ToString("N")[..8]}:v1";
        using var local = new StoreScope();
        var contents = Enumerable.Range(0, 4).Select(i => TestImages.FileLayer($"up{i}", name + i)).ToList();
        Descriptor manifest = await TestImages.StoreImageAsync(local.Content, contents);
        local.Images.SetReference(ImageReference.Parse(name), manifest with { Platform = null });

        using var handler = new InFlightHandler("POST", "/blobs/uploads/");
        using RegistryClient client = Client(handler, uploads: new TransferLimiter(1));
        var progress = new ListProgress<PushProgress>();
        await local.Images.PushAsync(client, name, options: new PushOptions { Progress = progress });
        Assert.Equal(1, handler.MaxInFlight);
        Assert.Equal(5, progress.Items.Count(p => p.State == PushState.Preparing)); // the config and 4 layers
        Assert.Equal(4, progress.Items.Count(p => p.State == PushState.Waiting));
    }

    [Fact]
    public async Task A_download_is_tried_again_after_5xx_and_a_broken_transfer_up_to_the_attempts()
    {
        string name = await PushImageAsync(1);
        Digest layer = await TopLayerAsync(name);
        int failures = 0;
        using var handler = new RecordingHandler
        {
            // The first GET of the layer answers 503; the second breaks off after a few bytes.
            Intercept = r => r.RequestUri!.AbsolutePath.EndsWith("/blobs/" + layer, StringComparison.Ordinal) && Interlocked.Increment(ref failures) == 1
                ? new HttpResponseMessage(HttpStatusCode.ServiceUnavailable)
                : null,
        };
        using var broken = new BreakingHandler(handler, "/blobs/" + layer, breakOnCall: 2);
        using (RegistryClient client = Client(broken, attempts: 3))
        using (var local = new StoreScope())
        {
            var progress = new ListProgress<PullProgress>();
            await local.Images.PullAsync(client, name, progress: progress);
            Assert.True(local.Content.Exists(layer));
            Assert.Equal(3, handler.Count("GET", "/blobs/" + layer));
            Assert.Equal(2, progress.Items.Count(p => p.State == PullState.Retrying && p.Digest == layer && p.RetryIn > TimeSpan.Zero));
        }

        // Out of attempts: the 5xx every time, the last error named with the count.
        using var failing = new RecordingHandler
        {
            Intercept = r => r.RequestUri!.AbsolutePath.EndsWith("/blobs/" + layer, StringComparison.Ordinal) ? new HttpResponseMessage(HttpStatusCode.BadGateway) : null,
        };
        using (RegistryClient client = Client(failing, attempts: 2))
        using (var local = new StoreScope())
        {
            var e = await Assert.ThrowsAsync<RegistryException>(() => local.Images.PullAsync(client, name));
            Assert.Equal(ImagesErrorKind.Unavailable, e.Kind);
            Assert.Contains($"downloading blob {layer} failed after 2 attempts", e.Message);
            Assert.Contains("HTTP 502", e.Message);
            Assert.Equal(2, failing.Count("GET", "/blobs/" + layer));
        }
    }

    [Theory]
    [InlineData(HttpStatusCode.NotFound, ImagesErrorKind.NotFound)]
    [InlineData(HttpStatusCode.Forbidden, ImagesErrorKind.Unauthorized)]
    [InlineData(HttpStatusCode.TooManyRequests, ImagesErrorKind.Unavailable)]
    public async Task A_4xx_answer_to_a_download_is_not_tried_again(HttpStatusCode status, ImagesErrorKind kind)
    {
        string name = await PushImageAsync(1);
        Digest layer = await TopLayerAsync(name);
        using var handler = new RecordingHandler
        {
            Intercept = r => r.RequestUri!.AbsolutePath.EndsWith("/blobs/" + layer, StringComparison.Ordinal) ? new HttpResponseMessage(status) : null,
        };
        using RegistryClient client = Client(handler, attempts: 5);
        using var local = new StoreScope();
        var e = await Assert.ThrowsAsync<RegistryException>(() => local.Images.PullAsync(client, name));
        Assert.Equal(kind, e.Kind);
        Assert.Equal(status, e.StatusCode);
        Assert.Equal(1, handler.Count("GET", "/blobs/" + layer));
    }

    private async Task<Digest> TopLayerAsync(string name)
    {
        using RegistryClient client = RegistryPullPushTests.Client();
        ManifestDocument document = await client.GetManifestAsync(ImageReference.Parse(name));
        return document.Manifest!.Layers[^1].ParsedDigest;
    }

    /// <summary>Counts the requests of one kind in flight at once, each held 300 ms so that overlaps show.</summary>
    private sealed class InFlightHandler(string method, string pathContains, IReadOnlyCollection<string>? except = null) : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _inFlight;
        private int _max;

        public int MaxInFlight => Volatile.Read(ref _max);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            string path = request.RequestUri!.AbsolutePath;
            if (request.Method.Method != method || !path.Contains(pathContains, StringComparison.Ordinal)
                || except?.Any(e => path.EndsWith(e, StringComparison.Ordinal)) == true)
                return await base.SendAsync(request, cancellationToken);
            int now = Interlocked.Increment(ref _inFlight);
            for (int max = Volatile.Read(ref _max); now > max && Interlocked.CompareExchange(ref _max, now, max) != max; max = Volatile.Read(ref _max))
            {
            }
            try
            {
                await Task.Delay(300, cancellationToken);
                return await base.SendAsync(request, cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }
    }

    /// <summary>Passes requests on; the Nth GET of a path gets a body that breaks off with an IOException after 16 bytes.</summary>
    private sealed class BreakingHandler(HttpMessageHandler inner, string pathEnd, int breakOnCall) : DelegatingHandler(inner)
    {
        private int _calls;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken);
            if (request.Method != HttpMethod.Get || !request.RequestUri!.AbsolutePath.EndsWith(pathEnd, StringComparison.Ordinal)
                || Interlocked.Increment(ref _calls) != breakOnCall || !response.IsSuccessStatusCode)
                return response;
            byte[] body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            var content = new StreamContent(new BreakingStream(body.AsMemory(0, Math.Min(16, body.Length)).ToArray()));
            foreach (var header in response.Content.Headers) content.Headers.TryAddWithoutValidation(header.Key, header.Value);
            response.Content = content;
            return response;
        }
    }

    private sealed class BreakingStream(byte[] start) : Stream
    {
        private int _position;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_position >= start.Length) throw new IOException("connection reset by peer (test)");
            int n = Math.Min(count, start.Length - _position);
            Array.Copy(start, _position, buffer, offset, n);
            _position += n;
            return n;
        }
    }
}
