using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Berth.Builder.Dockerfile;
using Berth.Images.Engine;
using Berth.Images.Manifests;
using Berth.Images.Store;
using Berth.Builder.Context;
using Interop = Berth.Images.Interop;

namespace Berth.Builder;

/// <summary>
/// <c>RUN --mount</c> in the classic builder, as BuildKit's Dockerfile frontend gives it:
/// <list type="bullet">
/// <item><c>type=bind</c> (default): a path of the build context (default its root), read-only unless
/// <c>rw</c>, whose writes then go to a copy made for the step and dropped after it. Its content is part
/// of the step's cache key, as COPY's is.</item>
/// <item><c>type=cache</c>: a directory that outlives builds (under the build cache, by <c>id</c>, default
/// the target), made with <c>mode</c>/<c>uid</c>/<c>gid</c> (0755, 0, 0) the first time; <c>sharing=locked</c>
/// and <c>private</c> let one step at a time use it (private as locked: BuildKit would give a second
/// writer a new empty one). Its content is not part of any key. <c>docker builder prune</c> empties it.</item>
/// <item><c>type=tmpfs</c>, with <c>size</c>.</item>
/// </list>
/// A bind with <c>from=</c> shows an earlier stage's (by name or index) or an image's files instead of the
/// context's. Refused by name: <c>from=</c> on a cache mount, <c>type=secret</c> and <c>type=ssh</c>
/// (they come over BuildKit's client session, which the classic build API has no channel for).
/// What a mount shows never reaches the committed layer, nor (the daemon's commit leaves them out) the
/// directories made for missing targets unless the step put something in them.
/// </summary>
public sealed partial class ImageBuilder
{
    /// <summary>Cache mounts in use with sharing=locked or private, by directory: shared by every build of this process.</summary>
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> CacheLocks = new(StringComparer.Ordinal);

    /// <summary>The step's mounts, parsed, with targets made absolute (a relative one is under WORKDIR, as BuildKit).</summary>
    private static List<(RunMount Mount, string Target)> ParseMounts(BuildRun run, ContainerConfig c, RunInstruction step, Instruction raw)
    {
        var result = new List<(RunMount, string)>();
        foreach (string spec in step.Mounts)
        {
            RunMount mount;
            try
            {
                mount = RunMount.Parse(spec);
            }
            catch (DockerfileException e)
            {
                throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: --mount={spec}: {e.Message}", e);
            }
            string target = CleanAbsolute(mount.Target.StartsWith('/') ? mount.Target : (c.WorkingDir ?? "/") + "/" + mount.Target);
            if (target == "/") throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: --mount={spec}: cannot mount over /");
            if (result.Any(r => r.Item2 == target)) throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: --mount={spec}: {target} is mounted twice");
            if (mount.Type == "bind" && mount.From is null)
            {
                try
                {
                    run.Context.HostPathOf(RelativeSource(mount)); // there, and beneath the context's root
                }
                catch (BuildException e)
                {
                    throw new BuildException(e.Kind, $"{Where(raw)}: --mount={spec}: {e.Message}", e);
                }
            }
            result.Add((mount, target));
        }
        return result;
    }

    private static string RelativeSource(RunMount mount) => BuildContextPath(mount.Source ?? ".");

    /// <summary>A <c>from=</c> bind's source, relative to the stage's or image's root (absolute or not, as BuildKit takes it).</summary>
    private static string FromSource(RunMount mount) => (mount.Source ?? "/").TrimStart('/');

    private static string BuildContextPath(string source) => Context.BuildContext.CleanSource(source.TrimStart('/'), "mount source");

    /// <summary>
    /// A mount's part of the step's cache key: what it is, and for a bind the content it shows: the context's
    /// checksum of the source, or the ID (a digest of its content) of the stage's or image's files.
    /// </summary>
    private static string MountKey(BuildRun run, RunMount m, string target, Image? from) => m.Type switch
    {
        "bind" when m.From is not null => $"bind\0{target}\0{FromSource(m)}\0{m.ReadWrite}\0from:{from?.Id.ToString() ?? "scratch"}",
        "bind" => $"bind\0{target}\0{RelativeSource(m)}\0{m.ReadWrite}\0{run.Context.Checksum([RelativeSource(m)])}",
        "cache" => $"cache\0{target}\0{m.Id}\0{m.Sharing}\0{m.Mode}\0{m.Uid}\0{m.Gid}",
        _ => $"tmpfs\0{target}\0{m.Size}",
    };

    /// <summary>
    /// Makes one mount ready for the step's container: the cache directory (locked if asked), the view of
    /// the stage or image a bind is <c>from</c>, the copy of a writable bind.
    /// </summary>
    private async Task<BuildRunMount> PrepareMountAsync(BuildRun run, RunMount m, string target, Image? from, PreparedMounts prepared, CancellationToken cancellationToken)
    {
        switch (m.Type)
        {
            case "tmpfs":
                return new BuildRunMount(target, null, ReadOnly: false, TmpfsSize: m.Size);
            case "cache":
            {
                string directory = CacheMountDirectory(_cache.Root, m.Id!);
                if (!Directory.Exists(directory))
                {
                    // Made beside and renamed into place: a concurrent build never sees it half-made.
                    string making = directory + ".new-" + Guid.NewGuid().ToString("N")[..8];
                    Directory.CreateDirectory(making);
                    File.SetUnixFileMode(making, (UnixFileMode)(m.Mode ?? 0x1ED));
                    if (m.Uid is not null || m.Gid is not null)
                    {
                        using var handle = Interop.Open(making, Interop.O_PATH | Interop.O_DIRECTORY);
                        if (Interop.fchownat(handle, "", m.Uid ?? 0, m.Gid ?? 0, Interop.AT_EMPTY_PATH) < 0)
                            throw Interop.Error("fchown", making);
                        // chown clears the set-id bits a mode may have asked for.
                        File.SetUnixFileMode(making, (UnixFileMode)(m.Mode ?? 0x1ED));
                    }
                    try
                    {
                        Directory.Move(making, directory);
                    }
                    catch (IOException) when (Directory.Exists(directory))
                    {
                        Directory.Delete(making);
                    }
                }
                if (m.Sharing is "locked" or "private")
                {
                    SemaphoreSlim gate = CacheLocks.GetOrAdd(directory, _ => new SemaphoreSlim(1, 1));
                    await gate.WaitAsync(cancellationToken);
                    prepared.OnDispose(() => gate.Release());
                }
                return new BuildRunMount(target, directory, ReadOnly: false);
            }
            default:
            {
                string source;
                if (m.From is null)
                {
                    source = run.Context.HostPathOf(RelativeSource(m));
                }
                else
                {
                    ImageView view = await MountImageViewAsync(from, cancellationToken);
                    prepared.OnDispose(view.Dispose);
                    // Resolved inside the view (absolute links stay in it), as COPY --from resolves.
                    using BuildContext files = BuildContext.ForImageRootfs(view.Root);
                    source = files.HostPathOf(FromSource(m));
                }
                if (!m.ReadWrite) return new BuildRunMount(target, source, ReadOnly: true);
                // rw: the step may write, but nothing it writes stays: a copy of its own, removed after the step.
                string copy = Path.Combine(_temp, "bind-" + Guid.NewGuid().ToString("N")[..16]);
                prepared.OnDispose(() => Directory.Delete(copy, recursive: true));
                Directory.CreateDirectory(copy);
                string leaf = Path.Combine(copy, "src");
                await CopyTreeAsync(source, leaf, cancellationToken);
                return new BuildRunMount(target, leaf, ReadOnly: false);
            }
        }
    }

    /// <summary>A cache mount's directory: under the build cache, named by a hash of its id (any id is a safe name).</summary>
    internal static string CacheMountDirectory(string cacheRoot, string id) =>
        Path.Combine(cacheRoot, "mounts", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)))[..32]);

    /// <summary>
    /// cp -a of a context file or directory (symlinks as symlinks), for a writable bind. A context holds
    /// only directories, regular files and symlinks (TreeWriter extracts nothing else), so no FIFO can
    /// make the copy block.
    /// </summary>
    private static async Task CopyTreeAsync(string source, string destination, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(source) || new FileInfo(source).LinkTarget is not null)
        {
            File.Copy(source, destination);
            return;
        }
        Directory.CreateDirectory(destination);
        File.SetUnixFileMode(destination, File.GetUnixFileMode(source));
        foreach (string entry in Directory.EnumerateFileSystemEntries(source))
        {
            cancellationToken.ThrowIfCancellationRequested();
            string target = Path.Combine(destination, Path.GetFileName(entry));
            var info = new FileInfo(entry);
            if (info.LinkTarget is { } link) File.CreateSymbolicLink(target, link);
            else if (Directory.Exists(entry)) await CopyTreeAsync(entry, target, cancellationToken);
            else File.Copy(entry, target);
        }
    }

    /// <summary>The mounts made ready for one step, and what undoes them (views, locks, copies) when the step is over.</summary>
    private sealed class PreparedMounts : UndoList
    {
        public List<BuildRunMount> Mounts { get; } = [];
        public void Add(BuildRunMount mount) => Mounts.Add(mount);
    }
}
