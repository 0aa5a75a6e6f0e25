namespace Berth.Oci.Tests;

public class SpecLoaderTests
{
    [Fact]
    public void LoadFromBundle_ReadsConfigJson()
    {
        using var bundle = new TempBundle();
        bundle.WriteConfig(Fixtures.FullConfig);

        var spec = SpecLoader.LoadFromBundle(bundle.Dir);

        Assert.Equal("box", spec.Hostname);
    }

    [Fact]
    public void MissingConfig_NamesTheBundle()
    {
        using var bundle = new TempBundle();

        var e = Assert.Throws<SpecException>(() => SpecLoader.LoadFromBundle(bundle.Dir));

        Assert.Equal($"config.json not found in bundle {bundle.Dir}", e.Message);
    }

    [Fact]
    public void BrokenJson_NamesTheLine()
    {
        using var bundle = new TempBundle();
        bundle.WriteConfig("{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {\n    \"cwd\": \"/\",\n  }\n}\n");

        var e = Assert.Throws<SpecException>(() => SpecLoader.LoadFromBundle(bundle.Dir));

        Assert.Equal(5, e.Line);
        Assert.Null(e.Field);
        Assert.StartsWith("config.json: line 5: ", e.Message);
        Assert.DoesNotContain("LineNumber", e.Message);
        Assert.DoesNotContain("reader options", e.Message);
    }

    [Fact]
    public void TruncatedJson_IsASyntaxError()
    {
        var e = Assert.Throws<SpecException>(() => SpecLoader.Parse("{\"ociVersion\": \"1.0.0\","));

        Assert.StartsWith("config.json: line 1: ", e.Message);
    }

    [Fact]
    public void WrongType_NamesFieldAndLine()
    {
        var e = Assert.Throws<SpecException>(() => SpecLoader.Parse("{\n\"linux\": {\n\"namespaces\": [ {\"type\": \"pid\"}, {\"type\": \"ipc\"}, {\"type\": false} ]\n}\n}"));

        Assert.Equal("config.json: linux.namespaces[2].type: line 3: expected a string", e.Message);
    }

    [Fact]
    public void NullDocument_IsRejected()
    {
        var e = Assert.Throws<SpecException>(() => SpecLoader.Parse("null"));

        Assert.Equal("config.json: the document is null", e.Message);
    }

    [Fact]
    public void NonObjectDocument_IsRejected() =>
        Assert.Throws<SpecException>(() => SpecLoader.Parse("[]"));
}
