using System.Net;
using System.Net.Sockets;

namespace Berth.Network.Tests.Dns;

/// <summary>
/// The embedded DNS server's answers, served on 127.0.0.1 in the test's own namespace (the daemon
/// tests run it at 127.0.0.11 inside containers): names it knows, what it forwards, what it refuses.
/// </summary>
public sealed class EmbeddedDnsServerTests : IDisposable
{
    private readonly FakeNames _names = new();
    private readonly FakeUpstream _upstream = new();

    public void Dispose() => _upstream.Dispose();

    private EmbeddedDnsServer Start(params IPEndPoint[] upstream)
        => EmbeddedDnsServer.Start(null, IPAddress.Loopback, _names, upstream, (f, t, p) => new Socket(f, t, p));

    private static IPEndPoint Udp(EmbeddedDnsServer s) => new(s.ListenAddress, s.UdpPort);
    private static IPEndPoint Tcp(EmbeddedDnsServer s) => new(s.ListenAddress, s.TcpPort);

    [Fact]
    public async Task Container_names_are_answered_over_udp_and_tcp_and_other_types_of_them_are_nodata()
    {
        _names.Add("web", "172.18.0.2", "fd00::2");
        using EmbeddedDnsServer server = Start(_upstream.Endpoint);

        DnsReply a = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(1, "WEB", DnsMessage.TypeA)));
        Assert.Equal(1, a.Id);
        Assert.Equal(DnsMessage.RcodeNoError, a.Rcode);
        Assert.Equal(["172.18.0.2"], a.Addresses.Select(x => x.ToString()));

        DnsReply aaaa = DnsTestClient.Parse(await DnsTestClient.AskTcpAsync(Tcp(server), DnsTestClient.Query(2, "web", DnsMessage.TypeAaaa)));
        Assert.Equal(["fd00::2"], aaaa.Addresses.Select(x => x.ToString()));

        // Known, but no record of that type: NOERROR with nothing, so the client does not go on elsewhere.
        DnsReply mx = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(3, "web", 15)));
        Assert.Equal(DnsMessage.RcodeNoError, mx.Rcode);
        Assert.Empty(mx.Answers);
        Assert.Equal(0, _upstream.Queries);
    }

    [Fact]
    public async Task Addresses_of_containers_have_ptr_records_naming_them()
    {
        _names.AddReverse("172.18.0.2", "web.mynet");
        using EmbeddedDnsServer server = Start(_upstream.Endpoint);
        DnsReply ptr = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(4, "2.0.18.172.in-addr.arpa", DnsMessage.TypePtr)));
        Assert.Equal("web.mynet", DnsTestClient.ReadName(Assert.Single(ptr.Answers).Data));

        // Another address is not ours: forwarded.
        DnsReply other = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(5, "9.0.18.172.in-addr.arpa", DnsMessage.TypePtr)));
        Assert.Equal(5, other.Id);
        Assert.Equal(1, _upstream.Queries);
    }

    [Fact]
    public async Task Other_names_are_forwarded_and_the_upstream_answer_relayed_over_udp_and_tcp()
    {
        using EmbeddedDnsServer server = Start(_upstream.Endpoint);
        DnsReply udp = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(0x4242, "deb.debian.org", DnsMessage.TypeA)));
        Assert.Equal(0x4242, udp.Id);
        Assert.Equal([FakeUpstream.Answer.ToString()], udp.Addresses.Select(a => a.ToString()));

        DnsReply tcp = DnsTestClient.Parse(await DnsTestClient.AskTcpAsync(Tcp(server), DnsTestClient.Query(0x4343, "deb.debian.org", DnsMessage.TypeA)));
        Assert.Equal(0x4343, tcp.Id);
        Assert.Equal([FakeUpstream.Answer.ToString()], tcp.Addresses.Select(a => a.ToString()));
        Assert.Equal(2, _upstream.Queries);
    }

    [Fact]
    public async Task A_silent_upstream_is_passed_over_for_the_next_and_none_answering_is_servfail()
    {
        // A port nobody listens on answers with an ICMP error: the next server is asked at once.
        IPEndPoint closed = ClosedUdpPort();
        using (EmbeddedDnsServer server = Start(closed, _upstream.Endpoint))
        {
            DnsReply reply = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(6, "example.org", DnsMessage.TypeA)));
            Assert.Equal([FakeUpstream.Answer.ToString()], reply.Addresses.Select(a => a.ToString()));
        }
        using (EmbeddedDnsServer server = Start(closed))
        {
            DnsReply reply = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(7, "example.org", DnsMessage.TypeA)));
            Assert.Equal(7, reply.Id);
            Assert.Equal(DnsMessage.RcodeServFail, reply.Rcode);
        }
    }

    [Fact]
    public async Task A_container_on_internal_networks_only_gets_refused_for_names_it_does_not_know()
    {
        _names.MayForward = false;
        _names.Add("db", "172.19.0.2");
        using EmbeddedDnsServer server = Start(_upstream.Endpoint);
        DnsReply refused = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(8, "example.org", DnsMessage.TypeA)));
        Assert.Equal(DnsMessage.RcodeRefused, refused.Rcode);
        DnsReply known = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(9, "db", DnsMessage.TypeA)));
        Assert.Equal(["172.19.0.2"], known.Addresses.Select(a => a.ToString()));
        Assert.Equal(0, _upstream.Queries);
    }

    [Fact]
    public async Task Many_replicas_are_truncated_over_udp_and_whole_over_tcp()
    {
        _names.Add("web", [.. Enumerable.Range(1, 60).Select(i => $"172.18.1.{i}")]);
        using EmbeddedDnsServer server = Start(_upstream.Endpoint);
        byte[] udpAnswer = await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(10, "web", DnsMessage.TypeA));
        Assert.True(udpAnswer.Length <= DnsMessage.MaxUdpLength);
        Assert.True(DnsTestClient.Parse(udpAnswer).Truncated);
        DnsReply tcp = DnsTestClient.Parse(await DnsTestClient.AskTcpAsync(Tcp(server), DnsTestClient.Query(11, "web", DnsMessage.TypeA)));
        Assert.False(tcp.Truncated);
        Assert.Equal(60, tcp.Answers.Count);
    }

    [Fact]
    public async Task Unreadable_packets_get_formerr_and_a_stopped_server_holds_no_socket()
    {
        EmbeddedDnsServer server = Start(_upstream.Endpoint);
        IPEndPoint udp = Udp(server), tcp = Tcp(server);
        DnsReply formErr = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(udp, [0x12, 0x34, 0x00]));
        Assert.Equal(0x1234, formErr.Id);
        Assert.Equal(DnsMessage.RcodeFormErr, formErr.Rcode);

        server.Dispose();
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(() => probe.ConnectAsync(tcp));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        using var rebind = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        rebind.Bind(udp); // free again
    }

    [Fact]
    public async Task A_fault_in_answering_one_query_is_servfail_and_the_server_goes_on()
    {
        _names.Add("web", "172.18.0.2");
        _names.Faulty = "boom";
        using EmbeddedDnsServer server = Start(_upstream.Endpoint);
        DnsReply failed = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(12, "boom", DnsMessage.TypeA)));
        Assert.Equal(DnsMessage.RcodeServFail, failed.Rcode);
        DnsReply overTcp = DnsTestClient.Parse(await DnsTestClient.AskTcpAsync(Tcp(server), DnsTestClient.Query(13, "boom", DnsMessage.TypeA)));
        Assert.Equal(DnsMessage.RcodeServFail, overTcp.Rcode);
        DnsReply next = DnsTestClient.Parse(await DnsTestClient.AskUdpAsync(Udp(server), DnsTestClient.Query(14, "web", DnsMessage.TypeA)));
        Assert.Equal(["172.18.0.2"], next.Addresses.Select(x => x.ToString()));
    }

    private static IPEndPoint ClosedUdpPort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return (IPEndPoint)s.LocalEndPoint!;
    }

    private sealed class FakeNames : IDnsNameSource
    {
        private readonly Dictionary<string, List<IPAddress>> _names = new(StringComparer.Ordinal);
        private readonly Dictionary<IPAddress, string> _reverse = [];

        public void Add(string name, params string[] addresses) => _names[name] = addresses.Select(IPAddress.Parse).ToList();
        public void AddReverse(string address, string name) => _reverse[IPAddress.Parse(address)] = name;

        /// <summary>A name whose lookup throws, as a bug would.</summary>
        public string? Faulty { get; set; }

        public IReadOnlyList<IPAddress>? Lookup(string name) =>
            name == Faulty ? throw new InvalidOperationException("a fault in the name source") : _names.GetValueOrDefault(name);
        public string? LookupAddress(IPAddress address) => _reverse.GetValueOrDefault(address);
        public bool MayForward { get; set; } = true;
    }

    /// <summary>An upstream server on 127.0.0.1 (UDP and TCP, one port) answering every query with <see cref="Answer"/>.</summary>
    private sealed class FakeUpstream : IDisposable
    {
        public static readonly IPAddress Answer = IPAddress.Parse("192.0.2.99");
        private readonly Socket _udp = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly Socket _tcp = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private int _queries;

        public FakeUpstream()
        {
            _udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            Endpoint = (IPEndPoint)_udp.LocalEndPoint!;
            _tcp.Bind(Endpoint);
            _tcp.Listen();
            _ = ServeUdpAsync();
            _ = ServeTcpAsync();
        }

        public IPEndPoint Endpoint { get; }
        public int Queries => Volatile.Read(ref _queries);

        private static byte[] Reply(byte[] query)
        {
            Assert.True(DnsMessage.TryReadQuery(query, out _, out int end));
            return DnsMessage.Answer(query, end, DnsMessage.RcodeNoError, [DnsRecord.Address(Answer)]);
        }

        private async Task ServeUdpAsync()
        {
            var buffer = new byte[65535];
            try
            {
                while (true)
                {
                    var r = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0));
                    Interlocked.Increment(ref _queries);
                    await _udp.SendToAsync(Reply(buffer[..r.ReceivedBytes]), SocketFlags.None, r.RemoteEndPoint);
                }
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
            }
        }

        private async Task ServeTcpAsync()
        {
            try
            {
                while (true)
                {
                    using Socket c = await _tcp.AcceptAsync();
                    using var stream = new NetworkStream(c);
                    var prefix = new byte[2];
                    await stream.ReadExactlyAsync(prefix);
                    var query = new byte[prefix[0] << 8 | prefix[1]];
                    await stream.ReadExactlyAsync(query);
                    Interlocked.Increment(ref _queries);
                    byte[] reply = Reply(query);
                    await stream.WriteAsync(new[] { (byte)(reply.Length >> 8), (byte)reply.Length }.Concat(reply).ToArray());
                }
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException or IOException)
            {
            }
        }

        public void Dispose()
        {
            _udp.Dispose();
            _tcp.Dispose();
        }
    }
}
