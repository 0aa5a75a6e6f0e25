using Berth.Images;
using Berth.Images.Snapshots;

namespace Berth.Daemon.Containers;

public sealed partial class ContainerService
{
    /// <summary>
    /// The size of what the container wrote: its writable layer (the overlay's upper directory),
    /// regular files' sizes summed as dockerd's directory.Size does. 0 when the layer is gone.
    /// </summary>
    public long SizeRw(ContainerEntry entry)
    {
        string upper;
        try
        {
            upper = MountHelper.WritableDirectory(Snapshotter.Mounts(SnapshotKey(entry.Record.Id)));
        }
        catch (ImagesException)
        {
            return 0;
        }
        return DirectorySize(upper);
    }

    /// <summary>
    /// <c>ps -s</c> and <c>inspect -s</c> (size=1): the writable layer's size and that plus the image's, as dockerd's
    /// SizeRw and SizeRootFs (the image counted as <c>images</c> shows it; 0 for an image gone meanwhile).
    /// </summary>
    public (long Rw, long RootFs) Sizes(ContainerEntry entry)
    {
        long rw = SizeRw(entry);
        long image;
        try
        {
            image = Images.SizeOf(Images.Get(entry.Record.ImageId));
        }
        catch (ImagesException)
        {
            image = 0;
        }
        return (rw, rw + image);
    }

    /// <summary>Sums the sizes of the files under <paramref name="dir"/>; symbolic links are not followed.</summary>
    public static long DirectorySize(string dir)
    {
        if (!Directory.Exists(dir)) return 0;
        long total = 0;
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        try
        {
            foreach (FileInfo f in new DirectoryInfo(dir).EnumerateFiles("*", options))
                if (f.LinkTarget is null) total += f.Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a file went while we walked (the container runs): the figure is an estimate anyway
        }
        return total;
    }

    /// <summary>
    /// POST /containers/prune: removes the stopped containers <paramref name="accept"/> takes;
    /// returns their IDs and the space their layers held; publishes dockerd's prune event.
    /// </summary>
    public async Task<(List<string> Deleted, long Reclaimed)> PruneAsync(Func<ContainerRecord, bool> accept, CancellationToken cancellationToken)
    {
        var deleted = new List<string>();
        long reclaimed = 0;
        foreach (ContainerEntry e in Snapshot())
        {
            if (e.Record.State.Running || e.Record.State.Restarting || !accept(e.Record)) continue;
            long size = SizeRw(e);
            try
            {
                await RemoveAsync(e.Record.Id, force: false, cancellationToken);
                deleted.Add(e.Record.Id);
                reclaimed += size;
            }
            catch (Api.ApiException)
            {
                // started or removed meanwhile
            }
        }
        Events.Publish("container", "prune", "", new Dictionary<string, string> { ["reclaimed"] = reclaimed.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return (deleted, reclaimed);
    }
}
