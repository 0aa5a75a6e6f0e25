using System.IO.Compression;
using System.Net;
using System.Text.Json;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Api;

/// <summary>
/// <c>POST /images/create?fromSrc=URL</c> (<c>docker import URL</c>), as dockerd's ImportImage: the tar
/// downloaded from an HTTP server of the test's own (gzip and xz, as import takes them), dockerd's progress
/// messages, the URL in the image's comment, http:// added to a URL without a scheme, and its errors.
/// </summary>
public sealed class ImportFromUrlTests : IAsyncLifetime
{
    private DaemonScope _daemon = null!;
    private TempDirectory _config = null!;
    private HttpListener _listener = null!;
    private Task _server = null!;
    private int _port;
    private readonly Dictionary<string, byte[]> _files = new(StringComparer.Ordinal);

    public async Task InitializeAsync()
    {
        _config = new TempDirectory("docker-config");
        byte[] rootfs = TestRootfs.BusyboxTar();
        using (var gz = new MemoryStream())
        {
            using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(rootfs);
            _files["/rootfs.tar.gz"] = gz.ToArray();
        }
        _files["/rootfs.tar.xz"] = CompressTool.Compress("xz", rootfs);
        _files["/junk"] = "this is not a tar archive, not even close to one........................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................"u8.ToArray();
        _listener = LoopbackListener.Start(out _port);
        _server = LoopbackListener.ServeAsync(_listener, async context =>
        {
            if (context.Request.Url!.AbsolutePath == "/huge-error")
            {
                // A 500 with 8 MiB of body, of which berthd reads only what its message quotes and hangs up.
                context.Response.StatusCode = 500;
                byte[] chunk = new byte[64 * 1024];
                Array.Fill(chunk, (byte)'x');
                try
                {
                    for (int i = 0; i < 128; i++) await context.Response.OutputStream.WriteAsync(chunk);
                }
                catch (HttpListenerException)
                {
                }
                return;
            }
            if (!_files.TryGetValue(context.Request.Url!.AbsolutePath, out byte[]? body))
            {
                context.Response.StatusCode = 404;
                await context.Response.OutputStream.WriteAsync("nothing here\n"u8.ToArray());
                return;
            }
            context.Response.ContentType = "application/octet-stream";
            context.Response.ContentLength64 = body.Length;
            await context.Response.OutputStream.WriteAsync(body);
        });
        _daemon = await DaemonScope.StartAsync(o => o with { Bridge = "none" });
    }

    public async Task DisposeAsync()
    {
        // Each step whatever the others did: the temp directories go even when the daemon or the listener fails to stop.
        try
        {
            if (_daemon is not null) await _daemon.DisposeAsync();
        }
        finally
        {
            try
            {
                await LoopbackListener.StopAsync(_listener, _server);
            }
            finally
            {
                _config.Dispose();
            }
        }
    }

    private string Url(string path) => $"http://127.0.0.1:{_port}{path}";

    private async Task<(int Status, JsonElement[] Messages, string Body)> ImportAsync(string fromSrc, string query = "")
    {
        using var empty = new ByteArrayContent([]);
        using HttpResponseMessage response = await _daemon.Client.PostAsync($"/images/create?fromSrc={Uri.EscapeDataString(fromSrc)}{query}", empty);
        string body = await response.Content.ReadAsStringAsync();
        JsonElement[] messages = response.IsSuccessStatusCode
            ? [.. body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())]
            : [];
        return ((int)response.StatusCode, messages, body);
    }

    [Theory]
    [InlineData("/rootfs.tar.gz")]
    [InlineData("/rootfs.tar.xz")]
    public async Task Imports_the_tar_a_url_serves(string path)
    {
        (int status, JsonElement[] messages, string body) = await ImportAsync(Url(path), "&repo=fromurl&tag=1");
        Assert.True(status == 200, body);
        Assert.DoesNotContain("errorDetail", body);
        Assert.Equal($"Downloading from {Url(path)}", messages[0].GetProperty("status").GetString());
        JsonElement last = messages.Last(m => m.GetProperty("status").GetString() == "Importing");
        Assert.Equal(_files[path].Length, last.GetProperty("progressDetail").GetProperty("current").GetInt64());
        Assert.Equal(_files[path].Length, last.GetProperty("progressDetail").GetProperty("total").GetInt64());
        string id = messages[^1].GetProperty("status").GetString()!;
        Assert.StartsWith("sha256:", id);

        JsonElement image = await _daemon.GetJsonAsync("/images/fromurl:1/json");
        Assert.Equal(id, image.GetProperty("Id").GetString());
        Assert.Equal("Imported from " + Url(path), image.GetProperty("Comment").GetString());
        Assert.True(image.GetProperty("Size").GetInt64() > 100_000);
    }

    [Fact]
    public async Task A_url_without_a_scheme_is_fetched_over_http()
    {
        string bare = $"127.0.0.1:{_port}/rootfs.tar.gz";
        (int status, JsonElement[] messages, string body) = await ImportAsync(bare, "&repo=bare&tag=1&message=" + Uri.EscapeDataString("my message"));
        Assert.True(status == 200, body);
        Assert.Equal("Downloading from http://" + bare, messages[0].GetProperty("status").GetString());
        Assert.Equal("my message", (await _daemon.GetJsonAsync("/images/bare:1/json")).GetProperty("Comment").GetString());
    }

    [Fact]
    public async Task Failures_in_dockerds_words()
    {
        (int status, _, string body) = await ImportAsync(Url("/missing.tar"), "&repo=missing");
        Assert.Equal(404, status);
        Assert.Equal($"failed to GET {Url("/missing.tar")} with status 404 Not Found: nothing here", JsonDocument.Parse(body).RootElement.GetProperty("message").GetString());

        // An error answer's body is quoted up to 64 KiB, not read whole into memory.
        (status, _, body) = await ImportAsync(Url("/huge-error"), "&repo=huge");
        Assert.Equal(500, status);
        string message = JsonDocument.Parse(body).RootElement.GetProperty("message").GetString()!;
        Assert.StartsWith($"failed to GET {Url("/huge-error")} with status 500 Internal Server Error: xxx", message);
        Assert.True(message.Length < 65 * 1024, $"the message quotes {message.Length} bytes of the error body");

        int closed = RegistryProcess.FreePort();
        (status, _, body) = await ImportAsync($"http://127.0.0.1:{closed}/x.tar");
        Assert.Equal(500, status);
        Assert.Contains("connection refused", body);

        // Downloaded, then refused: the stream has begun, the error is in it, and no image is left.
        (status, JsonElement[] messages, body) = await ImportAsync(Url("/junk"), "&repo=junk");
        Assert.Equal(200, status);
        Assert.True(messages[^1].TryGetProperty("errorDetail", out _), body);
        await _daemon.GetJsonAsync("/images/junk:latest/json", expectedStatus: 404);
    }

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Docker_import_url(string binary)
    {
        var docker = new DockerCli(binary, _daemon.DockerHost, _config.Path);
        string output = docker.Ok("import", Url("/rootfs.tar.gz"), "cli:imported");
        Assert.StartsWith("sha256:", output.Trim().Split('\n')[^1]);
        Assert.Contains("Imported from " + Url("/rootfs.tar.gz"), docker.Ok("image", "inspect", "--format", "{{.Comment}}", "cli:imported"));
    }
}
