using System.Net;
using System.Net.Sockets;
using Berth.Network.Netlink;
using Berth.Network.Tests.Support;

namespace Berth.Network.Tests.Dns;

/// <summary>The embedded DNS server bound in a namespace of its own, at 127.0.0.11, as for a container.</summary>
public sealed class EmbeddedDnsServerNamespaceTests
{
    /// <summary>
    /// A container's namespace is new, its lo down, while berthd binds the server's sockets and, at the same
    /// time, sets up the endpoint, which brings lo up. A socket bound to 127.0.0.11 before that answered from
    /// 127.0.0.1, and the resolver (asking 127.0.0.11:53, connected) dropped every answer: nslookup timed out,
    /// as it did once in CI's compose test.
    /// </summary>
    [Fact]
    public void Answers_come_from_127_0_0_11_though_the_namespace_s_lo_was_down_when_the_server_started()
    {
        string name = "berth-dns-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        NetLab.Ip("netns", "add", name);
        try
        {
            string path = NetLab.PathOf(name);
            var names = new OneName("web", IPAddress.Parse("172.18.0.2"));
            using EmbeddedDnsServer server = EmbeddedDnsServer.Start(path, EmbeddedDnsServer.Address, names, [], (f, t, p) => new Socket(f, t, p));
            NetLab.Ip("-n", name, "link", "set", "lo", "up"); // what the endpoint setup does meanwhile

            // Connected, as resolvers' sockets are: an answer from another address than the one asked is dropped.
            using Socket client = Netns.RunIn(path, "test client", () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
            client.ReceiveTimeout = 3000;
            client.Connect(new IPEndPoint(EmbeddedDnsServer.Address, server.UdpPort));
            client.Send(DnsTestClient.Query(21, "web", DnsMessage.TypeA));
            var buffer = new byte[512];
            int n = client.Receive(buffer); // SocketException (TimedOut) when the answer left from 127.0.0.1
            Assert.Equal(["172.18.0.2"], DnsTestClient.Parse(buffer[..n]).Addresses.Select(a => a.ToString()));
        }
        finally
        {
            NetLab.Ip("netns", "del", name);
        }
    }

    private sealed class OneName(string name, IPAddress address) : IDnsNameSource
    {
        public IReadOnlyList<IPAddress>? Lookup(string n) => n == name ? [address] : null;
        public string? LookupAddress(IPAddress a) => null;
        public bool MayForward => false;
    }
}
