using Berth.Images.Content;
using Microsoft.Win32.SafeHandles;

namespace Berth.Images.Layers;

/// <summary>Choices for <see cref="LayerApplier.Apply"/>.</summary>
public sealed class LayerApplyOptions
{
    /// <summary>
    /// Create character and block device nodes (Docker does, as root). When false a device entry is
    /// refused. Overlay whiteouts (0/0 character devices) are always allowed.
    /// </summary>
    public bool AllowDeviceNodes { get; init; } = true;

    /// <summary>Set owners from the archive (lchown). Turn off when not running as root.</summary>
    public bool PreserveOwnership { get; init; } = true;
}

/// <summary>What applying a layer produced.</summary>
/// <param name="DiffId">The digest of the uncompressed tar stream (the layer's diffID).</param>
/// <param name="UncompressedSize">The length of the uncompressed tar stream.</param>
/// <param name="UnpackedSize">What the unpacked layer holds, as Docker reports a layer's size (see <see cref="LayerSize"/>).</param>
public sealed record LayerApplyResult(Digest DiffId, long UncompressedSize, LayerCompression Compression, long UnpackedSize);

/// <summary>
/// Unpacks a layer tar (plain, gzip or zstd) into a directory that is the upper directory of an
/// overlay snapshot: Docker whiteouts become overlay whiteouts, <c>.wh.NAME</c> a 0/0 character
/// device NAME and <c>.wh..wh..opq</c> the <c>trusted.overlay.opaque=y</c> xattr on its directory.
///
/// Path policy (security): entry names and hardlink targets are cleaned lexically; a leading `/` is
/// dropped (absolute names are relative to the target, as Docker and GNU tar do); a `..` that
/// would climb above the target is refused. Parent directories are resolved by the kernel with
/// RESOLVE_BENEATH (see <see cref="RootedDirectory"/>), so an entry that reaches its place through
/// a symlink pointing outside the target (absolute, or climbing with `..`) is refused; symlinks
/// that stay inside are followed, as in the container. Symlink targets themselves are stored
/// verbatim: they are resolved later inside the container's root, never by this code.
/// </summary>
public static class LayerApplier
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueWhiteout = ".wh..wh..opq";
    private const string OverlayOpaqueXattr = "trusted.overlay.opaque";

    /// <summary>Unpacks <paramref name="layer"/> into <paramref name="targetDir"/> and returns its diffID.</summary>
    /// <exception cref="ImagesException">
    /// InvalidArgument naming the entry for a hostile or malformed archive; the target may then hold
    /// the entries applied before it (the caller discards the snapshot), never anything outside it.
    /// </exception>
    public static LayerApplyResult Apply(Stream layer, string targetDir, LayerApplyOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(layer);
        options ??= new LayerApplyOptions();
        using Stream uncompressed = LayerDecompression.Open(layer, out LayerCompression compression);
        using var hashing = new HashingStream(uncompressed);
        using RootedDirectory root = RootedDirectory.Open(targetDir);
        using var parents = new ParentDirectoryCache(root);
        var reader = new LayerTarReader(hashing);
        var directories = new List<(string Path, TarHeader Header)>();
        long unpackedSize = 0;

        while (reader.Next() is { } header)
        {
            cancellationToken.ThrowIfCancellationRequested();
            unpackedSize += LayerSize.Of(header);
            try
            {
                ApplyEntry(root, parents, reader, header, options, directories);
            }
            catch (NativeCallException e)
            {
                throw new ImagesException(e.Kind, $"layer entry `{header.Name}`: {e.Message}", e);
            }
        }
        reader.Drain();

        // Directory times last, deepest first: creating their contents changed them.
        for (int i = directories.Count - 1; i >= 0; i--)
            SetDirectoryTime(root, directories[i].Path, directories[i].Header);

        return new LayerApplyResult(hashing.GetDigest(), hashing.BytesHashed, compression, unpackedSize);
    }

    private static void ApplyEntry(RootedDirectory root, ParentDirectoryCache parents, LayerTarReader reader, TarHeader h, LayerApplyOptions options,
        List<(string, TarHeader)> directories)
    {
        string path = RootedDirectory.CleanPath(h.Name, h.Name);
        if (path.Length == 0)
        {
            if (h.Kind != TarEntryKind.Directory) throw RootedDirectory.Refused(h.Name, "the root of the layer can only be a directory");
            SetAttributes(root.Root, isOPath: false, h, options, path);
            directories.Add((path, h));
            return;
        }

        var (parentPath, leaf) = RootedDirectory.Split(path);
        SafeFileHandle parent = parents.Open(parentPath, h.Name);

        if (leaf.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            ApplyWhiteout(parent, path, leaf, h);
            return;
        }

        // Each kind is created first and what is in the way removed only when creation says EEXIST:
        // a layer's upper directory starts empty, so the common case costs no lookup.
        switch (h.Kind)
        {
            case TarEntryKind.Directory:
                if (Interop.mkdirat(parent, leaf, 0x1C0 /* 0700 until chmod */) < 0)
                {
                    if (Interop.LastErrno != Interop.Errno.EEXIST) throw Interop.Error("mkdirat", path);
                    // Merge into an existing directory, as tar does; anything else there goes.
                    if (!Interop.TryStatAt(parent, leaf, out Interop.Statx existing, out _) || !existing.IsDirectory)
                    {
                        RootedDirectory.RemoveTree(parent, leaf, path);
                        if (Interop.mkdirat(parent, leaf, 0x1C0) < 0) throw Interop.Error("mkdirat", path);
                    }
                }
                using (SafeFileHandle dir = Interop.OpenAt(parent, leaf, Interop.O_RDONLY | Interop.O_DIRECTORY | Interop.O_NOFOLLOW, 0, path))
                    SetAttributes(dir, isOPath: false, h, options, path);
                directories.Add((path, h));
                break;

            case TarEntryKind.File:
                // O_EXCL|O_NOFOLLOW: a name already there (a symlink included) fails the creation
                // instead of being written through; it is removed and the creation tried again.
                int create = Interop.O_WRONLY | Interop.O_CREAT | Interop.O_EXCL | Interop.O_NOFOLLOW;
                SafeFileHandle? created = Interop.TryOpenAt(parent, leaf, create, 0x180, out int errno);
                if (created is null && errno == Interop.Errno.EEXIST)
                {
                    RootedDirectory.RemoveTree(parent, leaf, path);
                    created = Interop.TryOpenAt(parent, leaf, create, 0x180, out errno);
                }
                using (SafeFileHandle file = created ?? throw new NativeCallException(errno, "openat", path))
                {
                    using (var output = new FileStream(file, FileAccess.Write, bufferSize: 0))
                    {
                        reader.CopyData(output);
                        SetAttributes(file, isOPath: false, h, options, path);
                        SetTime(file, h, path);
                    }
                }
                break;

            case TarEntryKind.Symlink:
                if (h.LinkName.Length == 0 || h.LinkName.Contains('\0')) throw RootedDirectory.Refused(h.Name, "empty or invalid symlink target");
                if (Interop.symlinkat(h.LinkName, parent, leaf) < 0)
                {
                    if (Interop.LastErrno != Interop.Errno.EEXIST) throw Interop.Error("symlinkat", path);
                    RootedDirectory.RemoveTree(parent, leaf, path);
                    if (Interop.symlinkat(h.LinkName, parent, leaf) < 0) throw Interop.Error("symlinkat", path);
                }
                SetAttributesNoFollow(parent, leaf, h, options, path);
                SetTime(parent, leaf, h, path);
                break;

            case TarEntryKind.Hardlink:
                ApplyHardlink(root, parent, path, leaf, h);
                break;

            case TarEntryKind.CharDevice or TarEntryKind.BlockDevice or TarEntryKind.Fifo:
                bool whiteoutDevice = h.Kind == TarEntryKind.CharDevice && h.DevMajor == 0 && h.DevMinor == 0;
                if (h.Kind != TarEntryKind.Fifo && !whiteoutDevice && !options.AllowDeviceNodes)
                    throw RootedDirectory.Refused(h.Name, $"device nodes are not allowed ({h.Kind} {h.DevMajor}:{h.DevMinor})");
                uint type = h.Kind switch
                {
                    TarEntryKind.CharDevice => Interop.S_IFCHR,
                    TarEntryKind.BlockDevice => Interop.S_IFBLK,
                    _ => Interop.S_IFIFO,
                };
                ulong dev = Interop.MakeDev(h.DevMajor, h.DevMinor);
                if (Interop.mknodat(parent, leaf, type | 0x180, dev) < 0)
                {
                    if (Interop.LastErrno != Interop.Errno.EEXIST) throw Interop.Error("mknodat", path);
                    RootedDirectory.RemoveTree(parent, leaf, path);
                    if (Interop.mknodat(parent, leaf, type | 0x180, dev) < 0) throw Interop.Error("mknodat", path);
                }
                SetAttributesNoFollow(parent, leaf, h, options, path);
                SetTime(parent, leaf, h, path);
                break;
        }
    }

    private static void ApplyWhiteout(SafeFileHandle parent, string path, string leaf, TarHeader h)
    {
        if (leaf == OpaqueWhiteout)
        {
            // The directory hides everything of the lower layers; entries of this layer stay.
            Interop.SetXattr(parent, isOPath: true, OverlayOpaqueXattr, "y"u8, RootedDirectory.Split(path).Parent);
            return;
        }
        if (leaf.StartsWith(WhiteoutPrefix + WhiteoutPrefix, StringComparison.Ordinal))
            return; // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content
        string victim = leaf[WhiteoutPrefix.Length..];
        if (victim is "" or "." or "..") throw RootedDirectory.Refused(h.Name, "whiteout of an invalid name");
        string victimPath = RootedDirectory.Split(path).Parent is { Length: > 0 } p ? p + "/" + victim : victim;
        RootedDirectory.RemoveTree(parent, victim, victimPath);
        if (Interop.mknodat(parent, victim, Interop.S_IFCHR, 0) < 0) throw Interop.Error("mknodat (whiteout)", victimPath);
    }

    private static void ApplyHardlink(RootedDirectory root, SafeFileHandle parent, string path, string leaf, TarHeader h)
    {
        // The target is cleaned like a name (so `..` cannot climb out), its directory is resolved
        // beneath the root, and linkat does not follow a symlink at the target's last component:
        // the new link can only name an inode that already has a name inside the target.
        string target = RootedDirectory.CleanPath(h.LinkName, h.Name, "hardlink target");
        if (target.Length == 0) throw RootedDirectory.Refused(h.Name, "hardlink to the root directory");
        var (targetParentPath, targetLeaf) = RootedDirectory.Split(target);
        using SafeFileHandle targetParent = root.TryOpenDirectory(targetParentPath, out int errno)
            ?? throw errno switch
            {
                Interop.Errno.EXDEV => RootedDirectory.Refused(h.Name, $"hardlink target `{h.LinkName}` resolves outside the target directory"),
                Interop.Errno.ENOENT => RootedDirectory.Refused(h.Name, $"hardlink target `{h.LinkName}` does not exist"),
                _ => new NativeCallException(errno, "openat2", targetParentPath),
            };
        if (!Interop.TryStatAt(targetParent, targetLeaf, out Interop.Statx targetStat, out errno))
            throw errno == Interop.Errno.ENOENT
                ? RootedDirectory.Refused(h.Name, $"hardlink target `{h.LinkName}` does not exist")
                : new NativeCallException(errno, "statx", target);
        if (targetStat.IsDirectory) throw RootedDirectory.Refused(h.Name, $"hardlink target `{h.LinkName}` is a directory");
        if (Interop.TryStatAt(parent, leaf, out Interop.Statx existing, out _)
            && existing.Ino == targetStat.Ino && existing.DevMajor == targetStat.DevMajor && existing.DevMinor == targetStat.DevMinor)
            return; // already this inode
        RootedDirectory.RemoveTree(parent, leaf, path);
        if (Interop.linkat(targetParent, targetLeaf, parent, leaf, 0) < 0) throw Interop.Error("linkat", path);
    }

    /// <summary>Owner, then mode (chown clears set-id bits), then xattrs (chown also clears security.capability).</summary>
    private static void SetAttributes(SafeFileHandle fd, bool isOPath, TarHeader h, LayerApplyOptions options, string path)
    {
        if (options.PreserveOwnership && Interop.fchownat(fd, "", (uint)h.Uid, (uint)h.Gid, Interop.AT_EMPTY_PATH) < 0)
            throw Interop.Error("lchown", path);
        if (isOPath)
        {
            if (Interop.chmod(Interop.ProcFdPath(fd), h.Mode) < 0) throw Interop.Error("chmod", path);
        }
        else if (Interop.fchmod(fd, h.Mode) < 0)
        {
            throw Interop.Error("fchmod", path);
        }
        SetXattrs(fd, isOPath, h, path);
    }

    /// <summary>Attributes of a symlink, device or fifo, through an O_PATH|O_NOFOLLOW fd on the name just created.</summary>
    private static void SetAttributesNoFollow(SafeFileHandle parent, string leaf, TarHeader h, LayerApplyOptions options, string path)
    {
        if (h.Kind == TarEntryKind.Symlink && h.Xattrs.Count == 0)
        {
            // Only an owner to set, and lchown by name never follows the link: no fd needed.
            if (options.PreserveOwnership && Interop.fchownat(parent, leaf, (uint)h.Uid, (uint)h.Gid, Interop.AT_SYMLINK_NOFOLLOW) < 0)
                throw Interop.Error("lchown", path);
            return;
        }
        using SafeFileHandle node = Interop.OpenAt(parent, leaf, Interop.O_PATH | Interop.O_NOFOLLOW, 0, path);
        if (options.PreserveOwnership && Interop.fchownat(node, "", (uint)h.Uid, (uint)h.Gid, Interop.AT_EMPTY_PATH) < 0)
            throw Interop.Error("lchown", path);
        if (h.Kind != TarEntryKind.Symlink) // Linux ignores symlink modes
        {
            Interop.Statx st = Interop.Stat(node, path);
            if (st.Type == Interop.S_IFLNK) throw RootedDirectory.Refused(h.Name, "replaced by a symlink while being created");
            if (Interop.chmod(Interop.ProcFdPath(node), h.Mode) < 0) throw Interop.Error("chmod", path);
        }
        SetXattrs(node, isOPath: true, h, path);
    }

    private static void SetXattrs(SafeFileHandle fd, bool isOPath, TarHeader h, string path)
    {
        foreach (var (name, value) in h.Xattrs)
        {
            // Security: overlayfs reads its own trusted.overlay.* xattrs (opaque, redirect, origin,
            // metacopy) to decide what the merged tree shows; a layer may only express whiteouts
            // and opaque directories through .wh. names, never by setting these directly.
            if (name.StartsWith("trusted.overlay.", StringComparison.Ordinal)) continue;
            Interop.SetXattr(fd, isOPath, name, value, path);
        }
    }

    private static unsafe void SetTime(SafeFileHandle parent, string leaf, TarHeader h, string path)
    {
        Interop.Timespec* times = stackalloc Interop.Timespec[2];
        times[0] = new Interop.Timespec { Sec = h.MtimeSeconds, Nsec = h.MtimeNanoseconds }; // atime = mtime, as Docker
        times[1] = times[0];
        if (Interop.utimensat(parent, leaf, times, Interop.AT_SYMLINK_NOFOLLOW) < 0) throw Interop.Error("utimensat", path);
    }

    private static unsafe void SetTime(SafeFileHandle file, TarHeader h, string path)
    {
        Interop.Timespec* times = stackalloc Interop.Timespec[2];
        times[0] = new Interop.Timespec { Sec = h.MtimeSeconds, Nsec = h.MtimeNanoseconds };
        times[1] = times[0];
        if (Interop.futimens(file, times) < 0) throw Interop.Error("futimens", path);
    }

    private static unsafe void SetDirectoryTime(RootedDirectory root, string path, TarHeader h)
    {
        if (path.Length == 0)
        {
            Interop.Timespec* times = stackalloc Interop.Timespec[2];
            times[0] = new Interop.Timespec { Sec = h.MtimeSeconds, Nsec = h.MtimeNanoseconds };
            times[1] = times[0];
            if (Interop.futimens(root.Root, times) < 0) throw Interop.Error("futimens", root.RootPath);
            return;
        }
        // The directory may have been replaced or removed by a later entry; then it has no time to set.
        var (parentPath, leaf) = RootedDirectory.Split(path);
        using SafeFileHandle? parent = root.TryOpenDirectory(parentPath, out _);
        if (parent is null || !Interop.TryStatAt(parent, leaf, out Interop.Statx st, out _) || !st.IsDirectory) return;
        SetTime(parent, leaf, h, path);
    }

    /// <summary>
    /// The parent directory of the last entry, kept open for the next: entries of one directory
    /// come together in a tar, and each openat2 from the root is a full path walk.
    /// Security: the kept fd must be what resolving the path again would give. An entry replaces or
    /// removes only names in its own parent directory (the entry itself, a whiteout's victim); so
    /// an entry that replaces the kept directory, or one above it, has a parent higher up, which
    /// takes the kept one's place before anything is replaced, and the next entry below resolves
    /// its path afresh (through the symlink now there, under RESOLVE_BENEATH). That is why only
    /// one directory is kept. Nothing else changes the tree while a layer is applied.
    /// </summary>
    private sealed class ParentDirectoryCache(RootedDirectory root) : IDisposable
    {
        private string? _path;
        private SafeFileHandle? _handle;

        public SafeFileHandle Open(string parentPath, string entryName)
        {
            if (_handle is not null && _path == parentPath) return _handle;
            SafeFileHandle opened = root.OpenDirectory(parentPath, entryName, create: true);
            Drop();
            _path = parentPath;
            return _handle = opened;
        }

        private void Drop()
        {
            _handle?.Dispose();
            _handle = null;
            _path = null;
        }

        public void Dispose() => Drop();
    }
}
