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
    /// <summary>
    /// Version 1: a pull or a push records the repository's digest name (<c>repo@sha256:…</c>) beside
    /// the tag, and a tag alone gives no RepoDigests. Files without a version were written before:
    /// every tag then stood for a digest too.
    /// </summary>
    public const int CurrentVersion = 1;

    public static Dictionary<string, ReferenceEntry> Load(string path, out int version)
    {
        ReferenceDocument? document = StoreFile.Load(path, StoreJsonContext.Default.ReferenceDocument, "image references");
        version = document?.Version ?? CurrentVersion;
        return new(document?.References ?? [], StringComparer.Ordinal);
    }

    public static void Save(string path, Dictionary<string, ReferenceEntry> references)
        => StoreFile.Save(path, new ReferenceDocument { Version = CurrentVersion, References = references }, StoreJsonContext.Default.ReferenceDocument);
}

/// <summary>Each image's parent (image IDs), as dockerd's image store records it for the images a build step makes (<c>parents.json</c>, replaced as references.json is).</summary>
internal static class ParentFile
{
    public static Dictionary<string, string> Load(string path)
        => new(StoreFile.Load(path, StoreJsonContext.Default.ParentDocument, "image parents")?.Parents ?? [], StringComparer.Ordinal);

    public static void Save(string path, Dictionary<string, string> parents)
        => StoreFile.Save(path, new ParentDocument { Parents = parents }, StoreJsonContext.Default.ParentDocument);
}

/// <summary>The image store's JSON files, each replaced atomically as described on <see cref="ReferenceFile"/>.</summary>
internal static class StoreFile
{
    /// <summary>The document, or null when there is no file; a stale temp file is removed first.</summary>
    public static T? Load<T>(string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string what) where T : class
    {
        File.Delete(path + ".tmp");
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), type);
        }
        catch (JsonException e)
        {
            throw new ImagesException(ImagesErrorKind.DataLoss, $"{what} file `{path}` is corrupt: {e.Message}", e);
        }
    }

    public static void Save<T>(string path, T document, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(document, type);
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
    [JsonPropertyName("version")] public int Version { get; set; }
    [JsonPropertyName("references")] public Dictionary<string, ReferenceEntry> References { get; set; } = [];
}

internal sealed record ReferenceEntry
{
    [JsonPropertyName("target")] public required Descriptor Target { get; init; }
    [JsonPropertyName("created")] public DateTimeOffset Created { get; init; }
}

internal sealed class ParentDocument
{
    [JsonPropertyName("parents")] public Dictionary<string, string> Parents { get; set; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(ReferenceDocument))]
[JsonSerializable(typeof(ParentDocument))]
internal sealed partial class StoreJsonContext : JsonSerializerContext;
