namespace Berth.Cgroups.V2;

/// <summary>cgroup v2 memory: memory.max, memory.swap.max (swap alone), memory.low.</summary>
internal sealed class MemoryController : ICgroupController
{
    internal const string Max = "memory.max";
    internal const string SwapMax = "memory.swap.max";
    internal const string Low = "memory.low";

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
}
