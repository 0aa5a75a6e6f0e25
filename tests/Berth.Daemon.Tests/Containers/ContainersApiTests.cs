using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// /containers over HTTP against berthd hosted in-process, running real containers with
/// berth-runtime and berth-monitor from artifacts/bin. Each test's daemon removes its containers
/// (forcibly) and its directories when it is disposed.
/// </summary>
public sealed class ContainersApiTests : DaemonTestBase
{
    internal static async Task<string> CreateAsync(HttpClient client, object body, string? name = null, string apiVersion = "1.43")
    {
        using HttpResponseMessage response = await client.PostAsJsonAsync($"/v{apiVersion}/containers/create" + (name is null ? "" : "?name=" + name), body);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("Id").GetString()!;
    }

    private async Task<(int Status, string Body)> PostAsync(string path)
    {
        using HttpResponseMessage response = await Client.PostAsync(path, null);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private async Task<long> WaitAsync(string id, string condition = "not-running")
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using HttpResponseMessage response = await Client.PostAsync($"/containers/{id}/wait?condition={condition}", null, cts.Token);
        string text = await response.Content.ReadAsStringAsync(cts.Token);
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("StatusCode").GetInt64();
    }

    /// <summary>
    /// Sends a wait and returns once its response headers came: berthd sends them after it has
    /// registered the wait, so a start or delete that follows cannot race it. The task returned
    /// gives the exit code when the condition is met.
    /// </summary>
    private async Task<Task<long>> StartWaitAsync(string id, string condition)
    {
        var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        HttpResponseMessage response;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/containers/{id}/wait?condition={condition}");
            response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        }
        catch
        {
            cts.Dispose();
            throw;
        }
        return Body();

        async Task<long> Body()
        {
            using (cts)
            using (response)
            {
                string text = await response.Content.ReadAsStringAsync(cts.Token);
                Assert.True(response.IsSuccessStatusCode, text);
                return JsonDocument.Parse(text).RootElement.GetProperty("StatusCode").GetInt64();
            }
        }
    }

    /// <summary>Polls the container's stdout until it contains <paramref name="text"/> (30 s at most).</summary>
    private async Task WaitForLogAsync(string id, string text)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        string stdout;
        while (!(stdout = (await LogsAsync(Client, id)).Out).Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"waiting for \"{text}\" in the logs of {id}; stdout: {stdout}");
            await Task.Delay(50);
        }
    }

    /// <summary>GET logs and split Docker's multiplexed frames into stdout and stderr.</summary>
    internal static async Task<(string Out, string Err)> LogsAsync(HttpClient client, string id, string query = "stdout=1&stderr=1")
    {
        byte[] bytes = await client.GetByteArrayAsync($"/containers/{id}/logs?{query}");
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        for (int i = 0; i < bytes.Length;)
        {
            Assert.True(i + 8 <= bytes.Length, "truncated frame header");
            int stream = bytes[i];
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(i + 4));
            string text = Encoding.UTF8.GetString(bytes, i + 8, length);
            (stream == 2 ? stderr : stdout).Append(text);
            i += 8 + length;
        }
        return (stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task Inspect_lists_the_execs_that_have_not_exited()
    {
        string id = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sleep", "100" } });
        Assert.Equal(204, (await PostAsync($"/containers/{id}/start")).Status);
        async Task<string> CreateExecAsync(params string[] cmd)
        {
            using HttpResponseMessage created = await Client.PostAsJsonAsync($"/containers/{id}/exec", new { Cmd = cmd });
            string body = await created.Content.ReadAsStringAsync();
            Assert.True(created.IsSuccessStatusCode, body);
            return JsonDocument.Parse(body).RootElement.GetProperty("Id").GetString()!;
        }
        string done = await CreateExecAsync("true");
        using (HttpResponseMessage started = await Client.PostAsync($"/exec/{done}/start", new StringContent("{\"Detach\":true}", Encoding.UTF8, "application/json")))
            Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await Daemon.GetJsonAsync($"/exec/{done}/json")).GetProperty("ExitCode").ValueKind == JsonValueKind.Null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the exec did not exit in 30 s");
            await Task.Delay(50);
        }
        Assert.Equal(JsonValueKind.Null, (await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("ExecIDs").ValueKind);
        Assert.Equal(0, (await Daemon.GetJsonAsync($"/exec/{done}/json")).GetProperty("ExitCode").GetInt32()); // still inspectable

        string waiting = await CreateExecAsync("true");
        Assert.Equal([waiting], (await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("ExecIDs").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Create_start_wait_logs_inspect_remove_leaves_nothing()
    {
        string id = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "echo out; echo err >&2; hostname; exit 3" }, Labels = new { purpose = "test" } }, "first");
        JsonElement created = await Daemon.GetJsonAsync($"/containers/{id}/json");
        Assert.Equal("created", created.GetProperty("State").GetProperty("Status").GetString());
        Assert.Equal("/first", created.GetProperty("Name").GetString());
        Assert.Equal("test", created.GetProperty("Config").GetProperty("Labels").GetProperty("purpose").GetString());

        Assert.Equal(204, (await PostAsync($"/containers/{id}/start")).Status);
        Assert.Equal(3, await WaitAsync(id));
        var (stdout, stderr) = await LogsAsync(Client, id);
        Assert.Equal($"out\n{id[..12]}\n", stdout);
        Assert.Equal("err\n", stderr);

        JsonElement state = (await Daemon.GetJsonAsync($"/containers/first/json")).GetProperty("State");
        Assert.Equal("exited", state.GetProperty("Status").GetString());
        Assert.Equal(3, state.GetProperty("ExitCode").GetInt32());
        Assert.False(state.GetProperty("Running").GetBoolean());
        Assert.NotEqual("0001-01-01T00:00:00Z", state.GetProperty("FinishedAt").GetString());

        // Starting again runs it again (exit recorded again); the log grows.
        Assert.Equal(204, (await PostAsync($"/containers/{id}/start")).Status);
        Assert.Equal(3, await WaitAsync(id));
        Assert.Equal(2, (await LogsAsync(Client, id)).Err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        string rootfs = Path.Combine(Daemon.Options.ExecRoot, "containers", id, "rootfs");
        using (HttpResponseMessage delete = await Client.DeleteAsync($"/containers/{id}"))
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        await Daemon.GetJsonAsync($"/containers/{id}/json", 404);
        Assert.False(Directory.Exists(Path.Combine(Daemon.Options.DataRoot, "containers", id)));
        Assert.False(Directory.Exists(Path.Combine(Daemon.Options.ExecRoot, "containers", id)));
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(rootfs, StringComparison.Ordinal));
        Assert.DoesNotContain(Daemon.Host.Engine.Snapshotter.Walk(), s => s.Name.Contains(id, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Create_refuses_bad_requests_with_docker_errors_and_leaves_nothing()
    {
        async Task<(int, string)> Create(object body, string? name = null)
        {
            using HttpResponseMessage r = await Client.PostAsJsonAsync("/containers/create" + (name is null ? "" : "?name=" + name), body);
            return ((int)r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("message").GetString()!);
        }
        Assert.Equal((404, "No such image: nosuch:latest"), await Create(new { Image = "nosuch" }));
        // 400 as dockerd: a 404 from create means a missing image to docker clients, which then pull.
        var (status, message) = await Create(new { Image = "busybox", HostConfig = new { VolumesFrom = new[] { "other" } } });
        Assert.Equal((400, "No such container: other"), (status, message));
        (status, message) = await Create(new { Image = "busybox", HostConfig = new { VolumesFrom = new[] { "other:rshared" } } });
        Assert.Equal(400, status);
        Assert.Contains("propagation property is not allowed", message);
        (status, message) = await Create(new { Image = "busybox", HostConfig = new { PortBindings = new Dictionary<string, object> { ["80/tcp"] = new[] { new { HostPort = "99999" } } } } });
        Assert.Equal(400, status);
        Assert.Contains("99999", message);
        (status, message) = await Create(new { Image = "busybox", HostConfig = new { NetworkMode = "nosuchnet" } });
        Assert.Equal((404, "network nosuchnet not found"), (status, message));
        (status, message) = await Create(new { Image = "busybox", HostConfig = new { SomethingNew = 5 } });
        Assert.Equal(400, status);
        Assert.Contains("HostConfig.SomethingNew", message, StringComparison.OrdinalIgnoreCase);
        (status, message) = await Create(new { Image = "busybox" }, "bad%20name");
        Assert.Equal(400, status);
        Assert.Contains("Invalid container name", message);
        (status, _) = await Create(new { Image = "busybox", HostConfig = new { Binds = new[] { "relative/path:/x" } } }); // neither absolute nor a volume name
        Assert.Equal(400, status);
        (status, _) = await Create(new { Image = "busybox", HostConfig = new { SecurityOpt = new[] { "apparmor=docker-default" } } });
        Assert.Equal(400, status);
        // One word each: a newline would add lines (a nameserver) to the container's resolv.conf.
        (status, message) = await Create(new { Image = "busybox", HostConfig = new { DnsOptions = new[] { "ndots:1\nnameserver 192.0.2.1" } } });
        Assert.Equal(400, status);
        Assert.Contains("invalid DNS search domain or option", message);
        (status, message) = await Create(new { Image = "busybox", HostConfig = new { Devices = new[] { new { PathOnHost = "/etc/passwd", PathInContainer = "/dev/x", CgroupPermissions = "rwm" } } } });
        Assert.Equal((400, "error gathering device information while adding custom device \"/etc/passwd\": not a device node"), (status, message));
        (status, message) = await Create(new { Image = "busybox", HostConfig = new { Devices = new[] { new { PathOnHost = "/dev/zero", PathInContainer = "/dev/x", CgroupPermissions = "rwx" } } } });
        Assert.Equal(400, status);
        Assert.Contains("only r, w and m", message);
        (status, message) = await Create(new { Image = "busybox", HostConfig = new { DeviceCgroupRules = new[] { "c 1:2" } } });
        Assert.Equal((400, "invalid device cgroup format 'c 1:2'"), (status, message));

        await CreateAsync(Client, new { Image = "busybox" }, "taken");
        (status, message) = await Create(new { Image = "busybox" }, "taken");
        Assert.Equal(409, status);
        Assert.Contains("The container name \"/taken\" is already in use", message);

        using (HttpResponseMessage bad = await Client.PostAsync("/containers/create", new StringContent("{not json", Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        JsonElement all = await Daemon.GetJsonAsync("/containers/json?all=1");
        Assert.Equal(1, all.GetArrayLength());
    }

    /// <summary>
    /// Docker.DotNet.Enhanced (Testcontainers' client) repeats the name in the body; dockerd's body
    /// has no Name and ignores it, so the name is the query's, or a generated one without a query.
    /// </summary>
    [Fact]
    public async Task A_Name_in_the_create_body_is_ignored_as_dockerd_ignores_it()
    {
        string id = await CreateAsync(Client, new { Name = "named", Image = "busybox" }, "named");
        Assert.Equal("/named", (await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("Name").GetString());
        string other = await CreateAsync(Client, new { Name = "fromthebody", Image = "busybox" });
        Assert.NotEqual("/fromthebody", (await Daemon.GetJsonAsync($"/containers/{other}/json")).GetProperty("Name").GetString());
        await Daemon.GetJsonAsync("/containers/fromthebody/json", 404);
    }

    /// <summary>HostConfig.Annotations reach the OCI spec the runtime gets; a blkio throttle its blockIO by device numbers.</summary>
    [Fact]
    public async Task Annotations_and_blkio_throttles_reach_the_runtime_spec()
    {
        string disk = Directory.GetDirectories("/sys/block").Select(Path.GetFileName).First(n => !n!.StartsWith("loop", StringComparison.Ordinal) && !n.StartsWith("ram", StringComparison.Ordinal) && File.Exists("/dev/" + n))!;
        string[] numbers = File.ReadAllText($"/sys/block/{disk}/dev").Trim().Split(':');
        string id = await CreateAsync(Client, new
        {
            Image = "busybox",
            Cmd = new[] { "sleep", "1000" },
            HostConfig = new
            {
                Annotations = new Dictionary<string, string> { ["org.example.note"] = "hi" },
                BlkioDeviceWriteBps = new[] { new { Path = "/dev/" + disk, Rate = 2097152 } },
            },
        });
        Assert.Equal(204, (await PostAsync($"/containers/{id}/start")).Status);
        using JsonDocument spec = JsonDocument.Parse(File.ReadAllText(Path.Combine(Daemon.Options.ExecRoot, "containers", id, "config.json")));
        Assert.Equal("hi", spec.RootElement.GetProperty("annotations").GetProperty("org.example.note").GetString());
        JsonElement throttle = spec.RootElement.GetProperty("linux").GetProperty("resources").GetProperty("blockIO").GetProperty("throttleWriteBpsDevice")[0];
        Assert.Equal($"{numbers[0]}:{numbers[1]} 2097152", $"{throttle.GetProperty("major")}:{throttle.GetProperty("minor")} {throttle.GetProperty("rate")}");
        Assert.Equal(204, (await PostAsync($"/containers/{id}/kill")).Status);
        await WaitAsync(id);
    }

    [Fact]
    public async Task Stop_escalates_to_SIGKILL_after_the_timeout_and_kill_rm_rules_hold()
    {
        // sleep as PID 1 has no SIGTERM handler: the kernel drops the signal, so stop must escalate.
        string id = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sleep", "1000" } }, "sleeper");
        Assert.Equal(204, (await PostAsync($"/containers/{id}/start")).Status);
        Assert.Equal(304, (await PostAsync($"/containers/{id}/start")).Status);
        JsonElement running = await Daemon.GetJsonAsync($"/containers/{id}/json");
        Assert.True(running.GetProperty("State").GetProperty("Running").GetBoolean());
        int pid = running.GetProperty("State").GetProperty("Pid").GetInt32();
        Assert.True(pid > 0 && Directory.Exists($"/proc/{pid}"));

        using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{id}"))
            Assert.Equal(HttpStatusCode.Conflict, rm.StatusCode);

        JsonElement list = await Daemon.GetJsonAsync("/containers/json");
        Assert.Equal(1, list.GetArrayLength());
        Assert.StartsWith("Up ", list[0].GetProperty("Status").GetString());
        Assert.Equal("/sleeper", list[0].GetProperty("Names")[0].GetString());

        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(204, (await PostAsync($"/containers/{id}/stop?t=1")).Status);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1), $"stop returned after {watch.Elapsed}");
        JsonElement state = (await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("State");
        Assert.Equal(137, state.GetProperty("ExitCode").GetInt32());
        Assert.False(Directory.Exists($"/proc/{pid}") && File.ReadAllText($"/proc/{pid}/stat").Contains("sleep"));
        Assert.Equal(304, (await PostAsync($"/containers/{id}/stop")).Status);
        Assert.Equal(409, (await PostAsync($"/containers/{id}/kill")).Status);
        Assert.Equal(0, (await Daemon.GetJsonAsync("/containers/json")).GetArrayLength());
        Assert.Equal(1, (await Daemon.GetJsonAsync("/containers/json?filters=" + Uri.EscapeDataString("{\"status\":[\"exited\"]}"))).GetArrayLength());

        // kill with a signal the process handles; then force-remove a running one.
        string trap = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "trap 'exit 42' USR1; echo ready; while true; do sleep 0.1; done" } });
        Assert.Equal(204, (await PostAsync($"/containers/{trap}/start")).Status);
        // "ready" is printed after the trap is installed: a signal sent earlier would kill the shell.
        await WaitForLogAsync(trap, "ready");
        Assert.Equal(204, (await PostAsync($"/containers/{trap}/kill?signal=SIGUSR1")).Status);
        Assert.Equal(42, await WaitAsync(trap));

        string forced = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sleep", "1000" } });
        Assert.Equal(204, (await PostAsync($"/containers/{forced}/start")).Status);
        Assert.Equal(400, (await PostAsync($"/containers/{forced}/kill?signal=NOPE")).Status);
        using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{forced}?force=1"))
            Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);
        await Daemon.GetJsonAsync($"/containers/{forced}/json", 404);
    }

    [Fact]
    public async Task Rename_pause_top_stats_and_wait_conditions()
    {
        string id = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sleep", "1000" } }, "before");
        Assert.Equal(204, (await PostAsync($"/containers/before/rename?name=after")).Status);
        await Daemon.GetJsonAsync("/containers/before/json", 404);
        Assert.Equal(id, (await Daemon.GetJsonAsync("/containers/after/json")).GetProperty("Id").GetString());
        string other = await CreateAsync(Client, new { Image = "busybox" }, "other");
        Assert.Equal(409, (await PostAsync($"/containers/{other}/rename?name=after")).Status);

        Assert.Equal(204, (await PostAsync($"/containers/{id}/start")).Status);
        JsonElement top = await Daemon.GetJsonAsync($"/containers/{id}/top");
        Assert.Contains("PID", top.GetProperty("Titles").EnumerateArray().Select(t => t.GetString()));
        Assert.Contains(top.GetProperty("Processes").EnumerateArray(), p => p.EnumerateArray().Last().GetString()!.Contains("sleep 1000"));

        JsonElement stats = await Daemon.GetJsonAsync($"/containers/{id}/stats?stream=0&one-shot=1");
        Assert.True(stats.GetProperty("memory_stats").GetProperty("usage").GetUInt64() > 0);
        Assert.Equal(1, stats.GetProperty("pids_stats").GetProperty("current").GetInt64());

        Assert.Equal(204, (await PostAsync($"/containers/{id}/pause")).Status);
        JsonElement paused = await Daemon.GetJsonAsync($"/containers/{id}/json");
        Assert.Equal("paused", paused.GetProperty("State").GetProperty("Status").GetString());
        Assert.EndsWith("(Paused)", (await Daemon.GetJsonAsync("/containers/json"))[0].GetProperty("Status").GetString());
        Assert.Equal(409, (await PostAsync($"/containers/{id}/pause")).Status);
        Assert.Equal(204, (await PostAsync($"/containers/{id}/unpause")).Status);
        Assert.Equal("running", (await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("State").GetProperty("Status").GetString());

        // A wait for removal ends when the container is removed, with its last exit code.
        Task<long> removed = await StartWaitAsync(id, "removed");
        await Task.Delay(200);
        Assert.False(removed.IsCompleted);
        using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{id}?force=1"))
            Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);
        Assert.Equal(137, await removed);
    }

    [Fact]
    public async Task AutoRemove_removes_the_container_when_it_exits()
    {
        string id = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "exit 7" }, HostConfig = new { AutoRemove = true } });
        Task<long> removed = await StartWaitAsync(id, "removed");
        Assert.Equal(204, (await PostAsync($"/containers/{id}/start")).Status);
        Assert.Equal(7, await removed);
        await Daemon.GetJsonAsync($"/containers/{id}/json", 404);
    }

    [Fact]
    public async Task Start_failure_of_a_missing_executable_is_a_400_and_leaves_the_container_created()
    {
        string id = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "/no/such/binary" } });
        (int status, string body) = await PostAsync($"/containers/{id}/start");
        Assert.Equal(400, status);
        Assert.Contains("no/such/binary", body);
        JsonElement state = (await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("State");
        Assert.False(state.GetProperty("Running").GetBoolean());
        string rootfs = Path.Combine(Daemon.Options.ExecRoot, "containers", id, "rootfs");
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(rootfs, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Spec_reflects_the_request_limits_env_user_workdir_readonly()
    {
        string id = await CreateAsync(Client, new
        {
            Image = "busybox",
            Env = new[] { "GREETING=hello" },
            User = "1234:5678",
            WorkingDir = "/tmp",
            Cmd = new[] { "sh", "-c", "echo $GREETING; id -u; id -g; pwd; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; touch /x 2>&1 || echo readonly" },
            HostConfig = new { PidsLimit = 64, Memory = 64 * 1024 * 1024, ReadonlyRootfs = true, Tmpfs = new Dictionary<string, string> { ["/tmp"] = "" } },
        });
        Assert.Equal(204, (await PostAsync($"/containers/{id}/start")).Status);
        Assert.Equal(0, await WaitAsync(id));
        string[] lines = (await LogsAsync(Client, id)).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("hello", lines[0]);
        Assert.Equal("1234", lines[1]);
        Assert.Equal("5678", lines[2]);
        Assert.Equal("/tmp", lines[3]);
        Assert.Equal("64", lines[4]);
        Assert.Contains("readonly", lines[^1]);
    }

    [Fact]
    public async Task Restart_policies_restart_on_failure_up_to_the_count_and_stop_holds_always_off()
    {
        string failing = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "echo run; exit 3" }, HostConfig = new { RestartPolicy = new { Name = "on-failure", MaximumRetryCount = 2 } } });
        Assert.Equal(204, (await PostAsync($"/containers/{failing}/start")).Status);
        JsonElement state = default;
        for (int i = 0; i < 100; i++)
        {
            JsonElement inspect = await Daemon.GetJsonAsync($"/containers/{failing}/json");
            state = inspect.GetProperty("State");
            if (inspect.GetProperty("RestartCount").GetInt32() == 2 && state.GetProperty("Status").GetString() == "exited") break;
            await Task.Delay(100);
        }
        Assert.Equal("exited", state.GetProperty("Status").GetString());
        Assert.Equal(3, state.GetProperty("ExitCode").GetInt32());
        Assert.Equal(3, (await LogsAsync(Client, failing)).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // the run and two restarts

        string always = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sleep", "1000" }, HostConfig = new { RestartPolicy = new { Name = "always" } } });
        Assert.Equal(204, (await PostAsync($"/containers/{always}/start")).Status);
        int pid = (await Daemon.GetJsonAsync($"/containers/{always}/json")).GetProperty("State").GetProperty("Pid").GetInt32();
        System.Diagnostics.Process.Start("kill", ["-9", pid.ToString()])!.WaitForExit(); // dies on its own: restarted
        int newPid = 0;
        for (int i = 0; i < 100 && (newPid == 0 || newPid == pid); i++)
        {
            await Task.Delay(100);
            newPid = (await Daemon.GetJsonAsync($"/containers/{always}/json")).GetProperty("State").GetProperty("Pid").GetInt32();
        }
        Assert.NotEqual(pid, newPid);
        Assert.True(newPid > 0);
        Assert.Equal(204, (await PostAsync($"/containers/{always}/stop?t=1")).Status);
        await Task.Delay(500);
        JsonElement stopped = await Daemon.GetJsonAsync($"/containers/{always}/json");
        Assert.Equal("exited", stopped.GetProperty("State").GetProperty("Status").GetString()); // a stop holds the policy off

        using HttpResponseMessage both = await Client.PostAsJsonAsync("/containers/create", new { Image = "busybox", HostConfig = new { AutoRemove = true, RestartPolicy = new { Name = "always" } } });
        Assert.Equal(HttpStatusCode.BadRequest, both.StatusCode);
    }

    [Fact]
    public async Task Init_runs_docker_init_as_pid_1_with_the_command_as_its_child()
    {
        string id = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$" }, HostConfig = new { Init = true } });
        Assert.Equal(204, (await PostAsync($"/containers/{id}/start")).Status);
        Assert.Equal(0, await WaitAsync(id));
        string[] lines = (await LogsAsync(Client, id)).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("/sbin/docker-init -- sh -c", lines[0]);
        Assert.NotEqual("1", lines[1].Trim());
    }

    /// <summary>HostConfig.ConsoleSize (docker 23+ sends the client's terminal size at create) is the tty's size from the start.</summary>
    [Fact]
    public async Task A_tty_container_starts_with_the_console_size_given_at_create()
    {
        string id = await CreateAsync(Client, new { Image = "busybox", Tty = true, Cmd = new[] { "stty", "size" }, HostConfig = new { ConsoleSize = new[] { 30, 100 } } });
        Assert.Equal(204, (await PostAsync($"/containers/{id}/start")).Status);
        Assert.Equal(0, await WaitAsync(id));
        Assert.Equal("30 100", (await Client.GetStringAsync($"/containers/{id}/logs?stdout=1")).Trim());
    }

    /// <summary>
    /// berthd's default device rules as moby and runc order them: runc refused them before ("cannot punch hole
    /// in existing wildcard rule") because fuse's deny came after the mknod wildcard.
    /// The container has a cgroup parent of its own: the test run's other berthds remove the shared default
    /// parent (/berth) whenever none of their containers runs, and runc's mkdir -p of /berth/ID fails with
    /// ENOENT when that happens between its two levels (berth-runtime retries; runc does not) — a start
    /// failed that way once, as a 400 "no such file or directory", under a full run.
    /// </summary>
    [Fact]
    public async Task Containers_run_under_runc_too()
    {
        Assert.True(File.Exists("/usr/sbin/runc") || File.Exists("/usr/bin/runc"), "runc is not installed (apt-get install runc)");
        string parent = "berth-test-runc-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            string id = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "head -c 4 /dev/zero | wc -c" }, HostConfig = new { Runtime = "runc", CgroupParent = "/" + parent } });
            var (status, body) = await PostAsync($"/containers/{id}/start");
            Assert.True(status == 204, $"start under runc: {status} {body}");
            Assert.Equal(0, await WaitAsync(id));
            Assert.Equal("4", (await LogsAsync(Client, id)).Out.Trim());
        }
        finally
        {
            DaemonDefaultsTests.RemoveCgroupParents(parent);
        }
    }

    [Theory]
    [InlineData("{\"BlkioWeight\": 300}", "BlkioWeight: this setting not supported")]
    [InlineData("{\"Memory\": -5}", "invalid memory limit")]
    [InlineData("{\"RestartPolicy\": {\"Name\": \"sometimes\"}}", "invalid restart policy 'sometimes'")]
    [InlineData("{\"Memory\": 67108864, \"MemorySwap\": 33554432}", "Minimum memoryswap limit should be larger than memory limit")]
    [InlineData("[1]", "invalid JSON")]
    public async Task Update_refuses_what_it_cannot_apply_with_a_400_naming_it(string body, string message)
    {
        string id = await CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "true" } });
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using HttpResponseMessage r = await Client.PostAsync($"/containers/{id}/update", content);
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == System.Net.HttpStatusCode.BadRequest, text);
        Assert.Contains(message, text);
        using HttpResponseMessage missing = await Client.PostAsync("/containers/nosuch/update", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Without_userns_remap_only_the_hosts_user_namespace_is_served()
    {
        await CreateAsync(Client, new { Image = "busybox", HostConfig = new { UsernsMode = "host" } });
        using HttpResponseMessage r = await Client.PostAsJsonAsync("/containers/create", new { Image = "busybox", HostConfig = new { UsernsMode = "private" } });
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.BadRequest, text);
        Assert.Contains("HostConfig.UsernsMode", text);
        Assert.Contains("berthd runs without --userns-remap", text);
        using JsonDocument info = JsonDocument.Parse(await Client.GetStringAsync("/info"));
        Assert.DoesNotContain("name=userns", info.RootElement.GetProperty("SecurityOptions").EnumerateArray().Select(e => e.GetString()));
    }
}
