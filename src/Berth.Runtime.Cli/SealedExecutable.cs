using System.Runtime.InteropServices;
using Berth.Runtime.Native;

namespace Berth.Runtime.Cli;

/// <summary>
/// CVE-2019-5736: between clone and execve the runtime's child is an image of the runtime
/// binary. A child that joins a pid namespace where container processes live (exec, or a
/// container joining another's pid namespace) shows them /proc/PID/exe; a process with
/// CAP_SYS_PTRACE there could open it, and write through it once no runtime runs. Before
/// such an operation the runtime re-executes itself from a sealed memfd copy, as runc did:
/// what the container can reach is then an anonymous, write-sealed file, never the binary
/// on disk. Operations whose children only enter fresh namespaces skip the cost, and so does a
/// runtime already executed from something that cannot be written: a write-sealed memfd (this
/// re-execution) or a file on a read-only mount (an immutable /usr, say).
/// </summary>
internal static partial class SealedExecutable
{
    /// <summary>Set across the re-execution: only to refuse a second one (never to skip the check).</summary>
    const string ReexecGuard = "_BERTH_REEXECUTED";
    const uint MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2;
    const int F_ADD_SEALS = 1033, F_GET_SEALS = 1034, F_SEAL_SEAL = 1, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4, F_SEAL_WRITE = 8;
    const ulong ST_RDONLY = 1;
    const int AT_EMPTY_PATH = 0x1000;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int memfd_create(string name, uint flags);
    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendfile(int outFd, int inFd, nint offset, nuint count);
    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, int dirfd, nint path, nint argv, nint envp, int flags);
    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int fstatvfs(int fd, StatVfs* buffer);

    /// <summary>glibc's struct statvfs on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct StatVfs
    {
        public ulong Bsize, Frsize, Blocks, Bfree, Bavail, Files, Ffree, Favail, Fsid, Flag, Namemax;
        public unsafe fixed int Spare[6];
    }

    /// <summary>
    /// Whether the running binary cannot be written through /proc/self/exe: a memfd sealed
    /// against writes, or a file on a read-only mount (the open for writing fails with EROFS
    /// whoever tries). Decided from the file itself, never from the environment.
    /// </summary>
    public static unsafe bool IsSealed
    {
        get
        {
            var self = LibC.open("/proc/self/exe", Sys.O_RDONLY | Sys.O_CLOEXEC, 0);
            if (self < 0) return false;
            try
            {
                var seals = LibC.fcntl(self, F_GET_SEALS, 0);
                if (seals > 0 && (seals & F_SEAL_WRITE) != 0) return true;
                StatVfs vfs;
                return fstatvfs(self, &vfs) == 0 && (vfs.Flag & ST_RDONLY) != 0;
            }
            finally { LibC.close(self); }
        }
    }

    /// <summary>Re-executes the runtime from a sealed copy (does not return), unless it already runs from one.</summary>
    public static void Reexec()
    {
        if (IsSealed) return;
        if (Environment.GetEnvironmentVariable(ReexecGuard) == "1")
            throw new RuntimeException("re-executed from a sealed copy, yet /proc/self/exe is still writable: refusing to go on");
        var copy = memfd_create("berth-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        LibC.Check(copy, "memfd_create");
        var self = LibC.open("/proc/self/exe", Sys.O_RDONLY | Sys.O_CLOEXEC, 0);
        LibC.Check(self, "open /proc/self/exe");
        try
        {
            while (true)
            {
                var n = sendfile(copy, self, 0, 1 << 30);
                if (n < 0) throw LibC.Error("copy the runtime into a memfd", LibC.Errno);
                if (n == 0) break;
            }
        }
        finally { LibC.close(self); }
        LibC.Check(LibC.fcntl(copy, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE), "seal the runtime copy");

        Environment.SetEnvironmentVariable(ReexecGuard, "1");
        var argv = Environment.GetCommandLineArgs();
        var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>().Select(e => $"{e.Key}={e.Value}");
        var execveat = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 281 : 322;
        using var args = new CStringArray(argv);
        using var envp = new CStringArray(env);
        var empty = Marshal.StringToCoTaskMemUTF8("");
        syscall(execveat, copy, empty, args.Pointer, envp.Pointer, AT_EMPTY_PATH);
        throw LibC.Error("re-execute the runtime from its sealed copy", LibC.Errno);
    }

    sealed class CStringArray : IDisposable
    {
        readonly nint[] _strings;
        public nint Pointer { get; }

        public CStringArray(IEnumerable<string> values)
        {
            _strings = values.Select(Marshal.StringToCoTaskMemUTF8).ToArray();
            Pointer = Marshal.AllocCoTaskMem((_strings.Length + 1) * IntPtr.Size);
            for (var i = 0; i < _strings.Length; i++) Marshal.WriteIntPtr(Pointer, i * IntPtr.Size, _strings[i]);
            Marshal.WriteIntPtr(Pointer, _strings.Length * IntPtr.Size, 0);
        }

        public void Dispose()
        {
            foreach (var s in _strings) Marshal.FreeCoTaskMem(s);
            Marshal.FreeCoTaskMem(Pointer);
        }
    }
}
