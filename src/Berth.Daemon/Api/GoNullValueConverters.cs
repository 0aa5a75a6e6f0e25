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
        converters.Add(new NullAsZero<int>((ref Utf8JsonReader r) => r.GetInt32(), (w, v) => w.WriteNumberValue(v)));
        converters.Add(new NullAsZero<long>((ref Utf8JsonReader r) => r.GetInt64(), (w, v) => w.WriteNumberValue(v)));
        converters.Add(new NullAsZero<uint>((ref Utf8JsonReader r) => r.GetUInt32(), (w, v) => w.WriteNumberValue(v)));
        converters.Add(new NullAsZero<ulong>((ref Utf8JsonReader r) => r.GetUInt64(), (w, v) => w.WriteNumberValue(v)));
        converters.Add(new NullAsZero<double>((ref Utf8JsonReader r) => r.GetDouble(), (w, v) => w.WriteNumberValue(v)));
        converters.Add(new NullAsZero<bool>((ref Utf8JsonReader r) => r.GetBoolean(), (w, v) => w.WriteBooleanValue(v)));
    }

    private delegate T ValueReader<T>(ref Utf8JsonReader reader);

    /// <summary>The built-in reading and writing of <typeparamref name="T"/>, with null read as its zero value.</summary>
    private sealed class NullAsZero<T>(ValueReader<T> read, Action<Utf8JsonWriter, T> write) : JsonConverter<T> where T : struct
    {
        public override bool HandleNull => true;
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType == JsonTokenType.Null ? default : read(ref reader);
        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => write(writer, value);
    }
}
