using System.Formats.Tar;
using Berth.Images;
using Berth.Images.Layers;
using Microsoft.Win32.SafeHandles;
using Interop = Berth.Images.Interop;

namespace Berth.Builder.Context;

/// <summary>
/// Creates files, directories and symlinks under a root directory fd, for the build context
/// (extracted from the client's tar) and for COPY/ADD into an image's mounted root filesystem.
///
/// Security: every parent directory is resolved by the kernel with openat2(2) under
/// <see cref="Resolve"/>: RESOLVE_BENEATH for the context (a hostile tar's `..` or absolute or
/// escaping symlink is refused, EXDEV), RESOLVE_IN_ROOT for a rootfs (the image's own absolute
/// symlinks are followed as the container would see them, never out to the host). The last
/// component is always created with an *at call on the parent fd, O_EXCL|O_NOFOLLOW, after
/// removing what was there: a symlink planted at the final name is replaced, never written through.
/// </summary>
internal sealed class TreeWriter : IDisposable
{
    private readonly SafeFileHandle _root;

    public TreeWriter(string rootPath, bool inRoot)
    {
        RootPath = Path.GetFullPath(rootPath);
        _root = Interop.Open(RootPath, Interop.O_PATH | Interop.O_DIRECTORY);
        Resolve = Interop.RESOLVE_NO_MAGICLINKS | (inRoot ? Interop.RESOLVE_IN_ROOT : Interop.RESOLVE_BENEATH);
    }

    public string RootPath { get; }

    public ulong Resolve { get; }

    /// <summary>Owner of what this writer creates; null keeps the caller's (root).</summary>
    public (uint Uid, uint Gid)? Owner { get; init; }

    /// <summary>Opens an existing directory (O_RDONLY) at <paramref name="relative"/>, or null with the errno.</summary>
    public SafeFileHandle? TryOpenDirectory(string relative, out int errno)
        => Interop.TryOpenAt2(_root, relative.Length == 0 ? "." : relative, Interop.O_RDONLY | Interop.O_DIRECTORY, Resolve, out errno);

    /// <summary>
    /// <c>mkdir -p</c>: every missing component is created 0755 with <see cref="Owner"/>; existing
    /// directories keep their metadata. Returns the directory, opened O_RDONLY.
    /// </summary>
    public SafeFileHandle EnsureDirectory(string relative, string displayPath)
    {
        SafeFileHandle? dir = TryOpenDirectory(relative, out int errno);
        if (dir is not null) return dir;
        if (errno != Interop.Errno.ENOENT) throw ResolveError(errno, relative, displayPath);
        SafeFileHandle current = TryOpenDirectory("", out errno) ?? throw ResolveError(errno, "", displayPath);
        string prefix = "";
        foreach (string component in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            prefix = prefix.Length == 0 ? component : prefix + "/" + component;
            SafeFileHandle? next = TryOpenDirectory(prefix, out errno);
            if (next is null && errno == Interop.Errno.ENOENT)
            {
                if (Interop.mkdirat(current, component, 0x1ED) < 0)
                {
                    if (Interop.LastErrno != Interop.Errno.EEXIST)
                    {
                        current.Dispose();
                        throw Interop.Error("mkdirat", "/" + prefix, displayPath);
                    }
                }
                else
                {
                    ApplyOwner(current, component, "/" + prefix);
                }
                next = TryOpenDirectory(prefix, out errno);
            }
            current.Dispose();
            current = next ?? throw ResolveError(errno, prefix, displayPath);
        }
        return current;
    }

    /// <summary>What is at <paramref name="leaf"/> in <paramref name="dir"/>: its file type bits, or null when nothing is.</summary>
    public static uint? TypeAt(SafeFileHandle dir, string leaf)
        => Interop.TryStatAt(dir, leaf, out Interop.Statx st, out _) ? st.Type : null;

    /// <summary>Creates (replacing a non-directory) the regular file <paramref name="leaf"/> in <paramref name="dir"/> with <paramref name="content"/>.</summary>
    /// <returns>How many bytes were written.</returns>
    public long WriteFile(SafeFileHandle dir, string leaf, Stream content, uint mode, DateTimeOffset? mtime, string displayPath)
    {
        RemoveNonDirectory(dir, leaf, displayPath);
        SafeFileHandle file = Interop.TryOpenAt(dir, leaf, Interop.O_WRONLY | Interop.O_CREAT | Interop.O_EXCL | Interop.O_NOFOLLOW, 0x180, out int errno)
            ?? throw new NativeCallException(errno, "openat", displayPath);
        // The FileStream owns the fd from here: metadata calls go before it is disposed.
        using (var stream = new FileStream(file, FileAccess.Write, 1, isAsync: false))
        {
            content.CopyTo(stream, 128 * 1024);
            stream.Flush();
            if (Owner is { } o && Interop.fchownat(file, "", o.Uid, o.Gid, Interop.AT_EMPTY_PATH) < 0)
                throw Interop.Error("fchown", displayPath);
            // fchmod after fchown: chown clears the set-id bits.
            if (Interop.fchmod(file, mode & 0xFFF) < 0) throw Interop.Error("fchmod", displayPath);
            if (mtime is { } t) SetTimes(file, "", t, 0, displayPath);
            return stream.Position;
        }
    }

    /// <summary>Creates the directory <paramref name="leaf"/> in <paramref name="dir"/> if missing (a non-directory there is replaced) and opens it.</summary>
    public SafeFileHandle MakeDirectory(SafeFileHandle dir, string leaf, uint mode, string displayPath)
    {
        uint? existing = TypeAt(dir, leaf);
        if (existing is not null && existing != Interop.S_IFDIR) RemoveNonDirectory(dir, leaf, displayPath);
        if (existing != Interop.S_IFDIR)
        {
            if (Interop.mkdirat(dir, leaf, mode & 0xFFF) < 0 && Interop.LastErrno != Interop.Errno.EEXIST)
                throw Interop.Error("mkdirat", displayPath);
            ApplyOwner(dir, leaf, displayPath);
            if (Interop.fchmodat(dir, leaf, mode & 0xFFF) < 0) throw Interop.Error("chmod", displayPath);
        }
        return Interop.TryOpenAt(dir, leaf, Interop.O_RDONLY | Interop.O_DIRECTORY | Interop.O_NOFOLLOW, 0, out int errno)
            ?? throw new NativeCallException(errno, "openat", displayPath);
    }

    public void MakeSymlink(SafeFileHandle dir, string leaf, string target, string displayPath)
    {
        RemoveNonDirectory(dir, leaf, displayPath);
        if (Interop.symlinkat(target, dir, leaf) < 0) throw Interop.Error("symlinkat", displayPath);
        if (Owner is { } o && Interop.fchownat(dir, leaf, o.Uid, o.Gid, Interop.AT_SYMLINK_NOFOLLOW) < 0)
            throw Interop.Error("lchown", displayPath);
    }

    /// <summary>Sets the mode and mtime of an existing directory entry (used for directories after their contents are written).</summary>
    public static void SetTimes(SafeFileHandle dir, string leaf, DateTimeOffset mtime, int flags, string displayPath)
    {
        long ns = (mtime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
        if (Interop.SetTimes(dir, leaf, ns, flags | (leaf.Length == 0 ? Interop.AT_EMPTY_PATH : 0)) < 0)
            throw Interop.Error("utimensat", displayPath);
    }

    private void ApplyOwner(SafeFileHandle dir, string leaf, string displayPath)
    {
        if (Owner is { } o && Interop.fchownat(dir, leaf, o.Uid, o.Gid, Interop.AT_SYMLINK_NOFOLLOW) < 0)
            throw Interop.Error("chown", displayPath);
    }

    private static void RemoveNonDirectory(SafeFileHandle dir, string leaf, string displayPath)
    {
        uint? type = TypeAt(dir, leaf);
        if (type is null) return;
        if (type == Interop.S_IFDIR)
            throw new BuildException(BuildErrorKind.InvalidArgument, $"cannot overwrite directory `{displayPath}` with a non-directory");
        if (Interop.unlinkat(dir, leaf, 0) < 0 && Interop.LastErrno != Interop.Errno.ENOENT) throw Interop.Error("unlink", displayPath);
    }

    private static Exception ResolveError(int errno, string path, string displayPath) => errno switch
    {
        Interop.Errno.EXDEV => new BuildException(BuildErrorKind.InvalidArgument, $"`{displayPath}`: `{path}` resolves outside the directory (through a symlink or `..`); refused"),
        Interop.Errno.ENOTDIR => new BuildException(BuildErrorKind.InvalidArgument, $"`{displayPath}`: a component of `{path}` is not a directory"),
        Interop.Errno.ELOOP => new BuildException(BuildErrorKind.InvalidArgument, $"`{displayPath}`: too many levels of symlinks in `{path}`"),
        _ => new NativeCallException(errno, "openat2", path, displayPath),
    };

    /// <summary>
    /// Extracts a tar stream into <paramref name="destination"/> (relative to the root; created).
    /// Names are cleaned (a `..` above the destination is refused); directories, regular files,
    /// symlinks and hard links are created, device nodes and FIFOs skipped. Modes and mtimes are
    /// kept; owners are <see cref="Owner"/>'s (root), as Docker's COPY and ADD make them.
    /// </summary>
    public void ExtractTar(Stream tar, string destination, string what, CancellationToken cancellationToken)
    {
        using SafeFileHandle destinationDir = EnsureDirectory(destination, what);
        var directoryTimes = new List<(string Path, DateTimeOffset Time)>();
        var counted = new PositionCountingStream(tar);
        using var reader = new TarReader(counted, leaveOpen: true);
        TarEntry? entry;
        long dataEnd = 0; // where the last entry's data ended in the stream, when it had all its data
        while ((entry = ReadEntry(reader, counted, dataEnd, what)) is not null)
        {
            dataEnd = -1;
            cancellationToken.ThrowIfCancellationRequested();
            string name;
            try
            {
                name = Berth.Images.Layers.RootedDirectory.CleanPath(entry.Name, entry.Name);
            }
            catch (ImagesException e)
            {
                throw new BuildException(BuildErrorKind.InvalidArgument, $"{what}: {e.Message}");
            }
            if (name.Length == 0) continue;
            string full = destination.Length == 0 ? name : destination + "/" + name;
            (string parent, string leaf) = Berth.Images.Layers.RootedDirectory.Split(full);
            string display = $"{what}: `{entry.Name}`";
            using SafeFileHandle dir = EnsureDirectory(parent, display);
            uint mode = (uint)entry.Mode;
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    dataEnd = counted.Position;
                    MakeDirectory(dir, leaf, mode, display).Dispose();
                    directoryTimes.Add((full, entry.ModificationTime));
                    break;
                case TarEntryType.RegularFile:
                case TarEntryType.V7RegularFile:
                case TarEntryType.ContiguousFile:
                    if (WriteFile(dir, leaf, entry.DataStream ?? Stream.Null, mode, entry.ModificationTime, display) == entry.Length) dataEnd = counted.Position;
                    break;
                case TarEntryType.SymbolicLink:
                    dataEnd = counted.Position;
                    MakeSymlink(dir, leaf, entry.LinkName, display);
                    break;
                case TarEntryType.HardLink:
                    dataEnd = counted.Position;
                    string source = Berth.Images.Layers.RootedDirectory.CleanPath(entry.LinkName, entry.Name, "link target");
                    source = destination.Length == 0 ? source : destination + "/" + source;
                    (string sourceParent, string sourceLeaf) = Berth.Images.Layers.RootedDirectory.Split(source);
                    using (SafeFileHandle sourceDir = TryOpenDirectory(sourceParent, out int errno) ?? throw ResolveError(errno, sourceParent, display))
                    {
                        RemoveNonDirectory(dir, leaf, display);
                        if (Interop.linkat(sourceDir, sourceLeaf, dir, leaf, 0) < 0) throw Interop.Error("linkat", display);
                    }
                    break;
                default:
                    break; // devices, FIFOs: never part of a build context or an ADDed archive's useful content
            }
        }
        // Directory mtimes last: creating their entries changed them.
        foreach ((string path, DateTimeOffset time) in directoryTimes)
        {
            (string parent, string leaf) = Berth.Images.Layers.RootedDirectory.Split(path);
            using SafeFileHandle? dir = TryOpenDirectory(parent, out _);
            if (dir is not null) SetTimes(dir, leaf, time, Interop.AT_SYMLINK_NOFOLLOW, path);
        }
    }

    /// <summary>
    /// The next entry, or null at the end. A stream that ends after an entry's data, inside the padding
    /// to its 512-byte block, without the end-of-archive blocks, ends there, as Go's archive/tar reads it
    /// (dockerd takes it): the 20.10 docker client sends such a context for `build -f - DIR` when DIR has
    /// a .dockerignore. A stream that ends inside an entry's data (<paramref name="dataEnd"/> -1) or
    /// inside a header is refused.
    /// </summary>
    private static TarEntry? ReadEntry(TarReader reader, PositionCountingStream counted, long dataEnd, string what)
    {
        try
        {
            return reader.GetNextEntry(copyData: false);
        }
        catch (EndOfStreamException) when (dataEnd >= 0 && counted.Position <= (dataEnd + 511) / 512 * 512)
        {
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new BuildException(BuildErrorKind.InvalidArgument, $"{what}: not a valid tar archive: {e.Message}");
        }
    }

    public void Dispose() => _root.Dispose();
}
