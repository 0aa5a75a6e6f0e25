using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Berth.Daemon.Monitor;
using Xunit.Abstractions;

namespace Berth.Daemon.Tests.Monitor;

/// <summary>berth-monitor for real: busybox containers under berth-runtime (and runc), as root.</summary>
public sealed partial class MonitorTests(ITestOutputHelper output)
{
    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")]
    private static partial Regex DockerTime();

    [Fact]
    public async Task Both_streams_reach_the_log_in_json_file_format_and_the_exit_code_is_recorded()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "echo out; echo err >&2; printf 'a\\001b\\377\"c\\n'; exit 3");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("logs", bundle));
        Assert.True(MonitorProcess.IsAlive(m.MonitorPid, m.StateDir));
        Assert.False(MonitorProcess.IsAlive(m.MonitorPid, scope.Combine("other")));
        Assert.Null(MonitorProcess.ReadExit(m.StateDir));
        scope.StartContainer("logs");
        var before = DateTimeOffset.UtcNow;
        MonitorExit exit = await MonitorScope.WaitExitAsync(m);

        Assert.Equal(3, exit.ExitCode);
        Assert.InRange(exit.FinishedAt, before.AddSeconds(-5), DateTimeOffset.UtcNow);
        Assert.Equal(["exit", "container.log"], Directory.GetFiles(m.StateDir).Select(Path.GetFileName).Where(f => f != "pid").Order().Reverse());
        Assert.Matches(@"^3 \d{19}\n$", File.ReadAllText(Path.Combine(m.StateDir, "exit")));
        Assert.False(MonitorProcess.IsAlive(m.MonitorPid, m.StateDir));

        string[] lines = File.ReadAllLines(Path.Combine(m.StateDir, "container.log"));
        Assert.Equal(3, lines.Length);
        var parsed = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        foreach (JsonElement e in parsed)
        {
            Assert.Equal(["log", "stream", "time"], e.EnumerateObject().Select(p => p.Name));
            Assert.Matches(DockerTime(), e.GetProperty("time").GetString());
        }
        var stdout = parsed.Where(e => e.GetProperty("stream").GetString() == "stdout").Select(e => e.GetProperty("log").GetString()).ToList();
        var stderr = parsed.Where(e => e.GetProperty("stream").GetString() == "stderr").Select(e => e.GetProperty("log").GetString()).ToList();
        Assert.Equal(["out\n", "a\u0001b\ufffd\"c\n"], stdout);
        Assert.Equal(["err\n"], stderr);
        Assert.Contains("\"log\":\"a\\u0001b\\ufffd\\\"c\\n\"", lines.Single(l => l.Contains("\\ufffd")));
    }

    /// <summary>--no-log (docker's "none" log driver): an attach client gets the output, no log file is written anywhere.</summary>
    [Fact]
    public async Task Without_a_log_the_output_reaches_attach_clients_only()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "echo out; echo err >&2; exit 4");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("nolog", bundle) with { LogPath = null });
        await using AttachConnection attach = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None);
        scope.StartContainer("nolog");
        Assert.Equal(("out\n", "err\n"), await MonitorScope.ReadAllAsync(attach));
        Assert.Equal(4, (await MonitorScope.WaitExitAsync(m)).ExitCode);
        Assert.Equal(["exit"], Directory.GetFiles(m.StateDir).Select(Path.GetFileName).Where(f => f is not ("pid" or "attach.sock")));
    }

    [Fact]
    public async Task An_attach_client_connected_before_start_gets_all_output_of_both_streams()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "seq 1 20000; echo done >&2");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("attach", bundle));
        await using AttachConnection attach = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None);
        scope.StartContainer("attach");
        var (stdout, stderr) = await MonitorScope.ReadAllAsync(attach);
        Assert.Equal(string.Concat(Enumerable.Range(1, 20000).Select(i => i + "\n")), stdout);
        Assert.Equal("done\n", stderr);
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);
        // The log holds the same bytes, one entry per line.
        var entries = await ToListAsync(JsonFileLog.ReadAsync(Path.Combine(m.StateDir, "container.log"), null, null, -1, false, () => true, CancellationToken.None));
        // One entry per line, except where a pipe read ended inside a line: that chunk is an entry of its own.
        Assert.InRange(entries.Count, 20001, 20001 + 200);
        Assert.Equal(stdout, string.Concat(entries.Where(e => e.Stream == "stdout").Select(e => Encoding.UTF8.GetString(e.Line.Span))));
    }

    [Fact]
    public async Task Stdin_through_attach_reaches_cat_and_closing_it_ends_cat()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "cat");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("stdin", bundle, stdin: true));
        await using AttachConnection attach = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None);
        scope.StartContainer("stdin");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await attach.WriteStdinAsync("hello monitor\n"u8.ToArray(), cts.Token);
        AttachFrame? frame = await attach.ReadAsync(cts.Token);
        Assert.NotNull(frame);
        Assert.Equal(1, frame.Stream);
        Assert.Equal("hello monitor\n", Encoding.UTF8.GetString(frame.Data.Span));
        // A packet larger than one message is split by the client and arrives whole.
        byte[] big = Encoding.ASCII.GetBytes(new string('x', 100_000) + "\n");
        await attach.WriteStdinAsync(big, cts.Token);
        await attach.CloseStdinAsync(cts.Token);
        var (stdout, _) = await MonitorScope.ReadAllAsync(attach);
        Assert.Equal(Encoding.ASCII.GetString(big), stdout);
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);
    }

    [Fact]
    public async Task A_client_leaving_does_not_close_stdin_only_C_does()
    {
        // docker's detach (ctrl-p ctrl-q) is a disconnect: the container must keep its stdin.
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "cat; echo cat-ended");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("once", bundle, stdin: true, stdinOnce: true));
        await using AttachConnection watcher = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None);
        scope.StartContainer("once");
        await using (AttachConnection writer = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None))
        {
            await writer.WriteStdinAsync("first\n"u8.ToArray(), CancellationToken.None);
            AttachFrame? echo = await watcher.ReadAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            Assert.Equal("first\n", Encoding.UTF8.GetString(echo!.Data.Span));
        }   // the writer disconnects without 'C'
        await Task.Delay(300);
        Assert.Null(MonitorProcess.ReadExit(m.StateDir));
        await using (AttachConnection second = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None))
        {
            await second.WriteStdinAsync("second\n"u8.ToArray(), CancellationToken.None);
            AttachFrame? echo = await watcher.ReadAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            Assert.Equal("second\n", Encoding.UTF8.GetString(echo!.Data.Span));
            await second.CloseStdinAsync(CancellationToken.None);
        }
        Assert.Equal(("cat-ended\n", ""), await MonitorScope.ReadAllAsync(watcher));
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);
    }

    /// <summary>
    /// A client that sends 'C' and hangs up while the container keeps printing: the monitor's
    /// next send to it fails, and the 'C' still queued in its socket must be read before it is
    /// dropped (it was lost when the send failure came first, so stdin never closed). The window
    /// is one poll round, so the sequence runs several times.
    /// </summary>
    [Fact]
    public async Task A_close_stdin_sent_just_before_hanging_up_is_not_lost_to_a_failed_send()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "(while :; do echo t; sleep 0.001; done) & cat >/dev/null; kill $!; echo cat-ended");
        for (int round = 0; round < 40; round++)
        {
            string id = $"hup{round}";
            MonitorHandle m = await scope.StartMonitorAsync(scope.Launch(id, bundle, stdin: true, stdinOnce: true));
            scope.StartContainer(id);
            await using (AttachConnection writer = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None))
            {
                await Task.Delay(round % 4 * 5); // output builds up in its socket, which it never reads
                await writer.CloseStdinAsync(CancellationToken.None);
            }
            MonitorExit exit = await MonitorScope.WaitExitAsync(m, 20);
            Assert.True(exit.ExitCode == 0, $"round {round}: exit {exit.ExitCode}");
        }
    }

    [Fact]
    public async Task A_client_that_does_not_read_is_dropped_and_the_container_is_not_held_up()
    {
        await using var scope = new MonitorScope();
        // 16 MB of output: far more than a socket buffer and the client queue hold. (logs 10 MiB x 3 files: all of it stays)
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "head -c 16000000 /dev/zero | tr '\\0' y; echo; echo end");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("slow", bundle));
        await using AttachConnection slow = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None);
        scope.StartContainer("slow");
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);
        // The idle client got what fitted in its socket buffer and its queue (1 MiB), then the connection was closed.
        var (slowOut, _) = await MonitorScope.ReadAllAsync(slow);
        Assert.InRange(slowOut.Length, 1, 4_000_000);
        long logged = 0;
        await foreach (LogEntry e in JsonFileLog.ReadAsync(Path.Combine(m.StateDir, "container.log"), null, null, -1, false, () => true, CancellationToken.None))
            logged += e.Line.Length;
        Assert.Equal(16_000_000 + "\nend\n".Length, logged);
    }

    /// <summary>
    /// A lossless client ('L', what berthd's attach and exec use) that reads slowly gets every byte:
    /// the container waits for it instead (as under dockerd). Meanwhile an idle ordinary client is
    /// still dropped, and the container is not held up once the lossless one has read all.
    /// </summary>
    [Fact]
    public async Task A_lossless_client_that_reads_slowly_gets_all_output_and_the_container_waits_for_it()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "head -c 8000000 /dev/zero | tr '\\0' y; echo; echo end");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("lossless", bundle));
        await using AttachConnection reader = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None, lossless: true);
        await using AttachConnection idle = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None);
        scope.StartContainer("lossless");
        // Far longer than the container needs to print 8 MB: it must still be running, held up.
        await Task.Delay(1500);
        Assert.Null(MonitorProcess.ReadExit(m.StateDir));
        var (output, _) = await MonitorScope.ReadAllAsync(reader, 60);
        Assert.Equal(8_000_000 + "\nend\n".Length, output.Length);
        Assert.EndsWith("y\nend\n", output);
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);
        var (idleOut, _) = await MonitorScope.ReadAllAsync(idle);
        Assert.InRange(idleOut.Length, 1, 4_000_000); // dropped after its queue filled
    }

    [Fact]
    public async Task Without_stdin_the_container_reads_eof_at_once()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "cat; echo cat-ended");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("nostdin", bundle));
        await using AttachConnection attach = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None);
        scope.StartContainer("nostdin");
        try
        {
            await attach.WriteStdinAsync("ignored\n"u8.ToArray(), CancellationToken.None);   // dropped: no --stdin
        }
        catch (IOException)
        {
            // The container read EOF at once and may be gone already, its monitor with it.
        }
        Assert.Equal(("cat-ended\n", ""), await MonitorScope.ReadAllAsync(attach));
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);
    }

    [Fact]
    public async Task Tty_output_is_stdout_and_resize_reaches_the_pty()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", true, "sh", "-c", "read line; stty size; echo got $line >&2");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("tty", bundle, tty: true, stdin: true));
        Assert.False(File.Exists(Path.Combine(m.StateDir, "console.sock")));
        await using AttachConnection attach = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None);
        scope.StartContainer("tty");
        await attach.ResizeAsync(33, 101, CancellationToken.None);
        await attach.WriteStdinAsync("go\n"u8.ToArray(), CancellationToken.None);
        var (stdout, stderr) = await MonitorScope.ReadAllAsync(attach);
        Assert.Equal("", stderr);   // a tty has one stream
        Assert.Contains("33 101\r\n", stdout);
        Assert.Contains("got go\r\n", stdout);
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);
        var entries = await ToListAsync(JsonFileLog.ReadAsync(Path.Combine(m.StateDir, "container.log"), null, null, -1, false, () => true, CancellationToken.None));
        Assert.All(entries, e => Assert.Equal("stdout", e.Stream));
        Assert.Contains("33 101", string.Concat(entries.Select(e => Encoding.UTF8.GetString(e.Line.Span))));
    }

    [Fact]
    public async Task A_container_killed_by_SIGKILL_exits_137_and_the_monitor_survives_its_callers_signals()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "while true; do echo tick; sleep 0.1; done");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("kill", bundle));
        scope.StartContainer("kill");

        // Detached: not our child, in another session; berthd's signals do not end it.
        string stat = File.ReadAllText($"/proc/{m.MonitorPid}/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        Assert.NotEqual(Environment.ProcessId, int.Parse(fields[1]));                 // ppid
        Assert.NotEqual(File.ReadAllText("/proc/self/stat").Split(") ")[1].Split(' ')[3], fields[3]);   // session
        Assert.Equal(m.MonitorPid.ToString(), MonitorScope.Status(m.ContainerPid, "PPid"));   // the subreaper adopted the container
        foreach (int signal in new[] { 1, 2, 15, 13 }) MonitorScope.kill(m.MonitorPid, signal);
        string log = Path.Combine(m.StateDir, "container.log");
        // Poll for two growths of the log, not a fixed delay: the second write starts after the first
        // one returned, by which time the pending signals have been delivered to the monitor.
        long size = new FileInfo(log).Length;
        for (int growth = 0; growth < 2; growth++)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (new FileInfo(log).Length <= size && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.True(new FileInfo(log).Length > size, "the monitor stopped logging");
            size = new FileInfo(log).Length;
        }
        Assert.True(MonitorProcess.IsAlive(m.MonitorPid, m.StateDir));
        output.WriteLine($"berth-monitor VmRSS while logging: {MonitorScope.Status(m.MonitorPid, "VmRSS")}, VmHWM {MonitorScope.Status(m.MonitorPid, "VmHWM")}");

        Assert.Equal(0, MonitorScope.kill(m.ContainerPid, 9));
        Assert.Equal(137, (await MonitorScope.WaitExitAsync(m)).ExitCode);
        Assert.Empty(MonitorScope.MonitorsFor(m.StateDir));
    }

    [Fact]
    public async Task Exec_mode_runs_a_process_in_a_running_container_and_records_its_exit()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sleep", "100");
        MonitorHandle container = await scope.StartMonitorAsync(scope.Launch("host", bundle));
        scope.StartContainer("host");
        string process = scope.MakeExecProcess(bundle, "exec.json", "sh", "-c", "echo hi; echo oops >&2; exit 5");
        MonitorHandle exec = await scope.StartMonitorAsync(scope.Launch("host", null, execProcess: process, stateName: "exec1"));
        Assert.NotEqual(container.ContainerPid, exec.ContainerPid);
        Assert.Equal(5, (await MonitorScope.WaitExitAsync(exec)).ExitCode);
        var entries = await ToListAsync(JsonFileLog.ReadAsync(Path.Combine(exec.StateDir, "container.log"), null, null, -1, false, () => true, CancellationToken.None));
        Assert.Equal([("stderr", "oops\n"), ("stdout", "hi\n")], entries.Select(e => (e.Stream, Encoding.UTF8.GetString(e.Line.Span))).Order());
        Assert.True(MonitorProcess.IsAlive(container.MonitorPid, container.StateDir), "the container's monitor must not be affected");
        Assert.Null(MonitorProcess.ReadExit(container.StateDir));
    }

    [Fact]
    public async Task With_wait_for_attach_an_exec_client_connecting_after_the_launch_misses_no_output()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sleep", "100");
        await scope.StartMonitorAsync(scope.Launch("host", bundle));
        scope.StartContainer("host");
        string process = scope.MakeExecProcess(bundle, "exec.json", "sh", "-c", "echo early; echo early-err >&2; exit 4");
        MonitorHandle exec = await scope.StartMonitorAsync(scope.Launch("host", null, execProcess: process, stateName: "exec1") with { WaitForAttach = true });
        await Task.Delay(500);   // the process has long written and exited; the monitor still holds its output
        Assert.Null(MonitorProcess.ReadExit(exec.StateDir));
        await using AttachConnection attach = await AttachConnection.ConnectAsync(exec.StateDir, CancellationToken.None);
        Assert.Equal(("early\n", "early-err\n"), await MonitorScope.ReadAllAsync(attach));
        Assert.Equal(4, (await MonitorScope.WaitExitAsync(exec)).ExitCode);
    }

    [Fact]
    public async Task A_runtime_error_is_a_MonitorException_with_its_text_and_leaves_no_process()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.CreateEmptyBundle("broken");
        var launch = scope.Launch("broken", bundle);
        var e = await Assert.ThrowsAsync<MonitorException>(() => MonitorProcess.LaunchAsync(launch, CancellationToken.None));
        output.WriteLine(e.Message);
        Assert.Contains("config.json", e.Message);
        Assert.Contains("exit status 1", e.Message);
        Assert.DoesNotContain("\n", e.Message);
        await AssertMonitorsGoneAsync(launch.StateDir);
        Assert.False(File.Exists(Path.Combine(launch.StateDir, "attach.sock")));

        // A runtime that cannot be executed at all.
        var missing = launch with { RuntimePath = "/nonexistent/runtime" };
        var e2 = await Assert.ThrowsAsync<MonitorException>(() => MonitorProcess.LaunchAsync(missing, CancellationToken.None));
        Assert.Contains("/nonexistent/runtime", e2.Message);
        Assert.Contains("exit status 127", e2.Message);
        await AssertMonitorsGoneAsync(launch.StateDir);
    }

    /// <summary>
    /// The monitor reports its failure, then exits: a scan of /proc right after the report can
    /// still see it (CI did once), so "leaves no process" is checked over a short while.
    /// </summary>
    private static async Task AssertMonitorsGoneAsync(string stateDir)
    {
        for (int i = 0; i < 100 && MonitorScope.MonitorsFor(stateDir).Count > 0; i++) await Task.Delay(20);
        Assert.Empty(MonitorScope.MonitorsFor(stateDir));
    }

    [Fact]
    public async Task Log_rotation_keeps_max_files_of_at_most_max_size_plus_one_line()
    {
        const int maxSize = 16 * 1024;
        await using var scope = new MonitorScope();
        // 2000 lines of 100 bytes: 200 KB of output.
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c",
            "i=1000; while [ $i -lt 3000 ]; do echo \"line $i ..........................................................................................\"; i=$((i+1)); done");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("rotate", bundle, logMaxSize: maxSize, logMaxFiles: 3));
        scope.StartContainer("rotate");
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);

        string log = Path.Combine(m.StateDir, "container.log");
        Assert.Equal([log, log + ".1", log + ".2"], Directory.GetFiles(m.StateDir, "container.log*").Order());
        int longest = File.ReadLines(log).Max(l => l.Length + 1);
        foreach (string f in new[] { log, log + ".1", log + ".2" })
            Assert.InRange(new FileInfo(f).Length, 1, maxSize + longest);
        Assert.InRange(new FileInfo(log + ".1").Length, maxSize - longest, maxSize);

        // Read across the files: consecutive lines ending with the last one.
        var entries = await ToListAsync(JsonFileLog.ReadAsync(log, null, null, -1, false, () => true, CancellationToken.None));
        string text = string.Concat(entries.Select(e => Encoding.ASCII.GetString(e.Line.Span)));
        var numbers = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)   // the oldest file may start inside a line
            .Select(l => int.Parse(l.Split(' ')[1])).ToList();
        Assert.Equal(2999, numbers[^1]);
        Assert.Equal(Enumerable.Range(numbers[0], numbers.Count), numbers);
        Assert.InRange(numbers.Count, 2 * maxSize / 200, 3 * maxSize / 100);   // two full files and the current one
    }

    [Fact]
    public async Task Long_lines_become_16KiB_partial_entries()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo; printf tail");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("long", bundle));
        scope.StartContainer("long");
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);
        var entries = await ToListAsync(JsonFileLog.ReadAsync(Path.Combine(m.StateDir, "container.log"), null, null, -1, false, () => true, CancellationToken.None));
        string all = string.Concat(entries.Select(e => Encoding.ASCII.GetString(e.Line.Span)));
        Assert.Equal(new string('x', 40000) + "\ntail", all);
        Assert.All(entries, e => Assert.InRange(e.Line.Length, 1, 16 * 1024));
        Assert.Equal("tail", Encoding.ASCII.GetString(entries[^1].Line.Span));
        Assert.Single(entries, e => e.Line.Span.EndsWith("\n"u8));
    }

    /// <summary>A line written in pieces is one entry, as dockerd's copier makes it: the start of a line waits for its
    /// newline (the attach clients get it at once), and only a full 16 KiB without one, or the end, makes a partial entry.
    /// It was one partial entry per read of the pipe (the gelf and fluentd drivers send each entry as a message).</summary>
    [Fact]
    public async Task A_line_written_in_pieces_is_one_entry()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "printf abc; sleep 0.3; printf 'def\\n'; printf '\\303'; sleep 0.3; printf '\\251\\n'; printf end");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("pieces", bundle) with { LogFormat = LogFormat.Local });
        scope.StartContainer("pieces");
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);
        byte[] file = File.ReadAllBytes(Path.Combine(m.StateDir, "container.log"));
        var messages = new List<LocalLog.Message>();
        for (int pos = 0; pos < file.Length;)
        {
            int length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(pos));
            messages.Add(Assert.IsType<LocalLog.Message>(LocalLog.Decode(file.AsSpan(pos + 4, length))));
            pos += 8 + length;
        }
        Assert.Equal([("abcdef", false), ("\u00e9", false), ("end", true)], messages.Select(x => (Encoding.UTF8.GetString(x.Line), x.Partial)));
    }

    /// <summary>--log-format local: every entry is a frame whose protobuf decodes to the line without its newline; a line
    /// over 16 KiB is parts sharing an id and the first part's time, ordinals from 1, the last one marked.</summary>
    [Fact]
    public async Task The_local_format_frames_each_line_and_splits_long_ones_into_partial_entries()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "echo out; echo err >&2; head -c 40000 /dev/zero | tr '\\0' x; echo; printf tail");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("local", bundle) with { LogFormat = LogFormat.Local });
        scope.StartContainer("local");
        var before = DateTimeOffset.UtcNow;
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);

        byte[] file = File.ReadAllBytes(Path.Combine(m.StateDir, "container.log"));
        var messages = new List<LocalLog.Message>();
        for (int pos = 0; pos < file.Length;)
        {
            int length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(pos));
            Assert.Equal(length, (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(pos + 4 + length)));
            messages.Add(Assert.IsType<LocalLog.Message>(LocalLog.Decode(file.AsSpan(pos + 4, length))));
            pos += 8 + length;
        }
        Assert.Equal(["stderr err", "stdout out"], messages.Where(x => !x.Partial).Select(x => $"{x.Source} {Encoding.ASCII.GetString(x.Line)}").Order());
        // As many parts as the pipe's reads made (each at most 16 KiB), the one that ends the line last.
        string id = messages.First(x => x.Partial && x.Line.Length > 0 && x.Line[0] == 'x').Id;
        var parts = messages.Where(x => x.Id == id).ToList();
        Assert.All(parts, x => Assert.InRange(x.Line.Length, 0, 16 * 1024));
        Assert.Equal(new string('x', 40000), string.Concat(parts.Select(x => Encoding.ASCII.GetString(x.Line))));
        Assert.Equal(Enumerable.Range(1, parts.Count), parts.Select(x => x.Ordinal));
        Assert.Single(parts.Select(x => (x.Id, x.TimeNano)).Distinct());
        Assert.Matches("^[0-9a-f]{64}$", parts[0].Id);
        Assert.Equal([.. Enumerable.Repeat(false, parts.Count - 1), true], parts.Select(x => x.Last));
        Assert.InRange(DateTimeOffset.UnixEpoch.AddTicks(parts[0].TimeNano / 100), before.AddSeconds(-30), DateTimeOffset.UtcNow);
        // The output that ended without a newline: a part that is not the last (no newline added on reading).
        LocalLog.Message tail = messages.Last(x => x.Source == "stdout");
        Assert.Equal(("tail", true, false, 1), (Encoding.ASCII.GetString(tail.Line), tail.Partial, tail.Last, tail.Ordinal));

        var entries = await ToListAsync(LogReader.ReadAsync(new LogLocation(Path.Combine(m.StateDir, "container.log"), LogFormat.Local),
            null, null, -1, false, () => true, CancellationToken.None));
        Assert.Equal("out\n" + new string('x', 40000) + "\ntail", string.Concat(entries.Where(e => e.Stream == "stdout").Select(e => Encoding.ASCII.GetString(e.Line.Span))));
    }

    /// <summary>A local log whose last frame was torn (the monitor was killed mid-write) is cut back to its last whole
    /// frame before the next monitor appends: the file stays a clean sequence of frames.</summary>
    [Fact]
    public async Task A_torn_last_frame_is_cut_off_before_the_monitor_appends()
    {
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "echo after");
        MonitorLaunch launch = scope.Launch("torn", bundle) with { LogFormat = LogFormat.Local };
        byte[] before = LocalLog.Frame("stdout", 1, "before"u8);
        File.WriteAllBytes(launch.LogPath!, [.. before, .. LocalLog.Frame("stdout", 2, "torn entry"u8)[..11]]);
        MonitorHandle m = await scope.StartMonitorAsync(launch);
        scope.StartContainer("torn");
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);

        byte[] file = File.ReadAllBytes(launch.LogPath!);
        Assert.Equal(before, file[..before.Length]);
        int length = file.Length - before.Length - 8;
        Assert.Equal(length, (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(before.Length)));
        LocalLog.Message after = Assert.IsType<LocalLog.Message>(LocalLog.Decode(file.AsSpan(before.Length + 4, length)));
        Assert.Equal(("stdout", "after", false), (after.Source, Encoding.ASCII.GetString(after.Line), after.Partial));
    }

    /// <summary>--log-compress: rotated files become container.log.N.gz (by a child of the monitor), with the last entry's
    /// time in the gzip header; nothing plain or temporary is left, and the reader reads the whole history in order.</summary>
    [Fact]
    public async Task Local_rotation_compresses_the_rotated_files()
    {
        const int maxSize = 16 * 1024;
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c",
            "i=1000; while [ $i -lt 3000 ]; do echo \"line $i ..........................................................................................\"; i=$((i+1)); done");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("lrotate", bundle, logMaxSize: maxSize, logMaxFiles: 4)
            with { LogFormat = LogFormat.Local, LogCompress = true });
        scope.StartContainer("lrotate");
        Assert.Equal(0, (await MonitorScope.WaitExitAsync(m)).ExitCode);

        string log = Path.Combine(m.StateDir, "container.log");
        string[] want = [log, log + ".1.gz", log + ".2.gz", log + ".3.gz"];
        // The last compression may still run when the monitor has exited.
        for (int i = 0; i < 100 && !Directory.GetFiles(m.StateDir, "container.log*").Order().SequenceEqual(want); i++) await Task.Delay(50);
        Assert.Equal(want, Directory.GetFiles(m.StateDir, "container.log*").Order());
        foreach (string gz in want[1..])
        {
            byte[] head = File.ReadAllBytes(gz)[..80];
            Assert.Equal([0x1f, 0x8b, 8], head[..3]);
            Assert.Equal(4, head[3] & 4);   // FEXTRA
            Assert.Matches("""^\{"lastTime":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"\}""", Encoding.ASCII.GetString(head, 12, head[10]));
            using var plain = new MemoryStream();
            using (var z = new System.IO.Compression.GZipStream(File.OpenRead(gz), System.IO.Compression.CompressionMode.Decompress)) z.CopyTo(plain);
            Assert.InRange(plain.Length, maxSize - 200, maxSize);
        }

        var entries = await ToListAsync(LogReader.ReadAsync(new LogLocation(log, LogFormat.Local), null, null, -1, false, () => true, CancellationToken.None));
        // A line cut by a full read of the pipe is two entries (the first a partial one): lines are counted in the text.
        string text = string.Concat(entries.Select(e => Encoding.ASCII.GetString(e.Line.Span)));
        var numbers = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)   // the oldest file may start inside a line
            .Select(l => int.Parse(l.Split(' ')[1])).ToList();
        Assert.Equal(2999, numbers[^1]);
        Assert.Equal(Enumerable.Range(numbers[0], numbers.Count), numbers);
        Assert.InRange(numbers.Count, 3 * maxSize / 150, 4 * maxSize / 100);
        var tail = await ToListAsync(LogReader.ReadAsync(new LogLocation(log, LogFormat.Local), null, null, 3, false, () => true, CancellationToken.None));
        string last = string.Concat(tail.Select(e => Encoding.ASCII.GetString(e.Line.Span)));
        Assert.Contains("line 2998 ", last);
        Assert.EndsWith("line 2999 ..........................................................................................\n", last);
    }

    [Fact]
    public async Task Runc_works_with_the_monitor()
    {
        Assert.True(File.Exists(MonitorScope.Runc), "runc is not installed (apt-get install runc)");
        await using var scope = new MonitorScope();
        string bundle = scope.MakeBundle("bundle", false, "sh", "-c", "echo from runc; echo err >&2; cat; exit 7");
        MonitorHandle m = await scope.StartMonitorAsync(scope.Launch("runc1", bundle, stdin: true, runtime: MonitorScope.Runc));
        await using AttachConnection attach = await AttachConnection.ConnectAsync(m.StateDir, CancellationToken.None);
        scope.StartContainer("runc1", MonitorScope.Runc);
        await attach.WriteStdinAsync("piped\n"u8.ToArray(), CancellationToken.None);
        await attach.CloseStdinAsync(CancellationToken.None);
        Assert.Equal(("from runc\npiped\n", "err\n"), await MonitorScope.ReadAllAsync(attach));
        Assert.Equal(7, (await MonitorScope.WaitExitAsync(m)).ExitCode);

        var bad = await Assert.ThrowsAsync<MonitorException>(() =>
            MonitorProcess.LaunchAsync(scope.Launch("runc2", scope.CreateEmptyBundle("broken"), runtime: MonitorScope.Runc), CancellationToken.None));
        Assert.Contains("runc", bad.Message);
    }

    private static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> source)
    {
        var list = new List<T>();
        await foreach (T item in source) list.Add(item);
        return list;
    }
}
