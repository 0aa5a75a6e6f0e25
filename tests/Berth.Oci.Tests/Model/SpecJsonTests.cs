using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Oci.Tests.Model;

public class SpecJsonTests
{
    private static string Serialize(Spec spec) => JsonSerializer.Serialize(spec, SpecJsonContext.Default.Spec);

    [Fact]
    public void FullConfig_RoundTripsWithoutLosingAField()
    {
        var spec = SpecLoader.Parse(Fixtures.FullConfig);
        var written = Serialize(spec);

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Fixtures.FullConfig), JsonNode.Parse(written)), written);
        Assert.Equal(written, Serialize(SpecLoader.Parse(written)));
    }

    [Fact]
    public void FullConfig_MapsToTypedValues()
    {
        var spec = SpecLoader.Parse(Fixtures.FullConfig);

        Assert.Equal(ulong.MaxValue, spec.Process!.Rlimits![0].Hard);
        Assert.Equal(-1, spec.Linux!.Resources!.Memory!.Swap);
        Assert.Equal(536870912, spec.Linux.Resources.Memory.Limit);
        Assert.False(spec.Linux.Resources.Memory.DisableOomKiller);
        Assert.Null(spec.Linux.Resources.Devices![0].Major);
        Assert.Equal(-3600, spec.Linux.TimeOffsets!["boottime"].Secs);
        Assert.Equal(100000u, spec.Linux.UidMappings![0].HostId);
        Assert.Equal(18u, spec.Process.User.Umask);
        Assert.Equal(5, spec.Hooks!.Prestart![0].Timeout);
        Assert.Equal("SCMP_CMP_EQ", spec.Linux.Seccomp!.Syscalls![1].Args![0].Op);
    }

    [Fact]
    public void AbsentValues_StayNull_AndAreNotWritten()
    {
        var spec = SpecLoader.Parse("""{"ociVersion":"1.0.0","linux":{"resources":{"memory":{}}}}""");

        Assert.Null(spec.Linux!.Resources!.Memory!.Limit);
        Assert.Null(spec.Process);
        Assert.Equal("""{"ociVersion":"1.0.0","linux":{"resources":{"memory":{}}}}""",
            JsonSerializer.Serialize(spec, SpecJsonContext.Compact.Spec));
    }

    [Fact]
    public void Output_IsTabIndented_LikeRuncSpec()
    {
        var json = Serialize(new Spec { OciVersion = "1.0.0", Root = new Root { Path = "rootfs" } });

        Assert.Equal("{\n\t\"ociVersion\": \"1.0.0\",\n\t\"root\": {\n\t\t\"path\": \"rootfs\"\n\t}\n}", json.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void UnknownFields_AreAccepted()
    {
        var spec = SpecLoader.Parse("""
            {"ociVersion":"1.0.0","future":{"x":[1,2]},"process":{"cwd":"/","args":["sh"],"newThing":true,
             "user":{"uid":0,"gid":0,"extra":"y"}},"windows":{"layerFolders":[]},"vm":{}}
            """);

        Assert.Equal("/", spec.Process!.Cwd);
    }

    [Theory]
    [InlineData("""{"process":{"terminal":"yes"}}""", "process.terminal", "a boolean")]
    [InlineData("""{"process":{"args":"sh"}}""", "process.args", "an array")]
    [InlineData("""{"process":{"user":{"uid":-1}}}""", "process.user.uid", "a non-negative integer")]
    [InlineData("""{"process":{"user":{"uid":"0"}}}""", "process.user.uid", "a non-negative integer")]
    [InlineData("""{"process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":1.5,"soft":1}]}}""", "process.rlimits[0].hard", "integer")]
    [InlineData("""{"linux":{"namespaces":[{"type":"pid"},{"type":7}]}}""", "linux.namespaces[1].type", "a string")]
    [InlineData("""{"linux":{"resources":{"memory":{"limit":"1g"}}}}""", "linux.resources.memory.limit", "an integer")]
    [InlineData("""{"mounts":{}}""", "mounts", "an array")]
    [InlineData("""{"ociVersion":null}""", "ociVersion", "must not be null")]
    [InlineData("""{"process":{"cwd":null}}""", "process.cwd", "must not be null")]
    [InlineData("""{"linux":{"sysctl":{"net.core.somaxconn":1024}}}""", "linux.sysctl['net.core.somaxconn']", "a string")]
    public void WrongTypes_AreRejected_NamingThePath(string json, string path, string expected)
    {
        var e = Assert.Throws<SpecException>(() => SpecLoader.Parse(json));

        Assert.Equal(path, e.Field);
        Assert.StartsWith($"config.json: {path}: line 1: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ContainerState_UsesTheSpecsNamesAndLowercaseStatus()
    {
        var state = new ContainerState { Id = "c1", Status = ContainerStatus.Running, Pid = 42, Bundle = "/b" };

        var json = JsonSerializer.Serialize(state, SpecJsonContext.Compact.ContainerState);

        Assert.Equal("""{"ociVersion":"1.2.0","id":"c1","status":"running","pid":42,"bundle":"/b"}""", json);
    }

    [Theory]
    [InlineData("creating", ContainerStatus.Creating)]
    [InlineData("created", ContainerStatus.Created)]
    [InlineData("running", ContainerStatus.Running)]
    [InlineData("stopped", ContainerStatus.Stopped)]
    [InlineData("paused", ContainerStatus.Paused)]
    public void ContainerState_ParsesEveryStatus(string text, ContainerStatus status)
    {
        var json = """{"ociVersion":"1.0.2","id":"x","status":"STATUS","pid":1,"bundle":"/b","annotations":{"a":"b"}}""".Replace("STATUS", text);
        var state = JsonSerializer.Deserialize(json,
            SpecJsonContext.Default.ContainerState)!;

        Assert.Equal(status, state.Status);
        Assert.Equal("b", state.Annotations!["a"]);
    }

    [Fact]
    public void ContainerState_RejectsAnUnknownStatus() =>
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize("""{"id":"x","status":"zombie"}""", SpecJsonContext.Default.ContainerState));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ContainerState_WrittenByHand_IsWhatTheSerializerWrites(bool full)
    {
        var state = new ContainerState { Id = "c1", Status = ContainerStatus.Paused, Pid = 42, Bundle = "/b \"x\"" };
        if (full)
        {
            state.Rootfs = "/b/rootfs";
            state.Created = new DateTimeOffset(2026, 12, 5, 1, 2, 3, 456, TimeSpan.FromHours(1));
            state.Owner = "";
            state.Annotations = new() { ["a.b"] = "ü" };
        }

        Assert.Equal(JsonSerializer.Serialize(state, SpecJsonContext.Compact.ContainerState), ContainerStateWriter.Write(state));
        Assert.Equal(JsonSerializer.Serialize(state, SpecJsonContext.Default.ContainerState), ContainerStateWriter.Write(state, indented: true));
        foreach (var status in Enum.GetValues<ContainerStatus>())
            Assert.Equal(JsonSerializer.Serialize(status, SpecJsonContext.Default.ContainerStatus), $"\"{ContainerStateWriter.Name(status)}\"");
    }
}
