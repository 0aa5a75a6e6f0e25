using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Berth.Daemon.Monitor;

/// <summary>One json-file entry: <see cref="Line"/> is the decoded "log" value (with its trailing
/// newline; a partial entry of a long line or an unterminated chunk has none).</summary>
public sealed record LogEntry(string Stream, DateTimeOffset Time, ReadOnlyMemory<byte> Line);

/// <summary>Reads Docker's json-file logs as berth-monitor writes them: <c>PATH</c> is the current file,
/// <c>PATH.1</c>, <c>PATH.2</c>… the rotated ones (higher is older).</summary>
public static class JsonFileLog
{
    private const int MaxRotated = 1000;
    private static readonly TimeSpan FollowPoll = TimeSpan.FromMilliseconds(100);

    /// <summary>The entries oldest first. <paramref name="since"/> and <paramref name="until"/> are inclusive bounds
    /// (reading stops at the first entry after <paramref name="until"/>, as dockerd does); <paramref name="tail"/> &gt;= 0
    /// keeps the last <paramref name="tail"/> of the entries that pass the bounds. With <paramref name="follow"/>, new
    /// entries are yielded as they are written, across rotations, until <paramref name="ct"/> is cancelled (the
    /// enumeration then simply ends) or <paramref name="stopFollowing"/> returned true before the file was read to its end.
    /// Lines that are not valid entries (a torn last line after a crash) are skipped.</summary>
    public static async IAsyncEnumerable<LogEntry> ReadAsync(string path, DateTimeOffset? since, DateTimeOffset? until, int tail,
        bool follow, Func<bool> stopFollowing, [EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stopFollowing);
        // The current file is opened first: a rotation between the two steps then repeats entries rather than losing them.
        LogFile? current = LogFile.TryOpen(path);
        var rotated = new List<LogFile>();
        for (int i = 1; i <= MaxRotated; i++)
        {
            LogFile? f = LogFile.TryOpen($"{path}.{i}");
            if (f is null) break;
            rotated.Add(f);
        }
        rotated.Reverse();

        var window = tail >= 0 ? new Queue<LogEntry>(Math.Min(tail, 4096)) : null;
        bool done = false;
        try
        {
            foreach (LogFile? f in rotated.Append(current))
            {
                if (f is null) continue;
                foreach (LogEntry e in f.ReadAvailable())
                {
                    if (since is { } s && e.Time < s) continue;
                    if (until is { } u && e.Time > u) { done = true; break; }
                    if (window is null) yield return e;
                    else if (tail > 0)
                    {
                        if (window.Count == tail) window.Dequeue();
                        window.Enqueue(e);
                    }
                }
                if (done) break;
            }
            if (window is not null)
                foreach (LogEntry e in window) yield return e;
            if (done || !follow) yield break;

            DateTimeOffset? last = null;
            while (!ct.IsCancellationRequested)
            {
                // stopFollowing is asked before the read: whatever was written before it said "stop" is still read.
                bool stop = stopFollowing();
                bool any = false;
                current ??= LogFile.TryOpen(path);
                if (current is not null)
                {
                    foreach (LogEntry e in current.ReadAvailable())
                    {
                        any = true;
                        last = e.Time;
                        if (since is { } s && e.Time < s) continue;
                        if (until is { } u && e.Time > u) yield break;
                        yield return e;
                    }
                    if (!any && current.WasReplaced(path))
                    {
                        // Rotated under us: our handle (now PATH.k) is read to its end above; the files
                        // rotated after it (PATH.k-1 … PATH.1) come next, then the new PATH. When our file
                        // was rotated out altogether, the rotated files' entries newer than the last one
                        // read are taken (entries of the same 100 ns tick could be missed; dockerd loses more).
                        var (newer, found) = current.NewerRotations(path);
                        foreach (LogFile f in newer)
                            using (f)
                                foreach (LogEntry e in f.ReadAvailable())
                                {
                                    if (!found && last is { } l && e.Time <= l) continue;
                                    if (since is { } s && e.Time < s) continue;
                                    if (until is { } u && e.Time > u) yield break;
                                    yield return e;
                                }
                        current.Dispose();
                        current = LogFile.TryOpen(path);
                        continue;
                    }
                }
                if (any) continue;
                if (stop) yield break;
                try { await Task.Delay(FollowPoll, ct).ConfigureAwait(false); }
                catch (OperationCanceledException) { yield break; }
            }
        }
        finally
        {
            current?.Dispose();
            foreach (LogFile f in rotated) f.Dispose();
        }
    }

    /// <summary>Parses one json-file line; null when it is not an entry.</summary>
    internal static LogEntry? ParseLine(ReadOnlySpan<byte> line)
    {
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
            byte[]? log = null;
            string? stream = null;
            DateTimeOffset? time = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("log"u8))
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.String) return null;
                    var buffer = new byte[reader.ValueSpan.Length];
                    log = buffer[..reader.CopyString(buffer)];
                }
                else if (reader.ValueTextEquals("stream"u8))
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.String) return null;
                    stream = reader.GetString();
                }
                else if (reader.ValueTextEquals("time"u8))
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.String || reader.ValueIsEscaped) return null;
                    time = ParseTime(reader.ValueSpan);
                    if (time is null) return null;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            return log is null || stream is null || time is null ? null : new LogEntry(stream, time.Value, log);
        }
        catch (JsonException) { return null; }
        catch (InvalidOperationException) { return null; }   // e.g. an escaped lone surrogate in CopyString
    }

    /// <summary>RFC 3339 with up to nine fractional digits (Go's RFC3339Nano, as Docker writes it):
    /// <c>2026-12-04T16:44:16.123456789Z</c> or with a <c>±hh:mm</c> offset. Digits past the 100 ns tick are dropped.</summary>
    internal static DateTimeOffset? ParseTime(ReadOnlySpan<byte> s)
    {
        if (s.Length < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':') return null;
        if (!Digits(s, 0, 4, out int year) || !Digits(s, 5, 2, out int month) || !Digits(s, 8, 2, out int day)
            || !Digits(s, 11, 2, out int hour) || !Digits(s, 14, 2, out int minute) || !Digits(s, 17, 2, out int second)) return null;
        int i = 19;
        long ticks = 0;
        if (s[i] == '.')
        {
            int start = ++i;
            while (i < s.Length && s[i] is >= (byte)'0' and <= (byte)'9') i++;
            int count = i - start;
            if (count is 0 or > 9) return null;
            for (int k = 0; k < 7; k++) ticks = ticks * 10 + (k < count ? s[start + k] - '0' : 0);
        }
        TimeSpan offset;
        if (i == s.Length - 1 && (s[i] == 'Z' || s[i] == 'z')) offset = TimeSpan.Zero;
        else if (i == s.Length - 6 && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':'
                 && Digits(s, i + 1, 2, out int oh) && Digits(s, i + 4, 2, out int om))
            offset = new TimeSpan(oh, om, 0) * (s[i] == '-' ? -1 : 1);
        else return null;
        try { return new DateTimeOffset(year, month, day, hour, minute, second, offset).AddTicks(ticks); }
        catch (ArgumentOutOfRangeException) { return null; }
    }

    private static bool Digits(ReadOnlySpan<byte> s, int at, int count, out int value)
    {
        value = 0;
        for (int k = at; k < at + count; k++)
        {
            if (s[k] is < (byte)'0' or > (byte)'9') return false;
            value = value * 10 + (s[k] - '0');
        }
        return true;
    }

    /// <summary>An open log file read line by line from where the last read stopped; an unterminated
    /// last line (being written) waits for its newline.</summary>
    private sealed class LogFile : IDisposable
    {
        private readonly FileStream _stream;
        private readonly string _path;
        private byte[] _pending = new byte[64 * 1024];
        private int _pendingLength;

        private LogFile(FileStream stream, string path)
        {
            _stream = stream;
            _path = path;
        }

        public static LogFile? TryOpen(string path)
        {
            try
            {
                // FileShare.Delete: the monitor renames the file (rotation) while it is open here.
                return new LogFile(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None), path);
            }
            catch (FileNotFoundException) { return null; }
            catch (DirectoryNotFoundException) { return null; }
        }

        public List<LogEntry> ReadAvailable()
        {
            var entries = new List<LogEntry>();
            while (true)
            {
                if (_pendingLength == _pending.Length) Array.Resize(ref _pending, _pending.Length * 2);
                int n = _stream.Read(_pending, _pendingLength, _pending.Length - _pendingLength);
                if (n == 0) return entries;
                int scanFrom = _pendingLength;
                _pendingLength += n;
                int lineStart = 0;
                for (int nl; (nl = Array.IndexOf(_pending, (byte)'\n', scanFrom, _pendingLength - scanFrom)) >= 0; scanFrom = lineStart)
                {
                    if (ParseLine(_pending.AsSpan(lineStart, nl - lineStart)) is { } e) entries.Add(e);
                    lineStart = nl + 1;
                }
                Buffer.BlockCopy(_pending, lineStart, _pending, 0, _pendingLength - lineStart);
                _pendingLength -= lineStart;
            }
        }

        /// <summary>True when <paramref name="path"/> names another file than this one (it was rotated).</summary>
        public bool WasReplaced(string path)
        {
            var mine = MonitorInterop.FileIdentity(_stream.SafeFileHandle);
            var now = MonitorInterop.FileIdentity(path);
            return now is not null && mine is not null && now != mine;
        }

        /// <summary>The rotated files newer than this one, oldest first (PATH.k-1 … PATH.1 when this is PATH.k); when this
        /// file is not among them any more (Found false), all rotated files.</summary>
        public (List<LogFile> Newer, bool Found) NewerRotations(string path)
        {
            var mine = MonitorInterop.FileIdentity(_stream.SafeFileHandle);
            int k = 1;
            for (; k <= MaxRotated; k++)
            {
                var id = MonitorInterop.FileIdentity($"{path}.{k}");
                if (id is null || id == mine) break;
            }
            bool found = k <= MaxRotated && MonitorInterop.FileIdentity($"{path}.{k}") is { } at && at == mine;
            var newer = new List<LogFile>();
            for (int j = k - 1; j >= 1; j--)
                if (TryOpen($"{path}.{j}") is { } f) newer.Add(f);
            return (newer, found);
        }

        public override string ToString() => _path;

        public void Dispose() => _stream.Dispose();
    }
}
