using System.Globalization;
using Berth.Builder.Cache;
using Berth.Builder.Dockerfile;
using Berth.Images.Content;
using Berth.Images.Engine;
using Berth.Images.Manifests;
using Berth.Images.Store;

namespace Berth.Builder;

public sealed partial class ImageBuilder
{
    private static readonly string[] DefaultShell = ["/bin/sh", "-c"];

    private async Task DispatchAsync(BuildRun run, StageState state, Instruction raw, CancellationToken cancellationToken)
    {
        Instruction instruction = Expand(run, raw, name => Lookup(state, name));
        ContainerConfig c = state.Config;
        switch (instruction)
        {
            case EnvInstruction env:
            {
                var vars = ParseEnv(c.Env);
                foreach ((string key, string value) in env.Variables)
                {
                    if (key.Length == 0) throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: ENV names must not be empty");
                    vars[key] = value;
                }
                await MetadataAsync(run, state, c with { Env = vars.Select(kv => $"{kv.Key}={kv.Value}").ToList() }, raw, instruction, cancellationToken);
                break;
            }
            case LabelInstruction label:
            {
                var labels = new Dictionary<string, string>(c.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal);
                foreach ((string key, string value) in label.Labels)
                {
                    if (key.Length == 0) throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: LABEL names must not be empty");
                    labels[key] = value;
                }
                await MetadataAsync(run, state, c with { Labels = labels }, raw, instruction, cancellationToken);
                break;
            }
            case WorkdirInstruction workdir:
            {
                string path = workdir.Path.Replace('\\', '/');
                if (path.Length == 0) throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: WORKDIR needs a path");
                string full = CleanAbsolute(path.StartsWith('/') ? path : (c.WorkingDir ?? "/") + "/" + path);
                await MetadataAsync(run, state, c with { WorkingDir = full }, raw, instruction, cancellationToken);
                break;
            }
            case UserInstruction user:
                if (user.User.Length == 0) throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: USER needs a user");
                await MetadataAsync(run, state, c with { User = user.User }, raw, instruction, cancellationToken);
                break;
            case ExposeInstruction expose:
            {
                var ports = new Dictionary<string, EmptyObject>(c.ExposedPorts ?? new Dictionary<string, EmptyObject>(), StringComparer.Ordinal);
                foreach (string port in expose.Ports.SelectMany(p => ExpandPorts(p, raw))) ports[port] = new EmptyObject();
                await MetadataAsync(run, state, c with { ExposedPorts = ports }, raw, instruction, cancellationToken);
                break;
            }
            case VolumeInstruction volume:
            {
                var volumes = new Dictionary<string, EmptyObject>(c.Volumes ?? new Dictionary<string, EmptyObject>(), StringComparer.Ordinal);
                foreach (string path in volume.Paths)
                {
                    if (path.Trim().Length == 0) throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: VOLUME specified can not be an empty string");
                    volumes[path.Trim()] = new EmptyObject();
                }
                await MetadataAsync(run, state, c with { Volumes = volumes }, raw, instruction, cancellationToken);
                break;
            }
            case StopsignalInstruction stop:
                // dockerd's dispatchStopSignal: refused at build, not when a container built from it stops.
                if (!Berth.Oci.Signals.IsValid(stop.Signal)) throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: Invalid signal: {stop.Signal}");
                await MetadataAsync(run, state, c with { StopSignal = stop.Signal }, raw, instruction, cancellationToken);
                break;
            case ShellInstruction shell:
                if (shell.Shell.Count == 0) throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: SHELL requires at least one argument");
                await MetadataAsync(run, state, c with { Shell = shell.Shell.ToList() }, raw, instruction, cancellationToken);
                break;
            case CmdInstruction cmd:
                state.CmdSet = true;
                await MetadataAsync(run, state, c with { Cmd = CommandOf(c, cmd.Command) }, raw, instruction, cancellationToken);
                break;
            case EntrypointInstruction entrypoint:
                // Docker: an ENTRYPOINT resets a CMD inherited from the base image (not one set in this stage).
                await MetadataAsync(run, state, c with { Entrypoint = CommandOf(c, entrypoint.Command), Cmd = state.CmdSet ? c.Cmd : null }, raw, instruction, cancellationToken);
                break;
            case HealthcheckInstruction health:
                await MetadataAsync(run, state, c with { Healthcheck = HealthOf(health) }, raw, instruction, cancellationToken);
                break;
            case OnbuildInstruction onbuild:
                await MetadataAsync(run, state, c with { OnBuild = [.. c.OnBuild ?? [], onbuild.TriggerText] }, raw, instruction, cancellationToken);
                break;
            case MaintainerInstruction maintainer:
                state.Maintainer = maintainer.Name;
                await MetadataAsync(run, state, c, raw, instruction, cancellationToken);
                break;
            case ArgInstruction arg:
                foreach (ArgDefinition def in arg.Args)
                {
                    if (run.Options.BuildArgs.TryGetValue(def.Name, out string? given) && given is not null)
                    {
                        state.Args[def.Name] = given;
                        run.ConsumedArgs.Add(def.Name);
                    }
                    else
                    {
                        state.Args[def.Name] = def.Default;
                    }
                }
                await MetadataAsync(run, state, c, raw, instruction, cancellationToken);
                break;
            case RunInstruction runStep:
                await RunAsync(run, state, runStep, raw, cancellationToken);
                break;
            case CopyInstruction copy:
                await CopyAsync(run, state, new CopySpec("COPY", copy.Sources, copy.Destination, copy.From, copy.Chown, copy.Chmod, copy.Heredocs, Extract: false), raw, cancellationToken);
                break;
            case AddInstruction add:
                await CopyAsync(run, state, new CopySpec("ADD", add.Sources, add.Destination, null, add.Chown, add.Chmod, add.Heredocs, Extract: true), raw, cancellationToken);
                break;
            case FromInstruction:
                throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: FROM cannot be a build trigger");
            default:
                throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: {raw.Keyword} is not supported by this builder");
        }
    }

    /// <summary>
    /// A config-only step: an image with the parent's layers and the new config (an empty_layer history
    /// entry). As dockerd's classic builder, a container is made for it (not started; " ---> Running in
    /// ID"), its Cmd the step's <c>#(nop)</c> comment, recorded as the image's container and
    /// container_config. A stage with no image yet (FROM scratch) has nothing to make one from.
    /// </summary>
    private async Task MetadataAsync(BuildRun run, StageState state, ContainerConfig config, Instruction raw, Instruction expanded, CancellationToken cancellationToken)
    {
        string text = OriginalText(expanded, raw);
        string createdBy = "/bin/sh -c #(nop)  " + text;
        string key = BuildCache.Key("metadata", state.ParentId, createdBy, ConfigKey(config), state.Maintainer ?? "");
        await StepAsync(run, state, key, createdBy, config, async () =>
        {
            ContainerConfig recorded = config with { Cmd = [.. DefaultShell, "#(nop) ", text] };
            string? container = null;
            if (state.Image is { } parent)
            {
                container = await _backend.CreateContainerAsync(parent, recorded, cancellationToken);
                StepContainerCreated(run, container);
            }
            return await CommitConfigAsync(run, state, config, createdBy, cancellationToken, container, recorded);
        });
    }

    private static void StepContainerCreated(BuildRun run, string id)
    {
        run.StepContainers.Add(id);
        run.Output.Write($" ---> Running in {id[..12]}\n");
    }

    private Task<Image> CommitConfigAsync(BuildRun run, StageState state, ContainerConfig config, string createdBy, CancellationToken cancellationToken,
        string? container = null, ContainerConfig? recorded = null)
        => _store.CommitAsync(run.EmptyDirectory, state.Image, new CommitOptions
        {
            ContainerConfig = config,
            RecordedContainerConfig = recorded,
            Container = container,
            CreatedBy = createdBy,
            Author = state.Maintainer,
            ExcludedPaths = [],
            MountPointDirectories = [],
            TimeProvider = _time,
        }, cancellationToken);

    /// <summary>
    /// Looks the step up in the cache (unless --no-cache; with --cache-from, in the source images, see
    /// <see cref="ProbeCacheSourcesAsync"/>), runs it on a miss, and moves the stage on to its image.
    /// <paramref name="createdBy"/> is the step's history line, <paramref name="config"/> the config its image gets.
    /// </summary>
    private async Task StepAsync(BuildRun run, StageState state, string key, string createdBy, ContainerConfig config, Func<Task<Image>> execute)
    {
        Image? image = run.Options.NoCache ? null
            : run.CacheSources is not null ? await ProbeCacheSourcesAsync(run, state, key, createdBy, config)
            : _cache.Lookup(key);
        if (image is not null)
        {
            run.Output.Write(" ---> Using cache\n");
            // A hit from a --cache-from source is remembered like a step that ran (it keeps the image from collection).
            if (run.CacheSources is not null) _cache.Store(key, image);
        }
        else
        {
            image = await execute();
            // dockerd's Parent: history names each step's image through it.
            if (state.Image is { } parent) _store.SetParent(image.Id, parent.Id);
            _cache.Store(key, image);
        }
        state.Image = image;
        state.Config = image.Config.Config ?? new ContainerConfig();
    }

    private async Task RunAsync(BuildRun run, StageState state, RunInstruction step, Instruction raw, CancellationToken cancellationToken)
    {
        if (state.Image is null)
            throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: RUN needs a base image with a shell; this stage is FROM scratch with nothing in it");
        ContainerConfig c = state.Config;
        List<(RunMount Mount, string Target)> mounts = ParseMounts(run, c, step, raw);
        IReadOnlyList<string> command = RunCommand(c, step);

        // The build args a RUN sees: declared ones (an ENV of the same name wins) are part of its
        // history line and cache key, as Docker writes "|N k=v ... cmd"; the proxy ones are not.
        Dictionary<string, string> env = ParseEnv(c.Env);
        var args = state.Args.Where(a => a.Value is not null && !env.ContainsKey(a.Key)).OrderBy(a => a.Key, StringComparer.Ordinal)
            .Select(a => $"{a.Key}={a.Value}").ToList();
        var proxies = run.Options.BuildArgs.Where(a => PredefinedArgs.Contains(a.Key) && a.Value is not null && !env.ContainsKey(a.Key) && !state.Args.ContainsKey(a.Key))
            .Select(a => $"{a.Key}={a.Value}").ToList();
        string createdBy = (args.Count > 0 ? $"|{args.Count} {string.Join(' ', args)} " : "") + string.Join(' ', command);
        var from = new Image?[mounts.Count];
        for (int i = 0; i < mounts.Count; i++)
            if (mounts[i].Mount.From is { } name)
                from[i] = await ResolveFromAsync(run, name, $"{Where(raw)}: --mount=from={name}", cancellationToken);
        string key = BuildCache.Key(["run", state.ParentId, createdBy, ConfigKey(c), step.Network ?? run.Options.NetworkMode ?? "",
            .. mounts.Select((m, i) => MountKey(run, m.Mount, m.Target, from[i]))]);
        // dockerd records the command with the build args it saw ("|N k=v … cmd") and no entrypoint.
        List<string> recordedCommand = args.Count > 0 ? ["|" + args.Count.ToString(CultureInfo.InvariantCulture), .. args, .. command] : [.. command];
        var request = new BuildRunRequest(state.Image, command, [.. c.Env ?? [], .. args, .. proxies], c.User, c.WorkingDir,
            step.Network ?? run.Options.NetworkMode, c, createdBy)
        {
            ExtraHosts = run.Options.ExtraHosts,
            ShmSize = run.Options.ShmSize,
            RecordedConfig = c with { Cmd = recordedCommand, Entrypoint = null },
        };
        await StepAsync(run, state, key, createdBy, c, async () =>
        {
            using var prepared = new PreparedMounts();
            for (int i = 0; i < mounts.Count; i++)
            {
                try
                {
                    prepared.Add(await PrepareMountAsync(run, mounts[i].Mount, mounts[i].Target, from[i], prepared, cancellationToken));
                }
                catch (BuildException e) when (mounts[i].Mount.From is { } name)
                {
                    throw new BuildException(e.Kind, $"{Where(raw)}: --mount=from={name}: {e.Message}", e);
                }
            }
            return await _backend.RunAsync(request with { Mounts = prepared.Mounts }, run.Output, id => StepContainerCreated(run, id), cancellationToken);
        });
    }

    /// <summary>The argv of a RUN: exec form as written; shell form through SHELL; a heredoc script given to the shell.</summary>
    private static IReadOnlyList<string> RunCommand(ContainerConfig c, RunInstruction step)
    {
        IReadOnlyList<string> shell = c.Shell is { Count: > 0 } s ? s : DefaultShell;
        if (!step.Command.IsShellForm) return step.Command.Args;
        string text = step.Command.Args.Count > 0 ? step.Command.Args[0] : "";
        if (step.Heredocs.Count == 0) return [.. shell, text];
        // `RUN <<EOF` alone: the heredoc is the script. Otherwise the shell gets the command line
        // followed by the here-documents, which POSIX sh reads natively (quoting kept).
        if (step.Heredocs.Count == 1 && IsBareHeredoc(text)) return [.. shell, step.Heredocs[0].Content];
        var script = new System.Text.StringBuilder(text).Append('\n');
        foreach (Heredoc h in step.Heredocs)
        {
            script.Append(h.Content);
            if (!h.Content.EndsWith('\n')) script.Append('\n');
            script.Append(h.Name).Append('\n');
        }
        return [.. shell, script.ToString()];
    }

    private static bool IsBareHeredoc(string text)
    {
        string t = text.Trim();
        if (!t.StartsWith("<<", StringComparison.Ordinal)) return false;
        return !t[2..].TrimStart('-').Trim('"', '\'').Any(char.IsWhiteSpace);
    }

    private static List<string> CommandOf(ContainerConfig c, CommandLine command)
        => command.IsShellForm ? [.. c.Shell is { Count: > 0 } s ? s : DefaultShell, command.Args.Count > 0 ? command.Args[0] : ""] : command.Args.ToList();

    /// <summary>HEALTHCHECK as Docker writes it in the image config (also for <c>docker import --change</c>).</summary>
    public static HealthConfig HealthOf(HealthcheckInstruction h)
    {
        if (h.Test is null) return new HealthConfig { Test = ["NONE"] };
        List<string> test = h.Test.IsShellForm ? ["CMD-SHELL", h.Test.Args.Count > 0 ? h.Test.Args[0] : ""] : ["CMD", .. h.Test.Args];
        static long Ns(TimeSpan? t) => t is { } v ? v.Ticks * 100 : 0;
        return new HealthConfig
        {
            Test = test,
            Interval = Ns(h.Interval),
            Timeout = Ns(h.Timeout),
            StartPeriod = Ns(h.StartPeriod),
            StartInterval = Ns(h.StartInterval),
            Retries = h.Retries ?? 0,
        };
    }

    private static IEnumerable<string> ExpandPorts(string spec, Instruction raw)
    {
        string text = spec.Trim();
        string proto = "tcp";
        int slash = text.IndexOf('/');
        if (slash >= 0)
        {
            proto = text[(slash + 1)..].ToLowerInvariant();
            text = text[..slash];
            if (proto is not ("tcp" or "udp" or "sctp")) throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: invalid proto `{proto}` in EXPOSE {spec}");
        }
        string[] range = text.Split('-');
        if (range.Length > 2 || !ushort.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out ushort first)
            || (range.Length == 2 && !ushort.TryParse(range[1], NumberStyles.None, CultureInfo.InvariantCulture, out _)))
            throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: invalid port `{spec}` in EXPOSE");
        ushort last = range.Length == 2 ? ushort.Parse(range[1], CultureInfo.InvariantCulture) : first;
        if (last < first) throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: invalid port range `{spec}` in EXPOSE");
        for (int p = first; p <= last; p++) yield return $"{p}/{proto}";
    }

    private static Instruction Expand(BuildRun run, Instruction instruction, Func<string, string?> lookup)
    {
        try
        {
            return InstructionExpander.Expand(instruction, run.Lex, lookup);
        }
        catch (Exception e) when (e is DockerfileException or ArgumentException)
        {
            throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(instruction)}: {e.Message}", e);
        }
    }

    /// <summary>Variables as a stage's instructions see them: ENV wins over ARG of the same name.</summary>
    private static string? Lookup(StageState state, string name)
    {
        foreach (string e in state.Config.Env ?? [])
        {
            int eq = e.IndexOf('=');
            if (eq == name.Length && e.StartsWith(name, StringComparison.Ordinal)) return e[(eq + 1)..];
        }
        return state.Args.GetValueOrDefault(name);
    }

    private static Dictionary<string, string> ParseEnv(IReadOnlyList<string>? env)
    {
        // Insertion order is kept by Dictionary as long as nothing is removed: ENV order is preserved.
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string e in env ?? [])
        {
            int eq = e.IndexOf('=');
            if (eq < 0) result[e] = "";
            else result[e[..eq]] = e[(eq + 1)..];
        }
        return result;
    }

    private static string OriginalText(Instruction expanded, Instruction raw)
    {
        // History shows the instruction as written, its keyword upper-case; the cache key adds the
        // expanded config, so a changed ARG value used by ENV still misses.
        string text = raw.Original.Trim();
        int space = text.IndexOfAny([' ', '\t']);
        return space < 0 ? raw.Keyword : raw.Keyword + text[space..];
    }

    private static string ConfigKey(ContainerConfig config)
        => System.Text.Encoding.UTF8.GetString(ManifestParser.Serialize(new ImageConfig { Config = config }));

    private static string CleanAbsolute(string path)
    {
        var parts = new List<string>();
        foreach (string part in path.Split('/'))
        {
            if (part is "" or ".") continue;
            if (part == "..")
            {
                if (parts.Count > 0) parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(part);
        }
        return "/" + string.Join('/', parts);
    }
}
