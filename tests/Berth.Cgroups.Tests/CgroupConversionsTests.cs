namespace Berth.Cgroups.Tests;

public class CgroupConversionsTests
{
    [Theory]
    [InlineData(2UL, 1UL)]
    [InlineData(1024UL, 39UL)]
    [InlineData(262144UL, 10000UL)]
    [InlineData(0UL, 1UL)]           // clamped up to 2
    [InlineData(1_000_000UL, 10000UL)] // clamped down to 262144
    public void SharesToWeight(ulong shares, ulong weight) =>
        Assert.Equal(weight, CgroupConversions.SharesToWeight(shares));

    [Theory]
    [InlineData(50000L, 100000UL, "50000 100000")]
    [InlineData(50000L, null, "50000 100000")]
    [InlineData(-1L, 200000UL, "max 200000")]
    [InlineData(null, 250000UL, "max 250000")]
    [InlineData(null, null, "max 100000")]
    public void CpuMax(long? quota, ulong? period, string expected) =>
        Assert.Equal(expected, CgroupConversions.CpuMax(quota, period));

    [Theory]
    [InlineData(300L, 100L, 200L)]
    [InlineData(100L, 100L, 0L)]
    [InlineData(-1L, 100L, -1L)]
    [InlineData(null, -1L, -1L)]   // unlimited memory implies unlimited swap
    [InlineData(0L, -1L, -1L)]
    [InlineData(null, 100L, null)] // nothing to write
    [InlineData(null, null, null)]
    public void SwapToV2(long? swap, long? limit, long? expected) =>
        Assert.Equal(expected, CgroupConversions.SwapToV2(swap, limit));

    [Theory]
    [InlineData(50L, 100L)]
    [InlineData(100L, null)]
    [InlineData(100L, -1L)]
    public void SwapToV2_RefusesImpossibleSwap(long swap, long? limit)
    {
        var e = Assert.Throws<CgroupException>(() => CgroupConversions.SwapToV2(swap, limit));
        Assert.Equal(CgroupErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("memory.swap", e.Message);
    }

    [Theory]
    [InlineData(100L, "100")]
    [InlineData(0L, "max")]
    [InlineData(-1L, "max")]
    public void PidsMax(long limit, string expected) => Assert.Equal(expected, CgroupConversions.PidsMax(limit));

    [Fact]
    public void MemoryValue()
    {
        Assert.Equal("max", CgroupConversions.MemoryValue(-1));
        Assert.Equal("104857600", CgroupConversions.MemoryValue(104857600));
    }
}
