using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Berth.Cli.Client;
using Berth.Cli.Interop;
using Berth.Cli.Terminal;
using Berth.Images.References;
using Berth.Images.Registry;

namespace Berth.Cli.Commands;

/// <summary>Docker's container commands, top-level and under <c>berth container …</c>.</summary>
internal static partial class ContainerCommands
{
    /// <summary>The top-level container commands by name, each built only when invoked (see <see cref="Program"/>).</summary>
    public static IEnumerable<(string Name, Func<Command> Build)> TopLevel() =>
    [
        ("run", Run), ("create", Create), ("start", Start), ("stop", Stop), ("restart", Restart), ("kill", Kill),
        ("rm", () => Rm("rm")), ("ps", () => Ps("ps")), ("logs", Logs), ("exec", Exec), ("attach", Attach),
        ("inspect", () => InspectCommand.Create()), ("wait", Wait), ("rename", Rename), ("pause", Pause), ("unpause", Unpause),
        ("top", Top), ("stats", Stats), ("cp", Cp), ("port", Port), ("export", Export), ("update", Update), ("commit", Commit),
        ("diff", Diff),
    ];

    public static Command ContainerGroup()
    {
        var group = new Command("container", "Manage containers")
        {
            Run(), Create(), Start(), Stop(), Restart(), Kill(), Rm("rm", "remove"), Ps("ls", "list", "ps"), Logs(), Exec(), Attach(),
            InspectCommand.Create("container"), Wait(), Rename(), Pause(), Unpause(), Top(), Stats(), Cp(), Port(), Export(), Update(), Commit(), Diff(), Prune(),
        };
        return group;
    }

    private static Argument<string> ImageArgument() => new("IMAGE");

    private static Argument<string[]> CommandArgument() => new("COMMAND") { Arity = ArgumentArity.ZeroOrMore };

    /// <summary><c>docker create [OPTIONS] IMAGE [COMMAND] [ARG...]</c>: prints the new container's ID.</summary>
    private static Command Create()
    {
        var options = new ContainerOptions();
        var image = ImageArgument();
        var args = CommandArgument();
        var command = new Command("create", "Create a new container") { image, args };
        foreach (Option o in options.All) command.Options.Add(o);
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            JsonObject body;
            try
            {
                body = options.Build(parse, parse.GetValue(image)!, parse.GetValue(args) ?? [], detached: true, isRun: false);
            }
            catch (Exception e) when (e is UsageException or IOException)
            {
                throw Runner.ContainerFailure("create", e);
            }
            string id = await CreateAsync(client, parse, options, body, "create", ct).ConfigureAwait(false);
            Console.Out.WriteLine(id);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// <c>POST /containers/create</c>; when the image is missing, docker's "Unable to find image"
    /// line, a pull (progress on stderr) and a second try. Failures end the command as docker run's do (125).
    /// </summary>
    internal static async Task<string> CreateAsync(DaemonClient client, ParseResult parse, ContainerOptions options, JsonObject body, string commandName, CancellationToken ct)
    {
        string image = body["Image"]!.GetValue<string>();
        ImageReference reference;
        try
        {
            reference = ImageReference.ParseNormalized(image);
        }
        catch (Exception e)
        {
            throw Runner.ContainerFailure(commandName, e);
        }
        string pullPolicy = parse.GetValue(options.Pull) ?? "missing";
        if (pullPolicy is not ("always" or "missing" or "never"))
            throw Runner.ContainerFailure(commandName, new UsageException($"invalid pull option: '{pullPolicy}': must be one of \"always\", \"missing\" or \"never\""));
        var query = new Query().Add("name", parse.GetValue(options.Name)).Add("platform", parse.GetValue(options.Platform));
        bool quiet = parse.GetValue(options.Quiet);
        // --cidfile, as docker's client: made (and refused if it exists) before the create, the ID
        // written after it, removed when the create fails.
        string? cidFile = parse.GetValue(options.CidFile);
        FileStream? cid = null;
        if (!string.IsNullOrEmpty(cidFile))
        {
            try
            {
                cid = new FileStream(cidFile, FileMode.CreateNew, FileAccess.Write);
            }
            catch (IOException) when (File.Exists(cidFile))
            {
                throw Runner.ContainerFailure(commandName, new UsageException($"Container ID file found, make sure the other container isn't running or delete {cidFile}"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw Runner.ContainerFailure(commandName, new UsageException($"failed to create the container ID file: {e.Message}"));
            }
        }
        bool created = false;
        try
        {
            Dictionary<string, RegistryCredential> apiSocketCredentials = parse.GetValue(options.UseApiSocket) ? ApiSocket.Prepare(client, body) : [];
            if (pullPolicy == "always")
                await ImageCommands.PullAsync(client, reference.WithDefaultTag(), parse.GetValue(options.Platform), quiet ? TextWriter.Null : Console.Error, Libc.IsTerminal(2) && !quiet, ct).ConfigureAwait(false);
            JsonNode? answer;
            try
            {
                answer = await client.PostJsonAsync("/containers/create", query, body, ct).ConfigureAwait(false);
            }
            catch (DaemonException e) when (e.Status == HttpStatusCode.NotFound && pullPolicy == "missing")
            {
                ImageReference tagged = reference.WithDefaultTag();
                Console.Error.WriteLine($"Unable to find image '{tagged.FamiliarName}' locally");
                await ImageCommands.PullAsync(client, tagged, parse.GetValue(options.Platform), quiet ? TextWriter.Null : Console.Error, Libc.IsTerminal(2) && !quiet, ct).ConfigureAwait(false);
                answer = await client.PostJsonAsync("/containers/create", query, body, ct).ConfigureAwait(false);
            }
            foreach (string w in ImageCommands.Strings(answer?["Warnings"])) Console.Error.WriteLine($"WARNING: {w}");
            string id = answer?["Id"]?.GetValue<string>() ?? throw new IOException("the daemon's create answer has no Id");
            if (apiSocketCredentials.Count > 0)
            {
                try
                {
                    await ApiSocket.CopyConfigAsync(client, id, apiSocketCredentials, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Not left behind half made: a container that would run without the credentials it was given.
                    string removal = "";
                    try
                    {
                        using HttpResponseMessage _ = await client.SendAsync(HttpMethod.Delete, $"/containers/{id}", new Query().Add("force", true), ct: CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (Exception removeError)
                    {
                        removal = $" (and removing container {id} failed: {removeError.Message})";
                    }
                    throw new IOException($"injecting docker config.json into container failed: {e.Message}{removal}", e);
                }
            }
            if (cid is not null)
            {
                cid.Write(System.Text.Encoding.UTF8.GetBytes(id));
                cid.Dispose();
            }
            created = true;
            return id;
        }
        catch (ExitException)
        {
            throw;
        }
        catch (Exception e)
        {
            throw Runner.ContainerFailure(commandName, e);
        }
        finally
        {
            cid?.Dispose();
            if (!created && cid is not null) File.Delete(cidFile!);
        }
    }

    /// <summary>docker's mapping of a start failure: 127 when the command is not found, 126 when it cannot be invoked, else 125.</summary>
    internal static int StartFailureCode(string message)
    {
        if (message.Contains("executable file not found", StringComparison.Ordinal) || message.Contains("no such file or directory", StringComparison.Ordinal)
            || message.Contains("system cannot find the file specified", StringComparison.Ordinal))
            return 127;
        if (message.Contains("permission denied", StringComparison.Ordinal) || message.Contains("is a directory", StringComparison.Ordinal))
            return 126;
        return Program.UsageOrEngineError;
    }

    /// <summary>
    /// <c>docker run</c>: create (pulling a missing image), then with -d start and print the ID;
    /// otherwise attach (hijacked), wait (<c>next-exit</c>, or <c>removed</c> with --rm where the
    /// daemon removes), start, copy the streams, and exit with the container's status.
    /// </summary>
    private static Command Run()
    {
        var options = new ContainerOptions();
        var image = ImageArgument();
        var args = CommandArgument();
        var detach = new Option<bool>("--detach", "-d") { Description = "run container in background and print container ID" };
        var detachKeys = new Option<string?>("--detach-keys") { Description = "override the key sequence for detaching a container" };
        var sigProxy = new Option<bool>("--sig-proxy") { Description = "proxy received signals to the process", DefaultValueFactory = _ => true };
        var command = new Command("run", "Create and run a new container from an image") { image, args, detach, detachKeys, sigProxy };
        foreach (Option o in options.All) command.Options.Add(o);
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            bool d = parse.GetValue(detach), tty = parse.GetValue(options.Tty), interactive = parse.GetValue(options.Interactive);
            JsonObject body;
            byte[] keys;
            try
            {
                body = options.Build(parse, parse.GetValue(image)!, parse.GetValue(args) ?? [], d, isRun: true);
                keys = AttachSession.ParseDetachKeys(parse.GetValue(detachKeys));
            }
            catch (Exception e) when (e is UsageException or IOException)
            {
                throw Runner.ContainerFailure("run", e);
            }
            if (tty && interactive && !d && !Libc.IsTerminal(0))
            {
                Console.Error.WriteLine("the input device is not a TTY");
                return 1;
            }
            // The size at creation (API 1.42+), so the first output is laid out right before the first resize.
            if (tty && !d && Libc.WindowSize(1) is { } ws && body["HostConfig"] is JsonObject hc)
                hc["ConsoleSize"] = new JsonArray(ws.Rows, ws.Cols);
            string id = await CreateAsync(client, parse, options, body, "run", ct).ConfigureAwait(false);
            if (d)
            {
                await StartOrFailAsync(client, id, "run", ct).ConfigureAwait(false);
                Console.Out.WriteLine(id);
                return 0;
            }
            return await AttachStartWaitAsync(client, id, body, tty, parse.GetValue(options.Rm), keys,
                parse.GetValue(sigProxy) && !tty, parse.GetValue(detachKeys), "run", ct).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task StartOrFailAsync(DaemonClient client, string id, string commandName, CancellationToken ct)
    {
        try
        {
            await client.PostAsync($"/containers/{id}/start", ct: ct).ConfigureAwait(false);
        }
        catch (DaemonException e)
        {
            throw Runner.ContainerFailure(commandName, e, StartFailureCode(e.Message));
        }
    }

    /// <summary>The attached half of run (and start -a): returns the container's exit status.</summary>
    internal static async Task<int> AttachStartWaitAsync(DaemonClient client, string id, JsonObject config, bool tty, bool autoRemove,
        byte[] keys, bool sigProxy, string? detachKeysText, string commandName, CancellationToken ct, bool start = true)
    {
        bool stdin = config["AttachStdin"]?.GetValue<bool>() ?? false;
        bool stdout = config["AttachStdout"]?.GetValue<bool>() ?? false;
        bool stderr = config["AttachStderr"]?.GetValue<bool>() ?? false;
        // The wait is registered before start, so a container that exits at once is not missed.
        // It goes out together with the attach (both only need to be in place before start).
        var waitQuery = new Query().Add("condition", autoRemove ? "removed" : "next-exit");
        Task<HttpResponseMessage> wait = client.SendAsync(HttpMethod.Post, $"/containers/{id}/wait", waitQuery, ct: ct, completion: HttpCompletionOption.ResponseHeadersRead);
        HijackedConnection? connection = null;
        if (stdin || stdout || stderr)
        {
            var query = new Query().Add("stream", true).Add("stdin", stdin).Add("stdout", stdout).Add("stderr", stderr).Add("detachKeys", detachKeysText);
            try
            {
                connection = await client.HijackAsync($"/containers/{id}/attach", query, null, ct).ConfigureAwait(false);
            }
            catch
            {
                _ = wait.ContinueWith(t => t.Exception, TaskScheduler.Default); // observed: the attach's error is the one reported
                throw;
            }
        }
        using HijackedConnection? owned = connection;
        await Task.WhenAny(wait, Task.Delay(2000, ct)).ConfigureAwait(false);
        if (wait.IsFaulted) await wait.ConfigureAwait(false);

        RawTerminal? raw = null;
        ResizeMonitor? resize = null;
        var signals = new List<PosixSignalRegistration>();
        try
        {
            if (tty && stdin) raw = RawTerminal.Enter();
            if (start)
            {
                try
                {
                    await client.PostAsync($"/containers/{id}/start", ct: ct).ConfigureAwait(false);
                }
                catch (DaemonException e)
                {
                    raw?.Restore();
                    throw Runner.ContainerFailure(commandName, e, StartFailureCode(e.Message));
                }
            }
            if (tty && Libc.IsTerminal(1))
            {
                resize = new ResizeMonitor((h, w) => client.PostAsync($"/containers/{id}/resize", new Query().Add("h", h.ToString(System.Globalization.CultureInfo.InvariantCulture)).Add("w", w.ToString(System.Globalization.CultureInfo.InvariantCulture)), CancellationToken.None));
                await resize.SendAsync().ConfigureAwait(false);
            }
            if (sigProxy)
                foreach (var (signal, name) in new[] { (PosixSignal.SIGINT, "SIGINT"), (PosixSignal.SIGTERM, "SIGTERM"), (PosixSignal.SIGHUP, "SIGHUP"), (PosixSignal.SIGQUIT, "SIGQUIT") })
                    signals.Add(PosixSignalRegistration.Create(signal, c =>
                    {
                        c.Cancel = true;
                        _ = client.PostAsync($"/containers/{id}/kill", new Query().Add("signal", name), CancellationToken.None);
                    }));

            if (connection is not null)
            {
                bool detached = await AttachSession.PumpAsync(connection, tty, stdin, tty && stdin ? keys : null).ConfigureAwait(false);
                if (detached)
                {
                    raw?.Restore();
                    return 0;
                }
            }
            raw?.Restore();
            using HttpResponseMessage response = await wait.ConfigureAwait(false);
            JsonNode? status = await DaemonClient.ReadJsonAsync(response, ct).ConfigureAwait(false);
            if (status?["Error"]?["Message"]?.GetValue<string>() is { Length: > 0 } error)
            {
                Console.Error.WriteLine($"berth: Error response from daemon: {error}");
                return Program.UsageOrEngineError;
            }
            return (int)(status?["StatusCode"]?.GetValue<long>() ?? 0);
        }
        finally
        {
            foreach (PosixSignalRegistration s in signals) s.Dispose();
            resize?.Dispose();
            raw?.Dispose();
        }
    }

    /// <summary><c>docker start [-a] [-i] [--detach-keys] CONTAINER...</c>.</summary>
    private static Command Start()
    {
        var containers = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.OneOrMore };
        var attach = new Option<bool>("--attach", "-a") { Description = "attach STDOUT/STDERR and forward signals" };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "attach container's STDIN" };
        var detachKeys = new Option<string?>("--detach-keys") { Description = "override the key sequence for detaching a container" };
        var command = new Command("start", "Start one or more stopped containers") { containers, attach, interactive, detachKeys };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            string[] names = parse.GetValue(containers)!;
            bool a = parse.GetValue(attach), i = parse.GetValue(interactive);
            if (a || i)
            {
                if (names.Length > 1) throw new UsageException("you cannot start and attach multiple containers at once");
                JsonNode? inspect = await client.GetJsonAsync($"/containers/{names[0]}/json", ct: ct).ConfigureAwait(false);
                string id = inspect?["Id"]?.GetValue<string>() ?? names[0];
                bool tty = inspect?["Config"]?["Tty"]?.GetValue<bool>() ?? false;
                bool openStdin = i && (inspect?["Config"]?["OpenStdin"]?.GetValue<bool>() ?? false);
                var config = new JsonObject { ["AttachStdin"] = openStdin, ["AttachStdout"] = true, ["AttachStderr"] = true };
                bool autoRemove = inspect?["HostConfig"]?["AutoRemove"]?.GetValue<bool>() ?? false;
                return await AttachStartWaitAsync(client, id, config, tty, autoRemove, AttachSession.ParseDetachKeys(parse.GetValue(detachKeys)),
                    !tty, parse.GetValue(detachKeys), "start", ct).ConfigureAwait(false);
            }
            int code = await Runner.ForEachAsync(names, async name =>
            {
                await client.PostAsync($"/containers/{name}/start", ct: ct).ConfigureAwait(false);
                return name;
            }).ConfigureAwait(false);
            if (code != 0) Console.Error.WriteLine("Error: failed to start containers: " + string.Join(", ", names));
            return code;
        });
        return command;
    }

    /// <summary><c>docker attach [--no-stdin] [--detach-keys] [--sig-proxy] CONTAINER</c>.</summary>
    private static Command Attach()
    {
        var container = new Argument<string>("CONTAINER");
        var noStdin = new Option<bool>("--no-stdin") { Description = "do not attach STDIN" };
        var detachKeys = new Option<string?>("--detach-keys") { Description = "override the key sequence for detaching a container" };
        var sigProxy = new Option<bool>("--sig-proxy") { Description = "proxy all received signals to the process", DefaultValueFactory = _ => true };
        var command = new Command("attach", "Attach local standard input, output, and error streams to a running container") { container, noStdin, detachKeys, sigProxy };
        Runner.SetClientAction(command, async (parse, client, ct) =>
        {
            JsonNode? inspect = await client.GetJsonAsync($"/containers/{parse.GetValue(container)}/json", ct: ct).ConfigureAwait(false);
            string id = inspect?["Id"]?.GetValue<string>() ?? parse.GetValue(container)!;
            if (inspect?["State"]?["Running"]?.GetValue<bool>() != true) throw Runner.Fail("You cannot attach to a stopped container, start it first");
            if (inspect?["State"]?["Paused"]?.GetValue<bool>() == true) throw Runner.Fail("You cannot attach to a paused container, unpause it first");
            bool tty = inspect?["Config"]?["Tty"]?.GetValue<bool>() ?? false;
            bool stdin = !parse.GetValue(noStdin) && (inspect?["Config"]?["OpenStdin"]?.GetValue<bool>() ?? false);
            if (stdin && tty && !Libc.IsTerminal(0))
            {
                Console.Error.WriteLine("the input device is not a TTY");
                return 1;
            }
            var config = new JsonObject { ["AttachStdin"] = stdin, ["AttachStdout"] = true, ["AttachStderr"] = true };
            bool autoRemove = inspect?["HostConfig"]?["AutoRemove"]?.GetValue<bool>() ?? false;
            return await AttachStartWaitAsync(client, id, config, tty, autoRemove, AttachSession.ParseDetachKeys(parse.GetValue(detachKeys)),
                parse.GetValue(sigProxy) && !tty, parse.GetValue(detachKeys), "attach", ct, start: false).ConfigureAwait(false);
        });
        return command;
    }
}
