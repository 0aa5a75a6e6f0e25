using Berth.Daemon.Monitor;
using Berth.Tests.Shared;

namespace Berth.Daemon.Tests.Monitor;

/// <summary>Reading a monitor's exit file while the monitor may be ending (no monitor: the file and the liveness are faked).</summary>
public sealed class MonitorExitTests
{
    [Fact]
    public void A_monitor_that_writes_its_exit_and_ends_between_the_read_and_the_liveness_check_is_not_taken_for_one_gone_without_an_exit()
    {
        using var dir = new TempDirectory("monitor-exit");
        // The liveness check is where the monitor, in the real race, wrote its file and exited.
        MonitorExit? exit = MonitorProcess.ReadExitOnceGone(dir.Path, () =>
        {
            File.WriteAllText(dir.Combine("exit"), "3 1764950400000000000\n");
            return false;
        }, out bool running);
        Assert.False(running);
        Assert.NotNull(exit);
        Assert.Equal(3, exit.ExitCode);
    }

    [Fact]
    public void A_live_monitor_without_an_exit_file_is_running_and_a_gone_one_without_it_has_no_exit()
    {
        using var dir = new TempDirectory("monitor-exit");
        Assert.Null(MonitorProcess.ReadExitOnceGone(dir.Path, () => true, out bool running));
        Assert.True(running);
        Assert.Null(MonitorProcess.ReadExitOnceGone(dir.Path, () => false, out running));
        Assert.False(running);
    }

    [Fact]
    public void A_written_exit_is_read_without_asking_whether_the_monitor_lives()
    {
        using var dir = new TempDirectory("monitor-exit");
        File.WriteAllText(dir.Combine("exit"), "137 1764950400000000000\n");
        MonitorExit? exit = MonitorProcess.ReadExitOnceGone(dir.Path, () => throw new InvalidOperationException("asked"), out bool running);
        Assert.False(running);
        Assert.Equal(137, exit?.ExitCode);
    }
}
