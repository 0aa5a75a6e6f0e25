using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Output;

namespace Berth.Cli.Commands;

internal static partial class ContainerCommands
{
    private static Argument<string[]> Containers() => new("CONTAINER") { Arity = ArgumentArity.OneOrMore };

    private static Command Stop()
    {
        var containers = Containers();
        var time = new Option<int?>("--time", "-t") { Description = "seconds to wait before killing the container" };
        var signal = new Option<string?>("--signal", "-s") { Description = "signal to send to the container" };
        var command = new Command("stop", "Stop one or more running containers") { containers, time, signal };
        Runner.SetClientAction(command, (parse, client, ct) => Runner.ForEachAsync(parse.GetValue(containers)!, async name =>
        {
            var q = new Query().Add("t", parse.GetValue(time)?.ToString(CultureInfo.InvariantCulture)).Add("signal", parse.GetValue(signal));
            await client.PostAsync($"/containers/{name}/stop", q, ct).ConfigureAwait(false);
            return name;
        }));
        return command;
    }

    private static Command Restart()
    {
        var containers = Containers();
        var time = new Option<int?>("--time", "-t") { Description = "seconds to wait before killing the container" };
        var signal = new Option<string?>("--signal", "-s") { Description = "signal to send to the container" };
        var command = new Command("restart", "Restart one or more containers") { containers, time, signal };
        Runner.SetClientAction(command, (parse, client, ct) => Runner.ForEachAsync(parse.GetValue(containers)!, async name =>
        {
            var q = new Query().Add("t", parse.GetValue(time)?.ToString(CultureInfo.InvariantCulture)).Add("signal", parse.GetValue(signal));
            await client.PostAsync($"/containers/{name}/restart", q, ct).ConfigureAwait(false);
            return name;
        }));
        return command;
    }

    private static Command Kill()
    {
        var containers = Containers();
        var signal = new Option<string?>("--signal", "-s") { Description = "signal to send to the container" };
        var command = new Command("kill", "Kill one or more running containers") { containers, signal };
        Runner.SetClientAction(command, (parse, client, ct) => Runner.ForEachAsync(parse.GetValue(containers)!, async name =>
        {
            await client.PostAsync($"/containers/{name}/kill", new Query().Add("signal", parse.GetValue(signal)), ct).ConfigureAwait(false);
            return name;
        }));
        return command;
    }

    private static Command Rm(string name, params string[] aliases)
    {
        var containers = Containers();
        var force = new Option<bool>("--force", "-f") { Description = "force the removal of a running container (uses SIGKILL)" };
        var volumes = new Option<bool>("--volumes", "-v") { Description = "remove anonymous volumes associated with the container" };
        var link = new Option<bool>("--link", "-l") { Description = "remove the specified link" };
        var command = new Command(name, "Remove one or more containers") { containers, force, volumes, link };
        foreach (string a in aliases) command.Aliases.Add(a);
        Runner.SetClientAction(command, (parse, client, ct) => Runner.ForEachAsync(parse.GetValue(containers)!, async c =>
        {
            var q = new Query().Add("force", parse.GetValue(force)).Add("v", parse.GetValue(volumes)).Add("link", parse.GetValue(link));
            // As docker: slashes around the name go (--link takes /parent/alias, the link's own name).
            using HttpResponseMessage _ = await client.SendAsync(HttpMethod.Delete, $"/containers/{c.Trim('/')}", q, ct: ct).ConfigureAwait(false);
            return c;
        }));
        return command;
    }

    private static Command Pause()
    {
        var containers = Containers();
        var command = new Command("pause", "Pause all processes within one or more containers") { containers };
        Runner.SetClientAction(command, (parse, client, ct) => Runner.ForEachAsync(parse.GetValue(containers)!, async c =>
        {
            await client.PostAsync($"/containers/{c}/pause", ct: ct).ConfigureAwait(false);
            return c;
        }));
        return command;
    }

    private static Command Unpause()
    {
        var containers = Containers();
        var command = new Command("unpause", "Unpause all processes within one or more containers") { containers };
        Runner.SetClientAction(command, (parse, client, ct) => Runner.ForEachAsync(parse.GetValue(containers)!, async c =>
        {
            await client.PostAsync($"/containers/{c}/unpause", ct: ct).ConfigureAwait(false);
            return c;
        }));
        return command;
    }

    /// <summary><c>docker wait CONTAINER...</c>: prints each exit code.</summary>
    private static Command Wait()
    {
        var containers = Containers();
        var command = new Command("wait", "Block until one or more containers stop, then print their exit codes") { containers };
        Runner.SetClientAction(command, (parse, client, ct) => Runner.ForEachAsync(parse.GetValue(containers)!, async c =>
        {
            JsonNode? status = await client.PostJsonAsync($"/containers/{c}/wait", ct: ct).ConfigureAwait(false);
            return (status?["StatusCode"]?.GetValue<long>() ?? 0).ToString(CultureInfo.InvariantCulture);
        }));
        return command;
    }

    private static Command Rename()
    {
        var container = new Argument<string>("CONTAINER");
        var newName = new Argument<string>("NEW_NAME");
        var command = new Command("rename", "Rename a container") { container, newName };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string to = parse.GetValue(newName)!.TrimStart('/');
            if (to.Length == 0) throw new UsageException("Neither old nor new names may be empty");
            await client.PostAsync($"/containers/{parse.GetValue(container)}/rename", new Query().Add("name", to), ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary><c>docker top CONTAINER [ps OPTIONS]</c>.</summary>
    private static Command Top()
    {
        var container = new Argument<string>("CONTAINER");
        var psArgs = new Argument<string[]>("ps OPTIONS") { Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("top", "Display the running processes of a container") { container, psArgs };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string[] a = parse.GetValue(psArgs) ?? [];
            JsonNode? top = await client.GetJsonAsync($"/containers/{parse.GetValue(container)}/top",
                new Query().Add("ps_args", a.Length > 0 ? string.Join(' ', a) : null), ct).ConfigureAwait(false);
            var lines = new List<string> { string.Join('\t', ImageCommands.Strings(top?["Titles"])) };
            foreach (JsonNode? p in top?["Processes"] as JsonArray ?? []) lines.Add(string.Join('\t', ImageCommands.Strings(p)));
            Console.Out.Write(TabWriter.Format(lines, minWidth: 20, padding: 1));
            return 0;
        });
        return command;
    }

    /// <summary><c>docker port CONTAINER [PRIVATE_PORT[/PROTO]]</c>.</summary>
    private static Command Port()
    {
        var container = new Argument<string>("CONTAINER");
        var privatePort = new Argument<string?>("PRIVATE_PORT[/PROTO]") { Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("port", "List port mappings or a specific mapping for the container") { container, privatePort };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            JsonNode? inspect = await client.GetJsonAsync($"/containers/{parse.GetValue(container)}/json", ct: ct).ConfigureAwait(false);
            var ports = inspect?["NetworkSettings"]?["Ports"] as JsonObject ?? [];
            string? wanted = parse.GetValue(privatePort) is { } p ? (p.Contains('/') ? p : p + "/tcp") : null;
            bool any = false;
            foreach (var (port, bindings) in ports.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (wanted is not null && port != wanted) continue;
                foreach (JsonNode? b in bindings as JsonArray ?? [])
                {
                    string ip = b?["HostIp"]?.GetValue<string>() is { Length: > 0 } i ? i : "0.0.0.0";
                    string hostPort = b?["HostPort"]?.GetValue<string>() ?? "";
                    string address = ip.Contains(':') ? $"[{ip}]:{hostPort}" : $"{ip}:{hostPort}";
                    Console.Out.WriteLine(wanted is null ? $"{port} -> {address}" : address);
                    any = true;
                }
            }
            if (wanted is not null && !any) throw new UsageException($"No public port '{wanted}' published for {parse.GetValue(container)}");
            return 0;
        });
        return command;
    }

    /// <summary><c>docker export [-o FILE] CONTAINER</c>: <c>GET /containers/{id}/export</c>.</summary>
    private static Command Export()
    {
        var container = new Argument<string>("CONTAINER");
        var output = new Option<string?>("--output", "-o") { Description = "write to a file, instead of STDOUT" };
        var command = new Command("export", "Export a container's filesystem as a tar archive") { container, output };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string? path = parse.GetValue(output);
            if (path is null && !Console.IsOutputRedirected)
                throw new UsageException("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            using HttpResponseMessage response = await client.SendAsync(HttpMethod.Get, $"/containers/{parse.GetValue(container)}/export", ct: ct,
                completion: HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
            await using Stream body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await ImageCommands.WriteOutputAsync(body, path, ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
