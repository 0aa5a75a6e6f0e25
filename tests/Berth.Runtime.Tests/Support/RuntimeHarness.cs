using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Berth.Runtime.Tests.Support;

/// <summary>The outcome of one berth-runtime invocation.</summary>
public sealed record RuntimeResult(string[] Args, int Code, string Stdout, string Stderr, string StdoutFile = "")
{
    /// <summary>stdout as it is now: a created container goes on writing to it after create returned.</summary>
    public string CurrentStdout() => RuntimeHarness.SafeRead(StdoutFile);

    public override string ToString() =>
        $"berth-runtime {string.Join(' ', Args)} → exit {Code}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";

    public RuntimeResult ShouldSucceed()
    {
        Assert.True(Code == 0, $"expected success: {this}");
        return this;
    }

    public RuntimeResult ShouldFail()
    {
        Assert.True(Code != 0, $"expected a failure: {this}");
        return this;
    }
}

/// <summary>
/// Runs the real berth-runtime binary for one test: its own --root and temp directory,
/// unique container ids, and a cleanup that deletes every container (--force), checks that
/// nothing was left behind (state dir, mount, cgroup, process) and removes the temp files.
/// Leftovers fail the test, after they have been cleaned up.
/// </summary>
public sealed class RuntimeHarness : IDisposable
{
    static readonly string TempBase = Path.Combine(Path.GetTempPath(), "berth-runtime-tests");

    readonly List<string> _ids = [];
    readonly List<string> _cgroupPaths = [];
    int _files;

    public string Dir { get; }
    public string Root { get; }

    public RuntimeHarness()
    {
        Dir = Path.Combine(TempBase, Guid.NewGuid().ToString("N")[..12]);
        // Another test's Dispose may remove the empty shared parent in between: try again. .NET
        // reports that as DirectoryNotFound or, when the parent goes between its mkdir and ours,
        // FileNotFound (a CI run failed on the latter).
        for (var attempt = 0; ; attempt++)
        {
            try { Directory.CreateDirectory(Dir); break; }
            catch (IOException e) when (e is DirectoryNotFoundException or FileNotFoundException && attempt < 5) { }
        }
        Root = Path.Combine(Dir, "state");
    }

    /// <summary>A container id that no other test uses; deleted when the test ends.</summary>
    public string NewId(string name)
    {
        var id = $"bt-{name}-{Guid.NewGuid().ToString("N")[..8]}";
        _ids.Add(id);
        return id;
    }

    /// <summary>A cgroupsPath the test set explicitly, checked for removal at the end (e.g. "/berthtest-x/id").</summary>
    public void TrackCgroupPath(string cgroupsPath) => _cgroupPaths.Add(cgroupsPath);

    public string NewDir(string name)
    {
        var dir = Path.Combine(Dir, $"{name}-{_files++}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    public string NewPath(string name) => Path.Combine(Dir, $"{name}-{_files++}");

    public Bundle NewBundle(params string[] args) => Bundle.Create(NewDir("bundle"), args);

    /// <summary>
    /// Runs berth-runtime --root ROOT ARGS with stdout and stderr in files (a created
    /// container keeps them open, so pipes would never reach end of file) and stdin from
    /// /dev/null. <paramref name="redirections"/> is extra shell redirection, e.g. "3&lt;file".
    /// </summary>
    /// <param name="wrapper">A command the runtime is run through (e.g. "setpriv --bounding-set -sys_resource").</param>
    public RuntimeResult Runtime(string[] args, string? workDir = null, string redirections = "", int timeoutMs = 20_000, bool withRoot = true, string wrapper = "")
    {
        var outFile = NewPath("stdout");
        var errFile = NewPath("stderr");
        var start = new ProcessStartInfo("/bin/sh") { WorkingDirectory = workDir ?? Dir, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"exec {wrapper} \"$0\" \"$@\" >\"$BT_OUT\" 2>\"$BT_ERR\" </dev/null {redirections}");
        start.ArgumentList.Add(TestEnvironment.RuntimeBinary!);
        var full = withRoot ? new[] { "--root", Root }.Concat(args).ToArray() : args;
        foreach (var a in full) start.ArgumentList.Add(a);
        start.Environment["BT_OUT"] = outFile;
        start.Environment["BT_ERR"] = errFile;
        using var process = Process.Start(start)!;
        if (!process.WaitForExit(timeoutMs))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit();
            Assert.Fail($"berth-runtime {string.Join(' ', full)} did not finish within {timeoutMs} ms\n{SafeRead(outFile)}\n{SafeRead(errFile)}");
        }
        return new RuntimeResult(full, process.ExitCode, SafeRead(outFile), SafeRead(errFile), outFile);
    }

    public RuntimeResult Runtime(params string[] args) => Runtime(args, null);

    internal static string SafeRead(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new StreamReader(stream, Encoding.UTF8).ReadToEnd();
        }
        catch (IOException) { return ""; }
    }

    /// <summary>create + start; returns the create result (its stdout file receives the container's output).</summary>
    public RuntimeResult CreateAndStart(string id, Bundle bundle, params string[] extra)
    {
        bundle.Save();
        var created = Runtime(["create", "--bundle", bundle.Dir, .. extra, id]).ShouldSucceed();
        Runtime("start", id).ShouldSucceed();
        return created;
    }

    /// <summary>`run` of a container that exits by itself: its output and exit code.</summary>
    public RuntimeResult Run(Bundle bundle, string name = "run", params string[] extra)
    {
        bundle.Save();
        var id = NewId(name);
        return Runtime(["run", "--bundle", bundle.Dir, .. extra, id]);
    }

    /// <summary>Runs a shell script in a fresh busybox container; asserts exit 0 and returns stdout.</summary>
    public string RunScript(string script, Action<Bundle>? configure = null)
    {
        var bundle = NewBundle().Script(script);
        configure?.Invoke(bundle);
        var result = Run(bundle).ShouldSucceed();
        return result.Stdout;
    }

    public JsonElement State(string id)
    {
        var result = Runtime("state", id).ShouldSucceed();
        using var doc = JsonDocument.Parse(result.Stdout);
        return doc.RootElement.Clone();
    }

    public string Status(string id) => State(id).GetProperty("status").GetString()!;

    // Generous defaults: both return as soon as the condition holds, and a loaded 2-core CI
    // machine can take seconds to start a container.
    public static void WaitUntil(Func<bool> condition, string what, int timeoutMs = 30_000)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.ElapsedMilliseconds > timeoutMs) Assert.Fail($"timed out after {timeoutMs} ms waiting until {what}");
            Thread.Sleep(10);
        }
    }

    /// <summary>Waits until the output a created container writes to create's stdout contains <paramref name="text"/>.</summary>
    public static string WaitForOutput(RuntimeResult created, string text, int timeoutMs = 30_000)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var output = created.CurrentStdout();
            if (output.Contains(text, StringComparison.Ordinal)) return output;
            if (watch.ElapsedMilliseconds > timeoutMs) Assert.Fail($"timed out after {timeoutMs} ms waiting for the container to print \"{text}\"; it printed:\n{output}");
            Thread.Sleep(10);
        }
    }

    public void Dispose()
    {
        var leftovers = new List<string>();
        foreach (var id in Enumerable.Reverse(_ids))
        {
            try { Runtime(["delete", "--force", id], timeoutMs: 15_000); }
            catch (Exception e) { leftovers.Add($"delete --force {id} failed: {e.Message}"); }
        }
        foreach (var id in _ids)
            if (Directory.Exists(Path.Combine(Root, id))) leftovers.Add($"state directory {Path.Combine(Root, id)} remains");

        // Processes whose root or cwd is inside this test's files: containers still running.
        foreach (var pid in ProcessesUnder(Dir))
        {
            leftovers.Add($"process {pid} ({ReadOr($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim()}) still runs in {Dir}");
            try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (Exception) { }
        }

        // Mounts: anything still mounted below the test's directory, deepest first.
        var mounts = MountPointsUnder(Dir);
        foreach (var mount in mounts)
        {
            leftovers.Add($"mount {mount} remains");
            TestEnvironment.Sh($"umount -l '{mount}'");
        }

        // cgroups of our containers (default path /berth/<id>, or the ones the test set).
        foreach (var path in _ids.Select(id => $"berth/{id}").Concat(_cgroupPaths.Select(p => p.Trim('/'))))
        {
            foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup"))
            {
                var dir = Path.Combine(hierarchy, path);
                if (!Directory.Exists(dir)) continue;
                leftovers.Add($"cgroup {dir} remains");
                try { Directory.Delete(dir); } catch (IOException) { }
            }
        }
        foreach (var path in _cgroupPaths.Select(p => p.Trim('/')))
        {
            // The test's own parent groups (e.g. "berthtest-abc"), empty once the leaf is gone.
            var parent = Path.GetDirectoryName(path);
            if (string.IsNullOrEmpty(parent)) continue;
            foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup"))
                try { if (Directory.Exists(Path.Combine(hierarchy, parent))) Directory.Delete(Path.Combine(hierarchy, parent)); } catch (IOException) { }
        }

        if (MountPointsUnder(Dir).Count == 0)
            TestEnvironment.Sh($"rm -rf --one-file-system '{Dir}'");
        // The shared parent goes with the last test (rmdir fails while another test uses it).
        try { Directory.Delete(TempBase); } catch (IOException) { }
        if (leftovers.Count > 0)
            throw new InvalidOperationException("the test left things behind:\n  " + string.Join("\n  ", leftovers));
    }

    static string ReadOr(string path)
    {
        try { return File.ReadAllText(path); } catch (Exception) { return ""; }
    }

    public static List<string> MountPointsUnder(string dir) =>
        File.ReadAllLines("/proc/self/mountinfo")
            .Select(line => line.Split(' ')[4].Replace("\\040", " "))
            .Where(m => m == dir || m.StartsWith(dir + "/", StringComparison.Ordinal))
            .Distinct().OrderByDescending(m => m.Length).ToList();

    static List<int> ProcessesUnder(string dir)
    {
        var found = new List<int>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), out var pid) || pid == Environment.ProcessId) continue;
            foreach (var link in new[] { "root", "cwd" })
            {
                try
                {
                    var target = new FileInfo(Path.Combine(entry, link)).LinkTarget;
                    if (target is not null && (target == dir || target.StartsWith(dir + "/", StringComparison.Ordinal)))
                    {
                        // A zombie's links cannot be read, so this is a live process.
                        found.Add(pid);
                        break;
                    }
                }
                catch (Exception) { }
            }
        }
        return found;
    }
}
