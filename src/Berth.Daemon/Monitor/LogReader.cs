using System.IO.Compression;
using System.Runtime.CompilerServices;

namespace Berth.Daemon.Monitor;

/// <summary>One log entry: <see cref="Line"/> is the output with its trailing newline (a partial entry of a long line
/// or an unterminated chunk has none).</summary>
public sealed record LogEntry(string Stream, DateTimeOffset Time, ReadOnlyMemory<byte> Line)
{
    /// <summary>json-file's <c>"attrs"</c> (the log-opt labels and env values), sorted by key; null when the entry has none.</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? Attributes { get; init; }
}

/// <summary>The formats berth-monitor writes a container's log in: Docker's json-file driver's, or its local driver's.</summary>
public enum LogFormat { JsonFile, Local }

/// <summary>Where a container's log is: <see cref="Path"/> is the current file, <c>PATH.1</c>, <c>PATH.2</c>… the
/// rotated ones (higher is older), each possibly gzip-compressed as <c>PATH.N.gz</c>.</summary>
public sealed record LogLocation(string Path, LogFormat Format);

/// <summary>Takes the whole entries off the start of a log file's bytes.</summary>
internal interface ILogDecoder
{
    /// <summary>Adds the entries at the start of <paramref name="buffer"/> to <paramref name="entries"/> and returns how
    /// many bytes they took; the rest waits for more bytes. <paramref name="complete"/>: no more bytes will come (a
    /// rotated file read to its end), so what cannot be an entry now never will be.</summary>
    int Decode(ReadOnlySpan<byte> buffer, bool complete, List<LogEntry> entries);
}

/// <summary>Reads a container's log as berth-monitor writes it, in either format, across rotations.</summary>
public static class LogReader
{
    private const int MaxRotated = 1000;
    private static readonly TimeSpan FollowPoll = TimeSpan.FromMilliseconds(100);

    /// <summary>The entries oldest first. <paramref name="since"/> and <paramref name="until"/> are inclusive bounds
    /// (reading stops at the first entry after <paramref name="until"/>, as dockerd does); <paramref name="tail"/> &gt;= 0
    /// keeps the last <paramref name="tail"/> of the entries that pass the bounds. With <paramref name="follow"/>, new
    /// entries are yielded as they are written, across rotations, until <paramref name="ct"/> is cancelled (the
    /// enumeration then simply ends) or <paramref name="stopFollowing"/> returned true before the file was read to its end.
    /// What is not a valid entry (a torn last entry after a crash, a corrupt frame) is skipped.</summary>
    public static async IAsyncEnumerable<LogEntry> ReadAsync(LogLocation log, DateTimeOffset? since, DateTimeOffset? until, int tail,
        bool follow, Func<bool> stopFollowing, [EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(stopFollowing);
        string path = log.Path;
        Func<ILogDecoder> decoder = log.Format == LogFormat.Local ? () => new LocalLog.Decoder() : () => new JsonFileLog.Decoder();
        // The current file is opened first: a rotation between the two steps then repeats entries rather than losing them.
        LogFile? current = LogFile.TryOpen(path, decoder());
        var rotated = new List<LogFile>();
        for (int i = 1; i <= MaxRotated; i++)
        {
            LogFile? f = LogFile.TryOpenRotated(path, i, decoder());
            if (f is null) break;
            rotated.Add(f);
        }
        rotated.Reverse();

        var window = tail >= 0 ? new Queue<LogEntry>(Math.Min(tail, 4096)) : null;
        bool done = false;
        try
        {
            // The local format's footers let --tail read the current file's last frames alone, when it holds enough.
            List<LogEntry>? tailed = log.Format == LogFormat.Local && tail > 0 && since is null && until is null ? current?.TryTailBackwards(tail) : null;
            if (tailed is not null)
            {
                rotated.ForEach(f => f.Dispose());
                rotated.Clear();
                window = new Queue<LogEntry>(tailed);
            }
            foreach (LogFile? f in rotated.Append(tailed is null ? current : null))
            {
                if (f is null) continue;
                // A compressed file whose last entry is older than since is not decompressed (as dockerd).
                if (since is { } before && f.LastTime is { } lastTime && lastTime < before) continue;
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
                current ??= LogFile.TryOpen(path, decoder());
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
                        // was rotated out altogether (or compressed: PATH.k.gz is another file), the rotated
                        // files' entries newer than the last one read are taken (entries of the same 100 ns
                        // tick could be missed; dockerd loses more).
                        var (newer, found) = current.NewerRotations(path, decoder);
                        foreach (LogFile f in newer)
                            using (f)
                            {
                                if (!found && last is { } seen && f.LastTime is { } lastTime && lastTime <= seen) continue;
                                foreach (LogEntry e in f.ReadAvailable())
                                {
                                    if (!found && last is { } l && e.Time <= l) continue;
                                    if (since is { } s && e.Time < s) continue;
                                    if (until is { } u && e.Time > u) yield break;
                                    yield return e;
                                }
                            }
                        current.Dispose();
                        current = LogFile.TryOpen(path, decoder());
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

    /// <summary>An open log file read from where the last read stopped; an incomplete last entry (being written)
    /// waits for the rest. A rotated file may be gzip-compressed: it is then complete, and read through.</summary>
    private sealed class LogFile : IDisposable
    {
        private readonly FileStream _file;
        private readonly Stream _stream;
        private readonly string _path;
        private readonly ILogDecoder _decoder;
        private readonly bool _complete;
        private byte[] _pending = new byte[64 * 1024];
        private int _pendingLength;

        private LogFile(FileStream file, string path, ILogDecoder decoder, bool complete)
        {
            _file = file;
            _path = path;
            _decoder = decoder;
            _complete = complete;
            _stream = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
        }

        public static LogFile? TryOpen(string path, ILogDecoder decoder) => TryOpen(path, decoder, complete: false);

        /// <summary>A compressed file's last entry time, from the JSON <c>{"lastTime":"…"}</c> that berth-monitor (and
        /// dockerd) put in the gzip header's Extra field; null for a plain file or a header without it.</summary>
        public DateTimeOffset? LastTime
        {
            get
            {
                if (_stream == _file) return null;
                Span<byte> head = stackalloc byte[12 + 256];
                int n = RandomAccess.Read(_file.SafeFileHandle, head, 0);
                // ID1 ID2 CM FLG MTIME(4) XFL OS, then with FLG.FEXTRA: XLEN (little-endian) and the field.
                if (n < 12 || head[0] != 0x1f || head[1] != 0x8b || (head[3] & 4) == 0) return null;
                int xlen = head[10] | head[11] << 8;
                if (12 + xlen > n) return null;
                ReadOnlySpan<byte> extra = head.Slice(12, xlen);
                ReadOnlySpan<byte> key = "{\"lastTime\":\""u8;
                if (!extra.StartsWith(key) || !extra.EndsWith("\"}"u8)) return null;
                return JsonFileLog.ParseTime(extra[key.Length..^2]);
            }
        }

        /// <summary>PATH.k.gz or PATH.k. The compressed file is looked for first and again last: berth-monitor renames
        /// PATH.k.gz into place before it removes PATH.k, so one of the two is found whole.</summary>
        public static LogFile? TryOpenRotated(string path, int k, ILogDecoder decoder)
            => TryOpen($"{path}.{k}.gz", decoder, true) ?? TryOpen($"{path}.{k}", decoder, true) ?? TryOpen($"{path}.{k}.gz", decoder, true);

        private static LogFile? TryOpen(string path, ILogDecoder decoder, bool complete)
        {
            try
            {
                // FileShare.Delete: the monitor renames the file (rotation) while it is open here.
                return new LogFile(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None),
                    path, decoder, complete);
            }
            catch (FileNotFoundException) { return null; }
            catch (DirectoryNotFoundException) { return null; }
        }

        /// <summary>The last <paramref name="count"/> entries of this (local format, plain) file, oldest first, read
        /// backwards frame by frame through the footers; reading forwards then goes on from the end. Null, with
        /// nothing read, when the file holds fewer or its end is not a sound frame (being written, torn, damaged):
        /// the forward read copes with those.</summary>
        public List<LogEntry>? TryTailBackwards(int count)
        {
            if (_stream != _file || _pendingLength != 0 || _file.Position != 0) return null;
            var handle = _file.SafeFileHandle;
            long end = RandomAccess.GetLength(handle), pos = end;
            var found = new List<LogEntry>(Math.Min(count, 4096));
            Span<byte> four = stackalloc byte[4];
            while (found.Count < count)
            {
                if (pos < 8 || RandomAccess.Read(handle, four, pos - 4) != 4) return null;
                uint length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(four);
                if (length > LocalLog.MaxFrame || pos - 8 - length < 0) return null;
                byte[] frame = new byte[length + 8];
                if (RandomAccess.Read(handle, frame, pos - 8 - length) != frame.Length
                    || System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(frame) != length
                    || LocalLog.DecodeEntry(frame.AsSpan(4, (int)length)) is not { } entry)
                    return null;
                found.Add(entry);
                pos -= 8 + length;
            }
            found.Reverse();
            _file.Position = end;
            return found;
        }

        public List<LogEntry> ReadAvailable()
        {
            var entries = new List<LogEntry>();
            while (true)
            {
                if (_pendingLength == _pending.Length) Array.Resize(ref _pending, _pending.Length * 2);
                int n;
                try { n = _stream.Read(_pending, _pendingLength, _pending.Length - _pendingLength); }
                catch (InvalidDataException) { n = 0; }   // a damaged .gz: what was read of it counts
                if (n == 0)
                {
                    if (_complete && _pendingLength > 0)
                    {
                        _decoder.Decode(_pending.AsSpan(0, _pendingLength), complete: true, entries);
                        _pendingLength = 0;
                    }
                    return entries;
                }
                _pendingLength += n;
                int used = _decoder.Decode(_pending.AsSpan(0, _pendingLength), complete: false, entries);
                Buffer.BlockCopy(_pending, used, _pending, 0, _pendingLength - used);
                _pendingLength -= used;
            }
        }

        /// <summary>True when <paramref name="path"/> names another file than this one (it was rotated).</summary>
        public bool WasReplaced(string path)
        {
            var mine = MonitorInterop.FileIdentity(_file.SafeFileHandle);
            var now = MonitorInterop.FileIdentity(path);
            return now is not null && mine is not null && now != mine;
        }

        /// <summary>The rotated files newer than this one, oldest first (PATH.k-1 … PATH.1 when this is PATH.k); when this
        /// file is not among them any more (Found false), all rotated files.</summary>
        public (List<LogFile> Newer, bool Found) NewerRotations(string path, Func<ILogDecoder> decoder)
        {
            var mine = MonitorInterop.FileIdentity(_file.SafeFileHandle);
            int k = 1;
            for (; k <= MaxRotated; k++)
            {
                var id = MonitorInterop.FileIdentity($"{path}.{k}");
                if (id == mine || (id is null && MonitorInterop.FileIdentity($"{path}.{k}.gz") is null)) break;
            }
            bool found = k <= MaxRotated && MonitorInterop.FileIdentity($"{path}.{k}") is { } at && at == mine;
            var newer = new List<LogFile>();
            for (int j = k - 1; j >= 1; j--)
                if (TryOpenRotated(path, j, decoder()) is { } f) newer.Add(f);
            return (newer, found);
        }

        public override string ToString() => _path;

        public void Dispose()
        {
            if (_stream != _file) _stream.Dispose();
            _file.Dispose();
        }
    }
}
