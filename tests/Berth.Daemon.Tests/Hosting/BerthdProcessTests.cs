using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Berth.Daemon.Tests.Containers;

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

    /// <summary>
    /// Under systemd (Type=notify, as docker.service): READY=1 once the API answers, STOPPING=1 at
    /// SIGTERM; and the runtimes berthd starts never see NOTIFY_SOCKET, else berth-runtime (as runc)
    /// would give every container a notify socket and wait at start for its READY.
    /// </summary>
    [Fact]
    public async Task Tells_systemd_when_ready_and_stopping_and_keeps_NOTIFY_SOCKET_from_its_containers()
    {
        using var dir = new TempDirectory("berthd-notify");
        string socket = dir.Combine("exec", "berth.sock"), notifyPath = dir.Combine("notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { ReceiveTimeout = 20_000 };
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));
        var start = new ProcessStartInfo(Binary()) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "--data-root", dir.Combine("data"), "--exec-root", dir.Combine("exec"), "-H", "unix://" + socket, "--bridge", "none", "--log-level", "warn" })
            start.ArgumentList.Add(a);
        start.Environment[SystemdNotifyVariable] = notifyPath;
        using Process p = Process.Start(start)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            var buffer = new byte[256];
            Assert.Equal("READY=1", Encoding.UTF8.GetString(buffer, 0, notify.Receive(buffer)));
            using (HttpClient client = DaemonScope.CreateClient(socket))
            {
                Assert.Equal("OK", await client.GetStringAsync("/_ping")); // ready means served
                await LiveRestoreTests.ImportBusyboxAsync(client);
                string id = await ContainersApiTests.CreateAsync(client, new
                {
                    Image = "busybox",
                    Cmd = new[] { "sh", "-c", "test -z \"$NOTIFY_SOCKET\" && ! test -e /run/notify" },
                    HostConfig = new { NetworkMode = "none" },
                });
                using (HttpResponseMessage started = await client.PostAsync($"/containers/{id}/start", null))
                    Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
                using HttpResponseMessage waited = await client.PostAsync($"/containers/{id}/wait", null);
                Assert.Equal(0, JsonDocument.Parse(await waited.Content.ReadAsStringAsync()).RootElement.GetProperty("StatusCode").GetInt32());
                (await client.DeleteAsync($"/containers/{id}?force=1")).Dispose();
            }

            Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
            Assert.Equal("STOPPING=1", Encoding.UTF8.GetString(buffer, 0, notify.Receive(buffer)));
            Assert.True(p.WaitForExit(20_000), "berthd did not stop on SIGTERM");
        }
        finally
        {
            if (!p.HasExited) p.Kill();
            Leftovers.Clean(dir.Path);
        }
    }

    private const string SystemdNotifyVariable = "NOTIFY_SOCKET";

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
