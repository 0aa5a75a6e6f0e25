namespace Berth.Cgroups;

/// <summary>
/// What block I/O control this host's cgroups offer, as dockerd's sysinfo reports it: proportional
/// weights need the CFQ or BFQ scheduler's files on v1 (blkio.weight, blkio.bfq.weight; with
/// mq-deadline, the usual scheduler of virtual disks, there are none), throttles need
/// CONFIG_BLK_DEV_THROTTLING (blkio.throttle.*). On cgroup v2 the io controller offers both
/// (io.weight or io.bfq.weight, io.max) once it is available at the root.
/// </summary>
public sealed record BlockIoSupport(bool Weight, bool Throttle)
{
    public static BlockIoSupport Probe(CgroupLayout layout)
    {
        if (layout.GetV1Hierarchy("blkio") is { } blkio)
        {
            bool File(string name) => System.IO.File.Exists(Path.Combine(blkio.MountPoint, name));
            return new BlockIoSupport(
                File(V1.BlkioController.Weight) || File(V1.BlkioController.BfqWeight),
                File(V1.BlkioController.ReadBps) && File(V1.BlkioController.WriteBps) && File(V1.BlkioController.ReadIops) && File(V1.BlkioController.WriteIops));
        }
        bool io = layout.Mode != CgroupMode.Legacy && layout.UnifiedControllers.Contains("io");
        return new BlockIoSupport(io, io);
    }
}
