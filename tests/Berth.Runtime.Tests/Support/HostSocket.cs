using System.Net.Sockets;
using System.Text;

namespace Berth.Runtime.Tests.Support;

/// <summary>The host's NOTIFY_SOCKET, as systemd holds it: a datagram socket the tests read.</summary>
public sealed class HostSocket : IDisposable
{
    readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);

    /// <summary>What NOTIFY_SOCKET says: a path, or "@name" for an abstract socket.</summary>
    public string Address { get; }

    public HostSocket(string address)
    {
        Address = address;
        // .NET spells an abstract address with a leading NUL.
        _socket.Bind(new UnixDomainSocketEndPoint(address.StartsWith('@') ? "\0" + address[1..] : address));
    }

    /// <summary>Up to <paramref name="count"/> datagrams, as they came; fewer when none comes for <paramref name="timeout"/> (default 20 s).</summary>
    public List<string> Receive(int count, TimeSpan? timeout = null)
    {
        var messages = new List<string>();
        var buffer = new byte[8192];
        _socket.ReceiveTimeout = (int)(timeout ?? TimeSpan.FromSeconds(20)).TotalMilliseconds;
        while (messages.Count < count)
        {
            try { messages.Add(Encoding.ASCII.GetString(buffer, 0, _socket.Receive(buffer))); }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock) { break; }
        }
        return messages;
    }

    public void Dispose()
    {
        _socket.Dispose();
        if (!Address.StartsWith('@')) File.Delete(Address);
    }
}
