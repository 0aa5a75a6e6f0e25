using System.Text.Json;
using System.Text.Json.Serialization;

namespace Berth.Oci;

/// <summary>
/// Source-generated JSON for every OCI document. Reading is strict about types (no numbers in strings,
/// no null for required values) and tolerant of unknown fields, as the spec requires. Writing omits
/// nulls and indents with tabs, like <c>runc spec</c>; use <see cref="Compact"/> for one-line output.
/// </summary>
[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true,
    IndentCharacter = '\t',
    IndentSize = 1,
    RespectNullableAnnotations = true,
    NumberHandling = JsonNumberHandling.Strict,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip)]
[JsonSerializable(typeof(Spec))]
[JsonSerializable(typeof(ContainerState))]
[JsonSerializable(typeof(List<ContainerState>))]
[JsonSerializable(typeof(Features))]
public sealed partial class SpecJsonContext : JsonSerializerContext
{
    /// <summary>The same contract, written on one line (hook stdin, API payloads).</summary>
    public static SpecJsonContext Compact => s_compact ??= new(new JsonSerializerOptions(Default.Options) { WriteIndented = false });

    private static SpecJsonContext? s_compact;
}
