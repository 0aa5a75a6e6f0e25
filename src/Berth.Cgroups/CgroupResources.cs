namespace Berth.Cgroups;

/// <summary>
/// The resource limits Berth knows how to put on a cgroup, independent of the cgroup version
/// (runc's <c>configs.Resources</c>). Every field is nullable: <c>null</c> means "not set, leave
/// the kernel's value alone". The runtime maps the OCI <c>linux.resources</c> onto this type.
/// </summary>
public sealed class CgroupResources
{
    public MemoryResources? Memory { get; init; }
    public CpuResources? Cpu { get; init; }
    public PidsResources? Pids { get; init; }

    /// <summary>True when no limit at all is set.</summary>
    public bool IsEmpty => Memory is null && Cpu is null && Pids is null;

    /// <summary>
    /// Refuses values no kernel would accept, naming the field, before anything is written
    /// (runc <c>configs/validate</c>). Throws <see cref="CgroupException"/> with
    /// <see cref="CgroupErrorKind.InvalidArgument"/>.
    /// </summary>
    public void Validate()
    {
        if (Memory is { } m)
        {
            CheckMemoryValue("memory.limit", m.Limit);
            CheckMemoryValue("memory.reservation", m.Reservation);
            CheckMemoryValue("memory.swap", m.Swap);
            if (m.Swappiness is > 100)
            {
                throw Invalid($"memory.swappiness must be between 0 and 100, got {m.Swappiness}");
            }
            if (m.Swap is > 0 && m.Limit is > 0 && m.Swap < m.Limit)
            {
                throw Invalid($"memory.swap ({m.Swap}) is memory+swap and must be >= memory.limit ({m.Limit})");
            }
        }
        if (Cpu is { } c)
        {
            if (c.Quota is { } q && q < -1)
            {
                throw Invalid($"cpu.quota must be -1 (unlimited) or positive, got {q}");
            }
            if (c.Period is 0)
            {
                throw Invalid("cpu.period must be positive, got 0");
            }
        }
    }

    private static void CheckMemoryValue(string field, long? value)
    {
        if (value is { } v && v < -1)
        {
            throw Invalid($"{field} must be -1 (unlimited) or a byte count, got {v}");
        }
    }

    private static CgroupException Invalid(string message) => new(message, CgroupErrorKind.InvalidArgument);
}

/// <summary>Memory limits, in bytes. -1 means unlimited; 0 is treated as "not set" as runc does.</summary>
public sealed class MemoryResources
{
    /// <summary>Hard limit (v1 memory.limit_in_bytes, v2 memory.max).</summary>
    public long? Limit { get; init; }

    /// <summary>Soft limit (v1 memory.soft_limit_in_bytes, v2 memory.low).</summary>
    public long? Reservation { get; init; }

    /// <summary>OCI meaning: memory + swap in total (v1 memory.memsw.limit_in_bytes; v2 memory.swap.max = Swap - Limit).</summary>
    public long? Swap { get; init; }

    /// <summary>0..100 (v1 only: cgroup v2 has no per-group swappiness).</summary>
    public ulong? Swappiness { get; init; }

    /// <summary>v1 memory.oom_control (cgroup v2 has no equivalent).</summary>
    public bool? DisableOomKiller { get; init; }

    internal bool IsSet =>
        Limit is not null and not 0 || Reservation is not null and not 0 || Swap is not null and not 0 ||
        Swappiness is not null || DisableOomKiller is true;
}

public sealed class CpuResources
{
    /// <summary>Relative weight (v1 cpu.shares, 2..262144; v2 cpu.weight converted).</summary>
    public ulong? Shares { get; init; }

    /// <summary>Microseconds per period; -1 means unlimited.</summary>
    public long? Quota { get; init; }

    /// <summary>Microseconds; the kernel's default is 100000.</summary>
    public ulong? Period { get; init; }

    /// <summary>Cpu list, e.g. "0-3,7".</summary>
    public string? Cpus { get; init; }

    /// <summary>Memory node list, e.g. "0".</summary>
    public string? Mems { get; init; }

    internal bool IsCpuSet => Shares is not null || Quota is not null || Period is not null;
    internal bool IsCpusetSet => !string.IsNullOrEmpty(Cpus) || !string.IsNullOrEmpty(Mems);
}

public sealed class PidsResources
{
    /// <summary>Maximum number of tasks; 0 or negative means unlimited ("max"), as runc does.</summary>
    public long? Limit { get; init; }
}
