namespace Berth.Cgroups.Tests;

public class CgroupResourcesTests
{
    public static TheoryData<CgroupResources, string> Invalid => new()
    {
        { new() { Memory = new() { Limit = -2 } }, "memory.limit" },
        { new() { Memory = new() { Swappiness = 101 } }, "memory.swappiness" },
        { new() { Memory = new() { Limit = 200, Swap = 100 } }, "memory.swap" },
        { new() { Cpu = new() { Quota = -5 } }, "cpu.quota" },
        { new() { Cpu = new() { Period = 0 } }, "cpu.period" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Validate_NamesTheField(CgroupResources resources, string field)
    {
        var e = Assert.Throws<CgroupException>(resources.Validate);
        Assert.Equal(CgroupErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith(field, e.Message);
    }

    [Fact]
    public void Validate_AcceptsUnlimitedAndUnset()
    {
        new CgroupResources { Memory = new() { Limit = -1, Swap = -1 }, Cpu = new() { Quota = -1 }, Pids = new() { Limit = -1 } }.Validate();
        new CgroupResources().Validate();
        Assert.True(new CgroupResources().IsEmpty);
    }
}
