namespace Berth.Cgroups.Tests.Support;

/// <summary>
/// A cgroupfs look-alike in a temp directory (youki <c>set_fixture</c>): directories with the
/// files the kernel would show. Berth never creates cgroup files, so a file left out here
/// behaves like a controller or feature the kernel lacks.
/// </summary>
internal sealed class FakeCgroupTree : IDisposable
{
    public static readonly string[] V2GroupFiles =
    [
        "cgroup.procs", "cgroup.subtree_control", "memory.max", "memory.swap.max", "memory.low",
        "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems", "pids.max",
    ];

    private FakeCgroupTree()
    {
        Root = Path.Combine(Path.GetTempPath(), "berth-fake-cgroup-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    /// <summary>A cgroup v2 tree whose root offers <paramref name="controllers"/>.</summary>
    public static FakeCgroupTree V2(params string[] controllers)
    {
        var tree = new FakeCgroupTree();
        tree.Write("cgroup.controllers", string.Join(' ', controllers));
        tree.Write("cgroup.subtree_control", "");
        tree.Write("cgroup.procs", "");
        return tree;
    }

    /// <summary>A cgroup v1 tree with one directory per hierarchy ("cpu,cpuacct", "memory"…).</summary>
    public static FakeCgroupTree V1(params string[] hierarchies)
    {
        var tree = new FakeCgroupTree();
        foreach (var h in hierarchies)
        {
            tree.Write(Path.Combine(h, "cgroup.procs"), "");
        }
        return tree;
    }

    /// <summary>Makes a group directory holding empty <paramref name="files"/>.</summary>
    public string AddGroup(string relative, params string[] files)
    {
        var dir = Path.Combine(Root, relative.TrimStart('/'));
        Directory.CreateDirectory(dir);
        foreach (var f in files)
        {
            File.WriteAllText(Path.Combine(dir, f), "");
        }
        return dir;
    }

    public void Write(string relative, string content)
    {
        var path = Path.Combine(Root, relative.TrimStart('/'));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    public string Read(string relative) => File.ReadAllText(Path.Combine(Root, relative.TrimStart('/')));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
