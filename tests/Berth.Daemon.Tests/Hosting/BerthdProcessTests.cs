using System.Diagnostics;

namespace Berth.Daemon.Tests.Hosting;

/// <summary>The berthd binary itself: flags, SIGTERM, cleanup. Uses the published binary when built, else the apphost next to the tests.</summary>
public sealed class BerthdProcessTests
{
    private static string Binary()
    {
        string published = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../artifacts/bin/berthd"));
        string local = Path.Combine(AppContext.BaseDirectory, "berthd");
        return File.Exists(published) ? published : local;
    }

    [Fact]
    public async Task Starts_serves_and_cleans_up_on_SIGTERM()
    {
        using var dir = new TempDirectory("berthd");
        string socket = dir.Combine("exec", "berth.sock"), pidFile = dir.Combine("berthd.pid");
        var start = new ProcessStartInfo(Binary()) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "--data-root", dir.Combine("data"), "--exec-root", dir.Combine("exec"), "-H", "unix://" + socket, "--pidfile", pidFile })
            start.ArgumentList.Add(a);
        using Process p = Process.Start(start)!;
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!File.Exists(pidFile) && DateTime.UtcNow < deadline && !p.HasExited) await Task.Delay(50);
            Assert.True(File.Exists(pidFile), "berthd did not start: " + (p.HasExited ? await stderr : "timeout"));
            Assert.Equal(p.Id.ToString(), File.ReadAllText(pidFile).Trim());
            using (HttpClient client = DaemonScope.CreateClient(socket))
                Assert.Equal("OK", await client.GetStringAsync("/_ping"));

            // A second daemon on the same data root exits 1 with the reason.
            var second = new ProcessStartInfo(Binary()) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string a in new[] { "--data-root", dir.Combine("data"), "--exec-root", dir.Combine("exec2"), "-H", "unix://" + dir.Combine("other.sock") })
                second.ArgumentList.Add(a);
            using (Process q = Process.Start(second)!)
            {
                string err = await q.StandardError.ReadToEndAsync();
                Assert.True(q.WaitForExit(20_000));
                Assert.Equal(1, q.ExitCode);
                Assert.Contains("another berthd is running", err);
            }

            Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
            Assert.True(p.WaitForExit(20_000), "berthd did not stop on SIGTERM");
            Assert.Equal(0, p.ExitCode);
            Assert.False(File.Exists(socket));
            Assert.False(File.Exists(pidFile));
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
    }

    [Fact]
    public void Plain_tcp_is_refused_at_start()
    {
        var start = new ProcessStartInfo(Binary(), ["-H", "tcp://127.0.0.1:2375"]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using Process p = Process.Start(start)!;
        string err = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(20_000));
        Assert.Equal(1, p.ExitCode);
        Assert.Contains("without TLS", err);
    }
}
