using System.Globalization;

namespace Berth.Cgroups.V1;

/// <summary>
/// cgroup v1 blkio: proportional weights (CFQ's blkio.weight or BFQ's blkio.bfq.weight,
/// whichever the kernel has, BFQ first as runc) and per-device throttles (blkio.throttle.*).
/// </summary>
internal sealed class BlkioController : ICgroupController, ICgroupStatsReader
{
    internal const string Weight = "blkio.weight";
    internal const string BfqWeight = "blkio.bfq.weight";
    internal const string WeightDevice = "blkio.weight_device";
    internal const string BfqWeightDevice = "blkio.bfq.weight_device";
    internal const string LeafWeight = "blkio.leaf_weight";
    internal const string LeafWeightDevice = "blkio.leaf_weight_device";
    internal const string ReadBps = "blkio.throttle.read_bps_device";
    internal const string WriteBps = "blkio.throttle.write_bps_device";
    internal const string ReadIops = "blkio.throttle.read_iops_device";
    internal const string WriteIops = "blkio.throttle.write_iops_device";

    public string Name => "blkio";

    public bool NeedsApply(CgroupResources resources) => resources.BlockIo is { } b && (b.HasWeight || b.HasThrottle);

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.BlockIo is not { } b)
        {
            return;
        }
        var bfq = CgroupFs.FileExists(path, BfqWeight);
        if (b.Weight is { } weight and not 0)
        {
            var file = bfq ? BfqWeight : Weight;
            CgroupFs.WriteRequired(path, file, Str(weight), "blockIO.weight (needs the CFQ or BFQ I/O scheduler's blkio.weight / blkio.bfq.weight)");
        }
        if (b.LeafWeight is { } leaf and not 0)
        {
            CgroupFs.WriteRequired(path, LeafWeight, Str(leaf), "blockIO.leafWeight (CFQ only)");
        }
        foreach (var d in b.WeightDevice ?? [])
        {
            if (d.Weight is { } w and not 0)
            {
                var file = bfq ? BfqWeightDevice : WeightDevice;
                CgroupFs.WriteRequired(path, file, $"{d.Major}:{d.Minor} {w}", $"blockIO.weightDevice {d.Major}:{d.Minor}");
            }
            if (d.LeafWeight is { } lw and not 0)
            {
                CgroupFs.WriteRequired(path, LeafWeightDevice, $"{d.Major}:{d.Minor} {lw}", $"blockIO.weightDevice {d.Major}:{d.Minor} leafWeight (CFQ only)");
            }
        }
        WriteThrottles(path, ReadBps, b.ThrottleReadBpsDevice, "blockIO.throttleReadBpsDevice");
        WriteThrottles(path, WriteBps, b.ThrottleWriteBpsDevice, "blockIO.throttleWriteBpsDevice");
        WriteThrottles(path, ReadIops, b.ThrottleReadIopsDevice, "blockIO.throttleReadIopsDevice");
        WriteThrottles(path, WriteIops, b.ThrottleWriteIopsDevice, "blockIO.throttleWriteIopsDevice");
    }

    /// <summary>One write per device ("MAJ:MIN rate"; 0 removes the limit): the kernel parses one rule per write.</summary>
    private static void WriteThrottles(string path, string file, IReadOnlyList<ThrottleDevice>? devices, string field)
    {
        foreach (var d in devices ?? [])
        {
            CgroupFs.WriteRequired(path, file, $"{d.Major}:{d.Minor} {d.Rate.ToString(CultureInfo.InvariantCulture)}", field);
        }
    }

    /// <summary>
    /// The scheduler's recursive counters when it has them (CFQ, then BFQ), else the throttle
    /// layer's, which count every I/O (runc <c>GetStats</c>).
    /// </summary>
    public void ReadStats(string path, CgroupStats stats)
    {
        foreach (var prefix in new[] { "blkio.", "blkio.bfq.", "blkio.throttle." })
        {
            if (CgroupFs.FileExists(path, prefix + "io_service_bytes_recursive"))
            {
                stats.Blkio.IoServiceBytesRecursive = StatsParsing.ParseBlkio(CgroupFs.Read(path, prefix + "io_service_bytes_recursive"));
                stats.Blkio.IoServicedRecursive = StatsParsing.ParseBlkio(CgroupFs.Read(path, prefix + "io_serviced_recursive"));
                return;
            }
        }
    }

    private static string Str(ushort value) => value.ToString(CultureInfo.InvariantCulture);
}
