namespace Berth.Oci.Tests;

public class CapabilitiesTests
{
    [Theory]
    [InlineData("CAP_CHOWN", 0)]
    [InlineData("CAP_KILL", 5)]
    [InlineData("CAP_NET_BIND_SERVICE", 10)]
    [InlineData("CAP_SYS_ADMIN", 21)]
    [InlineData("CAP_AUDIT_WRITE", 29)]
    [InlineData("CAP_AUDIT_READ", 37)]
    [InlineData("CAP_PERFMON", 38)]
    [InlineData("CAP_BPF", 39)]
    [InlineData("CAP_CHECKPOINT_RESTORE", 40)]
    public void NamesMapToKernelNumbers(string name, int number)
    {
        Assert.True(Capabilities.TryParse(name, out var parsed));
        Assert.Equal(number, parsed);
        Assert.Equal(name, Capabilities.NameOf(number));
    }

    [Theory]
    [InlineData("cap_chown")]
    [InlineData("CHOWN")]
    [InlineData("CAP_FOO")]
    [InlineData("")]
    public void UnknownNames_AreRejected(string name)
    {
        Assert.False(Capabilities.TryParse(name, out _));
        Assert.Throws<ArgumentException>(() => Capabilities.Parse(name));
    }

    [Fact]
    public void TableCoversZeroToLast()
    {
        Assert.Equal(40, Capabilities.Last);
        Assert.Equal(Capabilities.Last + 1, Capabilities.Names.Count);
        Assert.Equal(Capabilities.Names.Count, Capabilities.Names.Distinct().Count());
        Assert.Throws<ArgumentOutOfRangeException>(() => Capabilities.NameOf(41));
    }

    [Fact]
    public void ToMask_SetsOneBitPerCapability()
    {
        Assert.Equal((1UL << 29) | (1UL << 5) | (1UL << 10), Capabilities.ToMask(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]));
        Assert.Equal(0UL, Capabilities.ToMask(null));
        Assert.Equal(0x1FF_FFFF_FFFFUL, Capabilities.AllMask);
        Assert.Equal(Capabilities.AllMask, Capabilities.ToMask(Capabilities.Names));
        Assert.Throws<ArgumentException>(() => Capabilities.ToMask(["CAP_NOPE"]));
    }
}
