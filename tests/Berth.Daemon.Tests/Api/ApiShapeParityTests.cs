using System.Net.Http.Json;
using System.Text.Json;
using Berth.Cgroups;
using Berth.Daemon.Containers;
using Berth.Daemon.Tests.Containers;

namespace Berth.Daemon.Tests.Api;

/// <summary>
/// The key paths and value types of stats, the lists, networks, exec, info, version and df as
/// dockerd 20.10 sends them (each expectation from the same request to a hand-run dockerd 20.10 on
/// this host): moby's omitempty fields left out when empty, null where it sends null, and the
/// fields of its structs that berthd had left out.
/// </summary>
public sealed class ApiShapeParityTests : DaemonTestBase
{
    private static string[] Keys(JsonElement e) => [.. e.EnumerateObject().Select(p => p.Name)];

    private async Task<string> RunAsync(object body)
    {
        string id = await ContainersApiTests.CreateAsync(Client, body, apiVersion: "1.41");
        using HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null);
        Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
        return id;
    }

    [Fact]
    public async Task Stats_of_a_running_container_have_every_field_of_dockerds_and_a_stopped_ones_are_the_zero_sample()
    {
        string id = await RunAsync(new { Image = "busybox", Cmd = new[] { "sleep", "600" } });
        JsonElement s = await Daemon.GetJsonAsync($"/v1.41/containers/{id}/stats?stream=0&one-shot=1");
        Assert.Equal(["read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats", "precpu_stats", "memory_stats", "name", "id", "networks"], Keys(s));
        Assert.Equal(["current"], Keys(s.GetProperty("pids_stats"))); // no limit: omitempty, not null
        Assert.Empty(Keys(s.GetProperty("storage_stats")));
        JsonElement blkio = s.GetProperty("blkio_stats");
        Assert.Equal(["io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive", "io_service_time_recursive",
            "io_wait_time_recursive", "io_merged_recursive", "io_time_recursive", "sectors_recursive"], Keys(blkio));
        bool v1 = CgroupLayout.Detect().Mode != CgroupMode.Unified;
        Assert.All(blkio.EnumerateObject().Skip(2), list => Assert.Equal(v1 ? JsonValueKind.Array : JsonValueKind.Null, list.Value.ValueKind));
        Assert.Equal(JsonValueKind.Array, blkio.GetProperty("io_service_bytes_recursive").ValueKind);
        Assert.Equal(["periods", "throttled_periods", "throttled_time"], Keys(s.GetProperty("cpu_stats").GetProperty("throttling_data")));
        JsonElement memory = s.GetProperty("memory_stats");
        Assert.True(memory.GetProperty("usage").GetUInt64() > 0);
        if (v1) Assert.True(memory.GetProperty("max_usage").GetUInt64() >= memory.GetProperty("usage").GetUInt64());
        // The container's interfaces (eth0 on the default bridge), lo left out, as dockerd lists its endpoints'.
        JsonElement networks = s.GetProperty("networks");
        Assert.Equal(["eth0"], Keys(networks));
        Assert.Equal(["rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"], Keys(networks.GetProperty("eth0")));

        string none = await RunAsync(new { Image = "busybox", Cmd = new[] { "sleep", "600" }, HostConfig = new { NetworkMode = "none" } });
        Assert.False((await Daemon.GetJsonAsync($"/containers/{none}/stats?stream=0&one-shot=1")).TryGetProperty("networks", out _));

        // A stopped container: dockerd's empty stats at once (zero times, empty pids and memory).
        string created = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox" });
        JsonElement zero = await Daemon.GetJsonAsync($"/containers/{created}/stats?stream=0");
        Assert.Equal("0001-01-01T00:00:00Z", zero.GetProperty("read").GetString());
        Assert.Equal("0001-01-01T00:00:00Z", zero.GetProperty("preread").GetString());
        Assert.Empty(Keys(zero.GetProperty("pids_stats")));
        Assert.Empty(Keys(zero.GetProperty("memory_stats")));
        Assert.Equal(["cpu_usage", "throttling_data"], Keys(zero.GetProperty("cpu_stats")));
        Assert.Equal(["total_usage", "usage_in_kernelmode", "usage_in_usermode"], Keys(zero.GetProperty("cpu_stats").GetProperty("cpu_usage")));
        Assert.All(zero.GetProperty("blkio_stats").EnumerateObject(), list => Assert.Equal(JsonValueKind.Null, list.Value.ValueKind));
        Assert.False(zero.TryGetProperty("networks", out _));
        Assert.Equal(created, zero.GetProperty("id").GetString());
    }

    [Fact]
    public void Interface_figures_are_read_from_proc_net_dev_without_lo()
    {
        string[] netDev =
        [
            "Inter-|   Receive                                                |  Transmit",
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
            "    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0",
            "  eth0:    1112      12    1    2    0     0          0         0       90       1    3    4    0     0       0          0",
        ];
        var interfaces = ContainerStats.ParseNetDev(netDev);
        Assert.Equal(["eth0"], interfaces.Keys);
        Assert.Equal(new Berth.Daemon.Api.NetworkStatsJson(1112, 12, 1, 2, 90, 1, 3, 4), interfaces["eth0"]);
    }

    [Fact]
    public async Task The_container_list_shows_what_dockerds_container_view_copies()
    {
        using (HttpResponseMessage net = await Client.PostAsJsonAsync("/networks/create", new { Name = "shapes" }))
            Assert.True(net.IsSuccessStatusCode, await net.Content.ReadAsStringAsync());
        string id = await RunAsync(new
        {
            Image = "busybox",
            Cmd = new[] { "sleep", "600" },
            HostConfig = new { NetworkMode = "shapes" },
            NetworkingConfig = new { EndpointsConfig = new { shapes = new { Aliases = new[] { "al1" } } } },
        });
        JsonElement listed = (await Daemon.GetJsonAsync("/v1.41/containers/json")).EnumerateArray().Single(c => c.GetProperty("Id").GetString() == id);
        JsonElement endpoint = listed.GetProperty("NetworkSettings").GetProperty("Networks").GetProperty("shapes");
        // Addresses yes; Aliases, Links and DNSNames null: the list does not copy them (inspect has them).
        Assert.NotEqual("", endpoint.GetProperty("IPAddress").GetString());
        Assert.Equal(JsonValueKind.Null, endpoint.GetProperty("Aliases").ValueKind);
        Assert.Equal(JsonValueKind.Null, endpoint.GetProperty("Links").ValueKind);
        Assert.Equal(JsonValueKind.Null, endpoint.GetProperty("DNSNames").ValueKind);
        JsonElement inspected = (await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("NetworkSettings").GetProperty("Networks").GetProperty("shapes");
        Assert.Contains("al1", inspected.GetProperty("Aliases").EnumerateArray().Select(a => a.GetString()));

        // size=1: SizeRw and SizeRootFs are omitempty in the list (a created container wrote nothing).
        string created = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox" });
        JsonElement sized = (await Daemon.GetJsonAsync("/containers/json?all=1&size=1")).EnumerateArray().Single(c => c.GetProperty("Id").GetString() == created);
        Assert.False(sized.TryGetProperty("SizeRw", out _));
        Assert.True(sized.GetProperty("SizeRootFs").GetInt64() > 0);
    }

    [Fact]
    public async Task The_network_list_leaves_out_the_attached_containers_that_inspect_shows()
    {
        string id = await RunAsync(new { Image = "busybox", Cmd = new[] { "sleep", "600" } });
        JsonElement listed = (await Daemon.GetJsonAsync("/v1.41/networks")).EnumerateArray().Single(n => n.GetProperty("Name").GetString() == "bridge");
        Assert.Equal("{}", listed.GetProperty("Containers").GetRawText());
        Assert.Equal([id], Keys((await Daemon.GetJsonAsync("/v1.41/networks/bridge")).GetProperty("Containers")));
    }

    [Fact]
    public async Task Networks_show_ConfigFrom_ConfigOnly_and_IPAM_in_dockerds_order_with_its_options_as_sent()
    {
        foreach (JsonElement n in (await Daemon.GetJsonAsync("/v1.41/networks")).EnumerateArray())
        {
            Assert.Equal("""{"Network":""}""", n.GetProperty("ConfigFrom").GetRawText());
            Assert.False(n.GetProperty("ConfigOnly").GetBoolean());
        }
        JsonElement bridge = await Daemon.GetJsonAsync("/networks/bridge");
        Assert.Equal(["Driver", "Options", "Config"], Keys(bridge.GetProperty("IPAM")));
        Assert.Equal(JsonValueKind.Null, bridge.GetProperty("IPAM").GetProperty("Options").ValueKind);

        // IPAM.Options as the create sent them: {} from the docker CLI, null from a client that sends none.
        async Task<string> IpamOptionsAsync(string name, object body)
        {
            using (HttpResponseMessage created = await Client.PostAsJsonAsync("/networks/create", body))
                Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
            return (await Daemon.GetJsonAsync($"/networks/{name}")).GetProperty("IPAM").GetProperty("Options").GetRawText();
        }
        Assert.Equal("{}", await IpamOptionsAsync("cli", new { Name = "cli", IPAM = new { Driver = "default", Options = new { }, Config = Array.Empty<object>() } }));
        Assert.Equal("null", await IpamOptionsAsync("bare", new { Name = "bare" }));
        Assert.Equal("""{"k":"v"}""", await IpamOptionsAsync("given", new { Name = "given", IPAM = new { Options = new { k = "v" } } }));
    }

    [Fact]
    public async Task Exec_inspect_leaves_out_an_empty_user_keeps_the_pid_and_its_events_name_the_command_as_dockerd()
    {
        string id = await RunAsync(new { Image = "busybox", Cmd = new[] { "sleep", "600" }, HostConfig = new { NetworkMode = "none" } });
        async Task<JsonElement> ProcessConfigAsync(object body)
        {
            using HttpResponseMessage created = await Client.PostAsJsonAsync($"/containers/{id}/exec", body);
            string exec = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("Id").GetString()!;
            return (await Daemon.GetJsonAsync($"/exec/{exec}/json")).GetProperty("ProcessConfig");
        }
        Assert.Equal(["tty", "entrypoint", "arguments", "privileged"], Keys(await ProcessConfigAsync(new { Cmd = new[] { "true" } })));
        Assert.Equal("nobody", (await ProcessConfigAsync(new { Cmd = new[] { "true" }, User = "nobody" })).GetProperty("user").GetString());
        await ProcessConfigAsync(new { Cmd = new[] { "sh", "-c", "true" } });

        // A finished exec keeps its Pid in inspect, as dockerd's.
        using (HttpResponseMessage created = await Client.PostAsJsonAsync($"/containers/{id}/exec", new { Cmd = new[] { "true" } }))
        {
            string exec = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("Id").GetString()!;
            using (HttpResponseMessage start = await Client.PostAsync($"/exec/{exec}/start", new StringContent("{\"Detach\":true}", System.Text.Encoding.UTF8, "application/json")))
                Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
            JsonElement inspected;
            for (int i = 0; (inspected = await Daemon.GetJsonAsync($"/exec/{exec}/json")).GetProperty("ExitCode").ValueKind == JsonValueKind.Null; i++)
            {
                Assert.True(i < 100, "the exec did not end in 10 s");
                await Task.Delay(100);
            }
            Assert.True(inspected.GetProperty("Pid").GetInt32() > 0);
        }

        // Entrypoint, a space, the arguments: a command without arguments ends in a space.
        long until = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1;
        string filters = Uri.EscapeDataString("""{"event":["exec_create"]}""");
        using HttpResponseMessage events = await Client.GetAsync($"/events?since=0&until={until}&filters={filters}");
        string[] actions = [.. (await events.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("Action").GetString()!)];
        Assert.Equal(["exec_create: true ", "exec_create: true ", "exec_create: sh -c true", "exec_create: true "], actions);
    }

    [Fact]
    public async Task Info_has_the_deprecated_fields_below_the_version_that_dropped_them()
    {
        JsonElement old = await Daemon.GetJsonAsync("/v1.41/info");
        Assert.False(old.GetProperty("KernelMemory").GetBoolean());
        Assert.False(old.GetProperty("KernelMemoryTCP").GetBoolean());
        Assert.Equal(JsonValueKind.Null, old.GetProperty("GenericResources").ValueKind);
        foreach (string flag in new[] { "BridgeNfIptables", "BridgeNfIp6tables" })
            Assert.True(old.GetProperty(flag).ValueKind is JsonValueKind.True or JsonValueKind.False, flag);
        Assert.Equal(0, old.GetProperty("RegistryConfig").GetProperty("AllowNondistributableArtifactsCIDRs").GetArrayLength());
        Assert.Equal(0, old.GetProperty("RegistryConfig").GetProperty("AllowNondistributableArtifactsHostnames").GetArrayLength());

        JsonElement current = await Daemon.GetJsonAsync("/v1.49/info");
        foreach (string gone in new[] { "KernelMemory", "KernelMemoryTCP", "BridgeNfIptables", "BridgeNfIp6tables" })
            Assert.False(current.TryGetProperty(gone, out _), gone);
        Assert.False(current.GetProperty("RegistryConfig").TryGetProperty("AllowNondistributableArtifactsCIDRs", out _));

        // /version: Experimental is omitempty.
        Assert.False((await Daemon.GetJsonAsync("/v1.41/version")).TryGetProperty("Experimental", out _));
    }

    [Fact]
    public async Task Images_without_labels_list_null_and_df_has_its_legacy_sizes()
    {
        JsonElement image = Assert.Single((await Daemon.GetJsonAsync("/v1.41/images/json")).EnumerateArray());
        Assert.Equal(JsonValueKind.Null, image.GetProperty("Labels").ValueKind);
        JsonElement df = await Daemon.GetJsonAsync("/v1.41/system/df");
        Assert.Equal(0, df.GetProperty("BuilderSize").GetInt64());
        JsonElement dfImage = Assert.Single(df.GetProperty("Images").EnumerateArray());
        Assert.Equal(dfImage.GetProperty("Size").GetInt64(), dfImage.GetProperty("VirtualSize").GetInt64());
        Assert.Equal(JsonValueKind.Null, dfImage.GetProperty("Labels").ValueKind);
        JsonElement current = await Daemon.GetJsonAsync("/v1.44/system/df");
        Assert.False(current.TryGetProperty("BuilderSize", out _));
        Assert.False(Assert.Single(current.GetProperty("Images").EnumerateArray()).TryGetProperty("VirtualSize", out _));

        await Daemon.ImportBusyboxAsync("labelled:latest", "LABEL a=b");
        JsonElement labelled = (await Daemon.GetJsonAsync("/images/json?filters=" + Uri.EscapeDataString("""{"label":["a=b"]}"""))).EnumerateArray().Single();
        Assert.Equal("b", labelled.GetProperty("Labels").GetProperty("a").GetString());
    }

    [Fact]
    public async Task HostConfig_Mounts_leave_out_moby_omitempty_fields_and_their_volumes_mode_is_z()
    {
        string bind = Daemon.Directory.Combine("bind");
        Directory.CreateDirectory(bind);
        string id = await ContainersApiTests.CreateAsync(Client, new
        {
            Image = "busybox",
            HostConfig = new
            {
                Mounts = new object[]
                {
                    new { Type = "volume", Target = "/anon" },
                    new { Type = "bind", Source = bind, Target = "/b", ReadOnly = true },
                },
            },
        });
        JsonElement inspected = await Daemon.GetJsonAsync($"/containers/{id}/json");
        JsonElement[] mounts = [.. inspected.GetProperty("HostConfig").GetProperty("Mounts").EnumerateArray()];
        Assert.Equal("""{"Type":"volume","Target":"/anon"}""", mounts[0].GetRawText());
        Assert.Equal(["Type", "Source", "Target", "ReadOnly"], Keys(mounts[1]));
        Assert.True(mounts[1].GetProperty("ReadOnly").GetBoolean());
        // The mount point of a Mounts volume has dockerd's mode "z" (setBindModeIfNull), as -v name:/path.
        JsonElement volume = inspected.GetProperty("Mounts").EnumerateArray().Single(m => m.GetProperty("Type").GetString() == "volume");
        Assert.Equal("z", volume.GetProperty("Mode").GetString());
    }
}
