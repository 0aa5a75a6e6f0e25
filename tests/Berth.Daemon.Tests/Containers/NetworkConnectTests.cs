using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// <c>docker network connect/disconnect</c> against berthd: a running container gets a new
/// interface on a second network and reaches its peers by name, both ways, until it is
/// disconnected; a stopped container has the change recorded and applied at its next start; the
/// refusals carry dockerd's status codes and messages. Bridges live in the test's own network
/// namespace (DaemonScope's --bridge-netns).
/// </summary>
public sealed class NetworkConnectTests : DockerCliTestBase
{
    private const string Web = "mkdir -p /www; echo $0 > /www/index.html; exec httpd -f -p 80 -h /www";

    /// <summary>Fetches http://NAME/ from inside a container, retrying briefly; prints the page or "unreachable" (Debian's busybox wget crashes on -T: timeout instead).</summary>
    private const string Fetch = "for i in 1 2 3 4 5; do timeout 2 busybox wget -q -O - http://$0/ 2>/dev/null && exit 0; sleep 0.2; done; echo unreachable";

    private static JsonElement Networks(DockerCli docker, string container)
        => JsonDocument.Parse(docker.Ok("inspect", "-f", "{{json .NetworkSettings.Networks}}", container)).RootElement.Clone();

    [Fact]
    public void A_running_container_joins_a_second_network_and_leaves_it()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "--subnet", "10.78.0.0/24", "backend");
        docker.Ok("run", "-d", "--name", "web", "--network", "backend", "busybox", "sh", "-c", Web, "backend-page");
        docker.Ok("run", "-d", "--name", "client", "busybox", "sleep", "600");
        Assert.Equal("unreachable", docker.Ok("exec", "client", "sh", "-c", Fetch, "web").Trim());

        docker.Ok("network", "connect", "--alias", "frontend", "backend", "client");
        JsonElement networks = Networks(docker, "client");
        Assert.True(networks.TryGetProperty("bridge", out _));
        string ip = networks.GetProperty("backend").GetProperty("IPAddress").GetString()!;
        Assert.StartsWith("10.78.0.", ip);
        Assert.Contains("frontend", networks.GetProperty("backend").GetProperty("Aliases").EnumerateArray().Select(a => a.GetString()));
        Assert.Contains($"inet {ip}/24", docker.Ok("exec", "client", "ip", "-o", "-4", "addr", "show", "eth1"));
        Assert.Contains("dev eth0", docker.Ok("exec", "client", "ip", "route", "show", "default")); // the first network stays the gateway

        // Names resolve both ways on the new network: the client reaches web, web reaches the client and its alias.
        Assert.Equal("backend-page", docker.Ok("exec", "client", "sh", "-c", Fetch, "web").Trim());
        Assert.Contains("1 packets received", docker.Ok("exec", "web", "ping", "-c1", "-W2", "frontend"));
        Assert.Contains("1 packets received", docker.Ok("exec", "web", "ping", "-c1", "-W2", "client"));
        string members = docker.Ok("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "backend");
        Assert.Contains("client", members);
        Assert.Contains("web", members);

        var (again, _, againError) = docker.Run("network", "connect", "backend", "client");
        Assert.NotEqual(0, again);
        Assert.Contains("endpoint with name client already exists in network backend", againError);

        docker.Ok("network", "disconnect", "backend", "client");
        Assert.Equal("eth0 lo", docker.Ok("exec", "client", "sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '").Trim());
        Assert.Equal("unreachable", docker.Ok("exec", "client", "sh", "-c", Fetch, "web").Trim());
        Assert.DoesNotContain("client", docker.Ok("exec", "web", "cat", "/etc/hosts"));
        Assert.False(Networks(docker, "client").TryGetProperty("backend", out _));
        Assert.DoesNotContain("client", docker.Ok("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "backend"));

        var (twice, _, twiceError) = docker.Run("network", "disconnect", "backend", "client");
        Assert.NotEqual(0, twice);
        Assert.Contains("is not connected to network backend", twiceError);

        // Connect and disconnect are network events naming the container, as dockerd publishes them.
        string events = docker.Ok("events", "--since", "0", "--until", "0s", "--filter", "type=network", "--filter", "network=backend", "--format", "{{.Action}} {{index .Actor.Attributes \"container\"}}");
        string clientId = docker.Ok("inspect", "-f", "{{.Id}}", "client").Trim();
        Assert.Contains($"connect {clientId}", events);
        Assert.Contains($"disconnect {clientId}", events);

        docker.Ok("rm", "-f", "web", "client");
        docker.Ok("network", "rm", "backend");
        string links = Daemon.Netns!.LinksOnceVethsAreGone();
        Assert.DoesNotContain(": vb", links);
    }

    /// <summary>
    /// dockerd's embedded DNS answers a container's own name and aliases on a user network with its
    /// own address there (a service configured to call itself by its alias, as Testcontainers users
    /// do); berthd's hosts file says the same, per network, and forgets the alias with the network.
    /// </summary>
    [Fact]
    public void A_container_resolves_its_own_name_and_aliases_on_each_user_network()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "--subnet", "10.76.0.0/24", "selfa");
        docker.Ok("network", "create", "--subnet", "10.77.0.0/24", "selfb");
        docker.Ok("run", "-d", "--name", "me", "--network", "selfa", "--network-alias", "myself", "busybox", "sleep", "600");
        string Resolve(string name) => docker.Ok("exec", "me", "sh", "-c", "ping -c1 -W1 $0 | head -1", name);
        Assert.Contains("(10.76.0.2)", Resolve("myself"));
        Assert.Contains("(10.76.0.2)", Resolve("me"));

        docker.Ok("network", "connect", "--alias", "otherself", "selfb", "me");
        Assert.Contains("(10.77.0.2)", Resolve("otherself"));
        docker.Ok("network", "disconnect", "selfb", "me");
        Assert.DoesNotContain("otherself", docker.Ok("exec", "me", "cat", "/etc/hosts"));
        Assert.Contains("(10.76.0.2)", Resolve("myself"));

        docker.Ok("rm", "-f", "me");
        docker.Ok("network", "rm", "selfa", "selfb");
    }

    /// <summary>
    /// dockerd's create: an EndpointsConfig that names networks but not the mode's gives those networks
    /// only (Testcontainers' WithNetwork sends NetworkMode "" and its network's endpoint; dockerd 20.10
    /// puts such a container on that network alone, whether the mode is "" or "bridge").
    /// </summary>
    [Theory]
    [InlineData("")]
    [InlineData("bridge")]
    public async Task Endpoints_that_leave_out_the_modes_network_are_the_only_networks(string mode)
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "--subnet", "10.75.0.0/24", "only");
        string id = await ContainersApiTests.CreateAsync(Daemon.Client, new
        {
            Image = "busybox",
            Cmd = new[] { "sleep", "600" },
            HostConfig = new { NetworkMode = mode },
            NetworkingConfig = new { EndpointsConfig = new Dictionary<string, object> { ["only"] = new { Aliases = new[] { "solo" } } } },
        });
        docker.Ok("start", id);
        Assert.Equal("only", docker.Ok("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", id).Trim());
        Assert.Equal("eth0 10.75.0.2/24 lo 127.0.0.1/8", docker.Ok("exec", id, "sh", "-c", "ip -o -4 addr | awk '{print $2, $4}' | sort | tr '\\n' ' '").Trim());
        docker.Ok("rm", "-f", id);
        docker.Ok("network", "rm", "only");
    }

    [Fact]
    public void A_stopped_container_gets_its_networks_at_the_next_start()
    {
        DockerCli docker = Docker(File.Exists(DockerCli.Debian) ? DockerCli.Debian : null); // API 1.41, as docker-compose speaks it
        docker.Ok("network", "create", "--subnet", "10.79.0.0/24", "store");
        docker.Ok("run", "-d", "--name", "db", "--network", "store", "busybox", "sh", "-c", Web, "db-page");
        docker.Ok("create", "--name", "app", "busybox", "sleep", "600");

        docker.Ok("network", "connect", "--ip", "10.79.0.50", "store", "app");
        docker.Ok("network", "connect", "store", "app"); // stopped: connecting twice changes nothing, as dockerd
        JsonElement recorded = Networks(docker, "app").GetProperty("store");
        Assert.Equal("", recorded.GetProperty("IPAddress").GetString());
        Assert.Equal("10.79.0.50", recorded.GetProperty("IPAMConfig").GetProperty("IPv4Address").GetString());

        docker.Ok("start", "app");
        Assert.Equal("10.79.0.50", Networks(docker, "app").GetProperty("store").GetProperty("IPAddress").GetString());
        Assert.Equal("db-page", docker.Ok("exec", "app", "sh", "-c", Fetch, "db").Trim());
        Assert.Contains("1 packets received", docker.Ok("exec", "db", "ping", "-c1", "-W2", "app"));

        // Leaving the default bridge while stopped: the next start has only the store network, which becomes the gateway.
        docker.Ok("stop", "-t", "1", "app");
        Assert.Equal("", Networks(docker, "app").GetProperty("store").GetProperty("IPAddress").GetString()); // kept, without its endpoint
        docker.Ok("network", "disconnect", "bridge", "app");
        docker.Ok("start", "app");
        Assert.Equal("eth0 lo", docker.Ok("exec", "app", "sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '").Trim());
        Assert.Contains("inet 10.79.0.50/24", docker.Ok("exec", "app", "ip", "-o", "-4", "addr", "show", "eth0"));
        Assert.Contains("via 10.79.0.1", docker.Ok("exec", "app", "ip", "route", "show", "default"));
        Assert.Equal(["store"], Networks(docker, "app").EnumerateObject().Select(p => p.Name).ToArray());

        // A running container that loses the network carrying its default route gets one through the network it has left.
        docker.Ok("network", "connect", "bridge", "app");
        docker.Ok("network", "disconnect", "store", "app");
        Assert.Contains("dev eth1", docker.Ok("exec", "app", "ip", "route", "show", "default"));
        docker.Ok("rm", "-f", "app", "db");
        docker.Ok("network", "rm", "store");
    }

    /// <summary>
    /// <c>network connect --link NAME:ALIAS</c> (what compose v1 sends for a service's links on its other
    /// networks): on that network ALIAS names NAME for this container only; inspect lists the link; the
    /// line follows NAME joining and leaving the network; the default bridge refuses endpoint links.
    /// </summary>
    [Fact]
    public void Connect_link_names_the_linked_container_by_its_alias_on_that_network()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "--subnet", "10.79.0.0/24", "linked");
        docker.Ok("run", "-d", "--name", "db", "--network", "linked", "busybox", "sh", "-c", Web, "db-page");
        docker.Ok("run", "-d", "--name", "app", "busybox", "sleep", "600");
        docker.Ok("run", "-d", "--name", "other", "--network", "linked", "busybox", "sleep", "600");

        docker.Ok("network", "connect", "--link", "db:database", "linked", "app");
        Assert.Equal("db-page", docker.Ok("exec", "app", "sh", "-c", Fetch, "database").Trim());
        Assert.Equal("[\"db:database\"]", docker.Ok("inspect", "-f", "{{json .NetworkSettings.Networks.linked.Links}}", "app").Trim());
        // The alias is this container's: a peer on the same network does not resolve it.
        Assert.Equal("unreachable", docker.Ok("exec", "other", "sh", "-c", Fetch, "database").Trim());

        // db leaves the network: the alias goes; it comes back: the alias follows its new address.
        docker.Ok("network", "disconnect", "linked", "db");
        Assert.DoesNotContain("database", docker.Ok("exec", "app", "cat", "/etc/hosts"));
        docker.Ok("network", "connect", "--ip", "10.79.0.77", "linked", "db");
        Assert.Contains("10.79.0.77\tdatabase", docker.Ok("exec", "app", "cat", "/etc/hosts"));

        var (exit, _, error) = docker.Run("network", "connect", "--link", "db:d2", "bridge", "other");
        Assert.NotEqual(0, exit);
        Assert.Contains("links are only supported for user-defined networks", error);
    }

    [Fact]
    public async Task Refusals_have_dockerds_status_and_message()
    {
        DockerCli docker = Docker();
        docker.Ok("network", "create", "--subnet", "10.80.0.0/24", "other");
        docker.Ok("network", "create", "auto");
        docker.Ok("run", "-d", "--name", "hostmode", "--network", "host", "busybox", "sleep", "600");
        docker.Ok("run", "-d", "--name", "nonemode", "--network", "none", "busybox", "sleep", "600");
        docker.Ok("run", "-d", "--name", "plain", "busybox", "sleep", "600");

        async Task Expect(string network, string action, object body, int status, string message)
        {
            using HttpResponseMessage response = await Daemon.Client.PostAsJsonAsync($"/v1.47/networks/{network}/{action}", body);
            string text = await response.Content.ReadAsStringAsync();
            Assert.True(status == (int)response.StatusCode, $"{action} {network} {JsonSerializer.Serialize(body)}: {(int)response.StatusCode} {text}");
            Assert.Contains(message, JsonNode.Parse(text)!["message"]!.GetValue<string>());
        }

        await Expect("other", "connect", new { Container = "nosuch" }, 404, "No such container: nosuch");
        await Expect("nosuch", "connect", new { Container = "plain" }, 404, "network nosuch not found");
        await Expect("other", "connect", new { Container = "hostmode" }, 400, "container sharing network namespace with another container or host cannot be connected to any other network");
        await Expect("other", "connect", new { Container = "nonemode" }, 400, "container cannot be connected to multiple networks with one of the networks in private (none) mode");
        await Expect("host", "connect", new { Container = "plain" }, 400, "cannot connect container to host network - container must be created in host network mode");
        await Expect("host", "disconnect", new { Container = "hostmode" }, 400, "cannot disconnect container from host network - container was created in host network mode");
        await Expect("bridge", "connect", new { Container = "plain" }, 403, "endpoint with name plain already exists in network bridge");
        await Expect("other", "connect", new { Container = "plain", EndpointConfig = new { Aliases = new[] { "x" }, IPAMConfig = new { IPv4Address = "10.99.0.5" } } },
            400, "no configured subnet or ip-range contain the IP address 10.99.0.5");
        await Expect("auto", "connect", new { Container = "plain", EndpointConfig = new { IPAMConfig = new { IPv4Address = "10.99.0.5" } } },
            400, "user specified IP address is supported only when connecting to networks with user configured subnets");
        await Expect("other", "connect", new { Container = "plain", EndpointConfig = new { Links = new[] { "nosuch:db" } } }, 400, "could not get container for nosuch: No such container: nosuch");
        await Expect("other", "connect", new { Container = "plain", EndpointConfig = new { Links = new[] { "plain:me" } } }, 400, "a container cannot link to itself");
        await Expect("bridge", "connect", new { Container = "nonemode", EndpointConfig = new { Links = new[] { "plain:p" } } }, 400, "container cannot be connected to multiple networks");
        await Expect("other", "connect", new { Container = "plain", EndpointConfig = new { MacAddress = "01:00:5e:00:00:01" } }, 400, "multicast");
        await Expect("other", "disconnect", new { Container = "plain" }, 500, "is not connected to network other");
        await Expect("nosuch", "disconnect", new { Container = "plain" }, 404, "network nosuch not found");

        using (HttpResponseMessage create = await Daemon.Client.PostAsJsonAsync("/v1.47/containers/create",
            new { Image = "busybox", Cmd = new[] { "true" }, NetworkingConfig = new { EndpointsConfig = new { bridge = new { Aliases = new[] { "x" } } } } }))
        {
            Assert.Equal(400, (int)create.StatusCode);
            Assert.Contains("network-scoped alias is supported only for containers in user defined networks", await create.Content.ReadAsStringAsync());
        }

        // Nothing was left behind by the refused requests.
        Assert.Equal("", docker.Ok("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "other").Trim());
        Assert.Equal(["bridge"], Networks(docker, "plain").EnumerateObject().Select(p => p.Name).ToArray());

        // EndpointConfig.MacAddress (API 1.44, what compose sends per network): the new interface has it.
        using (HttpResponseMessage connect = await Daemon.Client.PostAsJsonAsync("/v1.47/networks/other/connect",
            new { Container = "plain", EndpointConfig = new { MacAddress = "02:42:0A:50:00:42" } }))
            Assert.True(connect.IsSuccessStatusCode, await connect.Content.ReadAsStringAsync());
        Assert.Equal("02:42:0a:50:00:42", docker.Ok("exec", "plain", "cat", "/sys/class/net/eth1/address").Trim());
        Assert.Equal("02:42:0a:50:00:42", Networks(docker, "plain").GetProperty("other").GetProperty("MacAddress").GetString());
    }
}
