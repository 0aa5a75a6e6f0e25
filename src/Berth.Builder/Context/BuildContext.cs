using System.Security.Cryptography;
using System.Text;
using Berth.Images;
using Microsoft.Win32.SafeHandles;
using Interop = Berth.Images.Interop;

namespace Berth.Builder.Context;

/// <summary>One file, directory or symlink a COPY/ADD source selects, as the walk meets it.</summary>
/// <param name="Destination">Its path relative to the copy's destination directory ("" for a source file copied to a file name).</param>
internal readonly record struct SourceEntry(string ContextPath, string Destination, uint Type, uint Mode, long Size, DateTimeOffset ModificationTime, string? LinkTarget);

/// <summary>
/// The build context: the client's tar extracted into a directory of its own (every path resolved
/// beneath it, so a hostile archive cannot write elsewhere), with what <c>.dockerignore</c>
/// excludes removed, as dockerd's classic builder does even when a client did not filter.
/// COPY and ADD read their sources from it, resolved beneath the root: `..`, absolute paths and
/// symlinks leading out of the context are refused.
/// </summary>
public sealed class BuildContext : IDisposable
{
    private readonly SafeFileHandle _root;
    // The directory Dispose removes (the context's own, or the git clone it is a subdirectory of); null when borrowed.
    private readonly string? _owned;
    private readonly bool _imageRootfs;
    // Lookups in the client's context stay beneath its root (a symlink out of it is refused); in
    // an image's root filesystem (COPY --from) they resolve as inside the container (absolute
    // symlinks are the image's own), never reaching the host.
    private readonly ulong _resolve;

    private BuildContext(string root, bool owned, bool imageRootfs = false, string? ownedDirectory = null)
    {
        Root = Path.GetFullPath(root);
        _owned = ownedDirectory ?? (owned ? Root : null);
        _imageRootfs = imageRootfs;
        _resolve = Interop.RESOLVE_NO_MAGICLINKS | (imageRootfs ? Interop.RESOLVE_IN_ROOT : Interop.RESOLVE_BENEATH);
        _root = Interop.Open(Root, Interop.O_PATH | Interop.O_DIRECTORY);
    }

    /// <summary>An image's mounted root filesystem as the source of <c>COPY --from</c> (absolute source paths allowed).</summary>
    internal static BuildContext ForImageRootfs(string rootfs) => new(rootfs, owned: false, imageRootfs: true);

    public string Root { get; }

    /// <summary>The Dockerfile's text, read before <c>.dockerignore</c> was applied (it may exclude the Dockerfile itself, as Docker allows).</summary>
    public string DockerfileText { get; private set; } = "";

    /// <summary>
    /// Extracts <paramref name="tar"/> (plain or compressed) into a new directory under
    /// <paramref name="parentDirectory"/>, reads <paramref name="dockerfile"/> and applies
    /// <c>.dockerignore</c>. The directory goes with <see cref="Dispose"/>.
    /// </summary>
    public static BuildContext Extract(Stream tar, string parentDirectory, string dockerfile, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(parentDirectory);
        string root = Path.Combine(parentDirectory, "context-" + Guid.NewGuid().ToString("N")[..16]);
        Directory.CreateDirectory(root);
        var context = new BuildContext(root, owned: true);
        try
        {
            using (var writer = new TreeWriter(root, inRoot: false))
                writer.ExtractTar(MaybeDecompressed(tar), "", "build context", cancellationToken);
            context.Prepare(dockerfile);
            return context;
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Takes <paramref name="directory"/> (made for this build: a git clone) as the context from its
    /// <paramref name="subdirectory"/> on, resolved inside it as dockerd's FollowSymlinkInScope does (a
    /// symlink cannot lead out); reads the Dockerfile and applies <c>.dockerignore</c>. The whole
    /// directory goes with <see cref="Dispose"/>, also when this fails.
    /// </summary>
    public static BuildContext Adopt(string directory, string subdirectory, string dockerfile, string what)
    {
        string full = Path.GetFullPath(directory);
        BuildContext? context = null;
        try
        {
            string root = full;
            if (subdirectory.Length > 0)
            {
                using SafeFileHandle top = Interop.Open(full, Interop.O_PATH | Interop.O_DIRECTORY);
                SafeFileHandle? sub = Interop.TryOpenAt2(top, subdirectory, Interop.O_PATH | Interop.O_DIRECTORY, Interop.RESOLVE_IN_ROOT | Interop.RESOLVE_NO_MAGICLINKS, out int errno);
                if (sub is null)
                    throw new BuildException(BuildErrorKind.InvalidArgument, errno switch
                    {
                        Interop.Errno.ENOENT => $"stat {Path.Combine(full, subdirectory)}: no such file or directory",
                        Interop.Errno.ENOTDIR => $"error setting {what} context, not a directory: {subdirectory}",
                        _ => $"error setting {what} context: {new NativeCallException(errno, "openat2", subdirectory, what).Message}",
                    });
                // The directory the walk reached, by its real path (no symlink in it left to follow).
                using (sub) root = new FileInfo(Interop.ProcFdPath(sub)).LinkTarget ?? throw new BuildException(BuildErrorKind.Internal, $"cannot resolve {subdirectory}");
            }
            context = new BuildContext(root, owned: true, ownedDirectory: full);
            context.Prepare(dockerfile);
            return context;
        }
        catch
        {
            if (context is not null) context.Dispose();
            else new BuildContext(full, owned: true).Dispose();
            throw;
        }
    }

    /// <summary>
    /// A context of a Dockerfile alone (a remote URL that answered text/plain, as dockerd takes it): an
    /// empty directory under <paramref name="parentDirectory"/>, which goes with <see cref="Dispose"/>.
    /// </summary>
    public static BuildContext FromDockerfileText(string text, string parentDirectory)
    {
        Directory.CreateDirectory(parentDirectory);
        string root = Path.Combine(parentDirectory, "context-" + Guid.NewGuid().ToString("N")[..16]);
        Directory.CreateDirectory(root);
        return new BuildContext(root, owned: true) { DockerfileText = text };
    }

    /// <summary>Uses an existing directory as the context (it is left in place).</summary>
    public static BuildContext FromDirectory(string directory, string dockerfile)
    {
        var context = new BuildContext(directory, owned: false);
        try
        {
            context.DockerfileText = context.ReadFile(dockerfile, "Dockerfile");
            return context;
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    private void Prepare(string dockerfile)
    {
        DockerfileText = ReadFile(dockerfile, "Dockerfile");
        string? ignoreText = TryReadFile(".dockerignore");
        if (ignoreText is null) return;
        DockerIgnore ignore = DockerIgnore.Parse(ignoreText);
        using SafeFileHandle root = OpenDirectory("", ".");
        RemoveIgnored(root, "", ignore);
    }

    private static void RemoveIgnored(SafeFileHandle dir, string prefix, DockerIgnore ignore)
    {
        foreach (string name in Interop.ReadDirectory(dir, prefix.Length == 0 ? "." : prefix))
        {
            string path = prefix.Length == 0 ? name : prefix + "/" + name;
            bool isDirectory = Interop.TryStatAt(dir, name, out Interop.Statx st, out _) && st.IsDirectory;
            if (ignore.IsExcluded(path))
            {
                if (isDirectory && ignore.MayIncludeUnder(path))
                {
                    using SafeFileHandle child = Interop.OpenAt(dir, name, Interop.O_RDONLY | Interop.O_DIRECTORY | Interop.O_NOFOLLOW, 0, path);
                    RemoveIgnored(child, path, ignore);
                    continue;
                }
                Berth.Images.Layers.RootedDirectory.RemoveTree(dir, name, path);
            }
            else if (isDirectory)
            {
                using SafeFileHandle child = Interop.OpenAt(dir, name, Interop.O_RDONLY | Interop.O_DIRECTORY | Interop.O_NOFOLLOW, 0, path);
                RemoveIgnored(child, path, ignore);
            }
        }
    }

    /// <summary>The tar as it is, or decompressed (gzip, bzip2, xz, zstd), as dockerd's archive.DecompressStream sniffs it.</summary>
    private static Stream MaybeDecompressed(Stream tar)
        => Berth.Images.Layers.LayerDecompression.Open(new BufferedStream(tar, 64 * 1024), out _);

    /// <summary>Reads a regular file of the context (resolved beneath its root), for the Dockerfile.</summary>
    public string ReadFile(string relative, string what)
        => TryReadFile(relative) ?? throw new BuildException(BuildErrorKind.NotFound, $"{what} `{relative}` not found in the build context");

    private string? TryReadFile(string relative)
    {
        string clean = CleanSource(_imageRootfs ? relative.TrimStart('/') : relative, "file");
        SafeFileHandle? file = Interop.TryOpenAt2(_root, clean, Interop.O_RDONLY, _resolve, out int errno);
        if (file is null)
        {
            if (errno == Interop.Errno.ENOENT) return null;
            throw SourceError(errno, relative);
        }
        using (file)
        using (var stream = new FileStream(file, FileAccess.Read, 1, isAsync: false))
        using (var reader = new StreamReader(stream, Encoding.UTF8))
        {
            return reader.ReadToEnd();
        }
    }

    /// <summary>
    /// A source path of COPY/ADD made relative to the context root. Absolute paths and `..` that
    /// leave the root are refused (the issue's rule; Docker itself takes `/x` as the context's x).
    /// </summary>
    internal static string CleanSource(string source, string what)
    {
        if (source.StartsWith('/'))
            throw new BuildException(BuildErrorKind.InvalidArgument, $"{what} `{source}` is an absolute path: sources are relative to the build context, and nothing outside it can be copied");
        var parts = new List<string>();
        foreach (string part in source.Split('/'))
        {
            if (part is "" or ".") continue;
            if (part == "..")
            {
                if (parts.Count == 0) throw new BuildException(BuildErrorKind.InvalidArgument, $"{what} `{source}` is outside the build context (forbidden path)");
                parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(part);
        }
        return string.Join('/', parts);
    }

    /// <summary>The context paths a COPY/ADD source names: itself, or what its glob matches (sorted); empty when nothing matches.</summary>
    internal List<string> Match(string source)
    {
        string clean = CleanSource(_imageRootfs ? source.TrimStart('/') : source, "source");
        if (clean.IndexOfAny(['*', '?', '[']) < 0) return [clean];
        var matches = new List<string>();
        MatchComponents(clean.Split('/'), 0, "", matches);
        matches.Sort(StringComparer.Ordinal);
        return matches;
    }

    private void MatchComponents(string[] pattern, int index, string prefix, List<string> matches)
    {
        if (index == pattern.Length)
        {
            matches.Add(prefix);
            return;
        }
        string part = pattern[index];
        if (part.IndexOfAny(['*', '?', '[']) < 0)
        {
            string next = prefix.Length == 0 ? part : prefix + "/" + part;
            if (index == pattern.Length - 1 ? Exists(next) : IsDirectory(next)) MatchComponents(pattern, index + 1, next, matches);
            return;
        }
        using SafeFileHandle? dir = Interop.TryOpenAt2(_root, prefix.Length == 0 ? "." : prefix, Interop.O_RDONLY | Interop.O_DIRECTORY, _resolve, out _);
        if (dir is null) return;
        foreach (string name in Interop.ReadDirectory(dir, prefix))
        {
            if (!Glob.Match(part, name)) continue;
            string next = prefix.Length == 0 ? name : prefix + "/" + name;
            if (index < pattern.Length - 1 && !IsDirectory(next)) continue;
            MatchComponents(pattern, index + 1, next, matches);
        }
    }

    private bool Exists(string relative)
    {
        using SafeFileHandle? h = Interop.TryOpenAt2(_root, relative.Length == 0 ? "." : relative, Interop.O_PATH | Interop.O_NOFOLLOW, _resolve, out _);
        return h is not null;
    }

    private bool IsDirectory(string relative)
    {
        using SafeFileHandle? h = Interop.TryOpenAt2(_root, relative.Length == 0 ? "." : relative, Interop.O_PATH | Interop.O_DIRECTORY, _resolve, out _);
        return h is not null;
    }

    /// <summary>
    /// The host path of a context path, for <c>RUN --mount=type=bind</c>: looked up beneath the root as
    /// every source is (a symlink out of the context or a missing path is refused), then named by the
    /// kernel's path of what that lookup opened, so no later lookup can follow a link out.
    /// </summary>
    internal string HostPathOf(string relative)
    {
        string clean = CleanSource(relative, "mount source");
        using SafeFileHandle h = Interop.TryOpenAt2(_root, clean.Length == 0 ? "." : clean, Interop.O_PATH, _resolve, out int errno)
            ?? throw SourceError(errno, relative);
        return new FileInfo($"/proc/self/fd/{h.DangerousGetHandle()}").LinkTarget
            ?? throw new BuildException(BuildErrorKind.InvalidArgument, $"mount source `{relative}`: cannot name it");
    }

    /// <summary>Whether a matched source is a directory (following a top-level symlink beneath the root, as Docker follows it).</summary>
    internal bool IsDirectorySource(string relative) => IsDirectory(relative);

    /// <summary>
    /// Walks one source: a file (or a top-level symlink, followed beneath the root) is one entry
    /// with an empty destination; a directory yields its contents (not itself), depth first,
    /// parents before children, symlinks inside it kept as symlinks. <paramref name="visit"/> gets
    /// the entry and, for regular files, a way to open it.
    /// </summary>
    internal void Walk(string relative, Action<SourceEntry, Func<Stream>?> visit)
    {
        SafeFileHandle top = Interop.TryOpenAt2(_root, relative.Length == 0 ? "." : relative, Interop.O_PATH, _resolve, out int errno)
            ?? throw SourceError(errno, relative);
        using (top)
        {
            Interop.Statx st = Interop.Stat(top, relative);
            if (!st.IsDirectory)
            {
                if (st.Type != Interop.S_IFREG)
                    throw new BuildException(BuildErrorKind.InvalidArgument, $"source `{relative}` is not a regular file or directory");
                visit(new SourceEntry(relative, "", st.Type, st.Permissions, (long)st.Size, Time(st), null),
                    () => new FileStream(Interop.TryOpenAt2(_root, relative, Interop.O_RDONLY, _resolve, out int e) ?? throw SourceError(e, relative), FileAccess.Read, 1, isAsync: false));
                return;
            }
        }
        SafeFileHandle dir = Interop.TryOpenAt2(_root, relative.Length == 0 ? "." : relative, Interop.O_RDONLY | Interop.O_DIRECTORY, _resolve, out errno)
            ?? throw SourceError(errno, relative);
        using (dir) WalkDirectory(dir, relative, "", visit);
    }

    private static void WalkDirectory(SafeFileHandle dir, string contextPath, string destination, Action<SourceEntry, Func<Stream>?> visit)
    {
        List<string> names = Interop.ReadDirectory(dir, contextPath);
        names.Sort(StringComparer.Ordinal);
        foreach (string name in names)
        {
            string path = contextPath.Length == 0 ? name : contextPath + "/" + name;
            string dest = destination.Length == 0 ? name : destination + "/" + name;
            Interop.Statx st = Interop.StatAt(dir, name, path);
            switch (st.Type)
            {
                case Interop.S_IFDIR:
                    visit(new SourceEntry(path, dest, st.Type, st.Permissions, 0, Time(st), null), null);
                    using (SafeFileHandle child = Interop.OpenAt(dir, name, Interop.O_RDONLY | Interop.O_DIRECTORY | Interop.O_NOFOLLOW, 0, path))
                        WalkDirectory(child, path, dest, visit);
                    break;
                case Interop.S_IFREG:
                    visit(new SourceEntry(path, dest, st.Type, st.Permissions, (long)st.Size, Time(st), null),
                        () => new FileStream(Interop.OpenAt(dir, name, Interop.O_RDONLY | Interop.O_NOFOLLOW, 0, path), FileAccess.Read, 1, isAsync: false));
                    break;
                case Interop.S_IFLNK:
                    visit(new SourceEntry(path, dest, st.Type, st.Permissions, 0, Time(st), Interop.ReadLinkAt(dir, name, path)), null);
                    break;
                default:
                    break; // sockets, FIFOs, devices: not copied
            }
        }
    }

    /// <summary>
    /// The content checksum of what the sources select, for the cache key: paths, types, modes,
    /// link targets and file contents (not mtimes or owners, which COPY does not carry over; as
    /// Docker's classic builder, a touched but unchanged file still hits the cache).
    /// </summary>
    internal string Checksum(IEnumerable<string> sources)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[128 * 1024];
        foreach (string source in sources)
        {
            Walk(source, (entry, open) =>
            {
                hash.AppendData(Encoding.UTF8.GetBytes($"{entry.ContextPath}\0{entry.Destination}\0{entry.Type:x}\0{entry.Mode:x}\0{entry.LinkTarget}\0{entry.Size}\0"));
                if (open is null) return;
                using Stream s = open();
                int n;
                while ((n = s.Read(buffer)) > 0) hash.AppendData(buffer, 0, n);
            });
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>
    /// Whether ADD should unpack this source: a tar archive, plain or gzip-compressed (the
    /// formats .NET reads; a bzip2 or xz archive is refused rather than copied as a file).
    /// </summary>
    internal bool IsArchive(string relative)
    {
        using Stream s = OpenFile(relative);
        byte[] head = new byte[512];
        int n = s.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b) return true;
        if (n >= 3 && head[0] == 'B' && head[1] == 'Z' && head[2] == 'h')
            throw new BuildException(BuildErrorKind.InvalidArgument, $"ADD `{relative}`: bzip2 archives are not supported by this builder (tar and tar.gz are)");
        if (n >= 6 && head[0] == 0xfd && head[1] == (byte)'7' && head[2] == (byte)'z' && head[3] == (byte)'X' && head[4] == (byte)'Z' && head[5] == 0)
            throw new BuildException(BuildErrorKind.InvalidArgument, $"ADD `{relative}`: xz archives are not supported by this builder (tar and tar.gz are)");
        return n >= 262 && Encoding.ASCII.GetString(head, 257, 5) == "ustar";
    }

    /// <summary>The archive's tar stream (decompressed when gzip).</summary>
    internal Stream OpenArchive(string relative) => MaybeDecompressed(OpenFile(relative));

    private Stream OpenFile(string relative)
        => new FileStream(Interop.TryOpenAt2(_root, relative, Interop.O_RDONLY, _resolve, out int errno) ?? throw SourceError(errno, relative), FileAccess.Read, 1, isAsync: false);

    private SafeFileHandle OpenDirectory(string relative, string display)
        => Interop.TryOpenAt2(_root, relative.Length == 0 ? "." : relative, Interop.O_RDONLY | Interop.O_DIRECTORY, _resolve, out int errno)
            ?? throw SourceError(errno, display);

    private static DateTimeOffset Time(Interop.Statx st) => DateTimeOffset.FromUnixTimeSeconds(st.MtimeSec).AddTicks(st.MtimeNsec / 100);

    private Exception SourceError(int errno, string relative) => errno switch
    {
        Interop.Errno.ENOENT => new BuildException(BuildErrorKind.NotFound, $"source `{relative}` not found in " + (_imageRootfs ? "the stage's or image's files" : "the build context")),
        Interop.Errno.EXDEV => new BuildException(BuildErrorKind.InvalidArgument, $"source `{relative}` leads outside the build context through a symlink; refused"),
        Interop.Errno.ELOOP => new BuildException(BuildErrorKind.InvalidArgument, $"source `{relative}`: too many levels of symlinks"),
        Interop.Errno.ENOTDIR => new BuildException(BuildErrorKind.NotFound, $"source `{relative}`: a component of the path is not a directory"),
        _ => new NativeCallException(errno, "openat2", relative, "build context"),
    };

    public void Dispose()
    {
        _root.Dispose();
        if (_owned is null) return;
        try
        {
            string parent = Path.GetDirectoryName(_owned)!;
            using SafeFileHandle dir = Interop.Open(parent, Interop.O_RDONLY | Interop.O_DIRECTORY);
            Berth.Images.Layers.RootedDirectory.RemoveTree(dir, Path.GetFileName(_owned), _owned);
        }
        catch (Exception e) when (e is ImagesException or IOException)
        {
            // Best effort: a leftover context directory is removed with the builder's temp directory at the next start.
        }
    }
}

/// <summary>Go's filepath.Match for one path component: <c>*</c>, <c>?</c>, <c>[…]</c> classes with ranges and <c>^</c>/<c>!</c>, <c>\</c> escapes.</summary>
internal static class Glob
{
    public static bool Match(string pattern, string name) => Match(pattern.AsSpan(), name.AsSpan());

    private static bool Match(ReadOnlySpan<char> p, ReadOnlySpan<char> s)
    {
        while (p.Length > 0)
        {
            char c = p[0];
            if (c == '*')
            {
                p = p[1..];
                if (p.Length == 0) return !s.Contains('/');
                for (int i = 0; i <= s.Length; i++)
                {
                    if (i > 0 && s[i - 1] == '/') return false;
                    if (Match(p, s[i..])) return true;
                }
                return false;
            }
            if (s.Length == 0) return false;
            if (c == '?')
            {
                if (s[0] == '/') return false;
            }
            else if (c == '[')
            {
                int end = p.IndexOf(']');
                if (end < 0) throw new BuildException(BuildErrorKind.InvalidArgument, "syntax error in pattern: unterminated `[`");
                ReadOnlySpan<char> cls = p[1..end];
                bool negate = cls.Length > 0 && (cls[0] == '^' || cls[0] == '!');
                if (negate) cls = cls[1..];
                bool hit = false;
                for (int i = 0; i < cls.Length; i++)
                {
                    char lo = cls[i] == '\\' && i + 1 < cls.Length ? cls[++i] : cls[i];
                    char hi = lo;
                    if (i + 2 < cls.Length && cls[i + 1] == '-')
                    {
                        hi = cls[i + 2];
                        i += 2;
                    }
                    if (s[0] >= lo && s[0] <= hi) hit = true;
                }
                if (hit == negate) return false;
                p = p[(end + 1)..];
                s = s[1..];
                continue;
            }
            else
            {
                if (c == '\\' && p.Length > 1)
                {
                    p = p[1..];
                    c = p[0];
                }
                if (s[0] != c) return false;
            }
            p = p[1..];
            s = s[1..];
        }
        return s.Length == 0;
    }
}
