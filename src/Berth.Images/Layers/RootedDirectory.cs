using Microsoft.Win32.SafeHandles;

namespace Berth.Images.Layers;

/// <summary>
/// A directory fd under which every path of a layer is resolved by the kernel.
///
/// Security: all lookups go through openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS on the
/// fd of the target directory. The kernel then refuses (EXDEV) any resolution that would leave the
/// directory — a `..` above it, an absolute symlink, a relative symlink climbing out — and refuses
/// /proc magic links; this holds even if the tree changes while we work, because there is no
/// user-space check-then-use. Only parent directories are resolved that way; the last component
/// is always handled with an *at call on the parent fd with no-follow semantics (O_NOFOLLOW,
/// AT_SYMLINK_NOFOLLOW, O_EXCL creation, linkat without AT_SYMLINK_FOLLOW), so a symlink planted
/// at the final name is replaced or refused, never written through.
/// </summary>
internal sealed class RootedDirectory : IDisposable
{
    private const ulong Resolve = Interop.RESOLVE_BENEATH | Interop.RESOLVE_NO_MAGICLINKS;

    private RootedDirectory(SafeFileHandle root, string path)
    {
        Root = root;
        RootPath = path;
    }

    /// <summary>The target directory (opened O_RDONLY|O_DIRECTORY).</summary>
    public SafeFileHandle Root { get; }

    public string RootPath { get; }

    public static RootedDirectory Open(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        return new RootedDirectory(Interop.Open(full, Interop.O_RDONLY | Interop.O_DIRECTORY), full);
    }

    /// <summary>
    /// Turns a tar entry name into a clean relative path: empty and `.` components dropped, a
    /// leading `/` dropped (absolute names are taken relative to the target, as Docker and GNU tar
    /// do), `..` applied lexically and refused if it would climb above the target.
    /// </summary>
    public static string CleanPath(string name, string entryName, string what = "path")
    {
        if (name.Contains('\0')) throw Refused(entryName, $"{what} contains a NUL byte");
        var parts = new List<string>();
        foreach (string part in name.Split('/'))
        {
            if (part is "" or ".") continue;
            if (part == "..")
            {
                if (parts.Count == 0) throw Refused(entryName, $"{what} `{name}` leads outside the target directory (`..`)");
                parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(part);
        }
        return string.Join('/', parts);
    }

    public static (string Parent, string Leaf) Split(string relative)
    {
        int slash = relative.LastIndexOf('/');
        return slash < 0 ? ("", relative) : (relative[..slash], relative[(slash + 1)..]);
    }

    /// <summary>Resolves a directory beneath the root to an O_PATH fd, or returns null with the errno.</summary>
    public SafeFileHandle? TryOpenDirectory(string relative, out int errno)
        => Interop.TryOpenAt2(Root, relative.Length == 0 ? "." : relative, Interop.O_PATH | Interop.O_DIRECTORY, Resolve, out errno);

    /// <summary>
    /// The directory <paramref name="parent"/> (relative; "" is the root) as an O_PATH fd, creating
    /// missing directories (0755, owned by the caller) the way tar does for archives that omit them.
    /// </summary>
    public SafeFileHandle OpenDirectory(string parent, string entryName, bool create)
    {
        SafeFileHandle? dir = TryOpenDirectory(parent, out int errno);
        if (dir is not null) return dir;
        if (errno != Interop.Errno.ENOENT || !create) throw ResolveError(errno, parent, entryName);

        // Walk down from the root, creating each missing component. Every prefix is resolved
        // again from the root by the kernel, so a component that turns out to be a symlink is
        // followed (or refused) under the same RESOLVE_BENEATH rules.
        SafeFileHandle current = TryOpenDirectory("", out errno) ?? throw ResolveError(errno, "", entryName);
        string prefix = "";
        foreach (string component in parent.Split('/'))
        {
            prefix = prefix.Length == 0 ? component : prefix + "/" + component;
            SafeFileHandle? next = TryOpenDirectory(prefix, out errno);
            if (next is null && errno == Interop.Errno.ENOENT)
            {
                if (Interop.mkdirat(current, component, 0x1ED /* 0755 */) < 0 && Interop.LastErrno != Interop.Errno.EEXIST)
                {
                    current.Dispose();
                    throw Interop.Error("mkdirat", prefix, $"layer entry `{entryName}`");
                }
                next = TryOpenDirectory(prefix, out errno);
            }
            current.Dispose();
            current = next ?? throw ResolveError(errno, prefix, entryName);
        }
        return current;
    }

    /// <summary>Removes whatever is at <paramref name="leaf"/> in <paramref name="dir"/>; a directory recursively. Never follows symlinks.</summary>
    public static void RemoveTree(SafeFileHandle dir, string leaf, string displayPath)
    {
        if (!Interop.TryStatAt(dir, leaf, out Interop.Statx st, out int errno))
        {
            if (errno == Interop.Errno.ENOENT) return;
            throw new NativeCallException(errno, "statx", displayPath);
        }
        if (st.IsDirectory)
        {
            using (SafeFileHandle child = Interop.OpenAt(dir, leaf, Interop.O_RDONLY | Interop.O_DIRECTORY | Interop.O_NOFOLLOW, 0, displayPath))
            {
                // Never descend into another filesystem: a mount point inside the tree (a
                // forgotten bind or overlay mount) would otherwise have its contents deleted.
                Interop.Statx parentStat = Interop.Stat(dir, displayPath);
                if (st.DevMajor != parentStat.DevMajor || st.DevMinor != parentStat.DevMinor)
                    throw new ImagesException(ImagesErrorKind.Conflict, $"refusing to remove `{displayPath}`: it is a mount point");
                foreach (string name in Interop.ReadDirectory(child, displayPath))
                    RemoveTree(child, name, displayPath + "/" + name);
            }
            if (Interop.unlinkat(dir, leaf, Interop.AT_REMOVEDIR) < 0) throw Interop.Error("rmdir", displayPath);
        }
        else if (Interop.unlinkat(dir, leaf, 0) < 0 && Interop.LastErrno != Interop.Errno.ENOENT)
        {
            throw Interop.Error("unlink", displayPath);
        }
    }

    public static ImagesException Refused(string entryName, string why)
        => new(ImagesErrorKind.InvalidArgument, $"layer entry `{entryName}` refused: {why}");

    private static ImagesException ResolveError(int errno, string path, string entryName) => errno switch
    {
        Interop.Errno.EXDEV => Refused(entryName, $"`{path}` resolves outside the target directory (through a symlink or `..`)"),
        Interop.Errno.ELOOP => Refused(entryName, $"`{path}` has too many levels of symlinks or crosses a magic link"),
        Interop.Errno.ENOTDIR => Refused(entryName, $"a component of `{path}` is not a directory"),
        Interop.Errno.ENOSYS => new ImagesException(ImagesErrorKind.Internal, "openat2(2) is not available: Linux 5.6 or later is required to unpack layers safely"),
        _ => new NativeCallException(errno, "openat2", path, $"layer entry `{entryName}`"),
    };

    public void Dispose() => Root.Dispose();
}
