using Berth.Daemon.Configuration;
using Berth.Daemon.Hosting;

namespace Berth.Daemon.Tests.Configuration;

/// <summary>
/// --userns-remap resolved as dockerd 20.10 resolves it (checked by hand: dockerd in a private mount namespace over a
/// copy of /etc): the user and group looked up, the user's subordinate ranges keyed by its uid, else by its name, every
/// one in file order; dockerd's words when something is missing, and a berthd that refuses to start creates nothing.
/// The test's own passwd, group, subuid and subgid files: the host's are never read or changed.
/// </summary>
public sealed class UsernsRemapTests : IDisposable
{
    private readonly TempDirectory _dir = new("userns-remap");

    public UsernsRemapTests()
    {
        File.WriteAllText(_dir.Combine("passwd"), "root:x:0:0:root:/root:/bin/bash\nremapper:x:1234:1234::/:/usr/sbin/nologin\nnogroupuser:x:1300:9999::/:/bin/false\ndockremap:x:999:999::/:/bin/false\n");
        File.WriteAllText(_dir.Combine("group"), "root:x:0:\nremapper:x:1234:\nother:x:4321:\ndockremap:x:999:\n");
        // remapper has ranges keyed by uid (two, taken in order) and one keyed by name (left out: the uid's lines win).
        File.WriteAllText(_dir.Combine("subuid"), "# comment\nroot:100000:65536\n1234:300000:65536\nremapper:900000:5\n1234:400000:10\n");
        File.WriteAllText(_dir.Combine("subgid"), "remapper:500000:65536\n");
    }

    public void Dispose() => _dir.Dispose();

    private UsernsRemap? Resolve(string value, out string? warning)
        => UsernsRemap.Resolve(value, _dir.Combine("passwd"), _dir.Combine("group"), _dir.Combine("subuid"), _dir.Combine("subgid"), out warning);

    private string Refused(string value) => Assert.Throws<DaemonConfigException>(() => Resolve(value, out _)).Message;

    [Theory]
    [InlineData("remapper")]
    [InlineData("remapper:remapper")]
    [InlineData("1234")]
    [InlineData("1234:1234")]
    [InlineData("remapper:4321")]
    public void Every_form_names_the_user_whose_ranges_map_the_container(string value)
    {
        UsernsRemap remap = Resolve(value, out string? warning)!;
        Assert.Null(warning);
        Assert.Equal(("remapper", 1234u), (remap.User, remap.Uid));
        Assert.Equal([(0u, 300000u, 65536u), (65536u, 400000u, 10u)], remap.UidMap.Select(m => (m.ContainerId, m.HostId, m.Size)));
        // The gid ranges are the user's too (keyed by name here, there being none by uid), whatever the group.
        Assert.Equal([(0u, 500000u, 65536u)], remap.GidMap.Select(m => (m.ContainerId, m.HostId, m.Size)));
        Assert.Equal("300000.500000", remap.DirectoryName);
        Assert.Equal(value.EndsWith("4321", StringComparison.Ordinal) ? "other" : "remapper", remap.Group);
    }

    [Fact]
    public void Missing_users_groups_and_ranges_are_refused_in_dockerds_words()
    {
        Assert.Equal("Error during uid lookup for \"nosuchuser\": getent unable to find entry \"nosuchuser\" in passwd database", Refused("nosuchuser"));
        Assert.Equal("Uid 99999 has no entry in /etc/passwd: getent unable to find entry \"99999\" in passwd database", Refused("99999"));
        Assert.Equal("Error during groupname lookup for \"nosuchgroup\": getent unable to find entry \"nosuchgroup\" in group database", Refused("remapper:nosuchgroup"));
        Assert.Equal("Gid 777 has no entry in /etc/passwd: getent unable to find entry \"777\" in group database", Refused("remapper:777"));
        // A user without a group of its name, and no group given.
        Assert.Equal("Error during gid lookup for \"nogroupuser\": getent unable to find entry \"nogroupuser\" in group database", Refused("nogroupuser"));
        Assert.Equal("Can't create ID mappings: no subuid ranges found for user \"dockremap\"", Refused("default"));
        File.AppendAllText(_dir.Combine("subuid"), "dockremap:600000:65536\n");
        Assert.Equal("Can't create ID mappings: no subgid ranges found for user \"dockremap\"", Refused("default"));
        File.AppendAllText(_dir.Combine("subgid"), "999:700000:65536\n");
        Assert.Equal("600000.700000", Resolve("default", out _)!.DirectoryName);
        File.WriteAllText(_dir.Combine("passwd"), "root:x:0:0:root:/root:/bin/bash\n");
        Assert.StartsWith("Error during uid lookup for \"dockremap\": getent unable to find entry \"dockremap\" in passwd database", Refused("default"));
    }

    [Fact]
    public void Root_turns_remapping_off_with_dockerds_warning()
    {
        Assert.Null(Resolve("root", out string? warning));
        Assert.Equal("User namespaces: root cannot be remapped with itself; user namespaces are OFF", warning);
        Assert.Null(Resolve("0:0", out _));
    }

    [Fact]
    public void The_flag_and_the_config_file_key_give_the_setting_and_not_both()
    {
        Assert.Null(DaemonArgs.Parse([]).Options.UsernsRemapSetting);
        Assert.Equal("remapper:other", DaemonArgs.Parse(["--userns-remap", "remapper:other"]).Options.UsernsRemapSetting);
        string config = _dir.Combine("daemon.json");
        File.WriteAllText(config, """{ "userns-remap": "1234" }""");
        Assert.Equal("1234", DaemonArgs.Parse(["--config-file", config]).Options.UsernsRemapSetting);
        Assert.Contains("userns-remap: (from flag: default, from file: 1234)",
            Assert.Throws<DaemonConfigException>(() => DaemonArgs.Parse(["--config-file", config, "--userns-remap=default"])).Message);
    }

    [Fact]
    public async Task A_daemon_whose_user_has_no_ranges_does_not_start_and_makes_nothing()
    {
        DaemonOptions options = DaemonScope.OptionsIn(_dir) with
        {
            UsernsRemapSetting = "nogroupuser:other",
            PasswdFile = _dir.Combine("passwd"),
            GroupFile = _dir.Combine("group"),
            SubuidFile = _dir.Combine("subuid"),
            SubgidFile = _dir.Combine("subgid"),
            Bridge = "none",
        };
        var e = await Assert.ThrowsAsync<DaemonConfigException>(() => DaemonHost.StartAsync(options));
        Assert.Equal("Can't create ID mappings: no subuid ranges found for user \"nogroupuser\"", e.Message);
        Assert.False(Directory.Exists(options.DataRoot));
        Assert.False(Directory.Exists(options.ExecRoot));
    }
}
