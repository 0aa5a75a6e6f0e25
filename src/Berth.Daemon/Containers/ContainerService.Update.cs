using System.Text.Json;
using Berth.Daemon.Api;
using Berth.Oci;

namespace Berth.Daemon.Containers;

public sealed partial class ContainerService
{
    /// <summary>
    /// POST /containers/{id}/update (<c>docker update</c>): the cgroup limits and the restart
    /// policy. As dockerd: a field left 0 (or absent) keeps its value; the result is checked as a
    /// create's would be; a running (or paused) container gets the new limits from its runtime's
    /// <c>update</c> first, and the record changes only when that succeeded.
    /// <para>
    /// CpuRealtimePeriod/CpuRealtimeRuntime: discarded with dockerd's warnings on a host without
    /// real-time group scheduling. Unlike dockerd, which only records them for the next start
    /// (its toContainerdResources leaves them out) and does not hold the runtime to the period
    /// here (20.10 took a runtime of 2000 over a period of 1000, and the next start failed),
    /// berthd checks the values the container ends up with, given or kept, and applies them to a
    /// running container at once, giving its group's parents the daemon's budget first as a
    /// start does: a group started without real-time values has parents without one.
    /// </para>
    /// </summary>
    public async Task<List<string>> UpdateAsync(string reference, ContainerUpdateBody body)
    {
        ContainerRequestCheck.RefuseUnknown("", body.Unknown);
        ContainerEntry entry = Find(reference);
        await entry.Lock.WaitAsync();
        try
        {
            ContainerRecord r = entry.Record;
            HostConfigJson h = r.HostConfig;
            if (body.RestartPolicy is { Name.Length: > 0 } policy)
            {
                ContainerRequestCheck.CheckRestartPolicy(policy);
                if (h.AutoRemove && policy.Name != "no")
                    throw ApiException.BadRequest("Restart policy cannot be updated because AutoRemove is enabled for the container");
            }
            if (body.NanoCpus > 0 && (h.CpuQuota != 0 || h.CpuPeriod > 0) && body.CpuQuota == 0 && body.CpuPeriod == 0)
                throw ApiException.Conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set");
            if ((body.CpuQuota != 0 || body.CpuPeriod > 0) && h.NanoCpus > 0 && body.NanoCpus == 0)
                throw ApiException.Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period or Quota has already been set");
            if (body.Memory > 0 && body.MemorySwap == 0 && h.MemorySwap > 0 && body.Memory > h.MemorySwap)
                throw ApiException.BadRequest("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time");

            var warnings = new List<string>();
            var realtime = new HostConfigJson { CpuRealtimePeriod = body.CpuRealtimePeriod, CpuRealtimeRuntime = body.CpuRealtimeRuntime };
            ContainerRequestCheck.CheckCpuRealtime(realtime, warnings, ContainerRequestCheck.CpuRealtimeSupported.Value);

            // The limits after the update, checked and turned into the runtime's resources before anything changes.
            var merged = new HostConfigJson
            {
                Memory = body.Memory != 0 ? body.Memory : h.Memory,
                MemorySwap = body.MemorySwap != 0 ? body.MemorySwap : h.MemorySwap,
                MemoryReservation = body.MemoryReservation != 0 ? body.MemoryReservation : h.MemoryReservation,
                MemorySwappiness = h.MemorySwappiness,
                OomKillDisable = h.OomKillDisable,
                CpuShares = body.CpuShares != 0 ? body.CpuShares : h.CpuShares,
                NanoCpus = body.NanoCpus != 0 ? body.NanoCpus : h.NanoCpus,
                CpuPeriod = body.CpuPeriod != 0 ? body.CpuPeriod : h.CpuPeriod,
                CpuQuota = body.CpuQuota != 0 ? body.CpuQuota : h.CpuQuota,
                CpusetCpus = !string.IsNullOrEmpty(body.CpusetCpus) ? body.CpusetCpus : h.CpusetCpus,
                CpusetMems = !string.IsNullOrEmpty(body.CpusetMems) ? body.CpusetMems : h.CpusetMems,
                // dockerd: 0 or -1 in an update means unlimited.
                PidsLimit = body.PidsLimit is { } pids ? (pids > 0 ? pids : -1) : h.PidsLimit,
                CpuRealtimePeriod = realtime.CpuRealtimePeriod != 0 ? realtime.CpuRealtimePeriod : h.CpuRealtimePeriod,
                CpuRealtimeRuntime = realtime.CpuRealtimeRuntime != 0 ? realtime.CpuRealtimeRuntime : h.CpuRealtimeRuntime,
            };
            ContainerRequestCheck.CheckResources(merged, update: true);
            ContainerRequestCheck.CheckCpuRealtime(merged, warnings, supported: true); // a runtime above the period, old or new

            if (r.State.Running)
            {
                LinuxResources limits = ContainerSpecFactory.Limits(merged);
                string file = Path.Combine(BundleDirectory(r.Id), "update.json");
                await File.WriteAllBytesAsync(file, JsonSerializer.SerializeToUtf8Bytes(limits, SpecJsonContext.Default.LinuxResources));
                try
                {
                    // Only when this update brings real-time values: a container started with them got its budget at start.
                    if (realtime.CpuRealtimePeriod != 0 || realtime.CpuRealtimeRuntime != 0) GiveParentsRealtimeBudget(r);
                    var (runtime, globals) = RuntimeOf(r);
                    var (code, _, stderr) = await RunRuntimeAsync(runtime, globals, ["update", "--resources", file, r.Id], throwOnError: false);
                    if (code != 0) throw new ApiException(500, $"Cannot update container {r.Id}: {stderr.Trim()}");
                }
                finally
                {
                    File.Delete(file);
                }
            }

            (h.Memory, h.MemorySwap, h.MemoryReservation) = (merged.Memory, merged.MemorySwap, merged.MemoryReservation);
            (h.CpuShares, h.NanoCpus, h.CpuPeriod, h.CpuQuota) = (merged.CpuShares, merged.NanoCpus, merged.CpuPeriod, merged.CpuQuota);
            (h.CpusetCpus, h.CpusetMems, h.PidsLimit) = (merged.CpusetCpus, merged.CpusetMems, merged.PidsLimit);
            (h.CpuRealtimePeriod, h.CpuRealtimeRuntime) = (merged.CpuRealtimePeriod, merged.CpuRealtimeRuntime);
            if (body.RestartPolicy is { Name.Length: > 0 } newPolicy) h.RestartPolicy = newPolicy;
            Store.Save(r);
            PublishEvent(r, "update");
            return warnings;
        }
        finally
        {
            entry.Lock.Release();
        }
    }
}
