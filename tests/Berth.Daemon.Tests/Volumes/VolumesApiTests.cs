using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Berth.Daemon.Tests.Containers;

namespace Berth.Daemon.Tests.Volumes;

/// <summary>
/// /volumes and the volumes of containers over HTTP against berthd hosted in-process, with real
/// containers (berth-runtime, busybox). Each test's daemon removes its containers, detaches any
/// mount left under its directory and removes it (volumes included) when disposed.
/// </summary>
public sealed class VolumesApiTests : DaemonTestBase
{
    private string VolumesRoot => Path.Combine(Daemon.Options.DataRoot, "volumes");

    private async Task<(int Status, JsonElement Body)> SendAsync(HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        using HttpResponseMessage response = await Client.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    private async Task<JsonElement> CreateVolumeAsync(object body)
    {
        var (status, json) = await SendAsync(HttpMethod.Post, "/v1.43/volumes/create", body);
        Assert.True(status == 201, $"volume create: {status} {json}");
        return json;
    }

    private async Task<(long Exit, string Out)> RunAsync(object body, bool remove = true)
    {
        string id = await ContainersApiTests.CreateAsync(Client, body);
        return await StartAndWaitAsync(id, remove);
    }

    private async Task<(long Exit, string Out)> StartAndWaitAsync(string id, bool remove)
    {
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null))
            Assert.True(start.StatusCode == HttpStatusCode.NoContent, await start.Content.ReadAsStringAsync());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using HttpResponseMessage wait = await Client.PostAsync($"/containers/{id}/wait", null, cts.Token);
        long exit = JsonDocument.Parse(await wait.Content.ReadAsStringAsync(cts.Token)).RootElement.GetProperty("StatusCode").GetInt64();
        var (stdout, stderr) = await ContainersApiTests.LogsAsync(Client, id);
        if (remove)
            using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{id}"))
                Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);
        Assert.True(exit == 0, $"exit {exit}: {stdout} {stderr}");
        return (exit, stdout);
    }

    private async Task<string[]> VolumeNamesAsync(string? filters = null)
    {
        JsonElement list = await Daemon.GetJsonAsync("/volumes" + (filters is null ? "" : "?filters=" + Uri.EscapeDataString(filters)));
        Assert.Equal(JsonValueKind.Null, list.GetProperty("Warnings").ValueKind);
        return list.GetProperty("Volumes").EnumerateArray().Select(v => v.GetProperty("Name").GetString()!).Order(StringComparer.Ordinal).ToArray();
    }

    private static bool IsMountPoint(string path)
        => File.ReadAllLines("/proc/self/mountinfo").Any(l => l.Split(' ')[4] == path);

    [Fact]
    public async Task Create_list_inspect_remove_and_prune_through_the_api()
    {
        JsonElement created = await CreateVolumeAsync(new { Name = "data1", Labels = new Dictionary<string, string> { ["team"] = "a" } });
        Assert.Equal("data1", created.GetProperty("Name").GetString());
        Assert.Equal("local", created.GetProperty("Driver").GetString());
        Assert.Equal("local", created.GetProperty("Scope").GetString());
        Assert.Equal(Path.Combine(VolumesRoot, "data1", "_data"), created.GetProperty("Mountpoint").GetString());
        Assert.True(DateTimeOffset.TryParse(created.GetProperty("CreatedAt").GetString(), out _));
        Assert.Equal("a", created.GetProperty("Labels").GetProperty("team").GetString());
        Assert.False(created.TryGetProperty("UsageData", out _));
        Assert.True(Directory.Exists(Path.Combine(VolumesRoot, "data1", "_data")));
        Assert.True(File.Exists(Path.Combine(VolumesRoot, "data1", "volume.json")));

        // Creating an existing name gives the existing volume (dockerd's behaviour), unchanged.
        JsonElement again = await CreateVolumeAsync(new { Name = "data1", Labels = new Dictionary<string, string> { ["team"] = "b" } });
        Assert.Equal(created.GetProperty("CreatedAt").GetString(), again.GetProperty("CreatedAt").GetString());
        Assert.Equal("a", again.GetProperty("Labels").GetProperty("team").GetString());

        JsonElement inspect = await Daemon.GetJsonAsync("/volumes/data1");
        Assert.Equal(created.GetRawText(), inspect.GetRawText());
        await Daemon.GetJsonAsync("/volumes/nosuch", 404);

        await CreateVolumeAsync(new { Name = "data2" });
        JsonElement anonymous = await CreateVolumeAsync(new { });
        string anon = anonymous.GetProperty("Name").GetString()!;
        Assert.Matches("^[0-9a-f]{64}$", anon);
        Assert.Equal("", anonymous.GetProperty("Labels").GetProperty("com.docker.volume.anonymous").GetString());

        Assert.Equal(new[] { anon, "data1", "data2" }.Order(StringComparer.Ordinal), await VolumeNamesAsync());
        Assert.Equal(["data1", "data2"], await VolumeNamesAsync("{\"name\":{\"data\":true}}"));
        Assert.Equal(["data1"], await VolumeNamesAsync("{\"label\":{\"team=a\":true}}"));
        Assert.Equal(["data1"], await VolumeNamesAsync("{\"label\":[\"team\"]}"));
        Assert.Equal(3, (await VolumeNamesAsync("{\"dangling\":{\"true\":true}}")).Length);
        Assert.Empty(await VolumeNamesAsync("{\"dangling\":{\"false\":true}}"));
        Assert.Empty(await VolumeNamesAsync("{\"driver\":{\"other\":true}}"));
        Assert.Equal(400, (await SendAsync(HttpMethod.Get, "/volumes?filters=" + Uri.EscapeDataString("{\"nope\":{\"x\":true}}"))).Status);

        // Prune (API >= 1.42): only anonymous volumes unless all=true; label filters narrow it.
        var (status, pruned) = await SendAsync(HttpMethod.Post, "/v1.43/volumes/prune");
        Assert.Equal(200, status);
        Assert.Equal([anon], pruned.GetProperty("VolumesDeleted").EnumerateArray().Select(v => v.GetString()!).ToArray());
        Assert.True(pruned.GetProperty("SpaceReclaimed").GetInt64() >= 0);
        Assert.False(Directory.Exists(Path.Combine(VolumesRoot, anon)));
        File.WriteAllText(Path.Combine(VolumesRoot, "data2", "_data", "payload"), new string('x', 1000));
        (status, pruned) = await SendAsync(HttpMethod.Post, "/v1.43/volumes/prune?filters=" + Uri.EscapeDataString("{\"all\":{\"true\":true},\"label!\":{\"team\":true}}"));
        Assert.Equal(200, status);
        Assert.Equal(["data2"], pruned.GetProperty("VolumesDeleted").EnumerateArray().Select(v => v.GetString()!).ToArray());
        Assert.Equal(1000, pruned.GetProperty("SpaceReclaimed").GetInt64());
        (status, pruned) = await SendAsync(HttpMethod.Post, "/v1.43/volumes/prune");
        Assert.Equal(JsonValueKind.Null, pruned.GetProperty("VolumesDeleted").ValueKind);

        Assert.Equal(204, (await SendAsync(HttpMethod.Delete, "/volumes/data1?force=1")).Status);
        Assert.False(Directory.Exists(Path.Combine(VolumesRoot, "data1")));
        var (missing, message) = await SendAsync(HttpMethod.Delete, "/volumes/data1");
        Assert.Equal(404, missing);
        Assert.Equal("get data1: no such volume", message.GetProperty("message").GetString());
        Assert.Empty(await VolumeNamesAsync());
    }

    [Fact]
    public async Task Bad_names_drivers_and_options_are_refused_with_400_and_an_unknown_driver_with_404()
    {
        async Task<string> Refused(object body, string path = "/volumes/create", int expected = 400)
        {
            var (status, json) = await SendAsync(HttpMethod.Post, path, body);
            Assert.True(status == expected, $"{status} {json}");
            return json.GetProperty("message").GetString()!;
        }
        Assert.Equal("create a: volume name is too short, names should be at least two alphanumeric characters", await Refused(new { Name = "a" }));
        Assert.Contains("includes invalid characters for a local volume name", await Refused(new { Name = "bad/name" }));
        Assert.Contains("includes invalid characters", await Refused(new { Name = "-dash" }));
        // No plugins: another driver is one berthd cannot find, dockerd's 404.
        Assert.Equal("create fine: error looking up volume plugin nfs-plugin: plugin \"nfs-plugin\" not found",
            await Refused(new { Name = "fine", Driver = "nfs-plugin" }, expected: 404));
        Assert.Equal("create fine: invalid option: \"colour\"", await Refused(new { Name = "fine", DriverOpts = new { colour = "red" } }));
        Assert.Contains("missing required option: \"device\"", await Refused(new { Name = "fine", DriverOpts = new { type = "tmpfs" } }));

        // The same rules at container create, for -v and for Mounts; nothing is left behind.
        Assert.Contains("includes invalid characters", await Refused(new { Image = "busybox", HostConfig = new { Binds = new[] { "bad$name:/data" } } }, "/containers/create"));
        Assert.Contains("includes invalid characters", await Refused(new { Image = "busybox", HostConfig = new { Mounts = new[] { new { Type = "volume", Source = "x/y", Target = "/data" } } } }, "/containers/create"));
        Assert.Contains("plugin \"other\" not found", await Refused(new { Image = "busybox", HostConfig = new { Mounts = new[] { new { Type = "volume", Source = "fine", Target = "/data", VolumeOptions = new { DriverConfig = new { Name = "other" } } } } } }, "/containers/create", 404));
        Assert.Contains("Duplicate mount point: /data", await Refused(new { Image = "busybox", HostConfig = new { Binds = new[] { "one:/data", "two:/data/" } } }, "/containers/create"));
        Assert.Empty(await VolumeNamesAsync()); // the duplicate is found before any volume is made
    }

    [Fact]
    public async Task Named_volume_data_persists_across_containers_and_an_in_use_volume_is_refused()
    {
        await RunAsync(new { Image = "busybox", Cmd = new[] { "sh", "-c", "echo kept > /data/file" }, HostConfig = new { Binds = new[] { "shared:/data" } } });
        JsonElement volume = await Daemon.GetJsonAsync("/volumes/shared");
        Assert.Equal(JsonValueKind.Null, volume.GetProperty("Labels").ValueKind); // made on demand, as dockerd does
        Assert.Equal("kept\n", File.ReadAllText(Path.Combine(VolumesRoot, "shared", "_data", "file")));

        string reader = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "cat", "/data/file" }, HostConfig = new { Binds = new[] { "shared:/data:ro" } } });
        JsonElement mount = (await Daemon.GetJsonAsync($"/containers/{reader}/json")).GetProperty("Mounts")[0];
        Assert.Equal("volume", mount.GetProperty("Type").GetString());
        Assert.Equal("shared", mount.GetProperty("Name").GetString());
        Assert.Equal(Path.Combine(VolumesRoot, "shared", "_data"), mount.GetProperty("Source").GetString());
        Assert.Equal("/data", mount.GetProperty("Destination").GetString());
        Assert.Equal("local", mount.GetProperty("Driver").GetString());
        Assert.Equal("ro", mount.GetProperty("Mode").GetString());
        Assert.False(mount.GetProperty("RW").GetBoolean());
        Assert.Equal("", mount.GetProperty("Propagation").GetString());

        // Referred to by a container that is not running: still in use.
        var (status, message) = await SendAsync(HttpMethod.Delete, "/volumes/shared");
        Assert.Equal(409, status);
        Assert.Equal($"remove shared: volume is in use - [{reader}]", message.GetProperty("message").GetString());
        Assert.Equal(["shared"], await VolumeNamesAsync("{\"dangling\":{\"false\":true}}"));

        var (_, output) = await StartAndWaitAsync(reader, remove: false);
        Assert.Equal("kept\n", output);
        JsonElement summary = (await Daemon.GetJsonAsync("/containers/json?all=1")).EnumerateArray().Single();
        Assert.Equal("shared", summary.GetProperty("Mounts")[0].GetProperty("Name").GetString());
        Assert.Equal(1, (await Daemon.GetJsonAsync("/containers/json?all=1&filters=" + Uri.EscapeDataString("{\"volume\":[\"shared\"]}"))).GetArrayLength());
        Assert.Equal(0, (await Daemon.GetJsonAsync("/containers/json?all=1&filters=" + Uri.EscapeDataString("{\"volume\":[\"other\"]}"))).GetArrayLength());

        // rm -v keeps named volumes.
        using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{reader}?v=1"))
            Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);
        Assert.Equal(["shared"], await VolumeNamesAsync());
        Assert.Equal(204, (await SendAsync(HttpMethod.Delete, "/volumes/shared")).Status);
        Assert.False(Directory.Exists(Path.Combine(VolumesRoot, "shared")));
    }

    /// <summary>An image with content at /seed (a file, a symlink, a 0750 directory), committed from a container.</summary>
    private async Task CommitSeededImageAsync(string reference, string? change = null)
    {
        string id = await ContainersApiTests.CreateAsync(Client, new
        {
            Image = "busybox",
            Cmd = new[] { "sh", "-c", "mkdir -p /seed/sub && echo from-image > /seed/hello && ln -s hello /seed/link && chmod 0750 /seed/sub && echo deep > /seed/sub/deep" },
        });
        await StartAndWaitAsync(id, remove: false);
        int colon = reference.LastIndexOf(':');
        string query = $"/commit?container={id}&repo={reference[..colon]}&tag={reference[(colon + 1)..]}" + (change is null ? "" : "&changes=" + Uri.EscapeDataString(change));
        using HttpResponseMessage commit = await Client.PostAsJsonAsync(query, new { });
        Assert.True(commit.StatusCode == HttpStatusCode.Created, await commit.Content.ReadAsStringAsync());
        using HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{id}");
    }

    [Fact]
    public async Task First_mount_of_an_empty_named_volume_copies_the_image_content_unless_nocopy()
    {
        await CommitSeededImageAsync("seeded:latest");
        var (_, output) = await RunAsync(new
        {
            Image = "seeded",
            Cmd = new[] { "sh", "-c", "cat /seed/hello /seed/link /seed/sub/deep; echo changed > /seed/hello" },
            HostConfig = new { Binds = new[] { "seed:/seed" } },
        });
        Assert.Equal("from-image\nfrom-image\ndeep\n", output);
        string data = Path.Combine(VolumesRoot, "seed", "_data");
        Assert.Equal("hello", new FileInfo(Path.Combine(data, "link")).LinkTarget);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute,
            File.GetUnixFileMode(Path.Combine(data, "sub")));

        // Not empty any more: the next container sees the volume's content, not the image's.
        (_, output) = await RunAsync(new { Image = "seeded", Cmd = new[] { "cat", "/seed/hello" }, HostConfig = new { Binds = new[] { "seed:/seed" } } });
        Assert.Equal("changed\n", output);

        // nocopy (-v name:/path:nocopy, or Mounts' VolumeOptions.NoCopy): the volume stays empty.
        (_, output) = await RunAsync(new { Image = "seeded", Cmd = new[] { "ls", "-A", "/seed" }, HostConfig = new { Binds = new[] { "bare:/seed:nocopy" } } });
        Assert.Equal("", output);
        (_, output) = await RunAsync(new
        {
            Image = "seeded",
            Cmd = new[] { "ls", "-A", "/seed" },
            HostConfig = new { Mounts = new[] { new { Type = "volume", Source = "bare2", Target = "/seed", VolumeOptions = new { NoCopy = true, Labels = new Dictionary<string, string> { ["k"] = "v" } } } } },
        });
        Assert.Equal("", output);
        Assert.Equal("v", (await Daemon.GetJsonAsync("/volumes/bare2")).GetProperty("Labels").GetProperty("k").GetString());
    }

    [Fact]
    public async Task Image_VOLUME_gets_an_anonymous_volume_that_rm_v_and_auto_remove_take_and_plain_rm_keeps()
    {
        await CommitSeededImageAsync("withvolume:latest", "VOLUME /seed");
        string first = await ContainersApiTests.CreateAsync(Client, new { Image = "withvolume", Cmd = new[] { "cat", "/seed/hello" } });
        JsonElement inspect = await Daemon.GetJsonAsync($"/containers/{first}/json");
        JsonElement mount = inspect.GetProperty("Mounts").EnumerateArray().Single();
        string anon = mount.GetProperty("Name").GetString()!;
        Assert.Matches("^[0-9a-f]{64}$", anon);
        Assert.Equal("/seed", mount.GetProperty("Destination").GetString());
        Assert.Equal("", mount.GetProperty("Mode").GetString());
        Assert.True(inspect.GetProperty("Config").GetProperty("Volumes").TryGetProperty("/seed", out _));
        JsonElement volume = await Daemon.GetJsonAsync($"/volumes/{anon}");
        Assert.Equal("", volume.GetProperty("Labels").GetProperty("com.docker.volume.anonymous").GetString());
        var (_, output) = await StartAndWaitAsync(first, remove: false);
        Assert.Equal("from-image\n", output); // copy-up into anonymous volumes too

        // rm without -v keeps the anonymous volume; with -v it goes.
        using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{first}"))
            Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);
        Assert.Equal([anon], await VolumeNamesAsync());
        string second = await ContainersApiTests.CreateAsync(Client, new { Image = "withvolume", Cmd = new[] { "true" }, Volumes = new Dictionary<string, object> { ["/cache"] = new { } } });
        string[] secondVolumes = (await Daemon.GetJsonAsync($"/containers/{second}/json")).GetProperty("Mounts").EnumerateArray().Select(m => m.GetProperty("Name").GetString()!).ToArray();
        Assert.Equal(2, secondVolumes.Length);
        using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{second}?v=1"))
            Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);
        Assert.Equal([anon], await VolumeNamesAsync());

        // A bind or a named volume at the VOLUME path covers it: no anonymous volume.
        string covered = await ContainersApiTests.CreateAsync(Client, new { Image = "withvolume", Cmd = new[] { "true" }, HostConfig = new { Binds = new[] { "named:/seed" } } });
        Assert.Equal(["named"], (await Daemon.GetJsonAsync($"/containers/{covered}/json")).GetProperty("Mounts").EnumerateArray().Select(m => m.GetProperty("Name").GetString()!).ToArray());
        using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{covered}?v=1")) Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);

        // AutoRemove (--rm) takes its anonymous volumes, as dockerd's does.
        string auto = await ContainersApiTests.CreateAsync(Client, new { Image = "withvolume", Cmd = new[] { "true" }, HostConfig = new { AutoRemove = true } });
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{auto}/start", null)) Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);
        for (int i = 0; i < 300 && (await SendAsync(HttpMethod.Get, $"/containers/{auto}/json")).Status != 404; i++) await Task.Delay(100);
        await Daemon.GetJsonAsync($"/containers/{auto}/json", 404);
        Assert.Equal(new[] { anon, "named" }.Order(StringComparer.Ordinal), await VolumeNamesAsync());
    }

    [Fact]
    public async Task Local_driver_options_mount_tmpfs_and_binds_while_a_container_runs()
    {
        await CreateVolumeAsync(new { Name = "scratch", DriverOpts = new Dictionary<string, string> { ["type"] = "tmpfs", ["device"] = "tmpfs", ["o"] = "size=10m,uid=1000" } });
        JsonElement inspect = await Daemon.GetJsonAsync("/volumes/scratch");
        Assert.Equal("size=10m,uid=1000", inspect.GetProperty("Options").GetProperty("o").GetString());
        string data = Path.Combine(VolumesRoot, "scratch", "_data");
        Assert.False(IsMountPoint(data)); // mounted on first use only

        string id = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "grep ' /data ' /proc/mounts; echo hi > /data/f; sleep 1000" }, HostConfig = new { Binds = new[] { "scratch:/data" } } });
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null)) Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);
        Assert.True(IsMountPoint(data));
        string line = File.ReadAllLines("/proc/self/mountinfo").Single(l => l.Split(' ')[4] == data);
        Assert.Contains(" - tmpfs tmpfs ", line);
        Assert.Contains("size=10240k", line);
        for (int i = 0; i < 100 && !File.Exists(Path.Combine(data, "f")); i++) await Task.Delay(100);
        Assert.Equal("hi\n", File.ReadAllText(Path.Combine(data, "f")));
        var (logs, _) = await ContainersApiTests.LogsAsync(Client, id);
        Assert.StartsWith("tmpfs /data tmpfs", logs);

        // The last user stops: unmounted (a tmpfs volume's content goes with it, as with dockerd).
        using (HttpResponseMessage stop = await Client.PostAsync($"/containers/{id}/stop?t=0", null)) Assert.Equal(HttpStatusCode.NoContent, stop.StatusCode);
        Assert.False(IsMountPoint(data));
        using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{id}")) Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);

        // type=none,o=bind: a host directory; removing the volume never touches its content.
        string host = Daemon.Directory.CreateSubdirectory("host-dir");
        File.WriteAllText(Path.Combine(host, "existing"), "x");
        await CreateVolumeAsync(new { Name = "hostdir", DriverOpts = new Dictionary<string, string> { ["type"] = "none", ["o"] = "bind", ["device"] = host } });
        var (_, output) = await RunAsync(new { Image = "busybox", Cmd = new[] { "sh", "-c", "cat /data/existing; echo; echo new > /data/written" }, HostConfig = new { Mounts = new[] { new { Type = "volume", Source = "hostdir", Target = "/data" } } } });
        Assert.Equal("x\n", output);
        Assert.Equal("new\n", File.ReadAllText(Path.Combine(host, "written")));
        Assert.False(IsMountPoint(Path.Combine(VolumesRoot, "hostdir", "_data")));
        Assert.Equal(204, (await SendAsync(HttpMethod.Delete, "/volumes/hostdir")).Status);
        Assert.True(File.Exists(Path.Combine(host, "existing")));
        Assert.True(File.Exists(Path.Combine(host, "written")));
    }
}
