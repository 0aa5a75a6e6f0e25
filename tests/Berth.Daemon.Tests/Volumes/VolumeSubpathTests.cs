using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Berth.Daemon.Hosting;
using Berth.Daemon.Tests.Containers;
using Berth.Daemon.Volumes;

namespace Berth.Daemon.Tests.Volumes;

/// <summary>The create-time check of a subpath (moby's <c>filepath.IsLocal</c>) and its cleaning.</summary>
public sealed class VolumeSubpathCheckTests
{
    [Theory]
    [InlineData("sub", true)]
    [InlineData("sub/dir", true)]
    [InlineData("./sub//dir/", true)]
    [InlineData("a/../b", true)]
    [InlineData(".", true)]
    [InlineData("..x", true)]
    [InlineData("", false)]
    [InlineData("/etc", false)]
    [InlineData("..", false)]
    [InlineData("../x", false)]
    [InlineData("a/../../x", false)]
    [InlineData("a/b/../../..", false)]
    [InlineData("a\0b", false)]
    public void IsLocal_accepts_relative_paths_that_stay_inside(string subpath, bool local)
        => Assert.Equal(local, VolumeSubpath.IsLocal(subpath));

    [Theory]
    [InlineData("sub", "sub")]
    [InlineData("./sub//dir/", "sub/dir")]
    [InlineData("a/../b", "b")]
    [InlineData("a/..", ".")]
    [InlineData(".", ".")]
    public void Clean_is_lexical(string subpath, string clean) => Assert.Equal(clean, VolumeSubpath.Clean(subpath));
}

/// <summary>
/// <c>Mounts[].VolumeOptions.Subpath</c> with real containers (berth-runtime, busybox) against berthd
/// hosted in-process: what the container sees, what is refused at create and at start, that a
/// symlink made by a container cannot lead the mount out of the volume, and that no private
/// mount outlives a start. Each test's daemon removes its containers, detaches any mount left
/// under its directory and removes it when disposed, even when an assertion failed.
/// </summary>
public sealed class VolumeSubpathTests : DaemonTestBase
{
    private string Data(string volume) => Path.Combine(Daemon.Options.DataRoot, "volumes", volume, "_data");

    private string SubpathRoot => Path.Combine(Daemon.Options.ExecRoot, "subpaths");

    /// <summary>Mount points under berthd's subpath directory (there should be none once a start is over).</summary>
    private List<string> SubpathMounts()
        => File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(SubpathRoot + "/", StringComparison.Ordinal)).ToList();

    private void AssertNoSubpathMountLeft()
    {
        Assert.Empty(SubpathMounts());
        Assert.True(!Directory.Exists(SubpathRoot) || Directory.GetFileSystemEntries(SubpathRoot).Length == 0,
            "left in " + SubpathRoot + ": " + string.Join(", ", Directory.Exists(SubpathRoot) ? Directory.GetFileSystemEntries(SubpathRoot, "*", SearchOption.AllDirectories) : []));
    }

    private static object VolumeMount(string source, string target, string subpath, bool readOnly = false)
        => new { Type = "volume", Source = source, Target = target, ReadOnly = readOnly, VolumeOptions = new { Subpath = subpath } };

    private Task<string> CreateAsync(string[] cmd, params object[] mounts) => CreateAsync(cmd, "busybox", mounts);

    private Task<string> CreateAsync(string[] cmd, string image, params object[] mounts)
        => ContainersApiTests.CreateAsync(Client, new { Image = image, Cmd = cmd, HostConfig = new { Mounts = mounts } }, apiVersion: "1.45");

    private async Task<(int Status, string Message)> StartAsync(string id)
    {
        using HttpResponseMessage start = await Client.PostAsync($"/containers/{id}/start", null);
        string text = await start.Content.ReadAsStringAsync();
        return ((int)start.StatusCode, text.Length == 0 ? "" : JsonDocument.Parse(text).RootElement.GetProperty("message").GetString()!);
    }

    /// <summary>Starts, waits for the exit, removes (unless told not to); the output, with exit 0 asserted.</summary>
    private async Task<string> RunAsync(string id, bool remove = true)
    {
        var (status, message) = await StartAsync(id);
        Assert.True(status == 204, $"start: {status} {message}");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using HttpResponseMessage wait = await Client.PostAsync($"/containers/{id}/wait", null, cts.Token);
        long exit = JsonDocument.Parse(await wait.Content.ReadAsStringAsync(cts.Token)).RootElement.GetProperty("StatusCode").GetInt64();
        var (stdout, stderr) = await ContainersApiTests.LogsAsync(Client, id);
        if (remove)
            using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{id}"))
                Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);
        Assert.True(exit == 0, $"exit {exit}: {stdout} {stderr}");
        return stdout;
    }

    /// <summary>A container writes into the named volume (mounted whole at /data).</summary>
    private async Task FillAsync(string volume, string script)
    {
        string id = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", script }, HostConfig = new { Binds = new[] { volume + ":/data" } } });
        await RunAsync(id);
    }

    [Fact]
    public async Task Only_the_subpath_of_the_volume_is_mounted_read_write_or_read_only()
    {
        await FillAsync("shared", "mkdir -p /data/sub/deep && echo inside > /data/sub/f && echo deeper > /data/sub/deep/g && echo outside > /data/top");

        string reader = await CreateAsync(["sh", "-c", "ls -A /mnt; cat /mnt/f; test -e /mnt/top || echo no-top; echo written > /mnt/new"], VolumeMount("shared", "/mnt", "sub"));
        JsonElement inspect = await Daemon.GetJsonAsync($"/containers/{reader}/json");
        JsonElement mount = inspect.GetProperty("Mounts").EnumerateArray().Single();
        Assert.Equal("volume", mount.GetProperty("Type").GetString());
        Assert.Equal("shared", mount.GetProperty("Name").GetString());
        Assert.Equal(Data("shared"), mount.GetProperty("Source").GetString()); // the volume's, as dockerd shows it
        Assert.Equal("/mnt", mount.GetProperty("Destination").GetString());
        Assert.True(mount.GetProperty("RW").GetBoolean());
        Assert.Equal("sub", inspect.GetProperty("HostConfig").GetProperty("Mounts")[0].GetProperty("VolumeOptions").GetProperty("Subpath").GetString());

        Assert.Equal("deep\nf\ninside\nno-top\n", await RunAsync(reader));
        Assert.Equal("written\n", File.ReadAllText(Path.Combine(Data("shared"), "sub", "new")));
        AssertNoSubpathMountLeft();

        // Deeper, unclean, through a symlink that stays in the volume, and a file.
        await FillAsync("shared", "busybox ln -s sub /data/alias");
        string deep = await CreateAsync(["cat", "/a/g", "/b/g", "/c/g", "/file"],
            VolumeMount("shared", "/a", "sub/deep"), VolumeMount("shared", "/b", "./sub//x/../deep/"), VolumeMount("shared", "/c", "alias/deep"), VolumeMount("shared", "/file", "sub/f"));
        Assert.Equal("deeper\ndeeper\ndeeper\ninside\n", await RunAsync(deep));
        AssertNoSubpathMountLeft();

        // ReadOnly: the subpath is mounted read-only.
        string readOnly = await CreateAsync(["sh", "-c", "cat /mnt/f; if touch /mnt/ro 2>/dev/null; then echo writable; else echo read-only; fi; grep ' /mnt ' /proc/mounts"],
            VolumeMount("shared", "/mnt", "sub", readOnly: true));
        Assert.False((await Daemon.GetJsonAsync($"/containers/{readOnly}/json")).GetProperty("Mounts")[0].GetProperty("RW").GetBoolean());
        string output = await RunAsync(readOnly);
        Assert.StartsWith("inside\nread-only\n", output);
        Assert.Matches(@" /mnt \S+ ro[, ]", output);
        Assert.False(File.Exists(Path.Combine(Data("shared"), "sub", "ro")));
        AssertNoSubpathMountLeft();
    }

    [Fact]
    public async Task The_first_user_seeds_an_empty_subpath_with_the_image_content_unless_nocopy()
    {
        string maker = await ContainersApiTests.CreateAsync(Client, new { Image = "busybox", Cmd = new[] { "sh", "-c", "mkdir /seed && echo from-image > /seed/hello" } });
        await RunAsync(maker, remove: false);
        using (HttpResponseMessage commit = await Client.PostAsJsonAsync($"/commit?container={maker}&repo=seeded&tag=latest", new { }))
            Assert.True(commit.StatusCode == HttpStatusCode.Created, await commit.Content.ReadAsStringAsync());

        await FillAsync("seeded", "mkdir /data/empty /data/bare");
        string seeded = await CreateAsync(["cat", "/seed/hello"], "seeded", VolumeMount("seeded", "/seed", "empty"));
        Assert.Equal("from-image\n", await RunAsync(seeded));
        Assert.Equal("from-image\n", File.ReadAllText(Path.Combine(Data("seeded"), "empty", "hello")));
        Assert.False(File.Exists(Path.Combine(Data("seeded"), "hello")));

        string bare = await ContainersApiTests.CreateAsync(Client, new
        {
            Image = "seeded",
            Cmd = new[] { "ls", "-A", "/seed" },
            HostConfig = new { Mounts = new[] { new { Type = "volume", Source = "seeded", Target = "/seed", VolumeOptions = new { Subpath = "bare", NoCopy = true } } } },
        }, apiVersion: "1.45");
        Assert.Equal("", await RunAsync(bare));
        AssertNoSubpathMountLeft();
    }

    [Fact]
    public async Task A_missing_subpath_fails_the_start_with_dockerds_error_and_leaves_no_mount()
    {
        await FillAsync("vol", "echo x > /data/file");
        string id = await CreateAsync(["cat", "/mnt/f"], VolumeMount("vol", "/mnt", "missing/dir"));
        var (status, message) = await StartAsync(id);
        Assert.Equal(500, status);
        Assert.Equal($"cannot access path {Data("vol")}/missing/dir: no such file or directory", message);
        AssertNoSubpathMountLeft();
        JsonElement state = (await Daemon.GetJsonAsync($"/containers/{id}/json")).GetProperty("State");
        Assert.False(state.GetProperty("Running").GetBoolean());

        // A component that is a file.
        string throughFile = await CreateAsync(["true"], VolumeMount("vol", "/mnt", "file/below"));
        (status, message) = await StartAsync(throughFile);
        Assert.Equal(500, status);
        Assert.StartsWith($"cannot access path {Data("vol")}/file/below: ", message);
        AssertNoSubpathMountLeft();

        // Made meanwhile: the same container starts.
        await FillAsync("vol", "mkdir -p /data/missing/dir && echo late > /data/missing/dir/f");
        Assert.Equal("late\n", await RunAsync(id));
        AssertNoSubpathMountLeft();
    }

    [Fact]
    public async Task A_symlink_a_container_made_cannot_lead_the_mount_out_of_the_volume()
    {
        string host = Daemon.Directory.CreateSubdirectory("host-secret");
        File.WriteAllText(Path.Combine(host, "secret"), "host data\n");
        await FillAsync("evil", $"busybox ln -s /etc /data/abs && busybox ln -s ../../../../../../../../.. /data/up && busybox ln -s {host} /data/hostdir && mkdir /data/d && busybox ln -s ../.. /data/d/climb");
        foreach (string subpath in new[] { "abs", "abs/passwd", "up", "up/etc", "hostdir", "d/climb", "d/climb/etc" })
        {
            string id = await CreateAsync(["cat", "/mnt/secret"], VolumeMount("evil", "/mnt", subpath));
            var (status, message) = await StartAsync(id);
            Assert.True(status == 500, $"{subpath}: {status} {message}");
            Assert.Equal($"path concatenation escapes the base directory, base: {Data("evil")}, subpath: {subpath}", message);
            AssertNoSubpathMountLeft();
            Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Split(' ')[3] == host || (l.Split(' ')[3] == "/etc" && l.Split(' ')[4].StartsWith(Daemon.Directory.Path, StringComparison.Ordinal)));
            using HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{id}");
            Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);
        }
    }

    /// <summary>
    /// A running container keeps swapping the subpath between a directory and a symlink to the
    /// host's root while others start with it: each start either mounts the directory (whatever
    /// its name has become meanwhile) or fails; none ever sees the host.
    /// </summary>
    [Fact]
    public async Task A_subpath_swapped_for_a_symlink_during_starts_never_mounts_the_host()
    {
        await FillAsync("race", "mkdir /data/sub && echo volume > /data/sub/marker");
        string swapper = await ContainersApiTests.CreateAsync(Client, new
        {
            Image = "busybox",
            Cmd = new[] { "sh", "-c", "while :; do busybox mv /data/sub /data/real; busybox ln -s / /data/sub; busybox rm /data/sub; busybox mv /data/real /data/sub; done" },
            HostConfig = new { Binds = new[] { "race:/data" } },
        });
        var (status, message) = await StartAsync(swapper);
        Assert.True(status == 204, message);
        int mounted = 0, refused = 0;
        for (int i = 0; i < 30; i++)
        {
            string id = await CreateAsync(["sh", "-c", "cat /mnt/marker 2>/dev/null || echo none; test -e /mnt/etc/passwd && echo HOST || true"], VolumeMount("race", "/mnt", "sub"));
            (status, message) = await StartAsync(id);
            if (status == 204)
            {
                mounted++;
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                using (HttpResponseMessage wait = await Client.PostAsync($"/containers/{id}/wait", null, cts.Token)) Assert.Equal(HttpStatusCode.OK, wait.StatusCode);
                var (stdout, _) = await ContainersApiTests.LogsAsync(Client, id);
                Assert.Equal("volume\n", stdout);
            }
            else
            {
                refused++;
                Assert.True(status == 500 && (message.StartsWith("cannot access path ", StringComparison.Ordinal) || message.StartsWith("path concatenation escapes", StringComparison.Ordinal)), $"{status} {message}");
            }
            using (HttpResponseMessage rm = await Client.DeleteAsync($"/containers/{id}?force=1")) Assert.Equal(HttpStatusCode.NoContent, rm.StatusCode);
            AssertNoSubpathMountLeft();
        }
        Assert.Equal(30, mounted + refused);
    }

    [Fact]
    public async Task Absolute_escaping_and_anonymous_subpaths_are_refused_at_create()
    {
        async Task<string> Refused(object mount, string version = "1.45")
        {
            using HttpResponseMessage response = await Client.PostAsJsonAsync($"/v{version}/containers/create", new { Image = "busybox", HostConfig = new { Mounts = new[] { mount } } });
            string text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {text}");
            return JsonDocument.Parse(text).RootElement.GetProperty("message").GetString()!;
        }
        const string notLocal = "invalid mount config for type \"volume\": subpath must be a relative path within the volume";
        Assert.Equal(notLocal, await Refused(VolumeMount("vol", "/mnt", "/etc")));
        Assert.Equal(notLocal, await Refused(VolumeMount("vol", "/mnt", "../x")));
        Assert.Equal(notLocal, await Refused(VolumeMount("vol", "/mnt", "sub/../../x")));
        Assert.Equal(notLocal, await Refused(VolumeMount("vol", "/mnt", "..")));
        Assert.Equal("invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes", await Refused(VolumeMount("", "/mnt", "sub")));
        Assert.Equal("invalid mount config for type \"bind\": VolumeOptions must not be specified",
            await Refused(new { Type = "bind", Source = Daemon.Directory.Path, Target = "/mnt", VolumeOptions = new { Subpath = "sub" } }));
        Assert.Equal("VolumeOptions.Subpath needs API v1.45 or newer", await Refused(VolumeMount("vol", "/mnt", "sub"), "1.44"));
        JsonElement volumes = await Daemon.GetJsonAsync("/volumes");
        Assert.Empty(volumes.GetProperty("Volumes").EnumerateArray()); // nothing was made
    }

    [Fact]
    public async Task Subpath_mounts_a_crash_left_are_released_at_the_next_start_without_deleting_through_them()
    {
        string content = Daemon.Directory.CreateSubdirectory("volume-content");
        File.WriteAllText(Path.Combine(content, "precious"), "kept\n");
        await Daemon.Host.DisposeAsync();
        string leftover = Path.Combine(SubpathRoot, new string('a', 64), "0");
        Directory.CreateDirectory(leftover);
        RunMount("--bind", content, leftover);
        Assert.Single(SubpathMounts());

        await using (DaemonHost again = await DaemonHost.StartAsync(Daemon.Options))
        {
            AssertNoSubpathMountLeft();
        }
        Assert.Equal("kept\n", File.ReadAllText(Path.Combine(content, "precious")));
    }

    private static void RunMount(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("mount", args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, p.StandardError.ReadToEnd());
    }
}
