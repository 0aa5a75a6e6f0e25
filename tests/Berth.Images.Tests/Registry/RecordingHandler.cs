using System.Collections.Concurrent;
using System.Net.Http.Headers;

namespace Berth.Images.Tests.Registry;

/// <summary>Wraps a real handler: counts requests by "METHOD path-kind", and can tamper with response bodies.</summary>
internal sealed class RecordingHandler : DelegatingHandler
{
    public RecordingHandler() : base(new SocketsHttpHandler()) { }

    public ConcurrentQueue<string> Requests { get; } = new();

    /// <summary>Replaces the body of a response to a request whose path ends with the given suffix.</summary>
    public Func<HttpRequestMessage, byte[], byte[]?>? Tamper { get; set; }

    /// <summary>Answers a request instead of the registry when it returns a response.</summary>
    public Func<HttpRequestMessage, HttpResponseMessage?>? Intercept { get; set; }

    public int Count(string method, string pathContains) => Requests.Count(r => r.StartsWith(method + " ", StringComparison.Ordinal) && r.Contains(pathContains, StringComparison.Ordinal));

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Requests.Enqueue($"{request.Method} {request.RequestUri!.AbsolutePath}");
        if (Intercept?.Invoke(request) is { } canned) return canned;
        HttpResponseMessage response = await base.SendAsync(request, cancellationToken);
        if (Tamper is { } tamper && response.IsSuccessStatusCode && request.Method == HttpMethod.Get)
        {
            byte[] body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            if (tamper(request, body) is { } replaced)
            {
                MediaTypeHeaderValue? type = response.Content.Headers.ContentType;
                response.Content = new ByteArrayContent(replaced);
                response.Content.Headers.ContentType = type;
            }
            else
            {
                var restored = new ByteArrayContent(body);
                restored.Headers.ContentType = response.Content.Headers.ContentType;
                response.Content = restored;
            }
        }
        return response;
    }
}
