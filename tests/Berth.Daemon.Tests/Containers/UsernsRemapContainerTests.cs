using System.Formats.Tar;
using System.Text.Json;
using Berth.Daemon.Configuration;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// Containers under --userns-remap, as under dockerd 20.10 (checked by hand with the same ranges): root inside is the
/// first subordinate id outside, the image's files are root's inside, volumes, cp, commit and export see the container's
/// owners, --userns=host opts out, and what cannot share the host's namespaces is refused in dockerd's words. The remap
/// user and its ranges are in files of the test's own (passwd, group, subuid, subgid): the host's are not touched.
/// </summary>
public sealed class UsernsRemapContainerTests : DockerCliTestBase
{
    private const uint RootUid = 300000, RootGid = 500000;
    private readonly TempDirectory _ids = MakeIdFiles();

    internal static TempDirectory MakeIdFiles()
    {
        var dir = new TempDirectory("userns-ids");
        File.WriteAllText(dir.Combine("passwd"), "root:x:0:0:root:/root:/bin/sh\nremapper:x:1234:1234::/:/bin/false\nother:x:1235:1235::/:/bin/false\n");
        File.WriteAllText(dir.Combine("group"), "root:x:0:\nremapper:x:1234:\nother:x:1235:\n");
        File.WriteAllText(dir.Combine("subuid"), "1234:300000:65536\n1234:400000:10\nother:600000:65536\n");
        File.WriteAllText(dir.Combine("subgid"), "remapper:500000:65536\nother:700000:65536\n");
        return dir;
    }

    protected override DaemonOptions Configure(DaemonOptions options) => Remapped(options, _ids, "remapper");

    internal static DaemonOptions Remapped(DaemonOptions options, TempDirectory ids, string user) => options with
    {
        UsernsRemapSetting = user,
        PasswdFile = ids.Combine("passwd"),
        GroupFile = ids.Combine("group"),
        SubuidFile = ids.Combine("subuid"),
        SubgidFile = ids.Combine("subgid"),
    };

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _ids.Dispose();
    }

    /// <summary>"uid gid" of each path argument, one a line, from ls (the test image's busybox has no stat).</summary>
    private const string Owners = "for p; do set -- $(ls -lnd \"$p\"); echo $3 $4; done";

    private string RemappedRoot => Path.Combine(Daemon.Options.DataRoot, $"{RootUid}.{RootGid}");

    private static List<(string Name, int Uid, int Gid)> TarOwners(string path)
    {
        var owners = new List<(string, int, int)>();
        Stream file = File.OpenRead(path);
        bool gzip = file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        using var reader = new TarReader(gzip ? new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionMode.Decompress) : file);
        while (reader.GetNextEntry() is { } e) owners.Add((e.Name, e.Uid, e.Gid));
        return owners;
    }

    [Fact]
    public void Container_root_is_the_first_subordinate_id_on_the_host_and_sees_the_image_as_its_own()
    {
        DockerCli docker = Docker();
        string id = docker.Ok("run", "-d", "busybox", "sleep", "60").Trim();
        try
        {
            int pid = JsonDocument.Parse(docker.Ok("inspect", "-f", "{{json .State.Pid}}", id)).RootElement.GetInt32();
            string[] status = File.ReadAllLines($"/proc/{pid}/status");
            Assert.Contains($"Uid:\t{RootUid}\t{RootUid}\t{RootUid}\t{RootUid}", status);
            Assert.Contains($"Gid:\t{RootGid}\t{RootGid}\t{RootGid}\t{RootGid}", status);

            // Every range, in the order of the subuid file.
            string uidMap = docker.Ok("exec", id, "cat", "/proc/self/uid_map");
            Assert.Equal("0 300000 65536|65536 400000 10",
                string.Join('|', uidMap.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries)))));
            Assert.Equal(["0", "500000", "65536"], docker.Ok("exec", id, "cat", "/proc/self/gid_map").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            Assert.Equal("0 0\n", docker.Ok("exec", id, "sh", "-c", "echo $(id -u) $(id -g)"));
            // The image's files, the engine's /etc files, /dev/shm and the init layer are root's inside and writable by it.
            Assert.Equal("0 0\n0 0\n0 0\n0 0\n0 0\n", docker.Ok("exec", id, "sh", "-c", Owners, "_", "/bin", "/", "/etc/hosts", "/.dockerenv", "/etc/resolv.conf"));
            docker.Ok("exec", id, "sh", "-c", "touch /etc/hosts /newfile /bin/new /dev/shm/x && echo 1.2.3.4 x >> /etc/hosts");
            // The host sees the container's writes under the remapped root's ids; they are stored unshifted (below).
            Assert.Equal($"{RootUid} {RootGid}", HostOwner($"/proc/{pid}/root/newfile"));
        }
        finally
        {
            docker.Run("rm", "-f", id);
        }
    }

    /// <summary>"uid gid" of a host path, as stat(1) says it.</summary>
    private static string HostOwner(string path)
    {
        var start = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u %g", path]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(start)!;
        string output = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return output;
    }

    [Fact]
    public void Info_says_userns_and_the_remapped_root_directory()
    {
        using JsonDocument info = JsonDocument.Parse(Docker().Ok("info", "--format", "{{json .}}"));
        Assert.Contains("name=userns", info.RootElement.GetProperty("SecurityOptions").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(RemappedRoot, info.RootElement.GetProperty("DockerRootDir").GetString());
        // As dockerd: both directories root:GID 0710, so that the remapped root reaches what is bind-mounted from there.
        Assert.Equal($"0 {RootGid}", HostOwner(Daemon.Options.DataRoot));
        Assert.Equal($"0 {RootGid}", HostOwner(RemappedRoot));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute, File.GetUnixFileMode(RemappedRoot));
    }

    [Fact]
    public void A_named_volume_is_the_remapped_roots_and_writable_inside()
    {
        DockerCli docker = Docker();
        string id = docker.Ok("run", "-d", "-v", "remapvol:/v", "busybox", "sh", "-c", "touch /v/f && " + Owners, "_", "/v", "/v/f").Trim();
        try
        {
            docker.Ok("wait", id);
            Assert.Equal("0 0\n0 0\n", docker.Ok("logs", id));
            string data = Path.Combine(RemappedRoot, "volumes", "remapvol", "_data");
            Assert.Equal($"{RootUid} {RootGid}", HostOwner(data));
            Assert.Equal($"{RootUid} {RootGid}", HostOwner(Path.Combine(data, "f")));
        }
        finally
        {
            docker.Run("rm", "-f", id);
            docker.Run("volume", "rm", "remapvol");
        }
    }

    [Fact]
    public void Commit_export_and_cp_give_the_containers_owners_not_the_hosts()
    {
        DockerCli docker = Docker();
        using var work = new TempDirectory("userns-export");
        docker.Ok("run", "--name", "remapexp", "busybox", "sh", "-c", "mkdir /made && touch /made/f && chown 5:6 /made/f && rm /bin/true");
        try
        {
            docker.Ok("export", "-o", work.Combine("export.tar"), "remapexp");
            var exported = TarOwners(work.Combine("export.tar"));
            Assert.Contains(("made/f", 5, 6), exported);
            Assert.Contains(("bin/", 0, 0), exported);
            Assert.Contains((".dockerenv", 0, 0), exported);
            Assert.DoesNotContain(exported, e => e.Name == "bin/true"); // the deletion holds in the unmapped view too

            docker.Ok("commit", "remapexp", "remapexp:img");
            Assert.Equal("5 6\n", docker.Ok("run", "--rm", "remapexp:img", "sh", "-c", Owners, "_", "/made/f"));
            Assert.Equal("5 6\n", docker.Ok("run", "--rm", "--userns=host", "remapexp:img", "sh", "-c", Owners, "_", "/made/f"));
            docker.Ok("save", "-o", work.Combine("save.tar"), "remapexp:img");
            string layer = Directory.CreateDirectory(work.Combine("saved")).FullName;
            System.Formats.Tar.TarFile.ExtractToDirectory(work.Combine("save.tar"), layer, overwriteFiles: true);
            using JsonDocument manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(layer, "manifest.json")));
            string top = manifest.RootElement[0].GetProperty("Layers").EnumerateArray().Last().GetString()!;
            var committed = TarOwners(Path.Combine(layer, top));
            Assert.Contains(("made/", 0, 0), committed);
            Assert.Contains(("made/f", 5, 6), committed);

            // cp out says the container's owners; cp in stores the archive's as the container's (root inside).
            Assert.Equal(0, docker.Shell($"$DOCKER cp remapexp:/made - > {work.Combine("cp.tar")}").Exit);
            Assert.Contains(("made/f", 5, 6), TarOwners(work.Combine("cp.tar")));
            File.WriteAllText(work.Combine("in.txt"), "in");
            docker.Ok("cp", work.Combine("in.txt"), "remapexp:/in.txt");
            docker.Ok("start", "remapexp");
            Assert.Equal(0, docker.Shell($"$DOCKER cp remapexp:/in.txt - > {work.Combine("in.tar")}").Exit);
            Assert.Contains(("in.txt", 0, 0), TarOwners(work.Combine("in.tar")));
        }
        finally
        {
            docker.Run("rm", "-f", "remapexp");
            docker.Run("rmi", "remapexp:img");
        }
    }

    [Fact]
    public void Userns_host_opts_out_and_shows_in_inspect()
    {
        DockerCli docker = Docker();
        string map = docker.Ok("run", "--rm", "--userns=host", "busybox", "cat", "/proc/self/uid_map");
        Assert.Equal(["0", "0", "4294967295"], map.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        string id = docker.Ok("create", "--userns=host", "busybox").Trim();
        string plain = docker.Ok("create", "busybox").Trim();
        try
        {
            Assert.Equal("host\n", docker.Ok("inspect", "-f", "{{.HostConfig.UsernsMode}}", id));
            Assert.Equal("\n", docker.Ok("inspect", "-f", "{{.HostConfig.UsernsMode}}", plain));
        }
        finally
        {
            docker.Run("rm", "-f", id, plain);
        }
    }

    [Fact]
    public void Joining_another_containers_network_ipc_or_pid_namespace_joins_its_user_namespace()
    {
        DockerCli docker = Docker();
        string donor = docker.Ok("run", "-d", "--ipc", "shareable", "busybox", "sleep", "60").Trim();
        try
        {
            // From a user namespace of its own the joiner could not mount the donor's mqueue or proc (EPERM).
            Assert.Equal("0 0\n", docker.Ok("run", "--rm", "--ipc", "container:" + donor, "busybox", "sh", "-c", Owners, "_", "/dev/shm"));
            Assert.Contains("sleep 60", docker.Ok("run", "--rm", "--pid", "container:" + donor, "busybox", "ps"));
            Assert.Equal("0\n", docker.Ok("run", "--rm", "--network", "container:" + donor, "busybox", "id", "-u"));
        }
        finally
        {
            docker.Run("rm", "-f", donor);
        }
    }

    [Theory]
    [InlineData("--privileged", "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode")]
    [InlineData("--network=host", "cannot share the host's network namespace when user namespaces are enabled")]
    [InlineData("--pid=host", "cannot share the host PID namespace when user namespaces are enabled")]
    public void What_cannot_share_the_hosts_namespaces_is_refused_unless_userns_host(string option, string message)
    {
        DockerCli docker = Docker();
        var (exit, _, error) = docker.Run("create", option, "busybox");
        Assert.NotEqual(0, exit);
        Assert.Contains("Error response from daemon: " + message, error);
        string id = docker.Ok("create", "--userns=host", option, "busybox").Trim();
        docker.Ok("rm", id);
    }
}

/// <summary>
/// A restart of a remapped berthd: with the same mapping its containers (running and stopped) go on; with another, as
/// dockerd, it works in another UID.GID directory and sees none of the first mapping's images or containers.
/// </summary>
public sealed class UsernsRemapRestartTests
{
    [Fact]
    public async Task The_same_mapping_keeps_its_containers_and_another_has_a_state_of_its_own()
    {
        using TempDirectory ids = UsernsRemapContainerTests.MakeIdFiles();
        await using RestartableDaemon daemon = await RestartableDaemon.StartAsync("userns-restart", o => UsernsRemapContainerTests.Remapped(o, ids, "remapper"));
        DockerCli docker = daemon.Docker;
        docker.Ok("run", "-d", "--name", "kept", "busybox", "sleep", "600");
        docker.Ok("create", "--name", "later", "-v", "keptvol:/v", "busybox", "sh", "-c", "touch /v/f && id -u");

        await daemon.StopAsync(); // the container runs on
        await daemon.StartAgainAsync();
        Assert.Equal("0", docker.Ok("exec", "kept", "id", "-u").Trim());
        Assert.Equal("0", docker.Ok("start", "-a", "later").Trim());

        await daemon.StopAsync();
        RemapStartsElsewhere(daemon, "other");
        await daemon.StartAgainAsync();
        try
        {
            Assert.EndsWith("/600000.700000", docker.Ok("info", "--format", "{{.DockerRootDir}}").Trim());
            Assert.Equal("", docker.Ok("ps", "-aq").Trim());
            Assert.Equal("", docker.Ok("images", "-q").Trim());
            Assert.Equal("", docker.Ok("volume", "ls", "-q").Trim());
        }
        finally
        {
            await daemon.StopAsync();
            RemapStartsElsewhere(daemon, "remapper");
            await daemon.StartAgainAsync();
        }
        // Back on the first mapping: all of it is there (the dispose removes the containers).
        Assert.Equal("true", docker.Ok("inspect", "-f", "{{.State.Running}}", "kept").Trim());
        Assert.Equal("keptvol", docker.Ok("volume", "ls", "-q").Trim());
    }

    private static void RemapStartsElsewhere(RestartableDaemon daemon, string user)
        => daemon.Options = daemon.Options with { UsernsRemapSetting = user };
}
