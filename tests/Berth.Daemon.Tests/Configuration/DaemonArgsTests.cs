using Berth.Daemon.Configuration;

namespace Berth.Daemon.Tests.Configuration;

public sealed class DaemonArgsTests
{
    [Fact]
    public void Defaults_are_dockerds_with_berth_paths()
    {
        DaemonOptions o = DaemonArgs.Parse([]).Options;
        Assert.Equal("/var/lib/berth", o.DataRoot);
        Assert.Equal("/run/berth", o.ExecRoot);
        Assert.Equal(["unix:///run/berth/berth.sock"], o.Hosts);
    }

    [Fact]
    public void Flags_in_both_spellings_and_repeatable_hosts()
    {
        DaemonOptions o = DaemonArgs.Parse(["--data-root=/tmp/d", "--exec-root", "/tmp/e", "-H", "unix:///tmp/a.sock", "--host=unix:///tmp/b.sock",
            "--pidfile", "/tmp/p.pid", "--insecure-registry", "reg:5000", "-l", "debug"]).Options;
        Assert.Equal("/tmp/d", o.DataRoot);
        Assert.Equal("/tmp/e", o.ExecRoot);
        Assert.Equal(["unix:///tmp/a.sock", "unix:///tmp/b.sock"], o.Hosts);
        Assert.Equal("/tmp/p.pid", o.PidFile);
        Assert.Equal(["reg:5000"], o.InsecureRegistries);
        Assert.Equal("debug", o.LogLevel);
    }

    [Fact]
    public void A_seccomp_profile_is_read_and_checked_at_start()
    {
        using var dir = new TempDirectory("seccomp-args");
        Assert.Equal("builtin", DaemonArgs.Parse([]).Options.SeccompProfilePath);
        Assert.Null(DaemonArgs.Parse(["--seccomp-profile", "unconfined"]).Options.SeccompProfile);

        string good = dir.Combine("good.json");
        File.WriteAllText(good, """{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "name": "mkdir", "action": "SCMP_ACT_ERRNO" }] }""");
        DaemonOptions o = DaemonArgs.Parse(["--seccomp-profile", good]).Options;
        Assert.Equal(good, o.SeccompProfilePath);
        Assert.NotNull(o.SeccompProfile);

        string missing = dir.Combine("missing.json");
        Assert.StartsWith($"opening seccomp profile ({missing}) failed", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--seccomp-profile", missing])).Message);
        string bad = dir.Combine("bad.json");
        File.WriteAllText(bad, """{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{ "index": 9, "op": "SCMP_CMP_EQ" }] }] }""");
        Assert.Contains("args[0].index: 9 is out of range", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--seccomp-profile", bad])).Message);

        string config = dir.Combine("daemon.json");
        File.WriteAllText(config, $$"""{ "seccomp-profile": "{{good}}" }""");
        Assert.NotNull(DaemonArgs.Parse(["--config-file", config]).Options.SeccompProfile);
    }

    [Fact]
    public void Log_driver_and_options_as_flags_or_in_the_file_are_checked()
    {
        DaemonOptions o = DaemonArgs.Parse(["--log-opt", "max-size=1m", "--log-opt=max-file=4"]).Options;
        Assert.Equal("json-file", o.LogDriver);
        Assert.Equal(new Dictionary<string, string> { ["max-size"] = "1m", ["max-file"] = "4" }, o.LogOpts);
        Assert.Equal("none", DaemonArgs.Parse(["--log-driver", "none"]).Options.LogDriver);

        Assert.Contains("the `splunk` logging driver is not served", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-driver", "splunk"])).Message);
        Assert.Contains("gelf-address is a required parameter", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-driver", "gelf"])).Message);
        Assert.Equal("fluentd", DaemonArgs.Parse(["--log-driver", "fluentd", "--log-opt", "fluentd-async=true"]).Options.LogDriver);
        Assert.Equal("syslog", DaemonArgs.Parse(["--log-driver", "syslog", "--log-opt", "syslog-format=rfc5424"]).Options.LogDriver);
        Assert.Contains("Invalid syslog format", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-driver", "syslog", "--log-opt", "syslog-format=x"])).Message);
        Assert.Contains("unknown log opt 'gzip'", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-opt", "gzip=true"])).Message);
        Assert.Equal("true", DaemonArgs.Parse(["--log-opt", "compress=true"]).Options.LogOpts["compress"]); // json-file's too
        Assert.Contains("compress cannot be true when max-file is less than 2", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-opt", "compress=1", "--log-opt", "max-file=1"])).Message);
        Assert.Contains("invalid log opt max-size `lots`", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-opt", "max-size=lots"])).Message);
        Assert.Equal("1.5MiB", DaemonArgs.Parse(["--log-opt", "max-size=1.5MiB"]).Options.LogOpts["max-size"]);
        Assert.Contains("invalid log opt max-size `0`", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-opt", "max-size=0"])).Message);
        Assert.Contains("invalid --log-opt `max-size`", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-opt", "max-size"])).Message);
        Assert.Contains("the none driver takes no options", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-driver", "none", "--log-opt", "max-file=2"])).Message);
        // Every driver's mode: non-blocking with its buffer's size, checked as dockerd checks it.
        Assert.Equal("64k", DaemonArgs.Parse(["--log-driver", "local", "--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=64k"]).Options.LogOpts["max-buffer-size"]);
        Assert.Contains("error parsing option max-buffer-size: invalid size: 'x'",
            Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=x"])).Message);
        Assert.Contains("max-buffer-size option is only supported with 'mode=non-blocking'",
            Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-opt", "max-buffer-size=1m"])).Message);

        // The local driver: its own options and dockerd's errors for them.
        DaemonOptions local = DaemonArgs.Parse(["--log-driver", "local", "--log-opt", "max-size=1m", "--log-opt", "compress=false", "--log-opt", "max-file=1"]).Options;
        Assert.Equal(("local", "false"), (local.LogDriver, local.LogOpts["compress"]));
        Assert.Contains("unknown log opt 'tag' for log driver local", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-driver", "local", "--log-opt", "tag=x"])).Message);
        Assert.Contains("compression cannot be enabled when max file count is 1",
            Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-driver", "local", "--log-opt", "max-file=1"])).Message);
        Assert.Contains("invalid value for max-size: 1x", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--log-driver", "local", "--log-opt", "max-size=1x"])).Message);

        using var dir = new TempDirectory("config");
        string config = dir.Combine("daemon.json");
        File.WriteAllText(config, """{ "log-driver": "json-file", "log-opts": { "max-file": "5" } }""");
        Assert.Equal("5", DaemonArgs.Parse(["--config-file", config]).Options.LogOpts["max-file"]);
        Assert.Contains("log-opts", Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--config-file", config, "--log-opt", "max-file=1"])).Message);
    }

    [Fact]
    public void Dockerds_other_daemon_json_keys_are_taken_or_refused_by_name()
    {
        using var dir = new TempDirectory("config");
        string config = dir.Combine("daemon.json");
        File.WriteAllText(config, """
            { "debug": true, "live-restore": true, "storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"],
              "default-ulimits": { "nofile": { "Name": "nofile", "Soft": 1024, "Hard": 2048 } }, "default-shm-size": "128M",
              "dns": ["192.0.2.1"], "dns-search": ["example.test"], "dns-opts": ["ndots:1"], "cgroup-parent": "/mine" }
            """);
        DaemonOptions o = DaemonArgs.Parse(["--config-file", config]).Options;
        Assert.Equal("debug", o.LogLevel);
        Assert.Equal([new DefaultUlimit("nofile", 1024, 2048)], o.DefaultUlimits);
        Assert.Equal(128L << 20, o.DefaultShmSize);
        Assert.Equal(["192.0.2.1"], o.Dns);
        Assert.Equal(["example.test"], o.DnsSearch);
        Assert.Equal(["ndots:1"], o.DnsOptions);
        Assert.Equal("/mine", o.CgroupParent);
        Assert.Equal([new DefaultUlimit("nproc", 10, 20)], DaemonArgs.Parse(["--default-ulimit", "nproc=10:20"]).Options.DefaultUlimits);
        Assert.Equal("debug", DaemonArgs.Parse(["-D"]).Options.LogLevel);

        string Refused(params string[] args) => Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(args)).Message;
        Assert.Contains("live-restore cannot be turned off", Refused("--live-restore=false"));
        Assert.Contains("invalid value \"maybe\" for flag --live-restore", Refused("--live-restore=maybe"));
        Assert.Contains("invalid value \"yes\" for flag --debug", Refused("--debug=yes"));
        Assert.Contains("storage-driver `vfs` is not served", Refused("--storage-driver", "vfs"));
        Assert.Contains("native.cgroupdriver=cgroupfs is the only driver", Refused("--exec-opt", "native.cgroupdriver=systemd"));
        Assert.Contains("invalid default-ulimit name `files`", Refused("--default-ulimit", "files=1:2"));
        Assert.Contains("soft limit 20 is above the hard limit 10", Refused("--default-ulimit", "nofile=20:10"));
        Assert.Contains("invalid default-shm-size `big`", Refused("--default-shm-size", "big"));
        Assert.Contains("invalid default-shm-size `0`", Refused("--default-shm-size", "0"));
        Assert.Contains("invalid default-shm-size ` 64m`", Refused("--default-shm-size", " 64m"));
        Assert.Equal(3L << 29, DaemonArgs.Parse(["--default-shm-size", "1.5g"]).Options.DefaultShmSize);
        Assert.Equal(10L << 20, DaemonArgs.Parse(["--default-shm-size", "10 mb"]).Options.DefaultShmSize);
        Assert.Contains("invalid dns `dns.example`", Refused("--dns", "dns.example"));
        Assert.Contains("invalid cgroup-parent `/a/../b`", Refused("--cgroup-parent", "/a/../b"));

        File.WriteAllText(config, """{ "cpu-rt-period": 1000000, "cpu-rt-runtime": 950000 }""");
        DaemonOptions rt = DaemonArgs.Parse(["--config-file", config]).Options;
        Assert.Equal((1000000L, 950000L), (rt.CpuRealtimePeriod, rt.CpuRealtimeRuntime));
        Assert.Contains("cpu-rt-runtime 2000 is above cpu-rt-period 1000", Refused("--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000"));
        Assert.Contains("invalid cpu-rt-runtime `lots`", Refused("--cpu-rt-runtime", "lots"));
    }

    [Fact]
    public void Plain_tcp_is_refused_with_a_reason()
    {
        var e = Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["-H", "tcp://0.0.0.0:2375"]));
        Assert.Contains("without TLS", e.Message);
    }

    [Fact]
    public void Tcp_with_tls_is_accepted()
    {
        DaemonOptions o = DaemonArgs.Parse(["-H", "tcp://127.0.0.1:2376", "--tlscert", "/c.pem", "--tlskey", "/k.pem"]).Options;
        ListenAddress a = ListenAddress.Parse(o.Hosts[0], o.Tls);
        Assert.Equal(ListenKind.Tcp, a.Kind);
        Assert.Equal(2376, a.Port);
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("-H", "http://x")]
    [InlineData("--log-level", "loud")]
    [InlineData("--data-root")]
    [InlineData("--tlsverify", "--tlscert", "/c", "--tlskey", "/k")]
    public void Bad_flags_are_refused(params string[] args)
        => Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(args));

    [Fact]
    public void Config_file_is_read_and_conflicts_and_unknown_keys_refused()
    {
        using var dir = new TempDirectory("config");
        string file = dir.Combine("daemon.json");
        File.WriteAllText(file, """{"data-root": "/tmp/x", "hosts": ["unix:///tmp/x.sock"], "insecure-registries": ["r:1"], "log-level": "warn"}""");
        DaemonOptions o = DaemonArgs.Parse(["--config-file", file]).Options;
        Assert.Equal("/tmp/x", o.DataRoot);
        Assert.Equal(["unix:///tmp/x.sock"], o.Hosts);
        Assert.Equal(["r:1"], o.InsecureRegistries);
        Assert.Equal("warn", o.LogLevel);

        var conflict = Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--config-file", file, "--data-root", "/tmp/y"]));
        Assert.Contains("both as a flag and in the configuration file", conflict.Message);

        File.WriteAllText(file, """{"debug-everything": true}""");
        Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--config-file", file]));
    }

    [Fact]
    public void Runtimes_are_added_by_flag_and_file_and_the_default_runtime_chosen_among_them()
    {
        using var dir = new TempDirectory("config");
        string file = dir.Combine("daemon.json");
        File.WriteAllText(file, """{"runtimes": {"fast": {"path": "/opt/fast", "runtimeArgs": ["--debug"]}}, "default-runtime": "fast"}""");
        DaemonOptions o = DaemonArgs.Parse(["--config-file", file, "--add-runtime", "other=crun"]).Options;
        Assert.Equal("fast", o.DefaultRuntime);
        Assert.Equal("/opt/fast", o.Runtimes["fast"].Path);
        Assert.Equal(["--debug"], o.Runtimes["fast"].Args);
        Assert.Equal("crun", o.Runtimes["other"].Path);
        Assert.Empty(o.Runtimes["other"].Args);
        Assert.Null(o.RuntimePath("fast")); // /opt/fast does not exist: the runtime is unusable, not guessed
        Assert.Equal("berth-runtime", DaemonArgs.Parse([]).Options.DefaultRuntime);
    }

    [Theory]
    [InlineData("invalid --add-runtime", "--add-runtime", "nopath")]
    [InlineData("reserved", "--add-runtime", "runc=/usr/bin/runc")]
    [InlineData("reserved", "--add-runtime", "berth-runtime=/x")]
    [InlineData("invalid runtime name", "--add-runtime", "../escape=/x")]
    [InlineData("invalid runtime name", "--add-runtime", "a/b=/x")]
    [InlineData("no path given", "--add-runtime", "a=")]
    [InlineData("more than once", "--add-runtime", "a=/x", "--add-runtime", "a=/y")]
    [InlineData("not a known runtime", "--default-runtime", "nosuch")]
    public void Bad_runtimes_are_refused_with_the_reason(string reason, params string[] args)
        => Assert.Contains(reason, Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(args)).Message);
}
