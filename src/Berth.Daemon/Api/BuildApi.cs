using System.Globalization;
using System.Text.Json;
using Berth.Builder;
using Berth.Daemon.Build;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Berth.Daemon.Api;

/// <summary>
/// <c>POST /build</c> (the classic builder's API, as <c>DOCKER_BUILDKIT=0 docker build</c> and
/// docker-py call it) and <c>POST /build/prune</c>. The body is the context tar; progress is a
/// stream of <c>{"stream": "Step 1/5 : …"}</c> messages, the image ID an <c>aux</c> message, and a
/// failure an <c>errorDetail</c> with the failed step's exit code.
/// </summary>
public static partial class BuildApi
{
    // Query parameters of dockerd's classic build that change the result and that berthd does
    // not apply: refused when set, rather than silently ignored.
    private static readonly string[] Unsupported = ["squash", "memory", "memswap", "cpushares", "cpusetcpus", "cpusetmems", "cpuperiod", "cpuquota", "isolation", "ulimits", "outputs", "session"];

    private static BuildService Builds(HttpContext context) => SystemApi.Engine(context).Builds;

    public static async Task Build(HttpContext context)
    {
        if (!HttpMethods.IsPost(context.Request.Method)) throw ApiException.NotFound("page not found");
        IQueryCollection query = context.Request.Query;
        foreach (string name in Unsupported)
        {
            string? value = QueryArgs.String(context, name);
            if (value is null or "0" or "false" or "[]" or "{}" or "null") continue;
            throw ApiException.BadRequest($"build option `{name}` is not supported by berthd");
        }
        if (QueryArgs.String(context, "version") == "2")
            throw ApiException.BadRequest("BuildKit builds (version=2) are not supported by berthd; use the classic builder (DOCKER_BUILDKIT=0)");
        Platform? platform = null;
        if (QueryArgs.String(context, "platform") is { } p)
        {
            try
            {
                platform = PlatformMatcher.Parse(p);
            }
            catch (ImagesException e)
            {
                throw ApiException.BadRequest(e.Message);
            }
        }
        var options = new BuildOptions
        {
            Dockerfile = QueryArgs.String(context, "dockerfile") ?? "Dockerfile",
            Tags = query["t"].Where(t => !string.IsNullOrEmpty(t)).Select(t => t!).ToList(),
            BuildArgs = JsonMap(context, "buildargs"),
            Labels = JsonMap(context, "labels").Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value!, StringComparer.Ordinal),
            Target = QueryArgs.String(context, "target"),
            NoCache = QueryArgs.Bool(context, "nocache"),
            CacheFrom = CacheFrom(context),
            Pull = QueryArgs.Bool(context, "pull"),
            NetworkMode = QueryArgs.String(context, "networkmode") is { } n && n != "default" ? n : null,
            // Repeated, one name:address each (docker build --add-host, docker-compose's build.extra_hosts).
            ExtraHosts = query["extrahosts"].Where(h => !string.IsNullOrEmpty(h)).Select(h => h!).ToList(),
            ShmSize = ShmSize(context),
            Platform = platform,
            // As dockerd's router: --force-rm implies --rm; rm absent means true.
            ForceRemove = QueryArgs.Bool(context, "forcerm"),
            Remove = QueryArgs.Bool(context, "forcerm") || string.IsNullOrEmpty(QueryArgs.String(context, "rm")) || QueryArgs.Bool(context, "rm"),
        };
        bool quiet = QueryArgs.Bool(context, "q");
        // A Git or http(s) URL to take the context from instead of the body (dockerd's remotecontext.Detect).
        string? remote = QueryArgs.String(context, "remote") is { Length: > 0 } r ? r : null;
        RequestBody.AllowSynchronousIO(context); // the context tar is extracted on a worker thread

        await using JsonMessageStream stream = await JsonMessageStream.StartAsync(context);
        var output = new StreamOutput(stream, quiet);
        // dockerd's progress of a remote context's download: id "Downloading context", the URL as status,
        // the bytes so far (its total is the request's length, nothing for a bodiless request).
        Action<long, bool>? downloaded = quiet || remote is null ? null : (current, _) => stream.Post(new JsonMessage
        {
            Status = remote,
            Id = "Downloading context",
            ProgressDetail = new ProgressDetail { Current = current },
            Progress = current > 0 ? $"{ProgressText.HumanSize(current),8}" : null,
        });
        try
        {
            BuildResult result = await Builds(context).BuildAsync(context.Request.Body, remote, options, output, downloaded, RegistryAuth.FromHeader(context), context.RequestAborted);
            if (quiet) stream.Post(new JsonMessage { Stream = result.Image.Id.Value + "\n" });
        }
        catch (BuildException e) when (!context.RequestAborted.IsCancellationRequested)
        {
            if (!stream.Posted && e.Kind != BuildErrorKind.StepFailed)
            {
                throw e.Kind switch
                {
                    BuildErrorKind.InvalidArgument => ApiException.BadRequest(e.Message),
                    BuildErrorKind.NotFound => ApiException.NotFound(e.Message),
                    _ => new ApiException(500, e.Message),
                };
            }
            stream.Post(new JsonMessage { ErrorDetail = new ErrorDetail(e.Message) { Code = e.ExitCode }, Error = e.Message });
        }
        catch (Exception e) when (e is ImagesException or ApiException && !context.RequestAborted.IsCancellationRequested)
        {
            if (!stream.Posted) throw;
            stream.Post(JsonMessage.Failure(e.Message));
        }
        catch (Exception e) when (stream.Posted && e is not OperationCanceledException)
        {
            // Once steps have streamed, the status line is sent: the failure must travel in the
            // stream, and into berthd's log since it is not an expected build error.
            stream.Post(JsonMessage.Failure($"build failed: {e.GetType().Name}: {e.Message}"));
            if (context.RequestServices.GetService(typeof(ILoggerFactory)) is ILoggerFactory loggers)
                LogBuildFailed(loggers.CreateLogger("Berth.Daemon.Build"), e);
        }
    }

    /// <summary>POST /build/prune: forgets the layer cache; what only it kept is collected.</summary>
    public static async Task Prune(HttpContext context)
    {
        if (!HttpMethods.IsPost(context.Request.Method)) throw ApiException.NotFound("page not found");
        // What the cache cannot honour is refused, never ignored: a prune that drops everything when it was asked
        // to keep some of it is the one mistake that cannot be undone. docker builder prune sends filters= and keep-storage=0.
        string? keep = QueryArgs.String(context, "keep-storage");
        if (keep is not null && !long.TryParse(keep, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            throw ApiException.BadRequest($"keep-storage is in bytes and expects an integer, got {keep}");
        if (keep is not null && keep.Trim('0').Length > 0)
            throw ApiException.NotImplemented("keep-storage is not supported by this version of berthd: its build cache prune removes every entry");
        var filters = QueryArgs.Filters(context, "until", "unused-for", "unusedfor", "id", "parent", "type", "description", "inuse", "mutable", "immutable", "shared", "private");
        if (filters.Count > 0)
            throw ApiException.NotImplemented($"build cache prune filters ({string.Join(", ", filters.Keys)}) are not supported by this version of berthd: its prune removes every entry");
        var engine = SystemApi.Engine(context);
        int removed = engine.Builds.Cache.Prune();
        var gc = await engine.Store.CollectGarbageAsync(context.RequestAborted);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(
            $"{{\"CachesDeleted\":null,\"SpaceReclaimed\":{gc.ReclaimedBytes.ToString(CultureInfo.InvariantCulture)},\"Entries\":{removed.ToString(CultureInfo.InvariantCulture)}}}\n",
            context.RequestAborted);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "build failed unexpectedly")]
    private static partial void LogBuildFailed(ILogger logger, Exception exception);

    /// <summary><c>shmsize</c>: bytes, as dockerd parses it (a negative size is its 400).</summary>
    private static long ShmSize(HttpContext context)
    {
        if (QueryArgs.String(context, "shmsize") is not { Length: > 0 } text) return 0;
        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long size))
            throw ApiException.BadRequest($"strconv.ParseInt: parsing \"{text}\": invalid syntax");
        if (size < 0) throw ApiException.BadRequest("SHM size can not be less than 0");
        return size;
    }

    /// <summary><c>cachefrom</c>: a JSON array of image names (docker build --cache-from); an error before the build, as dockerd's.</summary>
    private static List<string> CacheFrom(HttpContext context)
    {
        if (QueryArgs.String(context, "cachefrom") is not { Length: > 0 } text) return [];
        try
        {
            using JsonDocument doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind == JsonValueKind.Null) return [];
            if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new JsonException("not an array");
            return [.. doc.RootElement.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new JsonException("an item is not a string"))];
        }
        catch (JsonException e)
        {
            // dockerd answers its json.Unmarshal error as a 500.
            throw new ApiException(500, $"invalid `cachefrom`: want a JSON array of image names: {e.Message}");
        }
    }

    /// <summary>A query parameter holding a JSON object of strings (buildargs, labels); null values are kept as null.</summary>
    private static Dictionary<string, string?> JsonMap(HttpContext context, string name)
    {
        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        string? text = QueryArgs.String(context, name);
        if (text is null) return result;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException("not an object");
            foreach (JsonProperty property in doc.RootElement.EnumerateObject())
            {
                result[property.Name] = property.Value.ValueKind switch
                {
                    JsonValueKind.Null => null,
                    JsonValueKind.String => property.Value.GetString(),
                    _ => throw new JsonException($"the value of `{property.Name}` is not a string"),
                };
            }
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"invalid `{name}`: want a JSON object of strings: {e.Message}");
        }
        return result;
    }

    /// <summary>Build progress as <c>{"stream": …}</c> messages; with <c>q</c>, nothing but the final ID.</summary>
    private sealed class StreamOutput(JsonMessageStream stream, bool quiet) : IBuildOutput
    {
        public void Write(string text)
        {
            if (!quiet && text.Length > 0) stream.Post(new JsonMessage { Stream = text });
        }

        /// <summary>The classic builder's aux message at the end of each stage (not with <c>q</c>: only the final ID then).</summary>
        public void StageBuilt(Digest imageId)
        {
            if (!quiet) stream.Post(new JsonMessage { Aux = new AuxMessage(null, null, 0) { ID = imageId.Value } });
        }
    }
}
