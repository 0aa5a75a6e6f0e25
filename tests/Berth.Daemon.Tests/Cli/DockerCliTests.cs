using System.Text.Json;

namespace Berth.Daemon.Tests.Cli;

/// <summary>
/// The real docker clients (28.x at /usr/local/bin, Debian's 20.10 at /usr/bin) against berthd
/// hosted in-process, and a real Distribution registry. Each test gets its own daemon and
/// registry in temp directories, all removed (registry killed by PID) at the end.
/// </summary>
public sealed class DockerCliTests : IAsyncLifetime
{
    private DaemonScope _daemon = null!;
    private RegistryProcess _registry = null!;
    private TempDirectory _config = null!;

    public async Task InitializeAsync()
    {
        _registry = new RegistryProcess();
        _config = new TempDirectory("docker-config");
        _daemon = await DaemonScope.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_daemon is not null) await _daemon.DisposeAsync();
        _registry.Dispose();
        _config.Dispose();
    }

    private DockerCli Docker(string binary) => new(binary, _daemon.DockerHost, _config.Path);

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Version_and_info(string binary)
    {
        DockerCli docker = Docker(binary);
        string version = docker.Ok("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}");
        Assert.Equal("0.1.0 1.51 1.41 linux", version.Trim());
        string info = docker.Ok("info", "--format", "{{.Images}} {{.Driver}} {{.DefaultRuntime}} {{.DockerRootDir}} {{.NCPU}}");
        Assert.Equal($"0 overlayfs berth-runtime {_daemon.Options.DataRoot} {Environment.ProcessorCount}", info.Trim());
        // The human form parses too (no template errors, no warnings about a missing field).
        var (exit, output, error) = docker.Run("info");
        Assert.True(exit == 0, error);
        Assert.Contains("Default Runtime: berth-runtime", output);
        Assert.Equal("", docker.Ok("images", "-q").Trim());
    }

    /// <summary>Docker's pull lines per layer, through the API: download, then Extracting with a byte count, then Pull complete, once.</summary>
    [Fact]
    public async Task Pull_stream_shows_each_layer_extracting_after_its_download_then_pull_complete()
    {
        string name = $"{_registry.Host}/extract:1";
        await _daemon.ImportBusyboxAsync(name, "CMD [\"/bin/sh\"]");
        using (var push = new HttpRequestMessage(HttpMethod.Post, $"/images/{name}/push"))
        {
            push.Headers.Add("X-Registry-Auth", "e30="); // {}
            using HttpResponseMessage pushed = await _daemon.Client.SendAsync(push);
            string body = await pushed.Content.ReadAsStringAsync();
            Assert.True(pushed.IsSuccessStatusCode && !body.Contains("errorDetail"), body);
        }
        using (HttpResponseMessage removed = await _daemon.Client.DeleteAsync($"/images/{name}"))
            Assert.True(removed.IsSuccessStatusCode, await removed.Content.ReadAsStringAsync());

        using HttpResponseMessage pull = await _daemon.Client.PostAsync($"/images/create?fromImage={_registry.Host}/extract&tag=1", null);
        string stream = await pull.Content.ReadAsStringAsync();
        List<JsonElement> lines = stream.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        List<(string? Id, string? Status)> statuses = lines
            .Select(l => (l.TryGetProperty("id", out JsonElement i) ? i.GetString() : null, l.TryGetProperty("status", out JsonElement s) ? s.GetString() : null)).ToList();
        string layer = statuses.First(s => s.Status == "Download complete").Id!;
        int downloaded = statuses.IndexOf((layer, "Download complete"));
        int extracting = statuses.IndexOf((layer, "Extracting"));
        int complete = statuses.IndexOf((layer, "Pull complete"));
        Assert.True(downloaded >= 0 && downloaded < extracting && extracting < complete, stream);
        Assert.Single(statuses, s => s == (layer, "Pull complete"));
        JsonElement detail = lines[extracting].GetProperty("progressDetail");
        Assert.True(detail.GetProperty("total").GetInt64() > 0, stream);
        Assert.Contains("Status: Downloaded newer image for " + name, stream);
    }

    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public async Task Image_workflow_push_pull_tag_rmi_inspect_history_save_load(string binary)
    {
        DockerCli docker = Docker(binary);
        string name = $"{_registry.Host}/busybox:latest";

        // Seed the registry: import a busybox rootfs through the API, push it with docker, drop it.
        string id = await _daemon.ImportBusyboxAsync(name, "CMD [\"/bin/sh\"]");
        string push = docker.Ok("push", name);
        Assert.Contains("latest: digest: sha256:", push);
        Assert.Contains("Untagged: " + name, docker.Ok("rmi", name));
        Assert.Equal("", docker.Ok("images", "-q").Trim());

        string pull = docker.Ok("pull", name);
        Assert.Contains("Pull complete", pull);
        Assert.Contains("Status: Downloaded newer image for " + name, pull);
        Assert.Contains("Status: Image is up to date for " + name, docker.Ok("pull", name));

        string images = docker.Ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}");
        Assert.Equal($"{name} {id[7..19]}", images.Trim());
        // Both layers of names resolve: by name, by short ID.
        JsonElement inspect = JsonDocument.Parse(docker.Ok("image", "inspect", name)).RootElement[0];
        Assert.Equal(id, inspect.GetProperty("Id").GetString());
        Assert.Equal("/bin/sh", inspect.GetProperty("Config").GetProperty("Cmd")[0].GetString());
        Assert.Contains(inspect.GetProperty("RepoDigests").EnumerateArray(), d => d.GetString()!.StartsWith(_registry.Host + "/busybox@sha256:"));
        Assert.Equal(id, docker.Ok("image", "inspect", "--format", "{{.Id}}", id[7..19]).Trim());

        // An imported layer's history has a comment and no command, as dockerd's import writes it.
        string history = docker.Ok("history", "--no-trunc", "--format", "{{.ID}} [{{.CreatedBy}}] {{.Comment}}", name);
        Assert.StartsWith(id + " [] Imported from", history.Trim());

        docker.Ok("tag", name, "berth-test/copy:v1");
        Assert.Contains("berth-test/copy:v1", docker.Ok("images", "--format", "{{.Repository}}:{{.Tag}}"));
        Assert.Contains("berth-test/copy", docker.Ok("images", "--filter", "reference=berth-test/*", "--format", "{{.Repository}}"));
        Assert.Contains("Untagged: berth-test/copy:v1", docker.Ok("rmi", "berth-test/copy:v1"));

        // docker save | docker load, after removing the image.
        string archive = _config.Combine("bb.tar");
        var (saveExit, _, saveErr) = docker.Shell($"\"$DOCKER\" save {name} > {archive}");
        Assert.True(saveExit == 0, saveErr);
        string rmi = docker.Ok("rmi", name);
        Assert.Contains("Deleted: " + id, rmi);
        var (loadExit, loadOut, loadErr) = docker.Shell($"\"$DOCKER\" save {name} 2>/dev/null; cat {archive} | \"$DOCKER\" load");
        Assert.True(loadExit == 0, loadErr);
        Assert.Contains("Loaded image: " + name, loadOut);
        Assert.Equal(id, docker.Ok("image", "inspect", "--format", "{{.Id}}", name).Trim());

        // Errors come back as Docker's messages and exit codes.
        var (missingExit, _, missingErr) = docker.Run("image", "inspect", "nothere:latest");
        Assert.NotEqual(0, missingExit);
        Assert.Contains("No such image", missingErr);
        var (pullExit, _, pullErr) = docker.Run("pull", $"{_registry.Host}/nothere:latest");
        Assert.NotEqual(0, pullExit);
        Assert.Contains("manifest", pullErr + "");
        var (swarmExit, _, swarmErr) = docker.Run("swarm", "leave");
        Assert.NotEqual(0, swarmExit);
        Assert.Contains("not implemented in this version of berthd", swarmErr);
    }

    /// <summary>
    /// <c>docker login</c> against berthd (POST /auth checks the password with the registry's token
    /// server), then push and pull with what the docker client stored, and <c>docker logout</c>.
    /// </summary>
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public async Task Docker_login_is_checked_by_berthd_and_push_and_pull_send_the_stored_credentials(string binary)
    {
        using var registry = new TokenRegistry("alice", "s3cret");
        DockerCli docker = Docker(binary);
        string name = $"{registry.Host}/secure/app:1";
        await _daemon.ImportBusyboxAsync(name);

        var (wrongExit, _, wrongErr) = docker.Shell($"echo nope | $DOCKER login -u alice --password-stdin {registry.Host}");
        Assert.NotEqual(0, wrongExit);
        Assert.Contains("Error response from daemon", wrongErr);
        Assert.Contains("alice", wrongErr);

        var (exit, output, error) = docker.Shell($"echo s3cret | $DOCKER login -u alice --password-stdin {registry.Host}");
        Assert.True(exit == 0, error);
        Assert.Contains("Login Succeeded", output);

        Assert.Contains("digest: sha256:", docker.Ok("push", name));
        docker.Ok("rmi", name);
        docker.Ok("pull", name);
        docker.Ok("rmi", name);
        Assert.Contains("Removing login credentials", docker.Ok("logout", registry.Host));
        // Refused now, in dockerd's words (a 404: a 401 would make the client ask for a login).
        var (pullExit, _, pullErr) = docker.Shell($"$DOCKER pull {name} < /dev/null");
        Assert.NotEqual(0, pullExit);
        Assert.Contains($"pull access denied for {registry.Host}/secure/app, repository does not exist or may require 'docker login'", pullErr);
    }

    /// <summary>Python's docker SDK (Debian's python3-docker, installed by .ci/run): its ordinary container workflow.</summary>
    [Fact]
    public async Task Docker_py_runs_a_container_reads_its_logs_execs_stops_and_removes_it()
    {
        Assert.True(File.Exists("/usr/lib/python3/dist-packages/docker/__init__.py"), "python3-docker is not installed (apt-get install python3-docker)");
        await _daemon.ImportBusyboxAsync("busybox:latest");
        string script = _config.Combine("t.py");
        File.WriteAllText(script, """
            import docker, sys, time
            c = docker.DockerClient(base_url=sys.argv[1])
            assert c.ping()
            print(c.version()["ApiVersion"], c.info()["DefaultRuntime"], [t for i in c.images.list() for t in i.tags])
            web = c.containers.run("busybox", ["sh", "-c", "echo hello; exec sleep 100"], detach=True, name="py-web", environment={"GREETING": "hi"})
            for _ in range(100):
                if web.logs(): break
                time.sleep(0.05)
            web.reload()
            print(web.status, web.name, web.logs().decode().strip())
            code, out = web.exec_run(["sh", "-c", "echo $((6*7)) $GREETING; exit 4"])
            print(code, out.decode().strip())
            print([x.name for x in c.containers.list()])
            web.stop(timeout=1)
            web.reload()
            print(web.status, web.attrs["State"]["ExitCode"])
            web.remove()
            print(c.containers.run("busybox", ["sh", "-c", "echo done"], remove=True).decode().strip())
            short = c.containers.run("busybox", ["sh", "-c", "exit 3"], detach=True)
            print(short.wait()["StatusCode"])
            short.remove()
            try:
                c.containers.get("py-web")
            except docker.errors.NotFound as e:
                print("NotFound", "No such container" in str(e))
            print(len(c.containers.list(all=True)))
            """);
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(_daemon.DockerHost);
        using var p = System.Diagnostics.Process.Start(start)!;
        Task<string> output = p.StandardOutput.ReadToEndAsync(), error = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "docker-py did not finish within 2 minutes");
        Assert.True(p.ExitCode == 0, await error);
        Assert.Equal("""
            1.51 berth-runtime ['busybox:latest']
            running py-web hello
            4 42 hi
            ['py-web']
            exited 137
            done
            3
            NotFound True
            0
            """, (await output).Trim());
    }
}
