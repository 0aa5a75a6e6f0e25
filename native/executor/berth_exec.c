// berth_exec: the fixed executor that runs a container's setup between clone and execve.
//
// Why this exists: a .NET process is multi-threaded from its first instruction. A child
// made by fork/clone that runs any managed code can deadlock on a lock held by a thread
// that did not survive the fork (the GC, the JIT, the allocator). So the child never
// returns to managed code: C# compiles the whole setup (setns, unshare, mounts,
// pivot_root, capabilities, setresuid, exec) into a table of raw syscalls in native
// memory, and this file clones and walks the table. The child only calls syscall(2)
// through libc's async-signal-safe wrapper and never touches malloc, stdio or locks.
//
// The table format is mirrored in src/Berth.Runtime/Native/ChildProgram.cs. Keep both
// in step: the layout is checked by berth_exec_abi_version() and a unit test.

#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>

#define BERTH_EXEC_ABI 6
#define BERTH_MAX_SLOTS 64
#define BERTH_MAX_ERRNO_RULES 3

enum berth_op_kind {
    OP_SYSCALL = 1,    // r = syscall(nr, args...)
    OP_FORK = 2,       // r = clone(args[0] | SIGCHLD): child goes on, parent stores pid and jumps to on_success
    OP_LOAD = 3,       // slot[result] = (*(uint64_t *)args[0] & args[1]) | args[2]
    OP_STORE = 4,      // store slot args[1] into memory at args[0], args[2] bytes wide (4 or 8)
    OP_FD_PATH = 5,    // write "/proc/self/fd/<slot args[1]>" into the buffer at args[0] (>= 32 bytes)
    OP_FAIL = 6,       // report failure of this op with errno args[0]
    OP_EXIT = 7,       // exit_group(args[0])
    OP_COPY_TREE = 8,  // copy the contents of directory fd args[0] into directory fd args[1] (see copy_tree)
    OP_JUMP_IF_EQUAL = 9,      // continue at on_success when args[0] == args[1], else with the next op
    OP_JUMP_IF_DIFFERENT = 10, // continue at on_success when args[0] != args[1], else with the next op
    OP_PASSWD_HOME = 11,       // r = passwd_home(fd args[0], uid args[1], buffer args[2] of args[3] bytes)
};

// Flags of an op.
#define OPF_FAIL_ON_ZERO 1   // a result of 0 is a failure (a read that hit end of file): reported as EPIPE
#define OPF_EXEC_ERROR_TO_STDERR 2  // an execve (path in args[0]) whose failure is also written to fd 2 (see exec_error_to_stderr)

struct berth_op {
    int32_t kind;
    int32_t nr;                 // syscall number for OP_SYSCALL
    uint32_t slot_args;         // bit i set: args[i] names a slot whose value is passed instead
    int32_t result_slot;        // -1: the result is not kept
    int64_t args[6];
    int32_t flags;
    int32_t on_success;         // -1: the next op; otherwise the index to continue at
    int32_t errnos[BERTH_MAX_ERRNO_RULES];    // errno values that are not failures...
    int32_t on_errno[BERTH_MAX_ERRNO_RULES];  // ...and where to continue for each (-1: next op)
};

struct berth_program {
    uint64_t clone_flags;       // namespaces to create with the first clone (SIGCHLD is added)
    int32_t report_fd;          // failures are written here as struct berth_report
    int32_t op_count;
    struct berth_op *ops;
    int32_t cgroup_fd;          // >= 0: clone3 with CLONE_INTO_CGROUP into this cgroup2 directory
    int32_t reserved;
    int64_t slots[BERTH_MAX_SLOTS];
};

// struct clone_args of <linux/sched.h>, up to the cgroup field (CLONE_ARGS_SIZE_VER2).
struct berth_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define BERTH_CLONE_INTO_CGROUP 0x200000000ULL
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

// What the child writes to report_fd. kind 1 is written by this file; the compiled
// program writes the other kinds with ordinary write ops.
struct berth_report {
    int32_t kind;
    int32_t op_index;
    int64_t value;
};
#define REPORT_FAILURE 1

int berth_exec_abi_version(void) { return BERTH_EXEC_ABI; }
int berth_exec_op_size(void) { return (int)sizeof(struct berth_op); }
int berth_exec_program_size(void) { return (int)sizeof(struct berth_program); }

static long raw(long nr, long a, long b, long c, long d, long e, long f)
{
    long r = syscall(nr, a, b, c, d, e, f);
    return r == -1 ? -errno : r;
}

__attribute__((noreturn)) static void fail(struct berth_program *p, int index, int err)
{
    struct berth_report report = { REPORT_FAILURE, index, err };
    // MSG_NOSIGNAL: when the runtime has already gone, the report is lost, but the
    // child must still exit with 1 rather than die of SIGPIPE.
    if (raw(SYS_sendto, p->report_fd, (long)&report, sizeof report, MSG_NOSIGNAL, 0, 0) == -ENOTSOCK)
        raw(SYS_write, p->report_fd, (long)&report, sizeof report, 0, 0, 0);
    raw(SYS_exit_group, 1, 0, 0, 0, 0, 0);
    __builtin_unreachable();
}

static void write_fd_path(char *buffer, int64_t fd)
{
    static const char prefix[] = "/proc/self/fd/";
    char digits[24];
    int n = 0;
    uint64_t v = fd < 0 ? 0 : (uint64_t)fd;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    memcpy(buffer, prefix, sizeof prefix - 1);
    buffer += sizeof prefix - 1;
    while (n) *buffer++ = digits[--n];
    *buffer = 0;
}

// The deepest directory tree copy_tree copies. Each level holds two fds and ~2.3 KiB of the
// stack this child inherited from the runtime's calling thread (at least 1.5 MiB).
#define COPY_TREE_MAX_DEPTH 128

struct berth_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

// Owner and mode (after the owner: chown clears set-id bits) of what copy_tree made. Times are
// not copied: runc (mrunalp/fileutils) and crun leave them at the time of the copy.
// fd >= 0: the object itself (name unused); otherwise name in directory dir.
static long copy_attributes(int fd, int dir, const char *name, const struct stat *st, int chmod_too)
{
    long r = fd >= 0 ? raw(SYS_fchown, fd, st->st_uid, st->st_gid, 0, 0, 0)
                     : raw(SYS_fchownat, dir, (long)name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW, 0);
    if (r < 0 || !chmod_too) return r;
    return fd >= 0 ? raw(SYS_fchmod, fd, st->st_mode & 07777, 0, 0, 0, 0)
                   : raw(SYS_fchmodat, dir, (long)name, st->st_mode & 07777, 0, 0, 0);
}

// tmpcopyup: copies the contents of the directory src (the image's directory, opened before
// a tmpfs was mounted over it) into dst (the new tmpfs), as runc and crun do: directories,
// regular files, symlinks and special files with their owner and mode; hard links
// become separate copies. dst's root keeps the tmpfs's mode and takes src's owner. Nothing
// is followed: every name is opened O_NOFOLLOW or read with AT_SYMLINK_NOFOLLOW, so an
// image's symlink cannot make the copy read or write outside the two trees.
// Returns 0 or -errno.
static long copy_tree(int src, int dst, int depth)
{
    static char link_target[4096];
    char entries[2048] __attribute__((aligned(8)));
    struct stat st;
    long r;
    if (depth > COPY_TREE_MAX_DEPTH) return -ENAMETOOLONG;
    if (depth == 0) {
        if ((r = raw(SYS_fstat, src, (long)&st, 0, 0, 0, 0)) < 0) return r;
        if ((r = raw(SYS_fchown, dst, st.st_uid, st.st_gid, 0, 0, 0)) < 0) return r;
    }
    for (;;) {
        long n = raw(SYS_getdents64, src, (long)entries, sizeof entries, 0, 0, 0);
        if (n <= 0) return n;
        for (long off = 0; off < n;) {
            struct berth_dirent64 *d = (struct berth_dirent64 *)(entries + off);
            off += d->d_reclen;
            const char *name = d->d_name;
            if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
            if ((r = raw(SYS_newfstatat, src, (long)name, (long)&st, AT_SYMLINK_NOFOLLOW, 0, 0)) < 0) return r;
            switch (st.st_mode & S_IFMT) {
            case S_IFDIR: {
                if ((r = raw(SYS_mkdirat, dst, (long)name, 0700, 0, 0, 0)) < 0) return r;
                long from = raw(SYS_openat, src, (long)name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0);
                if (from < 0) return from;
                long to = raw(SYS_openat, dst, (long)name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0);
                if (to < 0) { raw(SYS_close, from, 0, 0, 0, 0, 0); return to; }
                r = copy_tree((int)from, (int)to, depth + 1);
                if (r == 0) r = copy_attributes((int)to, -1, 0, &st, 1);
                raw(SYS_close, from, 0, 0, 0, 0, 0);
                raw(SYS_close, to, 0, 0, 0, 0, 0);
                if (r < 0) return r;
                break;
            }
            case S_IFREG: {
                long from = raw(SYS_openat, src, (long)name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0);
                if (from < 0) return from;
                long to = raw(SYS_openat, dst, (long)name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600, 0, 0);
                if (to < 0) { raw(SYS_close, from, 0, 0, 0, 0, 0); return to; }
                do r = raw(SYS_sendfile, to, from, 0, 1L << 30, 0, 0); while (r > 0);
                if (r == 0) r = copy_attributes((int)to, -1, 0, &st, 1);
                raw(SYS_close, from, 0, 0, 0, 0, 0);
                raw(SYS_close, to, 0, 0, 0, 0, 0);
                if (r < 0) return r;
                break;
            }
            case S_IFLNK:
                r = raw(SYS_readlinkat, src, (long)name, (long)link_target, sizeof link_target - 1, 0, 0);
                if (r < 0) return r;
                link_target[r] = 0;
                if ((r = raw(SYS_symlinkat, (long)link_target, dst, (long)name, 0, 0, 0)) < 0) return r;
                // A symlink has no mode of its own to set.
                if ((r = copy_attributes(-1, dst, name, &st, 0)) < 0) return r;
                break;
            default: // fifos, sockets, device nodes
                if ((r = raw(SYS_mknodat, dst, (long)name, st.st_mode, (long)st.st_rdev, 0, 0)) < 0) return r;
                if ((r = copy_attributes(-1, dst, name, &st, 1)) < 0) return r;
                break;
            }
        }
    }
}

// One line of a passwd file ("name:password:uid:gid:gecos:home:shell"), trimmed of blanks
// as runc's user package trims it. When its uid field is uid: writes "HOME=<home>" into out
// and returns 1 (an entry without a home field gives "HOME="); else 0.
static long passwd_line_home(const char *line, long len, uint64_t uid, char *out, long size)
{
    while (len > 0 && (*line == ' ' || *line == '\t' || *line == '\r')) { line++; len--; }
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r')) len--;
    long start[6], end[6];
    int fields = 0;
    for (long i = 0, from = 0; i <= len && fields < 6; i++)
        if (i == len || line[i] == ':') { start[fields] = from; end[fields] = i; fields++; from = i + 1; }
    if (fields < 3 || end[2] == start[2]) return 0;
    uint64_t value = 0;
    for (long i = start[2]; i < end[2]; i++) {
        if (line[i] < '0' || line[i] > '9' || value > (UINT64_MAX - 9) / 10) return 0;
        value = value * 10 + (uint64_t)(line[i] - '0');
    }
    if (value != uid) return 0;
    long home = fields == 6 ? start[5] : 0, home_len = fields == 6 ? end[5] - start[5] : 0;
    if (5 + home_len + 1 > size) return -ENAMETOOLONG;
    memcpy(out, "HOME=", 5);
    memcpy(out + 5, line + home, home_len);
    out[5 + home_len] = 0;
    return 1;
}

// runc's HOME for a process whose env has none: the home of the first entry of the passwd
// file fd whose uid is uid. Returns 1 when found (out holds "HOME=<home>"), 0 when no entry
// matches (out is left as it is), -errno when the file cannot be read. A line longer than the
// line buffer is skipped.
#define PASSWD_LINE_MAX 4096
static long passwd_home(int fd, uint64_t uid, char *out, long size)
{
    static char line[PASSWD_LINE_MAX];
    char chunk[1024];
    long len = 0, r;
    int overlong = 0;
    for (;;) {
        long n = raw(SYS_read, fd, (long)chunk, sizeof chunk, 0, 0, 0);
        if (n < 0) return n;
        if (n == 0) return overlong ? 0 : passwd_line_home(line, len, uid, out, size);
        for (long i = 0; i < n; i++) {
            if (chunk[i] != '\n') {
                if (len < PASSWD_LINE_MAX) line[len++] = chunk[i]; else overlong = 1;
                continue;
            }
            if (!overlong && (r = passwd_line_home(line, len, uid, out, size)) != 0) return r;
            len = 0;
            overlong = 0;
        }
    }
}

// Go's text for the errors an execve can fail with (runc prints them), else "errno N".
static const char *exec_error_text(int err, char *scratch)
{
    switch (err) {
    case EPERM: return "operation not permitted";
    case ENOENT: return "no such file or directory";
    case EIO: return "input/output error";
    case E2BIG: return "argument list too long";
    case ENOEXEC: return "exec format error";
    case ENOMEM: return "cannot allocate memory";
    case EACCES: return "permission denied";
    case EFAULT: return "bad address";
    case ETXTBSY: return "text file busy";
    case EISDIR: return "is a directory";
    case ENOTDIR: return "not a directory";
    case EINVAL: return "invalid argument";
    case ENFILE: return "too many open files in system";
    case EMFILE: return "too many open files";
    case ENAMETOOLONG: return "file name too long";
    case ELOOP: return "too many levels of symbolic links";
    case ELIBBAD: return "accessing a corrupted shared library";
    }
    char digits[12];
    int n = 0;
    unsigned v = (unsigned)err;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    memcpy(scratch, "errno ", 6);
    for (int i = 0; i < n; i++) scratch[6 + i] = digits[n - 1 - i];
    scratch[6 + n] = 0;
    return scratch;
}

// runc's message when the container's process cannot be executed once started
// ("exec /app: exec format error"), written to the process's own stderr: by then nobody
// may be left to read the report (create has exited), and this is what the user sees in
// the container's output.
static void exec_error_to_stderr(const char *path, int err)
{
    static char message[4096 + 64];
    char scratch[20];
    const char *text = exec_error_text(err, scratch);
    size_t n = 0, path_len = strnlen(path, 4096), text_len = strlen(text);
    memcpy(message, "exec ", 5); n = 5;
    memcpy(message + n, path, path_len); n += path_len;
    memcpy(message + n, ": ", 2); n += 2;
    memcpy(message + n, text, text_len); n += text_len;
    message[n++] = '\n';
    raw(SYS_write, 2, (long)message, (long)n, 0, 0, 0);
}

__attribute__((noreturn)) static void run_program(struct berth_program *p)
{
    // The parent's handlers point into the .NET runtime: none may run here, and the
    // container must start with default dispositions (SIGPIPE is ignored by .NET).
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } dfl = { SIG_DFL, 0, 0, 0 };
    for (int sig = 1; sig <= 64; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            raw(SYS_rt_sigaction, sig, (long)&dfl, 0, 8, 0, 0);
    uint64_t empty = 0;
    raw(SYS_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, 8, 0, 0);

    // Until execve this process is an image of the runtime binary. Non-dumpable, its
    // /proc/PID/exe (and mem, fd…) cannot be opened by processes of a namespace it joins
    // unless they hold CAP_SYS_PTRACE over the runtime's user namespace (CVE-2019-5736).
    // execve makes the container's program dumpable again as usual.
    raw(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0, 0);

    int pc = 0;
    while (pc < p->op_count) {
        struct berth_op *op = &p->ops[pc];
        long a[6];
        for (int i = 0; i < 6; i++)
            a[i] = (op->slot_args & (1u << i)) ? (long)p->slots[op->args[i]] : (long)op->args[i];

        long r;
        switch (op->kind) {
        case OP_SYSCALL:
            r = raw(op->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
            break;
        case OP_FORK:
            r = raw(SYS_clone, a[0] | SIGCHLD, 0, 0, 0, 0, 0);
            if (r == 0) { pc++; continue; }
            break;
        case OP_LOAD:
            r = (long)((*(uint64_t *)a[0] & (uint64_t)a[1]) | (uint64_t)a[2]);
            break;
        case OP_STORE:
            if (a[2] == 4) *(int32_t *)a[0] = (int32_t)p->slots[op->args[1]];
            else *(int64_t *)a[0] = p->slots[op->args[1]];
            r = 0;
            break;
        case OP_FD_PATH:
            write_fd_path((char *)a[0], p->slots[op->args[1]]);
            r = 0;
            break;
        case OP_COPY_TREE:
            r = copy_tree((int)a[0], (int)a[1], 0);
            break;
        case OP_JUMP_IF_EQUAL:
        case OP_JUMP_IF_DIFFERENT:
            if ((a[0] == a[1]) != (op->kind == OP_JUMP_IF_EQUAL)) { pc++; continue; }
            r = 0;
            break;
        case OP_PASSWD_HOME:
            r = passwd_home((int)a[0], (uint64_t)a[1], (char *)a[2], a[3]);
            break;
        case OP_FAIL:
            fail(p, pc, (int)a[0]);
        case OP_EXIT:
            raw(SYS_exit_group, a[0], 0, 0, 0, 0, 0);
            __builtin_unreachable();
        default:
            fail(p, pc, ENOSYS);
        }

        if (r < 0) {
            int err = (int)-r, next = -2;
            for (int i = 0; i < BERTH_MAX_ERRNO_RULES; i++)
                if (op->errnos[i] == err) { next = op->on_errno[i]; break; }
            if (next == -2) {
                if (op->flags & OPF_EXEC_ERROR_TO_STDERR) exec_error_to_stderr((const char *)a[0], err);
                fail(p, pc, err);
            }
            pc = next < 0 ? pc + 1 : next;
            continue;
        }
        if (r == 0 && (op->flags & OPF_FAIL_ON_ZERO)) fail(p, pc, EPIPE);
        if (op->result_slot >= 0 && op->result_slot < BERTH_MAX_SLOTS) p->slots[op->result_slot] = r;
        pc = op->on_success < 0 ? pc + 1 : op->on_success;
    }
    // A program that ends without exec or exit is a compiler bug: report it.
    fail(p, p->op_count, ENOEXEC);
}

// Clones a child that runs the program. Returns the child's pid, or -errno.
// All signals are blocked across the clone so that no handler of the parent's runtime
// can run in the child before run_program resets them.
long berth_spawn(struct berth_program *p)
{
    // The raw syscall, not pthread_sigmask: glibc's wrapper leaves its internal signals
    // (SIGCANCEL, SIGSETXID) unblocked, and their handlers must not run in the child either.
    uint64_t all = ~(uint64_t)0, old = 0;
    raw(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, 8, 0, 0);
    long pid;
    if (p->cgroup_fd >= 0) {
        // Born in its cgroup: no migration afterwards, so none of the threadgroup lock's
        // RCU grace periods that a write to cgroup.procs can wait for (5-15 ms here).
        struct berth_clone_args args = { 0 };
        args.flags = p->clone_flags | BERTH_CLONE_INTO_CGROUP;
        args.exit_signal = SIGCHLD;
        args.cgroup = (uint64_t)p->cgroup_fd;
        pid = raw(SYS_clone3, (long)&args, sizeof args, 0, 0, 0, 0);
    } else {
        pid = raw(SYS_clone, (long)(p->clone_flags | SIGCHLD), 0, 0, 0, 0, 0);
    }
    if (pid == 0)
        run_program(p);
    raw(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8, 0, 0);
    return pid;
}
