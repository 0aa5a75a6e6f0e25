using Berth.Daemon.Containers;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// The ordinary container workflow of the real docker clients (28.x and Debian's 20.10) against
/// berthd: run in the foreground and detached, ps, logs, exec, stop, rm, stdin, tty. Each test's
/// daemon force-removes its containers at the end.
/// </summary>
public sealed class DockerCliContainerTests : DockerCliTestBase
{
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Run_in_the_foreground_prints_output_and_exits_with_the_container_code(string binary)
    {
        DockerCli docker = Docker(binary);
        var (exit, output, error) = docker.Run("run", "--name", "fg", "busybox", "sh", "-c", "echo hello; echo oops >&2; exit 5");
        Assert.True(exit == 5, $"exit {exit}: {output} {error}");
        Assert.Equal("hello\n", output);
        Assert.Contains("oops", error);
        Assert.Equal("exited 5", docker.Ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "fg").Trim());

        // --rm: gone afterwards; a missing command is 127 as docker reports it.
        Assert.Equal("bye\n", docker.Ok("run", "--rm", "--name", "gone", "busybox", "echo", "bye"));
        Assert.Equal("", docker.Ok("ps", "-aq", "--filter", "name=gone").Trim());
        (exit, _, error) = docker.Run("run", "--rm", "busybox", "/no/such/command");
        Assert.True(exit == 127, $"exit {exit}: {error}");

        // stdin through attach: cat echoes what is piped in and exits at its end.
        (exit, output, error) = docker.Shell("printf 'one\\ntwo\\n' | $DOCKER run --rm -i busybox cat");
        Assert.True(exit == 0, error);
        Assert.Equal("one\ntwo\n", output);
    }

    /// <summary>
    /// <c>--pid container:NAME</c>: the container runs in NAME's PID namespace (it sees NAME's
    /// process as PID 1); NAME must exist at create and run at start.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Pid_mode_container_joins_the_other_containers_pid_namespace(string binary)
    {
        DockerCli docker = Docker(binary);
        docker.Ok("run", "-d", "--name", "donor", "busybox", "sleep", "1000");
        string ps = docker.Ok("run", "--rm", "--pid", "container:donor", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$");
        string[] lines = ps.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("sleep 1000", lines[0].Trim());
        Assert.NotEqual("1", lines[1]);

        var (exit, _, error) = docker.Run("create", "--pid", "container:nosuch", "busybox", "true");
        Assert.NotEqual(0, exit);
        Assert.Contains("No such container: nosuch", error);
        docker.Ok("create", "--name", "idle", "busybox", "true");
        (exit, _, error) = docker.Run("run", "--rm", "--pid", "container:idle", "busybox", "true");
        Assert.NotEqual(0, exit);
        Assert.Contains("is not running", error);
    }

    /// <summary>
    /// <c>--ipc shareable</c> / <c>--ipc container:NAME</c>: the joiner shares NAME's IPC namespace and
    /// its /dev/shm (a tmpfs on the host, unmounted when NAME stops); a private donor is refused with
    /// dockerd's hint; <c>--ipc host</c> sees the host's /dev/shm.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Ipc_shareable_and_container_share_the_namespace_and_dev_shm(string binary)
    {
        DockerCli docker = Docker(binary);
        string donor = docker.Ok("run", "-d", "--name", "ipcdonor", "--ipc", "shareable", "--shm-size", "8m", "busybox", "sleep", "1000").Trim();
        docker.Ok("exec", "ipcdonor", "sh", "-c", "echo shared > /dev/shm/note");
        string donorNs = docker.Ok("exec", "ipcdonor", "sh", "-c", "readlink /proc/self/ns/ipc");
        string joined = docker.Ok("run", "--rm", "--ipc", "container:ipcdonor", "busybox", "sh", "-c", "cat /dev/shm/note; readlink /proc/self/ns/ipc; df -k /dev/shm | tail -1");
        string[] lines = joined.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("shared", lines[0]);
        Assert.Equal(donorNs.Trim(), lines[1]);
        Assert.Equal("8192", lines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

        docker.Ok("run", "-d", "--name", "ipcprivate", "busybox", "sleep", "1000");
        var (exit, _, error) = docker.Run("run", "--rm", "--ipc", "container:ipcprivate", "busybox", "true");
        Assert.NotEqual(0, exit);
        Assert.Contains("non-shareable IPC (hint: use IpcMode:shareable for the donor container)", error);

        string shm = Path.Combine(Daemon.Options.DataRoot, "containers", donor, "shm");
        Assert.Contains(" " + shm + " ", File.ReadAllText("/proc/self/mountinfo"));
        docker.Ok("stop", "-t", "0", "ipcdonor");
        Assert.DoesNotContain(" " + shm + " ", File.ReadAllText("/proc/self/mountinfo"));

        string hostFile = "/dev/shm/berth-ipc-host-" + Guid.NewGuid().ToString("N")[..8];
        File.WriteAllText(hostFile, "");
        try
        {
            Assert.Equal(hostFile + "\n", docker.Ok("run", "--rm", "--ipc", "host", "busybox", "sh", "-c", "ls " + hostFile));
        }
        finally
        {
            File.Delete(hostFile);
        }
    }

    /// <summary>
    /// <c>--security-opt seccomp=profile.json</c>: the docker CLI sends the file's JSON; berthd
    /// turns the Docker-format profile into the container's filter (mkdir gets the profile's EACCES;
    /// chroot is allowed only without CAP_SYS_ADMIN, which the container does not hold, so it gets
    /// past seccomp to the kernel). A broken profile is refused at create, naming the field.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void A_seccomp_profile_of_ones_own_filters_the_container(string binary)
    {
        DockerCli docker = Docker(binary);
        string profile = Path.Combine(DockerConfig.Path, "profile.json");
        File.WriteAllText(profile, """
            {
              "defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [
                { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 },
                { "names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "includes": { "caps": ["CAP_SYS_ADMIN"] } }
              ]
            }
            """);
        var (exit, output, error) = docker.Run("run", "--rm", "--security-opt", "seccomp=" + profile, "busybox", "sh", "-c",
            "mkdir /made; echo mkdir=$?; chroot / true; echo chroot=$?; touch /file && echo touched");
        Assert.True(exit == 0, $"exit {exit}: {output} {error}");
        Assert.Equal("mkdir=1\nchroot=0\ntouched\n", output);
        Assert.Contains("Permission denied", error);
        docker.Ok("create", "--name", "kept", "--security-opt", "seccomp=" + profile, "busybox", "true");
        Assert.StartsWith("[\"seccomp={", docker.Ok("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "kept"), StringComparison.Ordinal);

        File.WriteAllText(profile, """{ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOPE" }] }""");
        (exit, _, error) = docker.Run("run", "--rm", "--security-opt", "seccomp=" + profile, "busybox", "true");
        Assert.NotEqual(0, exit);
        Assert.Contains("invalid seccomp profile", error);
        Assert.Contains("SCMP_ACT_NOPE", error);
    }

    /// <summary>
    /// Execs that end before the relay's first send to their monitor (the lossless request, the
    /// tty's console size, stdin) lose no output: each of the three lost it now and then (1–2 in
    /// 100 with `echo x`) until session 7.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Short_execs_lose_no_output_with_or_without_a_tty_or_stdin(string binary)
    {
        DockerCli docker = Docker(binary);
        docker.Ok("run", "-d", "--name", "short", "busybox", "sleep", "1000");
        var (exit, output, error) = docker.Shell(
            "for i in $(seq 25); do $DOCKER exec short echo x; $DOCKER exec -t short echo t | tr -d '\\r'; " +
            "yes | head -c 20000 | $DOCKER exec -i short echo i; done | sort | uniq -c");
        Assert.True(exit == 0, error);
        Assert.Equal(["25 i", "25 t", "25 x"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))));
    }

    /// <summary>
    /// <c>docker run --link</c>: docker 28's CLI sends the link in HostConfig.Links and in the
    /// network's endpoint settings, 20.10's in HostConfig.Links only; both reach the linked container.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Links_from_the_docker_cli_reach_the_linked_container(string binary)
    {
        DockerCli docker = Docker(binary);
        docker.Ok("run", "-d", "--name", "linked", "--expose", "80", "busybox", "sleep", "1000");
        string ip = docker.Ok("inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "linked").Trim();
        var (exit, output, error) = docker.Run("run", "--rm", "--link", "linked:db", "busybox", "sh", "-c", "echo $DB_PORT; grep -w db /etc/hosts");
        Assert.True(exit == 0, $"exit {exit}: {output} {error}");
        Assert.Matches($@"^tcp://{System.Text.RegularExpressions.Regex.Escape(ip)}:80\n{System.Text.RegularExpressions.Regex.Escape(ip)}\tdb [0-9a-f]{{12}} linked\n$", output);
    }

    /// <summary>
    /// <c>docker rm --link PARENT/ALIAS</c>: the link leaves the parent (inspect, the saved record,
    /// a running parent's /etc/hosts, the next start's environment); the linked container stays.
    /// A name that is no link, or whose parent is missing, is dockerd's 404; a container's own
    /// name its "default link name" error.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Rm_link_takes_the_link_out_of_the_parent_and_leaves_the_linked_container(string binary)
    {
        DockerCli docker = Docker(binary);
        docker.Ok("run", "-d", "--name", "db", "busybox", "sleep", "1000");
        string app = docker.Ok("run", "-d", "--name", "app", "--link", "db:data", "--link", "db:store", "busybox", "sleep", "1000").Trim();
        Assert.Matches(@"\sdata\s", docker.Ok("exec", "app", "cat", "/etc/hosts"));

        Assert.Equal("app/data\n", docker.Ok("rm", "--link", "app/data"));
        Assert.Equal("[\"/db:/app/store\"]\n", docker.Ok("inspect", "-f", "{{json .HostConfig.Links}}", "app"));
        string hosts = docker.Ok("exec", "app", "cat", "/etc/hosts");
        Assert.DoesNotMatch(@"\sdata\s", hosts);
        Assert.Matches(@"\sstore\s", hosts);
        Assert.Equal("running\n", docker.Ok("inspect", "-f", "{{.State.Status}}", "db"));
        Assert.DoesNotContain("/app/data", File.ReadAllText(Path.Combine(Daemon.Options.DataRoot, "containers", app, "config.v2.json")));

        foreach (var (name, message) in new[]
        {
            ("app/data", "No such container: app/data"),
            ("nosuch/data", "No such container: nosuch/data"),
            ("nosuch", "No such container: nosuch"),
            ("db", "Conflict, cannot remove the default link name of the container"),
        })
        {
            var (exit, _, error) = docker.Run("rm", "--link", name);
            Assert.True(exit != 0, $"rm --link {name} succeeded");
            Assert.Contains(message, error);
        }

        // The last one (given with its leading slash): no links left, and a restart brings none back.
        Assert.Equal("/app/store\n", docker.Ok("rm", "--link", "/app/store"));
        Assert.Equal("null\n", docker.Ok("inspect", "-f", "{{json .HostConfig.Links}}", "app"));
        docker.Ok("restart", "-t", "0", "app");
        string after = docker.Ok("exec", "app", "sh", "-c", "env; cat /etc/hosts");
        Assert.DoesNotMatch(@"(?m)^(DATA|STORE)_", after);
        Assert.DoesNotMatch(@"\s(data|store)\s", after);
        Assert.Equal("running\n", docker.Ok("inspect", "-f", "{{.State.Status}}", "db"));
    }

    /// <summary>
    /// A link's name, PARENT/ALIAS, names the linked container, as dockerd's name registry has it:
    /// inspect, exec, logs and stop take it; ps lists it among the container's names (shown with
    /// --no-trunc) and its name filter matches it; it follows a rename of the parent. Through the API,
    /// <c>--network none</c> keeps its links unused (dockerd starts such a container although the linked
    /// one is stopped) while host and container: modes refuse them; the docker CLI itself refuses links
    /// beside a --network that is not user-defined.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public async Task A_link_name_names_the_linked_container(string binary)
    {
        DockerCli docker = Docker(binary);
        string db = docker.Ok("run", "-d", "--name", "db", "busybox", "sh", "-c", "echo ready; sleep 1000").Trim();
        docker.Ok("run", "-d", "--name", "app", "--link", "db:data", "busybox", "sleep", "1000");
        Assert.Equal($"/db {db}\n", docker.Ok("inspect", "-f", "{{.Name}} {{.Id}}", "app/data"));
        Assert.Equal("hi\n", docker.Ok("exec", "app/data", "echo", "hi"));
        Assert.Equal("ready\n", docker.Ok("logs", "app/data"));
        Assert.Equal("app\napp/data,db\n", docker.Ok("ps", "--no-trunc", "--format", "{{.Names}}"));
        Assert.Equal("app\ndb\n", docker.Ok("ps", "--format", "{{.Names}}"));
        Assert.Equal("db\n", docker.Ok("ps", "--filter", "name=data", "--format", "{{.Names}}"));

        docker.Ok("rename", "app", "web");
        Assert.Equal("/db\n", docker.Ok("inspect", "-f", "{{.Name}}", "web/data"));
        var (exit, _, error) = docker.Run("inspect", "app/data");
        Assert.True(exit != 0 && error.Contains("No such object: app/data", StringComparison.Ordinal), error); // plugins are asked last
        docker.Ok("stop", "-t", "0", "web/data");
        Assert.Equal("exited\n", docker.Ok("inspect", "-f", "{{.State.Status}}", "db"));

        async Task<(int Status, string Body)> CreateLinked(string name, string networkMode)
        {
            string body = $$$"""{"Image":"busybox","Cmd":["sh","-c","grep -c data /etc/hosts; env | grep -c DATA_"],"HostConfig":{"NetworkMode":"{{{networkMode}}}","Links":["db:data"]}}""";
            using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
            using HttpResponseMessage response = await Daemon.Client.PostAsync($"/containers/create?name={name}", content);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        Assert.Equal(201, (await CreateLinked("lonely", "none")).Status);
        (exit, string output, error) = docker.Run("start", "-a", "lonely");
        Assert.True(exit == 1 && output == "0\n0\n", $"exit {exit}: {output} {error}"); // started, and nothing of the link inside
        foreach (var (mode, message) in new[]
        {
            ("host", "conflicting options: host type networking can't be used with links. This would result in undefined behavior"),
            ("container:web", "conflicting options: container type network can't be used with links. This would result in undefined behavior"),
        })
        {
            var (status, body) = await CreateLinked("refused", mode);
            Assert.True(status == 400 && body.Contains(message, StringComparison.Ordinal), $"{mode}: {status} {body}");
        }
        // docker 20.10 refuses the pair itself; docker 28 sends it, and the link is kept unused.
        (exit, output, error) = docker.Run("run", "--rm", "--network", "none", "--link", "db:x", "busybox", "sh", "-c", "env | grep -c ^X_");
        if (binary == DockerCli.Debian)
            Assert.True(exit == 125 && error.Contains("links are only supported for user-defined networks", StringComparison.Ordinal), error);
        else
            Assert.True(exit == 1 && output == "0\n", $"exit {exit}: {output} {error}");
    }

    /// <summary><c>ps -s</c> and <c>inspect -s</c>: the writable layer's size and the virtual size with the image (size=1), absent without it.</summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Sizes_are_given_when_asked_for(string binary)
    {
        DockerCli docker = Docker(binary);
        docker.Ok("run", "-d", "--name", "sized", "busybox", "sh", "-c", "head -c 300000 /dev/zero > /big && touch /ready && sleep 1000");
        for (int i = 0; i < 50 && docker.Run("exec", "sized", "ls", "/ready").Exit != 0; i++) Thread.Sleep(100);
        string[] sizes = docker.Ok("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "sized").Trim().Split(' ');
        long rw = long.Parse(sizes[0], System.Globalization.CultureInfo.InvariantCulture), rootFs = long.Parse(sizes[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(rw, 300_000, 400_000);
        Assert.True(rootFs > rw + 500_000, $"{rw} {rootFs}"); // and the busybox image beneath
        Assert.Equal("false\n", docker.Ok("inspect", "-f", "{{json .}}", "sized").Contains("\"SizeRw\"", StringComparison.Ordinal) ? "true\n" : "false\n");
        Assert.Matches(@"^3\d\dkB \(virtual \d", docker.Ok("ps", "-s", "--format", "{{.Size}}"));
    }

    /// <summary>
    /// <c>-v SRC:DST:rshared</c> and <c>--mount ...,bind-propagation=rshared</c>: as under dockerd, a mount
    /// the container makes in the volume shows on the host; inspect names the propagation; a source
    /// on a private mount is refused with dockerd's words, and a bad mode at create.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Shared_bind_propagation_sends_the_containers_mounts_to_the_host(string binary)
    {
        DockerCli docker = Docker(binary);
        using var dir = new TempDirectory("propagation");
        string shared = Path.Combine(dir.Path, "shared"), plain = Path.Combine(dir.Path, "plain");
        Directory.CreateDirectory(shared);
        Directory.CreateDirectory(plain);
        // Mounts of their own, so the answer does not depend on how the host mounted /tmp.
        Assert.Equal(0, docker.Shell($"mount --bind '{shared}' '{shared}' && mount --make-shared '{shared}' && " +
            $"mount --bind '{plain}' '{plain}' && mount --make-private '{plain}'").Exit);
        try
        {
            docker.Ok("run", "--rm", "--cap-add", "SYS_ADMIN", "-v", shared + ":/vol:rshared", "busybox", "sh", "-c",
                "mkdir -p /vol/a && mount -t tmpfs tmpfs /vol/a && echo from-a > /vol/a/f");
            Assert.Equal("from-a\n", File.ReadAllText(Path.Combine(shared, "a", "f")));
            docker.Ok("run", "--name", "mounted", "--cap-add", "SYS_ADMIN", "--mount", $"type=bind,src={shared},dst=/vol,bind-propagation=rshared", "busybox", "sh", "-c",
                "mkdir -p /vol/b && mount -t tmpfs tmpfs /vol/b && echo from-b > /vol/b/f");
            Assert.Equal("from-b\n", File.ReadAllText(Path.Combine(shared, "b", "f")));
            Assert.Equal("rshared", docker.Ok("inspect", "-f", "{{range .Mounts}}{{.Propagation}}{{end}}", "mounted").Trim());

            var (exit, _, error) = docker.Run("run", "--rm", "-v", plain + ":/vol:rshared", "busybox", "true");
            Assert.NotEqual(0, exit);
            Assert.Contains($"path {plain} is mounted on {plain} but it is not a shared mount", error);
            (exit, _, error) = docker.Run("create", "--mount", $"type=bind,src={plain},dst=/vol,bind-propagation=sideways", "busybox");
            Assert.NotEqual(0, exit);
            Assert.Contains("invalid propagation mode: sideways", error);
        }
        finally
        {
            docker.Shell($"umount -R '{shared}'; umount '{plain}'");
        }
    }

    /// <summary>
    /// <c>--entrypoint ''</c> (the CLI sends [""]) clears the image's entrypoint and Cmd, as dockerd's
    /// mergeAndVerifyConfig; <c>--platform</c> other than the image's is dockerd's 404 (the CLI then pulls,
    /// or with --pull never says why).
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Entrypoint_reset_and_platform_mismatch_as_dockerd(string binary)
    {
        DockerCli docker = Docker(binary);
        Assert.Equal("x\n", docker.Ok("run", "--rm", "--entrypoint", "", "busybox", "echo", "x"));
        var (exit, _, error) = docker.Run("run", "--rm", "--entrypoint", "", "busybox");
        Assert.NotEqual(0, exit);
        Assert.Contains("Error response from daemon: No command specified", error); // dockerd's words, at create

        string actual = docker.Ok("image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "busybox").Trim();
        Assert.Matches("^[0-9a-f]{64}$", docker.Ok("create", "--pull", "never", "--platform", actual, "busybox").Trim());
        (exit, _, error) = docker.Run("create", "--pull", "never", "--platform", "linux/s390x", "busybox");
        Assert.NotEqual(0, exit);
        Assert.Contains($"image with reference busybox was found but does not match the specified platform: wanted linux/s390x, actual: {actual}", error);
    }

    /// <summary>
    /// <c>--privileged</c> (run and exec) and <c>--cap-add ALL</c> get every capability berthd holds in its bounding
    /// set, as moby's GetAllCapabilities: where root lacks one (CAP_SYS_RESOURCE on this machine) asking for it
    /// made capset refuse the whole set.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Privileged_containers_and_execs_get_the_daemons_bounding_set(string binary)
    {
        DockerCli docker = Docker(binary);
        string bounding = File.ReadLines("/proc/self/status").First(l => l.StartsWith("CapBnd:", StringComparison.Ordinal))["CapBnd:".Length..].Trim();
        Assert.Equal($"CapEff:\t{bounding}\n", docker.Ok("run", "--rm", "--privileged", "busybox", "grep", "CapEff", "/proc/self/status"));
        Assert.Equal($"CapEff:\t{bounding}\n", docker.Ok("run", "--rm", "--cap-add", "ALL", "busybox", "grep", "CapEff", "/proc/self/status"));
        docker.Ok("run", "-d", "--name", "plainpriv", "busybox", "sleep", "600");
        Assert.Equal($"CapEff:\t{bounding}\n", docker.Ok("exec", "--privileged", "plainpriv", "grep", "CapEff", "/proc/self/status"));
        // A capability outside that set cannot be added (this machine: CAP_SYS_RESOURCE), in dockerd's words.
        ulong mask = ulong.Parse(bounding, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        if (Berth.Oci.Capabilities.Names.Where((_, n) => (mask & (1UL << n)) == 0).FirstOrDefault() is { } missing)
        {
            var (exit, _, error) = docker.Run("run", "--rm", "--cap-add", missing, "busybox", "true");
            Assert.NotEqual(0, exit);
            Assert.Contains($"capability not supported by your kernel or not available in the current environment: \"{missing}\"", error);
        }
    }

    /// <summary>
    /// The primary group is among the supplementary groups of the container's process and of an exec,
    /// with <c>--group-add</c>'s after it, as dockerd sets them since 20.10.18 (GHSA-rc4r-wh2q-q6c4).
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void The_primary_group_is_a_supplementary_group_of_runs_and_execs(string binary)
    {
        DockerCli docker = Docker(binary);
        Assert.Equal("Groups:\t44 1000 \n", docker.Ok("run", "--rm", "-u", "1000:1000", "--group-add", "44", "busybox", "grep", "Groups", "/proc/self/status"));
        Assert.Equal("Groups:\t0 \n", docker.Ok("run", "--rm", "busybox", "grep", "Groups", "/proc/self/status"));

        docker.Ok("run", "-d", "--name", "groups", "--group-add", "44", "busybox", "sleep", "1000");
        Assert.Equal("Groups:\t0 44 \n", docker.Ok("exec", "groups", "grep", "Groups", "/proc/self/status"));
        Assert.Equal("Groups:\t5 44 \n", docker.Ok("exec", "-u", "1000:5", "groups", "grep", "Groups", "/proc/self/status"));
    }

    /// <summary>
    /// rmi of a running container's image, as dockerd: refused unless forced; forced by name, the
    /// name goes and the image stays as &lt;none&gt; (ps shows its ID); by ID it cannot be forced;
    /// once the container is gone, it goes.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Rmi_of_a_running_containers_image_keeps_the_image(string binary)
    {
        DockerCli docker = Docker(binary);
        string container = docker.Ok("run", "-d", "busybox", "sleep", "1000").Trim();
        string id = docker.Ok("inspect", "-f", "{{.Image}}", container).Trim();
        var (exit, _, error) = docker.Run("rmi", "busybox");
        Assert.NotEqual(0, exit);
        Assert.Contains($"conflict: unable to remove repository reference \"busybox\" (must force) - container {container[..12]} is using its referenced image {id[7..19]}", error);

        Assert.Equal("Untagged: busybox:latest\n", docker.Ok("rmi", "-f", "busybox"));
        Assert.Equal($"<none>:<none> {id[7..19]}\n", docker.Ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"));
        // ps shows the image's ID once the name no longer gives it (dockerd's list).
        Assert.Equal($"{id[7..19]}\n", docker.Ok("ps", "--format", "{{.Image}}"));
        (exit, _, error) = docker.Run("rmi", "-f", id);
        Assert.NotEqual(0, exit);
        Assert.Contains($"conflict: unable to delete {id[7..19]} (cannot be forced) - image is being used by running container {container[..12]}", error);

        docker.Ok("rm", "-f", container);
        Assert.Contains($"Deleted: {id}", docker.Ok("rmi", id));
    }

    /// <summary>
    /// A kill right after a SIGKILL, as dockerd: done when it meets the container exiting (the runtime
    /// has no process any more, the exit is recorded a moment later), else the 409 "is not running";
    /// never the runtime's refusal. A few rounds meet that moment.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void A_kill_of_a_container_that_is_exiting_is_done_or_not_running(string binary)
    {
        DockerCli docker = Docker(binary);
        for (int round = 0; round < 5; round++)
        {
            string id = docker.Ok("run", "-d", "busybox", "sleep", "1000").Trim();
            docker.Ok("kill", id);
            var (exit, _, error) = docker.Run("kill", id);
            Assert.True(exit == 0 || error.Contains($"Cannot kill container: {id}: Container {id} is not running"), $"exit {exit}: {error}");
            docker.Ok("rm", "-f", id);
        }
    }

    /// <summary>
    /// Limits the host cannot give are refused at create in dockerd's words (they were the runtime's
    /// cgroup write errors at start): CPUs and memory nodes that are not there, a malformed list, a
    /// swap limit without a memory limit.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Unavailable_cpusets_and_a_lone_swap_limit_are_refused_at_create(string binary)
    {
        DockerCli docker = Docker(binary);
        void Refused(string expected, params string[] flags)
        {
            var (exit, _, error) = docker.Run(["create", .. flags, "busybox"]);
            Assert.True(exit != 0, $"{string.Join(' ', flags)} was taken");
            Assert.Contains(expected, error);
        }
        string cpus = ContainerRequestCheck.CpusetAvailable.Value.Cpus;
        Refused($"Requested CPUs are not available - requested 4096, available: {cpus}", "--cpuset-cpus", "4096");
        Refused($"Requested CPUs are not available - requested 0,4000-4096, available: {cpus}", "--cpuset-cpus", "0,4000-4096");
        Refused("Invalid value 0-x for cpuset cpus: invalid format: 0-x", "--cpuset-cpus", "0-x");
        Refused("Invalid value 3-1 for cpuset cpus: invalid format: 3-1", "--cpuset-cpus", "3-1");
        Refused("Requested memory nodes are not available - requested 77, available: ", "--cpuset-mems", "77");
        Refused("You should always set the Memory limit when using Memoryswap limit, see usage", "--memory-swap", "10m");
        Assert.Matches("^[0-9a-f]{64}$", docker.Ok("create", "--cpuset-cpus", "0", "--cpuset-mems", "0", "-m", "64m", "--memory-swap", "128m", "busybox").Trim());
    }

    /// <summary>A foreground run whose output is read slowly loses nothing (the container waits, as under dockerd).</summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void A_slow_reader_of_a_runs_output_gets_all_of_it(string binary)
    {
        DockerCli docker = Docker(binary);
        var (exit, output, error) = docker.Shell("$DOCKER run --rm busybox sh -c \"head -c 6000000 /dev/zero | tr '\\\\0' y; echo; echo end\" | (sleep 2; wc -c)");
        Assert.True(exit == 0, error);
        Assert.Equal((6_000_000 + "\nend\n".Length).ToString(System.Globalization.CultureInfo.InvariantCulture), output.Trim());
        (exit, output, error) = docker.Shell("$DOCKER run -d --name slowexec busybox sleep 100 >/dev/null && $DOCKER exec slowexec sh -c \"head -c 3000000 /dev/zero | tr '\\\\0' z; echo\" | (sleep 2; wc -c)");
        Assert.True(exit == 0, error);
        Assert.Equal("3000001", output.Trim());
    }

    /// <summary><c>docker update</c>: new limits reach the running container's cgroup, the record keeps them, bad values change nothing.</summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Update_changes_a_running_containers_limits_and_restart_policy(string binary)
    {
        DockerCli docker = Docker(binary);
        docker.Ok("run", "-d", "--name", "upd", "--memory", "64m", "--pids-limit", "20", "busybox", "sleep", "100");
        // The container's groups, read on the host (v1: a directory per controller; v2: one).
        string Read(string v1, string v2)
        {
            string id = docker.Ok("inspect", "-f", "{{.Id}}", "upd").Trim();
            string[] parts = v1.Split('/');
            string legacy = $"/sys/fs/cgroup/{parts[0]}{ContainerStats.DefaultCgroupParent}/{id}/{parts[1]}";
            return File.ReadAllText(File.Exists(legacy) ? legacy : $"/sys/fs/cgroup{ContainerStats.DefaultCgroupParent}/{id}/{v2}").Trim();
        }
        Assert.Equal("67108864", Read("memory/memory.limit_in_bytes", "memory.max"));
        Assert.Equal("20", Read("pids/pids.max", "pids.max"));

        Assert.Equal("upd\n", docker.Ok("update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "50", "--cpu-shares", "512", "--restart", "on-failure:3", "upd"));
        Assert.Equal("134217728", Read("memory/memory.limit_in_bytes", "memory.max"));
        Assert.Equal("50", Read("pids/pids.max", "pids.max"));
        const string format = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}";
        Assert.Equal("134217728 268435456 50 512 on-failure:3", docker.Ok("inspect", "-f", format, "upd").Trim());

        docker.Ok("update", "--pids-limit", "-1", "upd");
        Assert.Equal("max", Read("pids/pids.max", "pids.max"));

        // Refused, and nothing changed.
        var (exit, _, error) = docker.Run("update", "--memory", "1m", "upd");
        Assert.NotEqual(0, exit);
        Assert.Contains("Minimum memory limit allowed is 6MB", error);
        Assert.Equal("134217728", Read("memory/memory.limit_in_bytes", "memory.max"));
        (exit, _, error) = docker.Run("update", "--cpuset-cpus", "4096", "upd");
        Assert.NotEqual(0, exit);
        Assert.Contains("Requested CPUs are not available - requested 4096, available: ", error);
        docker.Ok("run", "-d", "--rm", "--name", "rmc", "busybox", "sleep", "100");
        (exit, _, error) = docker.Run("update", "--restart", "always", "rmc");
        Assert.NotEqual(0, exit);
        Assert.Contains("Restart policy cannot be updated because AutoRemove is enabled for the container", error);

        // A stopped container: only the record changes, and its next start has the new limit.
        docker.Ok("stop", "-t", "0", "upd");
        docker.Ok("update", "--memory", "96m", "upd");
        docker.Ok("start", "upd");
        Assert.Equal("100663296", Read("memory/memory.limit_in_bytes", "memory.max"));
    }

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Detached_run_ps_logs_exec_stop_rm(string binary)
    {
        DockerCli docker = Docker(binary);
        string id = docker.Ok("run", "-d", "--name", "web", "busybox", "sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done").Trim();
        Assert.Equal(64, id.Length);
        Assert.Contains("web", docker.Ok("ps", "--format", "{{.Names}} {{.Status}}"));
        WaitFor(() => docker.Ok("logs", "web").Contains("started"), "the log line");

        Assert.Equal("inside\n", docker.Ok("exec", "web", "echo", "inside"));
        var (exit, _, _) = docker.Run("exec", "web", "sh", "-c", "exit 9");
        Assert.Equal(9, exit);
        string ps = docker.Ok("exec", "web", "ps");
        Assert.Contains("sleep", ps); // the exec sees the container's processes (same pid namespace)
        Assert.Equal("hi there\n", docker.Shell("echo 'hi there' | $DOCKER exec -i web cat").Out);
        Assert.Contains("sh -c echo started", docker.Ok("top", "web"));
        Assert.Contains("web", docker.Ok("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "web"));

        docker.Ok("stop", "web");
        Assert.Contains("bye", docker.Ok("logs", "web"));
        Assert.Equal("exited 0", docker.Ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web").Trim());
        Assert.Contains("Exited (0)", docker.Ok("ps", "-a", "--format", "{{.Status}}"));
        docker.Ok("rm", "web");
        Assert.Equal("", docker.Ok("ps", "-aq").Trim());
        (exit, _, string error) = docker.Run("logs", "web");
        Assert.NotEqual(0, exit);
        Assert.Contains("No such container: web", error);
    }

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Tty_run_and_exec_go_through_a_pty(string binary)
    {
        DockerCli docker = Docker(binary);
        // script(1) gives the client a terminal; the container sees one too.
        var (exit, output, error) = docker.Shell("script -qec \"$DOCKER run --rm -t busybox sh -c 'test -t 0 && echo is-a-tty'\" /dev/null");
        Assert.True(exit == 0, error + output);
        Assert.Contains("is-a-tty", output);

        docker.Ok("run", "-d", "--name", "tt", "busybox", "sleep", "1000");
        // Known issue (see the session note): under heavy load the output of a fast `exec -t` is
        // very rarely lost (about 1 run in 100 here; exit code intact). One retry, only then.
        (exit, output, error) = docker.Shell("script -qec \"$DOCKER exec -t tt sh -c 'test -t 1 && echo exec-tty; echo always; exit 4'\" /dev/null");
        if (output.Length == 0 && exit == 4)
            (exit, output, error) = docker.Shell("script -qec \"$DOCKER exec -t tt sh -c 'test -t 1 && echo exec-tty; echo always; exit 4'\" /dev/null");
        Assert.True(output.Contains("exec-tty"), $"exit {exit}, output [{output}], error [{error}]");
        Assert.True(exit == 4, $"exit {exit}: {output} {error}");
        docker.Ok("rm", "-f", "tt");
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("waiting for " + what);
            Thread.Sleep(100);
        }
    }
}

/// <summary>Python's docker SDK (Debian's python3-docker) running containers against berthd.</summary>
public sealed class DockerPyContainerTests : IAsyncLifetime
{
    private const string DebianPython = "/usr/bin/python3";
    private DaemonScope _daemon = null!;
    private TempDirectory _dir = null!;

    public async Task InitializeAsync()
    {
        _dir = new TempDirectory("docker-py");
        _daemon = await DaemonScope.StartAsync();
        await _daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
    }

    public async Task DisposeAsync()
    {
        if (_daemon is not null) await _daemon.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task Run_logs_exec_stop_remove_through_docker_py()
    {
        string script = _dir.Combine("containers.py");
        File.WriteAllText(script, """
            import docker, sys
            c = docker.DockerClient(base_url=sys.argv[1])
            out = c.containers.run("busybox", ["sh", "-c", "echo from-py"], remove=True)
            assert out == b"from-py\n", out
            ct = c.containers.run("busybox", ["sleep", "1000"], detach=True, name="pyc")
            ct.reload()
            assert ct.status == "running", ct.status
            code, output = ct.exec_run(["sh", "-c", "echo exec-out; exit 3"])
            assert (code, output) == (3, b"exec-out\n"), (code, output)
            assert [x.name for x in c.containers.list()] == ["pyc"]
            ct.stop(timeout=1)
            ct.reload()
            assert ct.attrs["State"]["ExitCode"] == 137, ct.attrs["State"]
            ct.remove()
            assert c.containers.list(all=True) == []
            print("ok")
            """);
        await RunPythonAsync(script);
    }

    /// <summary>
    /// What docker-py tripped on: its stream decoder failed on an events or stats stream whose newline came
    /// as an HTTP chunk of its own ("Expecting value: line 2 column 1"), and it sends a health check's
    /// options that were not given as JSON nulls, which berthd refused as not numbers (Go reads them as 0),
    /// and its <c>volumes=["/data"]</c> is a bind of one part, an anonymous volume to moby (a 400 here).
    /// </summary>
    [Fact]
    public async Task Streams_null_options_and_one_part_binds_through_docker_py()
    {
        string script = _dir.Combine("streams.py");
        File.WriteAllText(script, """
            import docker, sys, time
            c = docker.DockerClient(base_url=sys.argv[1])
            since = int(time.time()) - 1
            c.containers.run("busybox", "true", remove=True, name="pyev")
            actions = [e["Action"] for e in c.events(since=since, until=int(time.time()) + 1, decode=True, filters={"container": "pyev"})]
            assert "start" in actions and "die" in actions, actions
            ct = c.containers.run("busybox", ["sleep", "1000"], detach=True, name="pyhc",
                                  healthcheck={"test": ["CMD", "true"], "interval": 200000000})
            samples = ct.stats(stream=True, decode=True)
            first, second = next(samples), next(samples)
            assert first["id"] == second["id"] == ct.id, (first["id"], second["id"])
            ct.reload()
            health = ct.attrs["Config"]["Healthcheck"]
            assert health["Interval"] == 200000000 and health.get("Timeout", 0) == 0 and health.get("Retries", 0) == 0, health
            ct.remove(force=True)
            lender = c.containers.create("busybox", "true", volumes=["/data"], name="pylender")
            assert [m["Destination"] for m in lender.attrs["Mounts"]] == ["/data"], lender.attrs["Mounts"]
            out = c.containers.run("busybox", ["sh", "-c", "touch /data/x && ls /data"], volumes_from=["pylender"], remove=True)
            assert out == b"x\n", out
            lender.remove(v=True)
            assert c.volumes.list() == [], c.volumes.list()
            print("ok")
            """);
        await RunPythonAsync(script);
    }

    private async Task RunPythonAsync(string script)
    {
        Assert.True(File.Exists("/usr/lib/python3/dist-packages/docker/__init__.py"), "python3-docker is not installed (apt-get install python3-docker)");
        var start = new System.Diagnostics.ProcessStartInfo(DebianPython) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(_daemon.DockerHost);
        using var p = System.Diagnostics.Process.Start(start)!;
        Task<string> error = p.StandardError.ReadToEndAsync();
        string output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(p.ExitCode == 0, await error);
        Assert.Equal("ok", output.Trim());
    }
}
