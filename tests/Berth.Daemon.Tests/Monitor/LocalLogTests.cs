using System.IO.Compression;
using System.Text;
using Berth.Daemon.Monitor;

namespace Berth.Daemon.Tests.Monitor;

/// <summary>Docker's local log format on files written here (no monitor): the framing and protobuf encoding byte for
/// byte, and the reader over plain and gzip'ed rotated files, torn and corrupt frames, tail, bounds and follow.</summary>
public sealed class LocalLogTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 4, 16, 44, 16, TimeSpan.Zero);

    private static long Nanos(int i) => (T0.AddSeconds(i) - DateTimeOffset.UnixEpoch).Ticks * 100 + 123;

    private static byte[] Entry(int i, string stream = "stdout") => LocalLog.Frame(stream, Nanos(i), Encoding.UTF8.GetBytes($"line {i}"));

    private static byte[] Entries(int from, int count) => Enumerable.Range(from, count).SelectMany(i => Entry(i)).ToArray();

    private static string[] Range(int from, int count) => Enumerable.Range(from, count).Select(i => $"line {i}").ToArray();

    /// <summary>A rotated file compressed as berth-monitor (and dockerd) does it, with the last entry's time in the gzip
    /// header's Extra field when <paramref name="lastTime"/> is given.</summary>
    private static void WriteGzip(string path, byte[] data, DateTimeOffset? lastTime = null)
    {
        using var compressed = new MemoryStream();
        using (var gz = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        byte[] bytes = compressed.ToArray();
        if (lastTime is { } t)
        {
            // Rebuild the header with FLG.FEXTRA: ID1 ID2 CM FLG MTIME(4) XFL OS XLEN(2) EXTRA, then the deflate data.
            byte[] extra = Encoding.ASCII.GetBytes($"{{\"lastTime\":\"{t.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffffff}00Z\"}}");
            var withExtra = new List<byte>(bytes[..10]);
            withExtra[3] |= 4;
            withExtra.Add((byte)extra.Length);
            withExtra.Add((byte)(extra.Length >> 8));
            withExtra.AddRange(extra);
            withExtra.AddRange(bytes[10..]);
            bytes = [.. withExtra];
        }
        File.WriteAllBytes(path, bytes);
    }

    private static async Task<List<string>> Lines(string path, DateTimeOffset? since = null, DateTimeOffset? until = null, int tail = -1)
    {
        var lines = new List<string>();
        await foreach (LogEntry e in LogReader.ReadAsync(new LogLocation(path, LogFormat.Local), since, until, tail, false, () => true, CancellationToken.None))
            lines.Add(Encoding.UTF8.GetString(e.Line.Span).TrimEnd('\n'));
        return lines;
    }

    [Fact]
    public void Frames_are_length_protobuf_length_as_gogo_protobuf_writes_them()
    {
        // source = 1 "stdout", time_nano = 2 (varint 300 = ac 02), line = 3 "hi": 15 bytes of message.
        byte[] frame = LocalLog.Frame("stdout", 300, "hi"u8);
        Assert.Equal(Convert.FromHexString("0000000F" + "0A067374646F7574" + "10AC02" + "1A026869" + "0000000F"), frame);

        // A part of a long line: partial = 4 true, partial_log_metadata = 5 { last = 1, id = 2, ordinal = 3 }; zero
        // values (an empty line, last false) are left out as proto3 does.
        byte[] part = LocalLog.Frame("stderr", 1, ""u8, partial: true, last: false, id: "ab", ordinal: 2);
        Assert.Equal(Convert.FromHexString("00000014" + "0A06737464657272" + "1001" + "2001" + "2A06" + "12026162" + "1802" + "00000014"), part);
    }

    [Fact]
    public void Decoding_gives_back_every_field_and_the_newline_the_driver_took_off()
    {
        long nanos = Nanos(1);
        LocalLog.Message m = LocalLog.Decode(LocalLog.Frame("stderr", nanos, "x\u00e9"u8, partial: true, last: true, id: "id1", ordinal: 3).AsSpan(4..^4))!;
        Assert.Equal(("stderr", nanos, true, true, "id1", 3), (m.Source, m.TimeNano, m.Partial, m.Last, m.Id, m.Ordinal));
        Assert.Equal("x\u00e9"u8.ToArray(), m.Line);

        LogEntry whole = LocalLog.DecodeEntry(LocalLog.Frame("stdout", nanos, "a"u8).AsSpan(4..^4))!;
        Assert.Equal(("stdout", T0.AddSeconds(1).AddTicks(1), "a\n"), (whole.Stream, whole.Time, Encoding.UTF8.GetString(whole.Line.Span)));
        LogEntry first = LocalLog.DecodeEntry(LocalLog.Frame("stdout", nanos, "b"u8, partial: true, id: "p", ordinal: 1).AsSpan(4..^4))!;
        Assert.Equal("b", Encoding.UTF8.GetString(first.Line.Span));
        LogEntry end = LocalLog.DecodeEntry(LocalLog.Frame("stdout", nanos, "c"u8, partial: true, last: true, id: "p", ordinal: 2).AsSpan(4..^4))!;
        Assert.Equal("c\n", Encoding.UTF8.GetString(end.Line.Span));
        Assert.Equal("\n", Encoding.UTF8.GetString(LocalLog.DecodeEntry(LocalLog.Frame("stdout", nanos, ""u8).AsSpan(4..^4))!.Line.Span));

        // attrs (6, repeated LogAttr) as dockerd writes them with labels/env: skipped.
        byte[] withAttrs = [.. LocalLog.Frame("stdout", nanos, "a"u8).AsSpan(4..^4), 0x32, 0x06, 0x0A, 0x01, (byte)'k', 0x12, 0x01, (byte)'v'];
        Assert.Equal("a\n", Encoding.UTF8.GetString(LocalLog.DecodeEntry(withAttrs)!.Line.Span));
        // Not messages: a truncated field, a wire type 3 group, no source.
        Assert.Null(LocalLog.Decode([0x0A, 0x06, (byte)'s']));
        Assert.Null(LocalLog.Decode([0x0B]));
        Assert.Null(LocalLog.Decode([0x10, 0x01]));
    }

    [Fact]
    public async Task Reads_plain_and_gzipped_rotated_files_oldest_first_with_tail_and_bounds()
    {
        using var dir = new TempDirectory("locallog");
        string log = dir.Combine("container.log");
        WriteGzip(log + ".3.gz", Entries(0, 10), lastTime: T0.AddSeconds(9));
        WriteGzip(log + ".2.gz", Entries(10, 10));   // no Extra: read whatever since says
        File.WriteAllBytes(log + ".1", Entries(20, 10));   // being compressed: still plain
        File.WriteAllBytes(log, Entries(30, 10));

        Assert.Equal(Range(0, 40), await Lines(log));
        Assert.Equal(Range(35, 5), await Lines(log, tail: 5));
        Assert.Equal(Range(5, 35), await Lines(log, tail: 35));
        Assert.Empty(await Lines(log, tail: 0));
        Assert.Equal(Range(12, 16), await Lines(log, since: T0.AddSeconds(12), until: T0.AddSeconds(27).AddTicks(1)));
        Assert.Equal(Range(13, 3), await Lines(log, since: T0.AddSeconds(12.5), until: T0.AddSeconds(15.5)));
        Assert.Equal(Range(14, 2), await Lines(log, since: T0.AddSeconds(12.5), until: T0.AddSeconds(15.5), tail: 2));
        // A compressed file whose lastTime is before since is not read at all: a corrupt body shows it was skipped.
        byte[] good = File.ReadAllBytes(log + ".3.gz");
        good[^10] ^= 0xFF;
        File.WriteAllBytes(log + ".3.gz", good);
        Assert.Equal(Range(10, 30), await Lines(log, since: T0.AddSeconds(9.5)));

        // Both names after a crash between the .gz's rename and the plain file's removal: the whole .gz is read once.
        WriteGzip(log + ".1.gz", Entries(20, 10));
        Assert.Equal(Range(20, 20), await Lines(log, since: T0.AddSeconds(20)));
        Assert.Empty(await Lines(dir.Combine("missing.log")));
    }

    [Fact]
    public async Task A_torn_last_frame_waits_and_a_corrupt_frame_costs_only_itself()
    {
        using var dir = new TempDirectory("locallog");
        string log = dir.Combine("container.log");
        byte[] torn = Entry(5)[..9];
        // A rotated file that ends in a torn frame (the monitor was killed mid-write) and a current file with a
        // damaged frame (its footer disagrees) between good ones, and a torn frame at its end.
        File.WriteAllBytes(log + ".1", [.. Entries(0, 5), .. torn]);
        byte[] bad = Entry(12);
        bad[^1] ^= 0x55;
        byte[] garbage = [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x03, 1, 2, 3];
        File.WriteAllBytes(log, [.. Entries(10, 2), .. bad, .. garbage, .. Entries(13, 2), .. torn]);
        Assert.Equal([.. Range(0, 5), .. Range(10, 2), .. Range(13, 2)], await Lines(log));
        Assert.Equal(Range(13, 2), await Lines(log, tail: 2));

        // The writer resumes after the torn frame (berth-monitor cuts it off first; a reader must cope either way).
        File.WriteAllBytes(log, [.. Entries(10, 2), .. torn, .. Entries(20, 3)]);
        Assert.Equal([.. Range(0, 5), .. Range(10, 2), .. Range(20, 3)], await Lines(log));
    }

    [Fact]
    public async Task Follow_goes_on_across_a_rotation_whose_file_is_compressed_meanwhile()
    {
        using var dir = new TempDirectory("locallog");
        string log = dir.Combine("container.log");
        File.WriteAllBytes(log, Entries(0, 2));
        bool exited = false;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var seen = new List<string>();
        var started = new TaskCompletionSource();
        Task reader = Task.Run(async () =>
        {
            await foreach (LogEntry e in LogReader.ReadAsync(new LogLocation(log, LogFormat.Local), null, null, 1, true, () => Volatile.Read(ref exited), cts.Token))
            {
                lock (seen) seen.Add(Encoding.UTF8.GetString(e.Line.Span).TrimEnd('\n'));
                started.TrySetResult();
            }
        });
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        using (var f = new FileStream(log, FileMode.Append)) f.Write(Entries(2, 2));
        // Rotate as berth-monitor does: log -> log.1, a new log, then log.1 -> log.1.gz (and the plain one removed).
        await Task.Delay(300);
        File.Move(log, log + ".1");
        using (var f = new FileStream(log + ".1", FileMode.Append)) f.Write(Entries(4, 1));
        File.WriteAllBytes(log, Entries(5, 2));
        WriteGzip(log + ".1.gz", File.ReadAllBytes(log + ".1"), T0.AddSeconds(4));
        File.Delete(log + ".1");
        await Task.Delay(300);
        using (var f = new FileStream(log, FileMode.Append)) f.Write(Entries(7, 1));
        Volatile.Write(ref exited, true);
        await reader.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(Range(1, 7), seen);
    }
}
