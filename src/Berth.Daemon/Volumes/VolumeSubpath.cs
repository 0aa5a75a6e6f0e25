using System.Globalization;
using Berth.Daemon.Api;
using Microsoft.Win32.SafeHandles;
using Native = Berth.Daemon.Containers.ContainerFiles.Native;

namespace Berth.Daemon.Volumes;

/// <summary>
/// Volume subpaths (<c>Mounts[].VolumeOptions.Subpath</c>, API 1.45, <c>--mount …,volume-subpath=</c>):
/// a directory or file inside a volume mounted instead of the whole volume, as dockerd's
/// <c>internal/safepath</c> does it.
/// <para>
/// Safety: the volume belongs to containers, so anything in it may have been made by a hostile
/// one, and such a container can keep changing it while the daemon works (another container with
/// the same volume may run meanwhile). A path joined and handed to the runtime would be resolved
/// again by the runtime, later: a symlink at <c>sub</c> (<c>ln -s /etc sub</c>), or one swapped in
/// between a check and the mount, would make the daemon bind-mount a host directory into the
/// container. So the subpath is resolved once, by the kernel, with openat2 from an O_PATH handle on
/// the volume's <c>_data</c>: RESOLVE_BENEATH refuses any step out of it (a <c>..</c> above it, an
/// absolute symlink, a relative one that climbs out: EXDEV), RESOLVE_NO_MAGICLINKS refuses
/// /proc-style links; symlinks that stay inside are followed. The handle then names that very
/// inode whatever happens to the names afterwards, and it is bind-mounted (through
/// <c>/proc/self/fd/N</c>) onto a private mountpoint of the daemon's, which becomes the OCI mount's
/// source: the runtime binds an already pinned mount, never a path in the volume.
/// </para>
/// <para>
/// The private mount is only needed until the runtime has made the container's own bind (its
/// <c>create</c>): the caller releases it once the start succeeded or failed, and the daemon's
/// restore releases what a crash left. Releasing detaches the mount and removes the mountpoint
/// without recursion (rmdir, unlink), so a mount that would not go is never deleted through.
/// </para>
/// </summary>
public static class VolumeSubpath
{
    /// <summary>
    /// Create-time check (moby's validateMountConfig: <c>filepath.IsLocal</c>): not empty, not
    /// absolute, no <c>..</c> that climbs above the volume once cleaned; no NUL (it could not reach the kernel).
    /// </summary>
    public static bool IsLocal(string subpath)
    {
        if (subpath.Length == 0 || subpath.StartsWith('/') || subpath.Contains('\0')) return false;
        string clean = Clean(subpath);
        return clean != ".." && !clean.StartsWith("../", StringComparison.Ordinal);
    }

    /// <summary>Lexically cleaned, as Go's path.Clean ("a//b/./c/../d" → "a/b/d"; "" or all dots → ".").</summary>
    public static string Clean(string subpath)
    {
        var parts = new List<string>();
        foreach (string part in subpath.Split('/'))
        {
            if (part is "" or ".") continue;
            if (part == ".." && parts.Count > 0 && parts[^1] != "..") parts.RemoveAt(parts.Count - 1);
            else parts.Add(part);
        }
        return parts.Count == 0 ? "." : string.Join('/', parts);
    }

    /// <summary>
    /// Resolves <paramref name="subpath"/> beneath <paramref name="volumeDirectory"/> and binds what
    /// it names onto <paramref name="target"/> (made here: a directory, or an empty file for a file).
    /// </summary>
    /// <exception cref="ApiException">500 with dockerd's words: "cannot access path …" when it does not
    /// exist, "path concatenation escapes the base directory …" when it leads out of the volume.</exception>
    public static void Mount(string volumeDirectory, string subpath, string target)
    {
        string relative = Clean(subpath);
        string joined = relative == "." ? volumeDirectory : volumeDirectory + "/" + relative;
        using SafeFileHandle volume = OpenVolume(volumeDirectory);
        using SafeFileHandle resolved = Native.TryOpenAt2(volume, relative, Native.O_PATH,
            Native.RESOLVE_BENEATH | Native.RESOLVE_NO_MAGICLINKS, out int errno)
            ?? throw errno switch
            {
                Native.EXDEV => new ApiException(500, $"path concatenation escapes the base directory, base: {volumeDirectory}, subpath: {subpath}"),
                Native.ENOENT or Native.ENOTDIR or Native.ELOOP => new ApiException(500, $"cannot access path {joined}: {GoError(errno)}"),
                Native.ENOSYS => new ApiException(500, "volume subpaths need openat2 (Linux 5.6 or newer)"),
                _ => new ApiException(500, $"openat2 {subpath}: {GoError(errno)}"),
            };
        if (!Native.TryStat(resolved, "", Native.AT_EMPTY_PATH, out Native.Statx st))
            throw new ApiException(500, $"failed to Fstat mount source fd: {GoError(Interop.LastErrno)}");
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (st.Type == Native.S_IFDIR) Directory.CreateDirectory(target);
            else File.WriteAllBytes(target, []);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ApiException(500, $"failed to create temporary file for safe mount: {e.Message}", e);
        }
        // The handle, not a path: the kernel follows /proc/self/fd/N to the inode openat2 checked.
        string source = "/proc/self/fd/" + resolved.DangerousGetHandle().ToInt32().ToString(CultureInfo.InvariantCulture);
        if (Interop.mount(source, target, null, Interop.MS_BIND, null) != 0)
        {
            int error = Interop.LastErrno;
            try
            {
                RemoveMountpoint(target);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // left for the release after the start
            }
            throw new ApiException(500, $"failed to mount resolved path {joined} on {target}: {GoError(error)}");
        }
    }

    /// <summary>
    /// Detaches what is mounted on <paramref name="target"/> (lazily, never following a symlink) and
    /// removes the mountpoint without recursion; nothing when it is not there.
    /// </summary>
    /// <exception cref="IOException">The mount would not go (the mountpoint is then left as it is).</exception>
    public static void Release(string target)
    {
        for (int i = 0; i < 64; i++)
        {
            if (Interop.umount2(target, Interop.MNT_DETACH | Interop.UMOUNT_NOFOLLOW) == 0) continue;
            int errno = Interop.LastErrno;
            if (errno == Interop.ENOENT) return;
            if (errno == Interop.EINVAL) break; // not (or no longer) a mount point
            throw new IOException($"umount2 `{target}`: {Interop.Describe(errno)}");
        }
        RemoveMountpoint(target);
    }

    /// <summary>rmdir or unlink: an empty mountpoint goes; one with something still mounted on it (EBUSY) or in it stays.</summary>
    private static void RemoveMountpoint(string target)
    {
        if (Interop.FileType(target) is not { } type) return;
        if (type == Native.S_IFDIR) Directory.Delete(target, recursive: false);
        else File.Delete(target);
    }

    private static SafeFileHandle OpenVolume(string volumeDirectory)
    {
        try
        {
            return Native.Open(volumeDirectory, Native.O_PATH | Native.O_DIRECTORY | Native.O_NOFOLLOW);
        }
        catch (IOException e)
        {
            throw new ApiException(500, $"cannot access path {volumeDirectory}: {e.Message}", e);
        }
    }

    /// <summary>The errno as Go prints it ("no such file or directory"), which is how dockerd's messages read.</summary>
    private static string GoError(int errno)
    {
        string text = System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno);
        return text.Length == 0 ? text : char.ToLowerInvariant(text[0]) + text[1..];
    }
}
