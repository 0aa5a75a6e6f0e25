namespace Berth.Oci.Tests;

public class RlimitsTests
{
    [Theory]
    [InlineData("RLIMIT_CPU", 0)]
    [InlineData("RLIMIT_FSIZE", 1)]
    [InlineData("RLIMIT_DATA", 2)]
    [InlineData("RLIMIT_STACK", 3)]
    [InlineData("RLIMIT_CORE", 4)]
    [InlineData("RLIMIT_RSS", 5)]
    [InlineData("RLIMIT_NPROC", 6)]
    [InlineData("RLIMIT_NOFILE", 7)]
    [InlineData("RLIMIT_MEMLOCK", 8)]
    [InlineData("RLIMIT_AS", 9)]
    [InlineData("RLIMIT_LOCKS", 10)]
    [InlineData("RLIMIT_SIGPENDING", 11)]
    [InlineData("RLIMIT_MSGQUEUE", 12)]
    [InlineData("RLIMIT_NICE", 13)]
    [InlineData("RLIMIT_RTPRIO", 14)]
    [InlineData("RLIMIT_RTTIME", 15)]
    public void NamesMapToResourceNumbers(string name, int resource)
    {
        Assert.True(Rlimits.TryParse(name, out var parsed));
        Assert.Equal(resource, parsed);
        Assert.Equal(resource, Rlimits.Parse(name));
    }

    [Theory]
    [InlineData("RLIMIT_FOO")]
    [InlineData("rlimit_nofile")]
    [InlineData("NOFILE")]
    public void UnknownNames_AreRejected(string name)
    {
        Assert.False(Rlimits.TryParse(name, out _));
        Assert.Throws<ArgumentException>(() => Rlimits.Parse(name));
    }
}
