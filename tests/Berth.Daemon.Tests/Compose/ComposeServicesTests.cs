using System.Globalization;

namespace Berth.Daemon.Tests.Compose;

/// <summary>
/// A compose-spec project (no version key) as users write them: a multi-stage build with args, a
/// target, extra hosts and a shm size for its RUN steps, a dependency that must be healthy first, two networks (one with a fixed address and an
/// alias), env_file, extra_hosts, a file secret, a relative read-only bind, tmpfs, ulimits, limits,
/// and a sidecar in the database's network namespace under docker-init, read-only, as 1000:1000.
/// Then the everyday commands: exec, run, pause, top, port, logs, kill, start.
/// </summary>
[Collection(ComposeCollection.Name)]
public sealed class ComposeServicesTests(ComposeDaemonFixture fixture)
{
    private const string Project = "composesvc";

    private static readonly Dictionary<string, string> Files = new()
    {
        ["app/Dockerfile"] = """
            FROM busybox:latest AS base
            ARG GREETING=hello
            RUN echo "built with $GREETING" > /built.txt
            FROM base AS final
            RUN echo final >> /built.txt
            FROM base AS dev
            RUN echo dev >> /built.txt; grep buildhost /etc/hosts >> /built.txt; df -k /dev/shm | awk 'NR == 2 { print "shm", $2 }' >> /built.txt
            CMD ["sh", "-c", "echo app-started; exec httpd -f -p 8080 -h /"]
            """,
        ["app.env"] = "FROM_FILE=yes\n# a comment\nSPACED=a b\n",
        ["secret.txt"] = "s3cret\n",
        ["data/hello.txt"] = "bound\n",
        ["docker-compose.yml"] = """
            services:
              db:
                image: busybox:latest
                command: ["sh", "-c", "sleep 1; touch /ready; exec sleep 600"]
                healthcheck:
                  test: ["CMD", "test", "-f", "/ready"]
                  interval: 500ms
                  timeout: 2s
                  retries: 20
                networks:
                  back:
                    aliases: [database]
              app:
                build:
                  context: ./app
                  args:
                    GREETING: hi
                  target: dev
                  extra_hosts:
                    - "buildhost:10.9.9.9"
                  shm_size: "128m"
                image: composesvc-app:dev
                depends_on:
                  db:
                    condition: service_healthy
                networks:
                  front:
                    ipv4_address: 10.87.5.10
                  back: {}
                ports:
                  - "8080"
                env_file: app.env
                environment:
                  - EXPLICIT=1
                extra_hosts:
                  - "somehost:10.1.2.3"
                secrets: [token]
                volumes:
                  - ./data:/data:ro
                tmpfs:
                  - /run/cache:size=1m
                ulimits:
                  nofile:
                    soft: 1024
                    hard: 2048
                working_dir: /tmp
                mem_limit: 64m
                pids_limit: 100
              sidecar:
                image: busybox:latest
                command: ["sleep", "600"]
                network_mode: "service:db"
                init: true
                read_only: true
                user: "1000:1000"
            networks:
              front:
                ipam:
                  config:
                    - subnet: 10.87.5.0/24
              back: {}
            secrets:
              token:
                file: ./secret.txt
            """,
    };

    [ComposeFact]
    public async Task The_app_starts_once_its_database_is_healthy()
    {
        await fixture.UpAsync(Project, Files);
        var docker = fixture.Docker;
        Assert.Equal("healthy", docker.Ok("inspect", "-f", "{{.State.Health.Status}}", $"{Project}_db_1").Trim());
        DateTimeOffset dbStarted = StartedAt($"{Project}_db_1"), appStarted = StartedAt($"{Project}_app_1");
        Assert.True(appStarted - dbStarted >= TimeSpan.FromSeconds(1), $"db started {dbStarted:O}, app {appStarted:O}: the app did not wait for the healthy db");
    }

    [ComposeFact]
    public async Task The_app_gets_its_build_environment_networks_secret_mounts_and_limits()
    {
        ComposeProject project = await fixture.UpAsync(Project, Files);
        string script = string.Join("; ",
            "cat /built.txt",
            "echo env $FROM_FILE \"$SPACED\" $EXPLICIT",
            "grep somehost /etc/hosts",
            "ping -c1 -W2 database >/dev/null && echo alias-reached",
            "nslookup database | grep -q '^Name:' && head -1 /etc/resolv.conf",
            "ip -4 -o addr show | grep -o 10.87.5.10",
            "cat /run/secrets/token /data/hello.txt",
            "touch /data/x 2>/dev/null || echo bind-read-only",
            "echo nofile $(ulimit -n) $(ulimit -Hn)",
            "pwd",
            "grep ' /run/cache ' /proc/mounts | cut -d' ' -f3",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max");
        string[] lines = project.Ok("exec", "-T", "app", "sh", "-c", script).Trim().Split('\n');
        Assert.Equal(
            ["built with hi", "dev", "10.9.9.9\tbuildhost", "shm 65536", "env yes a b 1", "10.1.2.3\tsomehost", "alias-reached", "nameserver 127.0.0.11", "10.87.5.10", "s3cret", "bound", "bind-read-only", "nofile 1024 2048", "/tmp", "tmpfs", "67108864", "100"],
            lines);
    }

    /// <summary>
    /// compose builds through <c>docker build</c> by default (above: --add-host, and no shm_size, which
    /// compose's CLI builder leaves out); with COMPOSE_DOCKER_CLI_BUILD=0 docker-py posts /build with
    /// <c>extrahosts</c> and <c>shmsize</c>, which berthd refused before.
    /// </summary>
    [ComposeFact]
    public async Task A_docker_py_build_gives_its_RUN_steps_the_extra_hosts_and_shm_size()
    {
        ComposeProject project = await fixture.UpAsync(Project, Files);
        project.Ok(new Dictionary<string, string> { ["COMPOSE_DOCKER_CLI_BUILD"] = "0" }, "build", "--no-cache", "app");
        string built = fixture.Docker.Ok("run", "--rm", "--entrypoint", "cat", "composesvc-app:dev", "/built.txt");
        Assert.Equal("built with hi\ndev\n10.9.9.9\tbuildhost\nshm 131072", built.Trim());
    }

    [ComposeFact]
    public async Task Run_and_exec_pass_environment_entrypoint_and_exit_codes()
    {
        ComposeProject project = await fixture.UpAsync(Project, Files);
        Assert.Contains("FOO=bar", project.Ok("run", "--rm", "-T", "-e", "FOO=bar", "--entrypoint", "env", "db"));
        Assert.Equal(7, project.Run("run", "--rm", "-T", "db", "sh", "-c", "exit 7").Exit);
        Assert.Equal(5, project.Run("exec", "-T", "db", "sh", "-c", "exit 5").Exit);
        Assert.Equal("", fixture.Docker.Ok("ps", "-a", "-q", "--filter", $"label=com.docker.compose.project={Project}", "--filter", "label=com.docker.compose.oneoff=True").Trim());
    }

    [ComposeFact]
    public async Task The_sidecar_and_the_everyday_commands()
    {
        ComposeProject project = await fixture.UpAsync(Project, Files);
        var docker = fixture.Docker;

        // In db's network namespace, under docker-init, as 1000:1000, on a read-only root.
        string dbAddress = docker.Ok("inspect", "-f", $"{{{{(index .NetworkSettings.Networks \"{Project}_back\").IPAddress}}}}", $"{Project}_db_1").Trim();
        string sidecar = project.Ok("exec", "-T", "sidecar", "sh", "-c", "ip -4 -o addr show eth0; id -u; id -g; tr '\\0' ' ' < /proc/1/cmdline; echo; touch /x 2>/dev/null || echo read-only; nslookup app | grep -q '^Name:' && echo resolves-app");
        Assert.Contains($"inet {dbAddress}/", sidecar);
        Assert.Contains("1000\n1000\n/sbin/docker-init -- sleep 600", sidecar);
        Assert.Contains("read-only", sidecar);
        Assert.Contains("resolves-app", sidecar); // db's DNS server, in the namespace it shares

        // Only the default bridge fills the top-level address fields, as dockerd.
        Assert.Equal("", docker.Ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", $"{Project}_db_1").Trim());

        Assert.Contains("sleep 600", project.Ok("top", "sidecar"));
        Assert.Matches(@"^0\.0\.0\.0:\d+$", project.Ok("port", "app", "8080").Trim());
        Assert.Contains("app-started", project.Ok("logs", "--tail", "5", "app"));

        project.Ok("pause", "sidecar");
        Assert.Matches($@"{Project}_sidecar_1\s.*Paused", project.Ok("ps", "sidecar"));
        project.Ok("unpause", "sidecar");
        Assert.Matches($@"{Project}_sidecar_1\s.*Up", project.Ok("ps", "sidecar"));

        project.Ok("kill", "-s", "SIGKILL", "sidecar");
        Assert.Matches($@"{Project}_sidecar_1\s.*Exit 137", project.Ok("ps", "sidecar"));
        project.Ok("start", "sidecar");
        Assert.Matches($@"{Project}_sidecar_1\s.*Up", project.Ok("ps", "sidecar"));
    }

    private DateTimeOffset StartedAt(string container)
        => DateTimeOffset.Parse(fixture.Docker.Ok("inspect", "-f", "{{.State.StartedAt}}", container).Trim(), CultureInfo.InvariantCulture);
}
