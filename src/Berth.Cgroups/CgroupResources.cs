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

    /// <summary>OCI <c>blockIO</c>: v1 blkio, v2 io.</summary>
    public BlockIoResources? BlockIo { get; init; }

    /// <summary>OCI <c>hugepageLimits</c>: v1 hugetlb.&lt;size&gt;.limit_in_bytes, v2 hugetlb.&lt;size&gt;.max.</summary>
    public IReadOnlyList<HugepageLimit>? HugepageLimits { get; init; }

    /// <summary>
    /// OCI <c>devices</c>, in order; the last matching rule wins and everything not allowed is
    /// denied. null leaves the group's device access alone; an empty list denies every device.
    /// </summary>
    public IReadOnlyList<DeviceRule>? Devices { get; init; }

    /// <summary>OCI <c>network</c>: v1 net_cls and net_prio only.</summary>
    public NetworkResources? Network { get; init; }

    /// <summary>OCI <c>rdma</c>: device name (e.g. "mlx5_1") → limits, written to rdma.max.</summary>
    public IReadOnlyDictionary<string, RdmaLimit>? Rdma { get; init; }

    /// <summary>OCI <c>unified</c>: cgroup v2 file name → content, written as given.</summary>
    public IReadOnlyDictionary<string, string>? Unified { get; init; }

    /// <summary>True when no limit at all is set.</summary>
    public bool IsEmpty => Memory is null && Cpu is null && Pids is null && BlockIo is null && HugepageLimits is null
        && Devices is null && Network is null && Rdma is null && Unified is null;

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
            if (c.Idle is { } idle && idle is not (0 or 1))
            {
                throw Invalid($"cpu.idle must be 0 or 1, got {idle}");
            }
        }
        if (BlockIo is { } b)
        {
            CheckWeight("blockIO.weight", b.Weight);
            CheckWeight("blockIO.leafWeight", b.LeafWeight);
            foreach (var d in b.WeightDevice ?? [])
            {
                CheckDevice("blockIO.weightDevice", d.Major, d.Minor);
                CheckWeight($"blockIO.weightDevice[{d.Major}:{d.Minor}].weight", d.Weight);
                CheckWeight($"blockIO.weightDevice[{d.Major}:{d.Minor}].leafWeight", d.LeafWeight);
            }
            foreach (var (name, list) in b.Throttles)
            {
                foreach (var d in list ?? [])
                {
                    CheckDevice("blockIO." + name, d.Major, d.Minor);
                }
            }
        }
        foreach (var h in HugepageLimits ?? [])
        {
            if (!HugepageLimit.IsValidPageSize(h.PageSize))
            {
                throw Invalid($"hugepageLimits: invalid pageSize \"{h.PageSize}\" (expected a size like 2MB or 1GB)");
            }
        }
        for (var i = 0; i < (Devices?.Count ?? 0); i++)
        {
            Devices![i].Validate($"devices[{i}]");
        }
        foreach (var (name, _) in Rdma ?? new Dictionary<string, RdmaLimit>())
        {
            if (name.Length == 0 || name.Any(ch => char.IsWhiteSpace(ch) || ch == '/'))
            {
                throw Invalid($"rdma: invalid device name \"{name}\"");
            }
        }
        foreach (var (key, value) in Unified ?? new Dictionary<string, string>())
        {
            if (key.Length == 0 || key.Contains('/') || key.Contains("..", StringComparison.Ordinal) || key.Contains('\0'))
            {
                throw Invalid($"unified: key \"{key}\" must be a plain cgroup file name (no \"/\" or \"..\")");
            }
            if (!key.Contains('.'))
            {
                throw Invalid($"unified: key \"{key}\" is not a controller file (expected <controller>.<file>)");
            }
            if (value.Contains('\0'))
            {
                throw Invalid($"unified: value of \"{key}\" contains a NUL byte");
            }
        }
    }

    private static void CheckWeight(string field, ushort? weight)
    {
        if (weight is { } w && w != 0 && w is < 10 or > 1000)
        {
            throw Invalid($"{field} must be between 10 and 1000, got {w}");
        }
    }

    private static void CheckDevice(string field, long major, long minor)
    {
        if (major < 0 || minor < 0)
        {
            throw Invalid($"{field}: device {major}:{minor} needs a major and a minor number");
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

    /// <summary>Kernel memory limit (v1 memory.kmem.limit_in_bytes; deprecated, ignored by Linux ≥ 5.16 and absent from v2).</summary>
    public long? Kernel { get; init; }

    /// <summary>Kernel TCP buffer limit (v1 memory.kmem.tcp.limit_in_bytes; v2 has none).</summary>
    public long? KernelTcp { get; init; }

    /// <summary>v1 memory.use_hierarchy; v2 is always hierarchical.</summary>
    public bool? UseHierarchy { get; init; }

    /// <summary>Refuse a new limit below the group's current usage instead of reclaiming or OOM-killing.</summary>
    public bool? CheckBeforeUpdate { get; init; }

    internal bool IsSet =>
        Limit is not null and not 0 || Reservation is not null and not 0 || Swap is not null and not 0 ||
        Swappiness is not null || DisableOomKiller is true || Kernel is not null and not 0 ||
        KernelTcp is not null and not 0 || UseHierarchy is not null;
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

    /// <summary>Real-time runtime in microseconds per <see cref="RealtimePeriod"/> (v1 cpu.rt_runtime_us; v2 has none).</summary>
    public long? RealtimeRuntime { get; init; }

    /// <summary>Real-time period in microseconds (v1 cpu.rt_period_us; v2 has none).</summary>
    public ulong? RealtimePeriod { get; init; }

    /// <summary>1 makes the group SCHED_IDLE (cpu.idle).</summary>
    public long? Idle { get; init; }

    /// <summary>CFS burst in microseconds (v1 cpu.cfs_burst_us, v2 cpu.max.burst).</summary>
    public ulong? Burst { get; init; }

    internal bool IsCpuSet => Shares is not null || Quota is not null || Period is not null || RealtimeRuntime is not null
        || RealtimePeriod is not null || Idle is not null || Burst is not null;
    internal bool IsCpusetSet => !string.IsNullOrEmpty(Cpus) || !string.IsNullOrEmpty(Mems);
}

public sealed class PidsResources
{
    /// <summary>Maximum number of tasks; 0 or negative means unlimited ("max"), as runc does.</summary>
    public long? Limit { get; init; }
}

/// <summary>OCI <c>blockIO</c>. Weights are 10..1000; 0 means "not set".</summary>
public sealed class BlockIoResources
{
    public ushort? Weight { get; init; }
    public ushort? LeafWeight { get; init; }
    public IReadOnlyList<WeightDevice>? WeightDevice { get; init; }
    public IReadOnlyList<ThrottleDevice>? ThrottleReadBpsDevice { get; init; }
    public IReadOnlyList<ThrottleDevice>? ThrottleWriteBpsDevice { get; init; }
    public IReadOnlyList<ThrottleDevice>? ThrottleReadIopsDevice { get; init; }
    public IReadOnlyList<ThrottleDevice>? ThrottleWriteIopsDevice { get; init; }

    internal IEnumerable<(string Name, IReadOnlyList<ThrottleDevice>? List)> Throttles =>
    [
        ("throttleReadBpsDevice", ThrottleReadBpsDevice), ("throttleWriteBpsDevice", ThrottleWriteBpsDevice),
        ("throttleReadIopsDevice", ThrottleReadIopsDevice), ("throttleWriteIopsDevice", ThrottleWriteIopsDevice),
    ];

    internal bool HasWeight => Weight is not null and not 0 || LeafWeight is not null and not 0 || WeightDevice is { Count: > 0 };

    internal bool HasThrottle => Throttles.Any(t => t.List is { Count: > 0 });
}

/// <summary>A per-device weight (blkio.weight_device / io.weight "MAJ:MIN weight").</summary>
public sealed record WeightDevice(long Major, long Minor, ushort? Weight, ushort? LeafWeight = null);

/// <summary>A per-device rate: bytes or operations per second; 0 removes the limit.</summary>
public sealed record ThrottleDevice(long Major, long Minor, ulong Rate);

/// <summary>A hugetlb limit: <see cref="PageSize"/> as the kernel names it ("2MB", "1GB"), limit in bytes.</summary>
public sealed record HugepageLimit(string PageSize, ulong Limit)
{
    internal static bool IsValidPageSize(string size) =>
        size.Length >= 3 && (size.EndsWith("KB", StringComparison.Ordinal) || size.EndsWith("MB", StringComparison.Ordinal) || size.EndsWith("GB", StringComparison.Ordinal))
        && size[..^2].All(char.IsAsciiDigit) && size[0] != '0';
}

/// <summary>
/// One OCI device rule. <see cref="Type"/> 'a' (all, the default), 'c' or 'b'; a null
/// <see cref="Major"/>/<see cref="Minor"/> (or -1) is a wildcard; <see cref="Access"/> is some
/// of "rwm" (default "rwm").
/// </summary>
public sealed record DeviceRule(bool Allow, char Type = 'a', long? Major = null, long? Minor = null, string? Access = "rwm")
{
    internal string EffectiveAccess => string.IsNullOrEmpty(Access) ? "rwm" : Access;

    internal bool HasMajor => Major is >= 0;

    internal bool HasMinor => Minor is >= 0;

    /// <summary>The v1 devices.allow/deny line: "c 1:3 rwm", wildcards as "*".</summary>
    public string ToV1Rule()
    {
        var major = HasMajor ? Major!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) : "*";
        var minor = HasMinor ? Minor!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) : "*";
        return $"{Type} {major}:{minor} {EffectiveAccess}";
    }

    internal void Validate(string field)
    {
        if (Type is not ('a' or 'c' or 'b'))
        {
            throw new CgroupException($"{field}: type must be a, c or b, got '{Type}'", CgroupErrorKind.InvalidArgument);
        }
        var access = EffectiveAccess;
        if (access.Length > 3 || access.Any(ch => ch is not ('r' or 'w' or 'm')) || access.Distinct().Count() != access.Length)
        {
            throw new CgroupException($"{field}: access must be some of \"rwm\", got \"{Access}\"", CgroupErrorKind.InvalidArgument);
        }
        if (Major is > int.MaxValue or < -1 || Minor is > int.MaxValue or < -1)
        {
            throw new CgroupException($"{field}: device number {Major}:{Minor} out of range", CgroupErrorKind.InvalidArgument);
        }
    }
}

/// <summary>OCI <c>network</c>: net_cls class id and net_prio interface priorities.</summary>
public sealed class NetworkResources
{
    public uint? ClassId { get; init; }
    public IReadOnlyList<InterfacePriority>? Priorities { get; init; }
}

public sealed record InterfacePriority(string Name, uint Priority);

/// <summary>rdma.max for one device; null leaves that resource unlimited ("max").</summary>
public sealed record RdmaLimit(uint? HcaHandles, uint? HcaObjects);
