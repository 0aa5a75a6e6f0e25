using System.Net;
using Berth.Daemon.Containers;
using Berth.Images;

namespace Berth.Daemon.Tests.Containers;

/// <summary>--add-host entries as berthd reads them (the docker CLI sends <c>name:ip</c> or <c>name:host-gateway</c>).</summary>
public sealed class ExtraHostsTests
{
    [Fact]
    public void Host_gateway_is_only_checked_at_create_and_is_the_gateway_at_start()
    {
        var host = new HostConfigJson { ExtraHosts = ["gw:host-gateway", "a:1.2.3.4", "six:::1"] };

        // At create there is no address to give yet: the entry is taken as valid.
        Assert.Equal(["a 1.2.3.4", "six ::1"], ContainerSpecFactory.ExtraHosts(host).Select(e => $"{e.Names[0]} {e.Address}"));
        Assert.Equal(["gw 172.17.0.1", "a 1.2.3.4", "six ::1"],
            ContainerSpecFactory.ExtraHosts(host, () => IPAddress.Parse("172.17.0.1")).Select(e => $"{e.Names[0]} {e.Address}"));

        // No default bridge (--bridge none): dockerd's error rather than dockerd 20.10's "<nil>" line.
        var e = Assert.Throws<ImagesException>(() => ContainerSpecFactory.ExtraHosts(host, () => null));
        Assert.Contains("unable to derive the IP value for host-gateway", e.Message);
        Assert.Contains("want host:ip", Assert.Throws<ImagesException>(() => ContainerSpecFactory.ExtraHosts(new HostConfigJson { ExtraHosts = ["x:gateway"] })).Message);
    }
}
