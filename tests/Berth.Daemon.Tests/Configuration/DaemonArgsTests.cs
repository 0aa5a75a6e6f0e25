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
}
