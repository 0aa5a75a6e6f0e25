using System.Diagnostics;
using System.Formats.Tar;
using System.Text;

namespace Berth.Cli.Tests;

/// <summary>What one run of the binary did.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// Runs the published <c>artifacts/bin/berth</c> with its own temp <c>--data-root</c>. Dispose
/// removes the data root, after detaching any mount left under it (there should be none: pull,
/// load and import unpack into snapshot directories without mounting).
/// </summary>
public sealed class BerthCli : IDisposable
{
    private static readonly Lazy<string> BinaryPath = new(FindBinary);
    private readonly TempDirectory _dir = new("cli");

    public BerthCli()
    {
        DataRoot = _dir.CreateSubdirectory("data-root");
    }

    public string DataRoot { get; }
    public string Work => _dir.Path;
    public static string Binary => BinaryPath.Value;

    public CliResult Run(params string[] args) => RunWith(null, args);

    /// <summary>Runs <c>berth --data-root D args…</c>, feeding <paramref name="stdin"/> when given; killed (by PID) after 60 s.</summary>
    public CliResult RunWith(byte[]? stdin, params string[] args)
    {
        var start = new ProcessStartInfo(Binary)
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        start.ArgumentList.Add("--data-root");
        start.ArgumentList.Add(DataRoot);
        foreach (string a in args) start.ArgumentList.Add(a);
        start.Environment["DOCKER_CONFIG"] = _dir.CreateSubdirectory("docker-config");
        return RunProcess(start, stdin);
    }

    public static CliResult RunProcess(ProcessStartInfo start, byte[]? stdin = null)
    {
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + start.FileName);
        try
        {
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            if (stdin is not null) process.StandardInput.BaseStream.Write(stdin);
            process.StandardInput.Close();
            if (!process.WaitForExit(60_000)) throw new TimeoutException($"{start.FileName} {string.Join(' ', start.ArgumentList)} did not finish in 60 s");
            process.WaitForExit();
            return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
    }

    /// <summary>Runs and asserts exit 0.</summary>
    public string Ok(params string[] args)
    {
        CliResult r = Run(args);
        Assert.True(r.ExitCode == 0, $"berth {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    public void Dispose()
    {
        foreach (string mountPoint in MountsUnder(_dir.Path).OrderByDescending(m => m.Length))
            RunProcess(new ProcessStartInfo("umount", ["-l", mountPoint]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true });
        _dir.Dispose();
    }

    public static IReadOnlyList<string> MountsUnder(string path)
        => File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(path, StringComparison.Ordinal)).ToList();

    private static string FindBinary()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "artifacts", "bin", "berth");
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException(
            $"artifacts/bin/berth not found above {AppContext.BaseDirectory}: run ./build.sh first (it publishes the NativeAOT berth binary there)");
    }

    /// <summary>
    /// A busybox rootfs as a tar: Debian's static <c>/bin/busybox</c> and a few applet symlinks, plus
    /// <c>/etc/berth-test</c> holding <paramref name="marker"/> (different markers give different layers).
    /// </summary>
    public string WriteBusyboxTar(string name, string marker = "berth")
    {
        const string busybox = "/bin/busybox";
        if (!File.Exists(busybox))
            throw new InvalidOperationException($"{busybox} is missing: the CLI tests need Debian's busybox-static (apt-get install -y busybox-static)");
        string path = Path.Combine(Work, name);
        using (FileStream file = File.Create(path))
        using (var tar = new TarWriter(file, TarEntryFormat.Pax))
        {
            foreach (string dir in new[] { "bin/", "etc/", "tmp/" })
                tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir) { Mode = (UnixFileMode)0x1ED });
            tar.WriteEntry(busybox, "bin/busybox");
            foreach (string applet in new[] { "sh", "ls", "echo", "cat", "true" })
                tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "bin/" + applet) { LinkName = "busybox", Mode = (UnixFileMode)0x1FF });
            var data = new MemoryStream(Encoding.UTF8.GetBytes(marker + "\n"));
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/berth-test") { DataStream = data, Mode = (UnixFileMode)0x1A4 });
        }
        return path;
    }
}
