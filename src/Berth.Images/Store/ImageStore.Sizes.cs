using System.Collections.Concurrent;
using System.Globalization;
using Berth.Images.Content;
using Berth.Images.Layers;
using Berth.Images.Manifests;

namespace Berth.Images.Store;

/// <summary>
/// Layer sizes as Docker reports them (image Size, history, df): what each layer holds unpacked
/// (see <see cref="LayerSize"/>), not its blob's size. Counted once, when the layer is unpacked,
/// imported or committed, and kept by diffID:
/// <code>
/// &lt;root&gt;/layer-sizes/&lt;diffID hex&gt;   the size in bytes, decimal (written temp+rename)
/// </code>
/// A layer without a record (a store from before, a loaded image not unpacked yet) is measured from
/// its blob the first time it is asked for. A lost record is measured again, so no fsync.
/// </summary>
public sealed partial class ImageStore
{
    private readonly ConcurrentDictionary<Digest, long> _layerSizes = new();

    private string LayerSizePath(Digest diffId) => Path.Combine(Root, "layer-sizes", diffId.Hex);

    /// <summary>Records what the layer <paramref name="diffId"/> holds unpacked.</summary>
    public void RecordLayerSize(Digest diffId, long size)
    {
        if (_layerSizes.TryGetValue(diffId, out long known) && known == size) return;
        string path = LayerSizePath(diffId);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temp = $"{path}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temp, size.ToString(CultureInfo.InvariantCulture));
        File.Move(temp, path, overwrite: true);
        _layerSizes[diffId] = size;
    }

    /// <summary>What layer <paramref name="index"/> of <paramref name="image"/> holds unpacked.</summary>
    public long LayerSizeOf(Image image, int index)
    {
        Digest diffId = image.DiffIds[index];
        if (_layerSizes.TryGetValue(diffId, out long size)) return size;
        try
        {
            if (long.TryParse(File.ReadAllText(LayerSizePath(diffId)), NumberStyles.None, CultureInfo.InvariantCulture, out size))
                return _layerSizes[diffId] = size;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
        }
        Descriptor layer = image.Manifest.Layers[index];
        using (Stream blob = Content.OpenRead(layer.ParsedDigest))
            size = LayerSize.Measure(blob);
        RecordLayerSize(diffId, size);
        return size;
    }

    /// <summary>Garbage collection: drops the records of layers no image kept has.</summary>
    private void ForgetLayerSizesExcept(HashSet<Digest> kept)
    {
        string dir = Path.Combine(Root, "layer-sizes");
        if (!Directory.Exists(dir)) return;
        foreach (string path in Directory.EnumerateFiles(dir))
        {
            bool layer = Digest.TryParse("sha256:" + Path.GetFileName(path), out Digest diffId);
            if (layer && kept.Contains(diffId)) continue;
            // A temp file is a write in flight (LayerSizeOf records outside the collection's lock) unless a crash left
            // it: only an old one goes.
            if (!layer && File.GetLastWriteTimeUtc(path) > DateTime.UtcNow.AddMinutes(-10)) continue;
            File.Delete(path);
            if (layer) _layerSizes.TryRemove(diffId, out _);
        }
    }

    /// <summary>The image's size as <c>docker images</c> shows it: its layers' unpacked sizes.</summary>
    public long SizeOf(Image image)
    {
        long size = 0;
        for (int i = 0; i < image.Manifest.Layers.Count; i++) size += LayerSizeOf(image, i);
        return size;
    }
}
