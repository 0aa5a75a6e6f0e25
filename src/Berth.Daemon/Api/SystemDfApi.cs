using System.Text.Json.Serialization;
using Berth.Daemon.Containers;
using Berth.Daemon.Engine;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Manifests;
using Berth.Images.Store;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>
/// <c>/system/…</c>: <c>GET /system/df</c> (dockerd's DiskUsage); the other <c>/system</c> paths
/// dockerd serves are still 501 here.
/// </summary>
public static class SystemDfApi
{
    public static Task Dispatch(HttpContext context)
    {
        string rest = ((string?)context.Request.RouteValues["rest"] ?? "").Trim('/');
        if (rest == "df")
        {
            SystemApi.RequireGet(context);
            return DiskUsage(context);
        }
        return NotImplementedApi.Handle(context);
    }

    /// <summary>
    /// Sizes as the image store counts them (the layers' blob sizes): <c>LayersSize</c> counts each
    /// layer once; an image's <c>SharedSize</c> is what it has in common with other images, so the
    /// CLI's "reclaimable" is right. Containers carry <c>SizeRw</c> (their writable layer) and
    /// <c>SizeRootFs</c> (that plus their image). <c>?type=</c> (API 1.42) limits what is computed.
    /// </summary>
    private static Task DiskUsage(HttpContext context)
    {
        BerthEngine engine = SystemApi.Engine(context);
        string[] types = [.. context.Request.Query["type"].Where(t => !string.IsNullOrEmpty(t)).Select(t => t!)];
        foreach (string t in types)
            if (t is not ("container" or "image" or "volume" or "build-cache"))
                throw ApiException.BadRequest($"unknown object type: {t}");
        bool Wants(string type) => types.Length == 0 || types.Contains(type);
        DateTimeOffset now = engine.Time.GetUtcNow();
        List<ContainerEntry> containers = engine.Containers.Snapshot();

        ImageStore store = engine.Images.Store;
        IReadOnlyList<ImageSummary> images = Wants("image") || Wants("container") ? store.List() : [];
        // Each image's layers (by diffID) with what they hold unpacked, the sizes dockerd's df counts.
        var layersOf = new Dictionary<Digest, IReadOnlyList<(Digest DiffId, long Size)>>();
        foreach (ImageSummary image in images)
        {
            try
            {
                Image read = store.Get(image.Id.Value);
                layersOf[image.Id] = read.DiffIds.Select((d, i) => (d, store.LayerSizeOf(read, i))).ToList();
            }
            catch (ImagesException)
            {
                layersOf[image.Id] = []; // removed meanwhile
            }
        }
        // How many images hold each layer: a layer held by more than one is shared.
        var holders = new Dictionary<Digest, (long Size, int Count)>();
        foreach (var layers in layersOf.Values)
            foreach (var l in layers.DistinctBy(l => l.DiffId))
                holders[l.DiffId] = holders.TryGetValue(l.DiffId, out var h) ? (h.Size, h.Count + 1) : (l.Size, 1);

        var result = new DiskUsageJson();
        if (Wants("image"))
        {
            result.LayersSize = holders.Values.Sum(h => h.Size);
            result.Images = images.Select(image => new ImageSummaryJson
            {
                Id = image.Id.Value,
                RepoTags = image.RepoTags,
                RepoDigests = image.RepoDigests,
                Created = image.Created?.ToUnixTimeSeconds() ?? 0,
                Size = image.Size,
                SharedSize = layersOf[image.Id].DistinctBy(l => l.DiffId).Where(l => holders[l.DiffId].Count > 1).Sum(l => l.Size),
                VirtualSize = ApiVersion.LessThan(context, "1.44") ? image.Size : null,
                Labels = ImagesApi.ConfigLabelsOf(store, image.Id.Value),
                Containers = containers.Count(c => c.Record.ImageId == image.Id.Value),
            }).ToList();
        }
        if (Wants("container"))
        {
            var imageSize = images.ToDictionary(i => i.Id.Value, i => i.Size, StringComparer.Ordinal);
            Dictionary<string, List<string>> linkNames = engine.Containers.LinkNamesByTarget();
            Func<string, string?> imageIdOf = ContainersApi.ImageIdResolver(engine.Containers);
            result.Containers = containers.Select(c =>
            {
                long rw = engine.Containers.SizeRw(c);
                return ContainersApi.Summary(c.Record, engine.Id, now, linkNames.GetValueOrDefault(c.Record.Id), imageIdOf).WithSizes(rw, rw + imageSize.GetValueOrDefault(c.Record.ImageId));
            }).ToList();
        }
        if (Wants("volume"))
            result.Volumes = engine.Volumes.List().Select(v => VolumesApi.ToJson(engine.Volumes, v, usage: true)).ToList();
        if (Wants("build-cache")) result.BuildCache = [];
        if (ApiVersion.LessThan(context, "1.42")) result.BuilderSize = 0; // deprecated, sent below 1.42 (moby)
        return JsonResults.WriteAsync(context, result, DiskUsageJsonContext.Api.DiskUsageJson);
    }
}

/// <summary>GET /system/df (moby api/types.DiskUsage); a kind not asked for with <c>?type=</c> is null.</summary>
public sealed class DiskUsageJson
{
    public long LayersSize { get; set; }
    public List<ImageSummaryJson>? Images { get; set; }
    public List<ContainerSummaryJson>? Containers { get; set; }
    public List<VolumeJson>? Volumes { get; set; }
    public List<System.Text.Json.JsonElement>? BuildCache { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? BuilderSize { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(DiskUsageJson))]
public sealed partial class DiskUsageJsonContext : JsonSerializerContext
{
    /// <summary>With <see cref="ApiJson"/>'s options (Go's escaping).</summary>
    public static DiskUsageJsonContext Api { get; } = new(new System.Text.Json.JsonSerializerOptions
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNameCaseInsensitive = true,
    });
}
