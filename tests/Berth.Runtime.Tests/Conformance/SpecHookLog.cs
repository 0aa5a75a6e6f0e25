using System.Text.Json;
using Berth.Oci;

namespace Berth.Runtime.Tests.Conformance;

/// <summary>
/// A folder of recording hooks for the conformance tests. Every hook runs hook.sh NAME [EXIT]:
/// it saves the state it read on stdin as NAME.json, its mount namespace as NAME.mnt, appends
/// NAME to "order" and exits with EXIT (0 by default). The folder is bind-mounted into the
/// container at the same path (<see cref="MountInto"/>), so hooks that run in the container's
/// mount namespace after pivot_root find the script and the log, and the container's program
/// can append to "order" too.
/// </summary>
public sealed class SpecHookLog
{
    public string Dir { get; }
    public string Script => Path.Combine(Dir, "hook.sh");
    public string OrderFile => Path.Combine(Dir, "order");

    public SpecHookLog(RuntimeHarness h)
    {
        Dir = h.NewDir("spechooks");
        File.WriteAllText(Script, """
            #!/bin/sh
            d=${0%/*}
            cat > "$d/$1.json"
            readlink /proc/self/ns/mnt > "$d/$1.mnt" 2>/dev/null
            echo "$1" >> "$d/order"
            exit ${2:-0}
            """.Replace("\r", ""));
        File.SetUnixFileMode(Script, (UnixFileMode)0x1ed);
        File.WriteAllText(OrderFile, "");
    }

    public Hook Hook(string name, int exit = 0) => new() { Path = Script, Args = ["hook.sh", name, exit.ToString()] };

    public void MountInto(Bundle bundle) =>
        bundle.Spec.Mounts!.Add(new Mount { Destination = Dir, Type = "bind", Source = Dir, Options = ["rbind", "rw"] });

    /// <summary>The container's program: appends "program" to the order file, then runs <paramref name="then"/>.</summary>
    public string ProgramScript(string then = "exec sleep 30") => $"echo program >> {OrderFile}; {then}";

    public string[] Order() => File.ReadAllLines(OrderFile);

    public bool Ran(string name) => Order().Contains(name);

    public JsonElement State(string name)
    {
        var path = Path.Combine(Dir, name + ".json");
        Assert.True(File.Exists(path), $"the {name} hook did not run (no {path}); order: {string.Join(", ", Order())}");
        var text = File.ReadAllText(path);
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            Assert.Fail($"the {name} hook did not receive a JSON state on stdin: {e.Message}\n{text}");
            throw;
        }
    }

    public string? MountNamespace(string name)
    {
        var path = Path.Combine(Dir, name + ".mnt");
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }
}

/// <summary>Small host-side checks the conformance tests share.</summary>
public static class SpecHost
{
    /// <summary>True while the process exists and is not a zombie.</summary>
    public static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state is not ("Z" or "X");
        }
        catch (Exception) { return false; }
    }

    /// <summary>The pid of a host process as its innermost pid namespace sees it (last NSpid field).</summary>
    public static int PidInOwnNamespace(int hostPid)
    {
        var line = File.ReadAllLines($"/proc/{hostPid}/status").First(l => l.StartsWith("NSpid:", StringComparison.Ordinal));
        return int.Parse(line.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[^1]);
    }

    /// <summary>Every cgroup directory named after the container under any hierarchy (default path /berth/ID).</summary>
    public static List<string> CgroupDirs(string id) =>
        Directory.EnumerateDirectories("/sys/fs/cgroup")
            .Select(h => Path.Combine(h, "berth", id))
            .Append(Path.Combine("/sys/fs/cgroup", "berth", id))
            .Where(Directory.Exists).Distinct().ToList();

    public static string MountNamespaceOf(int pid) => new FileInfo($"/proc/{pid}/ns/mnt").LinkTarget ?? "";
}
