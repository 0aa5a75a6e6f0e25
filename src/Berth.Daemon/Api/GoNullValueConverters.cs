using System.Text.Json;
using System.Text.Json.Serialization;

namespace Berth.Daemon.Api;

/// <summary>
/// Go's encoding/json reads <c>null</c> into a number or a bool as "leave it alone" (the zero value);
/// System.Text.Json refuses it for a non-nullable field. Clients rely on Go's way: docker-py sends a
/// health check as <c>{"Test": [...], "Timeout": null, "Retries": null, ...}</c> for every option
/// not given. These converters read null as the zero value and otherwise read and write exactly as
/// the built-in ones (a wrong token is still a JsonException naming the path).
/// </summary>
internal static class GoNullValueConverters
{
    public static void AddTo(IList<JsonConverter> converters)
    {
        converters.Add(new Int32());
        converters.Add(new Int64());
        converters.Add(new UInt32());
        converters.Add(new UInt64());
        converters.Add(new Double());
        converters.Add(new Boolean());
    }

    private sealed class Int32 : JsonConverter<int>
    {
        public override bool HandleNull => true;
        public override int Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType == JsonTokenType.Null ? 0 : reader.GetInt32();
        public override void Write(Utf8JsonWriter writer, int value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
    }

    private sealed class Int64 : JsonConverter<long>
    {
        public override bool HandleNull => true;
        public override long Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType == JsonTokenType.Null ? 0 : reader.GetInt64();
        public override void Write(Utf8JsonWriter writer, long value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
    }

    private sealed class UInt32 : JsonConverter<uint>
    {
        public override bool HandleNull => true;
        public override uint Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType == JsonTokenType.Null ? 0 : reader.GetUInt32();
        public override void Write(Utf8JsonWriter writer, uint value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
    }

    private sealed class UInt64 : JsonConverter<ulong>
    {
        public override bool HandleNull => true;
        public override ulong Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType == JsonTokenType.Null ? 0 : reader.GetUInt64();
        public override void Write(Utf8JsonWriter writer, ulong value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
    }

    private sealed class Double : JsonConverter<double>
    {
        public override bool HandleNull => true;
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType == JsonTokenType.Null ? 0 : reader.GetDouble();
        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
    }

    private sealed class Boolean : JsonConverter<bool>
    {
        public override bool HandleNull => true;
        public override bool Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType != JsonTokenType.Null && reader.GetBoolean();
        public override void Write(Utf8JsonWriter writer, bool value, JsonSerializerOptions options) => writer.WriteBooleanValue(value);
    }
}
