using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Berth.Daemon.Tests.Cli;
using Berth.Daemon.Tests.Containers;

namespace Berth.Daemon.Tests.Events;

/// <summary>
/// POST /containers/prune, /images/prune, /networks/prune and GET /system/df over HTTP, then the
/// real docker clients' <c>events</c>, <c>system df</c> and <c>container prune</c>. The daemon
/// scope force-removes every container, even when an assertion fails.
/// </summary>
public sealed class PruneAndDfTests : DockerCliTestBase
{

    private static string FiltersJson(params (string Key, string Value)[] pairs)
        => Uri.EscapeDataString(JsonSerializer.Serialize(pairs.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.ToDictionary(p => p.Value, _ => true))));

    private async Task<JsonElement> PostJsonAsync(string path)
    {
        using HttpResponseMessage r = await Client.PostAsync(path, null);
        string body = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, $"POST {path}: {(int)r.StatusCode} {body}");
        return body.Length == 0 ? default : JsonDocument.Parse(body).RootElement.Clone();
    }

    private async Task<string> RunToExitAsync(string name, string script, object? labels = null)
    {
        string id = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", script }, Labels = labels ?? new { }, HostConfig = new { NetworkMode = "none" } }, name);
        await PostJsonAsync($"/containers/{id}/start");
        await PostJsonAsync($"/containers/{id}/wait");
        return id;
    }

    [Fact]
    public async Task Container_prune_removes_only_stopped_containers_the_filters_take_and_reports_their_size()
    {
        string big = await RunToExitAsync("p-big", "dd if=/dev/zero of=/blob bs=1024 count=200", new { keep = "no" });
        string kept = await RunToExitAsync("p-kept", "true", new { keep = "yes" });
        string created = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", HostConfig = new { NetworkMode = "none" } }, "p-created");
        string running = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sleep", "1000" }, HostConfig = new { NetworkMode = "none" } }, "p-running");
        await PostJsonAsync($"/containers/{running}/start");

        // until in the past (a duration back from now, as the docker CLI passes it through) takes nothing.
        JsonElement none = await PostJsonAsync("/containers/prune?filters=" + FiltersJson(("until", "1h")));
        Assert.Equal(JsonValueKind.Null, none.GetProperty("ContainersDeleted").ValueKind);

        JsonElement first = await PostJsonAsync("/containers/prune?filters=" + FiltersJson(("label", "keep=no")));
        Assert.Equal([big], first.GetProperty("ContainersDeleted").EnumerateArray().Select(e => e.GetString()));
        Assert.True(first.GetProperty("SpaceReclaimed").GetInt64() >= 200 * 1024, first.ToString());

        JsonElement second = await PostJsonAsync("/containers/prune?filters=" + FiltersJson(("label!", "keep=yes")));
        Assert.Equal([created], second.GetProperty("ContainersDeleted").EnumerateArray().Select(e => e.GetString()));

        JsonElement rest = await PostJsonAsync("/containers/prune");
        Assert.Equal([kept], rest.GetProperty("ContainersDeleted").EnumerateArray().Select(e => e.GetString()));
        JsonElement left = await Daemon.GetJsonAsync("/containers/json?all=1");
        Assert.Equal([running], left.EnumerateArray().Select(c => c.GetProperty("Id").GetString()));
    }

    [Fact]
    public async Task Image_prune_all_keeps_images_containers_use_and_removes_every_name_of_the_others()
    {
        string busybox = (await Daemon.GetJsonAsync("/images/busybox:latest/json")).GetProperty("Id").GetString()!;
        string other = await Daemon.ImportBusyboxAsync("other:1", "LABEL purpose=scratch");
        await PostJsonAsync("/images/other:1/tag?repo=elsewhere/other&tag=2"); // two repositories: rmi by ID would refuse
        string id = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", HostConfig = new { NetworkMode = "none" } }, "user");

        JsonElement dangling = await PostJsonAsync("/images/prune");
        Assert.Equal(JsonValueKind.Null, dangling.GetProperty("ImagesDeleted").ValueKind);
        JsonElement byLabel = await PostJsonAsync("/images/prune?filters=" + FiltersJson(("dangling", "false"), ("label", "purpose=other")));
        Assert.Equal(JsonValueKind.Null, byLabel.GetProperty("ImagesDeleted").ValueKind);

        JsonElement all = await PostJsonAsync("/images/prune?filters=" + FiltersJson(("dangling", "false")));
        var items = all.GetProperty("ImagesDeleted").EnumerateArray().ToList();
        Assert.Equal(["elsewhere/other:2", "other:1"], items.Where(i => i.TryGetProperty("Untagged", out JsonElement u) && u.ValueKind == JsonValueKind.String).Select(i => i.GetProperty("Untagged").GetString()).Order());
        Assert.Contains(items, i => i.TryGetProperty("Deleted", out JsonElement d) && d.GetString() == other);
        Assert.True(all.GetProperty("SpaceReclaimed").GetInt64() >= 0);
        JsonElement images = await Daemon.GetJsonAsync("/images/json");
        Assert.Equal([busybox], images.EnumerateArray().Select(i => i.GetProperty("Id").GetString()));
        using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{id}")) Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);
    }

    [Fact]
    public async Task Network_prune_removes_unused_custom_networks_only()
    {
        using (HttpResponseMessage r = await Client.PostAsJsonAsync("/networks/create", new { Name = "unused-net" })) Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        JsonElement report = await PostJsonAsync("/networks/prune");
        Assert.Equal(["unused-net"], report.GetProperty("NetworksDeleted").EnumerateArray().Select(e => e.GetString()));
        JsonElement names = await Daemon.GetJsonAsync("/networks");
        Assert.Equal(["bridge", "host", "none"], names.EnumerateArray().Select(n => n.GetProperty("Name").GetString()).Order());
    }

    [Fact]
    public async Task System_df_counts_layers_images_containers_and_their_writable_layers()
    {
        string image = (await Daemon.GetJsonAsync("/images/busybox:latest/json")).GetProperty("Id").GetString()!;
        string id = await RunToExitAsync("df-writer", "dd if=/dev/zero of=/blob bs=1024 count=100");
        JsonElement df = await Daemon.GetJsonAsync("/system/df");
        Assert.True(df.GetProperty("LayersSize").GetInt64() > 0);
        JsonElement img = Assert.Single(df.GetProperty("Images").EnumerateArray());
        Assert.Equal(image, img.GetProperty("Id").GetString());
        Assert.Equal(1, img.GetProperty("Containers").GetInt64());
        Assert.Equal(0, img.GetProperty("SharedSize").GetInt64());
        Assert.Equal(df.GetProperty("LayersSize").GetInt64(), img.GetProperty("Size").GetInt64());
        JsonElement c = Assert.Single(df.GetProperty("Containers").EnumerateArray());
        Assert.Equal(id, c.GetProperty("Id").GetString());
        long rw = c.GetProperty("SizeRw").GetInt64();
        Assert.InRange(rw, 100 * 1024, 100 * 1024 + 64 * 1024);
        Assert.Equal(rw + img.GetProperty("Size").GetInt64(), c.GetProperty("SizeRootFs").GetInt64());
        Assert.Equal(JsonValueKind.Array, df.GetProperty("Volumes").ValueKind);
        Assert.Equal(0, df.GetProperty("BuildCache").GetArrayLength());

        JsonElement onlyImages = await Daemon.GetJsonAsync("/system/df?type=image");
        Assert.Equal(JsonValueKind.Null, onlyImages.GetProperty("Containers").ValueKind);
        await Daemon.GetJsonAsync("/system/df?type=nonsense", 400);
        // Other /system paths are still not served.
        await Daemon.GetJsonAsync("/system/nothing", 501);
        using (HttpResponseMessage post = await Client.PostAsync("/system/df", null)) Assert.Equal(HttpStatusCode.NotFound, post.StatusCode);
    }

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Docker_events_since_until_system_df_and_container_prune(string binary)
    {
        var docker = Docker(binary);
        string since = EventsApiTests.Unix(DateTimeOffset.UtcNow.AddSeconds(-1));
        docker.Ok("run", "--name", "cli-ev", "--network", "none", "busybox", "true");
        string until = EventsApiTests.Unix(DateTimeOffset.UtcNow.AddSeconds(1));
        // The default format: time, type, action, ID, sorted attributes; the stream ends at --until.
        string events = docker.Ok("events", "--since", since, "--until", until, "--filter", "container=cli-ev");
        string[] lines = events.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["create", "attach", "start", "die"], lines.Select(l => l.Split(' ')[2]).Where(a => a != "detach"));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container create [0-9a-f]{64} \(image=busybox, name=cli-ev\)$", lines[0]);
        Assert.Contains("exitCode=0", lines.Single(l => l.Contains(" die ", StringComparison.Ordinal)));
        string json = docker.Ok("events", "--since", since, "--until", until, "--filter", "event=start", "--format", "{{json .}}");
        JsonElement start = JsonDocument.Parse(json.Split('\n')[0]).RootElement;
        Assert.Equal("start", start.GetProperty("Action").GetString());
        Assert.Equal("cli-ev", start.GetProperty("Actor").GetProperty("Attributes").GetProperty("name").GetString());

        docker.Ok("run", "-d", "--name", "cli-running", "--network", "none", "busybox", "sleep", "1000");
        string df = docker.Ok("system", "df");
        Assert.Matches(@"TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE", df);
        Assert.Matches(@"Images\s+1\s+1\s+", df);
        Assert.Matches(@"Containers\s+2\s+1\s+", df);
        Assert.Contains("Local Volumes", df);
        Assert.Contains("Build Cache", df);
        Assert.Contains("cli-running", docker.Ok("system", "df", "-v"));

        string stopped = docker.Ok("inspect", "-f", "{{.Id}}", "cli-ev").Trim();
        string pruned = docker.Ok("container", "prune", "-f");
        Assert.Contains("Deleted Containers:\n" + stopped + "\n", pruned);
        Assert.Contains("Total reclaimed space:", pruned);
        Assert.Equal("cli-running\n", docker.Ok("ps", "-a", "--format", "{{.Names}}"));
    }
}
