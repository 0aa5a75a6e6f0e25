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
/// The loops run on berthd's thread pool; the sockets work from any thread, whatever its namespace.
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

    private readonly Socket _udp, _tcp;
    private readonly IDnsNameSource _names;
    private readonly IReadOnlyList<IPEndPoint> _upstream;
    private readonly Func<AddressFamily, SocketType, ProtocolType, Socket> _upstreamSocket;
    private readonly CancellationTokenSource _stop = new();
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
            sockets = netnsPath is null ? Bind() : Netns.RunIn(netnsPath, "bind the embedded DNS server", Bind);
        }
        catch (SocketException e)
        {
            throw new NetworkException(NetworkErrorKind.Internal, $"embedded DNS server: binding {listen}: {e.Message}");
        }
        var server = new EmbeddedDnsServer(sockets.udp, sockets.tcp, names, upstream, upstreamSocket);
        _ = server.ServeUdpAsync();
        _ = server.ServeTcpAsync();
        return server;
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _udp.Dispose();
        _tcp.Dispose();
    }

    private async Task ServeUdpAsync()
    {
        var buffer = new byte[65535];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue; // an ICMP error for an earlier answer (ECONNREFUSED): nothing to do with the next query
            }
            byte[] query = buffer.AsSpan(0, received.ReceivedBytes).ToArray();
            EndPoint client = received.RemoteEndPoint;
            _ = Task.Run(async () =>
            {
                byte[]? answer = await AnswerAsync(query, overTcp: false);
                if (answer is null) return;
                try
                {
                    await _udp.SendToAsync(answer, SocketFlags.None, client, _stop.Token);
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
                {
                }
            });
        }
    }

    private async Task ServeTcpAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _tcp.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            _ = Task.Run(() => ServeConnectionAsync(connection));
        }
    }

    /// <summary>Queries over one TCP connection (RFC 1035 4.2.2: each prefixed by its length), until the client closes it or stays idle.</summary>
    private async Task ServeConnectionAsync(Socket connection)
    {
        using (connection)
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                    idle.CancelAfter(TcpIdleTimeout);
                    byte[]? query = await ReadFramedAsync(connection, idle.Token);
                    if (query is null) return;
                    byte[]? answer = await AnswerAsync(query, overTcp: true);
                    if (answer is null) return;
                    await WriteFramedAsync(connection, answer, _stop.Token);
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>The answer to one query, or null when there is none to send (the server stops).</summary>
    internal async Task<byte[]?> AnswerAsync(byte[] query, bool overTcp)
    {
        int maxLength = overTcp ? ushort.MaxValue : DnsMessage.MaxUdpLength;
        if (!DnsMessage.TryReadQuery(query, out DnsQuestion question, out int questionEnd))
            return query.Length >= 2 ? DnsMessage.FormatError(query) : null;
        if (question.Class == DnsMessage.ClassIn)
        {
            List<DnsRecord>? records = LocalAnswer(question);
            if (records is not null) return DnsMessage.Answer(query, questionEnd, DnsMessage.RcodeNoError, records, maxLength);
        }
        if (!_names.MayForward || _upstream.Count == 0)
            return DnsMessage.Answer(query, questionEnd, DnsMessage.RcodeRefused, []);
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
                byte[]? answer = await ForwardAsync(server, query, overTcp);
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
    private async Task<byte[]?> ForwardAsync(IPEndPoint server, byte[] query, bool overTcp)
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
        var framed = new byte[2 + message.Length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
        message.CopyTo(framed, 2);
        int sent = 0;
        while (sent < framed.Length) sent += await socket.SendAsync(framed.AsMemory(sent), SocketFlags.None, cancellationToken);
    }
}
