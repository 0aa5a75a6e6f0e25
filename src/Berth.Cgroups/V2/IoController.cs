using System.Globalization;

namespace Berth.Cgroups.V2;

/// <summary>
/// cgroup v2 io: weights in io.bfq.weight (BFQ, same 10..1000 scale as v1) or io.weight
/// (converted to 1..10000), and throttles in io.max, one "MAJ:MIN rbps=… wbps=… riops=… wiops=…"
/// line per device (runc fs2 <c>setIo</c>).
/// </summary>
internal sealed class IoController : ICgroupController, ICgroupStatsReader
{
    internal const string Weight = "io.weight";
    internal const string BfqWeight = "io.bfq.weight";
    internal const string Max = "io.max";

    public string Name => "io";

    public bool NeedsApply(CgroupResources resources) => resources.BlockIo is { } b && (b.HasWeight || b.HasThrottle);

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.BlockIo is not { } b)
        {
            return;
        }
        if (b.LeafWeight is not null and not 0 || b.WeightDevice?.Any(d => d.LeafWeight is not null and not 0) == true)
        {
            throw new CgroupException("blockIO.leafWeight requested but cgroup v2 has no leaf weights", CgroupErrorKind.Unavailable);
        }
        var bfq = CgroupFs.FileExists(path, BfqWeight);
        if (b.Weight is { } weight and not 0)
        {
            if (bfq)
            {
                CgroupFs.Write(path, BfqWeight, weight.ToString(CultureInfo.InvariantCulture));
            }
            else
            {
                CgroupFs.WriteRequired(path, Weight, CgroupConversions.BlkioWeightToIoWeight(weight).ToString(CultureInfo.InvariantCulture), "blockIO.weight");
            }
        }
        foreach (var d in b.WeightDevice ?? [])
        {
            if (d.Weight is { } w and not 0)
            {
                var value = bfq ? w : CgroupConversions.BlkioWeightToIoWeight(w);
                CgroupFs.WriteRequired(path, bfq ? BfqWeight : Weight, $"{d.Major}:{d.Minor} {value.ToString(CultureInfo.InvariantCulture)}",
                    $"blockIO.weightDevice {d.Major}:{d.Minor}");
            }
        }
        foreach (var line in IoMaxLines(b))
        {
            CgroupFs.WriteRequired(path, Max, line, "blockIO throttle");
        }
    }

    public void ReadStats(string path, CgroupStats stats)
    {
        if (CgroupFs.FileExists(path, "io.stat"))
        {
            var (bytes, ios) = StatsParsing.ParseIoStat(CgroupFs.Read(path, "io.stat"));
            stats.Blkio.IoServiceBytesRecursive = bytes;
            stats.Blkio.IoServicedRecursive = ios;
        }
    }

    /// <summary>The io.max lines for the throttles, one per device, keys in the kernel's order.</summary>
    internal static IEnumerable<string> IoMaxLines(BlockIoResources b)
    {
        var byDevice = new SortedDictionary<(long, long), SortedDictionary<int, string>>();
        void Add(IReadOnlyList<ThrottleDevice>? list, int order, string key)
        {
            foreach (var d in list ?? [])
            {
                if (!byDevice.TryGetValue((d.Major, d.Minor), out var keys))
                {
                    byDevice[(d.Major, d.Minor)] = keys = [];
                }
                keys[order] = $"{key}={CgroupConversions.IoMaxRate(d.Rate)}";
            }
        }
        Add(b.ThrottleReadBpsDevice, 0, "rbps");
        Add(b.ThrottleWriteBpsDevice, 1, "wbps");
        Add(b.ThrottleReadIopsDevice, 2, "riops");
        Add(b.ThrottleWriteIopsDevice, 3, "wiops");
        return byDevice.Select(kv => $"{kv.Key.Item1}:{kv.Key.Item2} {string.Join(' ', kv.Value.Values)}");
    }
}
