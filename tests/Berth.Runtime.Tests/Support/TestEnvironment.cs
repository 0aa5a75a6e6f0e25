using System.Diagnostics;

namespace Berth.Runtime.Tests.Support;

/// <summary>Where the repository, the built runtime and busybox are, and why a test must be skipped.</summary>
public static class TestEnvironment
{
    /// <summary>The checkout: the first folder above the test assembly holding artifacts/bin/berth-runtime (or build.sh).</summary>
    public static string? RepoRoot { get; } = FindRepoRoot();

    public static string? RuntimeBinary { get; } =
        RepoRoot is { } root && File.Exists(Path.Combine(root, "artifacts/bin/berth-runtime")) ? Path.Combine(root, "artifacts/bin/berth-runtime") : null;

    public static string? Busybox { get; } = new[] { "/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox" }.FirstOrDefault(File.Exists);

    public static bool IsRoot { get; } = Environment.IsPrivilegedProcess;

    /// <summary>Null when integration tests can run; otherwise what is missing.</summary>
    public static string? IntegrationSkipReason { get; } =
        !IsRoot ? "integration tests create real containers and need root"
        : RuntimeBinary is null ? "artifacts/bin/berth-runtime not found above the test assembly: run ./build.sh"
        : Busybox is null ? "busybox not found: apt-get install busybox-static"
        : null;

    static string? FindRepoRoot()
    {
        string? fallback = null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "artifacts/bin/berth-runtime"))) return dir.FullName;
            if (fallback is null && File.Exists(Path.Combine(dir.FullName, "build.sh"))) fallback = dir.FullName;
        }
        return fallback;
    }

    /// <summary>Runs a host command; returns exit code and output (stdout + stderr).</summary>
    public static (int Code, string Output) Sh(string script, int timeoutMs = 20_000)
    {
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeoutMs))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"host command timed out: {script}");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}

/// <summary>A fact that needs root, the built berth-runtime and busybox; skipped with the reason otherwise.</summary>
public sealed class IntegrationFactAttribute : FactAttribute
{
    public IntegrationFactAttribute()
    {
        if (TestEnvironment.IntegrationSkipReason is { } reason) Skip = reason;
    }
}

/// <summary>A fact that needs the native executor (artifacts/native/libberthexec.so).</summary>
public sealed class NativeFactAttribute : FactAttribute
{
    public NativeFactAttribute()
    {
        var root = TestEnvironment.RepoRoot;
        if (root is null || !File.Exists(Path.Combine(root, "artifacts/native/libberthexec.so")))
            Skip = "artifacts/native/libberthexec.so not found: run ./build.sh";
    }
}

/// <summary>A fact that runs processes in new namespaces through the executor: needs root and libberthexec.so.</summary>
public sealed class RootNativeFactAttribute : FactAttribute
{
    public RootNativeFactAttribute()
    {
        var root = TestEnvironment.RepoRoot;
        if (!TestEnvironment.IsRoot) Skip = "needs root";
        else if (root is null || !File.Exists(Path.Combine(root, "artifacts/native/libberthexec.so")))
            Skip = "artifacts/native/libberthexec.so not found: run ./build.sh";
    }
}
