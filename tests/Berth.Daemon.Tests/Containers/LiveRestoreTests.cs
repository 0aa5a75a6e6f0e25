using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// The berthd binary killed with SIGKILL while containers run: at its next start it finds the
/// running ones again (same PIDs, still controllable) and records the exit of one that ended
/// while no daemon ran, with its real exit code. Nothing is left behind even when the test fails.
/// </summary>
public sealed class LiveRestoreTests
{
    private static string Berthd => Path.Combine(DaemonScope.ArtifactsBin, "berthd");

    [Fact]
    public async Task Containers_survive_kill_9_of_berthd_and_exits_meanwhile_are_recorded()
    {
        Assert.True(File.Exists(Berthd), $"{Berthd} is missing: run ./build.sh");
        using var dir = new TempDirectory("restore");
        string socket = dir.Combine("exec", "berth.sock");
        Process? daemon = null;
        try
        {
            daemon = await StartAsync(dir, socket);
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                await ImportBusyboxAsync(client);
                string survivor = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "while true; do echo tick; sleep 0.2; done" } }, "survivor");
                string ender = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "sleep 1.5; echo done; exit 6" } }, "ender");
                foreach (string id in new[] { survivor, ender })
                    using (HttpResponseMessage started = await client.PostAsync($"/containers/{id}/start", null))
                        Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
            }
            int pidBefore = await PidOfAsync(socket, "survivor");
            int enderPid = await PidOfAsync(socket, "ender"); // 0 if it has already ended

            await KillAsync(daemon); // SIGKILL: no shutdown code runs
            daemon = null;
            Assert.True(Directory.Exists($"/proc/{pidBefore}"), "the container died with the daemon");
            // ender exits while no daemon runs: wait for its process to end (a fixed delay may not be
            // enough on a loaded machine) before the daemon comes back.
            var enderDeadline = DateTime.UtcNow.AddSeconds(20);
            while (enderPid > 0 && IsLive(enderPid) && DateTime.UtcNow < enderDeadline) await Task.Delay(50);
            Assert.False(enderPid > 0 && IsLive(enderPid), "ender did not exit within 20 s");

            daemon = await StartAsync(dir, socket);
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                JsonElement s = JsonDocument.Parse(await client.GetStringAsync("/containers/survivor/json")).RootElement.GetProperty("State");
                Assert.True(s.GetProperty("Running").GetBoolean());
                Assert.Equal(pidBefore, s.GetProperty("Pid").GetInt32());
                // Its monitor records the exit just after the process ends: poll until berthd reports it.
                JsonElement e;
                var exitedDeadline = DateTime.UtcNow.AddSeconds(20);
                while (true)
                {
                    e = JsonDocument.Parse(await client.GetStringAsync("/containers/ender/json")).RootElement.GetProperty("State");
                    if (e.GetProperty("Status").GetString() == "exited" || DateTime.UtcNow > exitedDeadline) break;
                    await Task.Delay(50);
                }
                Assert.Equal("exited", e.GetProperty("Status").GetString());
                Assert.Equal(6, e.GetProperty("ExitCode").GetInt32());
                Assert.Contains("done", (await ContainersApiTests.LogsAsync(client, "ender")).Out);

                // Still controllable: its log still grows, stop records the exit.
                // It ticks every 0.2 s; a loaded machine may take longer, so poll (20 s at most).
                int ticks = (await ContainersApiTests.LogsAsync(client, "survivor")).Out.Split('\n').Length;
                var growDeadline = DateTime.UtcNow.AddSeconds(20);
                bool grew;
                while (!(grew = (await ContainersApiTests.LogsAsync(client, "survivor")).Out.Split('\n').Length > ticks) && DateTime.UtcNow < growDeadline)
                    await Task.Delay(100);
                Assert.True(grew, "the monitor stopped logging");
                using (HttpResponseMessage stop = await client.PostAsync("/containers/survivor/stop?t=0", null))
                    Assert.True(stop.IsSuccessStatusCode, await stop.Content.ReadAsStringAsync());
                JsonElement stopped = JsonDocument.Parse(await client.GetStringAsync("/containers/survivor/json")).RootElement.GetProperty("State");
                Assert.Equal(137, stopped.GetProperty("ExitCode").GetInt32());
                foreach (string name in new[] { "survivor", "ender" })
                    using (HttpResponseMessage rm = await client.DeleteAsync($"/containers/{name}"))
                        Assert.True(rm.IsSuccessStatusCode, await rm.Content.ReadAsStringAsync());
            }
        }
        finally
        {
            await KillAsync(daemon);
            Leftovers.Clean(dir.Path);
        }
    }

    /// <summary>
    /// An auto-remove container's exit is saved without an fsync and its removal follows at
    /// once; a crash in between leaves an exited auto-remove record, which the restore removes
    /// (dockerd does the same). One that was created and never started stays — unless a machine
    /// crash took its layer's record or left its own record empty (both written without fsync).
    /// </summary>
    [Fact]
    public async Task An_exited_auto_remove_container_is_removed_at_restore_and_a_created_one_stays()
    {
        Assert.True(File.Exists(Berthd), $"{Berthd} is missing: run ./build.sh");
        using var dir = new TempDirectory("restore-rm");
        string socket = dir.Combine("exec", "berth.sock");
        Process? daemon = null;
        try
        {
            daemon = await StartAsync(dir, socket);
            string exited, created, layerLost, recordEmpty;
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                await ImportBusyboxAsync(client);
                exited = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "true" }, HostConfig = new { AutoRemove = true } }, "rm-exited");
                created = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "true" }, HostConfig = new { AutoRemove = true } }, "rm-created");
                layerLost = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "true" }, HostConfig = new { AutoRemove = true } }, "rm-layer-lost");
                recordEmpty = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "true" }, HostConfig = new { AutoRemove = true } }, "rm-record-empty");
            }
            await KillAsync(daemon); // SIGKILL
            daemon = null;

            // --rm containers' layers are ephemeral: each in its own record file, none in metadata.json.
            string snapshots = Path.Combine(dir.Combine("data"), "snapshots");
            Assert.DoesNotContain("container-", File.ReadAllText(Path.Combine(snapshots, "metadata.json")));
            var ephemeral = Directory.GetFiles(Path.Combine(snapshots, "ephemeral"))
                .ToDictionary(f => JsonDocument.Parse(File.ReadAllBytes(f)).RootElement.GetProperty("key").GetString()!, f => f);
            Assert.Equal(4, ephemeral.Count);
            // What a machine crash may do to records written without fsync: one layer's record
            // lost, one container record empty.
            File.Delete(ephemeral["container-" + layerLost]);
            File.WriteAllBytes(Path.Combine(dir.Combine("data"), "containers", recordEmpty, "config.v2.json"), []);

            // The record as a crash right after the exit was recorded leaves it.
            string record = Path.Combine(dir.Combine("data"), "containers", exited, "config.v2.json");
            var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(record))!;
            node["State"]!["Status"] = "exited";
            node["State"]!["ExitCode"] = 0;
            node["State"]!["StartedAt"] = "2026-12-05T00:00:00Z";
            node["State"]!["FinishedAt"] = "2026-12-05T00:00:01Z";
            File.WriteAllText(record, node.ToJsonString());

            daemon = await StartAsync(dir, socket);
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                using (HttpResponseMessage gone = await client.GetAsync($"/containers/{exited}/json"))
                    Assert.Equal(System.Net.HttpStatusCode.NotFound, gone.StatusCode);
                Assert.False(Directory.Exists(Path.GetDirectoryName(record)), "the removed container's directory is still there");
                JsonElement s = JsonDocument.Parse(await client.GetStringAsync($"/containers/{created}/json")).RootElement.GetProperty("State");
                Assert.Equal("created", s.GetProperty("Status").GetString());
                foreach (string lost in new[] { layerLost, recordEmpty })
                {
                    using (HttpResponseMessage gone = await client.GetAsync($"/containers/{lost}/json"))
                        Assert.Equal(System.Net.HttpStatusCode.NotFound, gone.StatusCode);
                    Assert.False(Directory.Exists(Path.Combine(dir.Combine("data"), "containers", lost)), $"container {lost}'s directory is still there");
                }
                using HttpResponseMessage rm = await client.DeleteAsync($"/containers/{created}");
                Assert.True(rm.IsSuccessStatusCode, await rm.Content.ReadAsStringAsync());
            }
            // Nothing of the four is left in the snapshotter: no record, no directory.
            Assert.Empty(Directory.GetFiles(Path.Combine(snapshots, "ephemeral")));
            Assert.Single(Directory.GetDirectories(Path.Combine(snapshots, "snapshots"))); // busybox's layer
        }
        finally
        {
            await KillAsync(daemon);
            Leftovers.Clean(dir.Path);
        }
    }

    /// <summary>
    /// berthd killed while a start waits for the runtime's `start` (the init created and waiting at
    /// its fifo, the record saved with the monitor's PID): the restore finds the container never
    /// started, deletes it from the runtime (which kills the init), waits for the monitor to record
    /// that and go, and only then removes the monitor's directory. Removing it while the monitor
    /// still wrote its exit file left the directory behind (the crash test caught it).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_start_cut_short_before_the_runtime_start_is_undone_at_restore_leaving_nothing(bool monitorPidRecorded)
    {
        Assert.True(File.Exists(Berthd), $"{Berthd} is missing: run ./build.sh");
        using var dir = new TempDirectory("restore-cut");
        string socket = dir.Combine("exec", "berth.sock");
        string startPidFile = dir.Combine("start.pid");
        // berth-runtime, except that its `start` never comes: it hangs until the test kills it.
        string wrapper = dir.Combine("hanging-start-runtime");
        File.WriteAllText(wrapper, $$"""
            #!/bin/sh
            for a in "$@"; do
              if [ "$a" = start ]; then echo $$ > {{startPidFile}}; exec sleep 600; fi
            done
            exec {{Path.Combine(DaemonScope.ArtifactsBin, "berth-runtime")}} "$@"
            """);
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Process? daemon = null;
        int hangingStart = 0;
        try
        {
            daemon = await StartAsync(dir, socket, "--add-runtime", "hanging=" + wrapper);
            string id;
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                await ImportBusyboxAsync(client);
                id = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "sleep", "100" }, HostConfig = new { Runtime = "hanging" } }, "cut");
                _ = client.PostAsync($"/containers/{id}/start", null); // answered never: berthd dies first
                var deadline = DateTime.UtcNow.AddSeconds(20);
                while (!File.Exists(startPidFile) && DateTime.UtcNow < deadline) await Task.Delay(20);
                Assert.True(File.Exists(startPidFile), "the runtime's start was not called within 20 s");
            }
            await KillAsync(daemon); // SIGKILL, while the start hangs
            daemon = null;
            hangingStart = int.Parse(File.ReadAllText(startPidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            string record = Path.Combine(dir.Combine("data"), "containers", id, "config.v2.json");
            int monitorPid = JsonDocument.Parse(File.ReadAllText(record)).RootElement.GetProperty("MonitorPid").GetInt32();
            Assert.True(monitorPid > 0 && IsLive(monitorPid), "the record holds no live monitor: the start did not get as far as the test needs");
            string monitorDir = dir.Combine("exec", "m", id[..16]);
            Assert.True(Directory.Exists(monitorDir));
            if (!monitorPidRecorded)
            {
                // As a kill between the monitor's launch and the record's save leaves it: the
                // restore has to find the monitor by its state directory.
                var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(record))!;
                node["MonitorPid"] = 0;
                File.WriteAllText(record, node.ToJsonString());
            }

            daemon = await StartAsync(dir, socket, "--add-runtime", "hanging=" + wrapper);
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                JsonElement s = JsonDocument.Parse(await client.GetStringAsync($"/containers/{id}/json")).RootElement.GetProperty("State");
                Assert.Equal("created", s.GetProperty("Status").GetString());
                Assert.False(IsLive(monitorPid), "the monitor of the undone start still runs");
                Assert.False(Directory.Exists(monitorDir), $"the monitor's directory remains (it holds: {string.Join(' ', Directory.Exists(monitorDir) ? Directory.GetFileSystemEntries(monitorDir).Select(Path.GetFileName) : [])})");
                Assert.False(Directory.Exists(dir.Combine("exec", "runtime", "hanging", id)), "the runtime still has the container");
                Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Split(' ')[4].StartsWith(dir.Combine("exec", "containers", id), StringComparison.Ordinal));
                using HttpResponseMessage rm = await client.DeleteAsync($"/containers/{id}");
                Assert.True(rm.IsSuccessStatusCode, await rm.Content.ReadAsStringAsync());
            }
        }
        finally
        {
            await KillAsync(daemon);
            if (hangingStart > 0 && IsLive(hangingStart))
                try { Process.GetProcessById(hangingStart).Kill(); } catch (ArgumentException) { } // gone meanwhile
            Leftovers.Clean(dir.Path);
        }
    }

    /// <summary>
    /// berthd killed while the monitor's runtime `create` still runs (the record has no monitor
    /// PID yet): the restore's first delete finds no runtime state, and the create writes it a
    /// moment later, leaving an init at its exec fifo and a monitor serving it. The restore keeps
    /// deleting until the monitor goes. Before, it waited 5 s for a monitor that never went and
    /// left the runtime state, the init and the monitor (the crash test saw "runtime state X
    /// remains, but container X is created" twice in 34 runs). Here the create is held until the
    /// new berthd has begun its restore.
    /// </summary>
    [Fact]
    public async Task A_start_cut_short_during_the_runtime_create_is_undone_at_restore_leaving_nothing()
    {
        Assert.True(File.Exists(Berthd), $"{Berthd} is missing: run ./build.sh");
        using var dir = new TempDirectory("restore-create");
        string socket = dir.Combine("exec", "berth.sock");
        string createPidFile = dir.Combine("create.pid");
        string release = dir.Combine("release");
        string wrapper = WriteHeldCreateRuntime(dir, createPidFile, release);
        Process? daemon = null;
        try
        {
            daemon = await StartAsync(dir, socket, "--add-runtime", "held=" + wrapper);
            string id;
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                await ImportBusyboxAsync(client);
                id = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "sleep", "100" }, HostConfig = new { Runtime = "held" } }, "held");
                _ = client.PostAsync($"/containers/{id}/start", null); // answered never: berthd dies first
                var deadline = DateTime.UtcNow.AddSeconds(20);
                while (!File.Exists(createPidFile) && DateTime.UtcNow < deadline) await Task.Delay(20);
                Assert.True(File.Exists(createPidFile), "the runtime's create was not called within 20 s");
                // Killed with the start's request still open: a client that goes away cancels the start
                // (and its cleanup), which is not what this test is about.
                await KillAsync(daemon); // SIGKILL, while the create is held
                daemon = null;
            }
            string monitorDir = dir.Combine("exec", "m", id[..16]);
            int monitorPid = Berth.Daemon.Monitor.MonitorProcess.FindByStateDir(monitorDir);
            Assert.True(monitorPid > 0, "no monitor serves the container: the start did not get as far as the test needs");

            // The restore runs before berthd answers; the create goes on while it runs.
            Task released = Task.Delay(TimeSpan.FromSeconds(1)).ContinueWith(_ => File.WriteAllText(release, ""), TaskScheduler.Default);
            daemon = await StartAsync(dir, socket, "--add-runtime", "held=" + wrapper);
            await released;
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                JsonElement s = JsonDocument.Parse(await client.GetStringAsync($"/containers/{id}/json")).RootElement.GetProperty("State");
                Assert.Equal("created", s.GetProperty("Status").GetString());
                Assert.False(IsLive(monitorPid), "the monitor of the undone start still runs");
                Assert.False(Directory.Exists(dir.Combine("exec", "runtime", "held", id)), "the runtime still has the container");
                Assert.False(Directory.Exists(monitorDir), "the monitor's directory remains");
                Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Split(' ')[4].StartsWith(dir.Combine("exec", "containers", id), StringComparison.Ordinal));
                // And it starts again as any created container does.
                using HttpResponseMessage started = await client.PostAsync($"/containers/{id}/start", null);
                Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
                using HttpResponseMessage rm = await client.DeleteAsync($"/containers/{id}?force=1");
                Assert.True(rm.IsSuccessStatusCode, await rm.Content.ReadAsStringAsync());
            }
        }
        finally
        {
            File.WriteAllText(release, ""); // a create still held goes on, and the cleanup below deletes what it made
            await KillAsync(daemon);
            Leftovers.Clean(dir.Path);
        }
    }

    /// <summary>
    /// A client that goes away while its start waits for the runtime's create does not cut the
    /// start short (dockerd's start has no request context either): the container runs. Before, the
    /// start was cancelled while the monitor was launched: berthd unmounted the rootfs and forgot
    /// the monitor, whose create then made an init in the unmounted rootfs, left waiting for good.
    /// </summary>
    [Fact]
    public async Task A_start_whose_client_goes_away_runs_to_its_end()
    {
        Assert.True(File.Exists(Berthd), $"{Berthd} is missing: run ./build.sh");
        using var dir = new TempDirectory("start-abandoned");
        string socket = dir.Combine("exec", "berth.sock");
        string createPidFile = dir.Combine("create.pid");
        string release = dir.Combine("release");
        string wrapper = WriteHeldCreateRuntime(dir, createPidFile, release);
        Process? daemon = null;
        try
        {
            daemon = await StartAsync(dir, socket, "--add-runtime", "held=" + wrapper);
            using HttpClient client = DaemonScope.CreateClient(socket);
            await ImportBusyboxAsync(client);
            string id = await ContainersApiTests.CreateAsync(client, new { Image = "busybox", Cmd = new[] { "sleep", "100" }, HostConfig = new { Runtime = "held" } }, "abandoned");
            using (HttpClient leaving = DaemonScope.CreateClient(socket))
            using (var gone = new CancellationTokenSource())
            {
                Task<HttpResponseMessage> start = leaving.PostAsync($"/containers/{id}/start", null, gone.Token);
                var deadline = DateTime.UtcNow.AddSeconds(20);
                while (!File.Exists(createPidFile) && DateTime.UtcNow < deadline) await Task.Delay(20);
                Assert.True(File.Exists(createPidFile), "the runtime's create was not called within 20 s");
                await gone.CancelAsync(); // the client goes, closing its connection
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => start);
            }
            await Task.Delay(300); // berthd has seen the connection go
            File.WriteAllText(release, "");
            JsonElement state = default;
            for (var deadline = DateTime.UtcNow.AddSeconds(20); DateTime.UtcNow < deadline; await Task.Delay(50))
            {
                state = JsonDocument.Parse(await client.GetStringAsync($"/containers/{id}/json")).RootElement.GetProperty("State");
                if (state.GetProperty("Status").GetString() != "created") break;
            }
            Assert.Equal("running", state.GetProperty("Status").GetString());
            using HttpResponseMessage rm = await client.DeleteAsync($"/containers/{id}?force=1");
            Assert.True(rm.IsSuccessStatusCode, await rm.Content.ReadAsStringAsync());
            Assert.False(Directory.Exists(dir.Combine("exec", "runtime", "held", id)), "the runtime still has the container");
        }
        finally
        {
            File.WriteAllText(release, "");
            await KillAsync(daemon);
            Leftovers.Clean(dir.Path);
        }
    }

    /// <summary>berth-runtime, except that its `create` waits until <paramref name="release"/> exists.</summary>
    private static string WriteHeldCreateRuntime(TempDirectory dir, string createPidFile, string release)
    {
        string wrapper = dir.Combine("held-create-runtime");
        File.WriteAllText(wrapper, $$"""
            #!/bin/sh
            for a in "$@"; do
              if [ "$a" = create ]; then
                echo $$ > {{createPidFile}}
                while [ ! -e {{release}} ]; do sleep 0.05; done
                break
              fi
            done
            exec {{Path.Combine(DaemonScope.ArtifactsBin, "berth-runtime")}} "$@"
            """);
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return wrapper;
    }

    internal static async Task ImportBusyboxAsync(HttpClient client)
    {
        using var tar = new ByteArrayContent(TestRootfs.BusyboxTar());
        tar.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
        using HttpResponseMessage imported = await client.PostAsync("/images/create?fromSrc=-&repo=busybox&tag=latest", tar);
        Assert.True(imported.IsSuccessStatusCode, await imported.Content.ReadAsStringAsync());
    }

    private static async Task KillAsync(Process? daemon)
    {
        if (daemon is { HasExited: false })
        {
            daemon.Kill();
            await daemon.WaitForExitAsync();
        }
        daemon?.Dispose();
    }

    /// <summary>True while the process exists and is not a zombie.</summary>
    private static bool IsLive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0] is not ("Z" or "X");
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static async Task<int> PidOfAsync(string socket, string name)
    {
        using HttpClient client = DaemonScope.CreateClient(socket);
        return JsonDocument.Parse(await client.GetStringAsync($"/containers/{name}/json")).RootElement.GetProperty("State").GetProperty("Pid").GetInt32();
    }

    private static async Task<Process> StartAsync(TempDirectory dir, string socket, params string[] extraArgs)
    {
        var start = new ProcessStartInfo(Berthd) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])["--data-root", dir.Combine("data"), "--exec-root", dir.Combine("exec"), "-H", "unix://" + socket, "--log-level", "warn", "--bridge", "none", .. extraArgs])
            start.ArgumentList.Add(a);
        Process p = Process.Start(start)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline && !p.HasExited)
        {
            try
            {
                using HttpClient client = DaemonScope.CreateClient(socket);
                if (await client.GetStringAsync("/_ping") == "OK") return p;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(50);
        }
        p.Kill();
        throw new InvalidOperationException("berthd did not start");
    }
}

/// <summary>Removes what a failed container test may leave under its directory: runtime containers (and so their monitors) and mounts.</summary>
internal static class Leftovers
{
    public static void Clean(string root)
    {
        // Every runtime's state dir (berth-runtime's, and a test's wrapper around it).
        string runtimes = Path.Combine(root, "exec", "runtime");
        if (Directory.Exists(runtimes))
            foreach (string runtimeRoot in Directory.EnumerateDirectories(runtimes))
                foreach (string container in Directory.EnumerateDirectories(runtimeRoot))
                    if (!Path.GetFileName(container).StartsWith('@'))
                        Run(Path.Combine(DaemonScope.ArtifactsBin, "berth-runtime"), "--root", runtimeRoot, "delete", "--force", Path.GetFileName(container));
        foreach (string line in File.ReadAllLines("/proc/self/mountinfo").Reverse())
        {
            string target = line.Split(' ')[4];
            if (target.StartsWith(root, StringComparison.Ordinal)) Run("umount", "-l", target);
        }
    }

    private static void Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        p.WaitForExit(10_000);
    }
}
