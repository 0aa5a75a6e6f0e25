using System.Net;
using System.Text.Json;

namespace Berth.Daemon.Tests.Api;

public sealed class ImagesApiTests : IAsyncLifetime
{
    private DaemonScope _daemon = null!;

    public async Task InitializeAsync() => _daemon = await DaemonScope.StartAsync();
    public async Task DisposeAsync() => await _daemon.DisposeAsync();

    /// <summary>
    /// Image Size, as dockerd reports it (and `docker images` shows it): what the layers hold unpacked
    /// (regular files, symlinks by their target's length), not their blobs; each layer's in history.
    /// </summary>
    [Fact]
    public async Task Image_size_is_what_the_layers_hold_unpacked()
    {
        await _daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
        long expected = 0;
        using (var tar = new System.Formats.Tar.TarReader(new MemoryStream(TestRootfs.BusyboxTar())))
            while (tar.GetNextEntry() is { } entry)
                expected += entry.EntryType == System.Formats.Tar.TarEntryType.SymbolicLink ? entry.LinkName.Length : entry.EntryType == System.Formats.Tar.TarEntryType.RegularFile ? entry.Length : 0;
        JsonElement imported = await _daemon.GetJsonAsync("/v1.41/images/busybox/json");
        Assert.Equal(expected, imported.GetProperty("Size").GetInt64());
        Assert.Equal(expected, imported.GetProperty("VirtualSize").GetInt64());
        Assert.Equal(expected, (await _daemon.GetJsonAsync("/v1.41/images/json"))[0].GetProperty("Size").GetInt64());

        // A commit's layer: 1000 bytes of file and a symlink to it (its target "data.bin", 8 bytes).
        string id = await Containers.ContainersApiTests.CreateAsync(_daemon.Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "head -c 1000 /dev/zero > /data.bin && busybox ln -s data.bin /link" }, HostConfig = new { NetworkMode = "none" } });
        using (HttpResponseMessage start = await _daemon.Client.PostAsync($"/containers/{id}/start", null))
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
        using (HttpResponseMessage wait = await _daemon.Client.PostAsync($"/containers/{id}/wait", null))
            Assert.True(wait.IsSuccessStatusCode);
        using (HttpResponseMessage commit = await System.Net.Http.Json.HttpClientJsonExtensions.PostAsJsonAsync(_daemon.Client, $"/commit?container={id}&repo=committed&tag=1", new { }))
            Assert.True(commit.IsSuccessStatusCode, await commit.Content.ReadAsStringAsync());
        Assert.Equal(expected + 1008, (await _daemon.GetJsonAsync("/images/committed:1/json")).GetProperty("Size").GetInt64());
        Assert.Equal(id, (await _daemon.GetJsonAsync("/v1.41/images/committed:1/json")).GetProperty("Container").GetString()); // as dockerd's commit records it
        JsonElement history = await _daemon.GetJsonAsync("/images/committed:1/history");
        Assert.Equal([1008L, expected], history.EnumerateArray().Select(h => h.GetProperty("Size").GetInt64()));

        // df counts each layer once, by the same sizes.
        JsonElement df = await _daemon.GetJsonAsync("/system/df?type=image");
        Assert.Equal(expected + 1008, df.GetProperty("LayersSize").GetInt64());
        Assert.All(df.GetProperty("Images").EnumerateArray(), i => Assert.Equal(expected, i.GetProperty("SharedSize").GetInt64()));
    }

    [Fact]
    public async Task Import_then_list_inspect_history()
    {
        string id = await _daemon.ImportBusyboxAsync("example.com/team/bb:1.0", "CMD [\"/bin/sh\"]");
        Assert.StartsWith("sha256:", id);

        JsonElement list = await _daemon.GetJsonAsync("/v1.50/images/json");
        JsonElement image = Assert.Single(list.EnumerateArray());
        Assert.Equal(id, image.GetProperty("Id").GetString());
        Assert.Equal("example.com/team/bb:1.0", Assert.Single(image.GetProperty("RepoTags").EnumerateArray()).GetString());
        Assert.True(image.GetProperty("Size").GetInt64() > 0);
        Assert.Equal(-1, image.GetProperty("Containers").GetInt64());
        Assert.False(image.TryGetProperty("VirtualSize", out _)); // dropped in API 1.44
        Assert.True((await _daemon.GetJsonAsync("/v1.41/images/json"))[0].TryGetProperty("VirtualSize", out _));

        // Names with a registry host and slashes route to inspect.
        JsonElement inspect = await _daemon.GetJsonAsync("/images/example.com/team/bb:1.0/json");
        Assert.Equal(id, inspect.GetProperty("Id").GetString());
        Assert.Equal("/bin/sh", inspect.GetProperty("Config").GetProperty("Cmd")[0].GetString());
        // Every field of moby's container.Config, as dockerd shows them, where the image sets none.
        Assert.Equal(JsonValueKind.Null, inspect.GetProperty("Config").GetProperty("Env").ValueKind);
        Assert.Equal("", inspect.GetProperty("Config").GetProperty("Hostname").GetString());
        Assert.False(inspect.GetProperty("Config").GetProperty("Tty").GetBoolean());
        Assert.Equal(JsonValueKind.Null, inspect.GetProperty("ContainerConfig").GetProperty("Cmd").ValueKind);
        Assert.Equal("layers", inspect.GetProperty("RootFS").GetProperty("Type").GetString());
        Assert.Equal("linux", inspect.GetProperty("Os").GetString());
        Assert.Equal(id, (await _daemon.GetJsonAsync($"/images/{id[7..19]}/json")).GetProperty("Id").GetString());

        JsonElement history = await _daemon.GetJsonAsync("/images/example.com/team/bb:1.0/history");
        JsonElement top = history[0];
        Assert.Equal(id, top.GetProperty("Id").GetString());
        Assert.Equal("example.com/team/bb:1.0", top.GetProperty("Tags")[0].GetString());
        Assert.True(top.GetProperty("Created").GetInt64() > 0);
    }

    [Fact]
    public async Task Inspect_of_a_missing_image_is_404_No_such_image()
    {
        using HttpResponseMessage r = await _daemon.Client.GetAsync("/images/nothere:latest/json");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Equal("No such image: nothere:latest", JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Tag_then_remove_gives_Untagged_and_Deleted()
    {
        string id = await _daemon.ImportBusyboxAsync("bb:latest");
        using (HttpResponseMessage tag = await _daemon.Client.PostAsync("/images/bb:latest/tag?repo=localhost:5000/copy&tag=v2", null))
            Assert.Equal(HttpStatusCode.Created, tag.StatusCode);
        JsonElement tags = (await _daemon.GetJsonAsync("/images/json"))[0].GetProperty("RepoTags");
        Assert.Equal(new[] { "bb:latest", "localhost:5000/copy:v2" }, tags.EnumerateArray().Select(t => t.GetString()!).Order().ToArray());

        // By ID with names in two repositories: 409 unless forced.
        using (HttpResponseMessage conflict = await _daemon.Client.DeleteAsync($"/images/{id}"))
            Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);

        using (HttpResponseMessage untag = await _daemon.Client.DeleteAsync("/images/localhost:5000/copy:v2"))
        {
            Assert.Equal(HttpStatusCode.OK, untag.StatusCode);
            JsonElement items = JsonDocument.Parse(await untag.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("localhost:5000/copy:v2", Assert.Single(items.EnumerateArray()).GetProperty("Untagged").GetString());
        }
        using (HttpResponseMessage delete = await _daemon.Client.DeleteAsync("/images/bb"))
        {
            JsonElement items = JsonDocument.Parse(await delete.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("bb:latest", items[0].GetProperty("Untagged").GetString());
            Assert.Equal(id, items[1].GetProperty("Deleted").GetString());
        }
        Assert.Empty((await _daemon.GetJsonAsync("/images/json")).EnumerateArray());
        // The blobs went with it (no noprune).
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_daemon.Options.DataRoot, "content", "blobs", "sha256")));
    }

    [Fact]
    public async Task Filters_dangling_and_reference()
    {
        await _daemon.ImportBusyboxAsync("alpha/one:1");
        await _daemon.ImportBusyboxAsync("beta/two:2", "ENV A=1");
        string Filter(string json) => "/images/json?filters=" + Uri.EscapeDataString(json);

        JsonElement byRef = await _daemon.GetJsonAsync(Filter("""{"reference":{"alpha/*":true}}"""));
        Assert.Equal("alpha/one:1", Assert.Single(byRef.EnumerateArray()).GetProperty("RepoTags")[0].GetString());
        JsonElement legacy = await _daemon.GetJsonAsync(Filter("""{"reference":["beta/two"]}"""));
        Assert.Equal("beta/two:2", Assert.Single(legacy.EnumerateArray()).GetProperty("RepoTags")[0].GetString());

        // Another name of the image: its tag is not listed under the filter. An imported image has no
        // digest (dockerd's RepoDigests are the repositories it was pulled from or pushed to).
        using (HttpResponseMessage tag = await _daemon.Client.PostAsync("/images/alpha/one:1/tag?repo=gamma&tag=3", null))
            Assert.Equal(HttpStatusCode.Created, tag.StatusCode);
        JsonElement one = Assert.Single((await _daemon.GetJsonAsync(Filter("""{"reference":["alpha/one"]}"""))).EnumerateArray());
        Assert.Equal(["alpha/one:1"], one.GetProperty("RepoTags").EnumerateArray().Select(t => t.GetString()));
        Assert.Empty(one.GetProperty("RepoDigests").EnumerateArray());
        JsonElement both = Assert.Single((await _daemon.GetJsonAsync("/images/json")).EnumerateArray(), i => i.GetProperty("Id").GetString() == one.GetProperty("Id").GetString());
        Assert.Equal(2, both.GetProperty("RepoTags").GetArrayLength());
        Assert.Empty((await _daemon.GetJsonAsync(Filter("""{"dangling":{"true":true}}"""))).EnumerateArray());
        Assert.Equal(2, (await _daemon.GetJsonAsync(Filter("""{"dangling":["false"]}"""))).GetArrayLength());

        using HttpResponseMessage bad = await _daemon.Client.GetAsync(Filter("""{"colour":["red"]}"""));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("invalid filter 'colour'", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Save_then_load_round_trips_and_prune_removes_unused()
    {
        string id = await _daemon.ImportBusyboxAsync("roundtrip/bb:1");
        byte[] archive = await _daemon.Client.GetByteArrayAsync("/images/get?names=roundtrip/bb:1");
        Assert.True(archive.Length > 512);

        using (HttpResponseMessage rm = await _daemon.Client.DeleteAsync("/images/roundtrip/bb:1"))
            Assert.Equal(HttpStatusCode.OK, rm.StatusCode);
        using (HttpResponseMessage load = await _daemon.Client.PostAsync("/images/load?quiet=1", new ByteArrayContent(archive)))
        {
            string body = await load.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, load.StatusCode);
            Assert.Contains("Loaded image: roundtrip/bb:1", JsonDocument.Parse(body.Split('\n')[0]).RootElement.GetProperty("stream").GetString());
        }
        Assert.Equal(id, (await _daemon.GetJsonAsync("/images/roundtrip/bb:1/json")).GetProperty("Id").GetString());

        // dangling=true (the default) keeps tagged images; dangling=false removes every unused one.
        JsonElement kept = JsonDocument.Parse(await (await _daemon.Client.PostAsync("/images/prune", null)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(JsonValueKind.Null, kept.GetProperty("ImagesDeleted").ValueKind);
        string all = "/images/prune?filters=" + Uri.EscapeDataString("""{"dangling":["false"]}""");
        JsonElement pruned = JsonDocument.Parse(await (await _daemon.Client.PostAsync(all, null)).Content.ReadAsStringAsync()).RootElement;
        Assert.Contains(pruned.GetProperty("ImagesDeleted").EnumerateArray(), d => d.TryGetProperty("Deleted", out JsonElement x) && x.GetString() == id);
        Assert.True(pruned.GetProperty("SpaceReclaimed").GetInt64() > 0);
    }

    [Fact]
    public async Task Save_of_a_missing_image_is_404_before_any_tar()
    {
        using HttpResponseMessage r = await _daemon.Client.GetAsync("/images/nothere/get");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
    }

    [Fact]
    public async Task Pull_failure_before_any_layer_is_an_HTTP_error_with_a_message()
    {
        // Nothing listens on port 1 of loopback: the registry is unreachable. As with dockerd, a
        // failure before the first progress line is a status code, not a 200 stream.
        using HttpResponseMessage r = await _daemon.Client.PostAsync("/images/create?fromImage=127.0.0.1:1/none&tag=latest", null);
        Assert.True((int)r.StatusCode >= 500, r.StatusCode.ToString());
        JsonElement body = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
        Assert.Contains("127.0.0.1:1", body.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Bad_requests_are_400()
    {
        using HttpResponseMessage noRepo = await _daemon.Client.PostAsync("/images/x/tag", null);
        Assert.Equal(HttpStatusCode.BadRequest, noRepo.StatusCode);
        using HttpResponseMessage badName = await _daemon.Client.PostAsync("/images/create?fromImage=busybox&tag=bad%20tag!", null);
        Assert.Equal(HttpStatusCode.BadRequest, badName.StatusCode);
        using HttpResponseMessage neither = await _daemon.Client.PostAsync("/images/create", null);
        Assert.Equal(HttpStatusCode.BadRequest, neither.StatusCode);
    }
}
