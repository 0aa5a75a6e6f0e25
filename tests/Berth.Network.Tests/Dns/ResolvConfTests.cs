using System.Net;

namespace Berth.Network.Tests.Dns;

public sealed class ResolvConfTests
{
    [Fact]
    public void Loopback_and_ipv6_resolvers_are_replaced_by_defaults()
    {
        var text = ResolvConf.Render("# systemd\nnameserver 127.0.0.53\nnameserver ::1\nnameserver fd00::1\nsearch corp.example\noptions edns0 trust-ad\n");
        Assert.Equal("nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch corp.example\noptions edns0 trust-ad\n", text);
    }

    [Fact]
    public void Reachable_resolvers_are_kept()
    {
        Assert.Equal("nameserver 10.255.255.53\nnameserver 1.1.1.1\n", ResolvConf.Render("nameserver 10.255.255.53\nnameserver 127.0.0.1\nnameserver 1.1.1.1\n"));
    }

    [Fact]
    public void Overrides_replace_the_host_values()
    {
        var text = ResolvConf.Render("nameserver 10.0.0.1\nsearch a\n", dns: ["9.9.9.9"], search: ["b", "c"], options: ["ndots:2"]);
        Assert.Equal("nameserver 9.9.9.9\nsearch b c\noptions ndots:2\n", text);
        Assert.Throws<NetworkException>(() => ResolvConf.Render("", dns: ["not-an-ip"]));
    }

    [Fact]
    public void Embedded_dns_resolv_conf_names_127_0_0_11_with_ndots_0_and_keeps_search_and_options()
    {
        const string host = "nameserver 10.0.0.1\nsearch corp.example\noptions edns0\n";
        Assert.Equal("nameserver 127.0.0.11\nsearch corp.example\noptions ndots:0 edns0\n", ResolvConf.RenderEmbedded(host));
        // An ndots the user gave stands; --dns-search replaces the host's domains.
        Assert.Equal("nameserver 127.0.0.11\nsearch b\noptions ndots:2\n", ResolvConf.RenderEmbedded(host, search: ["b"], options: ["ndots:2"]));
        Assert.Equal("nameserver 127.0.0.11\noptions ndots:0\n", ResolvConf.RenderEmbedded(""));
    }

    [Fact]
    public void Embedded_dns_forwards_to_dns_else_every_host_server_loopback_included_else_google()
    {
        const string host = "nameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver fd00::1\n";
        Assert.Equal(["127.0.0.53", "10.0.0.1", "fd00::1"], ResolvConf.UpstreamServers(host).Select(a => a.ToString()));
        Assert.Equal(["9.9.9.9"], ResolvConf.UpstreamServers(host, ["9.9.9.9"]).Select(a => a.ToString()));
        Assert.Equal(["8.8.8.8", "8.8.4.4"], ResolvConf.UpstreamServers("search x\n").Select(a => a.ToString()));
        Assert.Throws<NetworkException>(() => ResolvConf.UpstreamServers(host, ["not-an-ip"]));
    }

    [Fact]
    public void Hosts_file_has_localhost_extra_hosts_self_and_peers()
    {
        var text = HostsFile.Render("web", IPAddress.Parse("172.18.0.2"),
            [new HostsEntry(IPAddress.Parse("172.18.0.3"), ["db", "database"])],
            [new HostsEntry(IPAddress.Parse("10.0.0.9"), ["registry.local"])]);
        var lines = text.Split('\n');
        Assert.Equal("127.0.0.1\tlocalhost", lines[0]);
        Assert.Contains("10.0.0.9\tregistry.local", lines);
        Assert.Contains("172.18.0.2\tweb", lines);
        Assert.Contains("172.18.0.3\tdb database", lines);
    }

    [Fact]
    public void Hosts_file_is_rewritten_in_place()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "a much longer old content\n");
            using var keep = File.OpenRead(path);
            HostsFile.WriteInPlace(path, "new\n");
            Assert.Equal("new\n", new StreamReader(keep).ReadToEnd()); // an open handle (like a bind mount) sees the new content
        }
        finally { File.Delete(path); }
    }
}
