using System.Text;
using Berth.Daemon.Monitor;

namespace Berth.Daemon.Tests.Monitor;

/// <summary>The json-file reader on files written here (no monitor): parsing, bounds, tail, follow across rotation.</summary>
public sealed class JsonFileLogTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 4, 16, 44, 16, TimeSpan.Zero);

    private static string Entry(int i, string stream = "stdout") =>
        $"{{\"log\":\"line {i}\\n\",\"stream\":\"{stream}\",\"time\":\"{T0.AddSeconds(i):yyyy-MM-ddTHH:mm:ss}.123456789Z\"}}\n";

    private static async Task<List<string>> Lines(string path, DateTimeOffset? since = null, DateTimeOffset? until = null, int tail = -1)
    {
        var lines = new List<string>();
        await foreach (LogEntry e in JsonFileLog.ReadAsync(path, since, until, tail, false, () => true, CancellationToken.None))
            lines.Add(Encoding.UTF8.GetString(e.Line.Span).TrimEnd('\n'));
        return lines;
    }

    private static string[] Range(int from, int count) => Enumerable.Range(from, count).Select(i => $"line {i}").ToArray();

    [Fact]
    public void Parses_docker_entries_exactly()
    {
        LogEntry? e = JsonFileLog.ParseLine("{\"log\":\"a\\u0001\\\"\\ufffd\\n\",\"stream\":\"stderr\",\"time\":\"2026-12-04T16:44:16.123456789Z\"}"u8);
        Assert.NotNull(e);
        Assert.Equal("stderr", e.Stream);
        Assert.Equal([(byte)'a', 1, (byte)'"', 0xEF, 0xBF, 0xBD, (byte)'\n'], e.Line.ToArray());
        Assert.Equal(T0.AddTicks(1234567), e.Time);
        // Go's RFC3339Nano drops trailing zeros; offsets are allowed; attrs are ignored.
        Assert.Equal(T0.AddTicks(1000000), JsonFileLog.ParseTime("2026-12-04T16:44:16.1Z"u8));
        Assert.Equal(T0, JsonFileLog.ParseTime("2026-12-04T16:44:16Z"u8));
        Assert.Equal(T0, JsonFileLog.ParseTime("2026-12-04T17:44:16+01:00"u8));
        Assert.NotNull(JsonFileLog.ParseLine("{\"log\":\"x\",\"stream\":\"stdout\",\"attrs\":{\"a\":\"b\"},\"time\":\"2026-12-04T16:44:16Z\"}"u8));
        Assert.Null(JsonFileLog.ParseTime("2026-12-04 16:44:16Z"u8));
        Assert.Null(JsonFileLog.ParseTime("2026-12-04T16:44:16.1234567890Z"u8));
        Assert.Null(JsonFileLog.ParseLine("{\"log\":\"torn"u8));
    }

    [Fact]
    public async Task Reads_rotated_files_oldest_first_with_tail_and_bounds()
    {
        using var dir = new TempDirectory("jsonlog");
        string log = dir.Combine("c.log");
        File.WriteAllText(log + ".2", string.Concat(Enumerable.Range(0, 10).Select(i => Entry(i))));
        File.WriteAllText(log + ".1", string.Concat(Enumerable.Range(10, 10).Select(i => Entry(i, i % 2 == 0 ? "stdout" : "stderr"))));
        File.WriteAllText(log, string.Concat(Enumerable.Range(20, 10).Select(i => Entry(i))) + "{\"log\":\"torn");

        Assert.Equal(Range(0, 30), await Lines(log));
        Assert.Equal(Range(25, 5), await Lines(log, tail: 5));
        Assert.Equal(Range(5, 25), await Lines(log, tail: 25));
        Assert.Empty(await Lines(log, tail: 0));
        Assert.Equal(Range(0, 30), await Lines(log, tail: 1000));
        // since and until are inclusive; the fraction counts (since x.5 excludes x.123456789).
        Assert.Equal(Range(12, 4), await Lines(log, since: T0.AddSeconds(12), until: T0.AddSeconds(15).AddTicks(1234567)));
        Assert.Equal(Range(13, 3), await Lines(log, since: T0.AddSeconds(12.5), until: T0.AddSeconds(15.5)));
        Assert.Equal(Range(14, 2), await Lines(log, since: T0.AddSeconds(12.5), until: T0.AddSeconds(15.5), tail: 2));   // bounds, then tail
        Assert.Empty(await Lines(dir.Combine("missing.log")));
    }

    [Fact]
    public async Task Follow_yields_new_entries_across_a_rotation_and_stops_when_told()
    {
        using var dir = new TempDirectory("jsonlog");
        string log = dir.Combine("c.log");
        File.WriteAllText(log, Entry(0) + Entry(1));
        bool exited = false;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var seen = new List<string>();
        var firstTwo = new TaskCompletionSource();
        Task reader = Task.Run(async () =>
        {
            await foreach (LogEntry e in JsonFileLog.ReadAsync(log, null, null, 1, true, () => Volatile.Read(ref exited), cts.Token))
            {
                lock (seen) seen.Add(Encoding.UTF8.GetString(e.Line.Span).TrimEnd('\n'));
                if (seen.Count == 1) firstTwo.TrySetResult();
            }
        });
        await firstTwo.Task.WaitAsync(cts.Token);   // the tail (line 1) came; the reader now follows

        // Written the way berth-monitor does: whole lines, a line torn across two writes, rotations by rename.
        await using (var w = new FileStream(log, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
        {
            w.Write(Encoding.UTF8.GetBytes(Entry(2)));
            string torn = Entry(3);
            w.Write(Encoding.UTF8.GetBytes(torn[..10]));
            w.Flush();
            await Task.Delay(300);
            w.Write(Encoding.UTF8.GetBytes(torn[10..] + Entry(4)));
        }
        // Each rotation below must find the reader caught up (at the end of the current file), or it
        // would not test what its comment says; a fixed delay is not enough on a loaded machine.
        await CaughtUpAsync("line 4");
        // Two rotations between two polls: the reader's file is now c.log.2, line 5 only in c.log.1.
        Rotate(log, Entry(5));
        Rotate(log, Entry(6));
        await CaughtUpAsync("line 6");
        // Three rotations with three files: the reader's file (line 6) is gone; the entries newer than
        // the last one it read are taken from the rotated files.
        Rotate(log, Entry(7));
        Rotate(log, Entry(8));
        Rotate(log, Entry(9));
        await CaughtUpAsync("line 9");
        File.AppendAllText(log, Entry(10));
        Volatile.Write(ref exited, true);
        await reader.WaitAsync(cts.Token);
        Assert.Equal(Range(1, 10), seen);

        async Task CaughtUpAsync(string last)
        {
            DateTime deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                lock (seen)
                    if (seen.Contains(last)) return;
                if (reader.IsCompleted) await reader; // a failed reader: its exception, not a timeout
                if (DateTime.UtcNow > deadline)
                    lock (seen) throw new TimeoutException($"the follower did not read \"{last}\"; seen: {string.Join(", ", seen)}");
                await Task.Delay(20);
            }
        }
    }

    // What berth-monitor does with --log-max-files 3.
    private static void Rotate(string log, string firstEntry)
    {
        if (File.Exists(log + ".1")) File.Move(log + ".1", log + ".2", overwrite: true);
        File.Move(log, log + ".1");
        File.WriteAllText(log, firstEntry);
    }

    [Fact]
    public async Task Follow_ends_quietly_when_cancelled()
    {
        using var dir = new TempDirectory("jsonlog");
        string log = dir.Combine("c.log");
        File.WriteAllText(log, Entry(0));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        var seen = new List<LogEntry>();
        await foreach (LogEntry e in JsonFileLog.ReadAsync(log, null, null, -1, true, () => false, cts.Token)) seen.Add(e);
        Assert.Single(seen);
    }
}
