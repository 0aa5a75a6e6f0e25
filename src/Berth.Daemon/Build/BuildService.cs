using System.Text;
using Berth.Builder;
using Berth.Builder.Cache;
using Berth.Builder.Context;
using Berth.Daemon.Api;
using Berth.Daemon.Containers;
using Berth.Daemon.Engine;
using Berth.Daemon.Monitor;
using Berth.Images;
using Berth.Images.Engine;
using Berth.Images.Manifests;
using Berth.Images.References;
using Berth.Images.Registry;
using Berth.Images.Store;

namespace Berth.Daemon.Build;

/// <summary>
/// <c>POST /build</c> behind the API: the build context extracted under
/// <c>&lt;data-root&gt;/tmp/build</c>, the Dockerfile built by <see cref="ImageBuilder"/> with the
/// engine's containers for RUN steps, the cache under <c>&lt;data-root&gt;/builder/cache</c>.
/// </summary>
public sealed class BuildService
{
    private readonly ImageService _images;
    private readonly ContainerService _containers;

    public BuildService(string dataRoot, ImageService images, ContainerService containers)
    {
        _images = images;
        _containers = containers;
        // On disk, not under the exec root (a tmpfs): contexts can be large.
        TempDirectory = Path.Combine(dataRoot, "tmp", "build");
        Cache = new BuildCache(Path.Combine(dataRoot, "builder", "cache"), images.Store);
        ImageBuilder.RemoveLeftovers(images.Store, TempDirectory);
    }

    public BuildCache Cache { get; }

    public string TempDirectory { get; }

    /// <summary>
    /// Builds from a context tar, or from <paramref name="remote"/> (a Git or http(s) URL, see
    /// <see cref="RemoteContext"/>) when given, whose download progress goes to <paramref name="downloaded"/>;
    /// <paramref name="credential"/> is used for base-image pulls.
    /// </summary>
    public async Task<BuildResult> BuildAsync(Stream contextTar, string? remote, BuildOptions options, IBuildOutput output, Action<long, bool>? downloaded,
        RegistryCredential? credential, CancellationToken cancellationToken)
    {
        using BuildContext context = remote is not null
            ? await RemoteContext.OpenAsync(remote, TempDirectory, options.Dockerfile, downloaded, cancellationToken)
            : await BlockingWork.RunAsync(() => BuildContext.Extract(contextTar, TempDirectory, options.Dockerfile, cancellationToken), cancellationToken);
        var builder = new ImageBuilder(_images.Store, Cache, new EngineBackend(_images, _containers, credential), TempDirectory);
        BuildResult result = await builder.BuildAsync(context, options, output, cancellationToken);
        foreach (string tag in result.Tags) _images.PublishEvent(result.Image.Id.Value, tag, "tag");
        return result;
    }

    /// <summary>The engine side of a build: base images from the store or a registry, RUN steps in containers.</summary>
    private sealed class EngineBackend(ImageService images, ContainerService containers, RegistryCredential? credential) : IBuildBackend
    {
        public async Task<Image> ResolveImageAsync(string reference, bool pull, Platform? platform, IBuildOutput output, CancellationToken cancellationToken)
        {
            if (!pull)
            {
                try
                {
                    return images.Store.Get(reference, platform);
                }
                catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
                {
                }
            }
            string name;
            try
            {
                ImageReference parsed = ImageReference.ParseNormalized(reference);
                name = (parsed.Tag is null && parsed.Digest is null ? parsed.WithDefaultTag() : parsed).ToString();
            }
            catch (ImagesException e)
            {
                throw new BuildException(BuildErrorKind.InvalidArgument, $"invalid base image reference `{reference}`: {e.Message}");
            }
            output.Write($"Pulling {name}\n");
            try
            {
                PullOutcome outcome = await images.PullAsync(name, platform, credential, null, null, cancellationToken);
                output.Write($"Status: {(outcome.Downloaded ? "Downloaded newer image" : "Image is up to date")} for {outcome.Reference.FamiliarName}\n");
                return outcome.Image;
            }
            catch (Exception e) when (e is ImagesException or HttpRequestException)
            {
                throw new BuildException(BuildErrorKind.NotFound, $"pull access denied or repository does not exist for {reference}: {e.Message}", e);
            }
        }

        private static IEnumerable<string> DirectoryAndParents(string absolute)
        {
            for (string path = absolute.Trim('/'); path.Length > 0; path = path.Contains('/') ? path[..path.LastIndexOf('/')] : "")
                yield return path;
        }

        public async Task<Image> RunAsync(BuildRunRequest request, IBuildOutput output, Action<string> containerCreated, CancellationToken cancellationToken)
        {
            var body = new ContainerCreateBody
            {
                Image = request.BaseImage.Id.Value,
                Cmd = request.Command.ToList(),
                // An empty (not absent) entrypoint: RUN never goes through the image's ENTRYPOINT.
                Entrypoint = [],
                Env = request.Env.ToList(),
                User = request.User ?? "",
                WorkingDir = request.WorkingDir ?? "",
                AttachStdout = true,
                AttachStderr = true,
                Labels = [],
                HostConfig = new HostConfigJson
                {
                    NetworkMode = request.NetworkMode ?? "",
                    ExtraHosts = request.ExtraHosts.Count == 0 ? null : [.. request.ExtraHosts],
                    ShmSize = request.ShmSize,
                    // RUN --mount: binds (context paths, cache directories) and tmpfs, as a container's --mount.
                    Mounts = request.Mounts.Count == 0 ? null : [.. request.Mounts.Select(m => m.Source is null
                        ? new MountJson { Type = "tmpfs", Target = m.Target, TmpfsOptions = m.TmpfsSize is { } size ? new TmpfsOptionsJson { SizeBytes = size } : null }
                        : new MountJson { Type = "bind", Source = m.Source, Target = m.Target, ReadOnly = m.ReadOnly })],
                },
            };
            ContainerCreateResponse created;
            try
            {
                created = await containers.CreateAsync(null, body, cancellationToken);
            }
            catch (ApiException e)
            {
                throw new BuildException(BuildErrorKind.InvalidArgument, $"cannot create the container for this step: {e.Message}", e);
            }
            string id = created.Id;
            containerCreated(id);
            ContainerEntry entry = containers.Find(id);
            try
            {
                await containers.StartAsync(id, cancellationToken);
            }
            catch (ApiException e)
            {
                throw new BuildException(BuildErrorKind.InvalidArgument, $"cannot start the container for this step: {e.Message}", e);
            }
            // The step's output, as it comes: the log the monitor writes, followed until the container stops.
            Func<bool> stopped = () => !entry.Record.State.Running || entry.Removed;
            LogLocation log = containers.LogOf(entry.Record) ?? throw new BuildException(BuildErrorKind.InvalidArgument,
                "the step's container keeps no log (logging driver none)");
            // As the classic builder: stderr in red (its streamformatter's stderr writer), stdout as it is.
            await foreach (LogEntry line in LogReader.ReadAsync(log, null, null, -1, follow: true, stopped, cancellationToken))
                output.Write(line.Stream == "stderr" ? "\u001b[91m" + Encoding.UTF8.GetString(line.Line.Span) + "\u001b[0m" : Encoding.UTF8.GetString(line.Line.Span));
            WaitResponse exit = await containers.WaitAsync(entry, "not-running", cancellationToken);
            if (exit.StatusCode != 0)
            {
                throw new BuildException(BuildErrorKind.StepFailed,
                    $"The command '{string.Join(' ', request.Command)}' returned a non-zero code: {exit.StatusCode}") { ExitCode = (int)exit.StatusCode };
            }
            return await images.Store.CommitAsync(containers.WritableLayer(entry), request.BaseImage, new CommitOptions
            {
                ContainerConfig = request.CommitConfig,
                RecordedContainerConfig = request.RecordedConfig,
                CreatedBy = request.CreatedBy,
                Container = id,
                Compress = false,
                // The directories made for RUN --mount targets the image lacked (and their parents) stay out
                // unless the step put something in them, as BuildKit removes its mount stubs.
                MountPointDirectories = [.. CommitOptions.DefaultMountPointDirectories, .. request.Mounts.SelectMany(m => DirectoryAndParents(m.Target))],
            }, cancellationToken);
        }

        public async Task<string> CreateContainerAsync(Image baseImage, ContainerConfig config, CancellationToken cancellationToken)
        {
            var body = new ContainerCreateBody
            {
                Image = baseImage.Id.Value,
                Cmd = config.Cmd?.ToList(),
                Entrypoint = [],
                Env = config.Env?.ToList(),
                User = config.User ?? "",
                WorkingDir = config.WorkingDir ?? "",
                Labels = [],
                // Never started: it needs no network endpoint.
                HostConfig = new HostConfigJson { NetworkMode = "none" },
            };
            try
            {
                return (await containers.CreateAsync(null, body, cancellationToken)).Id;
            }
            catch (ApiException e)
            {
                throw new BuildException(BuildErrorKind.InvalidArgument, $"cannot create the container for this step: {e.Message}", e);
            }
        }

        // Not the build's cancellation token: a cancelled build still removes what it made.
        public Task RemoveContainerAsync(string id) => containers.RemoveAsync(id, force: true, CancellationToken.None, removeVolumes: true);
    }
}
