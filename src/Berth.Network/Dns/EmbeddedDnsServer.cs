using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Berth.Network.Netlink;

namespace Berth.Network;

/// <summary>What one container's DNS server knows: the names on its networks, and whether it may ask outside.</summary>
public interface IDnsNameSource
{
    /// <summary>The addresses (IPv4 and IPv6) a container name stands for; null when it is not a name the container's networks know.</summary>
    IReadOnlyList<IPAddress>? Lookup(string name);

    /// <summary>The name of the container that has <paramref name="address"/> on one of this container's networks, or null.</summary>
    string? LookupAddress(IPAddress address);

    /// <summary>False when every network of the container is internal: names it does not know are refused, not forwarded.</summary>
    bool MayForward { get; }
}

/// <summary>
/// dockerd's embedded DNS server for one container: it answers at 127.0.0.11 inside the container's
/// network namespace, with the addresses of the containers on the container's user-defined networks
/// (names, aliases, short IDs, <c>name.network</c>), PTR records for their addresses, and forwards
/// every other query to the upstream servers (the container's --dns, else the host's).
///
/// The sockets are made inside the container's namespace (<see cref="Netns.RunIn{T}"/>) and bound to
/// 127.0.0.11 on ports the kernel picks; a DNAT rule in that namespace sends port 53 there (dockerd's
/// DOCKER_OUTPUT chain), so port 53 stays free for a DNS server the container runs itself. The
/// sockets keep the namespace alive: <see cref="Dispose"/> must run when the container stops.
/// The sockets are served on threads of their own, not on berthd's thread pool: a pool kept busy for
/// seconds (blocking work on each thread, a new one injected every half second) would leave a
/// container's resolver without an answer past its 5 s timeout. Only forwarded queries, which wait on
/// the upstream anyway, continue on the pool. The sockets work from any thread, whatever its namespace.
/// Upstream queries go out from the namespace of the bridges (the "host" side), as dockerd sends
/// them for a loopback upstream such as systemd-resolved's 127.0.0.53, which a container cannot reach.
/// </summary>
public sealed class EmbeddedDnsServer : IDisposable
{
    public static readonly IPAddress Address = IPAddress.Parse("127.0.0.11");
    /// <summary>Per upstream server, as dockerd's extIOTimeout; a resolver in the container waits 5 s before asking again.</summary>
    private static readonly TimeSpan UpstreamTimeout = TimeSpan.FromSeconds(4);
    /// <summary>Queries forwarded at once; beyond, SERVFAIL at once (dockerd's maxConcurrent), so a flood cannot hold unbounded sockets.</summary>
    private const int MaxConcurrentForwards = 100;
    private static readonly TimeSpan TcpIdleTimeout = TimeSpan.FromSeconds(10);
    /// <summary>TCP connections served at once (each has a thread); DNS over TCP is only the retry of a truncated answer.</summary>
    private const int MaxTcpConnections = 16;
    private const int ServingThreadStack = 256 * 1024;

    private readonly Socket _udp, _tcp;
    private readonly IDnsNameSource _names;
    private readonly IReadOnlyList<IPEndPoint> _upstream;
    private readonly Func<AddressFamily, SocketType, ProtocolType, Socket> _upstreamSocket;
    private readonly CancellationTokenSource _stop = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Socket, byte> _connections = new();
    private int _forwarding;

    public int UdpPort { get; }
    public int TcpPort { get; }
    public IPAddress ListenAddress { get; }

    private EmbeddedDnsServer(Socket udp, Socket tcp, IDnsNameSource names, IReadOnlyList<IPEndPoint> upstream,
        Func<AddressFamily, SocketType, ProtocolType, Socket> upstreamSocket)
    {
        _udp = udp;
        _tcp = tcp;
        _names = names;
        _upstream = upstream;
        _upstreamSocket = upstreamSocket;
        var udpEnd = (IPEndPoint)udp.LocalEndPoint!;
        ListenAddress = udpEnd.Address;
        UdpPort = udpEnd.Port;
        TcpPort = ((IPEndPoint)tcp.LocalEndPoint!).Port;
    }

    /// <summary>
    /// Binds the server's sockets (in <paramref name="netnsPath"/>; null: here, for tests) on
    /// <paramref name="listen"/> and starts serving. <paramref name="upstreamSocket"/> makes the sockets
    /// that forwarded queries go out by.
    /// </summary>
    public static EmbeddedDnsServer Start(string? netnsPath, IPAddress listen, IDnsNameSource names, IReadOnlyList<IPEndPoint> upstream,
        Func<AddressFamily, SocketType, ProtocolType, Socket> upstreamSocket)
    {
        (Socket udp, Socket tcp) Bind()
        {
            var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                udp.Bind(new IPEndPoint(listen, 0));
                tcp.Bind(new IPEndPoint(listen, 0));
                tcp.Listen(64);
                return (udp, tcp);
            }
            catch
            {
                udp.Dispose();
                tcp.Dispose();
                throw;
            }
        }
        (Socket udp, Socket tcp) sockets;
        try
        {
            if (netnsPath is not null)
            {
                // Bound while the namespace's lo is still down (the endpoint setup brings it up, at the
                // same time as this runs), a socket on 127.0.0.11 sends its answers from 127.0.0.1, and
                // the resolver, which asked 127.0.0.11:53 through the DNAT, drops them: lo goes up first.
                using var inside = NetlinkSocket.OpenIn(netnsPath);
                inside.SetLoopbackUp();
            }
            sockets = netnsPath is null ? Bind() : Netns.RunIn(netnsPath, "bind the embedded DNS server", Bind);
        }
        catch (SocketException e)
        {
            throw new NetworkException(NetworkErrorKind.Internal, $"embedded DNS server: binding {listen}: {e.Message}");
        }
        var server = new EmbeddedDnsServer(sockets.udp, sockets.tcp, names, upstream, upstreamSocket);
        StartThread(server.ServeUdp, "dns udp");
        StartThread(server.ServeTcp, "dns tcp");
        return server;
    }

    /// <summary>A serving loop on a thread of its own (see the class comment); blocked in the kernel when idle, it costs no CPU.</summary>
    private static void StartThread(Action loop, string name) =>
        new Thread(() => loop(), ServingThreadStack) { IsBackground = true, Name = name }.Start();

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        // Closing a socket wakes the thread blocked on it (.NET shuts it down first), which then ends.
        _udp.Dispose();
        _tcp.Dispose();
        foreach (Socket connection in _connections.Keys) connection.Dispose();
    }

    private void ServeUdp()
    {
        var buffer = new byte[65535];
        while (!_stop.IsCancellationRequested)
        {
            EndPoint client = new IPEndPoint(IPAddress.Any, 0);
            int length;
            try
            {
                length = _udp.ReceiveFrom(buffer, ref client);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                if (_stop.IsCancellationRequested) return;
                continue; // an ICMP error for an earlier answer (ECONNREFUSED): nothing to do with the next query
            }
            byte[] query = buffer.AsSpan(0, length).ToArray();
            byte[]? answer = AnswerLocallyGuarded(query, overTcp: false, out bool forward);
            if (forward) _ = ForwardAndSendAsync(query, client);
            else if (answer is not null) SendUdp(answer, client);
        }
    }

    /// <summary>A forwarded query: the only part that waits on the network, so the only one left to the thread pool.</summary>
    private async Task ForwardAndSendAsync(byte[] query, EndPoint client)
    {
        byte[]? answer = await ForwardAsync(query, overTcp: false);
        if (answer is not null) SendUdp(answer, client);
    }

    private void SendUdp(byte[] answer, EndPoint client)
    {
        try
        {
            _udp.SendTo(answer, SocketFlags.None, client);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private void ServeTcp()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = _tcp.Accept();
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                if (_stop.IsCancellationRequested) return;
                continue;
            }
            // A thread per connection, so at most MaxTcpConnections of them: more are closed at once.
            if (_connections.Count >= MaxTcpConnections || !_connections.TryAdd(connection, 0))
            {
                connection.Dispose();
                continue;
            }
            if (_stop.IsCancellationRequested) connection.Dispose(); // Dispose may have run between the check and the add
            StartThread(() => ServeConnection(connection), "dns tcp connection");
        }
    }

    /// <summary>Queries over one TCP connection (RFC 1035 4.2.2: each prefixed by its length), until the client closes it or stays idle.</summary>
    private void ServeConnection(Socket connection)
    {
        try
        {
            connection.ReceiveTimeout = connection.SendTimeout = (int)TcpIdleTimeout.TotalMilliseconds;
            while (!_stop.IsCancellationRequested)
            {
                byte[]? query = ReadFramed(connection);
                if (query is null) return;
                byte[]? answer = AnswerLocallyGuarded(query, overTcp: true, out bool forward);
                // This thread is the connection's own: waiting here for the upstream holds up no other query.
                if (forward) answer = ForwardAsync(query, overTcp: true).GetAwaiter().GetResult();
                if (answer is null) return;
                WriteFramed(connection, answer);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            _connections.TryRemove(connection, out _);
            connection.Dispose();
        }
    }

    /// <summary>
    /// <see cref="AnswerLocally"/> on a serving thread: the queries come from the container, and a fault
    /// in answering one (a bug, a packet nobody foresaw) must neither end the thread nor, unhandled on a
    /// thread of its own, berthd with every container's DNS: that query gets SERVFAIL.
    /// </summary>
    private byte[]? AnswerLocallyGuarded(byte[] query, bool overTcp, out bool forward)
    {
        try
        {
            return AnswerLocally(query, overTcp, out forward);
        }
        catch (Exception)
        {
            forward = false;
            return DnsMessage.TryReadQuery(query, out _, out int questionEnd) ? DnsMessage.Answer(query, questionEnd, DnsMessage.RcodeServFail, []) : null;
        }
    }

    /// <summary>
    /// The answer from what the server knows (a FORMERR, a local name, a refusal), or null: nothing to
    /// send, or — with <paramref name="forward"/> — a query for the upstream servers.
    /// </summary>
    private byte[]? AnswerLocally(byte[] query, bool overTcp, out bool forward)
    {
        forward = false;
        if (!DnsMessage.TryReadQuery(query, out DnsQuestion question, out int questionEnd))
            return query.Length >= 2 ? DnsMessage.FormatError(query) : null;
        if (question.Class == DnsMessage.ClassIn)
        {
            List<DnsRecord>? records = LocalAnswer(question);
            if (records is not null)
                return DnsMessage.Answer(query, questionEnd, DnsMessage.RcodeNoError, records, overTcp ? ushort.MaxValue : DnsMessage.MaxUdpLength);
        }
        if (!_names.MayForward || _upstream.Count == 0)
            return DnsMessage.Answer(query, questionEnd, DnsMessage.RcodeRefused, []);
        forward = true;
        return null;
    }

    /// <summary>The first upstream server's answer, SERVFAIL when none gives one (or too many are in flight), null when the server stops.</summary>
    private async Task<byte[]?> ForwardAsync(byte[] query, bool overTcp)
    {
        DnsMessage.TryReadQuery(query, out _, out int questionEnd); // read before: the query is well formed
        if (Interlocked.Increment(ref _forwarding) > MaxConcurrentForwards)
        {
            Interlocked.Decrement(ref _forwarding);
            return DnsMessage.Answer(query, questionEnd, DnsMessage.RcodeServFail, []);
        }
        try
        {
            foreach (IPEndPoint server in _upstream)
            {
                if (_stop.IsCancellationRequested) return null;
                byte[]? answer = await ForwardToAsync(server, query, overTcp);
                if (answer is not null) return answer;
            }
        }
        finally
        {
            Interlocked.Decrement(ref _forwarding);
        }
        return DnsMessage.Answer(query, questionEnd, DnsMessage.RcodeServFail, []);
    }

    /// <summary>
    /// The records for a name the container's networks know (an empty list: the name is known but has no
    /// record of that type — NODATA, so the client does not go on to ask elsewhere), or null: not ours.
    /// </summary>
    private List<DnsRecord>? LocalAnswer(DnsQuestion question)
    {
        if (question.Type == DnsMessage.TypePtr)
        {
            IPAddress? address = DnsMessage.ReverseNameAddress(question.Name);
            string? name = address is null ? null : _names.LookupAddress(address);
            return name is null ? null : [DnsRecord.Pointer(name)];
        }
        IReadOnlyList<IPAddress>? addresses = _names.Lookup(question.Name);
        if (addresses is null) return null;
        AddressFamily? family = question.Type switch
        {
            DnsMessage.TypeA => AddressFamily.InterNetwork,
            DnsMessage.TypeAaaa => AddressFamily.InterNetworkV6,
            _ => null,
        };
        return family is null ? [] : addresses.Where(a => a.AddressFamily == family).Select(DnsRecord.Address).ToList();
    }

    /// <summary>The upstream server's answer, relayed as it came; null when it did not answer in time or the exchange failed.</summary>
    private async Task<byte[]?> ForwardToAsync(IPEndPoint server, byte[] query, bool overTcp)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(UpstreamTimeout);
        try
        {
            using Socket socket = _upstreamSocket(server.AddressFamily, overTcp ? SocketType.Stream : SocketType.Dgram, overTcp ? ProtocolType.Tcp : ProtocolType.Udp);
            await socket.ConnectAsync(server, timeout.Token);
            if (overTcp)
            {
                await WriteFramedAsync(socket, query, timeout.Token);
                byte[]? framed = await ReadFramedAsync(socket, timeout.Token);
                return framed is { Length: >= 2 } && DnsMessage.IdOf(framed) == DnsMessage.IdOf(query) ? framed : null;
            }
            await socket.SendAsync(query, SocketFlags.None, timeout.Token);
            var buffer = new byte[65535];
            while (true)
            {
                // A connected UDP socket only takes datagrams from the server; one with another ID is stale or forged.
                int length = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                if (length >= DnsMessage.HeaderLength && DnsMessage.IdOf(buffer) == DnsMessage.IdOf(query)) return buffer[..length];
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or NetworkException)
        {
            return null;
        }
    }

    private static byte[]? ReadFramed(Socket socket)
    {
        var prefix = new byte[2];
        if (!ReadExactly(socket, prefix)) return null;
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
        return ReadExactly(socket, message) ? message : null;
    }

    private static bool ReadExactly(Socket socket, Span<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            int n = socket.Receive(buffer, SocketFlags.None);
            if (n == 0) return false;
            buffer = buffer[n..];
        }
        return true;
    }

    private static void WriteFramed(Socket socket, byte[] message)
    {
        byte[] framed = Framed(message);
        for (int sent = 0; sent < framed.Length;) sent += socket.Send(framed.AsSpan(sent), SocketFlags.None);
    }

    /// <summary>A message as TCP carries it: after its length, two bytes big-endian.</summary>
    private static byte[] Framed(byte[] message)
    {
        var framed = new byte[2 + message.Length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
        message.CopyTo(framed, 2);
        return framed;
    }

    private static async Task<byte[]?> ReadFramedAsync(Socket socket, CancellationToken cancellationToken)
    {
        var prefix = new byte[2];
        if (!await ReadExactlyAsync(socket, prefix, cancellationToken)) return null;
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
        return await ReadExactlyAsync(socket, message, cancellationToken) ? message : null;
    }

    private static async Task<bool> ReadExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (n == 0) return false;
            buffer = buffer[n..];
        }
        return true;
    }

    private static async Task WriteFramedAsync(Socket socket, byte[] message, CancellationToken cancellationToken)
    {
        byte[] framed = Framed(message);
        int sent = 0;
        while (sent < framed.Length) sent += await socket.SendAsync(framed.AsMemory(sent), SocketFlags.None, cancellationToken);
    }
}
