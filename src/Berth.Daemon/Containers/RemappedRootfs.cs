using Berth.Daemon.Configuration;
using Berth.Images.Snapshots;
using Berth.Oci;
using Berth.Runtime.Container;

namespace Berth.Daemon.Containers;

/// <summary>
/// The root filesystem of a container in a remapped user namespace (--userns-remap). dockerd keeps a
/// second copy of every layer with its owners shifted at unpack; berthd keeps one store, unshifted,
/// and gives the overlay id-mapped copies of its layers (overlayfs takes id-mapped lower and upper
/// layers since Linux 5.19): a file stored as owned by 0 is seen, in the overlay and so in the
/// container, as owned by the remapped root, and what the container writes is stored unshifted in
/// its writable layer. Commit, diff and changes read that layer as it is stored, so images made
/// from a remapped container have ordinary owners with no work of their own.
///
/// The upper layer's mapping holds one more line: overlayfs makes its work directory, whiteouts
/// and copy-ups as the mounter (the host's root), which the container's ranges do not hold; those
/// go through as <see cref="MounterDiskId"/> on disk (overlay chowns copy-ups to their owners after).
/// No container id maps there (the container's map holds its ranges only), so the container never
/// writes as it, and a layer file stored with that owner reads as unmapped inside.
/// </summary>
internal static class RemappedRootfs
{
    /// <summary>(uid_t)-2: where the mounter's files are stored in the upper layer.</summary>
    public const uint MounterDiskId = 4294967294;

    public static void Mount(IReadOnlyList<Berth.Images.Snapshots.Mount> mounts, string rootfs, string stage, UsernsRemap remap)
    {
        List<LinuxIdMapping> uids = [.. remap.UidMap], gids = [.. remap.GidMap];
        List<LinuxIdMapping> upperUids = [.. uids, new LinuxIdMapping { ContainerId = MounterDiskId, HostId = 0, Size = 1 }];
        List<LinuxIdMapping> upperGids = [.. gids, new LinuxIdMapping { ContainerId = MounterDiskId, HostId = 0, Size = 1 }];
        if (mounts is [{ Type: "bind" } bind])
        {
            IdmappedMounts.MountIdmapped([(bind.Source, rootfs)], upperUids, upperGids);
            return;
        }
        if (mounts is not [{ Type: "overlay" } overlay])
            throw new InvalidOperationException($"unexpected snapshot mounts: {string.Join(", ", mounts.Select(m => m.Type))}");
        string? Option(string key) => overlay.Options.FirstOrDefault(o => o.StartsWith(key + "=", StringComparison.Ordinal))?[(key.Length + 1)..];
        string upper = Option("upperdir") ?? throw new InvalidOperationException("overlay without upperdir");
        string work = Option("workdir") ?? throw new InvalidOperationException("overlay without workdir");
        string[] lowers = (Option("lowerdir") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);
        // upperdir and workdir must be on one mount: their common parent (the snapshot's directory) is mapped.
        string snapshot = Path.GetDirectoryName(upper)!;
        if (Path.GetDirectoryName(work) != snapshot) throw new InvalidOperationException($"upperdir {upper} and workdir {work} are not siblings");

        TryRemoveStage(stage);
        Directory.CreateDirectory(stage);
        var targets = new List<string>();
        try
        {
            var lowerTrees = new List<(string, string)>();
            for (int i = 0; i < lowers.Length; i++)
            {
                string target = Path.Combine(stage, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Directory.CreateDirectory(target);
                lowerTrees.Add((lowers[i], target));
            }
            string upperTarget = Path.Combine(stage, "upper");
            Directory.CreateDirectory(upperTarget);
            IdmappedMounts.MountIdmapped(lowerTrees, uids, gids);
            targets.AddRange(lowerTrees.Select(t => t.Item2));
            IdmappedMounts.MountIdmapped([(snapshot, upperTarget)], upperUids, upperGids);
            targets.Add(upperTarget);
            var options = overlay.Options.Where(o => !o.StartsWith("lowerdir=", StringComparison.Ordinal)
                && !o.StartsWith("upperdir=", StringComparison.Ordinal) && !o.StartsWith("workdir=", StringComparison.Ordinal)).ToList();
            options.Add("workdir=" + Path.Combine(upperTarget, Path.GetFileName(work)));
            options.Add("upperdir=" + Path.Combine(upperTarget, Path.GetFileName(upper)));
            options.Add("lowerdir=" + string.Join(':', lowerTrees.Select(t => t.Item2)));
            MountHelper.MountAll([new Berth.Images.Snapshots.Mount("overlay", "overlay", options)], rootfs);
        }
        finally
        {
            // The overlay holds private clones of its layers: the staged mounts are not needed once it is made.
            foreach (string target in targets) MountHelper.Unmount(target, detach: true);
            TryRemoveStage(stage);
        }
    }

    private static void TryRemoveStage(string stage)
    {
        if (!Directory.Exists(stage)) return;
        foreach (string dir in Directory.EnumerateDirectories(stage))
        {
            while (MountPoints.IsMountPoint(dir)) MountHelper.Unmount(dir, detach: true);
            Directory.Delete(dir);
        }
        Directory.Delete(stage);
    }
}
