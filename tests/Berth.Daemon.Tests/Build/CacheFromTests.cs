using System.Formats.Tar;
using System.Text;
using System.Text.Json;

namespace Berth.Daemon.Tests.Build;

/// <summary>
/// <c>--cache-from</c> (<c>cachefrom=["image"]</c>) as dockerd 20.10's classic builder: an image built by
/// one berthd, saved and loaded into a fresh one, is that one's cache step by step (its history matched),
/// the build ending on the very same image; with the option the local cache counts only where it leads to
/// a listed image, and a listed image that is not there leaves the build with no cache at all.
/// </summary>
public sealed class CacheFromTests : IAsyncLifetime
{
    private DaemonScope _builder = null!;
    private DaemonScope _fresh = null!;

    private const string Dockerfile = """
        FROM busybox
        ENV GREETING=hello
        RUN echo "$GREETING" > /greeting && cat /proc/sys/kernel/random/uuid > /made-by-this-run
        COPY file.txt /file.txt
        CMD ["cat", "/greeting"]
        """;

    public async Task InitializeAsync()
    {
        _builder = await DaemonScope.StartAsync(o => o with { Bridge = "none" });
        _fresh = await DaemonScope.StartAsync(o => o with { Bridge = "none" });
        await _builder.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (_fresh is not null) await _fresh.DisposeAsync();
        }
        finally
        {
            if (_builder is not null) await _builder.DisposeAsync();
        }
    }

    private static byte[] Context(string fileContent)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach ((string path, string content) in (IEnumerable<(string, string)>)[("Dockerfile", Dockerfile), ("file.txt", fileContent)])
            {
                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path)
                {
                    Mode = (UnixFileMode)0x1A4,
                    ModificationTime = DateTimeOffset.UnixEpoch,
                    DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
                });
            }
        }
        return tar.ToArray();
    }

    /// <summary>Builds; returns the output text and the final image ID (the last aux message).</summary>
    private static async Task<(string Output, string Id)> BuildAsync(DaemonScope daemon, string fileContent, string query = "")
    {
        using var content = new ByteArrayContent(Context(fileContent));
        content.Headers.ContentType = new("application/x-tar");
        using HttpResponseMessage response = await daemon.Client.PostAsync("/build?rm=1" + query, content);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode && !body.Contains("\"errorDetail\"", StringComparison.Ordinal), body);
        var output = new StringBuilder();
        string? id = null;
        foreach (string line in body.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            JsonElement message = JsonDocument.Parse(line).RootElement;
            if (message.TryGetProperty("stream", out JsonElement text)) output.Append(text.GetString());
            if (message.TryGetProperty("aux", out JsonElement aux)) id = aux.GetProperty("ID").GetString();
        }
        return (output.ToString(), id!);
    }

    private static int UsingCache(string output) => output.Split('\n').Count(l => l == " ---> Using cache");

    private static string CacheFrom(params string[] images) => "&cachefrom=" + Uri.EscapeDataString(JsonSerializer.Serialize(images));

    [Fact]
    public async Task An_image_built_elsewhere_is_the_cache_of_a_fresh_daemon()
    {
        (_, string builtId) = await BuildAsync(_builder, "one", "&t=app:1");
        byte[] archive = await _builder.Client.GetByteArrayAsync("/images/get?names=busybox:latest&names=app:1");
        using (var load = new ByteArrayContent(archive))
        using (HttpResponseMessage loaded = await _fresh.Client.PostAsync("/images/load?quiet=1", load))
            Assert.True(loaded.IsSuccessStatusCode, await loaded.Content.ReadAsStringAsync());

        // No build history on the fresh daemon: without --cache-from every step runs (a new RUN layer, a new image).
        (string output, string id) = await BuildAsync(_fresh, "one");
        Assert.Equal(0, UsingCache(output));
        Assert.NotEqual(builtId, id);

        // With it, each step is taken from the loaded image, and the build ends on that very image; the local
        // cache of the build just above (not a parent of app:1) is not used.
        (output, id) = await BuildAsync(_fresh, "one", CacheFrom("app:1") + "&t=again:1");
        Assert.Equal(4, UsingCache(output));
        Assert.DoesNotContain("Running in", output);
        Assert.Equal(builtId, id);
        Assert.Equal(builtId, (await _fresh.GetJsonAsync("/images/again:1/json")).GetProperty("Id").GetString());

        // A changed file: ENV and RUN still come from the source, COPY and what follows run.
        (output, id) = await BuildAsync(_fresh, "two", CacheFrom("app:1"));
        Assert.Equal(2, UsingCache(output));
        Assert.NotEqual(builtId, id);
        JsonElement history = await _fresh.GetJsonAsync($"/images/{id}/history");
        JsonElement[] layers = [.. history.EnumerateArray()];
        JsonElement[] sourceLayers = [.. (await _fresh.GetJsonAsync("/images/app:1/history")).EnumerateArray()];
        // The RUN step's layer is the source's (its size and line), not a new run's.
        Assert.Equal(sourceLayers[2].GetProperty("Size").GetInt64(), layers[2].GetProperty("Size").GetInt64());
        Assert.Equal(sourceLayers[2].GetProperty("CreatedBy").GetString(), layers[2].GetProperty("CreatedBy").GetString());
    }

    [Fact]
    public async Task With_cache_from_the_local_cache_counts_only_on_the_way_to_a_listed_image()
    {
        await _fresh.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
        (_, string first) = await BuildAsync(_fresh, "local", "&t=local:1");
        (string output, string again) = await BuildAsync(_fresh, "local");
        Assert.Equal(4, UsingCache(output));
        Assert.Equal(first, again);

        // A listed image that does not exist is skipped, as dockerd skips it: no cache at all then.
        (output, string missing) = await BuildAsync(_fresh, "local", CacheFrom("no-such-image:1"));
        Assert.Equal(0, UsingCache(output));
        Assert.NotEqual(first, missing);

        // The locally built image listed: its steps hit again and the build ends on it.
        (output, string listed) = await BuildAsync(_fresh, "local", CacheFrom("local:1"));
        Assert.Equal(4, UsingCache(output));
        Assert.Equal(first, listed);

        (int status, string body) = await PostRawAsync(_fresh, "&cachefrom=not-json");
        Assert.Equal(500, status);
        Assert.Contains("cachefrom", body);
    }

    private static async Task<(int, string)> PostRawAsync(DaemonScope daemon, string query)
    {
        using var content = new ByteArrayContent(Context("x"));
        using HttpResponseMessage response = await daemon.Client.PostAsync("/build?rm=1" + query, content);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
