using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

/// <summary><c>berth version</c> and <c>berth info</c>: the client's figures and the daemon's <c>/version</c>, <c>/info</c>.</summary>
internal static class SystemCommands
{
    public const string ClientVersion = "0.1.0";

    public static IEnumerable<(string Name, Func<Command> Build)> TopLevel() => [("version", Version), ("info", Info), ("events", EventsCommand.Create)];

    private static Command Version()
    {
        var format = new Option<string?>("--format", "-f") { Description = "format the output using a Go template" };
        var command = new Command("version", "Show the berth version information") { format };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            var clientInfo = new JsonObject
            {
                ["Platform"] = new JsonObject { ["Name"] = "Berth" },
                ["Version"] = ClientVersion,
                ["ApiVersion"] = DaemonClient.MaxApiVersion,
                ["DefaultAPIVersion"] = DaemonClient.MaxApiVersion,
                ["GoVersion"] = "n/a (.NET " + Environment.Version + ")",
                ["GitCommit"] = "",
                ["BuiltTime"] = "",
                ["Os"] = "linux",
                ["Arch"] = Arch(),
                ["Context"] = "default",
            };
            JsonNode? server = null;
            Exception? serverError = null;
            try
            {
                server = await client.GetJsonAsync("/version", ct: ct).ConfigureAwait(false);
                clientInfo["ApiVersion"] = await client.VersionAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is DaemonUnreachableException or DaemonException)
            {
                serverError = e;
            }
            var all = new JsonObject { ["Client"] = clientInfo, ["Server"] = server?.DeepClone() };
            if (parse.GetValue(format) is { Length: > 0 } f)
            {
                Console.Out.WriteLine(f == "json" ? GoTemplate.GoJson(all.ToJsonString()) : GoTemplate.Parse(f).Render(all));
            }
            else
            {
                var sb = new StringBuilder();
                sb.Append("Client:\n");
                sb.Append($" Version:           {ClientVersion}\n");
                sb.Append($" API version:       {clientInfo["ApiVersion"]}\n");
                sb.Append($" .NET version:      {Environment.Version}\n");
                sb.Append($" OS/Arch:           linux/{Arch()}\n");
                sb.Append(" Context:           default\n");
                if (server is not null)
                {
                    sb.Append($"\nServer: {server["Platform"]?["Name"]?.GetValue<string>() ?? ""}\n");
                    sb.Append(" Engine:\n");
                    sb.Append($"  Version:          {server["Version"]}\n");
                    sb.Append($"  API version:      {server["ApiVersion"]} (minimum version {server["MinAPIVersion"]})\n");
                    sb.Append($"  Go version:       {server["GoVersion"]}\n");
                    sb.Append($"  Git commit:       {server["GitCommit"]}\n");
                    sb.Append($"  Built:            {server["BuildTime"]}\n");
                    sb.Append($"  OS/Arch:          {server["Os"]}/{server["Arch"]}\n");
                    sb.Append($"  Experimental:     {(server["Experimental"]?.GetValue<bool>() == true ? "true" : "false")}\n");
                    foreach (JsonNode? c in server["Components"] as JsonArray ?? [])
                    {
                        string n = c?["Name"]?.GetValue<string>() ?? "";
                        if (n == "Engine") continue;
                        sb.Append($" {n}:\n  Version:          {c?["Version"]}\n");
                    }
                }
                Console.Out.Write(sb.ToString());
            }
            if (serverError is not null)
            {
                Console.Error.WriteLine(Runner.Describe(serverError).Message);
                return Runner.Failure;
            }
            return 0;
        });
        return command;
    }

    private static string Arch() => RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64", Architecture.Arm64 => "arm64", Architecture.Arm => "arm", var a => a.ToString().ToLowerInvariant(),
    };

    internal static Command Info()
    {
        var format = new Option<string?>("--format", "-f") { Description = "format the output using a Go template" };
        var command = new Command("info", "Display system-wide information") { format };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            JsonNode? info = await client.GetJsonAsync("/info", ct: ct).ConfigureAwait(false);
            if (parse.GetValue(format) is { Length: > 0 } f)
            {
                Console.Out.WriteLine(f == "json" ? GoTemplate.GoJson(info?.ToJsonString() ?? "null") : GoTemplate.Parse(f).Render(info));
                return 0;
            }
            string S(string key) => info?[key] is JsonValue v ? GoTemplate.GoString(v) : "";
            var sb = new StringBuilder();
            sb.Append("Client:\n");
            sb.Append($" Version:    {ClientVersion}\n");
            sb.Append(" Context:    default\n");
            sb.Append(" Debug Mode: false\n\n");
            sb.Append("Server:\n");
            sb.Append($" Containers: {S("Containers")}\n");
            sb.Append($"  Running: {S("ContainersRunning")}\n");
            sb.Append($"  Paused: {S("ContainersPaused")}\n");
            sb.Append($"  Stopped: {S("ContainersStopped")}\n");
            sb.Append($" Images: {S("Images")}\n");
            sb.Append($" Server Version: {S("ServerVersion")}\n");
            sb.Append($" Storage Driver: {S("Driver")}\n");
            sb.Append($" Logging Driver: {S("LoggingDriver")}\n");
            sb.Append($" Cgroup Driver: {S("CgroupDriver")}\n");
            sb.Append($" Cgroup Version: {S("CgroupVersion")}\n");
            if (info?["Runtimes"] is JsonObject runtimes)
                sb.Append($" Runtimes: {string.Join(' ', runtimes.Select(kv => kv.Key).Order(StringComparer.Ordinal))}\n");
            sb.Append($" Default Runtime: {S("DefaultRuntime")}\n");
            sb.Append($" Init Binary: {S("InitBinary")}\n");
            sb.Append($" Kernel Version: {S("KernelVersion")}\n");
            sb.Append($" Operating System: {S("OperatingSystem")}\n");
            sb.Append($" OSType: {S("OSType")}\n");
            sb.Append($" Architecture: {S("Architecture")}\n");
            sb.Append($" CPUs: {S("NCPU")}\n");
            sb.Append($" Total Memory: {Units.BytesSize(info?["MemTotal"]?.GetValue<double>() ?? 0)}\n");
            sb.Append($" Name: {S("Name")}\n");
            sb.Append($" ID: {S("ID")}\n");
            sb.Append($" Docker Root Dir: {S("DockerRootDir")}\n");
            sb.Append($" Debug Mode: {(info?["Debug"]?.GetValue<bool>() == true ? "true" : "false")}\n");
            sb.Append($" Experimental: {(info?["ExperimentalBuild"]?.GetValue<bool>() == true ? "true" : "false")}\n");
            if (info?["RegistryConfig"]?["InsecureRegistryCIDRs"] is JsonArray insecure && insecure.Count > 0)
            {
                sb.Append(" Insecure Registries:\n");
                foreach (JsonNode? r in insecure) sb.Append($"  {r}\n");
            }
            sb.Append($" Live Restore Enabled: {(info?["LiveRestoreEnabled"]?.GetValue<bool>() == true ? "true" : "false")}\n");
            Console.Out.Write(sb.ToString());
            foreach (string w in ImageCommands.Strings(info?["Warnings"])) Console.Error.WriteLine(w);
            return 0;
        });
        return command;
    }
}
