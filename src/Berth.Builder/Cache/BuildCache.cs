using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.Images;
using Berth.Images.Manifests;
using Berth.Images.Store;

namespace Berth.Builder.Cache;

/// <summary>
/// The layer cache: for each build step, the image it produced, keyed by the parent image's ID,
/// the instruction as it ran (variables expanded, the build args a RUN saw) and, for COPY and ADD,
/// the checksum of what they read. A step whose key is here (and whose image is still readable) is
/// not run again. Entries are files <c>&lt;root&gt;/&lt;key&gt;</c> holding the image's manifest
/// descriptor, written atomically; the image store keeps the images as intermediates (safe from
/// garbage collection, resolvable by ID, not listed), and <see cref="Prune"/> lets them go.
/// </summary>
public sealed class BuildCache
{
    private readonly ImageStore _store;

    public BuildCache(string root, ImageStore store)
    {
        Root = Path.GetFullPath(root);
        _store = store;
        Directory.CreateDirectory(Root);
        foreach (string temp in Directory.EnumerateFiles(Root, "*.tmp")) File.Delete(temp);
    }

    public string Root { get; }

    /// <summary>The cache key of a step: sha256 over its parts, separated so that no two lists of parts collide.</summary>
    public static string Key(params string[] parts)
    {
        var builder = new StringBuilder();
        foreach (string part in parts) builder.Append(part.Length).Append(':').Append(part).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(builder.ToString())));
    }

    /// <summary>The image cached under <paramref name="key"/>, or null (also when it is gone or damaged).</summary>
    public Image? Lookup(string key)
    {
        string path = Path.Combine(Root, key);
        try
        {
            CacheEntry? entry = JsonSerializer.Deserialize(File.ReadAllBytes(path), CacheJsonContext.Default.CacheEntry);
            // An image removed since (rmi takes a build's step images with it) is no hit.
            return entry is null || !_store.Holds(entry.Target) ? null : _store.Read(entry.Target);
        }
        catch (Exception e) when (e is FileNotFoundException or JsonException or ImagesException)
        {
            return null;
        }
    }

    /// <summary>Records <paramref name="image"/> as the result of the step <paramref name="key"/>.</summary>
    public void Store(string key, Image image)
    {
        string path = Path.Combine(Root, key);
        string temp = path + ".tmp";
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(new CacheEntry { Target = image.Target, Created = DateTimeOffset.UtcNow }, CacheJsonContext.Default.CacheEntry);
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        _store.KeepIntermediate(image.Target);
    }

    /// <summary>Entries and the bytes of the layers only they keep (an estimate: layer blob sizes).</summary>
    public (int Count, long Size) Usage()
    {
        int count = 0;
        long size = 0;
        foreach (Descriptor root in Roots())
        {
            count++;
            try
            {
                size += _store.Read(root).Manifest.Layers.LastOrDefault()?.Size ?? 0;
            }
            catch (ImagesException)
            {
            }
        }
        return (count, size);
    }

    /// <summary>
    /// Forgets every entry and intermediate image (the image store collects what only they kept at its next
    /// collection) and removes the RUN --mount=type=cache directories.
    /// </summary>
    public int Prune()
    {
        int removed = 0;
        foreach (string file in Directory.EnumerateFiles(Root))
        {
            File.Delete(file);
            removed++;
        }
        string mounts = Path.Combine(Root, "mounts");
        if (Directory.Exists(mounts))
            foreach (string directory in Directory.EnumerateDirectories(mounts))
            {
                Directory.Delete(directory, recursive: true);
                removed++;
            }
        _store.ForgetIntermediates();
        return removed;
    }

    private IEnumerable<Descriptor> Roots()
    {
        var roots = new List<Descriptor>();
        foreach (string file in Directory.EnumerateFiles(Root))
        {
            if (file.EndsWith(".tmp", StringComparison.Ordinal)) continue;
            try
            {
                if (JsonSerializer.Deserialize(File.ReadAllBytes(file), CacheJsonContext.Default.CacheEntry) is { } entry) roots.Add(entry.Target);
            }
            catch (Exception e) when (e is IOException or JsonException)
            {
            }
        }
        return roots;
    }
}

internal sealed class CacheEntry
{
    [JsonPropertyName("target")] public required Descriptor Target { get; init; }
    [JsonPropertyName("created")] public DateTimeOffset Created { get; init; }
}

[JsonSerializable(typeof(CacheEntry))]
internal sealed partial class CacheJsonContext : JsonSerializerContext;
