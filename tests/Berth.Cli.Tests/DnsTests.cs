namespace Berth.Cli.Tests;

/// <summary><c>run --dns / --dns-search / --dns-option</c>: the container's resolv.conf; <c>--add-host</c>: its hosts file.</summary>
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

    /// <summary>The docker CLI's forms of <c>--add-host</c>: <c>host:ip</c>, <c>host=ip</c>, an IPv6 address in brackets.</summary>
    [Fact]
    public void Add_host_entries_reach_etc_hosts_in_each_of_dockers_forms()
    {
        using var cli = new BerthCli();
        cli.Ok("import", "-c", "CMD [\"/bin/sh\"]", cli.WriteBusyboxTar("rootfs.tar", "hosts"), "busybox:latest");
        string hosts = cli.Ok("run", "--rm", "--add-host", "a:192.0.2.1", "--add-host", "b=192.0.2.2", "--add-host", "c=[2001:db8::1]",
            "--add-host", "d:2001:db8::2", "busybox", "cat", "/etc/hosts");
        Assert.Contains("192.0.2.1\ta\n", hosts);
        Assert.Contains("192.0.2.2\tb\n", hosts);
        Assert.Contains("2001:db8::1\tc\n", hosts);
        Assert.Contains("2001:db8::2\td\n", hosts);
    }
}
