namespace Berth.Cli.Tests;

/// <summary><c>run --dns / --dns-search / --dns-option</c>: the container's resolv.conf.</summary>
public sealed class DnsTests
{
    [Fact]
    public void Dns_servers_and_search_domains_reach_resolv_conf()
    {
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "dns"), "busybox:latest");
        string resolv = cli.Ok("run", "--rm", "--dns", "192.0.2.53", "--dns-search", "example.org", "--dns-search", "corp.example",
            "--dns-option", "ndots:2", "--dns-option", "timeout:1", "busybox", "cat", "/etc/resolv.conf");
        Assert.Contains("nameserver 192.0.2.53", resolv);
        Assert.Contains("search example.org corp.example", resolv);
        Assert.Contains("options ndots:2 timeout:1", resolv);
    }
}
