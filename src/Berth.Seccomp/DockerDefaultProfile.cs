using Berth.Oci;

namespace Berth.Seccomp;

/// <summary>
/// Docker's default seccomp profile (moby <c>profiles/seccomp/default.json</c>): an allow list with ERRNO(EPERM) as
/// the default, extended by the container's capabilities and architecture the way dockerd does it
/// (<c>profiles/seccomp/seccomp_linux.go</c>; see <see cref="ProfileRule"/>). A profile of one's own goes through
/// <see cref="DockerSeccompProfile"/> and the same rule selection.
/// </summary>
public static class DockerDefaultProfile
{
    /// <summary>Docker's default capability set (moby <c>oci/caps/defaults.go</c>).</summary>
    public static IReadOnlyList<string> DefaultCapabilities { get; } =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    /// <summary>
    /// The profile for a container holding <paramref name="capabilities"/> (its bounding set) on <paramref name="arch"/>.
    /// <paramref name="kernel"/> decides <c>minKernel</c> conditions; null means this host's kernel.
    /// </summary>
    public static LinuxSeccomp For(IReadOnlyCollection<string> capabilities, SeccompArch arch, Version? kernel = null)
    {
        ArgumentNullException.ThrowIfNull(capabilities);
        return new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            DefaultErrnoRet = 1,
            Architectures = arch switch
            {
                SeccompArch.X86_64 => ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                SeccompArch.Aarch64 => ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                _ => [],
            },
            Syscalls = ProfileRule.Select(s_rules, capabilities, arch, kernel ?? ProfileRule.HostKernel.Value),
        };
    }

    private const ulong CloneNamespaceFlags = 0x7E020000;  // CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET

    private static ProfileRule Personality(ulong domain) => new(["personality"]) { Args = [(0, domain, null, "SCMP_CMP_EQ")] };

    // Declared before s_rules, which reads it during static initialisation.
    /// <summary>The unconditional allow list: every syscall a container may make whatever its capabilities.</summary>
    private static readonly string[] s_allowedNames =
    [
        "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget",
        "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
        "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
        "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
        "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
        "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
        "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl",
        "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
        "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
        "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents", "getdents64",
        "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
        "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
        "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid",
        "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
        "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
        "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "io_uring_enter", "io_uring_register",
        "io_uring_setup", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32",
        "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr",
        "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret",
        "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall",
        "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
        "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd",
        "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
        "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
        "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64",
        "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
        "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
        "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
        "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
        "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
        "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
        "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64",
        "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
        "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
        "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid",
        "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
        "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
        "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
        "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
        "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
        "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
        "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
        "wait4", "waitid", "waitpid", "write", "writev",
    ];

    private static readonly ProfileRule[] s_rules =
    [
        new(s_allowedNames),
        new(["process_vm_readv", "process_vm_writev", "ptrace"]) { IncludeMinKernel = new Version(4, 8) },
        new(["socket"]) { Args = [(0, 40 /* AF_VSOCK */, null, "SCMP_CMP_NE")] },
        Personality(0x0), Personality(0x0008), Personality(0x20000), Personality(0x20008), Personality(0xffffffff),
        new(["sync_file_range2", "swapcontext"]) { IncludeArches = ["ppc64le"] },
        new(["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"]) { IncludeArches = ["arm", "arm64"] },
        new(["arch_prctl"]) { IncludeArches = ["amd64", "x32"] },
        new(["modify_ldt"]) { IncludeArches = ["amd64", "x32", "x86"] },
        new(["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"]) { IncludeArches = ["s390", "s390x"] },
        new(["riscv_flush_icache"]) { IncludeArches = ["riscv64"] },
        new(["open_by_handle_at"]) { IncludeCaps = ["CAP_DAC_READ_SEARCH"] },
        new([
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount",
            "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname",
            "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
        ]) { IncludeCaps = ["CAP_SYS_ADMIN"] },
        new(["clone"]) { Args = [(0, CloneNamespaceFlags, null, "SCMP_CMP_MASKED_EQ")], ExcludeCaps = ["CAP_SYS_ADMIN"], ExcludeArches = ["s390", "s390x"] },
        // s390's clone takes the flags second.
        new(["clone"]) { Args = [(1, CloneNamespaceFlags, null, "SCMP_CMP_MASKED_EQ")], IncludeArches = ["s390", "s390x"], ExcludeCaps = ["CAP_SYS_ADMIN"] },
        // clone3's flags sit behind a pointer seccomp cannot follow: ENOSYS makes libc fall back to clone.
        new(["clone3"], "SCMP_ACT_ERRNO") { ErrnoRet = 38, ExcludeCaps = ["CAP_SYS_ADMIN"] },
        new(["reboot"]) { IncludeCaps = ["CAP_SYS_BOOT"] },
        new(["chroot"]) { IncludeCaps = ["CAP_SYS_CHROOT"] },
        new(["delete_module", "init_module", "finit_module"]) { IncludeCaps = ["CAP_SYS_MODULE"] },
        new(["acct"]) { IncludeCaps = ["CAP_SYS_PACCT"] },
        new(["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]) { IncludeCaps = ["CAP_SYS_PTRACE"] },
        new(["iopl", "ioperm"]) { IncludeCaps = ["CAP_SYS_RAWIO"] },
        new(["settimeofday", "stime", "clock_settime", "clock_settime64"]) { IncludeCaps = ["CAP_SYS_TIME"] },
        new(["vhangup"]) { IncludeCaps = ["CAP_SYS_TTY_CONFIG"] },
        new(["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]) { IncludeCaps = ["CAP_SYS_NICE"] },
        new(["syslog"]) { IncludeCaps = ["CAP_SYSLOG"] },
        new(["bpf"]) { IncludeCaps = ["CAP_BPF"] },
        new(["perf_event_open"]) { IncludeCaps = ["CAP_PERFMON"] },
    ];
}
