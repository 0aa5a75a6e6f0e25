using System.Globalization;
using System.IO.Compression;
using System.Text;
using Berth.Builder.Cache;
using Berth.Builder.Context;
using Berth.Builder.Dockerfile;
using Berth.Images;
using Berth.Images.Content;
using Berth.Images.Engine;
using Berth.Images.Manifests;
using Berth.Images.Snapshots;
using Berth.Images.Store;
using Microsoft.Win32.SafeHandles;
using Interop = Berth.Images.Interop;

namespace Berth.Builder;

public sealed partial class ImageBuilder
{
    /// <summary>Prefix of the snapshots a build writes into or reads from.</summary>
    public const string SnapshotPrefix = "build-";

    /// <summary>Removes what a build cut short by a crash left: its snapshots and its temporary directory's contents.</summary>
    public static void RemoveLeftovers(ImageStore store, string tempDirectory)
    {
        if (store.Snapshotter is { } snapshotter)
        {
            foreach (SnapshotInfo s in snapshotter.Walk().Where(s => s.Name.StartsWith(SnapshotPrefix, StringComparison.Ordinal) && s.Kind != SnapshotKind.Committed))
            {
                try
                {
                    snapshotter.Remove(s.Name);
                }
                catch (ImagesException)
                {
                }
            }
        }
        if (!Directory.Exists(tempDirectory)) return;
        foreach (string dir in Directory.EnumerateDirectories(tempDirectory))
        {
            // A mount point left by a crash is detached first, so that removing the tree cannot reach into an image.
            if (Path.GetFileName(dir).StartsWith("rootfs-", StringComparison.Ordinal) || Path.GetFileName(dir).StartsWith("from-", StringComparison.Ordinal))
            {
                try
                {
                    MountHelper.Unmount(dir, detach: true);
                }
                catch (ImagesException)
                {
                }
            }
            try
            {
                using SafeFileHandle parent = Interop.Open(tempDirectory, Interop.O_RDONLY | Interop.O_DIRECTORY);
                Berth.Images.Layers.RootedDirectory.RemoveTree(parent, Path.GetFileName(dir), dir);
            }
            catch (ImagesException)
            {
            }
        }
    }

    private sealed record CopySpec(string Keyword, IReadOnlyList<string> Sources, string Destination, string? From, string? Chown, string? Chmod, IReadOnlyList<Heredoc> Heredocs, bool Extract);

    /// <summary>
    /// COPY and ADD. The sources come from the build context, a here-document, or (<c>--from</c>)
    /// an earlier stage's or another image's root filesystem mounted read-only. The parent image's
    /// layers get a new writable snapshot, mounted here; the files are written into it through
    /// <see cref="TreeWriter"/> (the destination resolved inside the image's root, as the
    /// container sees it); its upper directory is diffed into the new layer and then becomes that
    /// layer's snapshot, so the next step does not unpack what was just written.
    /// </summary>
    private async Task CopyAsync(BuildRun run, StageState state, CopySpec spec, Instruction raw, CancellationToken cancellationToken)
    {
        if (spec.Sources.Count == 0 && spec.Heredocs.Count == 0)
            throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: {spec.Keyword} requires at least two arguments, but only one was provided. Destination could not be determined");
        foreach (string source in spec.Sources)
        {
            if (source.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || source.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || source.StartsWith("git@", StringComparison.Ordinal))
                throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: {spec.Keyword} from a URL (`{source}`) is not supported by this builder; download it in a RUN step");
        }
        uint? chmod = null;
        if (spec.Chmod is { Length: > 0 } m)
        {
            if (!uint.TryParse(m, NumberStyles.None, CultureInfo.InvariantCulture, out _) || m.Any(ch => ch > '7') || Convert.ToUInt32(m, 8) > 0xFFF)
                throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: invalid --chmod `{m}`: an octal mode such as 755 is expected");
            chmod = Convert.ToUInt32(m, 8);
        }

        string workdir = state.Config.WorkingDir ?? "/";
        string destination = spec.Destination.Replace('\\', '/');
        bool destinationIsDirectory = destination.EndsWith('/') || destination is "." or "..";
        string destinationPath = CleanAbsolute(destination.StartsWith('/') ? destination : workdir + "/" + destination).TrimStart('/');

        // Where the sources come from.
        Image? fromImage = null;
        bool fromOther = spec.From is { Length: > 0 };
        if (fromOther)
        {
            fromImage = await ResolveFromAsync(run, spec.From!, $"{Where(raw)}: --from={spec.From}", cancellationToken);
        }

        await WithRootfsAsync(fromImage, fromOther, async sourceRoot =>
        {
            BuildContext? imageSource = sourceRoot is null ? null : BuildContext.ForImageRootfs(sourceRoot);
            try
            {
                BuildContext source = imageSource ?? run.Context;
                var matched = new List<string>();
                foreach (string pattern in spec.Sources)
                {
                    List<string> hits = source.Match(pattern);
                    if (hits.Count == 0)
                        throw new BuildException(BuildErrorKind.NotFound, $"{Where(raw)}: {spec.Keyword} failed: no source files were specified" + (pattern.IndexOfAny(['*', '?', '[']) >= 0 ? $" (`{pattern}` matches nothing)" : ""));
                    matched.AddRange(hits);
                }
                int count = matched.Count + spec.Heredocs.Count;
                if (count > 1 && !destinationIsDirectory)
                    throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: When using {spec.Keyword} with more than one source file, the destination must be a directory and end with a /");

                string checksum;
                try
                {
                    checksum = fromImage is not null ? $"image:{fromImage.Id}:" + string.Join('\0', matched) : source.Checksum(matched);
                }
                catch (ImagesException e)
                {
                    throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: {spec.Keyword} failed: {e.Message}", e);
                }
                string heredocs = string.Join('\0', spec.Heredocs.Select(h => h.Name + "\0" + h.Content));
                string kind = matched.Count == 1 && spec.Heredocs.Count == 0 && !source.IsDirectorySource(matched[0]) ? "file" : "dir";
                string createdBy = $"/bin/sh -c #(nop) {spec.Keyword} {kind}:{checksum[..Math.Min(64, checksum.Length)]} in /{destinationPath} ";
                string key = BuildCache.Key(spec.Keyword, state.ParentId, createdBy, checksum, heredocs, destination, workdir,
                    spec.Chown ?? "", spec.Chmod ?? "", spec.Extract ? "extract" : "", ConfigKey(state.Config));
                await StepAsync(run, state, key, createdBy, state.Config, () => CommitCopyAsync(run, state, spec, source, matched, destinationPath, destinationIsDirectory, chmod, createdBy, raw, cancellationToken));
            }
            finally
            {
                imageSource?.Dispose();
            }
            return true;
        }, cancellationToken);
    }

    private async Task<Image> CommitCopyAsync(BuildRun run, StageState state, CopySpec spec, BuildContext source, List<string> matched,
        string destinationPath, bool destinationIsDirectory, uint? chmod, string createdBy, Instruction raw, CancellationToken cancellationToken)
    {
        ISnapshotter snapshotter = _store.Snapshotter ?? throw new BuildException(BuildErrorKind.Internal, "the image store has no snapshotter");
        string? parent = state.Image is null ? null : await _store.UnpackAsync(state.Image, cancellationToken: cancellationToken);
        // Not the store's extract- prefix: its garbage collection removes those as leftovers, and it
        // does not wait for a build. A crash's leftover goes with RemoveLeftovers at the next start.
        string key = $"{SnapshotPrefix}{Guid.NewGuid():N}";
        IReadOnlyList<Mount> mounts = snapshotter.Prepare(key, parent);
        bool adopted = false;
        try
        {
            string mountPoint = Path.Combine(_temp, "rootfs-" + Guid.NewGuid().ToString("N")[..16]);
            Directory.CreateDirectory(mountPoint);
            try
            {
                MountHelper.MountAll(mounts, mountPoint);
                try
                {
                    await Task.Run(() => WriteSources(spec, source, matched, mountPoint, destinationPath, destinationIsDirectory, chmod, raw, cancellationToken), cancellationToken);
                }
                finally
                {
                    MountHelper.Unmount(mountPoint, detach: true);
                }
            }
            finally
            {
                Directory.Delete(mountPoint);
            }

            Image image = await _store.CommitAsync(key, state.Image, new CommitOptions
            {
                ContainerConfig = state.Config,
                CreatedBy = createdBy,
                Author = state.Maintainer,
                ExcludedPaths = [],
                MountPointDirectories = [],
                Compress = false,
                TimeProvider = _time,
            }, cancellationToken);
            adopted = AdoptSnapshot(snapshotter, key, state.Image, image);
            return image;
        }
        finally
        {
            if (!adopted)
            {
                try
                {
                    snapshotter.Remove(key);
                }
                catch (ImagesException)
                {
                }
            }
        }
    }

    /// <summary>
    /// Makes the written snapshot the new layer's committed snapshot (named by its chain ID, as
    /// an unpack would name it). Its upper directory is exactly what the layer tar was made from
    /// (nothing was left out), so unpacking the blob again would give the same tree.
    /// </summary>
    private static bool AdoptSnapshot(ISnapshotter snapshotter, string key, Image? parent, Image image)
    {
        IReadOnlyList<Digest> chain = image.ChainIds;
        if (chain.Count == (parent?.ChainIds.Count ?? 0)) return false; // nothing changed: no new layer
        string name = chain[^1].Value;
        try
        {
            snapshotter.Stat(name);
            return false; // the same layer exists already (an identical COPY elsewhere)
        }
        catch (ImagesException e) when (e.Kind == ImagesErrorKind.NotFound)
        {
        }
        snapshotter.Commit(name, key, new Dictionary<string, string>
        {
            ["berth.io/diff-id"] = image.DiffIds[^1].Value,
            ["berth.io/layer"] = image.Manifest.Layers[^1].Digest,
        });
        return true;
    }

    private static void WriteSources(CopySpec spec, BuildContext source, List<string> matched, string rootfs, string destinationPath,
        bool destinationIsDirectory, uint? chmod, Instruction raw, CancellationToken cancellationToken)
    {
        (uint Uid, uint Gid)? owner = null;
        if (spec.Chown is { Length: > 0 } chown)
        {
            string user = chown.Contains(':') ? chown : chown + ":" + chown;
            try
            {
                ResolvedUser resolved = UserResolver.Resolve(rootfs, user);
                owner = (resolved.Uid, resolved.Gid);
            }
            catch (ImagesException e)
            {
                throw new BuildException(BuildErrorKind.InvalidArgument, $"{Where(raw)}: --chown={chown}: {e.Message}");
            }
        }
        using var writer = new TreeWriter(rootfs, inRoot: true) { Owner = owner ?? (0, 0) };
        string display = $"{Where(raw)}: {spec.Keyword}";
        try
        {
            foreach (Heredoc heredoc in spec.Heredocs)
            {
                string target = destinationIsDirectory ? Join(destinationPath, heredoc.Name) : destinationPath;
                (string parentPath, string leaf) = Split(target);
                using SafeFileHandle dir = writer.EnsureDirectory(parentPath, display);
                // The parser has already stripped the leading tabs of a <<- here-document.
                writer.WriteFile(dir, leaf, new MemoryStream(Encoding.UTF8.GetBytes(heredoc.Content)), chmod ?? 0x1A4, null, "/" + target);
            }

            foreach (string path in matched)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (source.IsDirectorySource(path))
                {
                    writer.EnsureDirectory(destinationPath, display).Dispose();
                    source.Walk(path, (entry, open) => WriteEntry(writer, entry, open, destinationPath, chmod, display));
                    continue;
                }
                // A file: into the destination directory (named, or existing as one), else as the destination.
                bool intoDirectory = destinationIsDirectory || IsDirectory(writer, destinationPath);
                string target = intoDirectory ? Join(destinationPath, path.Split('/')[^1]) : destinationPath;
                if (spec.Extract && source.IsArchive(path))
                {
                    using Stream archive = source.OpenArchive(path);
                    writer.ExtractTar(archive, destinationPath, $"{display} {path}", cancellationToken);
                    continue;
                }
                source.Walk(path, (entry, open) => WriteEntry(writer, entry with { Destination = "" }, open, target, chmod, display));
            }
        }
        catch (ImagesException e)
        {
            throw new BuildException(BuildErrorKind.InvalidArgument, $"{display} failed: {e.Message}", e);
        }
    }

    private static void WriteEntry(TreeWriter writer, SourceEntry entry, Func<Stream>? open, string destinationBase, uint? chmod, string display)
    {
        string target = entry.Destination.Length == 0 ? destinationBase : Join(destinationBase, entry.Destination);
        (string parentPath, string leaf) = Split(target);
        if (leaf.Length == 0) throw new BuildException(BuildErrorKind.InvalidArgument, $"{display}: cannot copy a file to the root directory itself");
        using SafeFileHandle dir = writer.EnsureDirectory(parentPath, display);
        switch (entry.Type)
        {
            case Interop.S_IFDIR:
                writer.MakeDirectory(dir, leaf, chmod ?? entry.Mode, "/" + target).Dispose();
                break;
            case Interop.S_IFREG:
                using (Stream content = open!())
                    writer.WriteFile(dir, leaf, content, chmod ?? entry.Mode, entry.ModificationTime, "/" + target);
                break;
            case Interop.S_IFLNK:
                writer.MakeSymlink(dir, leaf, entry.LinkTarget!, "/" + target);
                break;
        }
    }

    private static bool IsDirectory(TreeWriter writer, string path)
    {
        using SafeFileHandle? dir = writer.TryOpenDirectory(path, out _);
        return dir is not null;
    }

    private static string Join(string a, string b) => a.Length == 0 ? b : a + "/" + b;

    private static (string Parent, string Leaf) Split(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash < 0 ? ("", path) : (path[..slash], path[(slash + 1)..]);
    }

    /// <summary>
    /// Runs <paramref name="action"/> with <paramref name="image"/>'s root filesystem mounted
    /// read-only (a view snapshot), or with null when the sources are the build context.
    /// </summary>
    private async Task WithRootfsAsync(Image? image, bool fromOther, Func<string?, Task<bool>> action, CancellationToken cancellationToken)
    {
        if (!fromOther)
        {
            await action(null);
            return;
        }
        using ImageView view = await MountImageViewAsync(image, cancellationToken);
        await action(view.Root);
    }

    /// <summary>
    /// What <c>--from=</c> names (<c>COPY --from</c>, <c>RUN --mount=…,from=</c>): an earlier stage by name or
    /// index, else an image (pulled if missing). Null: a stage FROM scratch with nothing in it yet.
    /// </summary>
    private async Task<Image?> ResolveFromAsync(BuildRun run, string from, string where, CancellationToken cancellationToken)
    {
        StageState? stage = run.Stages.FirstOrDefault(s => s.Name is not null && string.Equals(s.Name, from, StringComparison.OrdinalIgnoreCase))
            ?? (int.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out int index) && index < run.Stages.Count ? run.Stages[index] : null);
        if (stage is null && (int.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out int bad) && bad >= run.Stages.Count))
            throw new BuildException(BuildErrorKind.InvalidArgument, $"{where}: stage {bad} is not an earlier stage");
        return stage is not null ? stage.Image : await _backend.ResolveImageAsync(from, false, run.Options.Platform, run.Output, cancellationToken);
    }

    /// <summary>
    /// An image's files (or an empty tree for <paramref name="image"/> null) at a temporary mount point, through a
    /// view snapshot; disposing it unmounts, removes the view and the mount point.
    /// </summary>
    private async Task<ImageView> MountImageViewAsync(Image? image, CancellationToken cancellationToken)
    {
        string mountPoint = Path.Combine(_temp, "from-" + Guid.NewGuid().ToString("N")[..16]);
        Directory.CreateDirectory(mountPoint);
        var view = new ImageView(mountPoint);
        try
        {
            string? top = image is null ? null : await _store.UnpackAsync(image, cancellationToken: cancellationToken);
            if (top is null) return view; // scratch stage with nothing in it: an empty tree
            ISnapshotter snapshotter = _store.Snapshotter!;
            string key = $"{SnapshotPrefix}view-{Guid.NewGuid():N}";
            IReadOnlyList<Mount> mounts = snapshotter.View(key, top);
            view.OnDispose(() => snapshotter.Remove(key));
            MountHelper.MountAll(mounts, mountPoint);
            view.OnDispose(() => MountHelper.Unmount(mountPoint, detach: true));
            return view;
        }
        catch
        {
            view.Dispose();
            throw;
        }
    }

    /// <summary>A mounted image view: its root, and what undoes it.</summary>
    private sealed class ImageView : UndoList
    {
        public ImageView(string root)
        {
            Root = root;
            OnDispose(() => Directory.Delete(root));
        }

        public string Root { get; }
    }

    /// <summary>What undoes a piece of a step's set-up (mounts, locks, copies), run last made first.</summary>
    private abstract class UndoList : IDisposable
    {
        private readonly List<Action> _undo = [];
        public void OnDispose(Action undo) => _undo.Add(undo);

        public void Dispose()
        {
            for (int i = _undo.Count - 1; i >= 0; i--) _undo[i]();
            _undo.Clear();
        }
    }
}
