using System.Diagnostics;
using System.Text.Json.Nodes;
using Xunit;

namespace Berth.Runtime.Tests.Cgroups;

/// <summary>
/// This host is hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified). Every current
/// distribution is pure v2, so the real binary is also run in a private mount namespace
/// where the cgroup2 hierarchy is mounted at /sys/fs/cgroup and nothing else: there
/// berth-runtime sees a pure v2 host, and the container must land in, and leave, a v2 group.
/// </summary>
public sealed class PureCgroupV2Tests : IDisposable
{
    readonly string _work = Directory.CreateTempSubdirectory("berth-v2-").FullName;
    readonly string _parent = $"berth-v2test-{Guid.NewGuid():N}";
    const string HostUnified = "/sys/fs/cgroup/unified";

    [Fact]
    public void ContainerRunsInItsOwnV2GroupWhichIsRemovedAfterwards()
    {
        Assert.True(Berth.Runtime.Native.LibC.getuid() == 0, "the runtime tests create real containers: run them as root");
        Assert.True(Directory.Exists(HostUnified) || File.Exists("/sys/fs/cgroup/cgroup.controllers"), "no cgroup2 hierarchy on this host");
        var bundle = MakeBundle("sh", "-c", "cat /proc/self/cgroup; grep cgroup /proc/self/mounts");

        var (code, output) = RunInPureV2($"run c1");

        Assert.True(code == 0, output);
        Assert.Contains($"0::/{_parent}/c1", output);
        Assert.Matches(@"\S+ /sys/fs/cgroup cgroup2 ro,", output);
        Assert.DoesNotContain("memory:", output.Split('\n').Where(l => l.StartsWith("0::")).FirstOrDefault() ?? "");
        Assert.False(Directory.Exists(Path.Combine(HostCgroup2Root(), _parent, "c1")), "the container's group outlived delete");
    }

    [Fact]
    public void LimitOfAControllerTheV2HierarchyLacksIsRefusedAndLeavesNothing()
    {
        Assert.True(Berth.Runtime.Native.LibC.getuid() == 0, "the runtime tests create real containers: run them as root");
        var controllers = File.ReadAllText(Path.Combine(HostCgroup2Root(), "cgroup.controllers"));
        if (controllers.Contains("pids")) return; // a real v2 host: the pids controller is there to use
        MakeBundle("true");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(_work, "bundle", "config.json")))!;
        config["linux"]!["resources"] = JsonNode.Parse("""{"pids":{"limit":10}}""");
        File.WriteAllText(Path.Combine(_work, "bundle", "config.json"), config.ToJsonString());

        var (code, output) = RunInPureV2("run c2");

        Assert.NotEqual(0, code);
        Assert.Contains("pids", output);
        Assert.False(Directory.Exists(Path.Combine(HostCgroup2Root(), _parent, "c2")), "a failed create left its group behind");
        Assert.False(Directory.Exists(Path.Combine(_work, "root", "c2")), "a failed create left its state behind");
    }

    static string HostCgroup2Root() => Directory.Exists(HostUnified) ? HostUnified : "/sys/fs/cgroup";

    (int Code, string Output) RunInPureV2(string command)
    {
        var binary = RepoFile("artifacts/bin/berth-runtime");
        var script = "mount --make-rprivate / && umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && " +
                     $"cd {_work}/bundle && exec {binary} --root {_work}/root {command}";
        var process = Process.Start(new ProcessStartInfo("unshare", ["-m", "sh", "-c", script])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(30_000), "berth-runtime did not finish in 30 s");
        return (process.ExitCode, stdout.Result + stderr);
    }

    string MakeBundle(params string[] args)
    {
        var bundle = Path.Combine(_work, "bundle");
        var make = Process.Start(new ProcessStartInfo(RepoFile("scripts/make-busybox-bundle.sh"), [bundle, .. args]) { RedirectStandardError = true })!;
        var error = make.StandardError.ReadToEnd();
        make.WaitForExit();
        Assert.True(make.ExitCode == 0, error);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(bundle, "config.json")))!;
        config["linux"]!["cgroupsPath"] = $"/{_parent}/{(args[0] == "true" ? "c2" : "c1")}";
        File.WriteAllText(Path.Combine(bundle, "config.json"), config.ToJsonString());
        return bundle;
    }

    static string RepoFile(string relative)
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Berth.slnx"))) dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("repository root not found");
        var path = Path.Combine(dir, relative);
        Assert.True(File.Exists(path), $"{relative} is missing: run ./build.sh");
        return path;
    }

    public void Dispose()
    {
        var parent = Path.Combine(HostCgroup2Root(), _parent);
        if (Directory.Exists(parent))
        {
            foreach (var child in Directory.GetDirectories(parent)) Directory.Delete(child);
            Directory.Delete(parent);
        }
        Directory.Delete(_work, recursive: true);
    }
}
