using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Oci.Tests;

public class SpecTemplateTests
{
    [RuncFact]
    public void Default_IsWhatRuncSpecPrints()
    {
        using var dir = new TempBundle();
        Runc.Run(dir.Dir, "spec");
        var runcJson = File.ReadAllText(Path.Combine(dir.Dir, "config.json"));
        var runcVersion = JsonNode.Parse(runcJson)!["ociVersion"]!.GetValue<string>();

        var ours = JsonSerializer.Serialize(SpecTemplate.Default(runcVersion), SpecJsonContext.Default.Spec);

        AssertSameJson(runcJson, ours);
        Assert.Equal(runcJson, ours);
    }

    [RuncFact]
    public void MakeRootless_IsWhatRuncSpecRootlessPrints()
    {
        using var dir = new TempBundle();
        Runc.Run(dir.Dir, "spec", "--rootless");
        var runcJson = File.ReadAllText(Path.Combine(dir.Dir, "config.json"));
        var runcVersion = JsonNode.Parse(runcJson)!["ociVersion"]!.GetValue<string>();

        var spec = SpecTemplate.MakeRootless(SpecTemplate.Default(runcVersion), Runc.geteuid(), Runc.getegid());
        var ours = JsonSerializer.Serialize(spec, SpecJsonContext.Default.Spec);

        AssertSameJson(runcJson, ours);
    }

    [Fact]
    public void MakeRootless_MapsTheGivenIds_AndDropsNetworkAndResources()
    {
        var spec = SpecTemplate.MakeRootless(SpecTemplate.Default(), 1000, 1001);

        Assert.Equal(1000u, spec.Linux!.UidMappings!.Single().HostId);
        Assert.Equal(1001u, spec.Linux.GidMappings!.Single().HostId);
        Assert.Equal(0u, spec.Linux.UidMappings![0].ContainerId);
        Assert.False(spec.Linux.HasNamespace(NamespaceType.Network));
        Assert.Equal(NamespaceType.User, spec.Linux.Namespaces![^1].Type);
        Assert.Null(spec.Linux.Resources);
        Assert.DoesNotContain("gid=5", spec.Mounts!.Single(m => m.Destination == "/dev/pts").Options!);
        Assert.Equal("/sys", spec.Mounts!.Single(m => m.Destination == "/sys").Source);
    }

    [Fact]
    public void Default_UsesBerthsVersion_AndValidates()
    {
        using var bundle = new TempBundle();
        var spec = SpecTemplate.Default();

        Assert.Equal(Spec.SupportedVersion, spec.OciVersion);
        Assert.Empty(SpecValidator.Validate(spec, bundle.Dir));
        Assert.Empty(SpecValidator.Validate(SpecTemplate.MakeRootless(spec, 1000, 1000), bundle.Dir));
    }

    [Fact]
    public void Default_ReturnsAFreshSpecEachTime()
    {
        var a = SpecTemplate.Default();
        a.Process!.Capabilities!.Bounding!.Add("CAP_SYS_ADMIN");

        Assert.Equal(3, SpecTemplate.Default().Process!.Capabilities!.Bounding!.Count);
    }

    private static void AssertSameJson(string expected, string actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(actual)),
            $"runc:\n{expected}\n\nberth:\n{actual}");
}
