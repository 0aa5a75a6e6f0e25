using Berth.Builder.Cache;
using Berth.Builder.Context;
using Berth.Builder.Dockerfile;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Engine;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Store;

namespace Berth.Builder;

/// <summary>
/// Builds an image from a Dockerfile the way Docker's classic builder does: stage by stage, one
/// image per instruction, each step looked up in the <see cref="BuildCache"/> first. RUN steps run
/// in containers of the engine (<see cref="IBuildBackend"/>); COPY and ADD write into a snapshot
/// of the parent image mounted here, and the snapshot becomes the new layer; the other
/// instructions change only the config. Progress is Docker's classic <c>Step N/M : …</c> text.
/// </summary>
public sealed partial class ImageBuilder
{
    private readonly ImageStore _store;
    private readonly BuildCache _cache;
    private readonly IBuildBackend _backend;
    private readonly string _temp;
    private readonly TimeProvider _time;

    public ImageBuilder(ImageStore store, BuildCache cache, IBuildBackend backend, string tempDirectory, TimeProvider? time = null)
    {
        _store = store;
        _cache = cache;
        _backend = backend;
        _temp = Path.GetFullPath(tempDirectory);
        _time = time ?? TimeProvider.System;
        Directory.CreateDirectory(_temp);
    }

    /// <summary>The build args every RUN sees without an ARG, as Docker (they stay out of the image's history and the cache key).</summary>
    public static readonly IReadOnlySet<string> PredefinedArgs = new HashSet<string>(StringComparer.Ordinal)
    {
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
    };

    /// <summary>One stage's evolving state: the image so far and its config.</summary>
    private sealed class StageState(int index, string? name)
    {
        public int Index { get; } = index;
        public string? Name { get; } = name;
        public Image? Image { get; set; }
        public ContainerConfig Config { get; set; } = new();
        public Dictionary<string, string?> Args { get; } = new(StringComparer.Ordinal);
        public bool CmdSet { get; set; }
        public string? Maintainer { get; set; }
        public string ParentId => Image?.Id.Value ?? "scratch";
    }

    private sealed class BuildRun(BuildContext context, BuildOptions options, IBuildOutput output, ShellLex lex, string emptyDirectory)
    {
        public BuildContext Context { get; } = context;
        public BuildOptions Options { get; } = options;
        public IBuildOutput Output { get; } = output;
        public ShellLex Lex { get; } = lex;
        public string EmptyDirectory { get; } = emptyDirectory;
        public HashSet<string> ConsumedArgs { get; } = new(StringComparer.Ordinal);
        public List<StageState> Stages { get; } = [];
        public int Step { get; set; }
        public int TotalSteps { get; set; }

        /// <summary>The containers the current step made, in order, until they are removed.</summary>
        public List<string> StepContainers { get; } = [];

        /// <summary>The images of <c>--cache-from</c> that were found (null without the option): the only cache of this build.</summary>
        public List<Image>? CacheSources { get; set; }
    }

    public async Task<BuildResult> BuildAsync(BuildContext context, BuildOptions options, IBuildOutput output, CancellationToken cancellationToken)
    {
        DockerfileDocument document;
        try
        {
            document = DockerfileParser.Parse(context.DockerfileText, Path.GetFileName(options.Dockerfile));
        }
        catch (DockerfileException e)
        {
            throw new BuildException(BuildErrorKind.InvalidArgument, e.Message, e);
        }
        List<ImageReference> tags = ParseTags(options.Tags);

        int targetIndex = document.Stages.Count - 1;
        if (options.Target is { Length: > 0 } target)
            targetIndex = (document.FindStage(target) ?? throw new BuildException(BuildErrorKind.InvalidArgument, $"failed to reach build target {target} in Dockerfile")).Index;
        List<BuildStage> stages = document.Stages.Take(targetIndex + 1).ToList();

        // --label: LABEL steps at the end of the target stage, one per label in key order, as the
        // classic builder adds them ("LABEL key=value", as given: no quoting, no expansion).
        List<Instruction> labelSteps = options.Labels.OrderBy(l => l.Key, StringComparer.Ordinal)
            .Select(l => (Instruction)new LabelInstruction([l]) { Line = 0, Original = $"LABEL {l.Key}={l.Value}", Verbatim = true })
            .ToList();

        string empty = Path.Combine(_temp, "empty-" + Guid.NewGuid().ToString("N")[..16]);
        Directory.CreateDirectory(empty);
        try
        {
            var run = new BuildRun(context, options, output, new ShellLex(document.EscapeToken), empty)
            {
                // As dockerd 20.10 counts them: the ARGs before the first FROM are steps too.
                TotalSteps = document.MetaArgs.Count + stages.Sum(s => 1 + s.Instructions.Count) + labelSteps.Count,
            };
            run.CacheSources = ResolveCacheSources(options.CacheFrom);
            Dictionary<string, string?> metaArgs = MetaArgs(document, run);
            foreach (BuildStage stage in stages)
            {
                StageState state = await FromAsync(run, stage, metaArgs, document, cancellationToken);
                IEnumerable<Instruction> steps = stage.Index == targetIndex ? stage.Instructions.Concat(labelSteps) : stage.Instructions;
                foreach (Instruction instruction in steps)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    run.Step++;
                    WriteStepLine(output, run, instruction);
                    await DispatchStepAsync(run, state, instruction, cancellationToken);
                    output.Write($" ---> {Short(state.Image!.Id)}\n");
                }
                run.Stages.Add(state);
                if (state.Image is { } built) output.StageBuilt(built.Id);
            }

            StageState final = run.Stages[^1];
            // A FROM-only final stage on scratch has no image at all: commit its (empty) config.
            Image image = final.Image ?? await CommitConfigAsync(run, final, final.Config, "#(nop) FROM scratch", cancellationToken);
            if (final.Image is null) output.StageBuilt(image.Id);
            var unused = options.BuildArgs.Keys.Where(k => !run.ConsumedArgs.Contains(k) && !PredefinedArgs.Contains(k)).Order(StringComparer.Ordinal).ToList();
            if (unused.Count > 0) output.Write($"[Warning] One or more build-args [{string.Join(' ', unused)}] were not consumed\n");

            output.Write($"Successfully built {Short(image.Id)}\n");
            if (tags.Count == 0) _store.KeepUntagged(image.Target);
            foreach (ImageReference tag in tags)
            {
                _store.SetReference(tag, image.Target);
                output.Write($"Successfully tagged {tag.FamiliarName}\n");
            }
            return new BuildResult(image, tags.Select(t => t.FamiliarName).ToList());
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }

    private static List<ImageReference> ParseTags(IReadOnlyList<string> tags)
    {
        var result = new List<ImageReference>();
        foreach (string tag in tags)
        {
            try
            {
                ImageReference r = ImageReference.ParseNormalized(tag);
                if (r.Digest is not null) throw new BuildException(BuildErrorKind.InvalidArgument, $"invalid tag `{tag}`: a build cannot be tagged with a digest");
                result.Add(r.Tag is null ? r.WithDefaultTag() : r);
            }
            catch (ImagesException e)
            {
                throw new BuildException(BuildErrorKind.InvalidArgument, $"invalid tag `{tag}`: {e.Message}");
            }
        }
        return result;
    }

    /// <summary>
    /// The ARGs before the first FROM, with --build-arg values; only FROM lines see them. Each is a step
    /// of its own in the output ("Step 1/N : ARG …", no image line after it), as dockerd's classic builder prints them.
    /// </summary>
    private static Dictionary<string, string?> MetaArgs(DockerfileDocument document, BuildRun run)
    {
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (ArgInstruction arg in document.MetaArgs)
        {
            run.Step++;
            WriteStepLine(run.Output, run, arg);
            var expanded = (ArgInstruction)Expand(run, arg, name => values.GetValueOrDefault(name));
            foreach (ArgDefinition def in expanded.Args)
            {
                if (run.Options.BuildArgs.TryGetValue(def.Name, out string? given) && given is not null)
                {
                    values[def.Name] = given;
                    run.ConsumedArgs.Add(def.Name);
                }
                else
                {
                    values[def.Name] = def.Default;
                }
            }
        }
        return values;
    }

    private async Task<StageState> FromAsync(BuildRun run, BuildStage stage, Dictionary<string, string?> metaArgs, DockerfileDocument document, CancellationToken cancellationToken)
    {
        run.Step++;
        var from = (FromInstruction)Expand(run, stage.From, name => metaArgs.GetValueOrDefault(name));
        WriteStepLine(run.Output, run, stage.From);
        var state = new StageState(stage.Index, stage.Name);
        if (string.IsNullOrWhiteSpace(from.Image))
            throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(stage.From)}: FROM names no image (after variable expansion)");

        if (string.Equals(from.Image, "scratch", StringComparison.OrdinalIgnoreCase))
        {
            state.Config = WithDefaultPath(state.Config);
            run.Output.Write(" ---> \n");
            return state;
        }
        if (run.Stages.FirstOrDefault(s => s.Name is not null && string.Equals(s.Name, from.Image, StringComparison.OrdinalIgnoreCase)) is { } earlier)
        {
            state.Image = earlier.Image;
            state.Config = earlier.Image?.Config.Config ?? earlier.Config;
        }
        else
        {
            Platform? platform = run.Options.Platform;
            if (from.Platform is { Length: > 0 } p)
            {
                try
                {
                    platform = PlatformMatcher.Parse(p);
                }
                catch (ImagesException e)
                {
                    throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(stage.From)}: {e.Message}");
                }
            }
            state.Image = await _backend.ResolveImageAsync(from.Image, run.Options.Pull, platform, run.Output, cancellationToken);
            // A single-platform image is whatever it is: asking for another platform is an error
            // (docker: "does not match the specified platform"), not a silent substitution.
            if (platform is not null && !PlatformMatcher.Matches(platform, state.Image.Config.Platform))
                throw new BuildException(BuildErrorKind.InvalidArgument,
                    $"{Where(stage.From)}: image {from.Image} was found but does not match the specified platform: wanted {PlatformMatcher.Normalize(platform)}, actual: {PlatformMatcher.Normalize(state.Image.Config.Platform)}");
            state.Config = state.Image.Config.Config ?? new ContainerConfig();
        }
        state.Config = WithDefaultPath(state.Config);

        // ONBUILD triggers of the base run now, then are cleared from the new image's config. As the
        // classic builder, the step's " ---> ID" line comes once, after them: the image they made.
        if (state.Config.OnBuild is { Count: > 0 } triggers)
        {
            IReadOnlyList<Instruction> parsed;
            try
            {
                parsed = DockerfileParser.ParseTriggers(triggers);
            }
            catch (DockerfileException e)
            {
                throw new BuildException(BuildErrorKind.InvalidArgument, $"ONBUILD trigger of {from.Image}: {e.Message}", e);
            }
            run.Output.Write($"# Executing {parsed.Count} build trigger{(parsed.Count == 1 ? "" : "s")}");
            run.Output.Write("\n");
            state.Config = state.Config with { OnBuild = null };
            foreach (Instruction trigger in parsed) await DispatchStepAsync(run, state, trigger, cancellationToken);
        }
        else if (state.Config.OnBuild is not null)
        {
            state.Config = state.Config with { OnBuild = null };
        }
        run.Output.Write($" ---> {(state.Image is null ? "" : Short(state.Image.Id))}\n");
        return state;
    }

    /// <summary>
    /// One instruction, then its containers removed as dockerd's dispatch does: after a step that worked
    /// with --rm (the default), whatever happened with --force-rm; a failed step's container stays
    /// otherwise, for its user to look into. A cancelled build (its client gone) leaves none.
    /// </summary>
    private async Task DispatchStepAsync(BuildRun run, StageState state, Instruction instruction, CancellationToken cancellationToken)
    {
        bool worked = false;
        try
        {
            await DispatchAsync(run, state, instruction, cancellationToken);
            worked = true;
        }
        finally
        {
            if (run.Options.ForceRemove || (run.Options.Remove && worked) || cancellationToken.IsCancellationRequested)
                await RemoveStepContainersAsync(run);
            run.StepContainers.Clear();
        }
    }

    /// <summary>dockerd's containerManager.RemoveAll: each removal said, a failure said and not fatal.</summary>
    private async Task RemoveStepContainersAsync(BuildRun run)
    {
        foreach (string id in run.StepContainers)
        {
            try
            {
                await _backend.RemoveContainerAsync(id);
                run.Output.Write($"Removing intermediate container {id[..12]}\n");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                run.Output.Write($"Error removing intermediate container {id[..12]}: {e.Message}\n");
            }
        }
    }

    /// <summary>"Step N/M : INSTRUCTION", its newline a message of its own, as the classic builder streams it.</summary>
    private static void WriteStepLine(IBuildOutput output, BuildRun run, Instruction instruction)
    {
        output.Write($"Step {run.Step}/{run.TotalSteps} : {instruction.Original}");
        output.Write("\n");
    }

    /// <summary>
    /// The classic builder's beginStage: a stage whose base sets no PATH gets the default one in its
    /// config, so the images its steps commit carry it (dockerd's builds of an imported or scratch base do).
    /// </summary>
    private static ContainerConfig WithDefaultPath(ContainerConfig config)
        => config.Env?.Any(e => e == "PATH" || e.StartsWith("PATH=", StringComparison.Ordinal)) == true
            ? config
            : config with { Env = [.. config.Env ?? [], Berth.Images.Engine.ImageSpecBuilder.DefaultPath] };

    private static string Where(Instruction i) => $"Dockerfile:{i.Line}";

    internal static string Short(Digest id) => id.Hex[..12];

}
