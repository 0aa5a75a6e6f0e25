using System.Net;
using System.Net.Sockets;
using System.Text;
using Berth.Daemon.Api;

namespace Berth.Daemon.Build;

/// <summary>
/// dockerd's remotecontext.GetWithStatusError: a GET whose 4xx/5xx answer is an error naming the
/// URL, the status and the body, with the status dockerd's errdefs give it (404, 400, 401, 403, else
/// 500); a URL that cannot be reached is a 500 (404 when its host name does not resolve). Used by
/// remote build contexts and by <c>docker import URL</c>.
/// </summary>
public static class RemoteFetch
{
    // As Go's http.Get: proxies from the environment, redirects followed, no overall timeout (a large
    // context takes what it takes; the request's cancellation ends it).
    private static readonly HttpClient Client = new(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>The response with its body still to read; the caller disposes it.</summary>
    public static async Task<HttpResponseMessage> GetAsync(string url, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await Client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ApiException(e.InnerException is SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.NoData } ? 404 : 500,
                $"Get \"{url}\": {Describe(e, url)}", e);
        }
        catch (Exception e) when (e is InvalidOperationException or UriFormatException or ArgumentException)
        {
            throw ApiException.BadRequest($"parse \"{url}\": {e.Message}");
        }
        int status = (int)response.StatusCode;
        if (status < 400) return response;
        using (response)
        {
            string message = $"failed to GET {url} with status {status} {response.ReasonPhrase}";
            string body;
            try
            {
                body = await ReadErrorBodyAsync(response, cancellationToken);
            }
            catch (HttpRequestException)
            {
                throw new ApiException(500, message + ": error reading body");
            }
            throw new ApiException(status switch { 404 or 400 or 401 or 403 => status, _ => 500 }, message + ": " + body);
        }
    }

    /// <summary>Of an error answer, what fits in the message: a server that sends gigabytes with its 500 gets its first 64 KiB quoted.</summary>
    private static async Task<string> ReadErrorBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        const int MaxErrorBody = 64 * 1024;
        await using Stream stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        byte[] buffer = new byte[MaxErrorBody];
        int length = 0, n;
        while (length < buffer.Length && (n = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0) length += n;
        return Encoding.UTF8.GetString(buffer, 0, length).Trim();
    }

    /// <summary>Go's words for the usual transport failures ("dial tcp 127.0.0.1:1: connect: connection refused").</summary>
    private static string Describe(HttpRequestException e, string url)
    {
        string address = Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) ? $"{uri.Host}:{uri.Port}" : url;
        return e.InnerException switch
        {
            SocketException { SocketErrorCode: SocketError.ConnectionRefused } => $"dial tcp {address}: connect: connection refused",
            SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.NoData } => $"dial tcp: lookup {uri?.Host}: no such host",
            SocketException { SocketErrorCode: SocketError.TimedOut } => $"dial tcp {address}: i/o timeout",
            _ => e.Message,
        };
    }
}
