using System.Net;
using System.Text;

namespace Berth.Tests.Shared;

/// <summary>
/// A registry index with Docker Hub's v1 search API on 127.0.0.1 (Debian's Distribution
/// registry has none): <c>/v1/_ping</c> as dockerd's endpoint check wants it, and
/// <c>/v1/search?q=…&amp;n=…</c> answering a fixed set of repositories whose names contain q.
/// Stopped on Dispose.
/// </summary>
internal sealed class SearchIndexServer : IDisposable
{
    private readonly HttpListener _listener;
    private readonly Task _loop;

    public SearchIndexServer()
    {
        _listener = LoopbackListener.Start(out int port);
        Port = port;
        _loop = Task.Run(() => LoopbackListener.ServeAsync(_listener, HandleAsync));
    }

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";

    /// <summary>The queries asked, as "q n".</summary>
    public List<string> Queries { get; } = [];

    private static readonly (string Name, string Description, int Stars, bool Official)[] Repositories =
    [
        ("busybox", "Busybox base image.", 3300, true),
        ("library/busybox-extras", "Busybox with the applets the official image leaves out, and a description long enough to be cut", 12, false),
        ("someone/busybox-tools", "tools\nacross lines", 0, false),
    ];

    private async Task HandleAsync(HttpListenerContext context)
    {
        HttpListenerResponse response = context.Response;
        string body;
        if (context.Request.Url!.AbsolutePath == "/v1/_ping")
        {
            response.Headers["X-Docker-Registry-Version"] = "0.6.0";
            body = "true";
        }
        else if (context.Request.Url.AbsolutePath == "/v1/search")
        {
            string q = context.Request.QueryString["q"] ?? "";
            int n = int.TryParse(context.Request.QueryString["n"], out int parsed) ? parsed : 25;
            lock (Queries) Queries.Add($"{q} {n}");
            var found = Repositories.Where(r => r.Name.Contains(q, StringComparison.Ordinal)).Take(n).Select(r =>
                $"{{\"name\":{Json(r.Name)},\"description\":{Json(r.Description)},\"star_count\":{r.Stars},\"is_official\":{(r.Official ? "true" : "false")},\"is_automated\":false}}");
            body = $"{{\"num_results\":{found.Count()},\"query\":{Json(q)},\"results\":[{string.Join(',', found)}]}}";
            response.ContentType = "application/json";
        }
        else
        {
            response.StatusCode = 404;
            body = "404 page not found";
        }
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        response.ContentLength64 = bytes.Length;
        await response.OutputStream.WriteAsync(bytes);
    }

    private static string Json(string s) => System.Text.Json.JsonSerializer.Serialize(s, SearchJson.Default.String);

    public void Dispose()
    {
        // Close alone: the managed HttpListener's Close after a Stop binds the port again to remove
        // its prefix, and fails with "Address already in use" when another test has taken it since.
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class SearchJson : System.Text.Json.Serialization.JsonSerializerContext;
