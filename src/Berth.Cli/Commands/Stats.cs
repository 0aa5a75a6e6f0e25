using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Interop;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

internal static partial class ContainerCommands
{
    private static readonly Dictionary<string, string> StatsTitles = new(StringComparer.Ordinal)
    {
        ["Container"] = "CONTAINER", ["ID"] = "CONTAINER ID", ["Name"] = "NAME", ["CPUPerc"] = "CPU %", ["MemUsage"] = "MEM USAGE / LIMIT",
        ["MemPerc"] = "MEM %", ["NetIO"] = "NET I/O", ["BlockIO"] = "BLOCK I/O", ["PIDs"] = "PIDS",
    };

    /// <summary>
    /// <c>docker stats [-a] [--no-stream] [--no-trunc] [--format F] [CONTAINER...]</c>: one
    /// <c>GET /containers/{id}/stats?stream=0</c> per container per round (the daemon primes
    /// precpu_stats, so CPU % is over its sampling interval), figures computed as the docker CLI does.
    /// In a terminal without --no-stream the table is redrawn every round.
    /// </summary>
    private static Command Stats()
    {
        var containers = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.ZeroOrMore };
        var all = new Option<bool>("--all", "-a") { Description = "show all containers (default shows just running)" };
        var noStream = new Option<bool>("--no-stream") { Description = "disable streaming stats and only pull the first result" };
        var noTrunc = ImageCommands.NoTruncOption();
        var format = ImageCommands.FormatOption("{{.Container}}, {{.Name}}, {{.ID}}, {{.CPUPerc}}, {{.MemUsage}}, {{.MemPerc}}, {{.NetIO}}, {{.BlockIO}}, {{.PIDs}}, {{json .}}");
        var command = new Command("stats", "Display a live stream of container(s) resource usage statistics") { containers, all, noStream, noTrunc, format };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string[] names = parse.GetValue(containers) ?? [];
            bool stream = !parse.GetValue(noStream);
            string template = parse.GetValue(format) switch
            {
                null or "" or "table" => "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
                "json" => "{{json .}}",
                var t => t,
            };
            GoTemplate parsed = GoTemplate.Parse(template);
            bool terminal = Libc.IsTerminal(1);
            while (true)
            {
                IEnumerable<string> targets = names;
                if (names.Length == 0)
                {
                    JsonArray list = await client.GetJsonAsync("/containers/json", new Query().Add("all", parse.GetValue(all)), ct).ConfigureAwait(false) as JsonArray ?? [];
                    targets = list.Select(c => c?["Id"]?.GetValue<string>() ?? "").ToList();
                }
                var tasks = targets.Select(async name =>
                {
                    JsonNode? s = await client.GetJsonAsync($"/containers/{name}/stats", new Query().Add("stream", false, always: true), ct).ConfigureAwait(false);
                    return StatsRow(s, name, !parse.GetValue(noTrunc));
                }).ToList();
                JsonObject[] rows;
                try
                {
                    rows = await Task.WhenAll(tasks).ConfigureAwait(false);
                }
                catch (DaemonException) when (names.Length == 0)
                {
                    continue; // a container went away between list and stats
                }
                string text = parsed.RenderAll(rows, StatsTitles);
                if (stream && terminal) Console.Out.Write("\x1b[2J\x1b[H");
                Console.Out.Write(text);
                Console.Out.Flush();
                if (!stream) return 0;
                await Task.Delay(names.Length == 0 && rows.Length == 0 ? 1000 : 100, ct).ConfigureAwait(false);
            }
        });
        return command;
    }

    private static JsonObject StatsRow(JsonNode? s, string requested, bool trunc)
    {
        static double N(JsonNode? n) => n is JsonValue v ? v.GetValue<double>() : 0;
        string id = s?["id"]?.GetValue<string>() ?? requested;
        string name = (s?["name"]?.GetValue<string>() ?? "").TrimStart('/');
        double cpuDelta = N(s?["cpu_stats"]?["cpu_usage"]?["total_usage"]) - N(s?["precpu_stats"]?["cpu_usage"]?["total_usage"]);
        double systemDelta = N(s?["cpu_stats"]?["system_cpu_usage"]) - N(s?["precpu_stats"]?["system_cpu_usage"]);
        double online = N(s?["cpu_stats"]?["online_cpus"]);
        if (online == 0) online = (s?["cpu_stats"]?["cpu_usage"]?["percpu_usage"] as JsonArray)?.Count ?? 0;
        double cpu = systemDelta > 0 && cpuDelta > 0 ? cpuDelta / systemDelta * online * 100 : 0;
        JsonNode? mem = s?["memory_stats"];
        double usage = N(mem?["usage"]);
        // docker CLI: cgroup v1 subtracts total_inactive_file, v2 inactive_file.
        double inactive = mem?["stats"]?["total_inactive_file"] is { } t1 ? N(t1) : N(mem?["stats"]?["inactive_file"]);
        if (inactive < usage) usage -= inactive;
        double limit = N(mem?["limit"]);
        double rx = 0, tx = 0;
        foreach (var (_, net) in s?["networks"] as JsonObject ?? [])
        {
            rx += N(net?["rx_bytes"]);
            tx += N(net?["tx_bytes"]);
        }
        double read = 0, write = 0;
        foreach (JsonNode? e in s?["blkio_stats"]?["io_service_bytes_recursive"] as JsonArray ?? [])
        {
            string op = (e?["op"]?.GetValue<string>() ?? "").ToLowerInvariant();
            if (op == "read") read += N(e?["value"]);
            else if (op == "write") write += N(e?["value"]);
        }
        string pids = ((long)N(s?["pids_stats"]?["current"])).ToString(CultureInfo.InvariantCulture);
        string Pct(double v) => v.ToString("0.00", CultureInfo.InvariantCulture) + "%";
        return new JsonObject
        {
            ["BlockIO"] = $"{Units.HumanSize(read)} / {Units.HumanSize(write)}",
            ["CPUPerc"] = Pct(cpu),
            ["Container"] = requested,
            ["ID"] = trunc ? Units.ShortId(id) : id,
            ["MemPerc"] = Pct(limit > 0 ? usage / limit * 100 : 0),
            ["MemUsage"] = $"{Units.BytesSize(usage)} / {Units.BytesSize(limit)}",
            ["Name"] = name.Length > 0 ? name : "--",
            ["NetIO"] = $"{Units.HumanSize(rx)} / {Units.HumanSize(tx)}",
            ["PIDs"] = pids,
        };
    }
}
