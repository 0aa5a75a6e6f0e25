using System.Globalization;
using Berth.Cgroups;
using Berth.Daemon.Api;

namespace Berth.Daemon.Containers;

/// <summary>
/// GET /containers/{id}/stats samples from the container's cgroup (Berth.Cgroups reads v1, hybrid
/// and v2 alike), in the shape docker stats computes its columns from: cpu_stats and precpu_stats
/// (container and system usage, for the CPU %), memory usage and limit, pids, block I/O bytes.
/// </summary>
public static class ContainerStats
{
    private static readonly Lazy<CgroupLayout> Layout = new(CgroupLayout.Detect);

    private static readonly Lazy<BlockIoSupport> BlockIoProbe = new(() =>
    {
        try
        {
            return BlockIoSupport.Probe(Layout.Value);
        }
        catch (CgroupException)
        {
            return new BlockIoSupport(false, false);
        }
    });

    /// <summary>The block I/O limits this host's cgroups can apply (probed once).</summary>
    public static BlockIoSupport BlockIo => BlockIoProbe.Value;

    /// <summary>The cgroup containers go under when they name no --cgroup-parent.</summary>
    public const string DefaultCgroupParent = "/berth";

    public static string CgroupsPath(ContainerRecord r)
        => (string.IsNullOrEmpty(r.HostConfig.CgroupParent) ? DefaultCgroupParent : r.HostConfig.CgroupParent.TrimEnd('/')) + "/" + r.Id;

    /// <summary>
    /// At shutdown: the default parent group goes from every hierarchy where no container group
    /// is left under it (containers that keep running without berthd keep it, and it is removed
    /// at a later shutdown). A user's --cgroup-parent is theirs and stays.
    /// </summary>
    public static void RemoveDefaultParentIfUnused()
    {
        try
        {
            CgroupManager.RemoveIfEmpty(Layout.Value, DefaultCgroupParent);
        }
        catch (CgroupException)
        {
            // No usable cgroup mount: nothing was made either.
        }
    }

    public static ICgroupManager Manager(ContainerRecord r) => CgroupManager.Create(Layout.Value, CgroupsPath(r));

    public static StatsJson Sample(ContainerRecord r, StatsJson? previous, DateTimeOffset now)
    {
        string read = ContainerService.Rfc3339(now);
        var sample = new StatsJson
        {
            read = read,
            preread = previous?.read ?? StateZero,
            precpu_stats = previous?.cpu_stats ?? new CpuStatsJson(),
            name = r.Name,
            id = r.Id,
        };
        if (!r.State.Running) return sample;
        CgroupStats stats;
        try
        {
            stats = Manager(r).Stats();
        }
        catch (Exception e) when (e is CgroupException or IOException)
        {
            return sample; // exited meanwhile: dockerd answers with zeroes too
        }
        ulong memoryLimit = stats.Memory.Usage.Limit is 0 or >= (ulong)long.MaxValue / 2 ? HostMemory() : stats.Memory.Usage.Limit;
        return sample with
        {
            pids_stats = new PidsStatsJson((long)stats.Pids.Current, stats.Pids.Limit == 0 ? null : (long)stats.Pids.Limit),
            cpu_stats = new CpuStatsJson
            {
                cpu_usage = new CpuUsageJson
                {
                    total_usage = stats.Cpu.Usage.Total,
                    percpu_usage = stats.Cpu.Usage.Percpu,
                    usage_in_kernelmode = stats.Cpu.Usage.Kernel,
                    usage_in_usermode = stats.Cpu.Usage.User,
                },
                system_cpu_usage = SystemCpuUsage(),
                online_cpus = (uint)Environment.ProcessorCount,
            },
            memory_stats = new MemoryStatsJson { usage = stats.Memory.Usage.Usage, limit = memoryLimit, stats = stats.Memory.Raw },
            blkio_stats = new BlkioStatsJson
            {
                io_service_bytes_recursive = stats.Blkio.IoServiceBytesRecursive?.Select(b => new BlkioEntryJson(b.Major, b.Minor, b.Op, b.Value)).ToList(),
            },
        };
    }

    private const string StateZero = ContainerStateJson.ZeroTime;

    /// <summary>/proc/stat's cpu line in nanoseconds, as dockerd's getSystemCPUUsage.</summary>
    private static ulong SystemCpuUsage()
    {
        foreach (string line in File.ReadLines("/proc/stat"))
        {
            if (!line.StartsWith("cpu ", StringComparison.Ordinal)) continue;
            ulong ticks = 0;
            foreach (string f in line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(7))
                ticks += ulong.Parse(f, CultureInfo.InvariantCulture);
            return ticks * (1_000_000_000UL / 100); // USER_HZ is 100 on Linux
        }
        return 0;
    }

    private static ulong HostMemory()
    {
        foreach (string line in File.ReadLines("/proc/meminfo"))
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                return ulong.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }
}
