using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Volumes;

/// <summary>
/// The real docker clients (28.x and Debian's 20.10) against berthd: docker volume
/// create/ls/inspect/rm/prune and docker run -v / --mount. Each test's daemon removes its
/// containers, its mounts and its directory (volumes included) at the end.
/// </summary>
public sealed class DockerCliVolumeTests : DockerCliTestBase
{
    [Theory]
    [MemberData(nameof(DockerCli.Installed), MemberType = typeof(DockerCli))]
    public void Volume_create_ls_inspect_run_rm(string binary)
    {
        var docker = Docker(binary);
        Assert.Equal("data\n", docker.Ok("volume", "create", "--label", "team=a", "data"));
        Assert.Equal("scratch\n", docker.Ok("volume", "create", "-d", "local", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=5m", "scratch"));
        Assert.Equal("data\nscratch\n", docker.Ok("volume", "ls", "-q"));
        string table = docker.Ok("volume", "ls");
        Assert.Matches(@"DRIVER\s+VOLUME NAME", table);
        Assert.Matches(@"local\s+data", table);
        Assert.Equal("data\n", docker.Ok("volume", "ls", "-q", "--filter", "label=team=a"));
        Assert.Equal("data local local a\n", docker.Ok("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels.team}}", "data"));
        Assert.Contains("\"Mountpoint\": \"" + Path.Combine(Daemon.Options.DataRoot, "volumes", "data", "_data") + "\"", docker.Ok("volume", "inspect", "data"));
        var (exit, _, error) = docker.Run("volume", "inspect", "nosuch");
        Assert.NotEqual(0, exit);
        Assert.Contains("no such volume", error, StringComparison.OrdinalIgnoreCase);
        (exit, _, error) = docker.Run("volume", "create", "bad/name");
        Assert.NotEqual(0, exit);
        Assert.Contains("includes invalid characters for a local volume name", error);

        docker.Ok("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo persisted > /data/file");
        Assert.Equal("persisted\n", docker.Ok("run", "--rm", "-v", "data:/data:ro", "busybox", "cat", "/data/file"));
        Assert.Equal("persisted\n", docker.Ok("run", "--rm", "--mount", "type=volume,source=data,target=/mnt,readonly", "busybox", "cat", "/mnt/file"));
        Assert.Contains("tmpfs /data tmpfs", docker.Ok("run", "--rm", "-v", "scratch:/data", "busybox", "grep", " /data ", "/proc/mounts"));
        (exit, _, error) = docker.Run("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "touch /data/x && echo rw-ok");
        Assert.Equal(0, exit);

        // In use by a stopped container: refused until the container goes.
        docker.Ok("create", "--name", "user", "-v", "data:/data", "busybox", "true");
        (exit, _, error) = docker.Run("volume", "rm", "data");
        Assert.NotEqual(0, exit);
        Assert.Contains("volume is in use", error);
        Assert.Equal("volume data /data\n", docker.Ok("inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}", "user"));
        docker.Ok("rm", "user");
        Assert.Equal("data\n", docker.Ok("volume", "rm", "data"));
        Assert.Equal("scratch\n", docker.Ok("volume", "ls", "-q"));

        // docker run -v /path: an anonymous volume; rm -v takes it, prune takes unused anonymous ones.
        docker.Ok("create", "--name", "anon", "-v", "/cache", "busybox", "true");
        string anonymous = docker.Ok("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "anon").Trim();
        Assert.Matches("^[0-9a-f]{64}$", anonymous);
        docker.Ok("rm", "-v", "anon");
        Assert.DoesNotContain(anonymous, docker.Ok("volume", "ls", "-q"));
        docker.Ok("run", "--rm", "-v", "/cache", "busybox", "true");
        Assert.Equal("scratch\n", docker.Ok("volume", "ls", "-q")); // --rm took its anonymous volume
        docker.Ok("create", "--name", "anon2", "-v", "/cache", "busybox", "true");
        docker.Ok("rm", "anon2");
        Assert.Equal(2, docker.Ok("volume", "ls", "-q").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        string pruned = docker.Ok("volume", "prune", "-f");
        Assert.Contains("Total reclaimed space", pruned);
        // 28.x (API 1.51) prunes anonymous volumes only; 20.10 (API 1.41) every unused one, as dockerd does per version.
        Assert.Equal(binary == DockerCli.Modern ? "scratch\n" : "", docker.Ok("volume", "ls", "-q"));
    }

    /// <summary>docker 28's <c>--mount …,volume-subpath=</c> (API 1.45+; 20.10's CLI has no such key).</summary>
    [Fact]
    public void Run_mount_volume_subpath()
    {
        if (!File.Exists(DockerCli.Modern)) return;
        var docker = Docker(DockerCli.Modern);
        docker.Ok("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "mkdir -p /data/sub && echo in > /data/sub/f && echo out > /data/top");
        Assert.Equal("f\nin\n", docker.Ok("run", "--rm", "--mount", "type=volume,src=data,dst=/mnt,volume-subpath=sub", "busybox", "sh", "-c", "ls -A /mnt; cat /mnt/f"));
        var (exit, _, error) = docker.Run("run", "--rm", "--mount", "type=volume,src=data,dst=/mnt,volume-subpath=sub,readonly", "busybox", "sh", "-c", "echo x > /mnt/g");
        Assert.NotEqual(0, exit);
        Assert.Contains("Read-only file system", error);
        (exit, _, error) = docker.Run("run", "--rm", "--mount", "type=volume,src=data,dst=/mnt,volume-subpath=../x", "busybox", "true");
        Assert.NotEqual(0, exit);
        Assert.Contains("subpath must be a relative path within the volume", error);
        (exit, _, error) = docker.Run("run", "--rm", "--mount", "type=volume,src=data,dst=/mnt,volume-subpath=nope", "busybox", "true");
        Assert.NotEqual(0, exit);
        Assert.Contains($"cannot access path {Path.Combine(Daemon.Options.DataRoot, "volumes", "data", "_data")}/nope: no such file or directory", error);
    }
}
