using System.Net;
using System.Net.Sockets;

namespace Berth.Network.Tests.Dns;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ThreadPoolStarvationCollection
{
    public const string Name = "thread pool starvation";
}

/// <summary>
/// berthd's thread pool can be busy for seconds (blocking work on every thread, injection adding one
/// thread per half second): a container's resolver gives up after 5 s, so its DNS server answers the
/// names it knows on threads of its own. Alone in its collection: the test blocks the whole pool.
/// </summary>
[Collection(ThreadPoolStarvationCollection.Name)]
public sealed class EmbeddedDnsServerStarvationTests
{
    [Fact]
    public void Container_names_are_answered_over_udp_and_tcp_while_every_pool_thread_is_blocked()
    {
        var names = new StaticNames("web", IPAddress.Parse("172.18.0.2"));
        using EmbeddedDnsServer server = EmbeddedDnsServer.Start(null, IPAddress.Loopback, names, [], (f, t, p) => new Socket(f, t, p));
        var release = new ManualResetEventSlim(); // not disposed: queued blockers that start after the Set still wait on it
        ThreadPool.GetMinThreads(out int workers, out _);
        // More blockers than the pool will have threads in the test's time: each injected thread takes the next one.
        for (int i = 0; i < workers + 64; i++) ThreadPool.UnsafeQueueUserWorkItem(_ => release.Wait(), null);
        try
        {
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 3000 };
            udp.Connect(new IPEndPoint(server.ListenAddress, server.UdpPort));
            udp.Send(DnsTestClient.Query(7, "web", DnsMessage.TypeA));
            var buffer = new byte[512];
            int n = udp.Receive(buffer); // SocketException (TimedOut) when the answer waits for the pool
            Assert.Equal(["172.18.0.2"], DnsTestClient.Parse(buffer[..n]).Addresses.Select(a => a.ToString()));

            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 3000 };
            tcp.Connect(new IPEndPoint(server.ListenAddress, server.TcpPort));
            byte[] query = DnsTestClient.Query(8, "web", DnsMessage.TypeA);
            tcp.Send([(byte)(query.Length >> 8), (byte)query.Length, .. query]);
            var framed = new byte[2 + 512];
            int got = 0;
            while (got < 2 || got < 2 + (framed[0] << 8 | framed[1])) got += tcp.Receive(framed, got, framed.Length - got, SocketFlags.None);
            Assert.Equal(["172.18.0.2"], DnsTestClient.Parse(framed[2..got]).Addresses.Select(a => a.ToString()));
        }
        finally
        {
            release.Set();
        }
    }

    private sealed class StaticNames(string name, IPAddress address) : IDnsNameSource
    {
        public IReadOnlyList<IPAddress>? Lookup(string n) => n == name ? [address] : null;
        public string? LookupAddress(IPAddress a) => null;
        public bool MayForward => false;
    }
}
