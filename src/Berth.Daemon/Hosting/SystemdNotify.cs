using System.Net.Sockets;
using System.Text;

namespace Berth.Daemon.Hosting;

/// <summary>
/// sd_notify for a berthd that systemd runs as a <c>Type=notify</c> service, as dockerd (docker.service
/// is one): <c>READY=1</c> once the API is served, <c>STOPPING=1</c> when it shuts down.
/// <see cref="TakeFromEnvironment"/> takes NOTIFY_SOCKET out of berthd's environment at once, so that
/// no runtime or monitor berthd starts inherits it: runc and berth-runtime would proxy it into every
/// container and wait at each start for a READY the container never sends (containerd strips it
/// from runc's environment for the same reason).
/// </summary>
public sealed class SystemdNotify
{
    public const string Variable = "NOTIFY_SOCKET";

    private readonly string? _socket;

    private SystemdNotify(string? socket) => _socket = socket;

    public static SystemdNotify TakeFromEnvironment()
    {
        string? socket = Environment.GetEnvironmentVariable(Variable);
        Environment.SetEnvironmentVariable(Variable, null);
        return new SystemdNotify(string.IsNullOrEmpty(socket) ? null : socket);
    }

    /// <summary>
    /// Sends <paramref name="state"/> (<c>READY=1</c>…) when berthd was given a socket; an error is
    /// returned, not thrown: a service manager that went away is no reason for berthd to fail.
    /// </summary>
    public string? Send(string state)
    {
        if (_socket is null) return null;
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            // "@name" is an abstract address, as systemd spells it.
            socket.Connect(new UnixDomainSocketEndPoint(_socket[0] == '@' ? "\0" + _socket[1..] : _socket));
            socket.Send(Encoding.UTF8.GetBytes(state));
            return null;
        }
        catch (SocketException e)
        {
            return $"notifying {Variable} {_socket} of {state}: {e.Message}";
        }
    }
}
