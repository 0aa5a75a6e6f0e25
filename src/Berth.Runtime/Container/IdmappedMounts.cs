using System.Runtime.InteropServices;
using Berth.Oci;
using Berth.Runtime.Native;

namespace Berth.Runtime.Container;

/// <summary>
/// Id-mapped bind mounts (mounts[].uidMappings/gidMappings, options idmap and ridmap), made as
/// runc 1.2 makes them: the parent clones the source (open_tree OPEN_TREE_CLONE), gives the
/// detached copy a user namespace holding the mapping (mount_setattr MOUNT_ATTR_IDMAP), and the
/// child only moves it into place (move_mount). A file the filesystem stores as owned by a
/// mapping's containerID is seen through the mount as owned by its hostID.
/// The user namespace is held by a short-lived child of the executor: a multi-threaded process
/// cannot unshare one, and the child runs no managed code (ChildProgram).
/// </summary>
public static partial class IdmappedMounts
{
    const long OPEN_TREE_CLONE = 1, OPEN_TREE_CLOEXEC = 0x80000;
    const ulong MOUNT_ATTR_IDMAP = 0x100000;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall5(long number, long a1, long a2, long a3, long a4, long a5);

    /// <summary>Whether the mount asks to be id-mapped (mappings given, or the idmap/ridmap option).</summary>
    internal static bool IsIdmapped(Mount mount, ParsedMountOptions options) =>
        options.IdMap || mount.UidMappings is { Count: > 0 } || mount.GidMappings is { Count: > 0 };

    /// <summary>
    /// The detached, id-mapped copies of the spec's id-mapped mounts, by their index in spec.mounts.
    /// The fds are close-on-exec: the child inherits them through the clone and loses them at execve.
    /// The caller closes them once the child has been cloned (and on failure).
    /// </summary>
    internal static Dictionary<int, int> Prepare(Spec spec, string bundle)
    {
        var fds = new Dictionary<int, int>();
        var mounts = spec.Mounts ?? [];
        var usernsByMap = new Dictionary<string, int>(StringComparer.Ordinal);
        try
        {
            for (var i = 0; i < mounts.Count; i++)
            {
                var mount = mounts[i];
                // A look at the raw options first: every create passes here, nearly always with nothing to do.
                if (mount.UidMappings is not { Count: > 0 } && mount.GidMappings is not { Count: > 0 }
                    && mount.Options?.Any(o => o is "idmap" or "ridmap") != true) continue;
                var options = MountOptions.Parse(mount.Options);
                var what = $"mount {mount.Destination}";
                if (!MountOptions.IsBind(mount)) throw new RuntimeException($"{what}: id-mapped mounts are only supported for bind mounts");
                // No mappings of its own: the container's user namespace mappings, as runc.
                var uids = mount.UidMappings is { Count: > 0 } u ? u : spec.Linux?.UidMappings;
                var gids = mount.GidMappings is { Count: > 0 } g ? g : spec.Linux?.GidMappings;
                if (uids is not { Count: > 0 } || gids is not { Count: > 0 })
                    throw new RuntimeException($"{what}: idmap without uidMappings and gidMappings needs the container's user namespace mappings (linux.uidMappings, linux.gidMappings)");
                var source = Path.IsPathRooted(mount.Source) ? mount.Source! : Path.Combine(bundle, mount.Source ?? "");
                var map = Format(uids) + "|" + Format(gids);
                if (!usernsByMap.TryGetValue(map, out var userns))
                    usernsByMap[map] = userns = UserNamespaceHolding(uids, gids);
                fds[i] = CloneIdmapped(source, options.Recursive, options.RecursiveIdMap, userns, what);
            }
            return fds;
        }
        catch
        {
            foreach (var fd in fds.Values) LibC.close(fd);
            throw;
        }
        finally
        {
            foreach (var fd in usernsByMap.Values) LibC.close(fd);
        }
    }

    /// <summary>
    /// Mounts an id-mapped copy of each source directory at its target (an existing directory), all through one
    /// user namespace holding these mappings: what the filesystem stores as a mapping's containerID is seen
    /// through the mount as its hostID. berthd mounts a remapped container's image layers this way (see
    /// Berth.Daemon's RemappedRootfs); each target is an ordinary mount the caller unmounts.
    /// </summary>
    public static unsafe void MountIdmapped(IReadOnlyList<(string Source, string Target)> trees, List<LinuxIdMapping> uids, List<LinuxIdMapping> gids)
    {
        var userns = UserNamespaceHolding(uids, gids);
        var empty = stackalloc byte[1];
        empty[0] = 0;
        try
        {
            foreach (var (source, target) in trees)
            {
                var tree = CloneIdmapped(source, recursive: false, recursiveIdmap: false, userns, $"id-mapped mount of {source}");
                try
                {
                    fixed (byte* to = System.Text.Encoding.UTF8.GetBytes(target + "\0"))
                        if (syscall5(Sys.MoveMount, tree, (long)empty, Sys.AT_FDCWD, (long)to, Sys.MOVE_MOUNT_F_EMPTY_PATH) < 0)
                            throw LibC.Error($"move the id-mapped mount of {source} to {target} (move_mount)", LibC.Errno);
                }
                finally
                {
                    LibC.close(tree);
                }
            }
        }
        finally
        {
            LibC.close(userns);
        }
    }

    static string Format(List<LinuxIdMapping> mappings) =>
        string.Concat(mappings.Select(m => $"{m.ContainerId} {m.HostId} {m.Size}\n"));

    static unsafe int CloneIdmapped(string source, bool recursive, bool recursiveIdmap, int userns, string what)
    {
        int tree;
        fixed (byte* path = System.Text.Encoding.UTF8.GetBytes(source + "\0"))
            tree = (int)syscall5(Sys.OpenTree, Sys.AT_FDCWD, (long)path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? Sys.AT_RECURSIVE : 0), 0, 0);
        if (tree < 0) throw LibC.Error($"{what}: open_tree {source}", LibC.Errno);
        // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd; }
        var attr = stackalloc ulong[4];
        attr[0] = MOUNT_ATTR_IDMAP;
        attr[1] = 0;
        attr[2] = 0;
        attr[3] = (ulong)userns;
        var empty = stackalloc byte[1];
        empty[0] = 0;
        if (syscall5(Sys.MountSetattr, tree, (long)empty, Sys.AT_EMPTY_PATH | (recursiveIdmap ? Sys.AT_RECURSIVE : 0), (long)attr, 32) < 0)
        {
            var errno = LibC.Errno;
            LibC.close(tree);
            throw LibC.Error($"{what}: id-map the mount of {source} (mount_setattr MOUNT_ATTR_IDMAP)", errno);
        }
        return tree;
    }

    /// <summary>
    /// An fd of a new user namespace with these mappings: a child cloned into it waits on a pipe
    /// while the parent writes its maps and opens /proc/PID/ns/user, then exits.
    /// </summary>
    static int UserNamespaceHolding(List<LinuxIdMapping> uids, List<LinuxIdMapping> gids)
    {
        Span<int> pipe = stackalloc int[2];
        LibC.Check(LibC.pipe2(pipe, Sys.O_CLOEXEC), "pipe for the id-map user namespace");
        int readEnd = pipe[0], writeEnd = pipe[1], pid = -1;
        try
        {
            var program = new ChildProgram { CloneFlags = Sys.CLONE_NEWUSER };
            var waitFd = program.Preset(readEnd);
            var writeFd = program.Preset(writeEnd);
            var buffer = program.Zeroes(8);
            program.Syscall(Sys.Close, "close the pipe's write end", writeFd);
            // Returns 0 (end of file) when the parent closes its end: then exit.
            program.Syscall(Sys.Read, "wait for the runtime", waitFd, buffer, 1);
            program.Add(new Op { Kind = OpKind.Exit, Args = [0], Description = "exit" });
            using (var native = program.Build(-1))
                pid = Executor.Spawn(native);
            LibC.close(readEnd);
            readEnd = -1;
            LibC.WriteSmallFile($"/proc/{pid}/uid_map", Format(uids));
            LibC.WriteSmallFile($"/proc/{pid}/gid_map", Format(gids));
            var fd = LibC.open($"/proc/{pid}/ns/user", Sys.O_RDONLY | Sys.O_CLOEXEC, 0);
            LibC.Check(fd, "open the id-map user namespace");
            return fd;
        }
        finally
        {
            if (readEnd >= 0) LibC.close(readEnd);
            LibC.close(writeEnd);
            if (pid > 0) LibC.waitpid(pid, out _, 0);
        }
    }
}
