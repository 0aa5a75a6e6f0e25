using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Images.Manifests;

namespace Berth.Images.Store;

/// <summary>
/// The persisted name → descriptor map (<c>references.json</c>). Replaced atomically: written to a
/// temp file, fsynced, renamed over the old one, and the directory fsynced; a crash leaves the old
/// or the new file, never half of one, and a stale temp file is removed at open.
/// </summary>
internal static class ReferenceFile
{
    public static Dictionary<string, ReferenceEntry> Load(string path)
    {
        File.Delete(path + ".tmp");
        if (!File.Exists(path)) return new(StringComparer.Ordinal);
        try
        {
            ReferenceDocument? doc = JsonSerializer.Deserialize(File.ReadAllBytes(path), StoreJsonContext.Default.ReferenceDocument);
            return new Dictionary<string, ReferenceEntry>(doc?.References ?? [], StringComparer.Ordinal);
        }
        catch (JsonException e)
        {
            throw new ImagesException(ImagesErrorKind.DataLoss, $"image references file `{path}` is corrupt: {e.Message}", e);
        }
    }

    public static void Save(string path, Dictionary<string, ReferenceEntry> references)
    {
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(new ReferenceDocument { References = references }, StoreJsonContext.Default.ReferenceDocument);
        string temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        Interop.FsyncDirectory(Path.GetDirectoryName(path)!);
    }
}

internal sealed class ReferenceDocument
{
    [JsonPropertyName("references")] public Dictionary<string, ReferenceEntry> References { get; set; } = [];
}

internal sealed record ReferenceEntry
{
    [JsonPropertyName("target")] public required Descriptor Target { get; init; }
    [JsonPropertyName("created")] public DateTimeOffset Created { get; init; }
}

/// <summary>Each image's parent (image IDs), as dockerd's image store records it for the images a build step or commit makes.</summary>
internal sealed class ParentDocument
{
    [JsonPropertyName("parents")] public Dictionary<string, string> Parents { get; set; } = [];
}

internal static class ParentFile
{
    public static Dictionary<string, string> Load(string path)
    {
        File.Delete(path + ".tmp");
        if (!File.Exists(path)) return new(StringComparer.Ordinal);
        try
        {
            ParentDocument? doc = JsonSerializer.Deserialize(File.ReadAllBytes(path), StoreJsonContext.Default.ParentDocument);
            return new Dictionary<string, string>(doc?.Parents ?? [], StringComparer.Ordinal);
        }
        catch (JsonException e)
        {
            throw new ImagesException(ImagesErrorKind.DataLoss, $"image parents file `{path}` is corrupt: {e.Message}", e);
        }
    }

    public static void Save(string path, Dictionary<string, string> parents)
    {
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(new ParentDocument { Parents = parents }, StoreJsonContext.Default.ParentDocument);
        string temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        Interop.FsyncDirectory(Path.GetDirectoryName(path)!);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(ReferenceDocument))]
[JsonSerializable(typeof(ParentDocument))]
internal sealed partial class StoreJsonContext : JsonSerializerContext;
