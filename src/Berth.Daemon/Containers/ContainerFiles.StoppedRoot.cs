using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Berth.Daemon.Api;
using Berth.Images.Engine;
using Microsoft.Win32.SafeHandles;

namespace Berth.Daemon.Containers;

public static partial class ContainerFiles
{
    /// <summary>
    /// A stopped container's root with its volumes, bind mounts and the engine's /etc files mounted
    /// on it, as dockerd's archive API mounts them for a copy (daemon.Mount, then mountVolumes:
    /// rbind, read-only where the mount is, rprivate), so that docker cp of a stopped container
    /// reads and writes where the container would.
    ///
    /// The mounts are made in a mount namespace of their own. unshare(CLONE_NEWNS) moves only the
    /// calling thread, so a short-lived thread of its own makes the namespace, makes it private
    /// (nothing propagates to the host's mounts), makes the mounts, opens the root and ends; from
    /// then on the namespace lives only as long as the fd held here. Closing it (Dispose, or
    /// berthd's end, however it ends) takes every mount in it away at once: nothing is mounted in
    /// the host's namespace, no other copy or container start sees these mounts, and a failure
    /// half-way leaves nothing mounted. The root fd works from any thread: lookups through it
    /// cross the namespace's mounts.
    ///
    /// Mount points are resolved inside the rootfs (RESOLVE_IN_ROOT, symlinks followed as the
    /// container would) and made where missing, in the container's writable layer, as dockerd's
    /// mountVolumes and the runtime at start make them. Sources are host paths: volume
    /// directories the engine chose, binds the user asked for, the container's /etc files.
    /// </summary>
    internal sealed class StoppedRoot : IDisposable
    {
        private readonly SafeFileHandle? _namespace;

        private StoppedRoot(SafeFileHandle? mountNamespace, SafeFileHandle root)
        {
            _namespace = mountNamespace;
            Root = root;
        }

        /// <summary>An O_PATH fd of the root, below which the mounts are.</summary>
        public SafeFileHandle Root { get; }

        /// <summary>
        /// Mounts <paramref name="mounts"/> (in that order: parents before what they hold) on the
        /// mounted root filesystem <paramref name="rootfs"/>, in a namespace of their own.
        /// </summary>
        public static StoppedRoot Open(string rootfs, IReadOnlyList<BindMount> mounts)
        {
            if (mounts.Count == 0) return new StoppedRoot(null, OpenRoot(rootfs)); // nothing to mount: no namespace
            StoppedRoot? result = null;
            ExceptionDispatchInfo? failure = null;
            var thread = new Thread(() =>
            {
                try
                {
                    result = Build(rootfs, mounts);
                }
                catch (Exception e)
                {
                    failure = ExceptionDispatchInfo.Capture(e);
                }
            })
            { IsBackground = true, Name = "berthd copy mounts" };
            thread.Start();
            thread.Join();
            failure?.Throw();
            return result!;
        }

        // Runs on its own thread, which ends afterwards in the namespace it made.
        private static StoppedRoot Build(string rootfs, IReadOnlyList<BindMount> mounts)
        {
            if (Native.Unshare(Native.CLONE_NEWNS) != 0) throw MountFailure("unshare(CLONE_NEWNS)", "a mount namespace for the copy");
            if (Native.Mount(null, "/", null, Native.MS_REC | Native.MS_PRIVATE) != 0) throw MountFailure("mount --make-rprivate", "/");
            SafeFileHandle mountNamespace = Native.Open("/proc/thread-self/ns/mnt", Native.O_RDONLY);
            SafeFileHandle? root = null;
            try
            {
                root = OpenRoot(rootfs);
                foreach (BindMount m in mounts) Bind(root, m);
                return new StoppedRoot(mountNamespace, root);
            }
            catch
            {
                root?.Dispose();
                mountNamespace.Dispose();
                throw;
            }
        }

        private static void Bind(SafeFileHandle root, BindMount m)
        {
            string relative = Relative(m.Destination);
            if (relative.Length == 0) return; // refused at create: the rootfs itself is no mount point
            using SafeFileHandle source = Native.TryOpen(m.Source, Native.O_PATH)
                ?? throw new ApiException(500, $"error while mounting {m.Source} on {m.Destination}: stat {m.Source}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            bool directory = Native.Stat(source, "", Native.AT_EMPTY_PATH, m.Source).Type == Native.S_IFDIR;
            using (SafeFileHandle target = OpenOrMakeMountPoint(root, relative, directory, m.Destination))
            {
                if (Native.Mount(Native.ProcFdPath(source), Native.ProcFdPath(target), null, Native.MS_BIND | Native.MS_REC) != 0)
                    throw MountFailure($"bind-mounting {m.Source}", m.Destination);
            }
            if (!m.ReadOnly) return;
            // The mount just made, reached the same way; read-only with everything under it (the
            // rbind's submounts), so that no write lands in the source below a read-only mount.
            using SafeFileHandle mounted = Native.TryOpenAt2(root, relative, Native.O_PATH, Native.RESOLVE_IN_ROOT | Native.RESOLVE_NO_MAGICLINKS, out _)
                ?? throw MountFailure("reopening the mount", m.Destination);
            if (!Native.MakeReadOnly(mounted)) throw MountFailure("making the mount read-only", m.Destination);
        }

        /// <summary>The mount point <paramref name="relative"/> resolved inside the root, each missing element made on the way (directories 0755; the last a file when the source is one).</summary>
        private static SafeFileHandle OpenOrMakeMountPoint(SafeFileHandle root, string relative, bool directory, string display)
        {
            const ulong resolve = Native.RESOLVE_IN_ROOT | Native.RESOLVE_NO_MAGICLINKS;
            SafeFileHandle? target = Native.TryOpenAt2(root, relative, Native.O_PATH, resolve, out int errno);
            if (target is not null) return target;
            if (errno != Native.ENOENT) throw ResolveFailure(errno, display);
            string[] parts = relative.Split('/');
            for (int i = 0; i < parts.Length; i++)
            {
                bool last = i == parts.Length - 1;
                string prefix = string.Join('/', parts, 0, i + 1);
                int flags = Native.O_PATH | (last && !directory ? 0 : Native.O_DIRECTORY);
                SafeFileHandle? here = Native.TryOpenAt2(root, prefix, flags, resolve, out errno);
                if (here is null)
                {
                    if (errno != Native.ENOENT) throw ResolveFailure(errno, display);
                    string parent = i == 0 ? "." : string.Join('/', parts, 0, i);
                    using SafeFileHandle dir = Native.TryOpenAt2(root, parent, Native.O_PATH | Native.O_DIRECTORY, resolve, out errno)
                        ?? throw ResolveFailure(errno, display);
                    // mkdirat and O_CREAT|O_EXCL|O_NOFOLLOW make the name itself, never through a link.
                    if (last && !directory) Native.OpenAt(dir, parts[i], Native.O_WRONLY | Native.O_CREAT | Native.O_EXCL | Native.O_NOFOLLOW, display, 0x1ED).Dispose();
                    else Native.MakeDirectoryAt(dir, parts[i], 0x1ED, display);
                    here = Native.TryOpenAt2(root, prefix, flags, resolve, out errno) ?? throw ResolveFailure(errno, display);
                }
                if (last) return here;
                here.Dispose();
            }
            throw new InvalidOperationException("unreachable: a path has a last element");
        }

        private static ApiException ResolveFailure(int errno, string destination)
            => new(500, $"error while mounting on {destination}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");

        private static ApiException MountFailure(string operation, string destination)
        {
            int errno = Marshal.GetLastPInvokeError();
            return new ApiException(500, $"error while mounting on {destination}: {operation}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }

        /// <summary>Leaves the namespace, and with it every mount made in it.</summary>
        public void Dispose()
        {
            Root.Dispose();
            _namespace?.Dispose();
        }
    }

    internal static unsafe partial class Native
    {
        public const int CLONE_NEWNS = 0x00020000;
        public const ulong MS_RDONLY = 0x1, MS_REMOUNT = 0x20, MS_BIND = 0x1000, MS_REC = 0x4000, MS_PRIVATE = 0x40000;
        private const long SYS_mount_setattr = 442; // the same on every architecture (the unified table)
        private const uint AT_RECURSIVE = 0x8000;
        private const ulong MOUNT_ATTR_RDONLY = 0x1;

        [StructLayout(LayoutKind.Sequential)]
        private struct MountAttr
        {
            public ulong AttrSet;
            public ulong AttrClr;
            public ulong Propagation;
            public ulong UsernsFd;
        }

        [LibraryImport(Libc, EntryPoint = "unshare", SetLastError = true)]
        public static partial int Unshare(int flags);

        [LibraryImport(Libc, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        private static partial int mount(string? source, string target, string? fstype, ulong flags, nint data);

        [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
        private static partial long syscall_mount_setattr(long number, int dirfd, byte* path, uint flags, MountAttr* attr, nuint size);

        public static int Mount(string? source, string target, string? fstype, ulong flags) => mount(source, target, fstype, flags, 0);

        /// <summary>
        /// Makes the mount <paramref name="mounted"/> is the root of read-only, with its submounts
        /// (mount_setattr, Linux 5.12); before that kernel, the mount alone (a bind remount).
        /// </summary>
        public static bool MakeReadOnly(SafeFileHandle mounted)
        {
            MountAttr attr = new() { AttrSet = MOUNT_ATTR_RDONLY };
            byte empty = 0;
            bool added = false;
            try
            {
                mounted.DangerousAddRef(ref added);
                if (syscall_mount_setattr(SYS_mount_setattr, (int)mounted.DangerousGetHandle(), &empty, (uint)AT_EMPTY_PATH | AT_RECURSIVE, &attr, (nuint)sizeof(MountAttr)) == 0) return true;
                if (Marshal.GetLastPInvokeError() != ENOSYS) return false;
                return mount(null, ProcFdPath(mounted), null, MS_REMOUNT | MS_BIND | MS_RDONLY, 0) == 0;
            }
            finally
            {
                if (added) mounted.DangerousRelease();
            }
        }
    }
}
