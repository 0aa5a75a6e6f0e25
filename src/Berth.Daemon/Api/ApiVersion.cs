using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace Berth.Daemon.Api;

/// <summary>
/// API version negotiation as dockerd does it: clients call <c>/v1.NN/…</c> (or unversioned
/// paths, which get the current version); <c>/_ping</c> and <c>/version</c> tell them the range.
/// 1.41 is Docker 20.10's API; 1.51 is what the 28.x clients ask for at most.
/// </summary>
public static partial class ApiVersion
{
    public const string Current = "1.51";
    public const string Minimum = "1.41";
    private const string ItemKey = "berth.api-version";

    [GeneratedRegex(@"^/v(\d+)\.(\d+)(/.*)?$", RegexOptions.CultureInvariant)]
    private static partial Regex VersionedPath();

    /// <summary>The version of this request (set by <see cref="Middleware"/>), as (major, minor).</summary>
    public static (int Major, int Minor) Of(HttpContext context)
        => context.Items.TryGetValue(ItemKey, out object? v) && v is ValueTuple<int, int> t ? t : Parse(Current);

    /// <summary>True when the request's version is below <paramref name="version"/>.</summary>
    public static bool LessThan(HttpContext context, string version) => Of(context).CompareTo(Parse(version)) < 0;

    public static (int, int) Parse(string v)
    {
        int dot = v.IndexOf('.');
        return (int.Parse(v[..dot], CultureInfo.InvariantCulture), int.Parse(v[(dot + 1)..], CultureInfo.InvariantCulture));
    }

    /// <summary>Strips the <c>/vX.Y</c> prefix, refuses versions out of range, sets Docker's response headers.</summary>
    public static async Task Middleware(HttpContext context, RequestDelegate next)
    {
        HttpResponse response = context.Response;
        response.Headers["Api-Version"] = Current;
        response.Headers["Docker-Experimental"] = context.RequestServices.GetService(typeof(Engine.BerthEngine)) is Engine.BerthEngine { Options.Experimental: true } ? "true" : "false";
        response.Headers["OSType"] = "linux";
        response.Headers.Server = $"Berth/{Engine.BerthEngine.Version} (linux)";

        string path = context.Request.Path.Value ?? "/";
        Match m = VersionedPath().Match(path);
        if (m.Success)
        {
            if (!int.TryParse(m.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out int major)
                || !int.TryParse(m.Groups[2].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out int minor))
                throw ApiException.BadRequest($"invalid API version in `{path}`");
            var version = (major, minor);
            if (version.CompareTo(Parse(Minimum)) < 0)
                throw ApiException.BadRequest($"client version {major}.{minor} is too old. Minimum supported API version is {Minimum}, please upgrade your client to a newer version");
            if (version.CompareTo(Parse(Current)) > 0)
                throw ApiException.BadRequest($"client version {major}.{minor} is too new. Maximum supported API version is {Current}");
            context.Items[ItemKey] = version;
            context.Request.Path = m.Groups[3].Success ? m.Groups[3].Value : "/";
        }
        await next(context);
    }
}
