using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Berth.Network.Netlink;

namespace Berth.Network;

/// <summary>
/// The host sockets behind one endpoint's published ports, as dockerd's port mapper keeps them
/// (a docker-proxy per port; with <c>--userland-proxy=false</c> its "dummy proxy", which only holds the port).
/// Without the proxy a TCP socket is bound and not listening, without SO_REUSEADDR: the port stays
/// reserved (the kernel refuses another bind unless both sockets have SO_REUSEADDR) and what DNAT does
/// not take is refused at once; dockerd's dummy proxy listens and never accepts, which leaves such a
/// client hanging.
///
/// The NAT rules (<see cref="Nat.NftFirewall"/>) move the traffic; these sockets do what DNAT cannot:
/// <list type="bullet">
/// <item><b>Reserve the port.</b> A port another program on the host has bound is refused when the
/// container starts (dockerd: "Error starting userland proxy: listen tcp4 0.0.0.0:8080: bind: address
/// already in use") instead of the DNAT silently taking that program's traffic; while the container
/// runs, no other program can bind it; an ephemeral host port is one that binds.</item>
/// <item><b>Serve what DNAT does not reach</b> (with the proxy on). Every IPv4 packet to a local
/// address, loopback included, is DNAT'd, and IPv6 packets are DNAT'd to containers that have an IPv6
/// address — except to ::1, since IPv6 has no route_localnet. So a connection reaches these sockets
/// only over IPv6 to a container without IPv6 (the default network is IPv4 only: <c>curl
/// http://[::1]:8080</c>, or a client that resolves localhost to ::1 first) or to ::1. It is relayed
/// to the container's address as docker-proxy relays it: TCP as a byte stream with half-close, UDP
/// per client address with a 90 s idle timeout. The container sees the gateway as the source.</item>
/// </list>
/// Sockets are made inside the namespace the bridges live in (tests use a private one) and stay bound
/// to it; the relays run on the thread pool and end when this is disposed.
/// </summary>
internal sealed class PublishedPortSockets : IDisposable
{
    private static readonly TimeSpan UdpIdleTimeout = TimeSpan.FromSeconds(90);
    private readonly string? _netnsPath;
    private readonly bool _listen;
    private readonly List<(Socket Socket, PortMapping Port)> _sockets = [];
    private readonly CancellationTokenSource _stop = new();
    private bool _serving;

    private PublishedPortSockets(string? netnsPath, bool listen)
    {
        _netnsPath = netnsPath;
        _listen = listen;
    }

    /// <summary>A port bound to every address (no host IP) has its IPv6 wildcard socket too: the host has IPv6.</summary>
    public bool ListensOnIpv6Any { get; private set; }

    /// <summary>
    /// Binds every port's sockets: a host IP's own, or for none the IPv4 and (when the host has IPv6)
    /// the IPv6 wildcard. A port that does not bind is a <see cref="NetworkException"/> in dockerd's
    /// words, with everything bound so far closed again.
    /// </summary>
    /// <param name="listen">TCP sockets listen, for <see cref="Serve"/> (the userland proxy); false: bound only.</param>
    public static PublishedPortSockets Bind(IReadOnlyList<PortMapping> ports, string? netnsPath, bool listen)
    {
        var sockets = new PublishedPortSockets(netnsPath, listen);
        try
        {
            foreach (var p in ports) sockets.Add(p);
            return sockets;
        }
        catch
        {
            sockets.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Binds what it can (daemon start, for the ports of containers that kept running): a port another
    /// program took meanwhile is passed to <paramref name="unbound"/> and the others are still held.
    /// </summary>
    public static PublishedPortSockets BindEach(IReadOnlyList<PortMapping> ports, string? netnsPath, bool listen, Action<PortMapping, NetworkException> unbound)
    {
        var sockets = new PublishedPortSockets(netnsPath, listen);
        foreach (var p in ports)
        {
            try
            {
                sockets.Add(p);
            }
            catch (NetworkException e)
            {
                unbound(p, e);
            }
        }
        return sockets;
    }

    /// <summary>Whether this one port binds now on every address it names (ephemeral port choice); the test sockets are closed again.</summary>
    public static bool CanBind(PortMapping port, string? netnsPath, bool listen)
    {
        try
        {
            Bind([port], netnsPath, listen).Dispose();
            return true;
        }
        catch (NetworkException)
        {
            return false;
        }
    }

    private void Add(PortMapping p)
    {
        if (p.HostIp is { } ip)
        {
            _sockets.Add((Open(IPAddress.Parse(ip), p, required: true)!, p));
            return;
        }
        _sockets.Add((Open(IPAddress.Any, p, required: true)!, p));
        // The IPv6 wildcard only where the host has IPv6, as dockerd maps it.
        if (Open(IPAddress.IPv6Any, p, required: false) is { } v6)
        {
            _sockets.Add((v6, p));
            ListensOnIpv6Any = true;
        }
    }

    private Socket? Open(IPAddress address, PortMapping p, bool required)
    {
        var tcp = p.Protocol == "tcp";
        Socket socket;
        try
        {
            socket = NewSocket(address.AddressFamily, tcp ? SocketType.Stream : SocketType.Dgram, tcp ? ProtocolType.Tcp : ProtocolType.Udp);
        }
        catch (SocketException) when (!required && address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            return null; // no IPv6 in this kernel
        }
        try
        {
            // The IPv6 wildcard for IPv6 only: the IPv4 one is its own socket.
            if (address.AddressFamily == AddressFamily.InterNetworkV6) socket.DualMode = false;
            // .NET's Bind sets SO_REUSEADDR on a TCP socket (not SO_REUSEPORT, which would let another
            // SO_REUSEPORT program share the port), so connections in TIME_WAIT do not block it.
            socket.Bind(new IPEndPoint(address, p.HostPort));
            if (tcp && _listen) socket.Listen(128);
            // A bound socket that does not listen keeps a port from another bind only without
            // SO_REUSEADDR: Linux lets two such sockets share it when both have it. The kernel reads the
            // flag when the other program binds, so clearing it now is enough.
            else if (tcp) socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(0));
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            // IPv6 off on the host (disable_ipv6): the wildcard cannot be bound, the port stays IPv4 only.
            if (!required && e.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported) return null;
            var family = address.AddressFamily == AddressFamily.InterNetwork ? "4" : "6";
            var endpoint = address.AddressFamily == AddressFamily.InterNetwork ? $"{address}:{p.HostPort}" : $"[{address}]:{p.HostPort}";
            throw new NetworkException(NetworkErrorKind.Internal,
                $"Error starting userland proxy: listen {p.Protocol}{family} {endpoint}: bind: {Describe(e)}");
        }
    }

    private const int SolSocket = 1, SoReuseAddr = 2;

    private static string Describe(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => "address already in use",
        SocketError.AddressNotAvailable => "cannot assign requested address",
        SocketError.AccessDenied => "permission denied",
        _ => e.Message,
    };

    private Socket NewSocket(AddressFamily family, SocketType type, ProtocolType protocol) =>
        _netnsPath is null
            ? new Socket(family, type, protocol)
            : Netns.RunIn(_netnsPath, "open a published port's socket", () => new Socket(family, type, protocol));

    /// <summary>Starts relaying what reaches the sockets to the container (the userland proxy); without this they only reserve.</summary>
    public void Serve(IPAddress containerAddress, IPAddress? containerAddress6)
    {
        if (!_listen) throw new InvalidOperationException("these sockets were bound without listening");
        if (_serving) return;
        _serving = true;
        foreach (var (socket, p) in _sockets)
        {
            // An IPv6 client goes to the container's IPv6 address when it has one (only ::1 gets here then).
            var target = new IPEndPoint(socket.AddressFamily == AddressFamily.InterNetworkV6 && containerAddress6 is not null ? containerAddress6 : containerAddress, p.ContainerPort);
            _ = p.Protocol == "tcp" ? AcceptLoopAsync(socket, target) : UdpLoopAsync(socket, target);
        }
    }

    private async Task AcceptLoopAsync(Socket listener, IPEndPoint target)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue; // a connection reset before it was accepted
            }
            _ = RelayTcpAsync(client, target);
        }
    }

    private async Task RelayTcpAsync(Socket client, IPEndPoint target)
    {
        using (client)
        {
            Socket upstream;
            try
            {
                upstream = NewSocket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            }
            catch (Exception e) when (e is SocketException or NetworkException)
            {
                return;
            }
            using (upstream)
            {
                try
                {
                    await upstream.ConnectAsync(target, _stop.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
                {
                    return; // nothing listens in the container: the client sees its connection closed, as with docker-proxy
                }
                await Task.WhenAll(PumpAsync(client, upstream), PumpAsync(upstream, client)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Copies one direction until end of stream, then half-closes the other side; an error ends both directions.</summary>
    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(32 * 1024);
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (n == 0) break;
                for (var sent = 0; sent < n;)
                    sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, _stop.Token).ConfigureAwait(false);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            Abort(from);
            Abort(to);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void Abort(Socket socket)
    {
        try { socket.Shutdown(SocketShutdown.Both); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    /// <summary>
    /// UDP: each client address gets its own socket connected to the container, whose answers go back to
    /// that client from the published port; a flow idle for 90 s is closed.
    /// </summary>
    private async Task UdpLoopAsync(Socket listener, IPEndPoint target)
    {
        var flows = new ConcurrentDictionary<IPEndPoint, Socket>();
        var buffer = new byte[64 * 1024];
        EndPoint any = new IPEndPoint(listener.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                SocketReceiveFromResult received;
                try
                {
                    received = await listener.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    continue;
                }
                var client = (IPEndPoint)received.RemoteEndPoint;
                if (!flows.TryGetValue(client, out var flow))
                {
                    try
                    {
                        flow = NewSocket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                        flow.Connect(target);
                    }
                    catch (Exception e) when (e is SocketException or NetworkException)
                    {
                        continue;
                    }
                    flows[client] = flow;
                    _ = UdpRepliesAsync(listener, flow, client, flows);
                }
                try
                {
                    await flow.SendAsync(buffer.AsMemory(0, received.ReceivedBytes), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    // ECONNREFUSED from an earlier ICMP port unreachable: the datagram is lost, as it would be on a network.
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            foreach (var flow in flows.Values) flow.Dispose();
        }
    }

    private async Task UdpRepliesAsync(Socket listener, Socket flow, IPEndPoint client, ConcurrentDictionary<IPEndPoint, Socket> flows)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                idle.CancelAfter(UdpIdleTimeout);
                int n;
                try
                {
                    n = await flow.ReceiveAsync(buffer, SocketFlags.None, idle.Token).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    continue; // ICMP port unreachable from the container: keep the flow, as docker-proxy does
                }
                await listener.SendToAsync(buffer.AsMemory(0, n), SocketFlags.None, client, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
        finally
        {
            flows.TryRemove(client, out _);
            flow.Dispose();
        }
    }

    /// <summary>Closes every socket: the port is free again and the relays end.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        foreach (var (socket, _) in _sockets) socket.Dispose();
        _sockets.Clear();
        // _stop is not disposed: relays still winding down read its token.
    }
}
