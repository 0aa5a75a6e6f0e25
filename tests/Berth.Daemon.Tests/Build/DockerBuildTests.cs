using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Build;

/// <summary>
/// Builds against berthd with the real docker client's classic builder (DOCKER_BUILDKIT=0):
/// every instruction's effect on the image, multi-stage COPY --from, the cache hit and missed,
/// the shell-form/exec-form PID 1 difference, and hostile contexts refused with nothing left behind.
/// </summary>
public sealed class DockerBuildTests : IAsyncLifetime
{
    private DaemonScope _daemon = null!;
    private TempDirectory _config = null!;
    private TempDirectory _work = null!;

    public async Task InitializeAsync()
    {
        _config = new TempDirectory("docker-config");
        _work = new TempDirectory("build");
        _daemon = await DaemonScope.StartAsync(o => o with { Bridge = "none" });
        await _daemon.ImportBusyboxAsync("busybox:latest", "CMD [\"sh\"]");
    }

    public async Task DisposeAsync()
    {
        if (_daemon is not null) await _daemon.DisposeAsync();
        _config.Dispose();
        _work.Dispose();
    }

    private DockerCli Docker => new(DockerCli.Installed().Select(b => (string)b[0]).LastOrDefault() ?? DockerCli.Debian, _daemon.DockerHost, _config.Path);

    /// <summary>Writes a context directory: relative path → content (a directory when the content is null).</summary>
    private string Context(string name, params (string Path, string? Content)[] files)
    {
        string root = _work.CreateSubdirectory(name);
        foreach ((string path, string? content) in files)
        {
            string full = Path.Combine(root, path);
            if (content is null)
            {
                Directory.CreateDirectory(full);
                continue;
            }
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, content);
        }
        return root;
    }

    private (int Exit, string Out, string Err) Build(string context, params string[] args)
        => Docker.Shell($"cd '{context}' && DOCKER_BUILDKIT=0 $DOCKER build {string.Join(' ', args.Select(a => "'" + a.Replace("'", "'\\''") + "'"))} . 2>&1");

    private string BuildOk(string context, params string[] args)
    {
        var (exit, output, error) = Build(context, args);
        Assert.True(exit == 0, $"build exited {exit}\n{output}\n{error}");
        return output;
    }

    private async Task<JsonElement> InspectAsync(string image) => await _daemon.GetJsonAsync($"/images/{image}/json");

    /// <summary>
    /// RUN --mount in the classic builder: a cache that outlives builds, binds of the context (read-only;
    /// rw writes dropped; its content in the cache key), a tmpfs; none of them in the image; secrets refused.
    /// </summary>
    [Fact]
    public async Task Run_mounts_cache_bind_and_tmpfs()
    {
        string context = Context("mounts",
            ("Dockerfile", """
                FROM busybox
                ARG CACHE=/cache
                RUN --mount=type=cache,target=$CACHE,id=counter echo x >> /cache/runs && wc -l < /cache/runs > /runs-seen
                RUN --mount=type=bind,source=conf,target=/conf cat /conf/settings > /settings-seen && ! touch /conf/new 2>/dev/null
                RUN --mount=type=bind,target=/ctx,rw echo scribble > /ctx/scribble && ls /ctx > /ctx-seen
                RUN --mount=type=tmpfs,target=/scratch,size=1m echo t > /scratch/t && df /scratch | tail -1 | awk '{print $2}' > /tmpfs-seen
                """),
            ("conf/settings", "first\n"));
        BuildOk(context, "-t", "mounts:1");
        DockerCli docker = Docker;
        Assert.Equal("1", docker.Ok("run", "--rm", "mounts:1", "cat", "/runs-seen").Trim());
        Assert.Equal("first", docker.Ok("run", "--rm", "mounts:1", "cat", "/settings-seen").Trim());
        Assert.Equal("1024", docker.Ok("run", "--rm", "mounts:1", "cat", "/tmpfs-seen").Trim());
        Assert.Contains("scribble", docker.Ok("run", "--rm", "mounts:1", "cat", "/ctx-seen"));
        // What the mounts showed stays out of the image, and a rw bind's writes out of the context.
        Assert.Equal("gone", docker.Ok("run", "--rm", "mounts:1", "sh", "-c", "ls /cache/runs /conf/settings /ctx/Dockerfile /scratch/t 2>/dev/null || echo gone").Trim());
        Assert.False(File.Exists(Path.Combine(context, "scribble")));

        // The cache outlives the build (a second uncached build sees the first's line); a changed
        // bound file misses the cache of its step, as a COPY of it would.
        File.WriteAllText(Path.Combine(context, "conf/settings"), "second\n");
        string output = BuildOk(context, "-t", "mounts:2");
        Assert.Contains("Using cache", output); // the cache step: unchanged
        Assert.Equal("second", docker.Ok("run", "--rm", "mounts:2", "cat", "/settings-seen").Trim());
        BuildOk(context, "--no-cache", "-t", "mounts:3");
        Assert.Equal("2", docker.Ok("run", "--rm", "mounts:3", "cat", "/runs-seen").Trim());

        string secret = Context("secret", ("Dockerfile", "FROM busybox\nRUN --mount=type=secret,id=token cat /run/secrets/token\n"));
        var (exit, text, error) = Build(secret);
        Assert.NotEqual(0, exit);
        Assert.Contains("type=secret needs BuildKit's client session", text + error);
        await Task.CompletedTask;
    }

    /// <summary>
    /// RUN --mount=type=bind,from=: an earlier stage's (by name or index) or an image's files, read-only unless rw
    /// (then on a copy), a source through an absolute link resolved inside them, none of it in the layer; the step's cache key follows
    /// the stage's content; a missing source or stage is an error naming it. The directories made for the targets
    /// stay out of the layer.
    /// </summary>
    [Fact]
    public void Run_mounts_bind_another_stage_or_image()
    {
        const string Dockerfile = """
            FROM busybox AS builder
            ARG VERSION=1
            RUN mkdir -p /dist && echo "artifact $VERSION" > /dist/app && ln -s /dist /current
            FROM busybox
            RUN --mount=from=builder,source=/current,target=/in cat /in/app > /copied && ! touch /in/x 2>/dev/null
            RUN --mount=type=bind,from=0,source=dist,target=/rw,rw echo scribble > /rw/app && cat /rw/app > /scribbled
            RUN --mount=from=busybox:latest,target=/opt/bb/image ls /opt/bb/image/bin/busybox > /image-seen && mkdir /opt/kept
            """;
        string context = Context("mount-from", ("Dockerfile", Dockerfile));
        BuildOk(context, "-t", "mountfrom:1");
        Assert.Equal("artifact 1\n", Docker.Ok("run", "--rm", "mountfrom:1", "cat", "/copied"));
        Assert.Equal("scribble\n", Docker.Ok("run", "--rm", "mountfrom:1", "cat", "/scribbled"));
        Assert.Equal("/opt/bb/image/bin/busybox\n", Docker.Ok("run", "--rm", "mountfrom:1", "cat", "/image-seen"));
        // Nor the directories made for the targets (BuildKit's mount stubs), while what the step made beside them stays.
        Assert.Equal("gone", Docker.Ok("run", "--rm", "mountfrom:1", "sh", "-c", "ls -d /in /rw /opt/bb 2>/dev/null || echo gone").Trim());
        Assert.Equal("kept\n", Docker.Ok("run", "--rm", "mountfrom:1", "ls", "/opt"));

        // Same stage content: cached; another: the mounting step runs again.
        Assert.Contains("Using cache", BuildOk(context, "-t", "mountfrom:1"));
        BuildOk(context, "--build-arg", "VERSION=2", "-t", "mountfrom:2");
        Assert.Equal("artifact 2\n", Docker.Ok("run", "--rm", "mountfrom:2", "cat", "/copied"));

        var (exit, text, error) = Build(Context("mount-from-missing", ("Dockerfile", "FROM busybox AS a\nFROM busybox\nRUN --mount=from=a,source=/nosuch,target=/x true\n")));
        Assert.NotEqual(0, exit);
        Assert.Contains("--mount=from=a: source `nosuch` not found in the stage's or image's files", text + error);
        (exit, text, error) = Build(Context("mount-from-later", ("Dockerfile", "FROM busybox\nRUN --mount=from=5,target=/x true\n")));
        Assert.NotEqual(0, exit);
        Assert.Contains("--mount=from=5: stage 5 is not an earlier stage", text + error);
    }

    [Fact]
    public async Task Multi_stage_build_applies_every_instruction()
    {
        string context = Context("full",
            ("Dockerfile", """
                # syntax=docker/dockerfile:1
                ARG BASE=busybox:latest
                FROM ${BASE} AS build
                ARG GREETING=hello
                RUN mkdir -p /out && echo "$GREETING from build" > /out/greeting.txt
                RUN <<EOF
                echo heredoc-run > /out/heredoc.txt
                EOF
                COPY . /ctx/

                FROM busybox:latest
                MAINTAINER someone@example.com
                LABEL org.example.name="berth test" version=1
                ENV APP_HOME=/app \
                    MODE=test
                WORKDIR $APP_HOME
                RUN echo 'root:x:0:0::/root:/bin/sh' > /etc/passwd && echo 'app:x:1000:1000::/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group
                COPY --from=build /out/ ./from-build/
                COPY --from=build /ctx /ctx
                COPY --chown=app:app --chmod=640 files/a.txt ./files/
                COPY --chown=1000 files/sub ./files/sub/
                COPY *.txt ./
                ADD archive.tar.gz /opt/
                COPY <<EOF /app/inline.txt
                inline content
                EOF
                USER app
                EXPOSE 8080 53/udp
                VOLUME /data
                STOPSIGNAL SIGUSR1
                SHELL ["/bin/sh", "-c"]
                HEALTHCHECK --interval=5s --timeout=2s --retries=2 CMD true
                ONBUILD RUN echo onbuild
                ENTRYPOINT ["/bin/sh", "-c"]
                CMD ["cat /app/from-build/greeting.txt"]
                """),
            ("files/a.txt", "a\n"), ("files/sub/b.txt", "b\n"), ("one.txt", "one\n"), ("two.txt", "two\n"),
            ("ignored/secret.txt", "secret\n"), ("debug.log", "log\n"), (".dockerignore", "ignored/\n*.log\n"));
        WriteTarGz(Path.Combine(context, "archive.tar.gz"), ("x/y.txt", "from the archive\n"));

        string output = BuildOk(context, "-t", "full:1", "--build-arg", "GREETING=hi", "--label", "extra=yes");
        Assert.Contains("Step 1/", output);
        Assert.Contains("Successfully tagged full:1", output);

        JsonElement config = (await InspectAsync("full:1")).GetProperty("Config");
        Assert.Contains("APP_HOME=/app", config.GetProperty("Env").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("MODE=test", config.GetProperty("Env").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("berth test", config.GetProperty("Labels").GetProperty("org.example.name").GetString());
        Assert.Equal("yes", config.GetProperty("Labels").GetProperty("extra").GetString());
        Assert.Equal("/app", config.GetProperty("WorkingDir").GetString());
        Assert.Equal("app", config.GetProperty("User").GetString());
        Assert.Equal(["53/udp", "8080/tcp"], config.GetProperty("ExposedPorts").EnumerateObject().Select(p => p.Name).Order().ToArray());
        Assert.True(config.GetProperty("Volumes").TryGetProperty("/data", out _));
        Assert.Equal("SIGUSR1", config.GetProperty("StopSignal").GetString());
        Assert.Equal(["/bin/sh", "-c"], config.GetProperty("Shell").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(["CMD-SHELL", "true"], config.GetProperty("Healthcheck").GetProperty("Test").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(5_000_000_000, config.GetProperty("Healthcheck").GetProperty("Interval").GetInt64());
        Assert.Equal(2, config.GetProperty("Healthcheck").GetProperty("Retries").GetInt32());
        Assert.Equal(["RUN echo onbuild"], config.GetProperty("OnBuild").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(["/bin/sh", "-c"], config.GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(["cat /app/from-build/greeting.txt"], config.GetProperty("Cmd").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal("someone@example.com", (await InspectAsync("full:1")).GetProperty("Author").GetString());

        // The build arg reached RUN in the first stage; COPY --from carried its output over.
        Assert.Equal("hi from build\n", Docker.Ok("run", "--rm", "full:1"));
        string listing = Docker.Ok("run", "--rm", "full:1",
            "ls -ln /app/files/a.txt /app/files/sub/b.txt; cat /app/inline.txt /opt/x/y.txt /app/one.txt /app/two.txt /app/from-build/heredoc.txt; ls -a /ctx; id -u");
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(listing, @"-rw-r-----\s+1 1000\s+1000 .*/app/files/a.txt"), listing);
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(listing, @"-rw-r--r--\s+1 1000\s+1000 .*/app/files/sub/b.txt"), listing);
        Assert.Contains("inline content\nfrom the archive\none\ntwo\nheredoc-run\n", listing);
        Assert.DoesNotContain("ignored", listing); // .dockerignore: neither the directory nor *.log reached the build
        Assert.DoesNotContain("debug.log", listing);
        Assert.Contains("Dockerfile", listing);
        Assert.EndsWith("1000\n", listing);

        // The history has one entry per step of the final stage, newest first, RUN lines as run.
        string history = Docker.Ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "full:1");
        Assert.Contains("/bin/sh -c echo 'root:x:0:0::/root:/bin/sh' > /etc/passwd", history);
        Assert.Contains("#(nop)  EXPOSE 8080 53/udp", history);

        // A child image runs the ONBUILD trigger.
        string child = Context("child", ("Dockerfile", "FROM full:1\nUSER root\nRUN test -d /app\n"));
        string childOutput = BuildOk(child, "-t", "child:1");
        Assert.Contains("onbuild", childOutput);
        Assert.Equal(JsonValueKind.Null, (await InspectAsync("child:1")).GetProperty("Config").TryGetProperty("OnBuild", out JsonElement ob) ? ob.ValueKind : JsonValueKind.Null);
    }

    [Fact]
    public void Shell_form_and_exec_form_give_different_pid_1()
    {
        // Shell form: /bin/sh -c is PID 1 and the command its child (a list, so sh cannot exec it);
        // exec form: the program itself is PID 1, as the seeds describe for CMD redis-server.
        string shell = Context("shell", ("Dockerfile", "FROM busybox\nCMD cat /proc/1/cmdline; echo\n"));
        string exec = Context("exec", ("Dockerfile", "FROM busybox\nCMD [\"cat\", \"/proc/1/cmdline\"]\n"));
        BuildOk(shell, "-t", "pid1:shell");
        BuildOk(exec, "-t", "pid1:exec");
        Assert.Equal("/bin/sh -c cat /proc/1/cmdline; echo", Docker.Ok("run", "--rm", "pid1:shell").Replace('\0', ' ').Trim());
        Assert.Equal("cat /proc/1/cmdline", Docker.Ok("run", "--rm", "pid1:exec").Replace('\0', ' ').Trim());
    }

    [Fact]
    public async Task A_scratch_stage_gets_files_from_an_earlier_stage()
    {
        string context = Context("scratch", ("Dockerfile", """
            FROM busybox AS tools
            RUN echo made-in-stage-one > /x
            FROM scratch
            COPY --from=tools /bin/busybox /busybox
            COPY --from=0 /x /data/x
            ENTRYPOINT ["/busybox"]
            CMD ["cat", "/data/x"]
            """));
        BuildOk(context, "-t", "scratch:1");
        Assert.Equal("made-in-stage-one\n", Docker.Ok("run", "--rm", "scratch:1"));
        JsonElement image = await InspectAsync("scratch:1");
        Assert.Equal(2, image.GetProperty("RootFS").GetProperty("Layers").GetArrayLength()); // the two COPY layers only
        // /busybox and dockerd's /.dockerenv, nothing of the tools stage.
        Assert.Equal(["/.dockerenv", "/busybox"], Docker.Ok("run", "--rm", "scratch:1", "find", "/", "-maxdepth", "1", "-type", "f").Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_cache_is_hit_and_invalidated_by_content_and_arguments()
    {
        string context = Context("cache",
            ("Dockerfile", "FROM busybox\nARG V=1\nENV A=1\nCOPY app/ /app/\nRUN echo built-$V > /built\nCMD [\"cat\", \"/built\"]\n"),
            ("app/main.txt", "v1\n"));
        string first = BuildOk(context, "-t", "cache:1");
        Assert.DoesNotContain("Using cache", first);
        string id = Docker.Ok("image", "inspect", "-f", "{{.Id}}", "cache:1").Trim();

        // Unchanged: every step after FROM (ARG, ENV, COPY, RUN, CMD) is a hit, and the image is the same.
        string second = BuildOk(context, "-t", "cache:2");
        Assert.Equal(5, second.Split("Using cache").Length - 1);
        Assert.Equal(id, Docker.Ok("image", "inspect", "-f", "{{.Id}}", "cache:2").Trim());

        // A touched but unchanged file still hits; a changed one misses from its COPY on.
        File.SetLastWriteTimeUtc(Path.Combine(context, "app/main.txt"), DateTime.UtcNow.AddHours(1));
        Assert.Equal(5, BuildOk(context).Split("Using cache").Length - 1);
        File.WriteAllText(Path.Combine(context, "app/main.txt"), "v2\n");
        string changed = BuildOk(context, "-t", "cache:3");
        Assert.Equal(2, changed.Split("Using cache").Length - 1); // ARG, ENV
        Assert.Equal("built-1\n", Docker.Ok("run", "--rm", "cache:3"));

        // A different build arg misses at the RUN that sees it; --no-cache misses everywhere.
        string arg = BuildOk(context, "-t", "cache:4", "--build-arg", "V=2");
        Assert.Equal("built-2\n", Docker.Ok("run", "--rm", "cache:4"));
        Assert.Contains("Using cache", arg);
        Assert.DoesNotContain("Using cache", BuildOk(context, "--no-cache"));
    }

    [Fact]
    public async Task Hostile_contexts_and_failing_steps_are_refused_and_leave_nothing()
    {
        string outside = Context("outside", ("Dockerfile", "FROM busybox\nCOPY ../secret /x\n"));
        var (exit, output, _) = Build(outside);
        Assert.NotEqual(0, exit);
        Assert.Contains("outside the build context", output);

        string absolute = Context("absolute", ("Dockerfile", "FROM busybox\nCOPY /etc/passwd /x\n"));
        (exit, output, _) = Build(absolute);
        Assert.NotEqual(0, exit);
        Assert.Contains("absolute path", output);

        string link = Context("link", ("Dockerfile", "FROM busybox\nCOPY leak /x\n"));
        File.CreateSymbolicLink(Path.Combine(link, "leak"), "/etc/shadow");
        (exit, output, _) = Build(link);
        Assert.NotEqual(0, exit);
        Assert.Contains("outside the build context", output);

        // FROM --platform: the host's own platform (through a meta ARG) builds; another one is refused, not substituted.
        string host = Berth.Images.Manifests.PlatformMatcher.Host.ToString();
        BuildOk(Context("platform-ok", ("Dockerfile", $"ARG P={host}\nFROM --platform=$P busybox\nRUN true\n")));
        (exit, output, _) = Build(Context("platform-bad", ("Dockerfile", "FROM --platform=linux/s390x busybox\nRUN true\n")));
        Assert.NotEqual(0, exit);
        Assert.Contains("does not match the specified platform: wanted linux/s390x", output);

        string badSyntax = Context("syntax", ("Dockerfile", "FROM busybox\nFORM x\n"));
        (exit, output, _) = Build(badSyntax);
        Assert.NotEqual(0, exit);
        Assert.Contains("unknown instruction", output, StringComparison.OrdinalIgnoreCase);

        // A failing RUN stops the build with its output and exit code; with --force-rm no container is left.
        string failing = Context("failing", ("Dockerfile", "FROM busybox\nRUN echo failing-output && exit 3\nRUN echo never\n"));
        (exit, output, _) = Build(failing, "--force-rm");
        Assert.True(exit == 3, $"exit {exit}: {output}");
        Assert.Contains("failing-output", output);
        Assert.Contains("returned a non-zero code: 3", output);
        Assert.DoesNotContain("never", output.Replace("RUN echo never", ""));
        JsonElement containers = await _daemon.GetJsonAsync("/containers/json?all=1");
        Assert.Equal(0, containers.GetArrayLength());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_daemon.Host.Engine.Builds.TempDirectory));
    }

    /// <summary>
    /// The step containers as dockerd 20.10's classic builder leaves them (checked by hand with the same
    /// Dockerfiles): with --rm (the default) a failed RUN's container stays, its output in its log; with
    /// --force-rm it is removed ("Removing intermediate container ID" before the error); with --rm=false
    /// every step's stays, a config-only step's created and never started, its Cmd the step's #(nop)
    /// comment, and the step's image records it as its container.
    /// </summary>
    [Fact]
    public async Task Step_containers_stay_or_go_as_rm_and_force_rm_say()
    {
        static string Short(string text, string pattern) => System.Text.RegularExpressions.Regex.Match(text, pattern).Groups[1].Value;
        string failing = Context("rm-failing", ("Dockerfile", "FROM busybox\nENV A=1\nRUN echo kept-for-inspection; exit 3\n"));

        var (exit, output, _) = Build(failing);
        Assert.True(exit == 3, $"exit {exit}: {output}");
        string failed = Short(output, "RUN echo kept-for-inspection; exit 3\n ---> Running in ([0-9a-f]{12})\n");
        Assert.True(failed.Length == 12, output);
        Assert.Matches("ENV A=1\n ---> Running in ([0-9a-f]{12})\nRemoving intermediate container \\1\n ---> [0-9a-f]{12}\n", output);
        Assert.DoesNotContain("Removing intermediate container " + failed, output);
        JsonElement kept = await _daemon.GetJsonAsync($"/containers/{failed}/json");
        Assert.Equal("exited", kept.GetProperty("State").GetProperty("Status").GetString());
        Assert.Equal(3, kept.GetProperty("State").GetProperty("ExitCode").GetInt32());
        Assert.Equal("kept-for-inspection\n", Docker.Ok("logs", failed));
        Assert.Equal("\"/bin/sh -c 'echo kept-for-inspection; exit 3'\"\n", Docker.Ok("ps", "-a", "--no-trunc", "--format", "{{.Command}}"));
        Docker.Ok("rm", failed);

        (exit, output, _) = Build(failing, "--force-rm");
        Assert.True(exit == 3, $"exit {exit}: {output}");
        string removed = Short(output, "exit 3\n ---> (?:Using cache\n ---> )?Running in ([0-9a-f]{12})\n");
        Assert.Contains($"kept-for-inspection\nRemoving intermediate container {removed}\nThe command", output);
        Assert.Equal(0, (await _daemon.GetJsonAsync("/containers/json?all=1")).GetArrayLength());

        string working = Context("rm-false", ("Dockerfile", "FROM busybox\nENV B=1\nRUN echo ran > /ran\n"));
        output = BuildOk(working, "--rm=false", "--no-cache", "-t", "rm-false:1");
        Assert.DoesNotContain("Removing intermediate container", output);
        string envContainer = Short(output, "ENV B=1\n ---> Running in ([0-9a-f]{12})\n");
        string runContainer = Short(output, "/ran\n ---> Running in ([0-9a-f]{12})\n");
        JsonElement created = await _daemon.GetJsonAsync($"/containers/{envContainer}/json");
        Assert.Equal("created", created.GetProperty("State").GetProperty("Status").GetString());
        Assert.Equal(["/bin/sh", "-c", "#(nop) ", "ENV B=1"], created.GetProperty("Config").GetProperty("Cmd").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("exited", (await _daemon.GetJsonAsync($"/containers/{runContainer}/json")).GetProperty("State").GetProperty("Status").GetString());
        JsonElement image = await _daemon.GetJsonAsync("/v1.41/images/rm-false:1/json"); // Container: below API 1.45
        Assert.StartsWith(runContainer, image.GetProperty("Container").GetString());
        Assert.Equal(["/bin/sh", "-c", "echo ran > /ran"], image.GetProperty("ContainerConfig").GetProperty("Cmd").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(2, (await _daemon.GetJsonAsync("/containers/json?all=1")).GetArrayLength());
        Docker.Ok("rm", envContainer, runContainer);
    }

    /// <summary>
    /// dockerd's Parent: each step's image records the one it was built on, and <c>history</c> names
    /// every step's image through them (dockerd 20.10 shows the same IDs its build printed, the base's
    /// included), a cache hit's as much as a fresh one's.
    /// </summary>
    [Fact]
    public async Task Each_step_image_has_its_parent_and_history_names_them()
    {
        string context = Context("parents", ("Dockerfile", "FROM busybox\nENV A=1\nRUN echo x > /x\nCMD [\"sh\"]\n"));
        foreach (string[] args in new[] { new[] { "--no-cache" }, [] })
        {
            string output = BuildOk(context, [.. args, "-t", "parents:1"]);
            // FROM's, then ENV's, RUN's and CMD's images.
            List<string> ids = System.Text.RegularExpressions.Regex.Matches(output, " ---> ([0-9a-f]{12})\n").Select(m => m.Groups[1].Value).ToList();
            Assert.True(ids.Count == 4, output);
            Assert.StartsWith("sha256:" + ids[2], (await InspectAsync("parents:1")).GetProperty("Parent").GetString());
            Assert.StartsWith("sha256:" + ids[0], (await InspectAsync(ids[1])).GetProperty("Parent").GetString());
            Assert.Equal("", (await InspectAsync("busybox")).GetProperty("Parent").GetString());
            Assert.Equal(Enumerable.Reverse(ids), Docker.Ok("history", "-q", "parents:1").Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
    }

    /// <summary>
    /// dockerd 20.10's rmi of a built image: the step images only the build kept go with it, each said
    /// ("Deleted: sha256:…"), up to the base (it has a name) or a step another image was built on;
    /// <c>images -a</c> lists the step images before, as &lt;none&gt;; the cache misses after.
    /// </summary>
    [Fact]
    public void Rmi_of_a_built_image_removes_its_step_images_as_dockerd()
    {
        static List<string> Ids(string text, string pattern) => System.Text.RegularExpressions.Regex.Matches(text, pattern).Select(m => m.Groups[1].Value).ToList();
        string context = Context("rmi", ("Dockerfile", "FROM busybox\nENV A=1\nRUN echo x > /x\nCMD [\"sh\"]\n"));
        string output = BuildOk(context, "--no-cache", "-t", "rmi-built:1");
        List<string> steps = Ids(output, " ---> ([0-9a-f]{12})\n"); // busybox, ENV, RUN, CMD
        Assert.True(steps.Count == 4, output);
        string all = Docker.Ok("images", "-a", "-q", "--no-trunc"), named = Docker.Ok("images", "-q", "--no-trunc");
        Assert.All(steps, id => Assert.Contains("sha256:" + id, all));
        Assert.DoesNotContain("sha256:" + steps[1], named);
        Assert.DoesNotContain("sha256:" + steps[2], named);

        // An image built on the RUN step keeps it, and what is below it, when the first one goes.
        output = BuildOk(Context("rmi-child", ("Dockerfile", $"FROM {steps[2]}\nCMD [\"true\"]\n")), "-t", "rmi-child:1");
        string child = Ids(output, " ---> ([0-9a-f]{12})\n").Last();
        string removed = Docker.Ok("rmi", "rmi-built:1");
        Assert.StartsWith("Untagged: rmi-built:1\n", removed);
        Assert.Equal([steps[3]], Ids(removed, "Deleted: sha256:([0-9a-f]{12})")); // its layers are the RUN step's, which stays
        // Each image, and after the RUN step's the one layer it made (ENV and CMD make none), as dockerd says it.
        List<Berth.Images.Content.Digest> diffIds = System.Text.Json.JsonSerializer.Deserialize<List<string>>(
            Docker.Ok("image", "inspect", "--format", "{{json .RootFS.Layers}}", steps[2]))!.Select(Berth.Images.Content.Digest.Parse).ToList();
        string runLayer = Berth.Images.Manifests.ChainId.Compute(diffIds)[^1].Hex[..12];
        removed = Docker.Ok("rmi", "rmi-child:1");
        Assert.Equal([child, steps[2], runLayer, steps[1]], Ids(removed, "Deleted: sha256:([0-9a-f]{12})"));
        Assert.DoesNotContain("sha256:" + steps[1], Docker.Ok("images", "-a", "-q", "--no-trunc"));
        Docker.Ok("image", "inspect", "busybox");

        Assert.DoesNotContain("Using cache", BuildOk(context, "-t", "rmi-built:1"));
    }

    /// <summary>The ARGs before the first FROM are steps of their own, as dockerd 20.10 numbers and prints them.</summary>
    [Fact]
    public void Args_before_the_first_FROM_are_numbered_steps_as_dockerd_prints_them()
    {
        string context = Context("meta-args", ("Dockerfile", "ARG V=1\nARG BASE=busybox\nFROM $BASE\nARG V\nRUN echo V=$V\n"));
        string output = BuildOk(context, "--build-arg", "V=7");
        Assert.Contains("Step 1/5 : ARG V=1\nStep 2/5 : ARG BASE=busybox\nStep 3/5 : FROM $BASE\n ---> ", output);
        Assert.Contains("Step 5/5 : RUN echo V=$V\n", output);
        Assert.Contains("V=7\n", output);
    }

    /// <summary>--label: one LABEL step per label, in key order, its value as given (dockerd's buildLabelOptions).</summary>
    [Fact]
    public async Task Build_labels_are_one_step_each_in_key_order_and_not_expanded()
    {
        string context = Context("labels", ("Dockerfile", "FROM busybox\nARG X=expanded\n"));
        string output = BuildOk(context, "--label", "z=last", "--label", "a=$X", "-t", "labels:1");
        Assert.Contains("Step 3/4 : LABEL a=$X\n", output);
        Assert.Contains("Step 4/4 : LABEL z=last\n", output);
        JsonElement labels = (await InspectAsync("labels:1")).GetProperty("Config").GetProperty("Labels");
        Assert.Equal("$X", labels.GetProperty("a").GetString());
        Assert.Equal("last", labels.GetProperty("z").GetString());
    }

    /// <summary>dockerd's classic builder refuses a STOPSIGNAL it cannot parse at the step, not when a container of the image stops.</summary>
    [Fact]
    public async Task A_STOPSIGNAL_that_is_no_signal_fails_the_build_in_dockerds_words_and_tags_nothing()
    {
        var (exit, text, error) = Build(Context("bad-stopsignal", ("Dockerfile", "FROM busybox\nARG SIG=SIGBOGUS\nSTOPSIGNAL $SIG\n")), "-t", "badsignal:1");
        Assert.NotEqual(0, exit);
        Assert.Contains("Invalid signal: SIGBOGUS", text + error);
        await _daemon.GetJsonAsync("/images/badsignal:1/json", expectedStatus: 404);
        BuildOk(Context("rt-stopsignal", ("Dockerfile", "FROM busybox\nSTOPSIGNAL SIGRTMIN+3\n")), "-t", "rtsignal:1");
        Assert.Equal("SIGRTMIN+3", (await InspectAsync("rtsignal:1")).GetProperty("Config").GetProperty("StopSignal").GetString());
    }

    /// <summary>A build context of one file (mode 0644) as docker-py sends it: a tar in the request body.</summary>
    /// <summary>POST /build with <paramref name="contextTar"/> as the body, as docker-py sends it.</summary>
    private async Task<HttpResponseMessage> PostBuildAsync(byte[] contextTar, string query)
    {
        using var content = new ByteArrayContent(contextTar);
        content.Headers.ContentType = new("application/x-tar");
        return await _daemon.Client.PostAsync("/build?" + query, content);
    }

    private static byte[] ContextTar(string path, string content)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path) { Mode = (UnixFileMode)0x1A4, DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)) });
        return tar.ToArray();
    }

    [Fact]
    public async Task Build_api_streams_steps_and_reports_the_image_id()
    {
        // docker-py's way: the context tar in the body, the ID in an aux message.
        byte[] tar = ContextTar("build/Custom.dockerfile", "FROM busybox AS one\nRUN echo first > /f\nFROM busybox AS two\nRUN echo second > /f\n");
        using HttpResponseMessage response = await PostBuildAsync(tar, "t=api:1&dockerfile=build/Custom.dockerfile&target=one");
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        var messages = body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        string id = messages.Single(m => m.TryGetProperty("aux", out _)).GetProperty("aux").GetProperty("ID").GetString()!;
        Assert.StartsWith("sha256:", id);
        Assert.DoesNotContain(messages, m => m.TryGetProperty("stream", out JsonElement s) && s.GetString()!.Contains("second"));
        Assert.Equal("first\n", Docker.Ok("run", "--rm", "api:1", "cat", "/f"));

        // A bad request before any step is an HTTP error naming the problem.
        using HttpResponseMessage missing = await PostBuildAsync(tar, "dockerfile=nope");
        Assert.Equal(404, (int)missing.StatusCode);
        Assert.Contains("nope", await missing.Content.ReadAsStringAsync());
        using HttpResponseMessage badTarget = await PostBuildAsync(tar, "dockerfile=build/Custom.dockerfile&target=three");
        Assert.Equal(400, (int)badTarget.StatusCode);
        Assert.Contains("three", await badTarget.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// The classic builder's stream, message by message, as dockerd 20.10 sends it for the same
    /// Dockerfile: steps that only change the config have a container too (made, never started).
    /// </summary>
    [Fact]
    public async Task Build_stream_is_the_classic_builders_message_by_message()
    {
        byte[] tar = ContextTar("Dockerfile", "FROM busybox AS base\nENV A=1\nRUN echo out && sleep 0.2 && echo err >&2\nONBUILD RUN true\nFROM base\nRUN true\n");
        using HttpResponseMessage response = await PostBuildAsync(tar, "t=stream:1&nocache=1");
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        List<string> messages = body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .Select(m => m.TryGetProperty("aux", out JsonElement aux) ? "aux " + aux.GetProperty("ID").GetString()![..7] : m.GetProperty("stream").GetString()!)
            .Select(m => System.Text.RegularExpressions.Regex.Replace(m, "[0-9a-f]{12}", "ID"))
            .ToList();
        Assert.Equal([
            "Step 1/6 : FROM busybox AS base", "\n", " ---> ID\n",
            "Step 2/6 : ENV A=1", "\n", " ---> Running in ID\n", "Removing intermediate container ID\n", " ---> ID\n",
            "Step 3/6 : RUN echo out && sleep 0.2 && echo err >&2", "\n", " ---> Running in ID\n", "out\n", "\u001b[91merr\n\u001b[0m", "Removing intermediate container ID\n", " ---> ID\n",
            "Step 4/6 : ONBUILD RUN true", "\n", " ---> Running in ID\n", "Removing intermediate container ID\n", " ---> ID\n",
            "aux sha256:",
            "Step 5/6 : FROM base", "\n", "# Executing 1 build trigger", "\n", " ---> Running in ID\n", "Removing intermediate container ID\n", " ---> ID\n",
            "Step 6/6 : RUN true", "\n", " ---> Running in ID\n", "Removing intermediate container ID\n", " ---> ID\n",
            "aux sha256:",
            "Successfully built ID\n", "Successfully tagged stream:1\n",
        ], messages);

        // As dockerd's builder, a stage whose base has no PATH (an imported one here) gets the default first.
        JsonElement env = (await InspectAsync("stream:1")).GetProperty("Config").GetProperty("Env");
        Assert.Equal(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1"], env.EnumerateArray().Select(e => e.GetString()));

        // q=1: the image's ID alone, no aux message.
        using HttpResponseMessage quiet = await PostBuildAsync(tar, "q=1");
        string quietBody = await quiet.Content.ReadAsStringAsync();
        Assert.Matches("^\\{\"stream\":\"sha256:[0-9a-f]{64}\\\\n\"\\}\r?\n$", quietBody);
    }

    [Fact]
    public async Task Docker_py_builds_and_reports_a_failed_step()
    {
        if (!File.Exists("/usr/lib/python3/dist-packages/docker/__init__.py")) return; // python3-docker is optional (.ci/run installs it)
        string script = Path.Combine(_work.Path, "build.py");
        File.WriteAllText(script, """
            import docker, io, sys
            c = docker.DockerClient(base_url=sys.argv[1])
            image, logs = c.images.build(fileobj=io.BytesIO(b'FROM busybox\nRUN echo from-py > /f\nCMD ["cat", "/f"]\n'), tag='py:1')
            print(image.tags, c.containers.run('py:1', remove=True).decode().strip())
            try:
                c.images.build(fileobj=io.BytesIO(b'FROM busybox\nRUN exit 4\n'))
            except docker.errors.BuildError as e:
                print('failed:', e.msg)
            """);
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(_daemon.DockerHost);
        using var p = System.Diagnostics.Process.Start(start)!;
        Task<string> output = p.StandardOutput.ReadToEndAsync(), error = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(timeout.Token);
        Assert.True(p.ExitCode == 0, await error);
        Assert.Equal("['py:1'] from-py\nfailed: The command '/bin/sh -c exit 4' returned a non-zero code: 4", (await output).Trim());
    }

    private static void WriteTarGz(string path, params (string Name, string Content)[] files)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var writer = new TarWriter(gzip, TarEntryFormat.Pax);
        foreach ((string name, string content) in files)
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)0x1A4, DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)) });
    }
}
