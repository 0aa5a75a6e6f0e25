namespace Berth.Cgroups.V2;

/// <summary>cgroup v2 memory: memory.max, memory.swap.max (swap alone), memory.low.</summary>
internal sealed class MemoryController : ICgroupController, ICgroupStatsReader
{
    internal const string Max = "memory.max";
    internal const string SwapMax = "memory.swap.max";
    internal const string Low = "memory.low";
    internal const string Current = "memory.current";

    public string Name => "memory";

    public bool NeedsApply(CgroupResources resources) => resources.Memory is { IsSet: true };

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Memory is not { } m)
        {
            return;
        }
        // cgroup v2 has neither a per-group swappiness nor a way to disable the OOM killer:
        // refuse rather than drop the request silently.
        if (m.Swappiness is not null)
        {
            throw new CgroupException("memory swappiness requested but cgroup v2 has no per-group swappiness", CgroupErrorKind.Unavailable);
        }
        if (m.DisableOomKiller is true)
        {
            throw new CgroupException("disabling the OOM killer requested but cgroup v2 does not support it", CgroupErrorKind.Unavailable);
        }
        if (m.Kernel is not null and not 0 || m.KernelTcp is not null and not 0)
        {
            throw new CgroupException($"memory.{(m.Kernel is not null and not 0 ? "kernel" : "kernelTCP")} requested but cgroup v2 has no separate kernel memory limit (kernel memory counts in memory.max)",
                CgroupErrorKind.Unavailable);
        }
        if (m.UseHierarchy is false)
        {
            throw new CgroupException("memory.useHierarchy false requested but cgroup v2 memory accounting is always hierarchical", CgroupErrorKind.Unavailable);
        }
        if (m.CheckBeforeUpdate is true && m.Limit is { } newLimit and > 0 && CgroupFs.FileExists(path, Current))
        {
            var usage = CgroupFs.ReadUInt64(path, Current);
            if (usage > (ulong)newLimit)
            {
                throw new CgroupException($"memory.limit {newLimit} is below the group's current usage {usage} (memory.checkBeforeUpdate)",
                    CgroupErrorKind.InvalidArgument, path: Path.Combine(path, Max));
            }
        }

        var swap = CgroupConversions.SwapToV2(m.Swap, m.Limit);
        if (swap is { } s)
        {
            if (!CgroupFs.FileExists(path, SwapMax))
            {
                // Unlimited swap implied by unlimited memory is not worth failing for.
                if (m.Swap is not null and not 0)
                {
                    throw new CgroupException(
                        $"memory swap limit requested but swap accounting is not enabled ({Path.Combine(path, SwapMax)} does not exist)",
                        CgroupErrorKind.Unavailable, path: Path.Combine(path, SwapMax));
                }
            }
            else
            {
                // Written before memory.max, as runc does: the two are independent in v2.
                CgroupFs.Write(path, SwapMax, CgroupConversions.MemoryValue(s));
            }
        }
        if (m.Limit is { } limit and not 0)
        {
            CgroupFs.Write(path, Max, CgroupConversions.MemoryValue(limit));
        }
        if (m.Reservation is { } low and not 0)
        {
            CgroupFs.Write(path, Low, CgroupConversions.MemoryValue(low));
        }
    }

    /// <summary>runc fs2 <c>statMemory</c>: swap is reported as memory+swap, like v1's memsw.</summary>
    public void ReadStats(string path, CgroupStats stats)
    {
        var raw = CgroupFs.ReadFlatKeyed(path, "memory.stat");
        stats.Memory.Raw = raw;
        stats.Memory.Cache = raw.GetValueOrDefault("file");
        var events = CgroupFs.FileExists(path, "memory.events") ? CgroupFs.ReadFlatKeyed(path, "memory.events") : [];
        var usage = CgroupFs.ReadUInt64OrZero(path, Current);
        var limit = CgroupFs.ReadUInt64OrZero(path, Max);
        stats.Memory.Usage = new MemoryEntry
        {
            Usage = usage,
            Limit = limit,
            Max = CgroupFs.ReadUInt64OrZero(path, "memory.peak"),
            Failcnt = events.GetValueOrDefault("max"),
        };
        if (CgroupFs.FileExists(path, SwapMax))
        {
            var swapLimit = CgroupFs.ReadUInt64(path, SwapMax);
            stats.Memory.Swap = new MemoryEntry
            {
                Usage = usage + CgroupFs.ReadUInt64OrZero(path, "memory.swap.current"),
                Limit = swapLimit == ulong.MaxValue || limit == ulong.MaxValue ? ulong.MaxValue : swapLimit + limit,
                Max = CgroupFs.ReadUInt64OrZero(path, "memory.swap.peak"),
            };
        }
    }

    /// <summary>The "oom_kill" count of memory.events.</summary>
    internal static ulong OomKillCount(string path) =>
        CgroupFs.ReadFlatKeyed(path, "memory.events").GetValueOrDefault("oom_kill");
}
