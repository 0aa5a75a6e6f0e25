using System.Collections;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Berth.Oci.Tests;

/// <summary>
/// The hand-written config.json reader against the model and its System.Text.Json contract:
/// a document that sets every property of the model (built from the model's attributes, so a
/// property added to the model but not to the reader fails here) must read back whole.
/// </summary>
public class SpecReaderTests
{
    [Fact]
    public void EveryPropertyOfTheModel_IsRead()
    {
        var document = SampleOf(typeof(Spec));

        var spec = SpecLoader.Parse(document.ToJsonString());
        var written = JsonNode.Parse(JsonSerializer.Serialize(spec, SpecJsonContext.Compact.Spec));

        Assert.True(JsonNode.DeepEquals(document, written), $"read and written again:\n{written}\nexpected:\n{document}");
    }

    [Fact]
    public void EveryPropertyOfProcess_IsRead_FromAProcessFile()
    {
        var document = SampleOf(typeof(Process));

        var process = SpecLoader.ParseProcess(System.Text.Encoding.UTF8.GetBytes(document.ToJsonString()), "process.json");

        Assert.True(JsonNode.DeepEquals(document, JsonNode.Parse(JsonSerializer.Serialize(process, SpecJsonContext.Compact.Process))));
    }

    [Fact]
    public void EveryPropertyOfResources_IsRead_FromAnUpdateFile()
    {
        var document = SampleOf(typeof(LinuxResources));

        var resources = SpecLoader.ParseResources(System.Text.Encoding.UTF8.GetBytes(document.ToJsonString()), "stdin");

        Assert.True(JsonNode.DeepEquals(document, JsonNode.Parse(JsonSerializer.Serialize(resources, SpecJsonContext.Compact.LinuxResources))));
    }

    [Fact]
    public void ReadsWhatTheSerializerReads_ForTheFullConfig()
    {
        var byHand = SpecLoader.Parse(Fixtures.FullConfig);
        var bySerializer = JsonSerializer.Deserialize(Fixtures.FullConfig, SpecJsonContext.Default.Spec)!;

        Assert.Equal(JsonSerializer.Serialize(bySerializer, SpecJsonContext.Default.Spec), JsonSerializer.Serialize(byHand, SpecJsonContext.Default.Spec));
    }

    [Theory]
    [InlineData("""{"ociVersion":"1.0.0"} x""", "line 1")]
    [InlineData("""{"ociVersion":"1.0.0"}{}""", "line 1")]
    [InlineData("", null)]
    [InlineData("{\"ociVersion\":\"1.0.0\", // comment\n\"hostname\":\"h\"}", "line 1")]
    [InlineData("""{"process":{"args":["sh",null]}}""", "process.args[1]: line 1: must not be null")]
    [InlineData("""{"process":{"user":null}}""", "process.user: line 1: must not be null")]
    [InlineData("""{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":null,"action":"x"}]}}}""", "linux.seccomp.syscalls[0].names: line 1: must not be null")]
    [InlineData("""{"linux":{"timeOffsets":{"boottime":{"secs":"1"}}}}""", "linux.timeOffsets.boottime.secs: line 1: expected an integer (64 bit)")]
    [InlineData("""{"linux":{"resources":{"blockIO":{"weight":70000}}}}""", "linux.resources.blockIO.weight: line 1: expected a non-negative integer (16 bit)")]
    [InlineData("""{"hooks":{"prestart":[{"path":"/x","timeout":99999999999}]}}""", "hooks.prestart[0].timeout: line 1: expected an integer (32 bit)")]
    [InlineData("""{"process":{"cwd":"/\ud800"}}""", "process.cwd: line 1: not a valid string")]
    [InlineData("""{"annotations":{"\udc00":"x"}}""", "line 1: not a valid string")]
    public void BadDocuments_AreRejected_NamingWhere(string json, string? expected)
    {
        var e = Assert.Throws<SpecException>(() => SpecLoader.Parse(json));

        Assert.StartsWith("config.json: ", e.Message);
        if (expected is not null) Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ErrorLines_CountFromTheTokenAtFault()
    {
        var e = Assert.Throws<SpecException>(() => SpecLoader.Parse("{\n\"ociVersion\": \"1.0.0\",\n\n\"hostname\": 3\n}"));

        Assert.Equal("config.json: hostname: line 4: expected a string", e.Message);
    }

    [Fact]
    public void DuplicateProperties_LastOneWins_AsWithTheSerializer()
    {
        var spec = SpecLoader.Parse("""{"hostname":"a","hostname":"b"}""");

        Assert.Equal("b", spec.Hostname);
    }

    /// <summary>A JSON object giving every [JsonPropertyName] property of <paramref name="type"/> a value of its type.</summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "tests run under the JIT, not trimmed")]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2062", Justification = "tests run under the JIT, not trimmed")]
    private static JsonNode SampleOf(Type type, int depth = 0)
    {
        Assert.True(depth < 10, $"model recursion at {type}");
        if (Nullable.GetUnderlyingType(type) is { } inner) type = inner;
        if (type == typeof(string)) return JsonValue.Create("s")!;
        if (type == typeof(bool)) return JsonValue.Create(true)!;
        if (type == typeof(int) || type == typeof(long)) return JsonValue.Create(-7)!;
        if (type == typeof(uint) || type == typeof(ulong) || type == typeof(ushort)) return JsonValue.Create(9)!;
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
            return new JsonArray(SampleOf(type.GetGenericArguments()[0], depth + 1), SampleOf(type.GetGenericArguments()[0], depth + 1));
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            return new JsonObject { ["k.1"] = SampleOf(type.GetGenericArguments()[1], depth + 1), ["k2"] = SampleOf(type.GetGenericArguments()[1], depth + 1) };
        Assert.True(type.IsClass && type.Namespace == "Berth.Oci", $"no sample for {type}");
        var obj = new JsonObject();
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetCustomAttribute<JsonPropertyNameAttribute>() is not { } name) continue;
            obj[name.Name] = SampleOf(property.PropertyType, depth + 1);
        }
        Assert.NotEmpty(obj);
        return obj;
    }
}
