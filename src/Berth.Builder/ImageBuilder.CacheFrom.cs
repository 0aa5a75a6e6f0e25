using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Engine;
using Berth.Images.Manifests;
using Berth.Images.Store;

namespace Berth.Builder;

/// <summary>
/// <c>--cache-from</c>, as dockerd 20.10's classic builder (moby image/cache ImageCache): the listed
/// images are the build's only cache. A step hits when the local cache has it and its image is one of
/// the sources or a parent of one; otherwise when a source's history continues the stage's image (the
/// same history and layers so far) with this very step (its created_by). The hit is the source itself
/// at its last step; before that, an image is made of the stage's image plus the source's layer and
/// history entry for the step, as dockerd restores it, and the build goes on with that source alone.
/// This is what makes an image built elsewhere (pulled, loaded) a cache on a machine that never built it.
/// </summary>
public sealed partial class ImageBuilder
{
    /// <summary>The images <paramref name="references"/> name; one that is not here is skipped, as dockerd skips it (with a warning in its log).</summary>
    private List<Image>? ResolveCacheSources(IReadOnlyList<string> references)
    {
        if (references.Count == 0) return null;
        var sources = new List<Image>();
        foreach (string reference in references)
        {
            try
            {
                sources.Add(_store.Get(reference));
            }
            catch (ImagesException e) when (e.Kind is ImagesErrorKind.NotFound or ImagesErrorKind.InvalidArgument)
            {
            }
        }
        return sources;
    }

    private async Task<Image?> ProbeCacheSourcesAsync(BuildRun run, StageState state, string key, string createdBy, ContainerConfig config)
    {
        List<Image> sources = run.CacheSources!;
        if (_cache.Lookup(key) is { } local && sources.Any(source => IsSelfOrParent(local.Id, source.Id))) return local;

        Image? parent = state.Image;
        int position = parent?.Config.History?.Count ?? 0;
        foreach (Image target in sources)
        {
            if (!ContinuesFrom(target, parent) || (target.Config.History![position].CreatedBy ?? "") != createdBy) continue;
            if (position == target.Config.History!.Count - 1)
            {
                // The source's last step: the source itself, made the stage image's child as dockerd records it.
                if (parent is not null) _store.SetParent(target.Id, parent.Id);
                return target;
            }
            Image restored = await RestoreStepAsync(parent, target, position, config);
            if (parent is not null) _store.SetParent(restored.Id, parent.Id);
            // As dockerd: once a source matched, the build follows it alone (it does not jump between sources).
            run.CacheSources = [target];
            return restored;
        }
        return null;
    }

    /// <summary>Whether <paramref name="image"/> is <paramref name="source"/> or one of its parents (the image store's parent links).</summary>
    private bool IsSelfOrParent(Digest image, Digest source)
    {
        var seen = new HashSet<Digest>();
        for (Digest? at = source; at is { } current && seen.Add(current); at = _store.ParentOf(current))
            if (current == image) return true;
        return false;
    }

    /// <summary>moby's isValidParent: <paramref name="image"/>'s history and layers begin with all of <paramref name="parent"/>'s, and go further.</summary>
    private static bool ContinuesFrom(Image image, Image? parent)
    {
        IReadOnlyList<HistoryEntry> history = image.Config.History ?? [];
        if (history.Count == 0) return false;
        if (parent is null) return true;
        IReadOnlyList<HistoryEntry> parentHistory = parent.Config.History ?? [];
        IReadOnlyList<string> parentLayers = parent.Config.RootFS.DiffIds, layers = image.Config.RootFS.DiffIds;
        if (parentHistory.Count == 0 && parentLayers.Count == 0) return true;
        if (parentHistory.Count >= history.Count || parentLayers.Count > layers.Count) return false;
        for (int i = 0; i < parentHistory.Count; i++)
            if (parentHistory[i] != history[i]) return false;
        for (int i = 0; i < parentLayers.Count; i++)
            if (parentLayers[i] != layers[i]) return false;
        return true;
    }

    /// <summary>
    /// moby's restoreCachedImage: the stage's image plus <paramref name="target"/>'s history entry at
    /// <paramref name="position"/> and, unless that entry is an empty layer, the layer it made.
    /// </summary>
    private async Task<Image> RestoreStepAsync(Image? parent, Image target, int position, ContainerConfig config)
    {
        IReadOnlyList<HistoryEntry> targetHistory = target.Config.History ?? [];
        HistoryEntry entry = targetHistory[position];
        var diffIds = new List<string>(parent?.Config.RootFS.DiffIds ?? []);
        var layers = new List<Descriptor>(parent?.Manifest.Layers ?? []);
        if (!entry.EmptyLayer)
        {
            int layerIndex = targetHistory.Take(position).Count(h => !h.EmptyLayer);
            diffIds.Add(target.Config.RootFS.DiffIds[layerIndex]);
            layers.Add(target.Manifest.Layers[layerIndex]);
        }
        var imageConfig = new ImageConfig
        {
            Created = entry.Created,
            Author = target.Config.Author,
            Architecture = target.Config.Architecture,
            OS = target.Config.OS,
            OSVersion = target.Config.OSVersion,
            Variant = target.Config.Variant,
            Config = config,
            RootFS = new RootFS { DiffIds = diffIds },
            History = [.. parent?.Config.History ?? [], entry],
        };
        try
        {
            return await _store.ComposeAsync(imageConfig, layers, target.Manifest.MediaType == MediaTypes.DockerManifest);
        }
        catch (ImagesException e)
        {
            throw new BuildException(BuildErrorKind.Internal, $"failed to restore cached image from {parent?.Id.Value ?? "scratch"} to {target.Id}: {e.Message}", e);
        }
    }
}
