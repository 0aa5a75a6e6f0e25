using System.Net.Http.Json;
using System.Text.Json;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// Containers on one user network that start and exit together: each join and leave rewrites the
/// peers' hosts files, reading their records without their locks. A peer caught between its
/// endpoint ID and its address (cleared or set) made IPAddress.Parse throw, and the exit was not
/// recorded: the containers stayed "running" for good and rm -f gave up after 30 s (seen with
/// docker-compose's restart: on-failure services, whose restart failed the same way).
/// </summary>
public sealed class NetworkPeersExitTests : IAsyncLifetime
{
    private const int Containers = 10;
    private DaemonScope _daemon = null!;

    public async Task InitializeAsync()
    {
        _daemon = await DaemonScope.StartAsync();
        await _daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
    }

    public async Task DisposeAsync()
    {
        if (_daemon is not null) await _daemon.DisposeAsync();
    }

    [Fact]
    public async Task Peers_that_start_and_exit_together_all_have_their_exit_recorded()
    {
        HttpClient client = _daemon.Client;
        using (var created = await client.PostAsJsonAsync("/networks/create", new { Name = "peers" }))
            Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());

        for (int round = 0; round < 3; round++)
        {
            var ids = new List<string>();
            for (int i = 0; i < Containers; i++)
            {
                using var response = await client.PostAsJsonAsync("/containers/create", new { Image = "busybox:latest", Cmd = new[] { "sleep", "0.3" }, HostConfig = new { NetworkMode = "peers" } });
                string body = await response.Content.ReadAsStringAsync();
                Assert.True(response.IsSuccessStatusCode, body);
                ids.Add(JsonDocument.Parse(body).RootElement.GetProperty("Id").GetString()!);
            }
            await Task.WhenAll(ids.Select(async id =>
            {
                using var started = await client.PostAsync($"/containers/{id}/start", null);
                Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
            }));

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await Task.WhenAll(ids.Select(async id =>
            {
                using var waited = await client.PostAsync($"/containers/{id}/wait", null, timeout.Token);
                string body = await waited.Content.ReadAsStringAsync(timeout.Token);
                Assert.True(waited.IsSuccessStatusCode, body);
                Assert.Equal(0, JsonDocument.Parse(body).RootElement.GetProperty("StatusCode").GetInt32());
            }));
            foreach (string id in ids)
            {
                JsonElement state = (await _daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("State");
                Assert.Equal("exited", state.GetProperty("Status").GetString());
                Assert.Equal("", state.GetProperty("Error").GetString());
                using var removed = await client.DeleteAsync($"/containers/{id}");
                Assert.True(removed.IsSuccessStatusCode, await removed.Content.ReadAsStringAsync());
            }
        }
    }
}
