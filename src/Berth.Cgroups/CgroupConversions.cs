namespace Berth.Cgroups;

/// <summary>Value conversions between the v1-shaped resources and cgroup v2 files, as runc does them.</summary>
public static class CgroupConversions
{
    public const ulong DefaultCpuPeriod = 100_000;

    /// <summary>
    /// cpu.shares [2, 262144] → cpu.weight [1, 10000]: <c>1 + ((shares - 2) * 9999) / 262142</c>
    /// (runc <c>ConvertCPUSharesToCgroupV2Value</c>); out-of-range shares are clamped first.
    /// </summary>
    public static ulong SharesToWeight(ulong shares)
    {
        var clamped = Math.Clamp(shares, 2UL, 262_144UL);
        return 1 + ((clamped - 2) * 9999) / 262_142;
    }

    /// <summary>cpu.max: "quota period", "max period" when quota is unset or -1.</summary>
    public static string CpuMax(long? quota, ulong? period)
    {
        var q = quota is > 0 ? quota.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) : "max";
        return $"{q} {period ?? DefaultCpuPeriod}";
    }

    /// <summary>A byte limit for memory.max/memory.low: -1 → "max".</summary>
    public static string MemoryValue(long value) => value == -1 ? "max" : value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// memory.swap.max from the OCI memory+swap total (runc <c>ConvertMemorySwapToCgroupV2Value</c>):
    /// null when nothing is to be written, -1 for unlimited, else swap − limit.
    /// </summary>
    public static long? SwapToV2(long? swap, long? limit)
    {
        var s = swap ?? 0;
        var m = limit ?? 0;
        // Unlimited memory and no explicit swap means unlimited swap too, as with cgroup v1.
        if (m == -1 && s == 0)
        {
            return -1;
        }
        if (s == 0)
        {
            return null;
        }
        if (s == -1)
        {
            return -1;
        }
        if (m is 0 or -1)
        {
            throw new CgroupException($"memory.swap ({s}) needs a memory limit: swap is memory+swap", CgroupErrorKind.InvalidArgument);
        }
        if (s < m)
        {
            throw new CgroupException($"memory.swap ({s}) is memory+swap and must be >= memory.limit ({m})", CgroupErrorKind.InvalidArgument);
        }
        return s - m;
    }

    /// <summary>pids.max: the limit, or "max" for 0 and below.</summary>
    public static string PidsMax(long limit) => limit > 0 ? limit.ToString(System.Globalization.CultureInfo.InvariantCulture) : "max";

    /// <summary>rdma.max line for one device: "mlx5_1 hca_handle=2 hca_object=max".</summary>
    public static string RdmaMax(string device, RdmaLimit limit) =>
        $"{device} hca_handle={(limit.HcaHandles is { } h ? h.ToString(System.Globalization.CultureInfo.InvariantCulture) : "max")} "
        + $"hca_object={(limit.HcaObjects is { } o ? o.ToString(System.Globalization.CultureInfo.InvariantCulture) : "max")}";

    /// <summary>cgroup v2 io.weight is 1..10000; blkio weights are 10..1000 (runc <c>ConvertBlkIOToIOWeightValue</c>).</summary>
    public static ulong BlkioWeightToIoWeight(ulong weight) => weight == 0 ? 0 : 1 + (weight - 10) * 9999 / 990;

    /// <summary>A throttle rate for io.max: 0 removes the limit ("max").</summary>
    public static string IoMaxRate(ulong rate) => rate == 0 ? "max" : rate.ToString(System.Globalization.CultureInfo.InvariantCulture);

    internal static void WriteRdma(string path, CgroupResources resources)
    {
        foreach (var (device, limit) in (resources.Rdma ?? new Dictionary<string, RdmaLimit>()).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            CgroupFs.WriteRequired(path, "rdma.max", RdmaMax(device, limit), $"rdma limit for {device}");
        }
    }
}
