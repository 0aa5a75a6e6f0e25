using System.Text.Json;

namespace Berth.Cli.Tests;

/// <summary>
/// <c>berth network …</c> end to end: the published binary against a berthd of its own whose
/// bridges live in a private network namespace (--bridge-netns). Not run against dockerd: its
/// bridges would be made in the host's namespace.
/// </summary>
public sealed class NetworkTests
{
    // The test image links few applets: the others are called through busybox.
    private const string Fetch = "for i in 1 2 3 4 5; do busybox timeout 2 busybox wget -q -O - http://$0/ 2>/dev/null && exit 0; sleep 0.2; done; echo unreachable";

    [Fact]
    public void NetworkCreateLsInspectConnectDisconnectRmPrune()
    {
        if (BerthCli.Daemon == DaemonKind.Dockerd) return; // dockerd would put the bridges in the host's namespace
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "networks"), "busybox:latest");

        string id = cli.Ok("network", "create", "-d", "bridge", "--subnet", "10.81.0.0/24", "--gateway", "10.81.0.254", "--label", "team=a", "-o", "com.docker.network.driver.mtu=1400", "backend").Trim();
        Assert.Matches("^[0-9a-f]{64}$", id);
        cli.Ok("network", "create", "--internal", "isolated");
        CliResult duplicate = cli.Run("network", "create", "backend");
        Assert.Equal(1, duplicate.ExitCode);
        Assert.Contains("network with name backend already exists", duplicate.Stderr);
        CliResult noSubnet = cli.Run("network", "create", "--gateway", "10.9.0.1", "nosubnet");
        Assert.Equal(1, noSubnet.ExitCode);
        Assert.Contains("every ip-range or gateway must have a corresponding subnet", noSubnet.Stderr);
        cli.Ok("network", "create", "--subnet", "10.82.0.0/24", "--ip-range", "10.82.0.128/26", "--aux-address", "router=10.82.0.129", "ranged");
        Assert.Equal("[{\"AuxiliaryAddresses\":{\"router\":\"10.82.0.129\"},\"Gateway\":\"10.82.0.1\",\"IPRange\":\"10.82.0.128/26\",\"Subnet\":\"10.82.0.0/24\"}]\n",
            cli.Ok("network", "inspect", "-f", "{{json .IPAM.Config}}", "ranged"));
        CliResult noAuxSubnet = cli.Run("network", "create", "--subnet", "10.83.0.0/24", "--aux-address", "x=10.84.0.1", "badaux");
        Assert.Equal(1, noAuxSubnet.ExitCode);
        Assert.Contains("no matching subnet for aux-address 10.84.0.1", noAuxSubnet.Stderr);
        cli.Ok("network", "create", "--ipv6", "--subnet", "fd00:db8:82::/64", "--ip-range", "fd00:db8:82::80/121", "--aux-address", "v6=fd00:db8:82::81", "ranged6");
        string pools6 = cli.Ok("network", "inspect", "-f", "{{json .IPAM.Config}}", "ranged6");
        Assert.Contains("{\"AuxiliaryAddresses\":{\"v6\":\"fd00:db8:82::81\"},\"Gateway\":\"fd00:db8:82::1\",\"IPRange\":\"fd00:db8:82::80/121\",\"Subnet\":\"fd00:db8:82::/64\"}", pools6);
        cli.Ok("network", "rm", "ranged", "ranged6");

        string table = cli.Ok("network", "ls");
        Assert.Matches(@"^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\n", table);
        Assert.Matches($@"\n{id[..12]}\s+backend\s+bridge\s+local\n", table);
        Assert.Equal("backend\n", cli.Ok("network", "ls", "-f", "label=team=a", "--format", "{{.Name}}"));
        Assert.Equal(id[..12] + "\n", cli.Ok("network", "ls", "-q", "-f", "name=backend"));
        Assert.Equal(id + "\n", cli.Ok("network", "ls", "-q", "--no-trunc", "-f", "name=backend"));
        Assert.Equal("isolated true\n", cli.Ok("network", "ls", "-f", "name=isolated", "--format", "{{.Name}} {{.Internal}}"));
        Assert.Equal("[{\"Gateway\":\"10.81.0.254\",\"Subnet\":\"10.81.0.0/24\"}] a {\"com.docker.network.driver.mtu\":\"1400\"}\n",
            cli.Ok("network", "inspect", "-f", "{{json .IPAM.Config}} {{.Labels.team}} {{json .Options}}", "backend"));
        CliResult missing = cli.Run("network", "inspect", "nosuch");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("network nosuch not found", missing.Stderr);

        // connect/disconnect a running container: a second interface, names resolved both ways, then gone.
        cli.Ok("run", "-d", "--name", "web", "--network", "backend", "busybox", "sh", "-c", "mkdir /www; echo backend-page > /www/index.html; exec busybox httpd -f -p 80 -h /www");
        cli.Ok("run", "-d", "--name", "client", "busybox", "sleep", "600");
        Assert.Equal("", cli.Ok("network", "connect", "--alias", "front", "--ip", "10.81.0.50", "backend", "client"));
        Assert.Contains("inet 10.81.0.50/24", cli.Ok("exec", "client", "busybox", "ip", "-o", "-4", "addr", "show", "eth1"));
        Assert.Equal("backend-page\n", cli.Ok("exec", "client", "sh", "-c", Fetch, "web"));
        Assert.Contains("1 packets received", cli.Ok("exec", "web", "busybox", "ping", "-c1", "-W2", "front"));
        Assert.Equal(["client", "web"], Members(cli, "backend"));
        CliResult twice = cli.Run("network", "connect", "backend", "client");
        Assert.Equal(1, twice.ExitCode);
        Assert.Contains("endpoint with name client already exists in network backend", twice.Stderr);

        CliResult inUse = cli.Run("network", "rm", "backend");
        Assert.Equal(1, inUse.ExitCode);
        Assert.Contains("has active endpoints", inUse.Stderr);
        Assert.Equal("", cli.Ok("network", "disconnect", "backend", "client"));
        Assert.Equal("unreachable\n", cli.Ok("exec", "client", "sh", "-c", Fetch, "web"));
        Assert.Equal(["web"], Members(cli, "backend"));
        Assert.Equal(["bridge"], JsonDocument.Parse(cli.Ok("inspect", "-f", "{{json .NetworkSettings.Networks}}", "client")).RootElement.EnumerateObject().Select(p => p.Name));

        // A created container: the network is recorded, then joined at start; --link names web as "site" for it.
        cli.Ok("create", "--name", "late", "busybox", "sleep", "600");
        cli.Ok("network", "connect", "--link", "web:site", "backend", "late");
        cli.Ok("network", "disconnect", "-f", "bridge", "late");
        cli.Ok("start", "late");
        Assert.Equal("backend-page\n", cli.Ok("exec", "late", "sh", "-c", Fetch, "web"));
        Assert.Equal("backend-page\n", cli.Ok("exec", "late", "sh", "-c", Fetch, "site"));

        // run --ip / --network-alias on a user network; the default bridge takes neither.
        cli.Ok("run", "-d", "--name", "pinned", "--network", "backend", "--ip", "10.81.0.60", "--network-alias", "api", "busybox", "sleep", "600");
        Assert.Contains("inet 10.81.0.60/24", cli.Ok("exec", "pinned", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"));
        Assert.Contains("1 packets received", cli.Ok("exec", "web", "busybox", "ping", "-c1", "-W2", "api"));
        CliResult onDefault = cli.Run("run", "--rm", "--ip", "172.17.0.99", "busybox", "true");
        Assert.Equal(125, onDefault.ExitCode);
        Assert.Contains("user specified IP address is supported on user defined networks only", onDefault.Stderr);

        cli.Ok("rm", "-f", "web", "client", "late", "pinned");
        Assert.Equal("backend\nisolated\n", cli.Ok("network", "rm", "backend", "isolated"));
        CliResult gone = cli.Run("network", "rm", "backend");
        Assert.Equal(1, gone.ExitCode);
        Assert.Equal("", cli.Ok("network", "rm", "-f", "backend"));

        cli.Ok("network", "create", "--label", "tmp=1", "spare");
        Assert.Equal("1\n", cli.Ok("network", "ls", "--filter", "name=spare", "--format", "{{.Label \"tmp\"}}"));
        string pruned = cli.Ok("network", "prune", "-f", "--filter", "label=tmp=1");
        Assert.Equal("Deleted Networks:\nspare\n\n", pruned);
        Assert.Equal("bridge\nhost\nnone\n", cli.Ok("network", "ls", "--format", "{{.Name}}"));
    }

    /// <summary><c>--mac-address</c> on the default bridge and on a user network; endpoint settings berthd cannot give are refused by name.</summary>
    [Fact]
    public void MacAddressAndRefusedEndpointSettings()
    {
        if (BerthCli.Daemon == DaemonKind.Dockerd) return; // dockerd would put the bridges in the host's namespace
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "mac"), "busybox:latest");
        Assert.Equal("02:42:0a:51:00:77\n", cli.Ok("run", "--rm", "--mac-address", "02:42:0A:51:00:77", "busybox", "cat", "/sys/class/net/eth0/address"));
        cli.Ok("network", "create", "macnet");
        string id = cli.Ok("run", "-d", "--network", "macnet", "--mac-address", "02:42:0a:52:00:08", "busybox", "sleep", "600").Trim();
        Assert.Equal("02:42:0a:52:00:08\n", cli.Ok("exec", id, "cat", "/sys/class/net/eth0/address"));
        Assert.Equal("02:42:0a:52:00:08\n", cli.Ok("inspect", "-f", "{{.NetworkSettings.Networks.macnet.MacAddress}}", id));

        foreach (var (flags, message) in new (string[], string)[]
        {
            (["--mac-address", "02:42:zz:00:00:01"], "invalid MAC address"),
            (["--mac-address", "01:00:5e:00:00:01"], "multicast"),
            (["--ip6", "fd00::5"], "user specified IP address is supported on user defined networks only"), // dockerd's words: served on dual-stack user networks
            (["--link-local-ip", "169.254.1.1"], "IPAMConfig.LinkLocalIPs (--link-local-ip) is not supported"),
        })
        {
            CliResult refused = cli.Run(["run", "--rm", .. flags, "busybox", "true"]);
            Assert.True(refused.ExitCode == 125, $"{string.Join(' ', flags)}: {refused}");
            Assert.Contains(message, refused.Stderr);
        }
        cli.Ok("rm", "-f", id);
        cli.Ok("network", "rm", "macnet");
    }

    /// <summary>
    /// Legacy links on the default bridge: the linked container in /etc/hosts and dockerd's link
    /// variables in the environment; the link's name (parent/alias) names the linked container; a link to a
    /// stopped or missing container, or beside host or container: networking, is refused, one without a network
    /// is kept unused; <c>rm --link</c> takes one out.
    /// </summary>
    [Fact]
    public void LegacyLinks()
    {
        if (BerthCli.Daemon == DaemonKind.Dockerd) return; // dockerd would put the bridges in the host's namespace
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "links"), "busybox:latest");
        string web = cli.Ok("run", "-d", "--name", "web", "--expose", "80", "-e", "SECRET=s3", "busybox", "sleep", "600").Trim();
        string ip = cli.Ok("inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", web).Trim();
        Assert.Matches(@"^\d+\.\d+\.\d+\.\d+$", ip);

        CliResult r = cli.Run("run", "--rm", "--name", "app", "--link", "web:db", "busybox", "sh", "-c", "env | grep ^DB_ | sort; grep -w db /etc/hosts");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(
            $"DB_ENV_SECRET=s3\nDB_NAME=/app/db\nDB_PORT=tcp://{ip}:80\nDB_PORT_80_TCP=tcp://{ip}:80\nDB_PORT_80_TCP_ADDR={ip}\n" +
            $"DB_PORT_80_TCP_PORT=80\nDB_PORT_80_TCP_PROTO=tcp\n{ip}\tdb {web[..12]} web\n", r.Stdout);
        string linked = cli.Ok("create", "--name", "linker", "--link", "web", "busybox", "sh", "-c", "grep -w web /etc/hosts").Trim();
        Assert.Equal("[\"/web:/linker/web\"]\n", cli.Ok("inspect", "-f", "{{json .HostConfig.Links}}", linked));
        // The link's name names web too: in ps (with --no-trunc) and wherever a container is named.
        Assert.Equal("linker\nlinker/web,web\n", cli.Ok("ps", "-a", "--no-trunc", "--format", "{{.Names}}"));
        Assert.Equal("linker\nweb\n", cli.Ok("ps", "-a", "--format", "{{.Names}}"));
        Assert.Equal("/web\n", cli.Ok("inspect", "-f", "{{.Name}}", "linker/web"));

        // A link follows its container through renames of either side.
        cli.Ok("rename", "web", "backend");
        cli.Ok("rename", "linker", "linker2");
        Assert.Equal("[\"/web:/linker2/web\"]\n", cli.Ok("inspect", "-f", "{{json .HostConfig.Links}}", linked));
        Assert.Equal($"{ip}\tweb {web[..12]} backend\n", cli.Ok("start", "-a", "linker2"));

        cli.Ok("stop", "-t", "0", "backend");
        CliResult stopped = cli.Run("start", "linker2");
        Assert.Equal(1, stopped.ExitCode);
        Assert.Contains("Cannot link to a non running container: /backend AS /linker2/web", stopped.Stderr);

        // rm --link: the link leaves linker2, which then starts without it; backend stays.
        Assert.Equal("linker2/web\n", cli.Ok("rm", "--link", "linker2/web"));
        Assert.Equal("null\n", cli.Ok("inspect", "-f", "{{json .HostConfig.Links}}", "linker2"));
        Assert.Equal("exited\n", cli.Ok("inspect", "-f", "{{.State.Status}}", "backend"));
        CliResult again = cli.Run("rm", "-l", "/linker2/web");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("No such container: linker2/web", again.Stderr);
        CliResult unlinked = cli.Run("start", "-a", "linker2");
        Assert.True(unlinked.ExitCode == 1 && unlinked.Stdout == "", unlinked.ToString()); // grep found no web
        foreach (var (flags, message) in new (string[], string)[]
        {
            (["--link", "nosuch:xy"], "could not get container for nosuch"),
            (["--link", "web:xy", "--network", "host"], "host type networking can't be used with links"),
            (["--link", "web:xy", "--network", "container:backend"], "container type network can't be used with links"),
        })
        {
            CliResult refused = cli.Run(["create", .. flags, "busybox", "true"]);
            Assert.True(refused.ExitCode == 125, $"{string.Join(' ', flags)}: {refused}");
            Assert.Contains(message, refused.Stderr);
        }
        // Without a network a link has no use: kept, and unused (dockerd's way; docker 28 sends it).
        Assert.Equal("0\n", cli.Ok("run", "--rm", "--network", "none", "--link", "backend:x", "busybox", "sh", "-c", "env | grep -c ^X_ || true"));
        cli.Ok("rm", "-f", "backend", "linker2");
    }

    /// <summary>The names of the containers a network's inspect lists, sorted.</summary>
    private static string[] Members(BerthCli cli, string network)
        => [.. JsonDocument.Parse(cli.Ok("network", "inspect", "-f", "{{json .Containers}}", network)).RootElement.EnumerateObject()
            .Select(c => c.Value.GetProperty("Name").GetString()!).Order(StringComparer.Ordinal)];
}
