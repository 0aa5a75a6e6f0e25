using System.Text.Json;
using Berth.Oci;

namespace Berth.Runtime.Container;

public sealed partial class ContainerRuntime
{
    /// <summary>
    /// runc update: merges <paramref name="changes"/> into the container's linux.resources,
    /// writes the changed controllers on the live group, and keeps the result in the state
    /// directory's config.json so that a later update (or exec) starts from it.
    /// </summary>
    public LinuxResources Update(string id, LinuxResources changes)
    {
        var record = Store.Load(id);
        if (StatusOf(record) == ContainerStatus.Stopped) throw new InvalidStateException("container not running");
        var cgroup = LoadCgroup(record) ?? throw new RuntimeException($"container \"{id}\" has no cgroup to update");
        var spec = LoadSpec(record);
        var linux = spec.Linux ??= new Linux();
        var merged = MergeResources(linux.Resources, changes);

        // Only the controllers the update touches are written: rewriting the device list of a
        // live v1 group would deny every device for a moment.
        var touched = new LinuxResources
        {
            Memory = changes.Memory is null ? null : merged.Memory,
            Cpu = changes.Cpu is null ? null : merged.Cpu,
            Pids = changes.Pids is null ? null : merged.Pids,
            BlockIo = changes.BlockIo is null ? null : merged.BlockIo,
            HugepageLimits = changes.HugepageLimits,
            Devices = changes.Devices,
            Network = changes.Network,
            Rdma = changes.Rdma,
            Unified = changes.Unified,
        };
        var resources = CgroupResourcesMapper.Map(touched);
        if (!resources.IsEmpty) cgroup.Apply(resources);

        linux.Resources = merged;
        AtomicFile.Write(Path.Combine(Store.DirectoryOf(id), SpecFile), JsonSerializer.SerializeToUtf8Bytes(spec, SpecJsonContext.Default.Spec));
        return merged;
    }

    /// <summary>Field by field: what <paramref name="changes"/> sets wins; lists and maps it sets replace the old ones.</summary>
    public static LinuxResources MergeResources(LinuxResources? current, LinuxResources changes)
    {
        current ??= new LinuxResources();
        var m = current.Memory;
        var c = current.Cpu;
        var b = current.BlockIo;
        return new LinuxResources
        {
            Devices = changes.Devices ?? current.Devices,
            Memory = changes.Memory is not { } dm ? m : new LinuxMemory
            {
                Limit = dm.Limit ?? m?.Limit, Reservation = dm.Reservation ?? m?.Reservation, Swap = dm.Swap ?? m?.Swap,
                Kernel = dm.Kernel ?? m?.Kernel, KernelTcp = dm.KernelTcp ?? m?.KernelTcp, Swappiness = dm.Swappiness ?? m?.Swappiness,
                DisableOomKiller = dm.DisableOomKiller ?? m?.DisableOomKiller, UseHierarchy = dm.UseHierarchy ?? m?.UseHierarchy,
                CheckBeforeUpdate = dm.CheckBeforeUpdate ?? m?.CheckBeforeUpdate,
            },
            Cpu = changes.Cpu is not { } dc ? c : new LinuxCpu
            {
                Shares = dc.Shares ?? c?.Shares, Quota = dc.Quota ?? c?.Quota, Burst = dc.Burst ?? c?.Burst, Period = dc.Period ?? c?.Period,
                RealtimeRuntime = dc.RealtimeRuntime ?? c?.RealtimeRuntime, RealtimePeriod = dc.RealtimePeriod ?? c?.RealtimePeriod,
                Cpus = dc.Cpus ?? c?.Cpus, Mems = dc.Mems ?? c?.Mems, Idle = dc.Idle ?? c?.Idle,
            },
            Pids = changes.Pids ?? current.Pids,
            BlockIo = changes.BlockIo is not { } db ? b : new LinuxBlockIo
            {
                Weight = db.Weight ?? b?.Weight, LeafWeight = db.LeafWeight ?? b?.LeafWeight, WeightDevice = db.WeightDevice ?? b?.WeightDevice,
                ThrottleReadBpsDevice = db.ThrottleReadBpsDevice ?? b?.ThrottleReadBpsDevice,
                ThrottleWriteBpsDevice = db.ThrottleWriteBpsDevice ?? b?.ThrottleWriteBpsDevice,
                ThrottleReadIopsDevice = db.ThrottleReadIopsDevice ?? b?.ThrottleReadIopsDevice,
                ThrottleWriteIopsDevice = db.ThrottleWriteIopsDevice ?? b?.ThrottleWriteIopsDevice,
            },
            HugepageLimits = changes.HugepageLimits ?? current.HugepageLimits,
            Network = changes.Network ?? current.Network,
            Rdma = changes.Rdma ?? current.Rdma,
            Unified = changes.Unified ?? current.Unified,
        };
    }
}
