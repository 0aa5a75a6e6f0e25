using System.Text.Json;
using System.Text.RegularExpressions;
using Berth.Daemon.Containers;
using Berth.Daemon.Volumes;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary><c>/volumes/…</c>: the local driver's volumes (see <see cref="VolumeService"/>), as dockerd serves them.</summary>
public static class VolumesApi
{
    public static Task Dispatch(HttpContext context)
    {
        string rest = ((string?)context.Request.RouteValues["rest"] ?? "").Trim('/');
        string method = context.Request.Method;
        bool get = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        bool post = HttpMethods.IsPost(method);
        if (get && rest == "") return List(context);
        if (post && rest == "create") return Create(context);
        if (post && rest == "prune") return Prune(context);
        if (rest.Length > 0 && !rest.Contains('/'))
        {
            if (get) return Inspect(context, rest);
            if (HttpMethods.IsDelete(method)) return Remove(context, rest);
        }
        throw ApiException.NotFound("page not found");
    }

    private static VolumeService Volumes(HttpContext context) => SystemApi.Engine(context).Volumes;

    internal static VolumeJson ToJson(VolumeService volumes, VolumeRecord r, bool usage = false) => new()
    {
        CreatedAt = r.CreatedAt,
        Driver = r.Driver,
        Labels = r.Labels,
        Mountpoint = volumes.MountpointOf(r.Name),
        Name = r.Name,
        Options = r.Options,
        UsageData = usage ? Usage(volumes, r.Name) : null,
    };

    private static VolumeUsageDataJson Usage(VolumeService volumes, string name)
    {
        var (size, refs) = volumes.Usage(name);
        return new VolumeUsageDataJson(size, refs);
    }

    private static async Task Create(HttpContext context)
    {
        VolumeCreateBody body = await JsonResults.ReadAsync(context, ApiJson.Context.VolumeCreateBody) ?? new VolumeCreateBody();
        if (body.ClusterVolumeSpec is { } spec && ContainerRequestCheck.IsSet(spec))
            throw ApiException.BadRequest("ClusterVolumeSpec: cluster volumes not supported by this version of berthd (no swarm)");
        VolumeService volumes = Volumes(context);
        VolumeRecord created = volumes.Create(body.Name, body.Driver, body.DriverOpts, body.Labels);
        await JsonResults.WriteAsync(context, ToJson(volumes, created), ApiJson.Context.VolumeJson, 201);
    }

    private static Task List(HttpContext context)
    {
        var filters = QueryArgs.Filters(context, "name", "label", "dangling", "driver");
        VolumeService volumes = Volumes(context);
        IEnumerable<VolumeRecord> list = volumes.List();
        if (filters.TryGetValue("name", out var names)) list = list.Where(v => names.Any(n => NameMatches(n, v.Name)));
        if (filters.TryGetValue("label", out var labels)) list = list.Where(v => labels.All(l => ContainerFilters.LabelMatches(l, v.Labels)));
        if (filters.TryGetValue("driver", out var drivers)) list = list.Where(v => drivers.Contains(v.Driver));
        if (QueryArgs.BoolFilter(filters, "dangling") is bool dangling) list = list.Where(v => (volumes.UsedBy(v.Name).Count == 0) == dangling);
        var result = new VolumeListResponse(list.Select(v => ToJson(volumes, v)).ToList(), null);
        return JsonResults.WriteAsync(context, result, ApiJson.Context.VolumeListResponse);
    }

    /// <summary>dockerd's filters.Match: the exact name, or the filter value as a regular expression.</summary>
    private static bool NameMatches(string filter, string name)
    {
        if (filter == name) return true;
        try
        {
            return Regex.IsMatch(name, filter, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
        }
        catch (Exception e) when (e is ArgumentException or RegexMatchTimeoutException)
        {
            return false;
        }
    }

    private static Task Inspect(HttpContext context, string name)
    {
        VolumeService volumes = Volumes(context);
        return JsonResults.WriteAsync(context, ToJson(volumes, volumes.Get(name)), ApiJson.Context.VolumeJson);
    }

    /// <summary>
    /// <c>force</c> is accepted (dockerd uses it to drop a volume whose driver fails to remove it;
    /// the local driver here either removes it or reports why); a volume in use is 409 either way.
    /// </summary>
    private static Task Remove(HttpContext context, string name)
    {
        _ = QueryArgs.Bool(context, "force");
        Volumes(context).Remove(name);
        context.Response.StatusCode = 204;
        return Task.CompletedTask;
    }

    private static Task Prune(HttpContext context)
    {
        var filters = QueryArgs.Filters(context, "label", "label!", "all");
        // API < 1.42 pruned every unused volume; since 1.42 only anonymous ones unless all=true.
        bool all = ApiVersion.LessThan(context, "1.42") || QueryArgs.BoolFilter(filters, "all") == true;
        List<string> with = filters.GetValueOrDefault("label") ?? [], without = filters.GetValueOrDefault("label!") ?? [];
        // label!=key or label!=key=value: the volume must not carry it.
        bool Matches(IReadOnlyDictionary<string, string>? labels)
            => with.All(l => ContainerFilters.LabelMatches(l, labels)) && !without.Any(l => ContainerFilters.LabelMatches(l, labels));
        var (deleted, space) = Volumes(context).Prune(Matches, all);
        return JsonResults.WriteAsync(context, new VolumesPruneReport(deleted.Count > 0 ? deleted : null, space), ApiJson.Context.VolumesPruneReport);
    }
}
