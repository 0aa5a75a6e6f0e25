using Berth.Daemon.Containers;
using Berth.Images.Manifests;

namespace Berth.Daemon.Tests.Health;

/// <summary>The pure parts of health checks: dockerd's merge of image and container settings, Go's duration text.</summary>
public sealed class HealthConfigTests
{
    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(999L, "999ns")]
    [InlineData(1_500L, "1.5µs")]
    [InlineData(1_500_000L, "1.5ms")]
    [InlineData(300_000_000L, "300ms")]
    [InlineData(1_000_000_000L, "1s")]
    [InlineData(1_500_000_000L, "1.5s")]
    [InlineData(30_000_000_000L, "30s")]
    [InlineData(90_000_000_000L, "1m30s")]
    [InlineData(7_200_000_000_000L, "2h0m0s")]
    [InlineData(-2_000_000L, "-2ms")]
    public void Durations_read_as_Go_prints_them(long nanoseconds, string text)
        => Assert.Equal(text, ContainerService.GoDurationString(nanoseconds));

    [Fact]
    public void The_container_wins_field_by_field_and_zero_inherits()
    {
        var image = new HealthConfig { Test = ["CMD-SHELL", "check"], Interval = 5, Timeout = 6, StartPeriod = 7, StartInterval = 8, Retries = 9 };
        Assert.Null(ContainerService.MergeHealthcheck(null, null));

        HealthConfigJson all = ContainerService.MergeHealthcheck(null, image)!;
        Assert.Equal(["CMD-SHELL", "check"], all.Test);
        Assert.Equal((5L, 6L, 7L, 8L, 9), (all.Interval, all.Timeout, all.StartPeriod, all.StartInterval, all.Retries));

        HealthConfigJson some = ContainerService.MergeHealthcheck(new HealthConfigJson { Test = [], Interval = 50, Retries = 1 }, image)!;
        Assert.Equal(["CMD-SHELL", "check"], some.Test);
        Assert.Equal((50L, 6L, 7L, 8L, 1), (some.Interval, some.Timeout, some.StartPeriod, some.StartInterval, some.Retries));

        HealthConfigJson none = ContainerService.MergeHealthcheck(new HealthConfigJson { Test = ["NONE"] }, image)!;
        Assert.Equal(["NONE"], none.Test);

        HealthConfigJson own = ContainerService.MergeHealthcheck(new HealthConfigJson { Test = ["CMD", "true"] }, null)!;
        Assert.Equal(["CMD", "true"], own.Test);
    }
}
