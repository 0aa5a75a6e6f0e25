using Berth.Builder.Dockerfile;

namespace Berth.Builder.Tests.Dockerfile;

/// <summary>RUN --mount values as BuildKit's frontend reads them, and what the classic builder refuses by name.</summary>
public sealed class RunMountTests
{
    [Fact]
    public void A_bind_is_the_default_type_and_read_only_unless_rw()
    {
        Assert.Equal(new RunMount("bind", "/src", "go.mod", false, null, "shared", null, null, null, null), RunMount.Parse("target=/src,source=go.mod"));
        Assert.True(RunMount.Parse("type=bind,dst=/x,rw").ReadWrite);
        Assert.True(RunMount.Parse("type=bind,destination=/x,readwrite=true").ReadWrite);
        Assert.False(RunMount.Parse("type=bind,target=/x,rw=false").ReadWrite);
        Assert.False(RunMount.Parse("type=bind,target=/x,ro").ReadWrite);
    }

    [Fact]
    public void A_bind_may_come_from_another_stage_or_an_image()
    {
        Assert.Equal(new RunMount("bind", "/out", "/dist", false, null, "shared", null, null, null, null, "builder"),
            RunMount.Parse("type=bind,from=builder,source=/dist,target=/out"));
        Assert.Equal("0", RunMount.Parse("from=0,target=/stage").From);
    }

    [Fact]
    public void A_cache_is_writable_with_its_target_as_default_id()
    {
        var cache = RunMount.Parse("type=cache,target=/root/.cache,sharing=locked,mode=0700,uid=1000,gid=100");
        Assert.Equal(new RunMount("cache", "/root/.cache", null, true, "/root/.cache", "locked", 0x1C0, 1000, 100, null), cache);
        Assert.Equal("pip", RunMount.Parse("type=cache,id=pip,target=/c").Id);
    }

    [Theory]
    [InlineData("type=tmpfs,target=/t,size=64m", 64L << 20)]
    [InlineData("type=tmpfs,target=/t,size=1g", 1L << 30)]
    [InlineData("type=tmpfs,target=/t,size=4096", 4096L)]
    [InlineData("type=tmpfs,target=/t", null)]
    public void A_tmpfs_takes_a_size(string value, long? size) => Assert.Equal(size, RunMount.Parse(value).Size);

    [Theory]
    [InlineData("type=secret,id=npmrc", "type=secret needs BuildKit's client session")]
    [InlineData("type=ssh", "type=ssh needs BuildKit's client session")]
    [InlineData("type=cache,from=builder,target=/out", "from is for --mount=type=bind in this builder, not type=cache")]
    [InlineData("type=tmpfs,from=builder,target=/out", "from is for --mount=type=bind in this builder, not type=tmpfs")]
    [InlineData("type=volume,target=/x", "unsupported mount type \"volume\"")]
    [InlineData("type=cache", "mount destination not set")]
    [InlineData("type=cache,target=/c,sharing=sometimes", "unsupported sharing value \"sometimes\"")]
    [InlineData("type=cache,target=/c,mode=999", "invalid value for mode: 999")]
    [InlineData("type=cache,target=/c,uid=-1", "invalid value for uid: -1")]
    [InlineData("type=bind,target=/c,uid=1", "are for --mount=type=cache")]
    [InlineData("type=tmpfs,target=/t,size=lots", "invalid value for size: lots")]
    [InlineData("type=bind,target=/x,colour=blue", "unexpected key 'colour'")]
    [InlineData("type=bind,target=/x,rw=maybe", "invalid value for rw: maybe")]
    public void What_cannot_be_served_is_refused_by_name(string value, string message)
    {
        var e = Assert.Throws<DockerfileSyntaxException>(() => RunMount.Parse(value));
        Assert.Contains(message, e.Message);
    }
}
