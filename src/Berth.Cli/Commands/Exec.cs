using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Interop;
using Berth.Cli.Terminal;

namespace Berth.Cli.Commands;

internal static partial class ContainerCommands
{
    /// <summary>
    /// <c>docker exec [-d] [-i] [-t] [-e] [--env-file] [-u] [-w] [--privileged] [--detach-keys] CONTAINER COMMAND [ARG...]</c>:
    /// exec create, a hijacked exec start, then the exec's exit code from <c>GET /exec/{id}/json</c>.
    /// </summary>
    private static Command Exec()
    {
        var container = new Argument<string>("CONTAINER");
        var args = new Argument<string[]>("COMMAND") { Arity = ArgumentArity.OneOrMore };
        var detach = new Option<bool>("--detach", "-d") { Description = "detached mode: run command in the background" };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "keep STDIN open even if not attached" };
        var tty = new Option<bool>("--tty", "-t") { Description = "allocate a pseudo-TTY" };
        var env = new Option<string[]>("--env", "-e") { Description = "set environment variables" };
        var envFile = new Option<string[]>("--env-file") { Description = "read in a file of environment variables" };
        var user = new Option<string?>("--user", "-u") { Description = "username or UID (format: <name|uid>[:<group|gid>])" };
        var workdir = new Option<string?>("--workdir", "-w") { Description = "working directory inside the container" };
        var privileged = new Option<bool>("--privileged") { Description = "give extended privileges to the command" };
        var detachKeys = new Option<string?>("--detach-keys") { Description = "override the key sequence for detaching a container" };
        var command = new Command("exec", "Execute a command in a running container")
        {
            container, args, detach, interactive, tty, env, envFile, user, workdir, privileged, detachKeys,
        };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string name = parse.GetValue(container)!;
            bool d = parse.GetValue(detach), i = parse.GetValue(interactive), t = parse.GetValue(tty);
            byte[] keys = AttachSession.ParseDetachKeys(parse.GetValue(detachKeys));
            if (t && i && !d && !Libc.IsTerminal(0))
            {
                Console.Error.WriteLine("the input device is not a TTY");
                return 1;
            }
            var envList = new JsonArray();
            foreach (string file in parse.GetValue(envFile) ?? [])
                foreach (string line in File.ReadAllLines(file))
                    if (line.TrimStart() is { Length: > 0 } l && !l.StartsWith('#')) envList.Add((JsonNode)(l.Contains('=') ? l : $"{l}={Environment.GetEnvironmentVariable(l)}"));
            foreach (string e in parse.GetValue(env) ?? [])
                if (e.Contains('=')) envList.Add((JsonNode)(e));
                else if (Environment.GetEnvironmentVariable(e) is { } v) envList.Add((JsonNode)($"{e}={v}"));
            var body = new JsonObject
            {
                ["User"] = parse.GetValue(user) ?? "",
                ["Privileged"] = parse.GetValue(privileged),
                ["Tty"] = t,
                ["AttachStdin"] = i && !d,
                ["AttachStderr"] = !d,
                ["AttachStdout"] = !d,
                ["Detach"] = d,
                ["DetachKeys"] = parse.GetValue(detachKeys) ?? "",
                ["Env"] = envList,
                ["WorkingDir"] = parse.GetValue(workdir) ?? "",
                ["Cmd"] = new JsonArray((parse.GetValue(args) ?? []).Select(a => (JsonNode)a).ToArray()),
            };
            if (t && Libc.WindowSize(1) is { } ws) body["ConsoleSize"] = new JsonArray(ws.Rows, ws.Cols);
            JsonNode? created = await client.PostJsonAsync($"/containers/{name}/exec", null, body, ct).ConfigureAwait(false);
            string execId = created?["Id"]?.GetValue<string>() ?? throw new IOException("the daemon's exec create answer has no Id");
            if (d)
            {
                await client.PostJsonAsync($"/exec/{execId}/start", null, new JsonObject { ["Detach"] = true, ["Tty"] = t }, ct).ConfigureAwait(false);
                return 0;
            }

            RawTerminal? raw = null;
            ResizeMonitor? resize = null;
            try
            {
                using HijackedConnection connection = await client.HijackAsync($"/exec/{execId}/start", null,
                    new JsonObject { ["Detach"] = false, ["Tty"] = t }, ct).ConfigureAwait(false);
                if (t && i) raw = RawTerminal.Enter();
                if (t && Libc.IsTerminal(1))
                {
                    resize = new ResizeMonitor((h, w) => client.PostAsync($"/exec/{execId}/resize",
                        new Query().Add("h", h.ToString(CultureInfo.InvariantCulture)).Add("w", w.ToString(CultureInfo.InvariantCulture)), CancellationToken.None));
                    await resize.SendAsync().ConfigureAwait(false);
                }
                bool detached = await AttachSession.PumpAsync(connection, t, i, t && i ? keys : null).ConfigureAwait(false);
                raw?.Restore();
                if (detached) return 0;
            }
            finally
            {
                resize?.Dispose();
                raw?.Dispose();
            }
            // The exit code is recorded just after the stream ends; ask until the exec is no longer running.
            for (int attempt = 0; ; attempt++)
            {
                JsonNode? inspect = await client.GetJsonAsync($"/exec/{execId}/json", ct: ct).ConfigureAwait(false);
                if (inspect?["Running"]?.GetValue<bool>() != true || attempt >= 100)
                    return (int)(inspect?["ExitCode"]?.GetValue<long?>() ?? 0);
                await Task.Delay(20, ct).ConfigureAwait(false);
            }
        });
        return command;
    }
}
