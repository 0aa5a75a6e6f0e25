using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Berth.Daemon.Engine;
using Berth.Images;
using Berth.Images.Archive;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Registry;
using Berth.Images.Store;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>
/// <c>/images/…</c>. Image names hold slashes and colons (<c>127.0.0.1:5000/a/b:tag</c>), so
/// dockerd's routes <c>/images/{name:.*}/json</c> are matched here on the path's suffix, as
/// dockerd's router does, rather than with route templates.
/// </summary>
public static class ImagesApi
{
    public static Task Dispatch(HttpContext context)
    {
        string rest = ((string?)context.Request.RouteValues["rest"] ?? "").Trim('/');
        string method = context.Request.Method;
        bool get = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        bool post = HttpMethods.IsPost(method);
        if (get && rest == "json") return List(context);
        if (get && rest == "get") return Save(context, context.Request.Query["names"].Where(n => !string.IsNullOrEmpty(n)).Select(n => n!).ToList());
        if (get && rest == "search") return Search(context);
        if (post && rest == "create") return Create(context);
        if (post && rest == "load") return Load(context);
        if (post && rest == "prune") return Prune(context);
        if (HttpMethods.IsDelete(method) && rest.Length > 0) return Remove(context, rest);
        if (Suffix(rest, "/json") is { } inspect && get) return Inspect(context, inspect);
        if (Suffix(rest, "/history") is { } history && get) return History(context, history);
        if (Suffix(rest, "/get") is { } save && get) return Save(context, [save]);
        if (Suffix(rest, "/tag") is { } tag && post) return Tag(context, tag);
        if (Suffix(rest, "/push") is { } push && post) return Push(context, push);
        throw ApiException.NotFound("page not found");
    }

    private static string? Suffix(string rest, string suffix)
        => rest.EndsWith(suffix, StringComparison.Ordinal) && rest.Length > suffix.Length ? rest[..^suffix.Length] : null;

    private static ImageService Images(HttpContext context) => SystemApi.Engine(context).Images;


    // ---- list, inspect, history --------------------------------------------------------------

    private static Task List(HttpContext context)
    {
        var filters = QueryArgs.Filters(context, "dangling", "reference", "label", "before", "since");
        bool? dangling = QueryArgs.BoolFilter(filters, "dangling");
        List<string> references = filters.GetValueOrDefault("reference") ?? [];
        List<string> labels = filters.GetValueOrDefault("label") ?? [];
        ImageStore store = Images(context).Store;
        IReadOnlyList<ImageSummary> all = store.List(includeIntermediates: QueryArgs.Bool(context, "all"));
        DateTimeOffset? before = filters.TryGetValue("before", out var b) ? CreatedOf(store, all, b) : null;
        DateTimeOffset? since = filters.TryGetValue("since", out var s) ? CreatedOf(store, all, s) : null;
        bool legacySizes = ApiVersion.LessThan(context, "1.44");

        var result = new List<ImageSummaryJson>();
        foreach (ImageSummary image in all)
        {
            if (dangling is { } d && d != (image.RepoTags.Count == 0)) continue;
            if (before is { } bt && !(image.Created < bt)) continue;
            if (since is { } st && !(image.Created > st)) continue;
            IReadOnlyList<string> tags = image.RepoTags;
            IReadOnlyList<string> digests = image.RepoDigests;
            if (references.Count > 0)
            {
                // Only the names that match, digests as tags (dockerd's list): the docker CLI prints a
                // "<none>" line for a digest whose repository has no tag shown.
                tags = tags.Where(t => references.Any(r => ReferenceMatches(r, t))).ToList();
                digests = digests.Where(dg => references.Any(r => ReferenceMatches(r, dg))).ToList();
                if (tags.Count == 0 && digests.Count == 0) continue;
            }
            IReadOnlyDictionary<string, string>? imageLabels = ConfigLabelsOf(store, image.Id.Value);
            if (labels.Count > 0 && !labels.All(l => LabelMatches(l, imageLabels ?? new Dictionary<string, string>()))) continue;
            result.Add(new ImageSummaryJson
            {
                Id = image.Id.Value,
                RepoTags = tags,
                RepoDigests = digests,
                Created = image.Created?.ToUnixTimeSeconds() ?? 0,
                Size = image.Size,
                VirtualSize = legacySizes ? image.Size : null,
                Labels = imageLabels,
            });
        }
        return JsonResults.WriteAsync(context, result, ApiJson.Context.IReadOnlyListImageSummaryJson);
    }

    private static DateTimeOffset CreatedOf(ImageStore store, IReadOnlyList<ImageSummary> all, List<string> values)
    {
        if (values.Count != 1) throw ApiException.BadRequest("filters 'before' and 'since' take one image");
        Digest id = store.Get(values[0]).Id;
        return all.FirstOrDefault(i => i.Id == id)?.Created ?? DateTimeOffset.MinValue;
    }

    /// <summary>The image config's labels as recorded: null when it has none.</summary>
    internal static IReadOnlyDictionary<string, string>? ConfigLabelsOf(ImageStore store, string id)
    {
        try
        {
            return store.Get(id).Config.Config?.Labels;
        }
        catch (ImagesException)
        {
            return null;
        }
    }

    private static IReadOnlyDictionary<string, string> LabelsOf(ImageStore store, string id)
    {
        try
        {
            return store.Get(id).Config.Config?.Labels ?? new Dictionary<string, string>();
        }
        catch (ImagesException)
        {
            return new Dictionary<string, string>();
        }
    }

    private static bool LabelMatches(string filter, IReadOnlyDictionary<string, string> labels)
    {
        int eq = filter.IndexOf('=');
        return eq < 0 ? labels.ContainsKey(filter) : labels.TryGetValue(filter[..eq], out string? v) && v == filter[(eq + 1)..];
    }

    /// <summary>Docker's reference filter: a path.Match glob against the familiar name, with or without its tag.</summary>
    internal static bool ReferenceMatches(string pattern, string familiar)
    {
        var regex = new Regex("^" + string.Concat(pattern.Select(c => c switch
        {
            '*' => "[^/]*",
            '?' => "[^/]",
            _ => Regex.Escape(c.ToString()),
        })) + "$", RegexOptions.CultureInvariant);
        if (regex.IsMatch(familiar)) return true;
        int at = familiar.IndexOf('@');
        string withoutDigest = at >= 0 ? familiar[..at] : familiar;
        int colon = withoutDigest.LastIndexOf(':');
        string repo = colon > withoutDigest.LastIndexOf('/') && colon >= 0 ? withoutDigest[..colon] : withoutDigest;
        if (regex.IsMatch(repo)) return true;
        // "busybox" also matches "docker.io/library/busybox" the way users type it.
        try
        {
            return !pattern.Contains('*') && !pattern.Contains('?') && ImageReference.ParseNormalized(pattern) is { } p
                && ImageReference.ParseNormalized(familiar) is { } f && p.Repository == f.Repository && (p.Tag is null || p.Tag == f.Tag);
        }
        catch (ImagesException)
        {
            return false;
        }
    }

    private static Task Inspect(HttpContext context, string name)
    {
        ImageService images = Images(context);
        ImageDetails d = images.Store.Inspect(name);
        ImageRecord? record = images.Store.References().Where(r => r.Target.Digest == d.Target.Digest).OrderByDescending(r => r.Created).FirstOrDefault();
        // dockerd below API 1.45 always has Container and ContainerConfig (a zero config when the
        // image has none) and drops both from 1.45 on. ContainerConfig stays at every version here:
        // docker-compose 1.29 (docker-py's "auto" version: the server's, 1.51) reads its Volumes on
        // each recreate and fails with KeyError 'ContainerConfig' without it, as it does against
        // dockerd 25 and later; a field more breaks no client.
        var json = new ImageInspectJson
        {
            Container = ApiVersion.LessThan(context, "1.45") ? d.Container ?? "" : null,
            ContainerConfig = ImageConfigJson.From(d.ContainerConfig),
            Id = d.Id.Value,
            Parent = d.Parent?.Value ?? "",
            RepoTags = d.RepoTags,
            RepoDigests = d.RepoDigests,
            Created = d.Created?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture),
            Author = d.Author ?? "",
            Comment = d.Comment ?? "",
            Config = ImageConfigJson.From(d.Config),
            Architecture = d.Platform.Architecture,
            Variant = string.IsNullOrEmpty(d.Platform.Variant) ? null : d.Platform.Variant,
            Os = d.Platform.OS,
            OsVersion = d.Platform.OSVersion,
            Size = d.Size,
            VirtualSize = ApiVersion.LessThan(context, "1.44") ? d.Size : null,
            RootFS = new RootFSJson("layers", d.DiffIds.Select(x => x.Value).ToList()),
            Metadata = new ImageMetadata(record?.Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture)),
            Descriptor = ApiVersion.LessThan(context, "1.48") ? null : d.Target,
        };
        return JsonResults.WriteAsync(context, json, ApiJson.Context.ImageInspectJson);
    }

    private static Task History(HttpContext context, string name)
    {
        ImageService images = Images(context);
        IReadOnlyList<ImageHistoryItem> items = images.Store.History(name);
        IReadOnlyList<string> tags = items.Count > 0 ? images.Store.Inspect(name).RepoTags : [];
        var json = items.Select((h, i) => new HistoryItemJson(h.Id, h.Created?.ToUnixTimeSeconds() ?? 0, h.CreatedBy, i == 0 && tags.Count > 0 ? tags : null, h.Size, h.Comment)).ToList();
        return JsonResults.WriteAsync(context, json, ApiJson.Context.IReadOnlyListHistoryItemJson);
    }

    // ---- search ------------------------------------------------------------------------------

    /// <summary>
    /// GET /images/search (<c>docker search</c>): TERM or REGISTRY/TERM (a first part with a dot, a
    /// colon or "localhost" names the registry; otherwise Docker Hub's index), through the
    /// registry's v1 search API; filters is-official, is-automated, stars; limit 1–100 (25).
    /// </summary>
    private static async Task Search(HttpContext context)
    {
        string term = QueryArgs.String(context, "term") ?? throw ApiException.BadRequest("search term is required");
        int limit = 25;
        if (QueryArgs.String(context, "limit") is { } limitText
            && (!int.TryParse(limitText, NumberStyles.Integer, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 100))
            throw ApiException.BadRequest($"Limit {limitText} is outside the range of [1, 100]");
        var filters = QueryArgs.Filters(context, "is-automated", "is-official", "stars");
        bool? official = SearchFlag(filters, "is-official"), automated = SearchFlag(filters, "is-automated");
        int minStars = 0;
        foreach (string s in filters.GetValueOrDefault("stars") ?? [])
            minStars = int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? Math.Max(minStars, n) : throw ApiException.BadRequest($"invalid filter 'stars={s}'");

        string[] parts = term.Split('/', 2);
        (string index, string remoteTerm) = parts.Length == 1 || (!parts[0].Contains('.') && !parts[0].Contains(':') && parts[0] != "localhost")
            ? (ImageReference.DefaultDomain, term)
            : (parts[0], parts[1]);
        IReadOnlyList<SearchResult> found;
        try
        {
            using RegistryClient client = Images(context).CreateClient(RegistryAuth.FromHeader(context), index);
            found = await client.SearchAsync(index, remoteTerm, limit, context.RequestAborted);
        }
        catch (RegistryException e)
        {
            throw new ApiException(ApiException.StatusOf(e.Kind), e.Message, e);
        }
        var json = found
            .Where(r => (official is null || r.IsOfficial == official) && (automated is null || r.IsAutomated == automated) && r.StarCount >= minStars)
            .Select(r => new SearchResultJson(r.StarCount, r.IsOfficial, r.Name, r.IsAutomated, r.Description))
            .ToList();
        await JsonResults.WriteAsync(context, json, ApiJson.Context.IReadOnlyListSearchResultJson);
    }

    private static bool? SearchFlag(Dictionary<string, List<string>> filters, string name)
    {
        bool? result = null;
        foreach (string v in filters.GetValueOrDefault(name) ?? [])
            result = v.ToLowerInvariant() switch
            {
                "true" or "1" => true,
                "false" or "0" => false,
                _ => throw ApiException.BadRequest($"invalid filter '{name}={v}'"),
            };
        return result;
    }

    // ---- tag, remove, prune ------------------------------------------------------------------

    private static Task Tag(HttpContext context, string name)
    {
        string repo = QueryArgs.String(context, "repo") ?? throw ApiException.BadRequest("repository name (repo) is required");
        string? tag = QueryArgs.String(context, "tag");
        ImageReference target;
        try
        {
            target = ImageReference.ParseNormalized(repo);
        }
        catch (ImagesException e)
        {
            throw ApiException.BadRequest(e.Message); // "invalid reference format `REPO`: why", dockerd's words with the name
        }
        if (target.Digest is not null) throw ApiException.BadRequest("refusing to create a tag with a digest reference");
        if (tag is not null && target.Tag is not null) throw ApiException.BadRequest("refusing to create an ambiguous tag using repo:tag and tag");
        string full = target.Tag is not null ? target.ToString() : target.WithTag(tag ?? ImageReference.DefaultTag).ToString();
        Images(context).Tag(name, full);
        context.Response.StatusCode = 201;
        return Task.CompletedTask;
    }

    private static async Task Remove(HttpContext context, string name)
    {
        IReadOnlyList<ImageRemoval> removals = await Images(context).RemoveAsync(name, QueryArgs.Bool(context, "force"), QueryArgs.Bool(context, "noprune"), context.RequestAborted);
        await JsonResults.WriteAsync(context, ToDeleteItems(removals), ApiJson.Context.IReadOnlyListDeleteResponseItem);
    }

    private static IReadOnlyList<DeleteResponseItem> ToDeleteItems(IEnumerable<ImageRemoval> removals)
        => removals.Select(r => new DeleteResponseItem { Untagged = r.Untagged, Deleted = r.Deleted?.Value }).ToList();

    private static async Task Prune(HttpContext context)
    {
        var filters = QueryArgs.Filters(context, "dangling", "label", "label!", "until");
        bool danglingOnly = QueryArgs.BoolFilter(filters, "dangling") ?? true;
        ImageService images = Images(context);
        DateTimeOffset now = SystemApi.Engine(context).Time.GetUtcNow();
        // dockerd's prune filters: until (created before), label and label! (on the image's labels).
        List<DateTimeOffset> until = [.. (filters.GetValueOrDefault("until") ?? []).Select(v => DockerTime.Parse(v, now, "until") ?? DateTimeOffset.MaxValue)];
        List<string> labels = filters.GetValueOrDefault("label") ?? [], notLabels = filters.GetValueOrDefault("label!") ?? [];
        bool Accept(ImageSummary image)
        {
            if (until.Count > 0 && !until.All(u => image.Created is { } c && c < u)) return false;
            if (labels.Count == 0 && notLabels.Count == 0) return true;
            IReadOnlyDictionary<string, string> imageLabels = LabelsOf(images.Store, image.Id.Value);
            return labels.All(l => LabelMatches(l, imageLabels)) && !notLabels.Any(l => LabelMatches(l, imageLabels));
        }
        var (removals, reclaimed) = await images.PruneAsync(danglingOnly, context.RequestAborted, Accept, SystemApi.Engine(context).Containers.ImagesInUse());
        await JsonResults.WriteAsync(context, new ImagesPruneReport(removals.Count == 0 ? null : ToDeleteItems(removals), reclaimed), ApiJson.Context.ImagesPruneReport);
    }

    // ---- pull, import, push ------------------------------------------------------------------

    private static Task Create(HttpContext context)
    {
        string? fromImage = QueryArgs.String(context, "fromImage");
        string? fromSrc = QueryArgs.String(context, "fromSrc");
        if (fromImage is not null && fromSrc is not null) throw ApiException.BadRequest("give fromImage or fromSrc, not both");
        if (fromImage is not null) return Pull(context, fromImage);
        if (fromSrc is not null) return Import(context, fromSrc);
        throw ApiException.BadRequest("fromImage or fromSrc is required");
    }

    private static async Task Pull(HttpContext context, string fromImage)
    {
        string? tag = QueryArgs.String(context, "tag");
        string reference;
        Platform? platform;
        try
        {
            ImageReference parsed = ImageReference.ParseNormalized(fromImage);
            reference = tag is null ? parsed.WithDefaultTag().ToString()
                : tag.StartsWith("sha256:", StringComparison.Ordinal) ? parsed.WithDigest(Digest.Parse(tag)).ToString()
                : parsed.WithTag(tag).ToString();
            platform = QueryArgs.String(context, "platform") is { } p ? PlatformMatcher.Parse(p) : null;
        }
        catch (ImagesException e)
        {
            throw ApiException.BadRequest(e.Message);
        }
        RegistryCredential? credential = RegistryAuth.FromHeader(context);

        // Errors before the first byte (a bad name) are plain 4xx; once streaming, they travel in the stream.
        await using JsonMessageStream stream = await JsonMessageStream.StartAsync(context);
        ImageReference name = ImageReference.Parse(reference);
        // "Pulling from" once the manifest is resolved (the first blob reported), as dockerd does;
        // a failure before that (no such manifest, unauthorized) is an HTTP error status.
        // dockerd's id there: the tag, or for a pull by digest the whole familiar reference.
        var layers = new PullMessages(stream, new JsonMessage { Status = $"Pulling from {name.Path}", Id = name.Tag ?? name.FamiliarName });
        try
        {
            PullOutcome outcome = await Images(context).PullAsync(reference, platform, credential, layers, layers, context.RequestAborted);
            layers.Done();
            stream.Post(new JsonMessage { Status = $"Digest: {outcome.Image.Target.Digest}" });
            stream.Post(new JsonMessage { Status = outcome.Downloaded ? $"Status: Downloaded newer image for {name.FamiliarName}" : $"Status: Image is up to date for {name.FamiliarName}" });
        }
        catch (ImagesException e) when (e.Kind == ImagesErrorKind.Unauthorized && !stream.Posted)
        {
            // dockerd answers a registry's refusal of a pull with 404 and this text (its
            // notFoundError): a 401 makes the docker client offer an interactive login instead
            // (20.10 then fails without a terminal, 28.x waits on its stdin).
            string familiar = name.FamiliarName;
            int cut = name.Digest is not null ? familiar.LastIndexOf('@') : name.Tag is not null ? familiar.LastIndexOf(':') : -1;
            throw ApiException.NotFound($"pull access denied for {(cut > 0 ? familiar[..cut] : familiar)}, repository does not exist or may require 'docker login': {e.Message}");
        }
        catch (Exception e) when (e is ImagesException or HttpRequestException or IOException && !context.RequestAborted.IsCancellationRequested)
        {
            if (!stream.Posted) throw;
            stream.Post(JsonMessage.Failure(e.Message));
        }
    }

    /// <summary>
    /// Docker's per-layer pull lines: Pulling fs layer, Waiting, Downloading [==>  ], Download
    /// complete, Extracting [==>  ] (bytes of the blob unpacked), Pull complete.
    /// </summary>
    private sealed class PullMessages(JsonMessageStream stream, JsonMessage header) : IProgress<PullProgress>, IProgress<UnpackProgress>
    {
        private readonly HashSet<Digest> _extracted = [];
        private readonly Dictionary<Digest, long> _extractingTicks = [];
        private readonly Dictionary<Digest, (PullState State, long LastTicks)> _layers = [];
        private int _started;

        public void Report(PullProgress p)
        {
            if (Interlocked.Exchange(ref _started, 1) == 0) stream.Post(header);
            if (MediaTypes.IsConfig(p.MediaType) || MediaTypes.IsManifest(p.MediaType) || MediaTypes.IsIndex(p.MediaType)) return;
            string id = p.Digest.Hex[..12];
            lock (_layers)
            {
                bool first = !_layers.TryGetValue(p.Digest, out var last);
                long now = Environment.TickCount64;
                // Docker sends a progress line at most every 100 ms per layer.
                if (!first && last.State == p.State && p.State == PullState.Downloading && now - last.LastTicks < 100) return;
                _layers[p.Digest] = (p.State, now);
                if (first && p.State != PullState.AlreadyExists) stream.Post(new JsonMessage { Status = "Pulling fs layer", ProgressDetail = new(), Id = id });
                JsonMessage? message = p.State switch
                {
                    PullState.Waiting => new JsonMessage { Status = "Waiting", ProgressDetail = new(), Id = id },
                    PullState.Downloading => new JsonMessage
                    {
                        Status = "Downloading",
                        ProgressDetail = new ProgressDetail { Current = p.Current, Total = p.Total },
                        Progress = ProgressText.Bar(p.Current, p.Total),
                        Id = id,
                    },
                    PullState.Retrying => new JsonMessage { Status = RetryingIn(p.RetryIn), ProgressDetail = new(), Id = id },
                    PullState.Complete => new JsonMessage { Status = "Download complete", ProgressDetail = new(), Id = id },
                    PullState.AlreadyExists => new JsonMessage { Status = "Already exists", ProgressDetail = new(), Id = id },
                    _ => null,
                };
                if (message is not null) stream.Post(message);
            }
        }

        /// <summary>dockerd's line before a download starts again: "Retrying in 5 seconds" (whole seconds, rounded up).</summary>
        private static string RetryingIn(TimeSpan delay)
        {
            int seconds = Math.Max(1, (int)Math.Ceiling(delay.TotalSeconds));
            return $"Retrying in {seconds} second{(seconds == 1 ? "" : "s")}";
        }

        public void Report(UnpackProgress u)
        {
            string id = u.Layer.Hex[..12];
            lock (_layers)
            {
                if (u.Done)
                {
                    _extracted.Add(u.Layer);
                    stream.Post(new JsonMessage { Status = "Pull complete", ProgressDetail = new(), Id = id });
                    return;
                }
                // At most every 100 ms per layer, as for downloads; the full count always goes out.
                long now = Environment.TickCount64;
                if (u.Current < u.Total && _extractingTicks.TryGetValue(u.Layer, out long last) && now - last < 100) return;
                _extractingTicks[u.Layer] = now;
                stream.Post(new JsonMessage
                {
                    Status = "Extracting",
                    ProgressDetail = new ProgressDetail { Current = u.Current, Total = u.Total },
                    Progress = ProgressText.Bar(u.Current, u.Total),
                    Id = id,
                });
            }
        }

        /// <summary>"Pull complete" for the layers downloaded but not unpacked here (their snapshot existed already).</summary>
        public void Done()
        {
            lock (_layers)
                foreach (var (digest, state) in _layers)
                    if (state.State == PullState.Complete && !_extracted.Contains(digest))
                        stream.Post(new JsonMessage { Status = "Pull complete", ProgressDetail = new(), Id = digest.Hex[..12] });
        }
    }

    private static async Task Import(HttpContext context, string fromSrc)
    {
        string? repo = QueryArgs.String(context, "repo");
        string? tag = QueryArgs.String(context, "tag");
        string? reference = null;
        Platform? platform;
        ContainerConfig? config;
        try
        {
            if (repo is not null)
            {
                ImageReference r = ImageReference.ParseNormalized(repo);
                reference = (tag is not null ? r.WithTag(tag) : r.WithDefaultTag()).ToString();
            }
            platform = QueryArgs.String(context, "platform") is { } p ? PlatformMatcher.Parse(p) : null;
            config = ImportChanges.Apply(context.Request.Query["changes"].Where(c => !string.IsNullOrEmpty(c)).Select(c => c!).ToList());
        }
        catch (ImagesException e)
        {
            throw ApiException.BadRequest(e.Message);
        }
        if (fromSrc != "-")
        {
            await ImportFromUrl(context, fromSrc, reference, platform, config);
            return;
        }
        RequestBody.AllowSynchronousIO(context);
        // dockerd's default message names the source: "Imported from -".
        string message = QueryArgs.String(context, "message") is { Length: > 0 } m ? m : "Imported from " + fromSrc;
        Image image = await Images(context).ImportAsync(context.Request.Body, reference,
            new ImportOptions { Platform = platform, Config = config, Message = message }, context.RequestAborted);
        await using JsonMessageStream stream = await JsonMessageStream.StartAsync(context);
        stream.Post(new JsonMessage { Status = image.Id.Value });
    }

    /// <summary>
    /// <c>docker import URL</c>, as dockerd's ImportImage: the URL (http:// when it names no scheme) is
    /// fetched, a failure to fetch is the request's error status; then "Downloading from URL", the
    /// "Importing" progress of the body, and the image's ID, in the stream (errors too, from then on).
    /// </summary>
    private static async Task ImportFromUrl(HttpContext context, string fromSrc, string? reference, Platform? platform, ContainerConfig? config)
    {
        string source = fromSrc.Contains("://", StringComparison.Ordinal) ? fromSrc : "http://" + fromSrc;
        if (!Uri.TryCreate(source, UriKind.Absolute, out Uri? url))
            throw ApiException.BadRequest($"parse \"{source}\": invalid URL");
        using HttpResponseMessage response = await Build.RemoteFetch.GetAsync(source, context.RequestAborted);
        string message = QueryArgs.String(context, "message") is { Length: > 0 } m ? m : "Imported from " + source;
        long total = response.Content.Headers.ContentLength ?? 0;
        await using JsonMessageStream stream = await JsonMessageStream.StartAsync(context);
        stream.Post(new JsonMessage { Status = $"Downloading from {url.OriginalString}" });
        try
        {
            using var body = new Build.ProgressReadStream(await response.Content.ReadAsStreamAsync(context.RequestAborted), (current, _) => stream.Post(new JsonMessage
            {
                Status = "Importing",
                ProgressDetail = new ProgressDetail { Current = current, Total = total },
                Progress = ProgressText.Bar(current, total),
            }), total);
            Image image = await Images(context).ImportAsync(body, reference,
                new ImportOptions { Platform = platform, Config = config, Message = message }, context.RequestAborted);
            body.Finish();
            stream.Post(new JsonMessage { Status = image.Id.Value });
        }
        catch (Exception e) when (e is not OperationCanceledException && !context.RequestAborted.IsCancellationRequested)
        {
            // The stream has begun: whatever failed travels in it, as dockerd writes it there.
            stream.Post(JsonMessage.Failure(e.Message));
        }
    }

    private static async Task Push(HttpContext context, string name)
    {
        string? tag = QueryArgs.String(context, "tag");
        ImageService images = Images(context);
        ImageReference repo;
        try
        {
            repo = ImageReference.ParseNormalized(name);
        }
        catch (ImagesException e)
        {
            throw ApiException.BadRequest(e.Message);
        }
        List<string> targets;
        List<ImageReference> local = [.. images.Store.References().Select(r => ImageReference.ParseNormalized(r.Name))
            .Where(r => r.Repository == repo.Repository && r.Tag is not null)];
        if (tag is not null) targets = [repo.WithTag(tag).ToString()];
        else if (repo.Tag is not null || repo.Digest is not null) targets = [repo.ToString()];
        else targets = [.. local.Select(r => r.ToString())];
        RegistryCredential? credential = RegistryAuth.FromHeader(context);

        await using JsonMessageStream stream = await JsonMessageStream.StartAsync(context);
        // The repository fully qualified, as dockerd names it ("[docker.io/library/busybox]").
        stream.Post(new JsonMessage { Status = $"The push refers to repository [{repo.Repository}]" });
        // As dockerd, what is not here is said in the stream (docker prints it after the line above), not as a 404.
        string repositoryName = repo.WithDefaultTag().FamiliarName[..repo.WithDefaultTag().FamiliarName.LastIndexOf(':')];
        if (local.Count == 0 && repo.Digest is null)
        {
            stream.Post(JsonMessage.Failure($"An image does not exist locally with the tag: {repositoryName}"));
            return;
        }
        if (targets.FirstOrDefault(t => !IsLocal(images, t)) is { } missing)
        {
            stream.Post(JsonMessage.Failure($"tag does not exist: {ImageReference.ParseNormalized(missing).FamiliarName}"));
            return;
        }
        try
        {
            foreach (string target in targets)
            {
                var progress = new PushMessages(stream);
                PushResult result = await images.PushAsync(target, target, credential, progress, context.RequestAborted);
                ImageReference pushed = ImageReference.Parse(target);
                stream.Post(new JsonMessage { Status = $"{pushed.Reference}: digest: {result.Root.Digest} size: {result.Root.Size}" });
                stream.Post(new JsonMessage { ProgressDetail = new(), Aux = new AuxMessage(pushed.Reference, result.Root.Digest, result.Root.Size) });
            }
        }
        catch (Exception e) when (e is not OperationCanceledException && !context.RequestAborted.IsCancellationRequested)
        {
            // The stream has begun: whatever failed travels in it, as dockerd writes it there.
            stream.Post(JsonMessage.Failure(e.Message));
        }
    }

    private static bool IsLocal(ImageService images, string reference)
    {
        try
        {
            images.Store.ResolveRecord(reference);
            return true;
        }
        catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
        {
            return false;
        }
    }

    private sealed class PushMessages(JsonMessageStream stream) : IProgress<PushProgress>
    {
        private readonly Dictionary<Digest, (PushState State, long LastTicks)> _blobs = [];

        public void Report(PushProgress p)
        {
            if (MediaTypes.IsConfig(p.MediaType) || MediaTypes.IsManifest(p.MediaType) || MediaTypes.IsIndex(p.MediaType)) return;
            string id = p.Digest.Hex[..12];
            lock (_blobs)
            {
                bool first = !_blobs.TryGetValue(p.Digest, out var last);
                long now = Environment.TickCount64;
                if (!first && last.State == p.State && p.State == PushState.Uploading && now - last.LastTicks < 100) return;
                _blobs[p.Digest] = (p.State, now);
                if (first) stream.Post(new JsonMessage { Status = "Preparing", ProgressDetail = new(), Id = id });
                JsonMessage? message = p.State switch
                {
                    PushState.Waiting => new JsonMessage { Status = "Waiting", ProgressDetail = new(), Id = id },
                    PushState.Uploading => new JsonMessage
                    {
                        Status = "Pushing",
                        ProgressDetail = new ProgressDetail { Current = p.Current, Total = p.Total },
                        Progress = ProgressText.Bar(p.Current, p.Total),
                        Id = id,
                    },
                    PushState.Pushed => new JsonMessage { Status = "Pushed", ProgressDetail = new(), Id = id },
                    PushState.AlreadyExists => new JsonMessage { Status = "Layer already exists", ProgressDetail = new(), Id = id },
                    PushState.Mounted => new JsonMessage { Status = "Mounted from another repository", ProgressDetail = new(), Id = id },
                    _ => null,
                };
                if (message is not null) stream.Post(message);
            }
        }
    }

    // ---- save, load ---------------------------------------------------------------------------

    private static async Task Save(HttpContext context, IReadOnlyList<string> names)
    {
        if (names.Count == 0) throw ApiException.BadRequest("no image names given (names=…)");
        ImageService images = Images(context);
        foreach (string n in names) images.Store.ResolveRecord(n); // 404 before the tar starts
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/x-tar";
        RequestBody.AllowSynchronousIO(context);
        await images.SaveAsync(names, context.Response.Body, context.RequestAborted);
    }

    private static async Task Load(HttpContext context)
    {
        bool quiet = QueryArgs.Bool(context, "quiet");
        RequestBody.AllowSynchronousIO(context);
        IReadOnlyList<string> loaded;
        try
        {
            loaded = await Images(context).LoadAsync(context.Request.Body, context.RequestAborted);
        }
        catch (ImagesException e) when (e.Kind == ImagesErrorKind.DataLoss)
        {
            // Content that does not match its digest or diffID is the archive's fault, not the daemon's.
            throw ApiException.BadRequest(e.Message);
        }
        await using JsonMessageStream stream = await JsonMessageStream.StartAsync(context);
        _ = quiet; // Load reports no progress yet, so quiet changes nothing.
        foreach (string name in loaded)
        {
            string line = name.StartsWith("sha256:", StringComparison.Ordinal)
                ? $"Loaded image ID: {name}\n"
                : $"Loaded image: {ImageReference.ParseNormalized(name).FamiliarName}\n";
            stream.Post(new JsonMessage { Stream = line });
        }
    }
}

/// <summary>The <c>X-Registry-Auth</c> header: base64url JSON of Docker's AuthConfig.</summary>
public static class RegistryAuth
{
    public static RegistryCredential? FromHeader(HttpContext context)
    {
        string? header = context.Request.Headers["X-Registry-Auth"];
        if (string.IsNullOrWhiteSpace(header)) return null;
        AuthConfig? auth;
        try
        {
            string b64 = header.Trim().Replace('-', '+').Replace('_', '/');
            b64 = b64.PadRight(b64.Length + (4 - b64.Length % 4) % 4, '=');
            auth = JsonSerializer.Deserialize(Convert.FromBase64String(b64), ApiJson.Context.AuthConfig);
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            throw ApiException.BadRequest("invalid X-Registry-Auth header: " + e.Message);
        }
        return auth is null ? null : ToCredential(auth);
    }

    /// <summary>An AuthConfig's credential: username/password, else the base64 <c>auth</c> pair, and an identity token; null when it has none.</summary>
    public static RegistryCredential? ToCredential(AuthConfig auth)
    {
        string? user = auth.Username, password = auth.Password;
        if (string.IsNullOrEmpty(user) && auth.Auth is { Length: > 0 } basic)
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(basic));
            }
            catch (FormatException)
            {
                throw ApiException.BadRequest("invalid auth configuration: `auth` is not base64");
            }
            int colon = decoded.IndexOf(':');
            if (colon > 0) (user, password) = (decoded[..colon], decoded[(colon + 1)..]);
        }
        string? identity = auth.IdentityToken is { Length: > 0 } t ? t : null;
        if (string.IsNullOrEmpty(user) && identity is null) return null;
        return new RegistryCredential(user, password, identity);
    }
}
