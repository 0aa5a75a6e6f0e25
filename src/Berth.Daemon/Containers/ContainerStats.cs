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

    /// <summary>
    /// A stopped container's one sample: dockerd's zero stats with the name and ID only (it
    /// answers so without waiting for a second sample).
    /// </summary>
    public static StatsJson Stopped(ContainerRecord r) => new() { name = r.Name, id = r.Id };

    public static StatsJson Sample(ContainerRecord r, StatsJson? previous, DateTimeOffset now, bool ownNetwork)
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
            pids_stats = new PidsStatsJson { current = stats.Pids.Current, limit = stats.Pids.Limit },
            blkio_stats = BlockIoStats(stats.Blkio, Layout.Value.Mode != CgroupMode.Unified),
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
                throttling_data = new ThrottlingDataJson(stats.Cpu.Throttling.Periods, stats.Cpu.Throttling.ThrottledPeriods, stats.Cpu.Throttling.ThrottledTime),
            },
            memory_stats = new MemoryStatsJson
            {
                usage = stats.Memory.Usage.Usage,
                max_usage = stats.Memory.Usage.Max,
                stats = stats.Memory.Raw,
                failcnt = stats.Memory.Usage.Failcnt,
                limit = memoryLimit,
            },
            networks = ownNetwork ? InterfaceStats(r.State.Pid) : null,
        };
    }

    /// <summary>
    /// As dockerd: on cgroup v1 all eight lists, [] where the kernel has no such file (the CFQ
    /// ones are gone from modern kernels); on v2 the bytes only, the others null.
    /// </summary>
    private static BlkioStatsJson BlockIoStats(BlkioStats blkio, bool v1)
    {
        static List<BlkioEntryJson>? Entries(List<BlkioEntry>? entries, bool always)
            => entries is null ? (always ? [] : null) : [.. entries.Select(b => new BlkioEntryJson(b.Major, b.Minor, b.Op, b.Value))];
        List<BlkioEntryJson>? absent = v1 ? [] : null;
        return new BlkioStatsJson
        {
            io_service_bytes_recursive = Entries(blkio.IoServiceBytesRecursive, always: true),
            io_serviced_recursive = v1 ? Entries(blkio.IoServicedRecursive, always: true) : null,
            io_queue_recursive = absent,
            io_service_time_recursive = absent,
            io_wait_time_recursive = absent,
            io_merged_recursive = absent,
            io_time_recursive = absent,
            sectors_recursive = absent,
        };
    }

    /// <summary>
    /// The interfaces of the container's network namespace but lo, from its init's /proc/PID/net/dev
    /// (dockerd reads its endpoints' interfaces in the sandbox); null when the process is gone.
    /// </summary>
    public static Dictionary<string, NetworkStatsJson>? InterfaceStats(int pid)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines($"/proc/{pid}/net/dev");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return ParseNetDev(lines);
    }

    /// <summary>/proc/net/dev: two header lines, then "name: rx bytes packets errs drop fifo frame compressed multicast tx bytes packets errs drop …".</summary>
    public static Dictionary<string, NetworkStatsJson> ParseNetDev(IEnumerable<string> lines)
    {
        var interfaces = new Dictionary<string, NetworkStatsJson>();
        foreach (string line in lines)
        {
            int colon = line.IndexOf(':');
            if (colon < 0) continue;
            string name = line[..colon].Trim();
            string[] f = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (name == "lo" || f.Length < 12) continue;
            ulong F(int i) => ulong.Parse(f[i], CultureInfo.InvariantCulture);
            interfaces[name] = new NetworkStatsJson(F(0), F(1), F(2), F(3), F(8), F(9), F(10), F(11));
        }
        return interfaces;
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
