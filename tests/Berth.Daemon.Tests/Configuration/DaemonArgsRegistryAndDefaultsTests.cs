using Berth.Daemon.Configuration;

namespace Berth.Daemon.Tests.Configuration;

/// <summary>
/// dockerd's registry mirror, transfer and container-default settings as flags and daemon.json
/// keys: parsed, normalised and refused as dockerd does.
/// </summary>
public sealed class DaemonArgsRegistryAndDefaultsTests
{
    private static DaemonConfigException Refused(params string[] args) => Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(args));

    private static DaemonOptions FromFile(TempDirectory dir, string json)
    {
        string config = dir.Combine("daemon.json");
        File.WriteAllText(config, json);
        return DaemonArgs.Parse(["--config-file", config]).Options;
    }

    private static DaemonConfigException RefusedFile(TempDirectory dir, string json, params string[] args)
    {
        string config = dir.Combine("daemon.json");
        File.WriteAllText(config, json);
        return Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--config-file", config, .. args]));
    }

    [Fact]
    public void Registry_mirrors_are_normalised_with_a_trailing_slash_in_order()
    {
        Assert.Empty(DaemonArgs.Parse([]).Options.RegistryMirrors);
        DaemonOptions o = DaemonArgs.Parse(["--registry-mirror", "https://mirror.example", "--registry-mirror=http://127.0.0.1:5000/"]).Options;
        Assert.Equal(["https://mirror.example/", "http://127.0.0.1:5000/"], o.RegistryMirrors);

        using var dir = new TempDirectory("mirrors");
        Assert.Equal(["http://[::1]:5000/"], FromFile(dir, """{ "registry-mirrors": ["http://[::1]:5000"] }""").RegistryMirrors);
        Assert.StartsWith("the following directives are specified both as a flag and in the configuration file: registry-mirrors",
            RefusedFile(dir, """{ "registry-mirrors": ["http://a.example"] }""", "--registry-mirror", "http://b.example").Message);
    }

    [Fact]
    public void A_bad_mirror_is_refused_in_dockerds_words()
    {
        Assert.Equal("invalid argument \"foo\" for \"--registry-mirror\" flag: invalid mirror: unsupported scheme \"\" in \"foo\"\nSee 'berthd --help'.",
            Refused("--registry-mirror", "foo").Message);
        Assert.Contains("invalid mirror: unsupported scheme \"ftp\" in \"ftp://m.example\"", Refused("--registry-mirror", "ftp://m.example").Message);
        Assert.Contains("invalid mirror: path, query, or fragment at end of the URI \"http://a.b/x\"", Refused("--registry-mirror", "http://a.b/x").Message);
        Assert.Contains("invalid mirror: path, query, or fragment at end of the URI \"http://a.b/?q=1\"", Refused("--registry-mirror", "http://a.b/?q=1").Message);
        Assert.Contains("invalid mirror: username/password not allowed in URI \"https://u:xxxxx@a.b\"", Refused("--registry-mirror", "https://u:secret@a.b").Message);

        using var dir = new TempDirectory("mirrors");
        Assert.Equal("invalid mirror: path, query, or fragment at end of the URI \"https://m.example/v2\"",
            RefusedFile(dir, """{ "registry-mirrors": ["https://m.example/v2"] }""").Message);
    }

    [Fact]
    public void Transfer_settings_default_to_dockerds_and_are_checked_in_its_words()
    {
        DaemonOptions d = DaemonArgs.Parse([]).Options;
        Assert.Equal((3, 5, 5), (d.MaxConcurrentDownloads, d.MaxConcurrentUploads, d.MaxDownloadAttempts));
        DaemonOptions o = DaemonArgs.Parse(["--max-concurrent-downloads", "0", "--max-concurrent-uploads=2", "--max-download-attempts", "1"]).Options;
        Assert.Equal((0, 2, 1), (o.MaxConcurrentDownloads, o.MaxConcurrentUploads, o.MaxDownloadAttempts));

        using var dir = new TempDirectory("transfers");
        DaemonOptions f = FromFile(dir, """{ "max-concurrent-downloads": 6, "max-concurrent-uploads": 7, "max-download-attempts": 8 }""");
        Assert.Equal((6, 7, 8), (f.MaxConcurrentDownloads, f.MaxConcurrentUploads, f.MaxDownloadAttempts));

        Assert.Equal("invalid max concurrent downloads: -1", Refused("--max-concurrent-downloads", "-1").Message);
        Assert.Equal("invalid max concurrent uploads: -2", Refused("--max-concurrent-uploads", "-2").Message);
        Assert.Equal("invalid max download attempts: 0", Refused("--max-download-attempts", "0").Message);
        Assert.Equal("invalid max download attempts: 0", RefusedFile(dir, """{ "max-download-attempts": 0 }""").Message);
        Assert.Contains("invalid argument \"many\" for \"--max-concurrent-downloads\" flag", Refused("--max-concurrent-downloads", "many").Message);
        Assert.StartsWith("the following directives are specified both as a flag and in the configuration file: max-concurrent-uploads",
            RefusedFile(dir, """{ "max-concurrent-uploads": 1 }""", "--max-concurrent-uploads", "2").Message);
    }

    [Fact]
    public void Container_defaults_as_flags_or_in_the_file()
    {
        DaemonOptions d = DaemonArgs.Parse([]).Options;
        Assert.False(d.Init || d.NoNewPrivileges || d.Experimental);
        Assert.Equal((null, "private", 15), (d.DefaultCgroupnsMode, d.DefaultIpcMode, d.ShutdownTimeout));
        Assert.Empty(d.Labels);

        DaemonOptions o = DaemonArgs.Parse(["--init", "--no-new-privileges=true", "--experimental", "--default-cgroupns-mode", "private",
            "--default-ipc-mode=shareable", "--label", "tier=db", "--label=zone=a=b", "--label", "tier=db", "--shutdown-timeout", "-1"]).Options;
        Assert.True(o.Init && o.NoNewPrivileges && o.Experimental);
        Assert.Equal(("private", "shareable", -1), (o.DefaultCgroupnsMode, o.DefaultIpcMode, o.ShutdownTimeout));
        Assert.Equal(["tier=db", "zone=a=b"], o.Labels);
        Assert.False(DaemonArgs.Parse(["--init=false"]).Options.Init);

        using var dir = new TempDirectory("defaults");
        DaemonOptions f = FromFile(dir, """
            { "init": true, "no-new-privileges": true, "experimental": true, "default-cgroupns-mode": "host", "default-ipc-mode": "private",
              "labels": ["a=1", "b=2"], "shutdown-timeout": 3, "features": { "buildkit": false } }
            """);
        Assert.True(f.Init && f.NoNewPrivileges && f.Experimental);
        Assert.Equal(("host", "private", 3), (f.DefaultCgroupnsMode, f.DefaultIpcMode, f.ShutdownTimeout));
        Assert.Equal(["a=1", "b=2"], f.Labels);
        Assert.Equal("host", f.CgroupnsModeFor(cgroupV2: true));
        Assert.Equal("private", d.CgroupnsModeFor(cgroupV2: true));
        Assert.Equal("host", d.CgroupnsModeFor(cgroupV2: false));
    }

    [Fact]
    public void Bad_container_defaults_are_refused_in_dockerds_words()
    {
        Assert.Equal("default cgroup namespace mode (bogus) is invalid; use \"host\" or \"private\"", Refused("--default-cgroupns-mode", "bogus").Message);
        Assert.Equal("default IPC mode setting (host) is invalid; use \"shareable\" or \"private\"", Refused("--default-ipc-mode", "host").Message);
        Assert.Equal("invalid argument \"foo\" for \"--label\" flag: bad attribute format: foo\nSee 'berthd --help'.", Refused("--label", "foo").Message);
        Assert.Equal("conflict labels for a=c and a=b", Refused("--label", "a=b", "--label", "a=c").Message);
        Assert.Contains("invalid value \"maybe\" for flag --init", Refused("--init=maybe").Message);
        Assert.Contains("--init needs docker-init (tini)", Refused("--init", "--init-path", "/nonexistent/tini").Message);

        using var dir = new TempDirectory("defaults");
        Assert.Equal("bad attribute format: foo", RefusedFile(dir, """{ "labels": ["foo"] }""").Message);
        Assert.StartsWith("features: buildkit is not available: berthd has only the classic builder", RefusedFile(dir, """{ "features": { "buildkit": true } }""").Message);
        Assert.Contains("`containerd-snapshotter` is not a feature of berthd", RefusedFile(dir, """{ "features": { "containerd-snapshotter": true } }""").Message);
        Assert.Equal("the following directives are specified both as a flag and in the configuration file: init: (from flag: true, from file: false)",
            RefusedFile(dir, """{ "init": false }""", "--init").Message);
        Assert.Contains("unknown flag: --feature", Refused("--feature", "buildkit=true").Message);
    }
}
