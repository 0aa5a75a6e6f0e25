using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Cli.Client;

/// <summary>
/// A client of berthd's Docker Engine API over its unix socket (<c>-H unix:///path</c>,
/// <c>BERTH_HOST</c>, default <c>unix:///run/berth/berth.sock</c>). Every request uses versioned
/// paths, so the same binary talks to berthd and to a real dockerd. The version is
/// <see cref="MaxApiVersion"/> until a daemon refuses it as too new; then it is negotiated from
/// <c>/_ping</c>'s <c>Api-Version</c> header (the lower of the daemon's and ours) and the request is
/// sent again. That saves a round trip per command against berthd and any daemon at least as new;
/// a request whose body cannot be sent twice (a stream) pings first. JSON is handled as
/// <see cref="JsonNode"/> trees: no reflection (NativeAOT), and <c>--format</c> templates walk the
/// daemon's JSON as it came.
/// </summary>
internal sealed class DaemonClient : IDisposable
{
    public const string DefaultHost = "unix:///run/berth/berth.sock";
    public const string MaxApiVersion = "1.47";
    /// <summary>The oldest API this client speaks (dockerd 20.10).</summary>
    public const string MinApiVersion = "1.41";

    private readonly HttpClient _http;
    private string? _version;

    public DaemonClient(string host)
    {
        Host = host;
        if (!host.StartsWith("unix://", StringComparison.Ordinal))
            throw new Commands.UsageException($"unsupported host {host}: berth talks to berthd over a unix socket (unix:///path)");
        SocketPath = host["unix://".Length..];
        _http = new HttpClient(new UnixHttpHandler(host, SocketPath)) { BaseAddress = new Uri("http://berth/"), Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("berth-cli/1.0");
    }

    public string Host { get; }
    public string SocketPath { get; }

    /// <summary>The daemon address from <c>-H</c>, else <c>BERTH_HOST</c>, else the default.</summary>
    public static string ResolveHost(string? flag)
        => !string.IsNullOrEmpty(flag) ? flag
            : Environment.GetEnvironmentVariable("BERTH_HOST") is { Length: > 0 } env ? env
            : DefaultHost;

    /// <summary>The negotiated API version (pings the daemon unless a request has already settled it).</summary>
    public async Task<string> VersionAsync(CancellationToken ct)
    {
        if (_version is not null) return _version;
        using var request = new HttpRequestMessage(HttpMethod.Get, "_ping");
        using HttpResponseMessage response = await SendRawAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
        string server = response.Headers.TryGetValues("Api-Version", out var values) ? values.First() : MinApiVersion;
        _version = CompareVersions(server, MaxApiVersion) < 0 ? server : MaxApiVersion;
        return _version;
    }

    public static int CompareVersions(string a, string b)
    {
        int[] x = a.Split('.').Select(p => int.TryParse(p, CultureInfo.InvariantCulture, out int n) ? n : 0).ToArray();
        int[] y = b.Split('.').Select(p => int.TryParse(p, CultureInfo.InvariantCulture, out int n) ? n : 0).ToArray();
        for (int i = 0; i < Math.Max(x.Length, y.Length); i++)
        {
            int c = (i < x.Length ? x[i] : 0).CompareTo(i < y.Length ? y[i] : 0);
            if (c != 0) return c;
        }
        return 0;
    }

    /// <summary>The versioned path and query: <c>/v1.47/containers/json?all=1</c>.</summary>
    public async Task<string> PathAsync(string path, Query? query, CancellationToken ct)
        => $"/v{await VersionAsync(ct).ConfigureAwait(false)}{path}{query}";

    /// <summary>
    /// Sends a request at the negotiated version, or at <see cref="MaxApiVersion"/> while none is
    /// negotiated (see the class comment): a daemon's "client version … is too new" then makes it
    /// ping and send again. <paramref name="replayable"/> false pings first instead.
    /// </summary>
    private async Task<T> AtVersionAsync<T>(string path, Query? query, bool replayable, Func<string, Task<T>> send, CancellationToken ct)
    {
        if (_version is not null || !replayable) return await send(await PathAsync(path, query, ct).ConfigureAwait(false)).ConfigureAwait(false);
        T result;
        try
        {
            result = await send($"/v{MaxApiVersion}{path}{query}").ConfigureAwait(false);
        }
        // dockerd answers "client version … is too new" with a 400, and may close the connection
        // before it has read the request's body (the client's write then fails with EPIPE). Either
        // way a ping tells whether the version was the cause; only then is the request sent again.
        catch (Exception e) when (e is DaemonException { Status: HttpStatusCode.BadRequest } or HttpRequestException or IOException)
        {
            if (await VersionAsync(ct).ConfigureAwait(false) == MaxApiVersion) throw;
            return await send(await PathAsync(path, query, ct).ConfigureAwait(false)).ConfigureAwait(false);
        }
        _version ??= MaxApiVersion;
        return result;
    }

    public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, Query? query = null, HttpContent? body = null,
        CancellationToken ct = default, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead,
        IEnumerable<KeyValuePair<string, string>>? headers = null)
        // A byte array (JSON) goes out again as it is; a stream would be consumed by the first try.
        => AtVersionAsync(path, query, replayable: body is null or ByteArrayContent, async pathAndQuery =>
        {
            var request = new HttpRequestMessage(method, pathAndQuery) { Content = body };
            if (headers is not null)
                foreach (var (k, v) in headers) request.Headers.TryAddWithoutValidation(k, v);
            HttpResponseMessage response = await SendRawAsync(request, completion, ct).ConfigureAwait(false);
            if ((int)response.StatusCode >= 400)
            {
                using (response) throw await DaemonException.FromResponseAsync(response, ct).ConfigureAwait(false);
            }
            return response;
        }, ct);

    private async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken ct)
    {
        try
        {
            return await _http.SendAsync(request, completion, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (Unwrap<DaemonUnreachableException>(e) is { } unreachable)
        {
            throw unreachable;
        }
    }

    private static T? Unwrap<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
            if (e is T t) return t;
        return null;
    }

    public async Task<JsonNode?> GetJsonAsync(string path, Query? query = null, CancellationToken ct = default)
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, path, query, ct: ct).ConfigureAwait(false);
        return await ReadJsonAsync(response, ct).ConfigureAwait(false);
    }

    public async Task<JsonNode?> PostJsonAsync(string path, Query? query = null, JsonNode? body = null, CancellationToken ct = default)
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, path, query, body is null ? null : Json(body), ct).ConfigureAwait(false);
        return await ReadJsonAsync(response, ct).ConfigureAwait(false);
    }

    public async Task PostAsync(string path, Query? query = null, CancellationToken ct = default)
    {
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, path, query, ct: ct).ConfigureAwait(false);
    }

    public static async Task<JsonNode?> ReadJsonAsync(HttpResponseMessage response, CancellationToken ct)
    {
        byte[] bytes = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return bytes.Length == 0 ? null : JsonNode.Parse(bytes);
    }

    public static HttpContent Json(JsonNode body)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body.ToJsonString()));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    /// <summary>A connection taken over by the daemon (attach, exec start): <c>Connection: Upgrade</c>, <c>Upgrade: tcp</c>.</summary>
    public Task<HijackedConnection> HijackAsync(string path, Query? query, JsonNode? body, CancellationToken ct)
        => AtVersionAsync(path, query, replayable: true, pathAndQuery => HijackedConnection.OpenAsync(this, pathAndQuery, body, ct), ct);

    public void Dispose() => _http.Dispose();
}

/// <summary>A query string built in order, values escaped.</summary>
internal sealed class Query
{
    private readonly StringBuilder _sb = new();

    public Query Add(string key, string? value)
    {
        if (value is null) return this;
        _sb.Append(_sb.Length == 0 ? '?' : '&').Append(Uri.EscapeDataString(key)).Append('=').Append(Uri.EscapeDataString(value));
        return this;
    }

    public Query Add(string key, bool value, bool always = false) => value || always ? Add(key, value ? "1" : "0") : this;

    public override string ToString() => _sb.ToString();
}

/// <summary>An error the daemon answered with (<c>{"message": …}</c>); printed as docker does: <c>Error response from daemon: …</c>.</summary>
internal sealed class DaemonException(HttpStatusCode status, string message) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;

    public static async Task<DaemonException> FromResponseAsync(HttpResponseMessage response, CancellationToken ct)
    {
        string text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        return new DaemonException(response.StatusCode, MessageOf(text, response.StatusCode));
    }

    public static string MessageOf(string body, HttpStatusCode status)
    {
        try
        {
            if (JsonNode.Parse(body) is JsonObject o && o["message"] is JsonValue v) return v.GetValue<string>();
        }
        catch (JsonException)
        {
        }
        return body.Trim() is { Length: > 0 } t ? t : $"{(int)status} {status}";
    }
}

/// <summary>Nothing listens on the socket.</summary>
internal sealed class DaemonUnreachableException(string host, Exception inner)
    : Exception($"Cannot connect to berthd at {host}. Is berthd running? Start it with: sudo berthd &", inner);
