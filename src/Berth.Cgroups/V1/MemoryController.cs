using System.Globalization;

namespace Berth.Cgroups.V1;

/// <summary>cgroup v1 memory: limit, memory+swap, soft limit, swappiness, OOM killer.</summary>
internal sealed class MemoryController : ICgroupController
{
    internal const string Limit = "memory.limit_in_bytes";
    internal const string SwapLimit = "memory.memsw.limit_in_bytes";
    internal const string SoftLimit = "memory.soft_limit_in_bytes";
    internal const string Swappiness = "memory.swappiness";
    internal const string OomControl = "memory.oom_control";

    public string Name => "memory";

    public bool NeedsApply(CgroupResources resources) => resources.Memory is { IsSet: true };

    public void Apply(string path, CgroupResources resources)
    {
        if (resources.Memory is not { } m)
        {
            return;
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

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);
}
