using System.Net.Sockets;
using Berth.Daemon.Configuration;

namespace Berth.Daemon.Hosting;

/// <summary>Preparing a unix socket path before Kestrel binds it, and securing it after.</summary>
public static class UnixSocket
{
    /// <summary>
    /// Creates the parent directory (0711: others may reach a socket inside, not list it) and
    /// removes a stale socket left by a crash; refuses when a live daemon answers on it.
    /// </summary>
    public static void Prepare(string path)
    {
        string dir = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir))
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        uint? type = Interop.FileType(path);
        if (type is null) return;
        if (type != Interop.S_IFSOCK)
            throw new DaemonConfigException($"`{path}` exists and is not a socket; refusing to replace it");
        if (IsAlive(path)) throw new DaemonConfigException($"`{path}` is in use: another daemon is listening on it");
        File.Delete(path);
    }

    /// <summary>
    /// Mode 0660 and the group <paramref name="group"/> when it exists, as dockerd does with
    /// `docker`. Between bind and this chmod the socket has the umask's mode; Program sets a umask
    /// that denies others write (and so connect) before anything is bound.
    /// </summary>
    public static void Secure(string path, string group)
    {
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        if (GroupId(group) is { } gid && Interop.chown(path, -1, gid) < 0)
            throw new DaemonConfigException($"chown `{path}` to group {group}: {Interop.Describe(Interop.LastErrno)}");
    }

    public static void Remove(string path)
    {
        try
        {
            if (IsSocket(path)) File.Delete(path);
        }
        catch (IOException)
        {
        }
    }

    private static bool IsSocket(string path) => Interop.FileType(path) == Interop.S_IFSOCK;

    private static bool IsAlive(string path)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The numeric ID of a group from /etc/group, or null when there is no such group.</summary>
    public static int? GroupId(string group)
    {
        try
        {
            foreach (string line in File.ReadLines("/etc/group"))
            {
                string[] f = line.Split(':');
                if (f.Length >= 3 && f[0] == group && int.TryParse(f[2], out int gid)) return gid;
            }
        }
        catch (IOException)
        {
        }
        return null;
    }
}
