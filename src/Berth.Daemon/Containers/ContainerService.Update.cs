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
            };
            ContainerRequestCheck.CheckResources(merged);

            if (r.State.Running)
            {
                LinuxResources limits = ContainerSpecFactory.Limits(merged);
                string file = Path.Combine(BundleDirectory(r.Id), "update.json");
                await File.WriteAllBytesAsync(file, JsonSerializer.SerializeToUtf8Bytes(limits, SpecJsonContext.Default.LinuxResources));
                try
                {
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
            if (body.RestartPolicy is { Name.Length: > 0 } newPolicy) h.RestartPolicy = newPolicy;
            Store.Save(r);
            PublishEvent(r, "update");
            return [];
        }
        finally
        {
            entry.Lock.Release();
        }
    }
}
