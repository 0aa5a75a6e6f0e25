using System.Net;
using System.Text.Json;

namespace Berth.Daemon.Tests.Api;

public sealed class SystemApiTests : IAsyncLifetime
{
    private DaemonScope _daemon = null!;

    public async Task InitializeAsync() => _daemon = await DaemonScope.StartAsync();
    public async Task DisposeAsync() => await _daemon.DisposeAsync();

    [Theory]
    [InlineData("GET", "/_ping")]
    [InlineData("HEAD", "/_ping")]
    [InlineData("GET", "/v1.41/_ping")]
    [InlineData("HEAD", "/v1.50/_ping")]
    public async Task Ping_answers_OK_with_Dockers_negotiation_headers(string method, string path)
    {
        using HttpResponseMessage r = await _daemon.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("1.51", r.Headers.GetValues("Api-Version").Single());
        Assert.Equal("false", r.Headers.GetValues("Docker-Experimental").Single());
        Assert.Equal("linux", r.Headers.GetValues("OSType").Single());
        Assert.StartsWith("Berth/", r.Headers.Server.ToString());
        Assert.Equal(method == "GET" ? "OK" : "", await r.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("{", "invalid JSON")]
    [InlineData("{}", "invalid auth configuration: no username")]
    [InlineData("{\"auth\": \"not base64!\"}", "`auth` is not base64")]
    [InlineData("null", "invalid auth configuration: no body")]
    public async Task Auth_refuses_a_malformed_request_with_a_400_naming_the_problem(string body, string message)
    {
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using HttpResponseMessage r = await _daemon.Client.PostAsync("/auth", content);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains(message, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("message").GetString());
        using HttpResponseMessage get = await _daemon.Client.GetAsync("/auth");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact]
    public async Task Version_reports_the_API_range()
    {
        JsonElement v = await _daemon.GetJsonAsync("/v1.43/version");
        Assert.Equal("1.51", v.GetProperty("ApiVersion").GetString());
        Assert.Equal("1.41", v.GetProperty("MinAPIVersion").GetString());
        Assert.Equal("linux", v.GetProperty("Os").GetString());
        Assert.Equal("Engine", v.GetProperty("Components")[0].GetProperty("Name").GetString());
        Assert.Equal(File.ReadAllText("/proc/sys/kernel/osrelease").Trim(), v.GetProperty("KernelVersion").GetString());
    }

    [Fact]
    public async Task Info_reports_real_figures()
    {
        JsonElement info = await _daemon.GetJsonAsync("/info");
        Assert.Equal(Environment.ProcessorCount, info.GetProperty("NCPU").GetInt32());
        Assert.True(info.GetProperty("MemTotal").GetInt64() > 0);
        Assert.Equal(_daemon.Options.DataRoot, info.GetProperty("DockerRootDir").GetString());
        Assert.Equal("berth-runtime", info.GetProperty("DefaultRuntime").GetString());
        Assert.True(info.GetProperty("Runtimes").TryGetProperty("berth-runtime", out _));
        Assert.Contains(info.GetProperty("CgroupVersion").GetString(), new[] { "1", "2" });
        Assert.Equal("cgroupfs", info.GetProperty("CgroupDriver").GetString());
        Assert.Equal("overlayfs", info.GetProperty("Driver").GetString());
        Assert.Equal(0, info.GetProperty("Images").GetInt32());
        Assert.Equal("inactive", info.GetProperty("Swarm").GetProperty("LocalNodeState").GetString());
        Assert.Equal(["local"], info.GetProperty("Plugins").GetProperty("Volume").EnumerateArray().Select(v => v.GetString()!).ToArray());
        Assert.Equal(["bridge", "host", "ipvlan", "macvlan", "null"], info.GetProperty("Plugins").GetProperty("Network").EnumerateArray().Select(v => v.GetString()!).ToArray());
        Assert.Equal(["json-file", "local"], info.GetProperty("Plugins").GetProperty("Log").EnumerateArray().Select(v => v.GetString()!).ToArray());
        Assert.False(string.IsNullOrEmpty(info.GetProperty("ID").GetString()));
    }

    [Theory]
    [InlineData("/v1.40/version", 400, "client version 1.40 is too old. Minimum supported API version is 1.41, please upgrade your client to a newer version")]
    [InlineData("/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is 1.51")]
    [InlineData("/nothing/here", 404, "page not found")]
    [InlineData("/v1.45/nothing", 404, "page not found")]
    [InlineData("/v1.45/swarm", 501, "/swarm is not implemented in this version of berthd")]
    [InlineData("/exec/abc/json", 404, "No such exec instance: abc")]
    [InlineData("/v1.45/plugins/vieux/sshfs:latest/json", 404, "plugin \"vieux/sshfs:latest\" not found")]
    [InlineData("/v1.45/plugins/privileges", 501, "/plugins is not implemented in this version of berthd")]
    [InlineData("/v1.45/containers/nothere/db/json", 404, "No such container: nothere/db")]
    [InlineData("/v1.45/containers/nothere/json", 404, "No such container: nothere")]
    public async Task Errors_have_Dockers_status_and_message_body(string path, int status, string message)
    {
        using HttpResponseMessage r = await _daemon.Client.GetAsync(path);
        Assert.Equal(status, (int)r.StatusCode);
        Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
        JsonElement body = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(message, body.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_wrong_method_is_page_not_found_not_405()
    {
        using HttpResponseMessage r = await _daemon.Client.PostAsync("/info", null);
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Contains("page not found", await r.Content.ReadAsStringAsync());
    }
}
