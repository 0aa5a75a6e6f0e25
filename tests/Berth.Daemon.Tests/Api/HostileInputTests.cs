using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Berth.Daemon.Tests.Api;

/// <summary>
/// Malformed and hostile requests, checked against what dockerd 20.10 answers: a 400 naming the
/// problem (in dockerd's words where it has them), never a 500 with a .NET exception's text, and
/// nothing left behind (no container, no half-loaded image).
/// </summary>
public sealed class HostileInputTests : DaemonTestBase
{
    private async Task<(int Status, string Message)> SendAsync(HttpMethod method, string path, byte[] body, string contentType)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        using var request = new HttpRequestMessage(method, path) { Content = content };
        using HttpResponseMessage response = await Client.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        if (response.IsSuccessStatusCode) return ((int)response.StatusCode, text);
        return ((int)response.StatusCode, JsonDocument.Parse(text).RootElement.GetProperty("message").GetString()!);
    }

    private Task<(int Status, string Message)> CreateAsync(string json)
        => SendAsync(HttpMethod.Post, "/v1.41/containers/create", Encoding.UTF8.GetBytes(json), "application/json");

    private Task<(int Status, string Message)> LoadAsync(byte[] archive) => SendAsync(HttpMethod.Post, "/images/load?quiet=1", archive, "application/x-tar");

    private Task<(int Status, string Message)> ImportAsync(byte[] tar, string repo)
        => SendAsync(HttpMethod.Post, $"/images/create?fromSrc=-&repo={repo}&tag=1", tar, "application/x-tar");

    private async Task<string[]> ImageTagsAsync()
        => (await Daemon.GetJsonAsync("/images/json?all=1")).EnumerateArray()
            .SelectMany(i => i.GetProperty("RepoTags") is { ValueKind: JsonValueKind.Array } tags && tags.GetArrayLength() > 0
                ? tags.EnumerateArray().Select(t => t.GetString() == "<none>:<none>" ? "<none>" : t.GetString()!)
                : ["<none>"])
            .Order(StringComparer.Ordinal).ToArray();

    private static byte[] Tar(params TarEntry[] entries)
    {
        var output = new MemoryStream();
        using (var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
            foreach (TarEntry e in entries) writer.WriteEntry(e);
        return output.ToArray();
    }

    private static PaxTarEntry FileEntry(string name, string text)
        => new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) };

    /// <summary>A docker-save archive of one image named <paramref name="tag"/>; its config gives <paramref name="diffId"/> (the layer's own by default).</summary>
    private static byte[] SaveArchive(string tag, byte[] layerTar, string? diffId = null)
    {
        string layerHex = Convert.ToHexStringLower(SHA256.HashData(layerTar));
        byte[] config = Encoding.UTF8.GetBytes($$$"""{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["{{{diffId ?? "sha256:" + layerHex}}}"]}}""");
        string configHex = Convert.ToHexStringLower(SHA256.HashData(config));
        return Tar(
            new PaxTarEntry(TarEntryType.RegularFile, $"{configHex}.json") { DataStream = new MemoryStream(config) },
            new PaxTarEntry(TarEntryType.RegularFile, $"{layerHex}/layer.tar") { DataStream = new MemoryStream(layerTar) },
            FileEntry("manifest.json", $$"""[{"Config":"{{configHex}}.json","RepoTags":["{{tag}}"],"Layers":["{{layerHex}}/layer.tar"]}]"""));
    }

    private static readonly byte[] Garbage = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("this is not a tar archive ", 60)));
    private static readonly byte[] NotGzip = [0x1f, 0x8b, 0x08, 0x00, .. Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("garbage", 40)))];

    [Theory]
    [InlineData("""{"Image":"busybox","HostConfig":{"CpuPeriod":5}}""", "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")]
    [InlineData("""{"Image":"busybox","HostConfig":{"CpuQuota":5}}""", "CPU cfs quota can not be less than 1ms (i.e. 1000)")]
    [InlineData("""{"Image":"busybox","HostConfig":{"OomScoreAdj":5000}}""", "Invalid value 5000, range for oom score adj is [-1000, 1000]")]
    [InlineData("""{"Image":"busybox","HostConfig":{"ShmSize":-1}}""", "SHM size can not be less than 0")]
    [InlineData("""{"Image":"busybox","HostConfig":{"CapAdd":["CAP_BOGUS"]}}""", "invalid CapAdd: unknown capability: \"CAP_BOGUS\"")]
    [InlineData("""{"Image":"busybox","HostConfig":{"CapDrop":["bogus"]}}""", "invalid CapDrop: unknown capability: \"CAP_BOGUS\"")]
    [InlineData("""{"Image":"busybox","StopSignal":"SIGBOGUS"}""", "Invalid signal: SIGBOGUS")]
    [InlineData("""{"Image":"busybox","WorkingDir":"relative"}""", "the working directory 'relative' is invalid, it needs to be an absolute path")]
    [InlineData("""{"Image":"BadName"}""", "invalid reference format")]
    [InlineData("""{"Image":"busybox@sha256:abc"}""", "invalid reference format")]
    [InlineData("""{"Image":"busybox","Env":"A=1"}""", "invalid JSON: cannot unmarshal the value at $.Env (line 1, byte 31): want an array of strings")]
    [InlineData("""{"Image":"busybox","HostConfig":{"Memory":"1g"}}""", "invalid JSON: cannot unmarshal the value at $.HostConfig.Memory (line 1, byte 47): want an integer (64-bit)")]
    [InlineData("""{"Image":"busybox","Labels":["a"]}""", "want an object")]
    [InlineData("""{nope""", "invalid JSON: line 1, byte 2: 'n' is an invalid start of a property name.")]
    public async Task Create_refuses_what_dockerd_refuses_with_a_400_in_its_words_and_creates_nothing(string body, string message)
    {
        var (status, text) = await CreateAsync(body);
        Assert.True(status == 400, $"{status} {text}");
        Assert.True(text.Contains(message, StringComparison.Ordinal), text);
        Assert.DoesNotContain("System.", text);
        Assert.Equal(0, (await Daemon.GetJsonAsync("/containers/json?all=1")).GetArrayLength());
    }

    [Fact]
    public async Task Create_takes_capabilities_in_any_case_with_or_without_CAP_and_realtime_stop_signals()
    {
        var (status, text) = await CreateAsync("""{"Image":"busybox","StopSignal":"SIGRTMIN+3","HostConfig":{"CapAdd":["net_admin","CAP_SYS_TIME"],"CapDrop":["ALL"],"CpuPeriod":100000,"CpuQuota":50000,"OomScoreAdj":-1000}}""");
        Assert.True(status == 201, text);
    }

    [Fact]
    public async Task Import_of_a_tar_the_layer_applier_refuses_leaves_no_image_and_without_a_repo_keeps_a_none_image()
    {
        string[] before = await ImageTagsAsync();
        var (status, message) = await ImportAsync(Tar(new PaxTarEntry(TarEntryType.SymbolicLink, "out") { LinkName = "/tmp" }, FileEntry("out/escaped", "x")), "hostile/through-symlink");
        Assert.Equal(400, status);
        Assert.Contains("`out` resolves outside the target directory", message);
        (status, message) = await ImportAsync(Tar(FileEntry("../../escaped", "x")), "hostile/dotdot");
        Assert.Equal(400, status);
        Assert.Contains("leads outside the target directory", message);
        (status, message) = await ImportAsync(NotGzip, "hostile/notgzip");
        Assert.Equal(400, status);
        Assert.StartsWith("Error processing tar file(gzip): corrupt compressed data", message);
        (status, message) = await ImportAsync(Garbage, "hostile/garbage");
        Assert.Equal(400, status);
        Assert.StartsWith("Error processing tar file: archive/tar: invalid tar header", message);
        Assert.Equal(before, await ImageTagsAsync());

        (status, string body) = await SendAsync(HttpMethod.Post, "/images/create?fromSrc=-", Tar(FileEntry("hello", "hi")), "application/x-tar");
        Assert.True(status == 200, body);
        string id = JsonDocument.Parse(body.Split('\n')[0]).RootElement.GetProperty("status").GetString()!;
        Assert.Equal(id, (await Daemon.GetJsonAsync($"/images/{id}/json")).GetProperty("Id").GetString());
        string[] after = await ImageTagsAsync();
        Assert.Equal(before.Append("<none>").Order(StringComparer.Ordinal), after);
    }

    [Fact]
    public async Task Load_of_a_malformed_or_lying_archive_is_a_400_naming_it_and_leaves_the_names_as_they_were()
    {
        string[] before = await ImageTagsAsync();
        var (status, message) = await LoadAsync(Garbage);
        Assert.Equal((400, true), (status, message.StartsWith("Error processing tar file: archive/tar: invalid tar header", StringComparison.Ordinal)));
        (status, message) = await LoadAsync(NotGzip);
        Assert.Equal((400, true), (status, message.StartsWith("Error processing tar file(gzip)", StringComparison.Ordinal)));
        (status, message) = await LoadAsync([]);
        Assert.Equal(400, status);
        Assert.DoesNotContain("Unable to", message);

        // dockerd's words for a layer that is not what the config says; busybox:latest keeps its image.
        (status, message) = await LoadAsync(SaveArchive("busybox:latest", Tar(FileEntry("hello", "hi")), "sha256:" + new string('0', 64)));
        Assert.Equal(400, status);
        Assert.StartsWith($"invalid diffID for layer 0: expected \"sha256:{new string('0', 64)}\", got \"sha256:", message);
        (status, message) = await LoadAsync(SaveArchive("hostile:1", Tar(new PaxTarEntry(TarEntryType.SymbolicLink, "out") { LinkName = "../../../../tmp" }, FileEntry("out/escaped", "x"))));
        Assert.Equal(400, status);
        Assert.Contains("out/escaped", message);
        Assert.Equal(before, await ImageTagsAsync());
        Assert.Equal(1, (await Daemon.GetJsonAsync("/images/json?all=1")).GetArrayLength());
    }

    [Fact]
    public async Task Copy_of_a_malformed_tar_into_a_container_is_a_400_naming_it()
    {
        var (status, body) = await CreateAsync("""{"Image":"busybox"}""");
        Assert.True(status == 201, body);
        string id = JsonDocument.Parse(body).RootElement.GetProperty("Id").GetString()!;
        foreach (byte[] tar in new[] { Garbage, Tar(FileEntry("big", new string('x', 4000)))[..1500] })
        {
            var (code, message) = await SendAsync(HttpMethod.Put, $"/containers/{id}/archive?path=/", tar, "application/x-tar");
            Assert.True(code == 400, $"{code} {message}");
            Assert.StartsWith("Error processing tar file: ", message);
            Assert.DoesNotContain("Unable to", message);
        }
    }

    [Fact]
    public async Task Update_refuses_a_CFS_period_out_of_the_kernels_bounds_before_writing_the_cgroup()
    {
        var (status, body) = await CreateAsync("""{"Image":"busybox"}""");
        Assert.True(status == 201, body);
        string id = JsonDocument.Parse(body).RootElement.GetProperty("Id").GetString()!;
        var (code, message) = await SendAsync(HttpMethod.Post, $"/containers/{id}/update", Encoding.UTF8.GetBytes("""{"CpuPeriod":5}"""), "application/json");
        Assert.Equal((400, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"), (code, message));
    }

    /// <summary>dockerd takes "70000/tcp" at create; PrivatePort is a uint16 to docker clients, and one such value fails every `docker ps`.</summary>
    [Fact]
    public async Task An_exposed_port_out_of_range_is_left_out_of_the_list_so_clients_can_still_read_it()
    {
        var (status, body) = await CreateAsync("""{"Image":"busybox","ExposedPorts":{"70000/tcp":{},"80/tcp":{}}}""");
        Assert.True(status == 201, body);
        JsonElement ports = Assert.Single((await Daemon.GetJsonAsync("/containers/json?all=1")).EnumerateArray()).GetProperty("Ports");
        Assert.Equal([80], ports.EnumerateArray().Select(p => p.GetProperty("PrivatePort").GetInt32()));
    }

    [Theory]
    [InlineData("""{"health":["bogus"]}""", "Unrecognised filter value for health: bogus")]
    [InlineData("""{"status":["bogus"]}""", "Invalid filter 'status=bogus'")]
    [InlineData("""{"exited":["abc"]}""", "invalid filter 'exited=abc'")]
    [InlineData("notjson", "invalid filters `notjson`: line 1, byte 2: 'notjson' is an invalid JSON literal. Expected the literal 'null'.")]
    public async Task Container_list_filter_values_are_refused_even_with_no_container_to_try_them_on(string filters, string message)
    {
        using HttpResponseMessage r = await Client.GetAsync("/containers/json?filters=" + Uri.EscapeDataString(filters));
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.BadRequest, text);
        Assert.Equal(message, JsonDocument.Parse(text).RootElement.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("filters=&keep-storage=0", 200, "")]
    [InlineData("keep-storage=abc", 400, "keep-storage is in bytes and expects an integer, got abc")]
    [InlineData("keep-storage=1073741824", 501, "keep-storage is not supported")]
    [InlineData("filters=%7B%22until%22%3A%7B%2224h%22%3Atrue%7D%7D", 501, "build cache prune filters (until) are not supported")]
    [InlineData("filters=notjson", 400, "invalid filters")]
    [InlineData("filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", 400, "invalid filter 'bogus'")]
    public async Task Build_cache_prune_refuses_what_it_cannot_honour_instead_of_pruning_everything(string query, int status, string message)
    {
        var (code, text) = await SendAsync(HttpMethod.Post, "/build/prune?" + query, [], "application/json");
        Assert.True(code == status, $"{code} {text}");
        Assert.Contains(message, text);
    }
    /// <summary>dockerd's CheckForJSON on every endpoint that takes a JSON document: nothing is created from a body of another type.</summary>
    [Theory]
    [InlineData("/containers/create", """{"Image":"busybox"}""")]
    [InlineData("/networks/create", """{"Name":"plain"}""")]
    [InlineData("/volumes/create", """{"Name":"plain"}""")]
    [InlineData("/commit?container=ctype&repo=plain", "{}")]
    [InlineData("/containers/ctype/update", "{}")]
    [InlineData("/containers/ctype/exec", """{"Cmd":["true"]}""")]
    [InlineData("/networks/bridge/connect", """{"Container":"ctype"}""")]
    [InlineData("/networks/bridge/disconnect", """{"Container":"ctype"}""")]
    public async Task A_JSON_body_of_another_Content_Type_is_refused_with_dockerds_400(string path, string json)
    {
        var (status, body) = await CreateAsync("""{"Image":"busybox"}""", "ctype");
        Assert.True(status == 201, body);
        int networks = (await Daemon.GetJsonAsync("/networks")).GetArrayLength(), volumes = await VolumeCountAsync();
        foreach (string? type in new[] { "text/plain", "application/jsonx", null })
        {
            using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(json));
            content.Headers.ContentType = type is null ? null : new MediaTypeHeaderValue(type);
            using HttpResponseMessage r = await Client.PostAsync(path, content);
            string text = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.BadRequest, $"{type}: {(int)r.StatusCode} {text}");
            Assert.Equal($"Content-Type specified ({type}) must be 'application/json'", JsonDocument.Parse(text).RootElement.GetProperty("message").GetString());
        }
        Assert.Single((await Daemon.GetJsonAsync("/containers/json?all=1")).EnumerateArray());
        Assert.Equal(networks, (await Daemon.GetJsonAsync("/networks")).GetArrayLength());
        Assert.Equal(volumes, await VolumeCountAsync());
        Assert.Single((await Daemon.GetJsonAsync("/images/json")).EnumerateArray());

        // Parameters are fine, as in dockerd (mime.ParseMediaType), and so is no Content-Type without a body.
        using var charset = new StringContent("""{"Image":"busybox"}""", Encoding.UTF8, "application/json");
        using (HttpResponseMessage created = await Client.PostAsync("/containers/create", charset)) Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using (HttpResponseMessage commit = await Client.PostAsync("/commit?container=ctype&repo=committed", null)) Assert.Equal(HttpStatusCode.Created, commit.StatusCode);
    }

    private async Task<int> VolumeCountAsync()
        => (await Daemon.GetJsonAsync("/volumes")).GetProperty("Volumes") is { ValueKind: JsonValueKind.Array } list ? list.GetArrayLength() : 0;

    private async Task<(int Status, string Message)> CreateAsync(string json, string name)
        => await SendAsync(HttpMethod.Post, $"/v1.41/containers/create?name={name}", Encoding.UTF8.GetBytes(json), "application/json");

    [Fact]
    public async Task Rename_looks_the_container_up_before_the_name_and_says_so_in_dockerds_words()
    {
        var (status, message) = await SendAsync(HttpMethod.Post, "/containers/nosuch/rename?name=bad%20name!", [], "application/json");
        Assert.Equal((404, "No such container: nosuch"), (status, message));
        Assert.Equal(201, (await CreateAsync("""{"Image":"busybox"}""", "renamed")).Status);
        (status, message) = await SendAsync(HttpMethod.Post, "/containers/renamed/rename?name=bad%20name!", [], "application/json");
        Assert.Equal((400, "Error when allocating new name: Invalid container name (/bad name!), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"), (status, message));
    }

    [Fact]
    public async Task A_list_limit_that_is_no_number_is_a_400()
    {
        var (status, message) = await SendAsync(HttpMethod.Get, "/containers/json?limit=abc", [], "application/json");
        Assert.Equal((400, "invalid value for limit: strconv.Atoi: parsing \"abc\": invalid syntax"), (status, message));
    }

    [Theory]
    [InlineData("""{"Name":"n1","Driver":"host"}""", 403, "only one instance of \"host\" network is allowed")]
    [InlineData("""{"Name":"n1","Driver":"null"}""", 403, "only one instance of \"null\" network is allowed")]
    [InlineData("""{"Name":"n1","Driver":"overlay2"}""", 404, "plugin \"overlay2\" not found")]
    [InlineData("""{"Name":"n1","IPAM":{"Driver":"bogus"}}""", 404, "plugin \"bogus\" not found")]
    public async Task Network_create_refuses_drivers_it_has_not_as_dockerd_does_and_creates_nothing(string json, int status, string message)
    {
        int before = (await Daemon.GetJsonAsync("/networks")).GetArrayLength();
        Assert.Equal((status, message), await SendAsync(HttpMethod.Post, "/networks/create", Encoding.UTF8.GetBytes(json), "application/json"));
        Assert.Equal(before, (await Daemon.GetJsonAsync("/networks")).GetArrayLength());
    }

    /// <summary>dockerd streams these (docker prints them after "The push refers to repository"); they were 404s before the stream.</summary>
    [Fact]
    public async Task Push_of_an_image_that_is_not_here_says_so_in_the_stream_as_dockerd_does()
    {
        var (status, text) = await SendAsync(HttpMethod.Post, "/images/hostile/nothere/push?tag=latest", [], "application/json");
        Assert.True(status == 200, text);
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("The push refers to repository [docker.io/hostile/nothere]", JsonDocument.Parse(lines[0]).RootElement.GetProperty("status").GetString());
        Assert.Equal("An image does not exist locally with the tag: hostile/nothere", JsonDocument.Parse(lines[1]).RootElement.GetProperty("errorDetail").GetProperty("message").GetString());
        (status, text) = await SendAsync(HttpMethod.Post, "/images/busybox/push?tag=nope", [], "application/json");
        Assert.True(status == 200, text);
        Assert.Contains("tag does not exist: busybox:nope", text);
    }

    [Fact]
    public async Task Tag_with_a_bad_name_names_it_once()
    {
        var (status, message) = await SendAsync(HttpMethod.Post, "/images/busybox/tag?repo=BAD", [], "application/json");
        Assert.Equal(400, status);
        Assert.StartsWith("invalid reference format `BAD`: ", message);
    }

    /// <summary>dockerd's extract decompresses what it is given (gzip here); berthd read the gzip stream as a tar and called it truncated.</summary>
    [Fact]
    public async Task Copy_of_a_gzipped_tar_into_a_container_unpacks_it()
    {
        var (status, body) = await CreateAsync("""{"Image":"busybox"}""", "gz");
        Assert.True(status == 201, body);
        var gz = new MemoryStream();
        using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(Tar(FileEntry("from-gzip", "zipped")));
        var (code, message) = await SendAsync(HttpMethod.Put, "/containers/gz/archive?path=/", gz.ToArray(), "application/x-tar");
        Assert.True(code == 200, $"{code} {message}");
        using HttpResponseMessage r = await Client.GetAsync("/containers/gz/archive?path=/from-gzip");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        using var reader = new TarReader(await r.Content.ReadAsStreamAsync());
        TarEntry entry = reader.GetNextEntry()!;
        Assert.Equal("zipped", new StreamReader(entry.DataStream!).ReadToEnd());
    }
    /// <summary>ps's usage text came whole into the message; dockerd keeps its first line (both 500).</summary>
    [Fact]
    public async Task Top_with_arguments_ps_refuses_says_only_what_ps_says_is_wrong()
    {
        var (status, body) = await CreateAsync("""{"Image":"busybox","Cmd":["sleep","60"]}""", "topped");
        Assert.True(status == 201, body);
        using (HttpResponseMessage start = await Client.PostAsync("/containers/topped/start", null)) Assert.Equal(HttpStatusCode.NoContent, start.StatusCode);
        var (code, message) = await SendAsync(HttpMethod.Get, "/containers/topped/top?ps_args=--bogus-option", [], "application/json");
        Assert.Equal(500, code);
        Assert.StartsWith("ps: ", message);
        Assert.DoesNotContain('\n', message);
        using (HttpResponseMessage kill = await Client.PostAsync("/containers/topped/kill", null)) Assert.Equal(HttpStatusCode.NoContent, kill.StatusCode);
    }

    /// <summary>
    /// dockerd (Go's net/http) takes up to 1 MiB of request line and headers; Kestrel's defaults refused a
    /// 9 KiB query (414) and 32 KiB of headers (431) — a build's X-Registry-Config with many credentials is that big.
    /// </summary>
    [Fact]
    public async Task Request_lines_and_headers_up_to_a_mebibyte_are_read_as_dockerd_reads_them()
    {
        string label = new('x', 200 * 1024);
        using (HttpResponseMessage list = await Client.GetAsync("/containers/json?filters=" + Uri.EscapeDataString($$"""{"label":["{{label}}"]}""")))
            Assert.Equal(HttpStatusCode.OK, list.StatusCode);

        using (var request = new HttpRequestMessage(HttpMethod.Get, "/_ping"))
        {
            request.Headers.Add("X-Registry-Config", Convert.ToBase64String(new byte[300 * 1024]));
            for (int i = 0; i < 200; i++) request.Headers.Add($"X-Extra-{i}", "1");
            using HttpResponseMessage ping = await Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, ping.StatusCode);
        }

        // Beyond the limit: berthd answers 431 and closes while the client may still be writing, so HttpClient can
        // fail on its write (EPIPE) before it reads the answer; a raw socket reads what was queued for it.
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(Daemon.SocketPath));
        byte[] head = Encoding.ASCII.GetBytes("GET /_ping HTTP/1.1\r\nHost: berthd\r\nX-Registry-Config: " + new string('a', 2 * 1024 * 1024) + "\r\n\r\n");
        try
        {
            await socket.SendAsync(head);
        }
        catch (System.Net.Sockets.SocketException)
        {
            // the server stopped reading once the limit was passed
        }
        var answer = new byte[64];
        int read = await socket.ReceiveAsync(answer);
        Assert.StartsWith("HTTP/1.1 431", Encoding.ASCII.GetString(answer, 0, read));
    }
}
