using Berth.Cgroups;
using Berth.Oci;

namespace Berth.Runtime.Container;

/// <summary>
/// OCI linux.resources → the cgroup library's resources (runc's specconv). As runc, a 0
/// weight or cpu share means "not set": Docker sends blockIO.weight 0 and cpu.shares 0.
/// </summary>
public static class CgroupResourcesMapper
{
    /// <summary>
    /// runc appends these to every device rule list (specconv's AllowedDevices): mknod of any
    /// node, and the nodes every container's /dev has. `runc spec` configs deny all devices
    /// and rely on them.
    /// </summary>
    public static readonly IReadOnlyList<DeviceRule> AllowedDevices =
    [
        new(true, 'c', null, null, "m"), new(true, 'b', null, null, "m"),
        new(true, 'c', 1, 3, "rwm"), new(true, 'c', 1, 8, "rwm"), new(true, 'c', 1, 7, "rwm"), new(true, 'c', 5, 0, "rwm"),
        new(true, 'c', 1, 5, "rwm"), new(true, 'c', 1, 9, "rwm"), new(true, 'c', 136, null, "rwm"), new(true, 'c', 5, 2, "rwm"),
        new(true, 'c', 10, 200, "rwm"),
    ];

    public static CgroupResources Map(LinuxResources? r)
    {
        if (r is null) return new CgroupResources();
        return new CgroupResources
        {
            Memory = r.Memory is { } m ? new MemoryResources
            {
                Limit = m.Limit, Reservation = m.Reservation, Swap = m.Swap, Swappiness = m.Swappiness, DisableOomKiller = m.DisableOomKiller,
                Kernel = m.Kernel, KernelTcp = m.KernelTcp, UseHierarchy = m.UseHierarchy, CheckBeforeUpdate = m.CheckBeforeUpdate,
            } : null,
            Cpu = r.Cpu is { } c ? new CpuResources
            {
                Shares = c.Shares is 0 ? null : c.Shares, Quota = c.Quota, Period = c.Period, Cpus = NullIfEmpty(c.Cpus), Mems = NullIfEmpty(c.Mems),
                RealtimeRuntime = c.RealtimeRuntime, RealtimePeriod = c.RealtimePeriod, Idle = c.Idle, Burst = c.Burst,
            } : null,
            Pids = r.Pids is { } p ? new PidsResources { Limit = p.Limit } : null,
            BlockIo = MapBlockIo(r.BlockIo),
            HugepageLimits = r.HugepageLimits?.Select(h => new HugepageLimit(h.PageSize, h.Limit)).ToList(),
            Devices = r.Devices is null ? null
                : r.Devices.Select(d => new DeviceRule(d.Allow, string.IsNullOrEmpty(d.Type) ? 'a' : d.Type[0], d.Major, d.Minor, d.Access))
                    .Concat(AllowedDevices).ToList(),
            Network = r.Network is { } n ? new NetworkResources
            {
                ClassId = n.ClassId, Priorities = n.Priorities?.Select(x => new InterfacePriority(x.Name, x.Priority)).ToList(),
            } : null,
            Rdma = r.Rdma?.ToDictionary(kv => kv.Key, kv => new RdmaLimit(kv.Value.HcaHandles, kv.Value.HcaObjects)),
            Unified = r.Unified,
        };
    }

    static BlockIoResources? MapBlockIo(LinuxBlockIo? io)
    {
        if (io is null) return null;
        var mapped = new BlockIoResources
        {
            Weight = io.Weight is 0 ? null : io.Weight,
            LeafWeight = io.LeafWeight is 0 ? null : io.LeafWeight,
            WeightDevice = NullIfEmpty(io.WeightDevice?.Select(d => new WeightDevice(d.Major, d.Minor, d.Weight, d.LeafWeight)).ToList()),
            ThrottleReadBpsDevice = Throttles(io.ThrottleReadBpsDevice),
            ThrottleWriteBpsDevice = Throttles(io.ThrottleWriteBpsDevice),
            ThrottleReadIopsDevice = Throttles(io.ThrottleReadIopsDevice),
            ThrottleWriteIopsDevice = Throttles(io.ThrottleWriteIopsDevice),
        };
        return mapped is { Weight: null, LeafWeight: null, WeightDevice: null, ThrottleReadBpsDevice: null, ThrottleWriteBpsDevice: null,
            ThrottleReadIopsDevice: null, ThrottleWriteIopsDevice: null } ? null : mapped;
    }

    static List<ThrottleDevice>? Throttles(List<LinuxThrottleDevice>? devices) =>
        NullIfEmpty(devices?.Select(d => new ThrottleDevice(d.Major, d.Minor, d.Rate)).ToList());

    static List<T>? NullIfEmpty<T>(List<T>? list) => list is { Count: > 0 } ? list : null;

    static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
