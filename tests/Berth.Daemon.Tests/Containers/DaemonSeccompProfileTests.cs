using Berth.Daemon.Configuration;
using Berth.Daemon.Tests.Cli;

namespace Berth.Daemon.Tests.Containers;

/// <summary>
/// berthd's <c>--seccomp-profile</c> (dockerd's): a profile for the containers that name none, or
/// <c>unconfined</c> for no filter by default. Checked through the real docker CLI; each test's
/// daemon force-removes its containers at the end.
/// </summary>
public sealed class DaemonSeccompProfileTests
{
    private const string DenyMkdir = """
        { "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }] }
        """;

    private static async Task<(DaemonScope Daemon, DockerCli Docker)> StartAsync(TempDirectory dir, string seccompProfile)
    {
        DaemonOptions parsed = DaemonArgs.Parse(["--seccomp-profile", seccompProfile]).Options;
        DaemonScope daemon = await DaemonScope.StartAsync(o => o with { SeccompProfilePath = parsed.SeccompProfilePath, SeccompProfile = parsed.SeccompProfile });
        await daemon.ImportBusyboxAsync("busybox:latest");
        string binary = (string)Assert.Single(DockerCli.Installed().Take(1))[0];
        return (daemon, new DockerCli(binary, daemon.DockerHost, dir.CreateSubdirectory("docker-config")));
    }

    [Fact]
    public async Task The_daemons_profile_filters_the_containers_that_name_none()
    {
        using var dir = new TempDirectory("seccomp-profile");
        string path = dir.Combine("profile.json");
        File.WriteAllText(path, DenyMkdir);
        var (daemon, docker) = await StartAsync(dir, path);
        await using (daemon)
        {
            Assert.Contains($"\"name=seccomp,profile={path}\"", docker.Ok("info", "-f", "{{json .SecurityOptions}}"));
            Assert.Equal("1\n", docker.Ok("run", "--rm", "busybox", "sh", "-c", "mkdir /made 2>/dev/null; echo $?"));
            Assert.Equal("1\n", docker.Ok("run", "--rm", "--security-opt", "seccomp=builtin", "busybox", "sh", "-c", "mkdir /made 2>/dev/null; echo $?"));
            Assert.Equal("0\n", docker.Ok("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", "mkdir /made 2>/dev/null; echo $?"));
        }
    }

    [Fact]
    public async Task An_unconfined_daemon_filters_only_containers_that_ask()
    {
        using var dir = new TempDirectory("seccomp-profile");
        var (daemon, docker) = await StartAsync(dir, "unconfined");
        await using (daemon)
        {
            Assert.Contains("\"name=seccomp,profile=unconfined\"", docker.Ok("info", "-f", "{{json .SecurityOptions}}"));
            Assert.Equal("Seccomp:\t0\n", docker.Ok("run", "--rm", "busybox", "grep", "^Seccomp:", "/proc/self/status"));
            Assert.Equal("Seccomp:\t2\n", docker.Ok("run", "--rm", "--security-opt", "seccomp=builtin", "busybox", "grep", "^Seccomp:", "/proc/self/status"));
        }
    }
}
