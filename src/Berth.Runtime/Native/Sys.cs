using System.Runtime.InteropServices;

namespace Berth.Runtime.Native;

/// <summary>
/// Syscall numbers and kernel constants used by the child program. Only the *at
/// variants are used so that one list serves x86_64 and arm64 (which lacks open, mkdir…).
/// </summary>
public static class Sys
{
    static readonly bool Arm64 = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;
    static long Nr(long x64, long arm64) => Arm64 ? arm64 : x64;

    public static readonly long Read = Nr(0, 63), Write = Nr(1, 64), Close = Nr(3, 57), Ioctl = Nr(16, 29);
    public static readonly long OpenAt = Nr(257, 56), MkdirAt = Nr(258, 34), MknodAt = Nr(259, 33);
    public static readonly long FchownAt = Nr(260, 54), SymlinkAt = Nr(266, 36), FaccessAt = Nr(269, 48);
    public static readonly long Dup3 = Nr(292, 24), Mount = Nr(165, 40), Umount2 = Nr(166, 39);
    public static readonly long PivotRoot = Nr(155, 41), Chroot = Nr(161, 51), Chdir = Nr(80, 49), Fchdir = Nr(81, 50);
    public static readonly long SetHostname = Nr(170, 161), SetDomainname = Nr(171, 162);
    public static readonly long Setns = Nr(308, 268), Unshare = Nr(272, 97), Prctl = Nr(157, 167);
    public static readonly long Capset = Nr(126, 91), Setresuid = Nr(117, 147), Setresgid = Nr(119, 149);
    public static readonly long Setgroups = Nr(116, 159), Setsid = Nr(112, 157), Umask = Nr(95, 166);
    public static readonly long Prlimit64 = Nr(302, 261), Execve = Nr(59, 221), Sendmsg = Nr(46, 211);
    public static readonly long OpenTree = 428, MoveMount = 429, CloseRange = 436, OpenAt2 = 437, MountSetattr = 442;
    public static readonly long Statfs = Nr(137, 43), Seccomp = Nr(317, 277), FchmodAt = Nr(268, 53);
    public static readonly long Personality = Nr(135, 92), SchedSetaffinity = Nr(203, 122);
    public static readonly long Fstat = Nr(5, 80), Fchown = Nr(93, 55);

    // struct stat (asm/stat.h on x86_64, asm-generic/stat.h on arm64): its size and where st_mode, st_gid and st_rdev are.
    public static readonly int StatSize = Arm64 ? 128 : 144, StatModeOffset = Arm64 ? 16 : 24;
    public static readonly int StatGidOffset = Arm64 ? 28 : 32, StatRdevOffset = Arm64 ? 32 : 40;
    /// <summary>st_rdev of /dev/null (1:3), as the kernel encodes it for stat.</summary>
    public const long DevNullRdev = (1 << 8) | 3;

    // errno
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, EACCES = 13, EBUSY = 16;
    public const int EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENOSPC = 28, EPIPE = 32, ENOSYS = 38, ENOEXEC = 8;
    public const int ESRCH = 3, ECHILD = 10, ELOOP = 40, EXDEV = 18, ENOTSUP = 95, EROFS = 30, ENAMETOOLONG = 36;

    // clone / namespaces
    public const ulong CLONE_NEWTIME = 0x80, CLONE_NEWNS = 0x20000, CLONE_NEWCGROUP = 0x02000000;
    public const ulong CLONE_NEWUTS = 0x04000000, CLONE_NEWIPC = 0x08000000, CLONE_NEWUSER = 0x10000000;
    public const ulong CLONE_NEWPID = 0x20000000, CLONE_NEWNET = 0x40000000, CLONE_PARENT = 0x8000;

    // open
    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_NOCTTY = 0x100;
    public const int O_TRUNC = 0x200, O_NONBLOCK = 0x800, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000;
    public const int O_CLOEXEC = 0x80000, O_PATH = 0x200000;
    public const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000, AT_RECURSIVE = 0x8000;
    public const int MOVE_MOUNT_F_EMPTY_PATH = 0x4, MOVE_MOUNT_T_EMPTY_PATH = 0x40;

    // openat2 resolve flags
    public const ulong RESOLVE_NO_XDEV = 0x01, RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_NO_SYMLINKS = 0x04;
    public const ulong RESOLVE_BENEATH = 0x08, RESOLVE_IN_ROOT = 0x10;

    public const int MNT_DETACH = 2;
    public const uint CLOSE_RANGE_CLOEXEC = 1u << 2;

    // prctl
    public const int PR_SET_PDEATHSIG = 1, PR_SET_KEEPCAPS = 8, PR_CAPBSET_DROP = 24, PR_SET_CHILD_SUBREAPER = 36;
    public const int PR_SET_NO_NEW_PRIVS = 38, PR_CAP_AMBIENT = 47, PR_CAP_AMBIENT_RAISE = 2, PR_CAP_AMBIENT_CLEAR_ALL = 4;

    // tty ioctls
    public const uint TIOCSCTTY = 0x540E, TIOCSWINSZ = 0x5414, TIOCSPTLCK = 0x40045431, TIOCGPTPEER = 0x5441;

    public const uint S_IFCHR = 0x2000, S_IFBLK = 0x6000, S_IFIFO = 0x1000, S_IFREG = 0x8000;
    public const int SIGKILL = 9, SIGTERM = 15, SIGCHLD = 17;
}
