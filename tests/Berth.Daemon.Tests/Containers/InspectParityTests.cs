using System.Net.Http.Json;
using System.Text.Json;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// What inspect shows of a container's Config, HostConfig and networks, as dockerd 20.10 shows it
/// for the same request (each expectation checked against a hand-run dockerd 20.10): the image's
/// Env merged after the container's, null where dockerd has null, the restart policy as sent, and
/// the none/host network listed.
/// </summary>
public sealed class InspectParityTests : IAsyncLifetime
{
    private DaemonScope _daemon = null!;

    public async Task InitializeAsync()
    {
        _daemon = await DaemonScope.StartAsync(o => o with { Bridge = "none" });
        await _daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
        await _daemon.ImportBusyboxAsync("envimage:latest", "ENV PATH=/custom/bin:/bin A=1 B=2");
    }

    public async Task DisposeAsync() => await _daemon.DisposeAsync();

    private async Task<JsonElement> CreateAndInspectAsync(object body)
    {
        string id = await ContainersApiTests.CreateAsync(_daemon.Client, body, apiVersion: "1.41");
        return await _daemon.GetJsonAsync($"/v1.41/containers/{id}/json");
    }

    private static List<string?>? Strings(JsonElement e) => e.ValueKind == JsonValueKind.Null ? null : e.EnumerateArray().Select(x => x.GetString()).ToList();

    [Fact]
    public async Task Config_Env_is_the_containers_entries_as_given_then_the_images_it_does_not_set()
    {
        JsonElement c = await CreateAndInspectAsync(new { Image = "envimage", Env = new[] { "B=x", "C=y", "A=z", "C=w", "A" }, Cmd = new[] { "true" } });
        // dockerd's merge: nothing deduplicated or removed in Config, the image's PATH appended.
        Assert.Equal(["B=x", "C=y", "A=z", "C=w", "A", "PATH=/custom/bin:/bin"], Strings(c.GetProperty("Config").GetProperty("Env")));

        // No Env given (or []): the image's, in its order; an image without one: null, not [].
        Assert.Equal(["PATH=/custom/bin:/bin", "A=1", "B=2"], Strings((await CreateAndInspectAsync(new { Image = "envimage", Env = Array.Empty<string>(), Cmd = new[] { "true" } })).GetProperty("Config").GetProperty("Env")));
        Assert.Equal(JsonValueKind.Null, (await CreateAndInspectAsync(new { Image = "busybox" })).GetProperty("Config").GetProperty("Env").ValueKind);
        Assert.Equal(JsonValueKind.Null, (await CreateAndInspectAsync(new { Image = "busybox", Env = Array.Empty<string>() })).GetProperty("Config").GetProperty("Env").ValueKind);
    }

    [Fact]
    public async Task The_process_environment_is_Config_Env_over_PATH_and_HOSTNAME_in_its_order()
    {
        string id = await ContainersApiTests.CreateAsync(_daemon.Client,
            new { Image = "envimage", Hostname = "h", Env = new[] { "B=x", "C=y", "A=z", "C=w", "A" }, Cmd = new[] { "env" } });
        using (HttpResponseMessage start = await _daemon.Client.PostAsync($"/containers/{id}/start", null))
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
        using (HttpResponseMessage wait = await _daemon.Client.PostAsync($"/containers/{id}/wait", null))
            Assert.True(wait.IsSuccessStatusCode, await wait.Content.ReadAsStringAsync());
        // What dockerd 20.10 gives the same container: a later C replaces the earlier in place, the
        // bare A unsets the A before it, the image's A=1 and B=2 lose to the container's. (HOME is
        // the runtime's, from the user's passwd entry.)
        string[] env = (await ContainersApiTests.LogsAsync(_daemon.Client, id)).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["PATH=/custom/bin:/bin", "HOSTNAME=h", "B=x", "C=w"], env.Where(e => !e.StartsWith("HOME=", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Null_and_empty_fields_are_what_dockerd_records()
    {
        JsonElement plain = (await CreateAndInspectAsync(new { Image = "busybox" })).GetProperty("Config");
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("Entrypoint").ValueKind);
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("Volumes").ValueKind);
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("OnBuild").ValueKind);
        Assert.Equal(JsonValueKind.Object, plain.GetProperty("Labels").ValueKind);
        Assert.Equal(["sh"], Strings(plain.GetProperty("Cmd")));

        // An empty Entrypoint is kept, and leaves the image's Cmd in place of an empty one; {} volumes are null.
        JsonElement empty = (await CreateAndInspectAsync(new { Image = "busybox", Entrypoint = Array.Empty<string>(), Cmd = Array.Empty<string>(), Volumes = new { } })).GetProperty("Config");
        Assert.Equal(0, empty.GetProperty("Entrypoint").GetArrayLength());
        Assert.Equal(["sh"], Strings(empty.GetProperty("Cmd")));
        Assert.Equal(JsonValueKind.Null, empty.GetProperty("Volumes").ValueKind);

        // `--entrypoint ""` (sent as [""]) clears the entrypoint: null.
        JsonElement cleared = (await CreateAndInspectAsync(new { Image = "busybox", Entrypoint = new[] { "" }, Cmd = new[] { "echo" } })).GetProperty("Config");
        Assert.Equal(JsonValueKind.Null, cleared.GetProperty("Entrypoint").ValueKind);
        Assert.Equal(["echo"], Strings(cleared.GetProperty("Cmd")));
        using HttpResponseMessage nothing = await _daemon.Client.PostAsJsonAsync("/v1.41/containers/create", new { Image = "busybox", Entrypoint = new[] { "" } });
        Assert.Equal(400, (int)nothing.StatusCode);
        Assert.Contains("No command specified", await nothing.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task RestartPolicy_is_recorded_as_sent_and_empty_when_none_was()
    {
        JsonElement none = await CreateAndInspectAsync(new { Image = "busybox" });
        Assert.Equal("", none.GetProperty("HostConfig").GetProperty("RestartPolicy").GetProperty("Name").GetString());
        JsonElement no = await CreateAndInspectAsync(new { Image = "busybox", HostConfig = new { RestartPolicy = new { Name = "no" } } });
        Assert.Equal("no", no.GetProperty("HostConfig").GetProperty("RestartPolicy").GetProperty("Name").GetString());
    }

    [Fact]
    public async Task Inspect_records_the_hostname_and_has_dockerds_fields_and_no_more()
    {
        string id = await ContainersApiTests.CreateAsync(_daemon.Client, new { Image = "busybox" }, apiVersion: "1.41");
        JsonElement c = await _daemon.GetJsonAsync($"/v1.41/containers/{id}/json");
        Assert.Equal(id[..12], c.GetProperty("Config").GetProperty("Hostname").GetString());
        // omitempty in moby: absent when unset, not null.
        foreach (string field in new[] { "ExposedPorts", "NetworkDisabled" })
            Assert.False(c.GetProperty("Config").TryGetProperty(field, out _), field);
        foreach (string field in new[] { "Mounts", "Tmpfs", "Sysctls", "Init" })
            Assert.False(c.GetProperty("HostConfig").TryGetProperty(field, out _), field);
        // The legacy NetworkSettings fields dockerd 20.10 shows.
        JsonElement settings = c.GetProperty("NetworkSettings");
        Assert.False(settings.GetProperty("HairpinMode").GetBoolean());
        Assert.Equal("", settings.GetProperty("EndpointID").GetString());
        Assert.Equal("", settings.GetProperty("LinkLocalIPv6Address").GetString());
        Assert.Equal(0, settings.GetProperty("LinkLocalIPv6PrefixLen").GetInt32());
        Assert.Equal(JsonValueKind.Null, settings.GetProperty("SecondaryIPAddresses").ValueKind);
        Assert.Equal(JsonValueKind.Null, settings.GetProperty("SecondaryIPv6Addresses").ValueKind);

        // What dockerd records whatever the request sent (docker-compose sends none of these).
        JsonElement hostConfig = c.GetProperty("HostConfig");
        Assert.False(hostConfig.GetProperty("OomKillDisable").GetBoolean());
        Assert.Equal("[0,0]", hostConfig.GetProperty("ConsoleSize").GetRawText());
        foreach (string field in new[] { "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth" })
            Assert.Equal(0, hostConfig.GetProperty(field).GetInt64());
        Assert.Equal(JsonValueKind.Null, hostConfig.GetProperty("DeviceRequests").ValueKind);
        Assert.False((await CreateAndInspectAsync(new { Image = "busybox", NetworkDisabled = false })).GetProperty("Config").TryGetProperty("NetworkDisabled", out _));
        using (HttpResponseMessage disabled = await _daemon.Client.PostAsJsonAsync("/containers/create", new { Image = "busybox", NetworkDisabled = true }))
            Assert.Equal(400, (int)disabled.StatusCode);

        JsonElement host = await CreateAndInspectAsync(new { Image = "busybox", HostConfig = new { NetworkMode = "host" } });
        Assert.Equal(System.Net.Dns.GetHostName(), host.GetProperty("Config").GetProperty("Hostname").GetString());
        JsonElement named = await CreateAndInspectAsync(new { Image = "busybox", Hostname = "given" });
        Assert.Equal("given", named.GetProperty("Config").GetProperty("Hostname").GetString());

        // --network container:X: its own short ID until it starts, then X's hostname (and the process sees it).
        string donor = await ContainersApiTests.CreateAsync(_daemon.Client, new { Image = "busybox", Hostname = "donor", Cmd = new[] { "sleep", "60" }, HostConfig = new { NetworkMode = "none" } });
        using (HttpResponseMessage start = await _daemon.Client.PostAsync($"/containers/{donor}/start", null))
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
        string joiner = await ContainersApiTests.CreateAsync(_daemon.Client, new { Image = "busybox", Cmd = new[] { "hostname" }, HostConfig = new { NetworkMode = "container:" + donor } });
        Assert.Equal(joiner[..12], (await _daemon.GetJsonAsync($"/containers/{joiner}/json")).GetProperty("Config").GetProperty("Hostname").GetString());
        using (HttpResponseMessage start = await _daemon.Client.PostAsync($"/containers/{joiner}/start", null))
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
        using (HttpResponseMessage wait = await _daemon.Client.PostAsync($"/containers/{joiner}/wait", null))
            Assert.True(wait.IsSuccessStatusCode);
        Assert.Equal("donor", (await _daemon.GetJsonAsync($"/containers/{joiner}/json")).GetProperty("Config").GetProperty("Hostname").GetString());
        Assert.Equal("donor\n", (await ContainersApiTests.LogsAsync(_daemon.Client, joiner)).Out);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("host")]
    public async Task A_none_or_host_container_lists_that_network(string mode)
    {
        string id = await ContainersApiTests.CreateAsync(_daemon.Client, new { Image = "busybox", Cmd = new[] { "true" }, HostConfig = new { NetworkMode = mode } }, apiVersion: "1.41");
        JsonElement created = (await _daemon.GetJsonAsync($"/v1.41/containers/{id}/json")).GetProperty("NetworkSettings").GetProperty("Networks");
        Assert.Equal([mode], created.EnumerateObject().Select(p => p.Name));
        // As dockerd: no network ID before the first start, the network's after it (kept once stopped).
        Assert.Equal("", created.GetProperty(mode).GetProperty("NetworkID").GetString());
        using (HttpResponseMessage start = await _daemon.Client.PostAsync($"/containers/{id}/start", null))
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
        using (HttpResponseMessage wait = await _daemon.Client.PostAsync($"/containers/{id}/wait", null))
            Assert.True(wait.IsSuccessStatusCode);
        string networkId = (await _daemon.GetJsonAsync($"/networks/{mode}")).GetProperty("Id").GetString()!;
        JsonElement endpoint = (await _daemon.GetJsonAsync($"/v1.41/containers/{id}/json")).GetProperty("NetworkSettings").GetProperty("Networks").GetProperty(mode);
        Assert.Equal(networkId, endpoint.GetProperty("NetworkID").GetString());
        Assert.Equal("", endpoint.GetProperty("EndpointID").GetString());
        Assert.Equal("", endpoint.GetProperty("IPAddress").GetString());
        Assert.Equal(JsonValueKind.Null, endpoint.GetProperty("DriverOpts").ValueKind);
        JsonElement listed = (await _daemon.GetJsonAsync("/containers/json?all=1")).EnumerateArray().Single(c => c.GetProperty("Id").GetString() == id);
        Assert.Equal(networkId, listed.GetProperty("NetworkSettings").GetProperty("Networks").GetProperty(mode).GetProperty("NetworkID").GetString());
    }
}
