using System.Diagnostics;
using System.Text.Json;
using Berth.Oci;

namespace Berth.Runtime.Tests.Rootless;

/// <summary>
/// A real unprivileged user for the rootless tests: `useradd --system --no-create-home
/// berth-rl-XXXXXX`, one /etc/subuid and /etc/subgid range of 65536 ids that no other entry
/// uses, and a temp directory it owns. Dispose (also when the constructor fails half-way) kills
/// the user's processes by pid, removes the user, writes /etc/subuid and /etc/subgid back byte
/// for byte as they were, and removes every directory it made: the host is left as it was found.
/// </summary>
public sealed class RootlessUser : IDisposable
{
    public const int SubordinateCount = 65536;
    static readonly string[] IdFiles = ["/etc/subuid", "/etc/subgid"];

    readonly Dictionary<string, byte[]?> _backups = [];
    readonly List<string> _dirs = [];
    bool _userCreated;

    public string Name { get; } = "berth-rl-" + Guid.NewGuid().ToString("N")[..6];
    public uint Uid { get; }
    public uint Gid { get; }
    /// <summary>The first id of the user's /etc/subuid and /etc/subgid range.</summary>
    public uint SubordinateStart { get; }
    /// <summary>A directory the user owns (mode 0755), below which every bundle and --root lives.</summary>
    public string Dir { get; }
    /// <summary>berth-runtime's default --root for this user (XDG_RUNTIME_DIR unset).</summary>
    public string DefaultRoot => $"/tmp/berth-runtime-{Uid}";

    public static string? SkipReason { get; } =
        TestEnvironment.IntegrationSkipReason
        ?? (!File.Exists("/usr/sbin/useradd") ? "useradd not found"
        : !File.Exists("/usr/bin/newuidmap") || !File.Exists("/usr/bin/newgidmap") ? "newuidmap/newgidmap not found: apt-get install uidmap"
        : !File.Exists("/usr/bin/setpriv") ? "setpriv not found (util-linux)"
        : null);

    public RootlessUser()
    {
        if (SkipReason is not null)
        {
            Dir = "";
            return;
        }
        try
        {
            foreach (var file in IdFiles) _backups[file] = File.Exists(file) ? File.ReadAllBytes(file) : null;
            Must($"useradd --system --no-create-home --shell /usr/sbin/nologin {Name}");
            _userCreated = true;
            Uid = uint.Parse(Must($"id -u {Name}").Trim());
            Gid = uint.Parse(Must($"id -g {Name}").Trim());

            // A range above every range either file already hands out.
            ulong end = 100_000;
            foreach (var file in IdFiles)
                foreach (var line in File.Exists(file) ? File.ReadAllLines(file) : [])
                    if (line.Split(':') is [_, var s, var c] && ulong.TryParse(s, out var start) && ulong.TryParse(c, out var count))
                        end = Math.Max(end, start + count);
            SubordinateStart = (uint)((end + SubordinateCount - 1) / SubordinateCount * SubordinateCount);
            foreach (var file in IdFiles)
                File.AppendAllText(file, $"{Name}:{SubordinateStart}:{SubordinateCount}\n");

            Dir = Path.Combine("/tmp", $"berth-rl-tests-{Guid.NewGuid().ToString("N")[..10]}");
            Directory.CreateDirectory(Dir);
            _dirs.Add(Dir);
            _dirs.Add(DefaultRoot);
            Must($"chown {Uid}:{Gid} '{Dir}' && chmod 0755 '{Dir}'");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    static string Must(string script)
    {
        var (code, output) = TestEnvironment.Sh(script);
        if (code != 0) throw new InvalidOperationException($"`{script}` failed ({code}): {output}");
        return output;
    }

    /// <summary>
    /// Runs berth-runtime as the user (setpriv --reuid --regid --init-groups, XDG_RUNTIME_DIR
    /// unset) in <paramref name="workDir"/>; stdout and stderr go to files, stdin is /dev/null.
    /// </summary>
    public RuntimeResult Runtime(string[] args, string? workDir = null, int timeoutMs = 20_000)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var outFile = Path.Combine(Dir, $"out-{id}");
        var errFile = Path.Combine(Dir, $"err-{id}");
        var start = new ProcessStartInfo("/bin/sh") { WorkingDirectory = workDir ?? Dir, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec setpriv --reuid \"$BT_UID\" --regid \"$BT_GID\" --init-groups env -u XDG_RUNTIME_DIR \"$0\" \"$@\" >\"$BT_OUT\" 2>\"$BT_ERR\" </dev/null");
        start.ArgumentList.Add(TestEnvironment.RuntimeBinary!);
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["BT_OUT"] = outFile;
        start.Environment["BT_ERR"] = errFile;
        start.Environment["BT_UID"] = Uid.ToString();
        start.Environment["BT_GID"] = Gid.ToString();
        using var process = System.Diagnostics.Process.Start(start)!;
        if (!process.WaitForExit(timeoutMs))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit();
            Assert.Fail($"berth-runtime {string.Join(' ', args)} (as {Name}) did not finish within {timeoutMs} ms\n{RuntimeHarness.SafeRead(outFile)}\n{RuntimeHarness.SafeRead(errFile)}");
        }
        return new RuntimeResult(args, process.ExitCode, RuntimeHarness.SafeRead(outFile), RuntimeHarness.SafeRead(errFile), outFile);
    }

    /// <summary>
    /// A busybox bundle owned by the user whose config.json is what `berth-runtime spec
    /// --rootless` prints when the user runs it, with terminal off and the given args.
    /// </summary>
    public RootlessBundle NewBundle(params string[] args)
    {
        var dir = Path.Combine(Dir, "bundle-" + Guid.NewGuid().ToString("N")[..8]);
        var bundle = Support.Bundle.Create(dir, args);
        File.Delete(bundle.ConfigPath);
        Must($"chown -R {Uid}:{Gid} '{dir}'");
        Runtime(["spec", "--rootless", "--bundle", dir]).ShouldSucceed();
        var spec = SpecLoader.LoadFromBundle(dir);
        spec.Process!.Terminal = false;
        spec.Process.Args = args.Length == 0 ? ["sh"] : [.. args];
        return new RootlessBundle(dir, spec).Save();
    }

    /// <summary>Owner uid, gid and octal mode of a host path.</summary>
    public static (uint Uid, uint Gid, string Mode) Stat(string path)
    {
        var parts = Must($"stat -c '%u %g %a' '{path}'").Trim().Split(' ');
        return (uint.Parse(parts[0]), uint.Parse(parts[1]), parts[2]);
    }

    /// <summary>Live processes whose real uid is the test user's or one of its subordinate ids.</summary>
    public List<int> Processes()
    {
        var found = new List<int>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), out var pid)) continue;
            try
            {
                var status = File.ReadAllLines(Path.Combine(entry, "status"));
                if (status.Any(l => l.StartsWith("State:\tZ", StringComparison.Ordinal))) continue; // gone, not yet reaped
                var uidLine = status.FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
                if (uidLine is null || !uint.TryParse(uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], out var uid)) continue;
                if (uid == Uid || (uid >= SubordinateStart && uid < SubordinateStart + (ulong)SubordinateCount)) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return found;
    }

    public void Dispose()
    {
        var errors = new List<string>();
        if (_userCreated)
        {
            // Only this user's processes, by pid (containers a failed test left running).
            for (var attempt = 0; attempt < 50; attempt++)
            {
                var pids = Processes();
                if (pids.Count == 0) break;
                foreach (var pid in pids)
                    try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (Exception) { }
                Thread.Sleep(20);
            }
            var (code, output) = TestEnvironment.Sh($"userdel {Name}");
            if (code != 0) errors.Add($"userdel {Name}: {output}");
        }
        foreach (var (file, content) in _backups)
        {
            try
            {
                if (content is null) File.Delete(file);
                else File.WriteAllBytes(file, content);
            }
            catch (Exception e) { errors.Add($"restore {file}: {e.Message}"); }
        }
        foreach (var dir in _dirs)
        {
            foreach (var mount in RuntimeHarness.MountPointsUnder(dir)) TestEnvironment.Sh($"umount -l '{mount}'");
            if (Directory.Exists(dir)) TestEnvironment.Sh($"rm -rf --one-file-system '{dir}'");
        }
        if (errors.Count > 0) throw new InvalidOperationException(string.Join("\n", errors));
    }
}

/// <summary>A bundle of the test user: its config.json is the user's file, rewritten by <see cref="Save"/>.</summary>
public sealed class RootlessBundle(string dir, Spec spec)
{
    public string Dir { get; } = dir;
    public Spec Spec { get; } = spec;
    public string Rootfs => Path.Combine(Dir, "rootfs");
    public Berth.Oci.Process Process => Spec.Process!;
    public Linux Linux => Spec.Linux ??= new Linux();

    public RootlessBundle Script(string script)
    {
        Process.Args = ["sh", "-c", script];
        return this;
    }

    public RootlessBundle Save()
    {
        // The file exists and is the user's: writing it in place keeps its owner.
        File.WriteAllText(Path.Combine(Dir, "config.json"), JsonSerializer.Serialize(Spec, SpecJsonContext.Default.Spec));
        return this;
    }
}

/// <summary>A fact that needs root (to create the user), the runtime, busybox, uidmap and setpriv.</summary>
public sealed class RootlessFactAttribute : FactAttribute
{
    public RootlessFactAttribute()
    {
        if (RootlessUser.SkipReason is { } reason) Skip = reason;
    }
}
