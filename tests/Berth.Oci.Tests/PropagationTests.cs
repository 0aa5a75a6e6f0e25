using static Berth.Oci.MountFlags;

namespace Berth.Oci.Tests;

public class PropagationTests
{
    [Theory]
    [InlineData("private", MS_PRIVATE)]
    [InlineData("rprivate", MS_PRIVATE | MS_REC)]
    [InlineData("shared", MS_SHARED)]
    [InlineData("rshared", MS_SHARED | MS_REC)]
    [InlineData("slave", MS_SLAVE)]
    [InlineData("rslave", MS_SLAVE | MS_REC)]
    [InlineData("unbindable", MS_UNBINDABLE)]
    [InlineData("runbindable", MS_UNBINDABLE | MS_REC)]
    [InlineData("", 0UL)]
    [InlineData(null, 0UL)]
    public void Parse_MapsToFlags(string? name, ulong flags) => Assert.Equal(flags, Propagation.Parse(name));

    [Theory]
    [InlineData("rprivat")]
    [InlineData("PRIVATE")]
    public void Parse_RejectsUnknown(string name)
    {
        Assert.False(Propagation.TryParse(name, out _));
        Assert.Throws<ArgumentException>(() => Propagation.Parse(name));
    }

    [Fact]
    public void RootfsDefault_IsRecursiveSlave() => Assert.Equal(MS_SLAVE | MS_REC, Propagation.RootfsDefault);
}
