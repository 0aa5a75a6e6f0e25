using System.Formats.Tar;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// /containers/{id}/archive (HEAD, GET, PUT), /export, /changes and POST /commit over HTTP and
/// through the real docker clients, on stopped and running containers, with escape attempts
/// aimed at a host directory the containers must never reach. Each test's daemon force-removes
/// its containers; the host directory is the test's own and removed at the end.
/// </summary>
public sealed class ContainerFilesTests : IAsyncLifetime
{
    private DaemonScope _daemon = null!;
    private TempDirectory _host = null!;

    public async Task InitializeAsync()
    {
        _host = new TempDirectory("cp-host");
        File.WriteAllText(_host.Combine("secret"), "host secret\n");
        _daemon = await DaemonScope.StartAsync();
        await _daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
    }

    public async Task DisposeAsync()
    {
        if (_daemon is not null) await _daemon.DisposeAsync();
        _host.Dispose();
    }

    private HttpClient Client => _daemon.Client;

    /// <summary>Creates a container from <paramref name="image"/> running <paramref name="script"/>, runs it to its end, returns its ID.</summary>
    private async Task<string> RunToEndAsync(string script, string image = "busybox")
    {
        string id = await ContainersApiTests.CreateAsync(Client, new { Image = image, Cmd = new[] { "sh", "-c", script } });
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null))
            Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using HttpResponseMessage wait = await Client.PostAsync($"/containers/{id}/wait", null, cts.Token);
        string text = await wait.Content.ReadAsStringAsync(cts.Token);
        Assert.Equal(0, JsonDocument.Parse(text).RootElement.GetProperty("StatusCode").GetInt32());
        return id;
    }

    private const string Setup = "busybox mkdir -p /data/sub && echo hello > /data/file && busybox ln -s / /rootlink && busybox ln -s ../../../../.. /data/up && busybox ln -s file /data/rel";

    private async Task<(int Status, JsonElement? Stat, string Body)> HeadAsync(string id, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, $"/containers/{id}/archive?path={Uri.EscapeDataString(path)}");
        using HttpResponseMessage response = await Client.SendAsync(request);
        JsonElement? stat = response.Headers.TryGetValues("X-Docker-Container-Path-Stat", out var values)
            ? JsonDocument.Parse(Convert.FromBase64String(values.Single())).RootElement.Clone() : null;
        return ((int)response.StatusCode, stat, "");
    }

    private async Task<(int Status, Dictionary<string, (TarEntryType Type, string Data, string Link)> Entries, string Error)> GetArchiveAsync(string url)
    {
        using HttpResponseMessage response = await Client.GetAsync(url);
        byte[] body = await response.Content.ReadAsByteArrayAsync();
        var entries = new Dictionary<string, (TarEntryType, string, string)>(StringComparer.Ordinal);
        if (!response.IsSuccessStatusCode) return ((int)response.StatusCode, entries, Encoding.UTF8.GetString(body));
        Assert.Equal("application/x-tar", response.Content.Headers.ContentType?.MediaType);
        using var reader = new TarReader(new MemoryStream(body));
        while (reader.GetNextEntry() is { } e)
        {
            string data = e.DataStream is null ? "" : new StreamReader(e.DataStream).ReadToEnd();
            entries[e.Name] = (e.EntryType, data, e.LinkName);
        }
        return (200, entries, "");
    }

    private async Task<(int Status, string Body)> PutAsync(string id, string path, byte[] tar, string query = "")
    {
        using var content = new ByteArrayContent(tar);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-tar");
        using HttpResponseMessage response = await Client.PutAsync($"/containers/{id}/archive?path={Uri.EscapeDataString(path)}{query}", content);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static byte[] Tar(params PaxTarEntry[] entries)
    {
        var output = new MemoryStream();
        using (var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
            foreach (PaxTarEntry e in entries) writer.WriteEntry(e);
        return output.ToArray();
    }

    private static PaxTarEntry FileEntry(string name, string text)
        => new(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)0x1A4, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) };

    [Fact]
    public async Task Stat_and_get_resolve_inside_the_rootfs_of_a_stopped_container()
    {
        string id = await RunToEndAsync(Setup);

        var (status, stat, _) = await HeadAsync(id, "/data/file");
        Assert.Equal(200, status);
        Assert.Equal("file", stat!.Value.GetProperty("name").GetString());
        Assert.Equal(6, stat.Value.GetProperty("size").GetInt64());
        Assert.Equal(0x1A4u, stat.Value.GetProperty("mode").GetUInt32()); // a regular file: permission bits only
        Assert.EndsWith("Z", stat.Value.GetProperty("mtime").GetString());

        (_, stat, _) = await HeadAsync(id, "/data");
        Assert.Equal(1u << 31, stat!.Value.GetProperty("mode").GetUInt32() & (1u << 31));
        (_, stat, _) = await HeadAsync(id, "/rootlink");
        Assert.Equal(1u << 27, stat!.Value.GetProperty("mode").GetUInt32() & (1u << 27));
        Assert.Equal("/", stat.Value.GetProperty("linkTarget").GetString());
        (_, stat, _) = await HeadAsync(id, "/data/rel");
        Assert.Equal("/data/file", stat!.Value.GetProperty("linkTarget").GetString());
        Assert.Equal(404, (await HeadAsync(id, "/nosuch")).Status);

        var (code, entries, error) = await GetArchiveAsync($"/containers/{id}/archive?path=/nosuch");
        Assert.Equal(404, code);
        Assert.Contains($"Could not find the file /nosuch in container {id}", error);

        (code, entries, _) = await GetArchiveAsync($"/containers/{id}/archive?path=/data");
        Assert.Equal(200, code);
        Assert.Equal(TarEntryType.Directory, entries["data/"].Type);
        Assert.Equal("hello\n", entries["data/file"].Data);
        Assert.Equal(TarEntryType.SymbolicLink, entries["data/up"].Type); // archived as a link, not followed
        Assert.Contains("data/sub/", entries.Keys);

        (_, entries, _) = await GetArchiveAsync($"/containers/{id}/archive?path=/data/.");
        Assert.Contains("./file", entries.Keys);
        Assert.DoesNotContain("data/file", entries.Keys);

        // Through a symlink to / or one climbing with ../: the container's own root, never the host's.
        string secret = _host.Combine("secret");
        foreach (string escape in new[] { "/rootlink" + secret, "/data/up" + secret, "/data/up/../../.." + secret, "/../../../.." + secret })
        {
            (code, entries, _) = await GetArchiveAsync($"/containers/{id}/archive?path={Uri.EscapeDataString(escape)}");
            Assert.True(code == 404, $"{escape}: {code}");
        }
        (code, entries, _) = await GetArchiveAsync($"/containers/{id}/archive?path={Uri.EscapeDataString("/data/up/bin/busybox")}");
        Assert.Equal(200, code);
        Assert.Single(entries);
        Assert.Equal(TarEntryType.RegularFile, entries["busybox"].Type);
        // A trailing slash follows the last link (still inside): the container's /data.
        (code, entries, _) = await GetArchiveAsync($"/containers/{id}/archive?path={Uri.EscapeDataString("/rootlink/")}");
        Assert.Equal(200, code);
        Assert.Contains("rootlink/data/file", entries.Keys);
        Assert.DoesNotContain(entries.Keys, k => k.Contains("secret", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Put_extracts_into_a_directory_and_refuses_hostile_archives()
    {
        string id = await RunToEndAsync(Setup);
        string secretDir = _host.Path;

        Assert.Equal(200, (await PutAsync(id, "/data", Tar(FileEntry("new.txt", "copied in\n")), "&noOverwriteDirNonDir=true")).Status);
        var (_, entries, _) = await GetArchiveAsync($"/containers/{id}/archive?path=/data/new.txt");
        Assert.Equal("copied in\n", entries["new.txt"].Data);

        var (status, body) = await PutAsync(id, "/data/file", Tar(FileEntry("x", "x")));
        Assert.Equal(400, status);
        Assert.Contains("not a directory", body);
        Assert.Equal(404, (await PutAsync(id, "/nosuch", Tar(FileEntry("x", "x")))).Status);
        // noOverwriteDirNonDir: a file over the directory /data/sub is refused.
        (status, body) = await PutAsync(id, "/data", Tar(FileEntry("sub", "x")), "&noOverwriteDirNonDir=1");
        Assert.Equal(400, status);
        Assert.Contains("cannot overwrite directory", body);

        // Into a symlink that points to / or climbs out: resolved in the container, where the host path does not exist.
        Assert.Equal(404, (await PutAsync(id, "/rootlink" + secretDir, Tar(FileEntry("evil1", "x")))).Status);
        Assert.Equal(404, (await PutAsync(id, "/data/up" + secretDir, Tar(FileEntry("evil2", "x")))).Status);
        // Entries climbing with ../, a symlink entry to / then a file through it, a device node.
        string climb = string.Concat(Enumerable.Repeat("../", 12)) + secretDir.TrimStart('/') + "/evil3";
        Assert.Equal(400, (await PutAsync(id, "/data", Tar(FileEntry(climb, "x")))).Status);
        var link = new PaxTarEntry(TarEntryType.SymbolicLink, "esc") { LinkName = "/" };
        Assert.Equal(400, (await PutAsync(id, "/data", Tar(link, FileEntry("esc" + secretDir + "/evil4", "x")))).Status);
        var link2 = new PaxTarEntry(TarEntryType.SymbolicLink, "esc2") { LinkName = "../../../../../../.." };
        Assert.Equal(400, (await PutAsync(id, "/data", Tar(link2, FileEntry("esc2" + secretDir + "/evil5", "x")))).Status);
        var device = new PaxTarEntry(TarEntryType.CharacterDevice, "mem") { DeviceMajor = 1, DeviceMinor = 1, Mode = (UnixFileMode)0x1B6 };
        Assert.Equal(400, (await PutAsync(id, "/data", Tar(device))).Status);

        Assert.Equal(new[] { "secret" }, Directory.GetFileSystemEntries(secretDir).Select(p => Path.GetFileName(p)).ToArray());
        Assert.Equal("host secret\n", File.ReadAllText(_host.Combine("secret")));
        Assert.Equal(404, (await HeadAsync(id, "/data/mem")).Status);
    }

    [Fact]
    public async Task Running_container_sees_what_put_wrote_and_export_changes_commit_work()
    {
        // Fresh and never started: no changes yet (null, as dockerd answers).
        string fresh = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "true" } });
        Assert.Equal(JsonValueKind.Null, (await _daemon.GetJsonAsync($"/containers/{fresh}/changes")).ValueKind);

        string id = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "busybox mkdir /data; echo one > /data/file; busybox rm /bin/cat; sleep 1000" } });
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null))
            Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);
        await WaitForAsync(async () => (await HeadAsync(id, "/data/file")).Status == 200);

        Assert.Equal(200, (await PutAsync(id, "/data", Tar(FileEntry("put.txt", "while running\n")))).Status);
        var (_, entries, _) = await GetArchiveAsync($"/containers/{id}/archive?path=/data/put.txt");
        Assert.Equal("while running\n", entries["put.txt"].Data);

        JsonElement changes = await _daemon.GetJsonAsync($"/containers/{id}/changes");
        var list = changes.EnumerateArray().Select(c => (c.GetProperty("Path").GetString()!, c.GetProperty("Kind").GetInt32())).ToList();
        Assert.Contains(("/data", 1), list);
        Assert.Contains(("/data/file", 1), list);
        Assert.Contains(("/data/put.txt", 1), list);
        Assert.Contains(("/bin/cat", 2), list);
        Assert.Contains(("/bin", 0), list);
        // The mount points the runtime made (dockerd's init layer) are no changes.
        Assert.DoesNotContain(list, c => c.Item1 is "/etc/hosts" or "/etc/hostname" or "/etc/resolv.conf" or "/proc" or "/sys" or "/dev" or "/etc");

        var (code, export, _) = await GetArchiveAsync($"/containers/{id}/export");
        Assert.Equal(200, code);
        Assert.Equal(TarEntryType.RegularFile, export["bin/busybox"].Type);
        Assert.Equal("one\n", export["data/file"].Data);
        Assert.DoesNotContain("bin/cat", export.Keys);

        // Commit the running container with a CMD change and an Env from the body; run the image.
        string query = "/commit?container=" + id + "&repo=committed&tag=v1&comment=files&author=tester&changes=" + Uri.EscapeDataString("CMD [\"sh\", \"-c\", \"echo $GREETING; busybox cat /data/put.txt\"]");
        using HttpResponseMessage commit = await Client.PostAsJsonAsync(query, new { Env = new[] { "GREETING=hi" } });
        string commitBody = await commit.Content.ReadAsStringAsync();
        Assert.True(commit.StatusCode == HttpStatusCode.Created, commitBody);
        string imageId = JsonDocument.Parse(commitBody).RootElement.GetProperty("Id").GetString()!;
        Assert.StartsWith("sha256:", imageId);
        Assert.Equal("running", (await _daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("State").GetProperty("Status").GetString()); // unpaused after
        JsonElement images = await _daemon.GetJsonAsync("/images/json");
        Assert.Contains(images.EnumerateArray(), i => i.GetProperty("Id").GetString() == imageId
            && i.GetProperty("RepoTags").EnumerateArray().Any(t => t.GetString() == "committed:v1"));
        JsonElement inspect = await _daemon.GetJsonAsync("/images/committed:v1/json");
        Assert.Equal("tester", inspect.GetProperty("Author").GetString());
        JsonElement history = await _daemon.GetJsonAsync("/images/committed:v1/history");
        Assert.Equal("files", history[0].GetProperty("Comment").GetString()); // newest first

        string child = await ContainersApiTests.CreateAsync(Client, new { Image = "committed:v1" });
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{child}/start", null))
            Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);
        using (HttpResponseMessage wait = await Client.PostAsync($"/containers/{child}/wait", null))
            Assert.Equal(0, JsonDocument.Parse(await wait.Content.ReadAsStringAsync()).RootElement.GetProperty("StatusCode").GetInt32());
        Assert.Equal("hi\nwhile running\n", (await ContainersApiTests.LogsAsync(Client, child)).Out);

        using (HttpResponseMessage missing = await Client.PostAsync("/commit?container=nosuch", null))
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Containers_have_dockerds_init_layer_files_which_export_shows_and_commit_leaves_out()
    {
        string id = await RunToEndAsync("busybox stat -c '%F %a %s %u' /.dockerenv; busybox readlink /etc/mtab");
        Assert.Equal("regular empty file 755 0 0\n/proc/mounts\n", (await ContainersApiTests.LogsAsync(Client, id)).Out);
        var (_, export, _) = await GetArchiveAsync($"/containers/{id}/export");
        Assert.Equal(TarEntryType.RegularFile, export[".dockerenv"].Type);
        Assert.Equal((TarEntryType.SymbolicLink, "/proc/mounts"), (export["etc/mtab"].Type, export["etc/mtab"].Link));
        Assert.Equal(TarEntryType.RegularFile, export["dev/console"].Type);
        Assert.Equal(TarEntryType.Directory, export["dev/pts/"].Type);
        Assert.Equal(TarEntryType.Directory, export["dev/shm/"].Type);
        // Neither a change nor a layer: the commit of a container that changed nothing adds none.
        Assert.Equal(JsonValueKind.Null, (await _daemon.GetJsonAsync($"/containers/{id}/changes")).ValueKind);
        using (HttpResponseMessage commit = await Client.PostAsync($"/commit?container={id}&repo=initlayer&tag=v1", null))
            Assert.Equal(HttpStatusCode.Created, commit.StatusCode);
        Assert.Equal(1, (await _daemon.GetJsonAsync("/images/initlayer:v1/json")).GetProperty("RootFS").GetProperty("Layers").GetArrayLength());

        // What the image has stays as the image has it.
        await _daemon.ImportBusyboxAsync("ownmtab:v1", null, new PaxTarEntry(TarEntryType.Directory, "etc/") { Mode = (UnixFileMode)0x1ED }, FileEntry("etc/mtab", "image's own\n"));
        id = await RunToEndAsync("busybox cat /etc/mtab", "ownmtab:v1");
        Assert.Equal("image's own\n", (await ContainersApiTests.LogsAsync(Client, id)).Out);

        // An image whose /etc is a symlink to a host path gets nothing written on the host.
        await _daemon.ImportBusyboxAsync("etclink:v1", null, new PaxTarEntry(TarEntryType.SymbolicLink, "etc") { LinkName = _host.Path, Mode = (UnixFileMode)0x1FF });
        id = await ContainersApiTests.CreateAsync(Client, new { Image = "etclink:v1", Cmd = new[] { "true" } });
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null))
            await start.Content.ReadAsStringAsync(); // the runtime may refuse the symlinked /etc; either way the host is untouched
        Assert.Equal(["secret"], Directory.GetFileSystemEntries(_host.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task An_init_layer_path_the_container_deleted_stays_deleted_at_its_next_start()
    {
        const string script = "for p in /.dockerenv /etc/mtab; do if busybox test -e $p -o -L $p; then busybox rm $p && echo removed $p; else echo no $p; fi; done";
        string id = await RunToEndAsync(script);
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null))
            Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);
        using (HttpResponseMessage wait = await Client.PostAsync($"/containers/{id}/wait", null))
            Assert.Equal(0, JsonDocument.Parse(await wait.Content.ReadAsStringAsync()).RootElement.GetProperty("StatusCode").GetInt32());
        Assert.Equal("removed /.dockerenv\nremoved /etc/mtab\nno /.dockerenv\nno /etc/mtab\n", (await ContainersApiTests.LogsAsync(Client, id)).Out);
        Assert.Equal(404, (await HeadAsync(id, "/.dockerenv")).Status);

        // As dockerd's diff against its init layer: deletions, and /etc changed by one.
        var changes = (await _daemon.GetJsonAsync($"/containers/{id}/changes")).EnumerateArray()
            .Select(c => (c.GetProperty("Path").GetString()!, c.GetProperty("Kind").GetInt32())).ToList();
        Assert.Equal([("/.dockerenv", 2), ("/etc", 0), ("/etc/mtab", 2)], changes.Order());
    }

    [Fact]
    public async Task A_running_containers_volumes_binds_and_etc_files_are_copied_through_and_its_kernel_file_systems_are_not()
    {
        string bound = _host.Combine("bound");
        Directory.CreateDirectory(bound);
        File.WriteAllText(Path.Combine(bound, "on-host"), "from the host\n");
        string id = await ContainersApiTests.CreateAsync(Client, new
        {
            Image = "busybox",
            Cmd = new[] { "sleep", "1000" },
            HostConfig = new { Binds = new[] { bound + ":/bound", "filesvol:/data", "filesro:/ro:ro" }, ReadonlyRootfs = true },
        });
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null))
            Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);

        // Out of a bind mount and the engine's /etc/hostname, as the container sees them.
        Assert.Equal("from the host\n", (await GetArchiveAsync($"/containers/{id}/archive?path=/bound/on-host")).Entries["on-host"].Data);
        Assert.Equal(id[..12] + "\n", (await GetArchiveAsync($"/containers/{id}/archive?path=/etc/hostname")).Entries["hostname"].Data);
        // Into the volume and the bind mount, though the root filesystem is read-only (which still refuses).
        Assert.Equal(200, (await PutAsync(id, "/data", Tar(FileEntry("put.txt", "into the volume\n")))).Status);
        Assert.Equal("into the volume\n", File.ReadAllText(Path.Combine(_daemon.Options.DataRoot, "volumes", "filesvol", "_data", "put.txt")));
        Assert.Equal(200, (await PutAsync(id, "/bound", Tar(FileEntry("put.txt", "into the bind\n")))).Status);
        Assert.Equal("into the bind\n", File.ReadAllText(Path.Combine(bound, "put.txt")));
        Assert.Equal((500, "container rootfs is marked read-only"), await PutMessageAsync(id, "/", Tar(FileEntry("put.txt", "x"))));
        Assert.Equal((500, "mounted volume is marked read-only"), await PutMessageAsync(id, "/ro", Tar(FileEntry("put.txt", "x"))));

        // /proc is archived as its mount point only; a link the container made into it is no way in.
        var (_, proc, _) = await GetArchiveAsync($"/containers/{id}/archive?path=/proc");
        Assert.Equal(["proc/"], proc.Keys);
        Assert.Equal(404, (await GetArchiveAsync($"/containers/{id}/archive?path=/proc/1/status")).Status);
        var link = new PaxTarEntry(TarEntryType.SymbolicLink, "self") { LinkName = "/proc/1", Mode = (UnixFileMode)0x1FF };
        Assert.Equal(200, (await PutAsync(id, "/data", Tar(link))).Status);
        var (status, body) = await PutAsync(id, "/data/self", Tar(FileEntry("oom_score_adj", "-1000")));
        Assert.Equal(400, status);
        Assert.Contains("kernel file system", body);
        (status, body) = await PutAsync(id, "/data", Tar(FileEntry("self/oom_score_adj", "-1000")));
        Assert.NotEqual(200, status);
    }

    private async Task<(int Status, string Message)> PutMessageAsync(string id, string path, byte[] tar)
    {
        var (status, body) = await PutAsync(id, path, tar);
        return (status, body.Length == 0 ? "" : JsonDocument.Parse(body).RootElement.GetProperty("message").GetString()!);
    }

    private string VolumeData(string volume) => Path.Combine(_daemon.Options.DataRoot, "volumes", volume, "_data");

    private async Task CreateVolumeAsync(string name, string file, string text)
    {
        using (HttpResponseMessage create = await Client.PostAsJsonAsync("/volumes/create", new { Name = name }))
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(VolumeData(name), file))!);
        File.WriteAllText(Path.Combine(VolumeData(name), file), text);
    }

    /// <summary>Host mount points below the daemon's directory or the test's own (a copy's mounts must leave none), subpath pins included.</summary>
    private List<string> MountsLeft()
        => File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4])
            .Where(m => m.StartsWith(_daemon.Directory.Path + "/", StringComparison.Ordinal) || m.StartsWith(_host.Path + "/", StringComparison.Ordinal))
            .Where(m => !m.EndsWith("/berth.sock", StringComparison.Ordinal) && !m.Contains("/netns/", StringComparison.Ordinal))
            .ToList();

    [Fact]
    public async Task A_stopped_containers_volumes_binds_and_etc_files_are_copied_through_as_dockerd_mounts_them_for_the_copy()
    {
        string bound = _host.Combine("bound");
        Directory.CreateDirectory(bound);
        File.WriteAllText(Path.Combine(bound, "on-host"), "from the host\n");
        await CreateVolumeAsync("stoppedvol", "in-volume", "from the volume\n");
        await CreateVolumeAsync("stoppedro", "in-ro", "read-only\n");
        await CreateVolumeAsync("stoppedsub", "inner/in-sub", "from the subpath\n");
        List<string> before = MountsLeft();
        string id = await ContainersApiTests.CreateAsync(Client, new
        {
            Image = "busybox",
            Cmd = new[] { "true" },
            HostConfig = new
            {
                Binds = new[] { bound + ":/bound", "stoppedvol:/data", "stoppedro:/ro:ro" },
                Mounts = new[] { new { Type = "volume", Source = "stoppedsub", Target = "/data/sub", VolumeOptions = new { Subpath = "inner" } } },
            },
        }, apiVersion: "1.45");

        // Created, never started: the volumes (one within another, one by its subpath) and the bind mount.
        Assert.Equal(200, (await HeadAsync(id, "/data/in-volume")).Status);
        Assert.Equal("from the volume\n", (await GetArchiveAsync($"/containers/{id}/archive?path=/data/in-volume")).Entries["in-volume"].Data);
        Assert.Equal("from the subpath\n", (await GetArchiveAsync($"/containers/{id}/archive?path=/data/sub/in-sub")).Entries["in-sub"].Data);
        Assert.Equal("from the host\n", (await GetArchiveAsync($"/containers/{id}/archive?path=/bound/on-host")).Entries["on-host"].Data);
        var (code, tree, _) = await GetArchiveAsync($"/containers/{id}/archive?path=/data");
        Assert.Equal(200, code);
        Assert.Contains("data/in-volume", tree.Keys);
        Assert.Contains("data/sub/in-sub", tree.Keys);
        Assert.Equal(200, (await PutAsync(id, "/data", Tar(FileEntry("put.txt", "into the volume\n")))).Status);
        Assert.Equal("into the volume\n", File.ReadAllText(Path.Combine(VolumeData("stoppedvol"), "put.txt")));
        Assert.Equal(200, (await PutAsync(id, "/data/sub", Tar(FileEntry("put.txt", "into the subpath\n")))).Status);
        Assert.Equal("into the subpath\n", File.ReadAllText(Path.Combine(VolumeData("stoppedsub"), "inner", "put.txt")));
        Assert.Equal(200, (await PutAsync(id, "/bound", Tar(FileEntry("put.txt", "into the bind\n")))).Status);
        Assert.Equal("into the bind\n", File.ReadAllText(Path.Combine(bound, "put.txt")));
        // A read-only volume reads, and refuses a put at it or through it, in dockerd's words.
        Assert.Equal("read-only\n", (await GetArchiveAsync($"/containers/{id}/archive?path=/ro/in-ro")).Entries["in-ro"].Data);
        Assert.Equal((500, "mounted volume is marked read-only"), await PutMessageAsync(id, "/ro", Tar(FileEntry("put.txt", "x"))));
        Assert.NotEqual(200, (await PutAsync(id, "/", Tar(FileEntry("ro/through.txt", "x")))).Status);
        Assert.Equal(["in-ro"], Directory.GetFileSystemEntries(VolumeData("stoppedro")).Select(Path.GetFileName));
        // A put refused half-way leaves nothing mounted either.
        var device = new PaxTarEntry(TarEntryType.CharacterDevice, "mem") { DeviceMajor = 1, DeviceMinor = 1, Mode = (UnixFileMode)0x1B6 };
        Assert.Equal(400, (await PutAsync(id, "/data", Tar(FileEntry("first.txt", "x"), device))).Status);

        // The rootfs below the mount points got nothing (export leaves the volumes out), the host no mount.
        var (_, export, _) = await GetArchiveAsync($"/containers/{id}/export");
        Assert.DoesNotContain(export.Keys, k => k.EndsWith("put.txt", StringComparison.Ordinal) || k.EndsWith("in-volume", StringComparison.Ordinal));
        Assert.Equal(before, MountsLeft());

        // Exited: the engine's /etc files, which its start wrote.
        using (HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null))
            Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);
        using (HttpResponseMessage wait = await Client.PostAsync($"/containers/{id}/wait", null))
            Assert.Equal(0, JsonDocument.Parse(await wait.Content.ReadAsStringAsync()).RootElement.GetProperty("StatusCode").GetInt32());
        Assert.Equal(id[..12] + "\n", (await GetArchiveAsync($"/containers/{id}/archive?path=/etc/hostname")).Entries["hostname"].Data);
        Assert.Equal("into the volume\n", (await GetArchiveAsync($"/containers/{id}/archive?path=/data/put.txt")).Entries["put.txt"].Data);
        Assert.Equal(before, MountsLeft());
    }

    [Fact]
    public async Task A_stopped_containers_copy_whose_mounts_fail_half_way_leaves_nothing_mounted()
    {
        string gone = _host.Combine("gone");
        Directory.CreateDirectory(gone);
        await CreateVolumeAsync("halfvol", "inner/f", "x\n");
        string id = await ContainersApiTests.CreateAsync(Client, new
        {
            Image = "busybox",
            Cmd = new[] { "true" },
            HostConfig = new
            {
                Mounts = new object[]
                {
                    new { Type = "volume", Source = "halfvol", Target = "/a", VolumeOptions = new { Subpath = "inner" } },
                    new { Type = "bind", Source = gone, Target = "/a/b/gone" },
                },
            },
        }, apiVersion: "1.45");
        List<string> before = MountsLeft();
        Directory.Delete(gone);

        // The volume and its subpath are mounted before the bind fails: all undone.
        var (code, _, error) = await GetArchiveAsync($"/containers/{id}/archive?path=/a/f");
        Assert.Equal(500, code);
        Assert.Contains(gone, error);
        Assert.Equal(before, MountsLeft());
        string subpaths = Path.Combine(_daemon.Options.ExecRoot, "subpaths");
        Assert.True(!Directory.Exists(subpaths) || Directory.GetFileSystemEntries(subpaths).Length == 0);
        Directory.CreateDirectory(gone);
        Assert.Equal("x\n", (await GetArchiveAsync($"/containers/{id}/archive?path=/a/f")).Entries["f"].Data);
        Assert.Equal(before, MountsLeft());
    }

    [Fact]
    public async Task Copies_into_a_stopped_container_run_side_by_side_with_its_start_and_a_read_only_rootfs_takes_them_in_its_volume()
    {
        string id = await ContainersApiTests.CreateAsync(Client, new
        {
            Image = "busybox",
            Cmd = new[] { "sleep", "3" }, // long enough for the puts after the start to find it running
            HostConfig = new { Binds = new[] { "racevol:/data" }, ReadonlyRootfs = true },
        });
        List<string> before = MountsLeft();
        // Eight puts at once, a start among them: each put sees the container stopped (and mounts the
        // volume for itself) or running (and writes through its root); none is lost, the start succeeds.
        var puts = Enumerable.Range(0, 8).Select(i => PutAsync(id, "/data", Tar(FileEntry($"f{i}", $"{i}\n")))).ToList();
        Task<HttpResponseMessage> start = Client.PostAsync($"/containers/{id}/start", null);
        foreach (var put in puts) Assert.Equal(200, (await put).Status);
        using (HttpResponseMessage started = await start)
            Assert.Equal(HttpStatusCode.NoContent, started.StatusCode);
        using (HttpResponseMessage wait = await Client.PostAsync($"/containers/{id}/wait", null))
            Assert.Equal(0, JsonDocument.Parse(await wait.Content.ReadAsStringAsync()).RootElement.GetProperty("StatusCode").GetInt32());
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"f{i}"), Directory.GetFileSystemEntries(VolumeData("racevol")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        // Stopped again: the read-only rootfs still refuses outside the volume.
        Assert.Equal((500, "container rootfs is marked read-only"), await PutMessageAsync(id, "/", Tar(FileEntry("x", "x"))));
        Assert.Equal(200, (await PutAsync(id, "/data", Tar(FileEntry("after", "after\n")))).Status);
        Assert.Equal("after\n", File.ReadAllText(Path.Combine(VolumeData("racevol"), "after")));
        Assert.Equal(before, MountsLeft());
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in 30 s");
            await Task.Delay(100);
        }
    }

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Docker_cp_export_diff_commit_on_running_and_stopped_containers(string binary)
    {
        using var config = new TempDirectory("docker-config");
        using var work = new TempDirectory("cp-work");
        var docker = new DockerCli(binary, _daemon.DockerHost, config.Path);
        File.WriteAllText(work.Combine("in.txt"), "from the host\n");
        Directory.CreateDirectory(work.Combine("dir"));
        File.WriteAllText(work.Combine("dir", "a.txt"), "a\n");

        docker.Ok("run", "-d", "--name", "box", "busybox", "sh", "-c", "busybox mkdir /data; busybox ln -s / /escape; sleep 1000");
        WaitFor(() => docker.Run("exec", "box", "busybox", "test", "-L", "/escape").Exit == 0);
        docker.Ok("cp", work.Combine("in.txt"), "box:/data/");
        docker.Ok("cp", work.Combine("dir"), "box:/data/dir");
        Assert.Equal("from the host\n", docker.Ok("exec", "box", "busybox", "cat", "/data/in.txt"));
        Assert.Equal("a\n", docker.Ok("exec", "box", "busybox", "cat", "/data/dir/a.txt"));
        docker.Ok("cp", "box:/data/in.txt", work.Combine("out.txt"));
        Assert.Equal("from the host\n", File.ReadAllText(work.Combine("out.txt")));
        docker.Ok("cp", "box:/data/dir/.", work.CreateSubdirectory("back"));
        Assert.Equal("a\n", File.ReadAllText(work.Combine("back", "a.txt")));

        // Through the container's symlink to /: the container's root, not the host's.
        var (exit, _, _) = docker.Run("cp", work.Combine("in.txt"), "box:/escape" + _host.Path + "/");
        Assert.NotEqual(0, exit);
        (exit, _, _) = docker.Run("cp", "box:/escape" + _host.Combine("secret"), work.Combine("stolen"));
        Assert.NotEqual(0, exit);
        Assert.False(File.Exists(work.Combine("stolen")));
        Assert.Equal(new[] { "secret" }, Directory.GetFileSystemEntries(_host.Path).Select(p => Path.GetFileName(p)).ToArray());

        string diff = docker.Ok("diff", "box");
        Assert.Contains("A /data/in.txt", diff);
        Assert.Contains("A /escape", diff);

        docker.Ok("commit", "-c", "CMD [\"busybox\", \"cat\", \"/data/in.txt\"]", "box", "snap:1");
        Assert.Equal("from the host\n", docker.Ok("run", "--rm", "snap:1"));

        docker.Ok("stop", "-t", "1", "box");
        docker.Ok("cp", work.Combine("in.txt"), "box:/data/stopped.txt");
        docker.Ok("cp", "box:/data/stopped.txt", work.Combine("stopped.txt"));
        Assert.Equal("from the host\n", File.ReadAllText(work.Combine("stopped.txt")));
        docker.Ok("export", "-o", work.Combine("box.tar"), "box");
        var names = new List<string>();
        using (var reader = new TarReader(File.OpenRead(work.Combine("box.tar"))))
            while (reader.GetNextEntry() is { } e) names.Add(e.Name);
        Assert.Contains("data/stopped.txt", names);
        Assert.Contains("bin/busybox", names);

        // A stopped container's volume, both ways, as another container then sees it.
        docker.Ok("create", "--name", "withvolume", "-v", "cpvol:/data", "busybox", "true");
        docker.Ok("cp", work.Combine("in.txt"), "withvolume:/data/");
        Assert.Equal("from the host\n", docker.Ok("run", "--rm", "-v", "cpvol:/data", "busybox", "cat", "/data/in.txt"));
        docker.Ok("cp", "withvolume:/data/in.txt", work.Combine("from-volume.txt"));
        Assert.Equal("from the host\n", File.ReadAllText(work.Combine("from-volume.txt")));
    }

    private static void WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in 30 s");
            Thread.Sleep(100);
        }
    }
}
