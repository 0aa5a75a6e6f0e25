using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace Berth.Oci;

/// <summary>
/// Writer options for the documents the runtime writes by hand with <see cref="Utf8JsonWriter"/>
/// (state.json, the State on a hook's stdin, the seccomp listener's message).
/// </summary>
public static class HandWrittenJson
{
    /// <summary>
    /// The escaping of <see cref="JavaScriptEncoder.Default"/> (Basic Latin allowed, HTML-sensitive
    /// characters escaped), built on its own. A writer without an encoder reaches
    /// <c>JavaScriptEncoder.Default</c>, whose class initializer also builds the "unsafe relaxed"
    /// encoder by allowing each of the 65,536 BMP code points one at a time: ~0.9 million
    /// instructions (0.1–0.3 ms; a `state` is 3.5 million with it, 2.5 without) in every
    /// berth-runtime command that writes JSON (create, start, run, delete, state), found by
    /// single-stepping it (scripts/order-file/stepcov.c).
    /// </summary>
    public static readonly JavaScriptEncoder Encoder = JavaScriptEncoder.Create(UnicodeRanges.BasicLatin);

    /// <summary>Options with <see cref="Encoder"/>; indented with tabs as <c>runc state</c> prints.</summary>
    public static JsonWriterOptions Options(bool indented = false)
        => new() { Encoder = Encoder, Indented = indented, IndentCharacter = '\t', IndentSize = 1 };
}
