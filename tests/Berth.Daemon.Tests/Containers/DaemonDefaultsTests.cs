using Berth.Daemon.Configuration;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// berthd's defaults for what a container does not set, as dockerd takes them: <c>--log-driver</c> /
/// <c>--log-opt</c>, <c>--default-ulimit</c>, <c>--default-shm-size</c>, <c>--dns*</c>,
/// <c>--cgroup-parent</c>, <c>--seccomp-profile</c> (flags or daemon.json). Checked through the real docker CLI; each test's
/// daemon force-removes its containers at the end.
/// </summary>
public sealed class DaemonDefaultsTests
{
    private static async Task<(DaemonScope Daemon, DockerCli Docker)> StartAsync(TempDirectory dir, params string[] args)
    {
        DaemonOptions parsed = DaemonArgs.Parse(args).Options;
        DaemonScope daemon = await DaemonScope.StartAsync(o => o with
        {
            LogDriver = parsed.LogDriver, LogOpts = parsed.LogOpts, DefaultUlimits = parsed.DefaultUlimits, DefaultShmSize = parsed.DefaultShmSize,
            Dns = parsed.Dns, DnsSearch = parsed.DnsSearch, DnsOptions = parsed.DnsOptions, CgroupParent = parsed.CgroupParent,
            SeccompProfilePath = parsed.SeccompProfilePath, SeccompProfile = parsed.SeccompProfile,
            CpuRealtimePeriod = parsed.CpuRealtimePeriod, CpuRealtimeRuntime = parsed.CpuRealtimeRuntime,
        });
        await daemon.ImportBusyboxAsync("busybox:latest");
        string binary = (string)Assert.Single(DockerCli.Installed().Take(1))[0];
        return (daemon, new DockerCli(binary, daemon.DockerHost, dir.CreateSubdirectory("docker-config")));
    }

    [Fact]
    public async Task The_daemons_log_options_fill_in_what_a_container_leaves_out()
    {
        using var dir = new TempDirectory("log-defaults");
        string config = dir.Combine("daemon.json");
        File.WriteAllText(config, """{ "log-opts": { "max-size": "2k", "max-file": "2" } }""");
        var (daemon, docker) = await StartAsync(dir, "--config-file", config);
        await using (daemon)
        {
            string id = docker.Ok("run", "-d", "busybox", "sh", "-c", "seq 3000").Trim();
            Assert.Equal("0\n", docker.Ok("wait", id));
            Assert.Equal("{\"Type\":\"json-file\",\"Config\":{\"max-file\":\"2\",\"max-size\":\"2k\"}}\n",
                docker.Ok("inspect", "-f", "{{json .HostConfig.LogConfig}}", id));
            // Rotated at 2 KiB into at most 2 files: the log keeps the end of the output only.
            string logs = docker.Ok("logs", id);
            Assert.EndsWith("2999\n3000\n", logs);
            Assert.DoesNotContain("\n1\n", "\n" + logs);
            string[] files = Directory.GetFiles(Path.Combine(daemon.Options.DataRoot, "containers", id), id + "-json.log*");
            Assert.True(files.Length <= 2, string.Join(' ', files));

            // A container's own options win; another driver gets none of the daemon's.
            string own = docker.Ok("create", "--log-opt", "max-size=5m", "busybox", "true").Trim();
            Assert.Equal("{\"max-file\":\"2\",\"max-size\":\"5m\"}\n", docker.Ok("inspect", "-f", "{{json .HostConfig.LogConfig.Config}}", own));
            string none = docker.Ok("create", "--log-driver", "none", "busybox", "true").Trim();
            Assert.Equal("none {}\n", docker.Ok("inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}", none));
        }
    }

    /// <summary>What dockerd's create writes into HostConfig, as `docker inspect` shows it (dockerd 20.10 checked by hand).</summary>
    [Fact]
    public async Task Create_records_dockerds_defaults_and_unlimited_as_null()
    {
        using var dir = new TempDirectory("create-defaults");
        var (daemon, docker) = await StartAsync(dir);
        await using (daemon)
        {
            const string Format = "{{json .HostConfig.ShmSize}} {{json .HostConfig.PidsLimit}} {{json .HostConfig.MemorySwappiness}} {{json .HostConfig.MaskedPaths}} {{json .HostConfig.ReadonlyPaths}}";
            // docker 23+ sends MemorySwappiness -1 and PidsLimit 0 when neither is given.
            string plain = docker.Ok("create", "busybox", "true").Trim();
            Assert.Equal("67108864 null null "
                + "[\"/proc/asound\",\"/proc/acpi\",\"/proc/interrupts\",\"/proc/kcore\",\"/proc/keys\",\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_stats\",\"/proc/sched_debug\",\"/proc/scsi\",\"/sys/firmware\",\"/sys/devices/virtual/powercap\"] "
                + "[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\",\"/proc/sysrq-trigger\"]\n", docker.Ok("inspect", "-f", Format, plain));
            string privileged = docker.Ok("create", "--privileged", "--pids-limit", "-1", "busybox", "true").Trim();
            Assert.Equal("67108864 null null null null\n", docker.Ok("inspect", "-f", Format, privileged));
            string unconfined = docker.Ok("create", "--security-opt", "systempaths=unconfined", "--pids-limit", "50", "--memory-swappiness", "0", "--shm-size", "8m", "busybox", "true").Trim();
            Assert.Equal("8388608 50 0 [] []\n", docker.Ok("inspect", "-f", Format, unconfined));
            string limited = docker.Ok("create", "-m", "64m", "busybox", "true").Trim();
            Assert.Equal("67108864 134217728\n", docker.Ok("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}", limited));
            // Recorded, the defaults are what the container gets.
            Assert.Equal("shm 65536 ro\n", docker.Ok("run", "--rm", "busybox", "sh", "-c",
                "df -k /dev/shm | awk 'NR==2 {print $1, $2}' | tr '\\n' ' '; grep -q ' /proc/sys [^ ]* ro,' /proc/mounts && echo ro"));
        }
    }

    [Fact]
    public async Task A_daemon_with_the_none_driver_keeps_no_logs()
    {
        using var dir = new TempDirectory("log-defaults");
        var (daemon, docker) = await StartAsync(dir, "--log-driver", "none");
        await using (daemon)
        {
            Assert.Equal("none\n", docker.Ok("info", "-f", "{{.LoggingDriver}}"));
            Assert.Equal("hello\n", docker.Ok("run", "--name", "quiet", "busybox", "echo", "hello"));
            var (exit, _, error) = docker.Run("logs", "quiet");
            Assert.NotEqual(0, exit);
            Assert.Contains("configured logging driver does not support reading", error);
        }
    }

    [Fact]
    public async Task Ulimits_shm_size_dns_and_cgroup_parent_fill_in_what_a_container_leaves_out()
    {
        using var dir = new TempDirectory("daemon-defaults");
        string parent = "berth-defaults-test-" + Guid.NewGuid().ToString("N")[..8];
        var (daemon, docker) = await StartAsync(dir, "--default-ulimit", "nofile=1234:2345", "--default-shm-size", "32m",
            "--dns", "192.0.2.53", "--dns-search", "example.test", "--dns-opt", "ndots:2", "--cgroup-parent", "/" + parent);
        try
        {
            await using (daemon)
            {
                string script = "ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1; grep -v '^#' /etc/resolv.conf; grep -c " + parent + " /proc/self/cgroup";
                string[] lines = docker.Ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", script).Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal(["1234", "2345"], lines[..2]);
                Assert.Equal("32768", lines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
                Assert.Contains("nameserver 192.0.2.53", lines);
                Assert.Contains("search example.test", lines);
                Assert.Contains("options ndots:2", lines);
                Assert.NotEqual("0", lines[^1]);

                // What the container sets itself stays; each DNS setting stands on its own.
                lines = docker.Ok("run", "--rm", "--network", "none", "--ulimit", "nofile=100:200", "--shm-size", "8m", "--dns", "198.51.100.1",
                    "busybox", "sh", "-c", "ulimit -n; df -k /dev/shm | tail -1; grep -v '^#' /etc/resolv.conf").Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal("100", lines[0]);
                Assert.Equal("8192", lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
                Assert.Contains("nameserver 198.51.100.1", lines);
                Assert.DoesNotContain("nameserver 192.0.2.53", lines);
                Assert.Contains("search example.test", lines);
            }
        }
        finally
        {
            // The parent is the administrator's, as with dockerd: berthd leaves it.
            RemoveCgroupParents(parent);
        }
    }

    private const string DenyMkdir = """
        { "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }] }
        """;

    [Fact]
    public async Task The_daemons_profile_filters_the_containers_that_name_none()
    {
        using var dir = new TempDirectory("seccomp-profile");
        string path = dir.Combine("profile.json");
        File.WriteAllText(path, DenyMkdir);
        var (daemon, docker) = await StartAsync(dir, "--seccomp-profile", path);
        await using (daemon)
        {
            Assert.Contains($"\"name=seccomp,profile={path}\"", docker.Ok("info", "-f", "{{json .SecurityOptions}}"));
            Assert.Equal("1\n", docker.Ok("run", "--rm", "busybox", "sh", "-c", "mkdir /made 2>/dev/null; echo $?"));
            Assert.Equal("1\n", docker.Ok("run", "--rm", "--security-opt", "seccomp=builtin", "busybox", "sh", "-c", "mkdir /made 2>/dev/null; echo $?"));
            Assert.Equal("0\n", docker.Ok("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", "mkdir /made 2>/dev/null; echo $?"));
        }
    }

    [Fact]
    public async Task An_unconfined_daemon_filters_only_containers_that_ask()
    {
        using var dir = new TempDirectory("seccomp-profile");
        var (daemon, docker) = await StartAsync(dir, "--seccomp-profile", "unconfined");
        await using (daemon)
        {
            Assert.Contains("\"name=seccomp,profile=unconfined\"", docker.Ok("info", "-f", "{{json .SecurityOptions}}"));
            Assert.Equal("Seccomp:\t0\n", docker.Ok("run", "--rm", "busybox", "grep", "^Seccomp:", "/proc/self/status"));
            Assert.Equal("Seccomp:\t2\n", docker.Ok("run", "--rm", "--security-opt", "seccomp=builtin", "busybox", "grep", "^Seccomp:", "/proc/self/status"));
        }
    }

    /// <summary>
    /// <c>--cpu-rt-runtime</c>: with berthd's own <c>--cpu-rt-runtime</c> the container's parent group
    /// gets that budget and the container its share; without it the runtime's write is refused and
    /// the start (or an update of a running container) fails naming the file. On a host without real-time group scheduling (cgroup v2, or a
    /// kernel without it) the setting is discarded with dockerd's warning instead.
    /// </summary>
    [Fact]
    public async Task Real_time_cpu_runtime_takes_the_daemons_budget()
    {
        using var dir = new TempDirectory("daemon-rt");
        string parent = "berth-rt-test-" + Guid.NewGuid().ToString("N")[..8];
        bool supported = File.Exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us");
        try
        {
            var (daemon, docker) = await StartAsync(dir, "--cgroup-parent", "/" + parent, "--cpu-rt-runtime", "20000");
            await using (daemon)
            {
                var (exit, output, error) = docker.Run("run", "-d", "--cpu-rt-runtime", "10000", "busybox", "sleep", "100");
                Assert.True(exit == 0, error);
                string id = output.Trim();
                if (!supported)
                {
                    Assert.Contains("Your kernel does not support cgroup cpu real-time runtime. Runtime discarded.", error);
                    return;
                }
                Assert.Equal("20000", File.ReadAllText($"/sys/fs/cgroup/cpu/{parent}/cpu.rt_runtime_us").Trim());
                Assert.Equal("10000", File.ReadAllText($"/sys/fs/cgroup/cpu/{parent}/{id}/cpu.rt_runtime_us").Trim());
                (exit, _, error) = docker.Run("run", "--rm", "--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000", "busybox", "true");
                Assert.NotEqual(0, exit);
                Assert.Contains("cpu real-time runtime cannot be higher than cpu real-time period", error);
                docker.Ok("rm", "-f", id);
            }

            using var other = new TempDirectory("daemon-rt");
            var (plain, plainDocker) = await StartAsync(other, "--cgroup-parent", "/" + parent + "-none");
            await using (plain)
            {
                var (exit, _, error) = plainDocker.Run("run", "--rm", "--cpu-rt-runtime", "10000", "busybox", "true");
                Assert.NotEqual(0, exit);
                Assert.Contains("cpu.rt_runtime_us", error);
                // So is an update of a running container's; its record keeps what it had.
                string id = plainDocker.Ok("run", "-d", "busybox", "sleep", "100").Trim();
                (exit, _, error) = plainDocker.Run("update", "--cpu-rt-runtime", "10000", id);
                Assert.NotEqual(0, exit);
                Assert.Contains("cpu.rt_runtime_us", error);
                Assert.Equal("0\n", plainDocker.Ok("inspect", "-f", "{{.HostConfig.CpuRealtimeRuntime}}", id));
                plainDocker.Ok("rm", "-f", id);
            }
        }
        finally
        {
            RemoveCgroupParents(parent, parent + "-none");
        }
    }

    /// <summary>
    /// <c>docker update --cpu-rt-period/--cpu-rt-runtime</c> of a running container started without
    /// them: its group's parents get berthd's budget first, then the group its values (a period
    /// below the group's old runtime included); a runtime above the period, given or kept, is
    /// refused and changes nothing; a stopped container gets its new values at its next start.
    /// </summary>
    [Fact]
    public async Task Update_gives_a_running_container_a_real_time_runtime()
    {
        using var dir = new TempDirectory("daemon-rt-update");
        string parent = "berth-rt-update-test-" + Guid.NewGuid().ToString("N")[..8];
        bool supported = File.Exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us");
        try
        {
            var (daemon, docker) = await StartAsync(dir, "--cgroup-parent", "/" + parent, "--cpu-rt-runtime", "20000");
            await using (daemon)
            {
                string id = docker.Ok("run", "-d", "busybox", "sleep", "100").Trim();
                var (exit, output, error) = docker.Run("update", "--cpu-rt-runtime", "10000", id);
                Assert.True(exit == 0, error);
                string Realtime() => docker.Ok("inspect", "-f", "{{.HostConfig.CpuRealtimePeriod}} {{.HostConfig.CpuRealtimeRuntime}}", id);
                if (!supported)
                {
                    Assert.Contains("Your kernel does not support cgroup cpu real-time runtime. Runtime discarded.", output);
                    Assert.Equal("0 0\n", Realtime());
                    return;
                }
                string Group(string file) => File.ReadAllText($"/sys/fs/cgroup/cpu/{parent}/{id}/{file}").Trim();
                Assert.Equal("20000", File.ReadAllText($"/sys/fs/cgroup/cpu/{parent}/cpu.rt_runtime_us").Trim());
                Assert.Equal("10000", Group("cpu.rt_runtime_us"));
                Assert.Equal("0 10000\n", Realtime());

                // A period below the runtime the group has: the runtime goes in first.
                docker.Ok("update", "--cpu-rt-period", "10000", "--cpu-rt-runtime", "100", id);
                Assert.Equal(("10000", "100"), (Group("cpu.rt_period_us"), Group("cpu.rt_runtime_us")));
                Assert.Equal("10000 100\n", Realtime());

                foreach (string[] flags in new[] { new[] { "--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000" }, ["--cpu-rt-runtime", "20000"] })
                {
                    (exit, _, error) = docker.Run(["update", .. flags, id]);
                    Assert.True(exit != 0, string.Join(' ', flags));
                    Assert.Contains("cpu real-time runtime cannot be higher than cpu real-time period", error);
                }
                Assert.Equal("10000 100\n", Realtime());
                Assert.Equal("100", Group("cpu.rt_runtime_us"));

                docker.Ok("stop", "-t", "0", id);
                docker.Ok("update", "--cpu-rt-runtime", "150", id);
                docker.Ok("start", id);
                Assert.Equal(("10000", "150"), (Group("cpu.rt_period_us"), Group("cpu.rt_runtime_us")));
                docker.Ok("rm", "-f", id);
            }
        }
        finally
        {
            RemoveCgroupParents(parent);
        }
    }

    /// <summary>Removes a test's cgroup parents (and the groups left in them) from every hierarchy.</summary>
    internal static void RemoveCgroupParents(params string[] names)
    {
        foreach (string name in names)
            foreach (string group in Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup").Select(d => Path.Combine(d, name)).Where(Directory.Exists))
                foreach (string child in Directory.GetDirectories(group).Append(group))
                    try { Directory.Delete(child); } catch (IOException) { }
    }
}
