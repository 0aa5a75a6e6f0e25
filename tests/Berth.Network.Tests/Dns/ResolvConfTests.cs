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
