using System.CommandLine;
using System.Text.Json.Nodes;

namespace Berth.Cli.Commands;

internal static partial class ContainerCommands
{
    /// <summary>
    /// <c>docker update [OPTIONS] CONTAINER...</c>: new cgroup limits and restart policy
    /// (<c>POST /containers/{id}/update</c>); prints each container as given, then the daemon's
    /// warnings. An option left out keeps its value.
    /// </summary>
    private static Command Update()
    {
        var containers = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.OneOrMore };
        var memory = new Option<string?>("--memory", "-m") { Description = "memory limit" };
        var memorySwap = new Option<string?>("--memory-swap") { Description = "swap limit equal to memory plus swap: -1 to enable unlimited swap" };
        var memoryReservation = new Option<string?>("--memory-reservation") { Description = "memory soft limit" };
        var cpus = new Option<string?>("--cpus") { Description = "number of CPUs" };
        var cpuShares = new Option<long?>("--cpu-shares", "-c") { Description = "CPU shares (relative weight)" };
        var cpuPeriod = new Option<long?>("--cpu-period") { Description = "limit CPU CFS (Completely Fair Scheduler) period" };
        var cpuQuota = new Option<long?>("--cpu-quota") { Description = "limit CPU CFS (Completely Fair Scheduler) quota" };
        var cpusetCpus = new Option<string?>("--cpuset-cpus") { Description = "CPUs in which to allow execution (0-3, 0,1)" };
        var cpusetMems = new Option<string?>("--cpuset-mems") { Description = "MEMs in which to allow execution (0-3, 0,1)" };
        var cpuRtPeriod = new Option<long?>("--cpu-rt-period") { Description = "limit the CPU real-time period in microseconds" };
        var cpuRtRuntime = new Option<long?>("--cpu-rt-runtime") { Description = "limit the CPU real-time runtime in microseconds" };
        var pidsLimit = new Option<long?>("--pids-limit") { Description = "tune container pids limit (set -1 for unlimited)" };
        var restart = new Option<string?>("--restart") { Description = "restart policy to apply when a container exits" };
        var command = new Command("update", "Update configuration of one or more containers")
        {
            containers, memory, memorySwap, memoryReservation, cpus, cpuShares, cpuPeriod, cpuQuota, cpuRtPeriod, cpuRtRuntime, cpusetCpus, cpusetMems, pidsLimit, restart,
        };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            var body = new JsonObject
            {
                ["Memory"] = parse.GetValue(memory) is { } m ? ContainerOptions.ParseSize(m, "--memory") : 0,
                ["MemorySwap"] = parse.GetValue(memorySwap) is { } ms ? (ms == "-1" ? -1 : ContainerOptions.ParseSize(ms, "--memory-swap")) : 0,
                ["MemoryReservation"] = parse.GetValue(memoryReservation) is { } mr ? ContainerOptions.ParseSize(mr, "--memory-reservation") : 0,
                ["NanoCpus"] = parse.GetValue(cpus) is { } c ? ContainerOptions.NanoCpus(c) : 0,
                ["CpuShares"] = parse.GetValue(cpuShares) ?? 0,
                ["CpuPeriod"] = parse.GetValue(cpuPeriod) ?? 0,
                ["CpuQuota"] = parse.GetValue(cpuQuota) ?? 0,
                ["CpuRealtimePeriod"] = parse.GetValue(cpuRtPeriod) ?? 0,
                ["CpuRealtimeRuntime"] = parse.GetValue(cpuRtRuntime) ?? 0,
                ["CpusetCpus"] = parse.GetValue(cpusetCpus) ?? "",
                ["CpusetMems"] = parse.GetValue(cpusetMems) ?? "",
                ["PidsLimit"] = parse.GetValue(pidsLimit) is { } p ? p : null,
                ["RestartPolicy"] = parse.GetValue(restart) is { Length: > 0 } r ? ContainerOptions.RestartPolicy(r) : null,
            };
            if (body.All(kv => kv.Value is null || kv.Value.ToJsonString() is "0" or "\"\""))
                throw new UsageException("you must provide one or more flags when using this command");
            var warnings = new List<string>();
            int code = await Runner.ForEachAsync(parse.GetValue(containers)!, async name =>
            {
                JsonNode? answer = await client.PostJsonAsync($"/containers/{name}/update", body: body.DeepClone(), ct: ct).ConfigureAwait(false);
                warnings.AddRange(ImageCommands.Strings(answer?["Warnings"]));
                return name;
            }).ConfigureAwait(false);
            // docker prints the daemon's warnings after the names, on stdout, as they come.
            if (warnings.Count > 0) Console.Out.WriteLine(string.Join('\n', warnings));
            return code;
        });
        return command;
    }
}
