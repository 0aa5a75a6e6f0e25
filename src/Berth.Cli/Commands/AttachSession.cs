using System.Net.Sockets;
using Berth.Cli.Client;
using Berth.Cli.Interop;

namespace Berth.Cli.Commands;

/// <summary>
/// The I/O of an attached container or exec: the daemon's stream to stdout/stderr (raw with a TTY,
/// demultiplexed otherwise) and, when asked, stdin to the daemon from a background thread that
/// reads fd 0 directly (Console's stdin would put the terminal in its own mode). Stdin's end is
/// passed on as a half-close. With a TTY, the detach keys (ctrl-p ctrl-q by default) are watched
/// for in stdin as docker's escape proxy does: a matching sequence ends the session without
/// forwarding it, and the caller leaves the container running.
/// </summary>
internal static class AttachSession
{
    public static readonly byte[] DefaultDetachKeys = [16, 17];

    /// <returns>true when the user detached with the escape sequence.</returns>
    public static async Task<bool> PumpAsync(HijackedConnection connection, bool tty, bool stdin, byte[]? detachKeys)
    {
        int detached = 0;
        Task output = Task.Factory.StartNew(() =>
        {
            try
            {
                if (tty) StdStreams.CopyRaw(StdStreams.Reader(connection));
                else StdStreams.Demultiplex(StdStreams.Reader(connection));
            }
            catch (Exception) when (Volatile.Read(ref detached) == 1)
            {
            }
        }, TaskCreationOptions.LongRunning);
        if (stdin)
        {
            var thread = new Thread(() =>
            {
                try
                {
                    if (CopyStdin(connection, detachKeys))
                    {
                        Volatile.Write(ref detached, 1);
                        connection.Dispose();
                    }
                    else
                    {
                        connection.CloseWrite();
                    }
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                {
                }
            }) { IsBackground = true, Name = "stdin" };
            thread.Start();
        }
        await output.ConfigureAwait(false);
        return Volatile.Read(ref detached) == 1;
    }

    /// <returns>true when the escape sequence was read.</returns>
    private static bool CopyStdin(HijackedConnection connection, byte[]? keys)
    {
        var buffer = new byte[4096];
        var pending = new List<byte>();
        int n;
        while ((n = Libc.Read(StdStreams.Stdin, buffer)) > 0)
        {
            if (keys is null or { Length: 0 })
            {
                connection.Write(buffer.AsSpan(0, n));
                continue;
            }
            var forward = new List<byte>(n + pending.Count);
            for (int i = 0; i < n; i++)
            {
                byte b = buffer[i];
                if (b == keys[pending.Count])
                {
                    pending.Add(b);
                    if (pending.Count == keys.Length) return true;
                    continue;
                }
                forward.AddRange(pending);
                pending.Clear();
                if (b == keys[0]) pending.Add(b);
                else forward.Add(b);
            }
            if (forward.Count > 0) connection.Write(forward.ToArray());
        }
        return false;
    }

    /// <summary>Docker's detach-keys syntax: <c>ctrl-p,ctrl-q</c>, <c>ctrl-@</c>…<c>ctrl-_</c>, single characters.</summary>
    public static byte[] ParseDetachKeys(string? text)
    {
        if (string.IsNullOrEmpty(text)) return DefaultDetachKeys;
        var keys = new List<byte>();
        foreach (string key in text.Split(','))
        {
            string k = key.Trim().ToLowerInvariant();
            if (k.StartsWith("ctrl-", StringComparison.Ordinal) && k.Length == 6)
            {
                char c = k[5];
                keys.Add(c switch
                {
                    >= 'a' and <= 'z' => (byte)(c - 'a' + 1),
                    '@' => 0, '[' => 27, '\\' => 28, ']' => 29, '^' => 30, '_' => 31,
                    _ => throw new UsageException($"Unknown character: '{key}'"),
                });
            }
            else if (key.Length == 1) keys.Add((byte)key[0]);
            else throw new UsageException($"Unknown character: '{key}'");
        }
        return keys.ToArray();
    }
}
