using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Berth.Oci.Tests;

/// <summary>Runs the real runc for comparison tests.</summary>
public static partial class Runc
{
    public static string? Path { get; } = FindOnPath("runc");

    /// <summary>Runs runc with <paramref name="args"/> in <paramref name="dir"/>; returns stdout.</summary>
    public static string Run(string dir, params string[] args)
    {
        var start = new ProcessStartInfo(Path ?? throw new InvalidOperationException("runc not found"))
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"runc {string.Join(' ', args)} failed: {stderr}");
        return stdout.Result;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/sbin").Append("/usr/bin")
            .Select(dir => System.IO.Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    [LibraryImport("libc")]
    public static partial uint geteuid();

    [LibraryImport("libc")]
    public static partial uint getegid();
}

/// <summary>A fact that needs the real runc; skipped, saying so, where it is not installed.</summary>
public sealed class RuncFactAttribute : FactAttribute
{
    public RuncFactAttribute()
    {
        if (Runc.Path is null) Skip = "runc is not installed (not on PATH, /usr/sbin or /usr/bin); cannot compare with its output";
    }
}
