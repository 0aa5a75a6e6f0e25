using System.Diagnostics;

namespace Berth.Cgroups.Tests.Support;

/// <summary>
/// A parent group "/berth-test-&lt;random&gt;" on the real tree and the processes a test
/// started. Dispose kills the processes and removes the parent in every hierarchy, deepest
/// group first, whatever state the test left — without relying on the code under test.
/// </summary>
internal sealed class RealCgroupScope : IDisposable
{
    private readonly List<Process> _processes = [];

    public RealCgroupScope()
    {
        Layout = CgroupLayout.Detect();
        Parent = "/berth-test-" + Guid.NewGuid().ToString("N")[..10];
    }

    public CgroupLayout Layout { get; }

    /// <summary>The absolute cgroups path of the test's parent group.</summary>
    public string Parent { get; }

    public string PathFor(string id) => Parent + "/" + id;

    public IEnumerable<string> MountPoints =>
        Layout.V1Hierarchies.Select(h => h.MountPoint)
            .Concat(Layout.UnifiedMountPoint is { } u ? [u] : []);

    public Process StartSleep()
    {
        var p = Process.Start(new ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;
        _processes.Add(p);
        return p;
    }

    /// <summary>A /bin/sh running <paramref name="script"/> with stdin and stdout redirected.</summary>
    public Process StartShell(string script)
    {
        var p = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", script])
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        })!;
        _processes.Add(p);
        return p;
    }

    public static void Kill(Process p)
    {
        try
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
            }
            p.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>Every directory named like the test's parent that still exists in some hierarchy.</summary>
    public List<string> Leftovers() =>
        MountPoints.Select(m => m + Parent).Where(Directory.Exists).ToList();

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            Kill(p);
            p.Dispose();
        }
        foreach (var mount in MountPoints)
        {
            RemoveTree(mount, mount + Parent);
        }
    }

    private static void RemoveTree(string mount, string dir)
    {
        if (!Directory.Exists(dir))
        {
            return;
        }
        foreach (var child in Directory.GetDirectories(dir))
        {
            RemoveTree(mount, child);
        }
        // Anything still inside goes back to the root group so the rmdir can succeed.
        var procs = Path.Combine(dir, "cgroup.procs");
        foreach (var pid in File.Exists(procs) ? File.ReadAllLines(procs) : [])
        {
            try
            {
                File.WriteAllText(Path.Combine(mount, "cgroup.procs"), pid);
            }
            catch (IOException)
            {
            }
        }
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                Directory.Delete(dir);
                return;
            }
            catch (IOException) when (attempt < 20)
            {
                Thread.Sleep(50);
            }
        }
    }
}
