using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Berth.Oci.Tests;

/// <summary>The runtime's own encoder escapes exactly as JavaScriptEncoder.Default, which it stands in for.</summary>
public sealed class HandWrittenJsonTests
{
    public static TheoryData<string> Strings => new()
    {
        "plain /run/berth/state",
        "<script>&'\"+`\\",
        "tab\there\nnew line\u0001\u001f\u007f",
        "2026-12-05T16:46:00.1234567+00:00",
        "ünïcödé 漢字 \u00a0 \u2028 \u2029",
        "emoji 🐳 and a lone surrogate \ud800",
        "",
    };

    [Theory]
    [MemberData(nameof(Strings))]
    public void Escapes_as_the_default_encoder(string text)
    {
        Assert.Equal(JavaScriptEncoder.Default.Encode(text), HandWrittenJson.Encoder.Encode(text));
        Assert.Equal(Write(text, new JsonWriterOptions()), Write(text, HandWrittenJson.Options()));
    }

    [Fact]
    public void Indented_options_indent_with_one_tab()
    {
        Assert.Equal("{\n\t\"k\": \"v\"\n}".Replace("\n", Environment.NewLine, StringComparison.Ordinal), Write("v", HandWrittenJson.Options(indented: true)));
    }

    private static string Write(string value, JsonWriterOptions options)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, options))
        {
            w.WriteStartObject();
            w.WriteString("k", value);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
