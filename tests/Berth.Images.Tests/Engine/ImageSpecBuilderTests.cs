using System.Text.Json;
using Berth.Images.Engine;
using Berth.Images.Manifests;
using Berth.Oci;

namespace Berth.Images.Tests.Engine;

public sealed class ImageSpecBuilderTests : IDisposable
{
    private readonly TempDirectory _root = new("rootfs");

    public ImageSpecBuilderTests()
    {
        Directory.CreateDirectory(_root.Combine("etc"));
        File.WriteAllText(_root.Combine("etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n");
        File.WriteAllText(_root.Combine("etc", "group"), "root:x:0:\nwww:x:33:\nlog:x:4:www\n");
    }

    public void Dispose() => _root.Dispose();

    private static ImageConfig Image(ContainerConfig config) => new()
    {
        Architecture = "amd64",
        OS = "linux",
        Created = new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero),
        Config = config,
    };

    private ImageSpec Build(ContainerConfig config, ContainerOverrides? o = null) => ImageSpecBuilder.Build(Image(config), _root.Path, o);

    private static readonly string[] Shell = ["/bin/sh", "-c", "echo hi"];

    [Theory]
    // Dockerfile's forms are already arrays in the config: CMD echo hi is ["/bin/sh","-c","echo hi"].
    [InlineData("", "sh -c|echo hi", "", "", null, "sh -c|echo hi")]
    [InlineData("top", "-b", "", "", null, "top -b")]                        // ENTRYPOINT ["top"] CMD ["-b"]
    [InlineData("top", "-b", "", "-H", null, "top -H")]                      // run args replace Cmd only
    [InlineData("top", "-b", "ls", "", null, "ls")]                          // --entrypoint drops the image's Cmd
    [InlineData("top", "-b", "ls", "-l", null, "ls -l")]
    [InlineData("top", "-b", "", "", "clear", "-b")]                          // --entrypoint "" clears it, Cmd stays
    [InlineData("top", "", "", "", null, "top")]
    [InlineData("", "ls", "", "cat /x", null, "cat /x")]
    public void Entrypoint_and_cmd_combine_as_docker_does(string entrypoint, string cmd, string overEntrypoint, string overCmd, string? clearEntrypoint, string expected)
    {
        static IReadOnlyList<string>? Split(string s) => s.Length == 0 ? null : s.Split(' ').Select(p => p.Replace('|', ' ')).SelectMany(p => p == "sh -c" ? ["/bin/sh", "-c"] : new[] { p }).ToList();
        var config = new ContainerConfig { Entrypoint = Split(entrypoint), Cmd = Split(cmd) };
        var o = new ContainerOverrides
        {
            Entrypoint = clearEntrypoint is not null ? [] : Split(overEntrypoint),
            Cmd = Split(overCmd),
        };
        ImageSpec s = Build(config, o);
        Assert.Equal(Split(expected)!, s.Spec.Process!.Args!);
    }

    [Fact]
    public void Shell_form_stays_an_array()
    {
        ImageSpec s = Build(new ContainerConfig { Cmd = Shell });
        Assert.Equal(Shell, s.Spec.Process!.Args);
    }

    [Fact]
    public void No_command_is_an_error_naming_it()
    {
        var e = Assert.Throws<ImagesException>(() => Build(new ContainerConfig()));
        Assert.Contains("no command specified", e.Message);
        Assert.Equal(ImagesErrorKind.InvalidArgument, e.Kind);
        // --entrypoint "" with no arguments keeps the image's Cmd (dockerd's merge)…
        Assert.Equal(["x"], Build(new ContainerConfig { Cmd = ["x"] }, new ContainerOverrides { Entrypoint = [], Cmd = [] }).Spec.Process!.Args);
        // …and leaves nothing when the image had only an Entrypoint.
        Assert.Contains("no command specified", Assert.Throws<ImagesException>(() => Build(new ContainerConfig { Entrypoint = ["x"] }, new ContainerOverrides { Entrypoint = [] })).Message);
    }

    [Fact]
    public void Env_merges_image_then_overrides_with_a_default_path()
    {
        ImageSpec s = Build(new ContainerConfig { Cmd = ["x"], Env = ["A=1", "B=2"] },
            new ContainerOverrides { Env = ["B=3", "C=4", "A"], Hostname = "box", Tty = true });
        Assert.Equal([ImageSpecBuilder.DefaultPath, "HOSTNAME=box", "TERM=xterm", "B=3", "C=4", "HOME=/root"], s.Spec.Process!.Env);

        s = Build(new ContainerConfig { Cmd = ["x"], Env = ["PATH=/opt/bin", "X=a=b"] }, new ContainerOverrides { Env = ["X=c"] });
        Assert.Equal(["PATH=/opt/bin", "X=c", "HOME=/root"], s.Spec.Process!.Env);
        s = Build(new ContainerConfig { Cmd = ["x"], Env = ["HOME=/h"], User = "www" });
        Assert.Equal([ImageSpecBuilder.DefaultPath, "HOME=/h"], s.Spec.Process!.Env);
        Assert.Contains("HOME=/var/www", Build(new ContainerConfig { Cmd = ["x"], User = "www" }).Spec.Process!.Env!);
    }

    [Fact]
    public void Workdir_user_hostname_and_engine_fields()
    {
        var config = new ContainerConfig
        {
            Cmd = ["x"],
            WorkingDir = "/srv/app/",
            User = "www",
            StopSignal = "SIGQUIT",
            ExposedPorts = new Dictionary<string, EmptyObject> { ["8080/tcp"] = new(), ["53/udp"] = new() },
            Volumes = new Dictionary<string, EmptyObject> { ["/data"] = new() },
            Labels = new Dictionary<string, string> { ["maintainer"] = "me" },
        };
        ImageSpec s = Build(config, new ContainerOverrides { ContainerId = "0123456789abcdef0123" });
        Assert.Equal("/srv/app", s.Spec.Process!.Cwd);
        Assert.Equal((33u, 33u), (s.Spec.Process.User.Uid, s.Spec.Process.User.Gid));
        Assert.Equal([33u, 4u], s.Spec.Process.User.AdditionalGids); // the primary gid first, as dockerd
        Assert.Equal("0123456789ab", s.Spec.Hostname);
        Assert.Equal("SIGQUIT", s.StopSignal);
        Assert.Equal(["53/udp", "8080/tcp"], s.ExposedPorts);
        Assert.Equal(["/data"], s.Volumes);
        Assert.Equal("me", s.Labels["maintainer"]);
        Assert.Equal("me", s.Spec.Annotations!["maintainer"]);
        Assert.Equal("SIGQUIT", s.Spec.Annotations["org.opencontainers.image.stopSignal"]);
        Assert.Equal("53/udp,8080/tcp", s.Spec.Annotations["org.opencontainers.image.exposedPorts"]);
        Assert.Equal("amd64", s.Spec.Annotations["org.opencontainers.image.architecture"]);
        Assert.Equal(_root.Path, s.Spec.Root!.Path);
        Assert.False(s.Spec.Root.Readonly);

        s = Build(new ContainerConfig { Cmd = ["x"] }, new ContainerOverrides { User = "1234:log", WorkingDir = "/tmp", Hostname = "h", ReadonlyRootfs = true });
        Assert.Equal("/", Build(new ContainerConfig { Cmd = ["x"] }).Spec.Process!.Cwd);
        Assert.Equal("SIGTERM", Build(new ContainerConfig { Cmd = ["x"] }).StopSignal);
        Assert.Equal((1234u, 4u), (s.Spec.Process!.User.Uid, s.Spec.Process.User.Gid));
        Assert.Equal("/tmp", s.Spec.Process.Cwd);
        Assert.True(s.Spec.Root!.Readonly);
        Assert.Contains("unable to find user ghost", Assert.Throws<ImagesException>(() => Build(new ContainerConfig { Cmd = ["x"], User = "ghost" })).Message);
        Assert.Contains("absolute path", Assert.Throws<ImagesException>(() => Build(new ContainerConfig { Cmd = ["x"] }, new ContainerOverrides { WorkingDir = "rel" })).Message);
    }

    [Fact]
    public void Docker_defaults_are_present()
    {
        Spec spec = Build(new ContainerConfig { Cmd = ["x"] }).Spec;
        Assert.Equal(ImageSpecBuilder.DefaultCapabilities, spec.Process!.Capabilities!.Bounding);
        Assert.Equal(ImageSpecBuilder.DefaultCapabilities, spec.Process.Capabilities.Effective);
        Assert.Equal(ImageSpecBuilder.DefaultCapabilities, spec.Process.Capabilities.Permitted);
        Assert.Null(spec.Process.Capabilities.Inheritable);
        Assert.Null(spec.Process.Capabilities.Ambient);
        Assert.Equal(14, spec.Process.Capabilities.Bounding!.Count);
        Assert.DoesNotContain("CAP_SYS_ADMIN", spec.Process.Capabilities.Bounding);
        Assert.Equal(["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"], spec.Mounts!.Select(m => m.Destination));
        Assert.Contains("ro", spec.Mounts!.Single(m => m.Destination == "/sys").Options!);
        Assert.Contains("/proc/kcore", spec.Linux!.MaskedPaths!);
        Assert.Contains("/sys/firmware", spec.Linux.MaskedPaths!);
        Assert.Contains("/proc/sys", spec.Linux.ReadonlyPaths!);
        Assert.Equal(["mount", "network", "uts", "pid", "ipc", "cgroup"], spec.Linux.Namespaces!.Select(n => n.Type));
        var rules = spec.Linux.Resources!.Devices!;
        Assert.False(rules[0].Allow);
        Assert.Contains(rules, r => r.Allow && r.Major == 1 && r.Minor == 3); // /dev/null
        Assert.Contains(rules, r => !r.Allow && r.Major == 10 && r.Minor == 229); // fuse denied
        Assert.False(spec.Process.NoNewPrivileges);

        // It passes Berth's runtime-spec validation and serializes.
        SpecValidator.Validate(spec, _root.Path);
        SpecValidator.Validate(Build(new ContainerConfig { Cmd = ["x"] }, new ContainerOverrides
        {
            Privileged = true, Tmpfs = new Dictionary<string, string> { ["/run"] = "" }, Binds = [new BindMount("/srv", "/srv")], Memory = 1 << 26, Cpus = 0.5, PidsLimit = 10,
        }).Spec, _root.Path);
        string json = JsonSerializer.Serialize(spec, SpecJsonContext.Default.Spec);
        Assert.Contains("\"ociVersion\"", json);
    }

    [Fact]
    public void Cap_add_and_drop_follow_docker()
    {
        var c = new ContainerConfig { Cmd = ["x"] };
        List<string> caps = Build(c, new ContainerOverrides { CapAdd = ["sys_admin"], CapDrop = ["CAP_NET_RAW", "mknod"] }).Spec.Process!.Capabilities!.Bounding!;
        Assert.Contains("CAP_SYS_ADMIN", caps);
        Assert.DoesNotContain("CAP_NET_RAW", caps);
        Assert.DoesNotContain("CAP_MKNOD", caps);
        Assert.Equal(["CAP_CHOWN"], Build(c, new ContainerOverrides { CapDrop = ["ALL"], CapAdd = ["chown"] }).Spec.Process!.Capabilities!.Effective);
        caps = Build(c, new ContainerOverrides { CapAdd = ["ALL"], CapDrop = ["SYS_ADMIN"] }).Spec.Process!.Capabilities!.Permitted!;
        // ALL is every capability this process holds in its bounding set (moby's GetAllCapabilities).
        Assert.Equal(ImageSpecBuilder.AllAvailableCapabilities.Count - 1, caps.Count);
        Assert.Contains("unknown capability: \"BOGUS\"", Assert.Throws<ImagesException>(() => Build(c, new ContainerOverrides { CapAdd = ["BOGUS"] })).Message);
    }

    [Fact]
    public void Privileged_gets_all_caps_no_masks_and_every_device()
    {
        LinuxDevice[] devices = [new() { Path = "/dev/sda", Type = "b", Major = 8, Minor = 0 }];
        Spec spec = Build(new ContainerConfig { Cmd = ["x"] }, new ContainerOverrides { Privileged = true, CapDrop = ["ALL"], HostDevices = () => devices }).Spec;
        Assert.Equal(ImageSpecBuilder.AllAvailableCapabilities, spec.Process!.Capabilities!.Bounding);
        Assert.Null(spec.Linux!.MaskedPaths);
        Assert.Null(spec.Linux.ReadonlyPaths);
        Assert.DoesNotContain("ro", spec.Mounts!.Single(m => m.Destination == "/sys").Options!);
        var rule = Assert.Single(spec.Linux.Resources!.Devices!);
        Assert.True(rule.Allow);
        Assert.Equal("rwm", rule.Access);
        Assert.Equal("/dev/sda", Assert.Single(spec.Linux.Devices!).Path);

        // The real scan finds /dev/null.
        Assert.Contains(HostDevices.Scan(), d => d.Path == "/dev/null" && d.Type == "c" && d.Major == 1 && d.Minor == 3);
    }

    [Fact]
    public void Resources_tmpfs_and_binds()
    {
        Spec spec = Build(new ContainerConfig { Cmd = ["x"] }, new ContainerOverrides
        {
            Memory = 64 << 20,
            Cpus = 1.5,
            PidsLimit = 100,
            Tmpfs = new Dictionary<string, string> { ["/run"] = "size=64m,exec", ["/dev/shm"] = "" },
            Binds = [new BindMount("/srv/data", "/data", ReadOnly: true)],
        }).Spec;
        LinuxResources r = spec.Linux!.Resources!;
        Assert.Equal(64L << 20, r.Memory!.Limit);
        Assert.Equal(128L << 20, r.Memory.Swap);
        Assert.Equal(150_000L, r.Cpu!.Quota);
        Assert.Equal(100_000UL, r.Cpu.Period);
        Assert.Equal(100L, r.Pids!.Limit);
        var run = spec.Mounts!.Single(m => m.Destination == "/run");
        Assert.Equal(["nosuid", "nodev", "size=64m", "exec"], run.Options);
        var shm = Assert.Single(spec.Mounts!, m => m.Destination == "/dev/shm");
        Assert.Equal("tmpfs", shm.Source); // the user's replaced the default
        var data = spec.Mounts!.Single(m => m.Destination == "/data");
        Assert.Equal(("bind", "/srv/data"), (data.Type, data.Source));
        Assert.Equal(["rbind", "rprivate", "ro"], data.Options);
        Assert.Throws<ImagesException>(() => Build(new ContainerConfig { Cmd = ["x"] }, new ContainerOverrides { Binds = [new BindMount("rel", "/x")] }));
    }

    [Fact]
    public void User_mounts_are_mounted_parents_first_whatever_order_they_come_in()
    {
        // A volume inside a bind, given first (as binds, volumes and --volumes-from are gathered):
        // mounted first, the bind would hide it.
        Spec spec = Build(new ContainerConfig { Cmd = ["x"] }, new ContainerOverrides
        {
            Binds = [new BindMount("/srv/vol", "/data/sub/deeper"), new BindMount("/srv/sub", "/data/sub"), new BindMount("/srv/data", "/data")],
            Tmpfs = new Dictionary<string, string> { ["/data/sub/tmp"] = "" },
        }).Spec;
        string[] user = [.. spec.Mounts!.Select(m => m.Destination).Where(d => d.StartsWith("/data", StringComparison.Ordinal))];
        Assert.Equal("/data", user[0]);
        Assert.Equal("/data/sub", user[1]);
        Assert.Equal(["/data/sub/deeper", "/data/sub/tmp"], user[2..].Order(StringComparer.Ordinal));
    }
}
