using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Oci.Tests;

public class FeaturesTests
{
    [Fact]
    public void Describe_ByDefault_SaysSeccompIsNotSupported()
    {
        var features = Features.Describe();

        Assert.Equal("1.0.0", features.OciVersionMin);
        Assert.Equal("1.2.0", features.OciVersionMax);
        Assert.False(features.Linux!.Seccomp!.Enabled);
        Assert.Null(features.Linux.Seccomp.Actions);
        Assert.Equal(["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"], features.Hooks);
        Assert.Equal(41, features.Linux.Capabilities!.Count);
        Assert.Contains("time", features.Linux.Namespaces!);
        Assert.Contains("rbind", features.MountOptions!);
        Assert.Contains("tmpcopyup", features.MountOptions!);
    }

    [Fact]
    public void Describe_ListsSeccompNames_WhenEnabled()
    {
        var features = Features.Describe(new FeatureSupport { Seccomp = true, SeccompFlags = ["SECCOMP_FILTER_FLAG_LOG"] });

        var seccomp = features.Linux!.Seccomp!;
        Assert.True(seccomp.Enabled);
        Assert.Contains("SCMP_ACT_ERRNO", seccomp.Actions!);
        Assert.Contains("SCMP_CMP_MASKED_EQ", seccomp.Operators!);
        Assert.Contains("SCMP_ARCH_X86_64", seccomp.Archs!);
        Assert.Equal(["SECCOMP_FILTER_FLAG_LOG"], seccomp.SupportedFlags);
    }

    [Fact]
    public void Json_UsesTheSpecsNames()
    {
        var features = Features.Describe(new FeatureSupport
        {
            Systemd = true,
            Annotations = new Dictionary<string, string> { ["org.berth.version"] = "0.1" },
        });

        var node = JsonNode.Parse(JsonSerializer.Serialize(features, SpecJsonContext.Default.Features))!;

        Assert.Equal("1.0.0", (string?)node["ociVersionMin"]);
        Assert.True((bool?)node["linux"]!["cgroup"]!["systemd"]);
        Assert.False((bool?)node["linux"]!["seccomp"]!["enabled"]);
        Assert.False((bool?)node["linux"]!["apparmor"]!["enabled"]);
        Assert.Equal("0.1", (string?)node["annotations"]!["org.berth.version"]);
    }

    [RuncFact]
    public void RuncsFeatures_ParseIntoTheModel()
    {
        using var dir = new TempBundle();
        string json;
        try
        {
            json = Runc.Run(dir.Dir, "features");
        }
        catch (Exception e) when (e.Message.Contains("features"))
        {
            return; // runc before 1.1 has no `features`; nothing to compare.
        }

        var runc = JsonSerializer.Deserialize(json, SpecJsonContext.Default.Features)!;
        var ours = Features.Describe(new FeatureSupport { Seccomp = true });

        Assert.Equal("1.0.0", runc.OciVersionMin);
        Assert.Equal(runc.Hooks, ours.Hooks);
        Assert.Equal(runc.Linux!.Capabilities, ours.Linux!.Capabilities);
        Assert.Subset(ours.Linux.Namespaces!.ToHashSet(), runc.Linux.Namespaces!.ToHashSet());
        Assert.Subset(ours.MountOptions!.ToHashSet(), runc.MountOptions!.Where(o => !o.EndsWith("idmap")).ToHashSet());
        Assert.Subset(ours.Linux.Seccomp!.Actions!.ToHashSet(), runc.Linux.Seccomp!.Actions!.ToHashSet());
        Assert.Subset(ours.Linux.Seccomp.Operators!.ToHashSet(), runc.Linux.Seccomp.Operators!.ToHashSet());
        Assert.Subset(ours.Linux.Seccomp.Archs!.ToHashSet(), runc.Linux.Seccomp.Archs!.ToHashSet());
    }
}
