using Berth.Images;
using Berth.Images.Content;
using Berth.Images.References;
using Berth.Images.Store;

namespace Berth.Daemon.Engine;

public sealed partial class ImageService
{
    /// <summary>
    /// An image event as dockerd's LogImageEvent: the image's labels (while it still exists), then
    /// <c>name</c>. The actor is an image ID (tag, untag, delete, import, load, save) or a familiar
    /// reference (pull, push: <c>busybox:latest</c> with name <c>busybox</c>).
    /// </summary>
    public void PublishEvent(string actorId, string? name, string action, IReadOnlyDictionary<string, string>? labels = null)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in labels ?? LabelsOf(actorId)) attributes[k] = v;
        if (!string.IsNullOrEmpty(name)) attributes["name"] = name;
        Events.Publish("image", action, actorId, attributes);
    }

    /// <summary>Names <paramref name="source"/> <paramref name="target"/> (a full reference) and publishes dockerd's tag event.</summary>
    public void Tag(string source, string target)
    {
        Store.Tag(source, target);
        Image image = Store.Get(target);
        PublishEvent(image.Id.Value, ImageReference.Parse(target).FamiliarName, "tag");
    }

    /// <summary>dockerd's untag (one per name) and delete events of a removal.</summary>
    private void PublishRemovals(Digest id, IReadOnlyDictionary<string, string> labels, IEnumerable<ImageRemoval> removals)
    {
        foreach (ImageRemoval r in removals)
        {
            if (r.Untagged is { } untagged) PublishEvent(id.Value, untagged, "untag", labels);
            if (r.Deleted is { } deleted) PublishEvent(deleted.Value, deleted.Value, "delete", labels);
        }
    }

    private Image? TryGet(string nameOrId)
    {
        try
        {
            return Store.Get(nameOrId);
        }
        catch (ImagesException)
        {
            return null;
        }
    }

    private IReadOnlyDictionary<string, string> LabelsOf(string nameOrId)
    {
        try
        {
            return Store.Get(nameOrId).Config.Config?.Labels ?? new Dictionary<string, string>();
        }
        catch (ImagesException)
        {
            return new Dictionary<string, string>();
        }
    }

    /// <summary>The familiar repository without tag or digest (<c>busybox</c>, <c>127.0.0.1:5000/x</c>).</summary>
    private static string FamiliarRepository(ImageReference r)
        => global::Berth.Daemon.Events.EventFilter.StripTag(r.FamiliarName);
}
