using System.Net;
using System.Text.Json;
using Berth.Daemon.Configuration;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Api;

/// <summary>
/// <c>--max-concurrent-downloads</c>, <c>--max-concurrent-uploads</c> and <c>--max-download-attempts</c>
/// as the pull and push streams of a real berthd show them, against Debian's Distribution registry
/// (and a front of it that fails layer downloads). Registry and front stopped, daemon and
/// directories removed at the end.
/// </summary>
public sealed class TransferSettingsTests
{
    private static async Task<DaemonScope> StartAsync(params string[] args)
    {
        DaemonOptions parsed = DaemonArgs.Parse(args).Options;
        return await DaemonScope.StartAsync(o => o with
        {
            MaxConcurrentDownloads = parsed.MaxConcurrentDownloads,
            MaxConcurrentUploads = parsed.MaxConcurrentUploads,
            MaxDownloadAttempts = parsed.MaxDownloadAttempts,
        });
    }

    private static DockerCli Docker(DaemonScope daemon, TempDirectory config)
        => new((string)Assert.Single(DockerCli.Installed().Take(1))[0], daemon.DockerHost, config.Path);

    /// <summary>The (status, id) of each line of a JSON progress stream.</summary>
    private static async Task<(string Body, List<(string? Status, string? Id)> Lines)> StreamAsync(HttpResponseMessage response)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        var lines = body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .Select(e => (e.TryGetProperty("status", out JsonElement s) ? s.GetString() : null, e.TryGetProperty("id", out JsonElement i) ? i.GetString() : null))
            .ToList();
        return (body, lines);
    }

    private static async Task<HttpResponseMessage> PushAsync(DaemonScope daemon, string name)
    {
        using var push = new HttpRequestMessage(HttpMethod.Post, $"/images/{name}/push");
        push.Headers.Add("X-Registry-Auth", "e30="); // {}
        return await daemon.Client.SendAsync(push);
    }

    [Fact]
    public async Task One_download_and_one_upload_at_a_time_show_the_other_layers_waiting()
    {
        using var registry = new RegistryProcess();
        using var config = new TempDirectory("docker-config");
        await using DaemonScope daemon = await StartAsync("--max-concurrent-downloads", "1", "--max-concurrent-uploads", "1");
        DockerCli docker = Docker(daemon, config);

        // A three-layer image: busybox, then two commits.
        string name = $"{registry.Host}/test/layers:v1";
        await daemon.ImportBusyboxAsync("base:1");
        docker.Ok("run", "--network", "none", "--name", "one", "base:1", "touch", "/a");
        docker.Ok("commit", "one", "two:1");
        docker.Ok("run", "--network", "none", "--name", "two", "two:1", "touch", "/b");
        docker.Ok("commit", "two", name);

        // Push: four blobs (config and three layers), one slot: three of them wait, two or three of them layers.
        using (HttpResponseMessage pushed = await PushAsync(daemon, name))
        {
            var (body, lines) = await StreamAsync(pushed);
            Assert.DoesNotContain("errorDetail", body);
            Assert.Equal(3, lines.Count(l => l.Status == "Preparing"));
            Assert.InRange(lines.Count(l => l.Status == "Waiting"), 2, 3);
            Assert.Equal(3, lines.Count(l => l.Status == "Pushed"));
        }

        // Pull into an empty store: every layer announced, two wait for the one slot, all complete.
        docker.Ok("rm", "one", "two");
        docker.Ok("rmi", name, "two:1", "base:1");
        using HttpResponseMessage pull = await daemon.Client.PostAsync($"/images/create?fromImage={registry.Host}/test/layers&tag=v1", null);
        var (pullBody, pullLines) = await StreamAsync(pull);
        Assert.DoesNotContain("errorDetail", pullBody);
        Assert.Equal(3, pullLines.Count(l => l.Status == "Pulling fs layer"));
        Assert.Equal(2, pullLines.Count(l => l.Status == "Waiting"));
        Assert.Equal(3, pullLines.Count(l => l.Status == "Pull complete"));
        // A layer that waited starts only after another finished downloading.
        int firstWaiting = pullLines.FindIndex(l => l.Status == "Waiting");
        string waiting = pullLines[firstWaiting].Id!;
        int itsStart = pullLines.FindIndex(l => l.Status == "Downloading" && l.Id == waiting);
        Assert.Contains(pullLines.Take(itsStart), l => l.Status == "Download complete" && l.Id != waiting);
    }

    [Fact]
    public async Task A_layer_download_is_tried_max_download_attempts_times_then_reported()
    {
        using var registry = new RegistryProcess();
        using var config = new TempDirectory("docker-config");
        await using DaemonScope daemon = await StartAsync("--max-download-attempts", "2");
        string name = $"{registry.Host}/test/attempts:v1";
        await daemon.ImportBusyboxAsync(name);
        using (HttpResponseMessage pushed = await PushAsync(daemon, name))
            Assert.DoesNotContain("errorDetail", (await StreamAsync(pushed)).Body);
        Docker(daemon, config).Ok("rmi", name);

        string layer = await LayerDigestAsync(registry, "test/attempts", "v1");
        using var front = new FailingFront(registry.Host, path => path.EndsWith("/blobs/" + layer, StringComparison.Ordinal));
        using HttpResponseMessage pull = await daemon.Client.PostAsync($"/images/create?fromImage=127.0.0.1:{front.Port}/test/attempts&tag=v1", null);
        var (body, lines) = await StreamAsync(pull);

        Assert.Equal(2, front.Failed);
        Assert.Contains(lines, l => l.Status == "Retrying in 1 second" && l.Id == layer[7..19]);
        Assert.Contains($"downloading blob {layer} failed after 2 attempts", body);
        Assert.Contains("HTTP 503", body);
    }

    private static async Task<string> LayerDigestAsync(RegistryProcess registry, string repository, string tag)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{registry.Host}/v2/{repository}/manifests/{tag}");
        request.Headers.Accept.ParseAdd("application/vnd.docker.distribution.manifest.v2+json");
        request.Headers.Accept.ParseAdd("application/vnd.oci.image.manifest.v1+json");
        using HttpResponseMessage response = await http.SendAsync(request);
        string manifest = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, manifest);
        return JsonDocument.Parse(manifest).RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;
    }

    /// <summary>
    /// A registry front on 127.0.0.1: answers 503 to the GETs <c>fail</c> picks (counting them) and
    /// passes every other request on to the registry.
    /// </summary>
    private sealed class FailingFront : IDisposable
    {
        private readonly HttpListener _listener;
        private readonly HttpClient _upstream = new();
        private readonly Task _serving;
        private int _failed;

        public FailingFront(string upstream, Func<string, bool> fail)
        {
            _listener = LoopbackListener.Start(out int port);
            Port = port;
            _serving = LoopbackListener.ServeAsync(_listener, async context =>
            {
                string path = context.Request.Url!.AbsolutePath;
                if (context.Request.HttpMethod == "GET" && fail(path))
                {
                    Interlocked.Increment(ref _failed);
                    context.Response.StatusCode = 503;
                    return;
                }
                using var request = new HttpRequestMessage(new HttpMethod(context.Request.HttpMethod), $"http://{upstream}{context.Request.RawUrl}");
                foreach (string accept in context.Request.AcceptTypes ?? []) request.Headers.Accept.ParseAdd(accept);
                using HttpResponseMessage response = await _upstream.SendAsync(request);
                byte[] body = await response.Content.ReadAsByteArrayAsync();
                context.Response.StatusCode = (int)response.StatusCode;
                if (response.Content.Headers.ContentType is { } type) context.Response.ContentType = type.ToString();
                if (response.Headers.TryGetValues("Docker-Content-Digest", out var digest)) context.Response.Headers["Docker-Content-Digest"] = digest.First();
                context.Response.ContentLength64 = response.Content.Headers.ContentLength ?? body.Length;
                if (context.Request.HttpMethod != "HEAD") await context.Response.OutputStream.WriteAsync(body);
            });
        }

        public int Port { get; }
        public int Failed => Volatile.Read(ref _failed);

        public void Dispose()
        {
            _listener.Stop();
            _listener.Close();
            _serving.Wait(TimeSpan.FromSeconds(5));
            _upstream.Dispose();
        }
    }
}
