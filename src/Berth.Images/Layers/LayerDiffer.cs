using Berth.Images.Content;
using Microsoft.Win32.SafeHandles;

namespace Berth.Images.Layers;

/// <summary>What diffing an upper directory produced.</summary>
/// <param name="DiffId">The digest of the tar written (uncompressed), the new layer's diffID.</param>
public sealed record LayerDiffResult(Digest DiffId, long Size);

/// <summary>
/// Turns the upper directory of an overlay snapshot back into a layer tar, the inverse of
/// <see cref="LayerApplier"/>: overlay whiteouts (0/0 character devices) become <c>.wh.NAME</c>
/// entries, opaque directories (<c>trusted.overlay.opaque=y</c>) a <c>.wh..wh..opq</c> entry, and
/// owners, modes, mtimes (whole seconds), xattrs and hardlinks are kept. The upper directory alone
/// describes the change exactly as long as the overlay was mounted without redirect_dir and
/// metacopy (the snapshotter never enables them), so the lower layers are not read.
/// Entries come in a stable order (parents first, names by ordinal), so the same tree always
/// gives the same tar and the same diffID. Sockets are skipped, as Docker does.
/// </summary>
public static class LayerDiffer
{
    /// <summary>Writes the layer tar of <paramref name="upperDir"/> to <paramref name="output"/>.</summary>
    public static LayerDiffResult Diff(string upperDir, Stream output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(output);
        string full = Path.GetFullPath(upperDir);
        using var hashing = new HashingStream(output, leaveOpen: true);
        var writer = new LayerTarWriter(hashing);
        var hardlinks = new Dictionary<(uint, uint, ulong), string>();
        using (SafeFileHandle root = Interop.Open(full, Interop.O_RDONLY | Interop.O_DIRECTORY))
            WalkDirectory(root, "", writer, hardlinks, cancellationToken);
        writer.Finish();
        return new LayerDiffResult(hashing.GetDigest(), hashing.BytesHashed);
    }

    // Everything is opened relative to the fd of its parent with O_NOFOLLOW, so a symlink in the
    // upper directory is archived as a symlink and never followed.
    private static void WalkDirectory(SafeFileHandle dir, string prefix, LayerTarWriter writer,
        Dictionary<(uint, uint, ulong), string> hardlinks, CancellationToken cancellationToken)
    {
        List<string> names = Interop.ReadDirectory(dir, prefix.Length == 0 ? "." : prefix);
        names.Sort(StringComparer.Ordinal);
        foreach (string name in names)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string path = prefix + name;
            Interop.Statx st = Interop.StatAt(dir, name, path);
            var header = new TarHeader
            {
                Name = path,
                Mode = st.Permissions,
                Uid = st.Uid,
                Gid = st.Gid,
                MtimeSeconds = st.MtimeSec,
            };
            switch (st.Type)
            {
                case Interop.S_IFCHR when st.RdevMajor == 0 && st.RdevMinor == 0:
                    header.Name = prefix + ".wh." + name;
                    header.Kind = TarEntryKind.File;
                    header.Mode = 0;
                    // A whiteout is overlayfs' own, made as the mounter: under berthd's --userns-remap that is an id
                    // outside the container's ranges (RemappedRootfs). Its owner means nothing; a layer says root.
                    header.Uid = 0;
                    header.Gid = 0;
                    writer.WriteEntry(header);
                    break;

                case Interop.S_IFDIR:
                    using (SafeFileHandle child = Interop.OpenAt(dir, name, Interop.O_RDONLY | Interop.O_DIRECTORY | Interop.O_NOFOLLOW, 0, path))
                    {
                        header.Kind = TarEntryKind.Directory;
                        bool opaque = AddXattrs(child, header, path);
                        writer.WriteEntry(header);
                        if (opaque)
                        {
                            writer.WriteEntry(new TarHeader
                            {
                                Name = path + "/.wh..wh..opq", Kind = TarEntryKind.File, Uid = st.Uid, Gid = st.Gid, MtimeSeconds = st.MtimeSec,
                            });
                        }
                        WalkDirectory(child, path + "/", writer, hardlinks, cancellationToken);
                    }
                    break;

                case Interop.S_IFREG:
                    if (st.Nlink > 1)
                    {
                        var key = (st.DevMajor, st.DevMinor, st.Ino);
                        if (hardlinks.TryGetValue(key, out string? first))
                        {
                            header.Kind = TarEntryKind.Hardlink;
                            header.LinkName = first;
                            writer.WriteEntry(header);
                            break;
                        }
                        hardlinks[key] = path;
                    }
                    using (SafeFileHandle file = Interop.OpenAt(dir, name, Interop.O_RDONLY | Interop.O_NOFOLLOW, 0, path))
                    using (var data = new FileStream(file, FileAccess.Read, bufferSize: 0))
                    {
                        header.Kind = TarEntryKind.File;
                        header.Size = (long)st.Size;
                        AddXattrs(file, header, path);
                        writer.WriteEntry(header, data);
                    }
                    break;

                case Interop.S_IFLNK or Interop.S_IFCHR or Interop.S_IFBLK or Interop.S_IFIFO:
                    header.Kind = st.Type switch
                    {
                        Interop.S_IFLNK => TarEntryKind.Symlink,
                        Interop.S_IFCHR => TarEntryKind.CharDevice,
                        Interop.S_IFBLK => TarEntryKind.BlockDevice,
                        _ => TarEntryKind.Fifo,
                    };
                    if (header.Kind == TarEntryKind.Symlink) header.LinkName = Interop.ReadLinkAt(dir, name, path);
                    header.DevMajor = st.RdevMajor;
                    header.DevMinor = st.RdevMinor;
                    using (SafeFileHandle node = Interop.OpenAt(dir, name, Interop.O_PATH | Interop.O_NOFOLLOW, 0, path))
                        AddXattrs(node, header, path);
                    writer.WriteEntry(header);
                    break;

                default:
                    break; // sockets
            }
        }
    }

    /// <summary>Copies xattrs into the header, except overlayfs' own; returns whether the directory is opaque.</summary>
    private static bool AddXattrs(SafeFileHandle fd, TarHeader header, string path)
    {
        bool opaque = false;
        foreach (var (name, value) in Interop.ListXattrs(fd, path))
        {
            if (name.StartsWith("trusted.overlay.", StringComparison.Ordinal))
            {
                opaque |= name == "trusted.overlay.opaque" && value.AsSpan().SequenceEqual("y"u8);
                continue;
            }
            header.Xattrs.Add(new(name, value));
        }
        header.Xattrs.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return opaque;
    }
}
