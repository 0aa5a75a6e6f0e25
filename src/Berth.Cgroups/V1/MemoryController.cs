using System.Globalization;

namespace Berth.Cgroups.V1;

/// <summary>cgroup v1 memory: limit, memory+swap, soft limit, swappiness, OOM killer.</summary>
internal sealed class MemoryController : ICgroupController, ICgroupStatsReader
{
    internal const string Limit = "memory.limit_in_bytes";
    internal const string SwapLimit = "memory.memsw.limit_in_bytes";
    internal const string SoftLimit = "memory.soft_limit_in_bytes";
    internal const string Swappiness = "memory.swappiness";
    internal const string OomControl = "memory.oom_control";
    internal const string KernelLimit = "memory.kmem.limit_in_bytes";
    internal const string KernelTcpLimit = "memory.kmem.tcp.limit_in_bytes";
    internal const string UseHierarchy = "memory.use_hierarchy";
    internal const string Usage = "memory.usage_in_bytes";

    public string Name => "memory";

    public bool NeedsApply(CgroupResources resources) => resources.Memory is { IsSet: true };

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Memory is not { } m)
        {
            return;
        }
        if (m.CheckBeforeUpdate is true && m.Limit is { } newLimit and > 0)
        {
            var usage = CgroupFs.ReadUInt64(path, Usage);
            if (usage > (ulong)newLimit)
            {
                throw new CgroupException($"memory.limit {newLimit} is below the group's current usage {usage} (memory.checkBeforeUpdate)",
                    CgroupErrorKind.InvalidArgument, path: Path.Combine(path, Limit));
            }
        }
        if (m.UseHierarchy is { } hierarchy)
        {
            // Must precede the limits: the kernel refuses to change it once the group has children or tasks.
            CgroupFs.WriteRequired(path, UseHierarchy, hierarchy ? "1" : "0", "memory.useHierarchy");
            if (CgroupFs.ReadUInt64(path, UseHierarchy) != (hierarchy ? 1UL : 0UL))
            {
                throw new CgroupException($"memory.useHierarchy {hierarchy} requested but this kernel keeps {UseHierarchy} fixed",
                    CgroupErrorKind.Unavailable, path: Path.Combine(path, UseHierarchy));
            }
        }
        if (m.Kernel is { } kernel and not 0)
        {
            SetKernelLimit(path, KernelLimit, kernel, "memory.kernel");
        }
        if (m.KernelTcp is { } kernelTcp and not 0)
        {
            SetKernelLimit(path, KernelTcpLimit, kernelTcp, "memory.kernelTCP");
        }
        SetMemoryAndSwap(path, m.Limit ?? 0, m.Swap ?? 0);
        if (m.Reservation is { } reservation and not 0)
        {
            CgroupFs.Write(path, SoftLimit, Str(reservation));
        }
        if (m.Swappiness is { } swappiness)
        {
            CgroupFs.Write(path, Swappiness, swappiness.ToString(CultureInfo.InvariantCulture));
        }
        if (m.DisableOomKiller is true)
        {
            CgroupFs.Write(path, OomControl, "1");
        }
    }

    /// <summary>
    /// Linux 5.16 deprecated memory.kmem.limit_in_bytes and 6.x keeps the file but ignores
    /// writes (6.2 made them fail with EOPNOTSUPP); either way the limit is not applied, so a
    /// write that does not stick is reported, not dropped.
    /// </summary>
    private static void SetKernelLimit(string path, string file, long limit, string field)
    {
        CgroupFs.RequireFile(path, file, field);
        try
        {
            CgroupFs.Write(path, file, Str(limit));
        }
        catch (CgroupException e) when (e.Errno is 95 or 524 or CgroupFs.EINVAL)
        {
            throw new CgroupException($"{field} requested but this kernel no longer supports {file}: {e.Message}",
                CgroupErrorKind.Unavailable, e.Errno, e.Path, e);
        }
        var actual = CgroupFs.ReadUInt64(path, file);
        var expected = limit == -1 ? actual : (ulong)limit;
        // The kernel rounds limits down to whole pages.
        if (limit != -1 && (actual > expected || expected - actual >= 4096 * 16))
        {
            throw new CgroupException($"{field} requested but this kernel ignores {file} (wrote {limit}, it still reads {actual}; kernel memory limits are gone since Linux 5.16)",
                CgroupErrorKind.Unavailable, path: Path.Combine(path, file));
        }
    }

    /// <summary>
    /// The kernel requires memory.limit_in_bytes &lt;= memory.memsw.limit_in_bytes at every
    /// moment, so the write order depends on whether the limits go up or down (runc
    /// <c>setMemoryAndSwap</c>). 0 means "not set".
    /// </summary>
    private static void SetMemoryAndSwap(string path, long limit, long swap)
    {
        var hasSwapAccounting = CgroupFs.FileExists(path, SwapLimit);
        // Unlimited memory and no explicit swap: make swap unlimited too, where it can be set.
        if (limit == -1 && swap == 0 && hasSwapAccounting)
        {
            swap = -1;
        }
        if (swap != 0 && !hasSwapAccounting)
        {
            throw new CgroupException(
                $"memory swap limit requested but swap accounting is not enabled ({Path.Combine(path, SwapLimit)} does not exist; boot with swapaccount=1)",
                CgroupErrorKind.Unavailable, path: Path.Combine(path, SwapLimit));
        }
        if (limit != 0 && swap != 0)
        {
            var current = CgroupFs.ReadUInt64(path, Limit);
            // Raising: memsw first so the new limit fits under it; lowering: limit first.
            if (swap == -1 || current < (ulong)swap)
            {
                CgroupFs.Write(path, SwapLimit, Str(swap));
                SetLimit(path, limit);
                return;
            }
        }
        SetLimit(path, limit);
        if (swap != 0)
        {
            CgroupFs.Write(path, SwapLimit, Str(swap));
        }
    }

    private static void SetLimit(string path, long limit)
    {
        if (limit == 0)
        {
            return;
        }
        try
        {
            CgroupFs.Write(path, Limit, Str(limit));
        }
        catch (CgroupException e) when (e.Errno == CgroupFs.EBUSY)
        {
            // EBUSY here means the group already uses more than the new limit: say how much.
            var usage = CgroupFs.TryRead(Path.Combine(path, "memory.usage_in_bytes"))?.Trim() ?? "?";
            var peak = CgroupFs.TryRead(Path.Combine(path, "memory.max_usage_in_bytes"))?.Trim() ?? "?";
            throw new CgroupException($"{e.Message} (memory limit {limit} is below current usage {usage}, peak {peak})",
                CgroupErrorKind.Io, e.Errno, e.Path, e);
        }
    }

    public void ReadStats(string path, CgroupStats stats)
    {
        var raw = CgroupFs.ReadFlatKeyed(path, "memory.stat");
        stats.Memory.Raw = raw;
        stats.Memory.Cache = raw.GetValueOrDefault("cache");
        stats.Memory.Usage = ReadEntry(path, "memory.");
        if (CgroupFs.FileExists(path, SwapLimit))
        {
            stats.Memory.Swap = ReadEntry(path, "memory.memsw.");
        }
        if (CgroupFs.FileExists(path, KernelLimit))
        {
            stats.Memory.Kernel = ReadEntry(path, "memory.kmem.");
        }
        if (CgroupFs.FileExists(path, KernelTcpLimit))
        {
            stats.Memory.KernelTcp = ReadEntry(path, "memory.kmem.tcp.");
        }
    }

    private static MemoryEntry ReadEntry(string path, string prefix) => new()
    {
        Usage = CgroupFs.ReadUInt64OrZero(path, prefix + "usage_in_bytes"),
        Max = CgroupFs.ReadUInt64OrZero(path, prefix + "max_usage_in_bytes"),
        Failcnt = CgroupFs.ReadUInt64OrZero(path, prefix + "failcnt"),
        Limit = CgroupFs.ReadUInt64OrZero(path, prefix + "limit_in_bytes"),
    };

    /// <summary>The "oom_kill" count of memory.oom_control (Linux ≥ 4.13).</summary>
    internal static ulong OomKillCount(string path) =>
        CgroupFs.ReadFlatKeyed(path, OomControl).GetValueOrDefault("oom_kill");

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);
}
