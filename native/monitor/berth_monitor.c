// berth-monitor: the per-container (and per-exec) supervisor, like podman's conmon.
//
// berthd starts one monitor per container or exec process. The monitor detaches (double
// fork + setsid), runs the OCI runtime's `create` or `exec --detach`, becomes the
// container process's parent (PR_SET_CHILD_SUBREAPER) and from then on, independently of
// berthd (which may be killed and restarted):
//   - holds the container's stdio (pipes, or the pty master received on console.sock),
//   - writes the container's log with rotation: Docker's json-file format, or its local driver's
//     (length-framed protobuf entries, rotated files gzip-compressed by a child process),
//     and with --syslog, --gelf, --fluentd or --journald sends every entry to that log server too
//     (docker's syslog, gelf, fluentd and journald drivers; the log file is then the cache docker
//     logs reads, dockerd's dual logging),
//   - serves attach clients on <state-dir>/attach.sock (SOCK_SEQPACKET),
//   - records the exit code in <state-dir>/exit (written atomically).
//
// Protocol (also in src/Berth.Daemon/README.md):
//   stdout of the invoked process: one line, "ok <monitor-pid> <container-pid>\n" or
//   "error <message>\n", then EOF.
//   attach packets, monitor -> client: [1|2][data] (1 stdout, 2 stderr); EOF at exit.
//   attach packets, client -> monitor: [0][data] stdin, ['C'] close stdin,
//   ['R'][u16 rows LE][u16 cols LE] resize the pty, ['L'] lossless: this client is never dropped
//   for lagging; while its queue is over CLIENT_HOLD the container's output is not read (the
//   container then blocks in write, as under dockerd's attach). Other clients are dropped after
//   CLIENT_QUEUE_MAX of lag, so a stalled one never holds the container up.
//   exit file: "<exit code> <finished unix ns>\n"; 128+N when killed by signal N.
//
// Single-threaded, poll(2)-driven; SIGCHLD comes through a signalfd. Every descriptor the
// monitor owns is O_CLOEXEC: only the three fds dup2'ed onto 0/1/2 of the runtime's child
// reach the runtime (and from it the container).

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define MAX_RUNTIME_ARGS 64
#define MAX_CLIENTS 128
#define MSG_MAX 32768                       // one attach packet, type byte included
#define LOG_LINE_MAX 16384                  // Docker's split point for long lines (partial entries)
#define CAPTURE_MAX (1024 * 1024)           // output buffered while the runtime runs
#define STDIN_HIGH_WATER (256 * 1024)       // stop reading clients above this much pending stdin
#define CLIENT_QUEUE_MAX (1024 * 1024)      // output queued for a client that lags; more and it is dropped
#define CLIENT_FLUSH_MS 2000                // at exit, how long lagging clients may take to get the rest
                                            // (a lossless client: for each step of progress)
#define CLIENT_HOLD (256 * 1024)            // a lossless client's queue above which output is not read
#define STARTUP_TIMEOUT_MS (120 * 1000)
#define EXEC_DRAIN_MS 2000
#define CONTAINER_DRAIN_MS 10000
#define WAIT_FOR_ATTACH_MS 60000            // --wait-for-attach: output is held at most this long

struct options {
    const char *runtime;
    const char *runtime_args[MAX_RUNTIME_ARGS];
    int n_runtime_args;
    const char *id, *state_dir, *log_path, *bundle, *exec_process;
    long long log_max_size;
    int log_max_files;
    bool log_local;          // --log-format local: Docker's local driver format instead of json-file
    bool log_compress;       // --log-compress: gzip rotated files (either format)
    const char *log_attrs;   // --log-attrs: a JSON object written as "attrs" in every json-file entry
    bool tty, open_stdin, stdin_once, wait_for_attach;
    bool no_log;             // --no-log (docker's "none" log driver): output only goes to attach clients
    const char *syslog_address;  // --syslog: also send every entry to syslog (unix:PATH, unixgram:PATH, udp:HOST:PORT, tcp:HOST:PORT)
    int syslog_facility;         // --syslog-facility: the facility's code (3 daemon), times 8 in the priority
    int syslog_time;             // --syslog-time: SYSLOG_STAMP, SYSLOG_RFC3339 or SYSLOG_RFC3339_MICRO
    bool syslog_tls;             // --syslog-tls: the tcp connection is TLS (docker's tcp+tls://)
    const char *syslog_tls_name; // --syslog-tls-server-name: the host the certificate must name (and SNI for a name)
    const char *syslog_tls_ca, *syslog_tls_cert, *syslog_tls_key;   // --syslog-tls-ca/-cert/-key: PEM files
    bool syslog_tls_skip_verify; // --syslog-tls-skip-verify: the server's certificate is not checked
    const char *syslog_header;   // --syslog-header: what follows the timestamp (hostname, tag[pid]: …), berthd's rendering
    const char *gelf_address;    // --gelf: also send every entry as a GELF message (udp:IP:PORT, tcp:IP:PORT)
    const char *gelf_host;       // --gelf-host: the "host" field (the daemon's hostname)
    const char *gelf_extra;      // --gelf-extra: a JSON object whose members end every message (_container_id, …)
    int gelf_compression;        // --gelf-compression: GELF_GZIP, GELF_ZLIB or GELF_NONE (udp only)
    int gelf_level;              // --gelf-compression-level: -1 (zlib's default) to 9
    int gelf_max_reconnect;      // --gelf-tcp-max-reconnect: connection attempts after a failure before giving up
    int gelf_reconnect_delay;    // --gelf-tcp-reconnect-delay: seconds between them
    const char *fluentd_address; // --fluentd: also send every entry to fluentd (tcp:IP:PORT, unix:PATH)
    const char *fluentd_tag;     // --fluentd-tag
    const char *fluentd_name;    // --fluentd-container-name: with its leading slash, as dockerd sends it
    bool fluentd_async;          // --fluentd-async: an unreachable fluentd does not fail the start
    bool fluentd_subsecond;      // --fluentd-sub-second-precision: EventTime instead of whole seconds
    long fluentd_buffer_limit;   // --fluentd-buffer-limit: messages queued at most while fluentd does not take them
    long long fluentd_retry_wait_ms;  // --fluentd-retry-wait: the first wait between connection attempts
    long fluentd_max_retries;    // --fluentd-max-retries: failed attempts in a row before the queue is dropped
    const char *fluentd_extra[2 * 256];  // --fluentd-extra KEY VALUE: the record's extra fields (labels, env)
    int n_fluentd_extra;
    bool log_nonblocking;        // --log-mode non-blocking: a log server's messages beyond --log-max-buffer-size are dropped, never waited for
    long long log_max_buffer;    // --log-max-buffer-size: bytes of messages queued at most in non-blocking mode (dockerd's 1e6 by default)
    bool fluentd_request_ack;    // --fluentd-request-ack: every message carries a chunk id and waits for fluentd's ack of it
    const char *journald_socket; // --journald: also send every entry to journald's native socket at this path
    const char *journald_fields[2 * 256];  // --journald-field NAME VALUE: the fields of every entry (CONTAINER_ID, …)
    int n_journald_fields;
};

enum { GELF_GZIP, GELF_ZLIB, GELF_NONE };

enum { SYSLOG_STAMP, SYSLOG_RFC3339, SYSLOG_RFC3339_MICRO };

struct buf {
    unsigned char *p;
    size_t n, cap;
};

struct stream {
    int fd;                  // read end of the pipe, or the pty master; -1 at EOF
    unsigned char id;        // 1 stdout, 2 stderr
    const char *name;
    unsigned char carry[LOG_LINE_MAX];  // the start of a line whose newline has not come yet
    size_t ncarry;
    struct buf capture;      // output read while the runtime still runs
    // local format: the line being written in partial entries (Docker's PartialLogEntryMetadata)
    char partial_id[65];
    int partial_ordinal;     // 0: no partial line open
    long long partial_ns;    // the time of its first part, which all its parts carry
};

struct client {
    int fd;
    unsigned long serial;
    struct buf queue;        // packets the socket did not take yet: [u16 length][packet]...
    size_t queue_off;        // where the first unsent packet starts
    bool lossless;           // sent 'L': output waits for it rather than dropping it
};

static struct options opt = { .log_max_size = 10485760, .log_max_files = 3, .log_max_buffer = 1000000, .gelf_level = 1, .gelf_max_reconnect = 3,
    .gelf_reconnect_delay = 1, .fluentd_buffer_limit = 1048576, .fluentd_retry_wait_ms = 1000, .fluentd_max_retries = 2147483647 };
static char path_pid[PATH_MAX], path_exit[PATH_MAX], path_exit_tmp[PATH_MAX];
static char path_attach[PATH_MAX], path_console[PATH_MAX];

static int sig_fd = -1, attach_listen = -1, console_listen = -1;
static int log_fd = -1;
static long long log_size;
static long long log_last_ns;       // the time of the last entry written (local: the gzip header's lastTime)
static pid_t compress_pid = -1;     // the child compressing PATH.1 after a rotation
static char *arg_area;              // argv's strings (what /proc/PID/cmdline shows)
static size_t arg_area_len;
static struct stream out = { .fd = -1, .id = 1, .name = "stdout" };
static struct stream err = { .fd = -1, .id = 2, .name = "stderr" };
static int runtime_err_fd = -1;     // tty mode: the runtime's own stderr
static struct buf runtime_err;
static int pty_master = -1;
static int stdin_fd = -1;           // write end of the container's stdin pipe, or the pty master
static bool stdin_closed, stdin_close_requested;
static struct buf stdin_pending;

static struct client clients[MAX_CLIENTS];
static int n_clients;
static unsigned long next_serial = 1;

static pid_t runtime_pid = -1, container_pid = -1;
static int runtime_status;
static bool runtime_done, container_done;
static int container_status;
static long long container_finished_ns;

// Children reaped before the pid file was read (an exec'd process may exit before the runtime does).
static struct { pid_t pid; int status; long long ns; } early[32];
static int n_early;

// ---------------------------------------------------------------------------------------------
// Small helpers

static long long now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool buf_append(struct buf *b, const void *data, size_t len)
{
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
    return true;
}

static void buf_consume(struct buf *b, size_t len)
{
    memmove(b->p, b->p + len, b->n - len);
    b->n -= len;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static int set_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void write_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t r = write(fd, s, len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        s += r;
        len -= (size_t)r;
    }
}

static void join_path(char *dst, const char *dir, const char *name)
{
    snprintf(dst, PATH_MAX, "%s/%s", dir, name);
}

// ---------------------------------------------------------------------------------------------
// The result line on the caller's pipe (fd 1), then fd 1 becomes /dev/null.

static void report_line(const char *prefix, const char *msg)
{
    char line[8192];
    size_t n = (size_t)snprintf(line, sizeof line - 2, "%s", prefix);
    // One line: newlines, tabs and other control characters are folded to single spaces.
    bool space = n > 0 && line[n - 1] == ' ';
    for (const char *p = msg; *p && n < sizeof line - 2; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) {
            if (!space) line[n++] = ' ';
            space = true;
        } else {
            line[n++] = (char)c;
            space = false;
        }
    }
    while (n > 0 && line[n - 1] == ' ') n--;
    line[n++] = '\n';
    write_all(STDOUT_FILENO, line, n);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        close(null);
    }
}

static void run_runtime_delete(void);

// An error before "ok": report it, undo what exists, exit. No process is left behind: a
// running runtime is killed, a container that the runtime made is killed and deleted.
static void __attribute__((noreturn, format(printf, 1, 2))) startup_fail(const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (runtime_pid > 0 && !runtime_done) {
        kill(runtime_pid, SIGKILL);
        waitpid(runtime_pid, &runtime_status, 0);
        runtime_done = true;
    }
    if (container_pid > 0 && !container_done) kill(container_pid, SIGKILL);
    if (opt.bundle && runtime_pid > 0) run_runtime_delete();
    if (path_attach[0]) unlink(path_attach);
    if (path_console[0]) unlink(path_console);
    report_line("error ", msg);
    _exit(1);
}

// ---------------------------------------------------------------------------------------------
// The runtime

static void reset_signals_for_exec(void)
{
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        signal(s, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

// fork + exec the runtime with stdio fds (each >= 3 or -1 for /dev/null). Returns the pid.
static pid_t spawn_runtime(const char **sub_args, int in, int outfd, int errfd)
{
    const char *argv[MAX_RUNTIME_ARGS + 32];
    int n = 0;
    argv[n++] = opt.runtime;
    for (int i = 0; i < opt.n_runtime_args; i++) argv[n++] = opt.runtime_args[i];
    for (int i = 0; sub_args[i]; i++) argv[n++] = sub_args[i];
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid != 0) return pid;

    // Child: only async-signal-safe calls from here (the monitor is single-threaded anyway).
    int null = open("/dev/null", O_RDWR);
    if (null < 0) _exit(127);
    int fds[3] = { in, outfd, errfd };
    for (int i = 0; i < 3; i++)
        if (dup2(fds[i] >= 0 ? fds[i] : null, i) < 0) _exit(127);
    if (null > 2) close(null);
    reset_signals_for_exec();
    execv(opt.runtime, (char *const *)argv);
    char msg[512];
    int len = snprintf(msg, sizeof msg, "exec %s: %s\n", opt.runtime, strerror(errno));
    write_all(STDERR_FILENO, msg, (size_t)len);
    _exit(127);
}

// `RUNTIME delete --force ID` after a failed start: the created container must not stay.
static void run_runtime_delete(void)
{
    const char *args[] = { "delete", "--force", opt.id, NULL };
    pid_t pid = spawn_runtime(args, -1, -1, -1);
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
}

// ---------------------------------------------------------------------------------------------
// The log file and its rotation (both formats)

#define FRAME_MAX (1024 * 1024)             // local format: a frame longer than this is corruption

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

// Local format: a monitor killed in the middle of a write leaves a torn last frame. It is cut off
// before anything is appended, so that the entries written from now on can be read (and walked
// backwards by their footers). Cheap when the file is sound: the last frame's footer and header
// agree; otherwise the frames are walked from the start to the one that runs past the end.
static void log_trim_torn_tail(void)
{
    struct stat st;
    if (fstat(log_fd, &st) < 0 || st.st_size == 0) return;
    off_t size = st.st_size;
    unsigned char b[4];
    if (size >= 8 && pread(log_fd, b, 4, size - 4) == 4) {
        uint32_t len = get_be32(b);
        if (len <= FRAME_MAX && (off_t)len + 8 <= size && pread(log_fd, b, 4, size - 8 - (off_t)len) == 4 && get_be32(b) == len)
            return;
    }
    off_t off = 0;
    while (off + 8 <= size) {
        if (pread(log_fd, b, 4, off) != 4) return;   // a read error is no evidence of a torn frame: cut nothing
        uint32_t len = get_be32(b);
        // Damage inside the file (not a torn write, which leaves a whole prefix of one frame) is
        // left alone: readers skip it, and what follows it stays.
        if (len > FRAME_MAX) return;
        if (off + 8 + (off_t)len > size) break;
        if (pread(log_fd, b, 4, off + 4 + (off_t)len) != 4 || get_be32(b) != len) return;
        off += 8 + (off_t)len;
    }
    if (ftruncate(log_fd, off) == 0) log_size = off;
}

static void log_open(void)
{
    // Local format: read too, to find a torn last frame (pread on a write-only fd fails, and the file was then cut to nothing).
    log_fd = open(opt.log_path, (opt.log_local ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log_fd < 0) return;
    struct stat st;
    log_size = fstat(log_fd, &st) == 0 ? st.st_size : 0;
    if (opt.log_local) log_trim_torn_tail();
}

static bool write_full(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t r = write(fd, p, len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        len -= (size_t)r;
    }
    return true;
}

// PATH.1 -> PATH.1.gz, as Docker's local driver does: gzip with the time of the file's last entry
// as JSON in the header's Extra field ({"lastTime":"..."}), so that a reader with --since can skip
// the file unopened. Crash-safe: the data goes to PATH.1.gz.tmp, is fsynced and renamed, and only
// then PATH.1 is removed; a crash at any point leaves PATH.1 or PATH.1.gz whole (the reader reads both).
static int gzip_file(const char *src, long long last_ns)
{
    char dst[PATH_MAX + 64], tmp[PATH_MAX + 64], dir[PATH_MAX + 64];
    snprintf(dst, sizeof dst, "%s.gz", src);
    snprintf(tmp, sizeof tmp, "%s.gz.tmp", src);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) {
        close(in);
        return -1;
    }
    char extra[96];
    struct tm tm;
    time_t sec = (time_t)(last_ns / 1000000000LL);
    gmtime_r(&sec, &tm);
    int extra_len = snprintf(extra, sizeof extra, "{\"lastTime\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ\"}",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, last_ns % 1000000000LL);
    // No lastTime when this monitor wrote nothing to the file (it was rotated at its first write): a
    // wrong one would make readers skip the file.
    gz_header header = { .extra = last_ns > 0 ? (Bytef *)extra : Z_NULL, .extra_len = last_ns > 0 ? (uInt)extra_len : 0, .os = 255 };
    z_stream z = { 0 };
    bool ok = deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    if (ok) ok = deflateSetHeader(&z, &header) == Z_OK;
    static unsigned char ib[64 * 1024], ob[64 * 1024];
    for (int flush = Z_NO_FLUSH; ok && flush != Z_FINISH;) {
        ssize_t n = read(in, ib, sizeof ib);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { ok = false; break; }
        flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
        z.next_in = ib;
        z.avail_in = (uInt)n;
        do {
            z.next_out = ob;
            z.avail_out = sizeof ob;
            if (deflate(&z, flush) == Z_STREAM_ERROR) { ok = false; break; }
            ok = write_full(out, ob, sizeof ob - z.avail_out);
        } while (ok && z.avail_out == 0);
    }
    deflateEnd(&z);
    close(in);
    ok = ok && fsync(out) == 0;
    ok = close(out) == 0 && ok;
    if (!ok || rename(tmp, dst) < 0) {
        unlink(tmp);
        return -1;
    }
    snprintf(dir, sizeof dir, "%s", src);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    unlink(src);
    return 0;
}

// The compression runs in a child process, off the output path: the container's output keeps
// being read, logged and fanned out meanwhile. The child holds none of the monitor's descriptors
// (an attach client must see EOF when the monitor closes its socket, not when the child ends).
static void compress_rotated(const char *path, long long last_ns)
{
    pid_t pid = fork();
    if (pid < 0) return;   // PATH.1 stays uncompressed: readers take plain rotated files too
    if (pid > 0) {
        compress_pid = pid;
        return;
    }
    if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
        for (int fd = 3; fd < 1024; fd++) close(fd);
    // Not a monitor any more: berthd finds monitors by their command line naming the state dir
    // (MonitorProcess.IsAlive), and must not take this child for one. path is a copy on our stack.
    if (arg_area && arg_area_len > 0) {
        memset(arg_area, 0, arg_area_len);
        snprintf(arg_area, arg_area_len, "berth-monitor-gzip");
    }
    prctl(PR_SET_NAME, "berth-mon-gzip");
    if (nice(10) < 0) { /* best effort */ }
    _exit(gzip_file(path, last_ns) == 0 ? 0 : 1);
}

// log -> log.1 -> ... -> log.(max-1); the oldest is dropped. Rotated files may be compressed
// (log.N.gz): both names are moved. The fd of the old file is closed first so no descriptor of a
// rotated file stays open. A compression still running from the last rotation is waited for
// first (as dockerd's rotateMu): log.1 must not move while it is read.
static void log_rotate(void)
{
    close_fd(&log_fd);
    char from[PATH_MAX + 32], to[PATH_MAX + 32];
    if (opt.log_max_files <= 1) {
        log_fd = open(opt.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
        log_size = 0;
        return;
    }
    if (compress_pid > 0) {
        while (waitpid(compress_pid, NULL, 0) < 0 && errno == EINTR) {}
        compress_pid = -1;
    }
    static const char *const suffixes[] = { "", ".gz" };
    for (int k = 0; k < 2; k++) {
        snprintf(to, sizeof to, "%s.%d%s", opt.log_path, opt.log_max_files - 1, suffixes[k]);
        unlink(to);
    }
    for (int i = opt.log_max_files - 1; i >= 2; i--)
        for (int k = 0; k < 2; k++) {
            snprintf(from, sizeof from, "%s.%d%s", opt.log_path, i - 1, suffixes[k]);
            snprintf(to, sizeof to, "%s.%d%s", opt.log_path, i, suffixes[k]);
            rename(from, to);   // ENOENT for files not there yet is fine
        }
    snprintf(to, sizeof to, "%s.1", opt.log_path);
    snprintf(from, sizeof from, "%s.1.gz.tmp", opt.log_path);
    unlink(from);   // left by a compression that a crash interrupted
    rename(opt.log_path, to);
    log_fd = open(opt.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
    log_size = 0;
    if (opt.log_compress) compress_rotated(to, log_last_ns);
}

static void log_write(const void *entry, size_t n, long long time_ns)
{
    if (log_fd < 0) log_open();
    if (log_size > 0 && log_size + (long long)n > opt.log_max_size) log_rotate();
    if (log_fd < 0) return;   // the log is best effort: output keeps flowing to attach clients
    ssize_t w = write(log_fd, entry, n);
    if (w > 0) {
        log_size += w;
        log_last_ns = time_ns;
    }
}

// Length of the valid UTF-8 sequence at p (1..4), 0 when invalid or truncated.
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t len;
    unsigned int cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (avail < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

// How many trailing bytes of data[0..len) are the valid start of a UTF-8 sequence that the
// next read may complete (0..3).
static size_t utf8_incomplete_tail(const unsigned char *data, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = data[len - back];
        if ((c & 0xC0) == 0x80) continue;   // continuation byte: look further back
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Local format entries: Docker's api/types/plugins/logdriver LogEntry, protobuf by hand.

static size_t pb_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static size_t pb_uint(unsigned char *p, unsigned field, uint64_t v)
{
    size_t n = pb_varint(p, field << 3);
    return n + pb_varint(p + n, v);
}

static size_t pb_bytes(unsigned char *p, unsigned field, const void *data, size_t len)
{
    size_t n = pb_varint(p, field << 3 | 2);
    n += pb_varint(p + n, len);
    memcpy(p + n, data, len);
    return n + len;
}

static unsigned char frame[LOG_LINE_MAX + 256];

// [u32 BE length][LogEntry][u32 BE length], proto3 as gogo-protobuf writes it (fields in order,
// zero values left out): source = 1, time_nano = 2, line = 3, partial = 4, partial_log_metadata = 5
// { last = 1, id = 2, ordinal = 3 }. The line has no trailing newline: readers add it to entries
// that are not a non-last part.
static size_t local_frame(const char *source, long long time_ns, const unsigned char *line, size_t len,
    bool partial, bool last, const char *id, int ordinal)
{
    unsigned char *p = frame + 4;
    size_t n = pb_bytes(p, 1, source, strlen(source));
    if (time_ns) n += pb_uint(p + n, 2, (uint64_t)time_ns);
    if (len) n += pb_bytes(p + n, 3, line, len);
    if (partial) {
        unsigned char md[96];
        size_t m = 0;
        if (last) m += pb_uint(md + m, 1, 1);
        if (id[0]) m += pb_bytes(md + m, 2, id, strlen(id));
        if (ordinal) m += pb_uint(md + m, 3, (uint64_t)(uint32_t)ordinal);
        n += pb_uint(p + n, 4, 1);
        n += pb_bytes(p + n, 5, md, m);
    }
    put_be32(frame, (uint32_t)n);
    put_be32(frame + 4 + n, (uint32_t)n);
    return n + 8;
}

// One log entry as dockerd's copier makes it: the line without its newline, its time, and for a
// chunk that ends without a newline (a line over 16 KiB, or output that stopped mid-line) the
// partial metadata: the parts of one line share a random id and the first part's time, count up
// from ordinal 1, and the part that ends the line has last = true. Every driver gets the same.
struct entry {
    const char *source;
    long long time_ns;
    const unsigned char *line;
    size_t len;
    bool partial, last;
    const char *partial_id;
    int ordinal;
};

static struct entry entry_of(struct stream *s, const unsigned char *data, size_t len)
{
    bool newline = len > 0 && data[len - 1] == '\n';
    struct entry e = { .source = s->name, .line = data, .len = len - newline, .partial_id = "" };
    if (newline && s->partial_ordinal == 0) {
        e.time_ns = now_ns(CLOCK_REALTIME);
        return e;
    }
    if (s->partial_ordinal == 0) {
        unsigned char rnd[32];
        if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
            long long seed = now_ns(CLOCK_MONOTONIC) ^ ((long long)getpid() << 32);
            for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (unsigned char)(seed >> (i % 8 * 8)) ^ (unsigned char)(i * 131);
        }
        for (size_t i = 0; i < sizeof rnd; i++) snprintf(s->partial_id + 2 * i, 3, "%02x", rnd[i]);
        s->partial_ns = now_ns(CLOCK_REALTIME);
    }
    e.partial = true;
    e.last = newline;
    e.partial_id = s->partial_id;
    e.ordinal = ++s->partial_ordinal;
    e.time_ns = s->partial_ns;
    if (newline) s->partial_ordinal = 0;
    return e;
}

static void local_entry(const struct entry *e)
{
    size_t n = local_frame(e->source, e->time_ns, e->line, e->len, e->partial, e->last, e->partial_id, e->ordinal);
    log_write(frame, n, e->time_ns);
}

// ---------------------------------------------------------------------------------------------
// syslog (docker's syslog driver; the log file above is then dockerd's dual-logging cache)
//
// One message per entry, as dockerd's srslog writes them: "<PRI>TIMESTAMP HEADER LINE", PRI the
// facility with severity info (stdout) or err (stderr), TIMESTAMP local time as time.Stamp
// ("Jan _2 15:04:05"; rfc3164 and the default format) or "1 " and RFC 3339 (rfc5424, microseconds
// with rfc5424micro); the line, and a newline (over TLS, rfc5424 messages get RFC 5425's length
// prefix, as dockerd's). Datagram sockets (unixgram, udp,
// and "unix" when the path takes datagrams, as srslog tries first) get one datagram per message,
// sent without waiting: one the socket does not take at once is dropped. Stream sockets (tcp, a
// stream "unix") go through the log servers' queue below, as gelf and fluentd do: a broken
// connection is made again at once for the next message, a failed attempt drops what is queued
// (srslog gives that message up) and the next one waits a second.

static int syslog_fd = -1;              // a datagram socket (stream connections are the queue's, fwd.fd)
static bool syslog_stream;
static long long syslog_retry_ns;       // CLOCK_MONOTONIC: no new datagram socket before this

static void forward_adopt(int fd, const char *address, SSL *ssl);
static void forward_send(const void *msg, size_t len);

// ---------------------------------------------------------------------------------------------
// TLS for syslog's tcp+tls (OpenSSL, linked statically), configured as dockerd's go-connections
// tlsconfig.Client configures Go's crypto/tls: TLS 1.2 at least; the system's roots plus
// syslog-tls-ca-cert (read only when the certificate is verified); the client certificate and key
// when either is given; the server's name or IP address checked, SNI for a name. Failures are told
// in the words dockerd 20.10 gives at the container's start (checked against it).

static SSL_CTX *tls_ctx;

// Go's "open PATH: no such file or directory" when PATH cannot be read.
static bool tls_readable(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) { close(fd); return true; }
    snprintf(err, errlen, "open %s: %s", path, strerror(errno));
    size_t at = strlen("open : ") + strlen(path);     // Go's errno texts start in lower case
    if (at < strlen(err)) err[at] = (char)tolower((unsigned char)err[at]);
    return false;
}

static const char *tls_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}

static bool tls_context_open(char *err, size_t errlen)
{
    char why[256];
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx) { snprintf(err, errlen, "tls: %s", tls_reason()); return false; }
    SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (opt.syslog_tls_skip_verify) {
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_default_verify_paths(tls_ctx);
        if (opt.syslog_tls_ca) {
            if (!tls_readable(opt.syslog_tls_ca, why, sizeof why)) {
                snprintf(err, errlen, "could not read CA certificate \"%s\": %s", opt.syslog_tls_ca, why);
                return false;
            }
            if (SSL_CTX_load_verify_locations(tls_ctx, opt.syslog_tls_ca, NULL) != 1) {
                ERR_clear_error();
                snprintf(err, errlen, "failed to append certificates from PEM file: \"%s\"", opt.syslog_tls_ca);
                return false;
            }
        }
    }
    if (opt.syslog_tls_cert || opt.syslog_tls_key) {
        const char *cert = opt.syslog_tls_cert ? opt.syslog_tls_cert : "", *key = opt.syslog_tls_key ? opt.syslog_tls_key : "";
        if (!tls_readable(cert, why, sizeof why) || !tls_readable(key, why, sizeof why)) {
            snprintf(err, errlen, "Could not load X509 key pair: %s", why);
            return false;
        }
        if (SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1) {
            snprintf(err, errlen, "Could not load X509 key pair: tls: failed to find any PEM data in certificate input (%s)", tls_reason());
            return false;
        }
        if (SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1) {
            snprintf(err, errlen, "Could not load X509 key pair: tls: failed to find any PEM data in key input (%s)", tls_reason());
            return false;
        }
        if (SSL_CTX_check_private_key(tls_ctx) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "Could not load X509 key pair: tls: private key does not match public key");
            return false;
        }
    }
    return true;
}

static bool is_ip_address(const char *s)
{
    struct in6_addr probe;
    return inet_pton(AF_INET, s, &probe) == 1 || inet_pton(AF_INET6, s, &probe) == 1;
}

static SSL *tls_session(int fd)
{
    SSL *ssl = SSL_new(tls_ctx);
    if (!ssl) return NULL;
    SSL_set_fd(ssl, fd);
    const char *name = opt.syslog_tls_name;
    bool ip = is_ip_address(name);
    if (!opt.syslog_tls_skip_verify) {
        if (ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
        else SSL_set1_host(ssl, name);
    }
    if (!ip) SSL_set_tlsext_host_name(ssl, name);    // Go sends SNI for names only
    return ssl;
}

// Go's x509.HostnameError: which names the certificate is valid for, and the one wanted.
static void tls_hostname_error(SSL *ssl, char *err, size_t errlen)
{
    const char *name = opt.syslog_tls_name;
    bool ip = is_ip_address(name);
    X509 *cert = SSL_get1_peer_certificate(ssl);
    char valid[1024] = "";
    size_t n = 0;
    GENERAL_NAMES *sans = cert ? X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL) : NULL;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        char text[256] = "";
        if (ip && g->type == GEN_IPADD) {
            int len = ASN1_STRING_length(g->d.iPAddress);
            inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), text, sizeof text);
        } else if (!ip && g->type == GEN_DNS) {
            snprintf(text, sizeof text, "%.*s", ASN1_STRING_length(g->d.dNSName), (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        }
        if (text[0] && n < sizeof valid) n += (size_t)snprintf(valid + n, sizeof valid - n, "%s%s", n ? ", " : "", text);
    }
    GENERAL_NAMES_free(sans);
    X509_free(cert);
    if (ip && !valid[0]) snprintf(err, errlen, "x509: cannot validate certificate for %s because it doesn't contain any IP SANs", name);
    else if (!valid[0]) snprintf(err, errlen, "x509: certificate is not valid for any names, but wanted to match %s", name);
    else snprintf(err, errlen, "x509: certificate is valid for %s, not %s", valid, name);
}

// Why a handshake failed, in Go's words for the verification errors dockerd reports.
static void tls_handshake_error(SSL *ssl, int ret, char *err, size_t errlen)
{
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
        switch (verify) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: case X509_V_ERR_CERT_UNTRUSTED:
            snprintf(err, errlen, "x509: certificate signed by unknown authority");
            break;
        case X509_V_ERR_HOSTNAME_MISMATCH: case X509_V_ERR_IP_ADDRESS_MISMATCH:
            tls_hostname_error(ssl, err, errlen);
            break;
        case X509_V_ERR_CERT_HAS_EXPIRED: case X509_V_ERR_CERT_NOT_YET_VALID:
            snprintf(err, errlen, "x509: certificate has expired or is not yet valid");
            break;
        default:
            snprintf(err, errlen, "x509: %s", X509_verify_cert_error_string(verify));
        }
        ERR_clear_error();
        return;
    }
    int e = SSL_get_error(ssl, ret);
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) snprintf(err, errlen, ret == 0 || errno == 0 ? "EOF" : "tls: %s", strerror(errno));
    else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) snprintf(err, errlen, "tls: handshake timed out");
    else snprintf(err, errlen, "remote error: tls: %s", tls_reason());
    ERR_clear_error();
}

#define TLS_HANDSHAKE_MS 10000

// At start: the handshake on a connected blocking socket, at most TLS_HANDSHAKE_MS.
static SSL *tls_handshake_blocking(int fd, char *err, size_t errlen)
{
    struct timeval tv = { .tv_sec = TLS_HANDSHAKE_MS / 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL *ssl = tls_session(fd);
    if (!ssl) { snprintf(err, errlen, "tls: %s", tls_reason()); return NULL; }
    int r = SSL_connect(ssl);
    if (r == 1) return ssl;
    tls_handshake_error(ssl, r, err, errlen);
    SSL_free(ssl);
    return NULL;
}

// Go's words for a failed dial ("dial tcp 127.0.0.1:514: connect: connection refused"), which dockerd reports.
static void syslog_dial_error(char *err, size_t errlen, const char *net, const char *address, int e)
{
    int n = snprintf(err, errlen, "dial %s %s: connect: %s", net, address, strerror(e));
    size_t at = strlen(err) - strlen(strerror(e));
    if (n > 0 && at < errlen && err[at] >= 'A' && err[at] <= 'Z') err[at] = (char)(err[at] + 32);
}

static int syslog_connect(char *err, size_t errlen)
{
    const char *a = opt.syslog_address;
    int fd = -1;
    if (!strncmp(a, "unix:", 5) || !strncmp(a, "unixgram:", 9)) {
        bool gram_only = a[4] != ':';
        const char *path = a + (gram_only ? 9 : 5);
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sun.sun_path) { snprintf(err, errlen, "syslog socket path too long: %s", path); return -1; }
        strcpy(sun.sun_path, path);
        int types[] = { SOCK_DGRAM, SOCK_STREAM };
        for (int t = 0; t < (gram_only ? 1 : 2); t++) {
            fd = socket(AF_UNIX, types[t] | SOCK_CLOEXEC, 0);
            if (fd < 0) break;
            struct timeval tv = { .tv_sec = 1 };
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) { syslog_stream = types[t] == SOCK_STREAM; return fd; }
            syslog_dial_error(err, errlen, types[t] == SOCK_DGRAM ? "unixgram" : "unix", path, errno);
            close(fd);
            fd = -1;
            if (errno == ENOENT) break;        // no such socket: the other type will not find it either
        }
        return -1;
    }
    // udp:IP:PORT or tcp:IP:PORT, an IPv6 address in brackets: berthd resolved the name (getaddrinfo would
    // tie this static binary to the host's NSS libraries).
    bool tcp = !strncmp(a, "tcp:", 4);
    if (!tcp && strncmp(a, "udp:", 4)) { snprintf(err, errlen, "unsupported syslog address %s", a); return -1; }
    char host[64];
    const char *hp = a + 4, *colon = strrchr(hp, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || *end || port < 1 || port > 65535 || (size_t)(colon - hp) >= sizeof host) { snprintf(err, errlen, "bad syslog address %s", a); return -1; }
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = 0;
    struct sockaddr_storage ss = { 0 };
    socklen_t sslen;
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1) { snprintf(err, errlen, "bad syslog address %s", a); return -1; }
        sslen = sizeof *in6;
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &in4->sin_addr) != 1) { snprintf(err, errlen, "bad syslog address %s", a); return -1; }
        sslen = sizeof *in4;
    }
    fd = socket(ss.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (fd < 0) { snprintf(err, errlen, "socket: %s", strerror(errno)); return -1; }
    struct timeval tv = { .tv_sec = 1 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);   // bounds the connect too
    if (connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
        syslog_dial_error(err, errlen, tcp ? "tcp" : "udp", hp, errno);
        close(fd);
        return -1;
    }
    syslog_stream = tcp;
    return fd;
}

// At start: a syslog that cannot be reached fails the start, as dockerd's "failed to initialize logging driver".
static void syslog_open(void)
{
    char err[512] = "";
    if (opt.syslog_tls && !tls_context_open(err, sizeof err)) startup_fail("failed to initialize logging driver: %s", err);
    syslog_fd = syslog_connect(err, sizeof err);
    if (syslog_fd < 0) startup_fail("failed to initialize logging driver: %s", err);
    SSL *ssl = NULL;
    if (opt.syslog_tls && !(ssl = tls_handshake_blocking(syslog_fd, err, sizeof err))) startup_fail("failed to initialize logging driver: %s", err);
    if (syslog_stream) {
        forward_adopt(syslog_fd, opt.syslog_address, ssl);
        syslog_fd = -1;
    }
}

static char syslog_message[LOG_LINE_MAX + 1024];

static void syslog_entry(struct stream *s, const unsigned char *data, size_t len)
{
    if (len > 0 && data[len - 1] == '\n') len--;
    if (!syslog_stream && syslog_fd < 0) {
        long long now = now_ns(CLOCK_MONOTONIC);
        if (now < syslog_retry_ns) return;
        syslog_retry_ns = now + 1000000000LL;
        char err[512];
        if ((syslog_fd = syslog_connect(err, sizeof err)) < 0) return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    char *m = syslog_message;
    size_t room = sizeof syslog_message, n = 0;
    int priority = opt.syslog_facility * 8 + (s->id == 2 ? 3 : 6);   // err for stderr, info for stdout
    n += (size_t)snprintf(m, room, "<%d>", priority);
    if (opt.syslog_time == SYSLOG_STAMP) {
        n += strftime(m + n, room - n, "%b %e %H:%M:%S", &tm);
    } else {
        n += strftime(m + n, room - n, "1 %Y-%m-%dT%H:%M:%S", &tm);
        if (opt.syslog_time == SYSLOG_RFC3339_MICRO) n += (size_t)snprintf(m + n, room - n, ".%06ld", ts.tv_nsec / 1000);
        long off = tm.tm_gmtoff / 60;
        if (off == 0) m[n++] = 'Z';
        else n += (size_t)snprintf(m + n, room - n, "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
    }
    n += (size_t)snprintf(m + n, room - n, " %s", opt.syslog_header);
    if (len > room - n - 1) len = room - n - 1;
    memcpy(m + n, data, len);
    n += len;
    m[n++] = '\n';                    // srslog ends every message with one
    if (syslog_stream && opt.syslog_tls && opt.syslog_time != SYSLOG_STAMP) {
        // dockerd frames rfc5424 messages over TLS as RFC 5425 says: "LENGTH MESSAGE" (the newline counted).
        char framed[sizeof syslog_message + 16];
        int head = snprintf(framed, sizeof framed, "%zu ", n);
        memcpy(framed + head, m, n);
        forward_send(framed, n + (size_t)head);
        return;
    }
    if (syslog_stream) {
        forward_send(m, n);
        return;
    }
    ssize_t sent = send(syslog_fd, m, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent == (ssize_t)n) return;
    if (sent < 0 && (errno == EAGAIN || errno == ENOBUFS)) return;   // dropped; the socket stays
    close_fd(&syslog_fd);      // a broken socket: a new one for a later message
    syslog_retry_ns = now_ns(CLOCK_MONOTONIC) + 1000000000LL;
}

// ---------------------------------------------------------------------------------------------
// Log servers over a stream socket: gelf over tcp, fluentd over tcp or a unix socket
//
// Each message goes into a queue that a non-blocking socket drains as fast as the server takes
// it, polled by the event loop. The log mode decides what happens when the server does not keep
// up. Blocking (dockerd's default, where the copier waits for the driver's write): while more than
// FORWARD_HOLD bytes are queued the container's output is not read, so the container blocks in
// write until the server takes some (fluentd-async is fluent-logger-golang's own buffer instead:
// fluentd-buffer-limit messages, then new ones are dropped). Non-blocking (dockerd's ring buffer
// in front of the driver): at most --log-max-buffer-size bytes are queued (one message always fits
// an empty queue, as in moby's messageRing) and a new message that does not fit is dropped; the
// container never waits. Either way at most FORWARD_QUEUE_MAX bytes are queued.
// A broken connection is made again (non-blocking too) after the driver's delay; the message it
// cut is sent again whole on the next one. After the driver's number of failed attempts in a row,
// what is queued is dropped, as dockerd gives up on those messages (which releases a held
// container), and the next message starts the count again. At exit the queue gets FORWARD_FLUSH_MS more.

#define FORWARD_QUEUE_MAX (4 * 1024 * 1024)
#define FORWARD_CONNECT_MS 3000             // the first connection, before "ok" (fluent-logger-golang's dial timeout)
#define FORWARD_FLUSH_MS 2000
#define FORWARD_HOLD (256 * 1024)           // blocking mode: queued bytes above which the output is not read

struct forward {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int fd;                  // -1: not connected
    bool connecting;         // a non-blocking connect is under way (POLLOUT says how it ended)
    SSL *ssl;                // TLS over fd (syslog's tcp+tls), or NULL
    bool handshaking;        // a non-blocking TLS handshake is under way
    bool handshake_wants_read;
    struct buf queue;        // [u32 length][message]...
    size_t head;             // where the first unsent message starts in queue
    size_t head_sent;        // how much of it the current connection took
    size_t messages, max_messages;
    long long retry_ns;      // CLOCK_MONOTONIC: no connection attempt before this
    int failures;            // failed attempts in a row
    long give_up_after;      // that many failures drop the queue
    bool retry_at_once_after_write_error;   // fluentd reconnects at once; gelf waits its delay first
    bool awaiting_ack;       // fluentd-request-ack: the first message is sent, its ack has not come
    unsigned char answer[256];   // what the server sent of the ack so far
    size_t answer_n;
};

static struct forward fwd = { .fd = -1 };

static long long forward_delay_ns(void);   // the driver's wait after fwd.failures failed attempts

// "udp:IP:PORT", "tcp:IP:PORT" ("[IPv6]" in brackets) or "unix:PATH": berthd resolved the names.
static bool parse_address(const char *a, struct sockaddr_storage *ss, socklen_t *len, int *type)
{
    memset(ss, 0, sizeof *ss);
    if (!strncmp(a, "unix:", 5)) {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        sun->sun_family = AF_UNIX;
        if (strlen(a + 5) >= sizeof sun->sun_path) return false;
        strcpy(sun->sun_path, a + 5);
        *len = sizeof *sun;
        *type = SOCK_STREAM;
        return true;
    }
    if (strncmp(a, "tcp:", 4) && strncmp(a, "udp:", 4)) return false;
    *type = a[0] == 't' ? SOCK_STREAM : SOCK_DGRAM;
    char host[64];
    const char *hp = a + 4, *colon = strrchr(hp, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || *end || port < 1 || port > 65535 || (size_t)(colon - hp) >= sizeof host) return false;
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = 0;
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
        return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    *len = sizeof *in4;
    return inet_pton(AF_INET, host, &in4->sin_addr) == 1;
}

// The address as Go's dial errors name it: "127.0.0.1:24224", "[::1]:24224", "/path".
static const char *address_text(const char *a)
{
    return a + (strncmp(a, "unix:", 5) ? 4 : 5);
}

// Starts a connection. Returns 0 when connected, EINPROGRESS when under way, an errno otherwise.
static int forward_connect(void)
{
    int fd = socket(fwd.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    if (connect(fd, (struct sockaddr *)&fwd.addr, fwd.addrlen) == 0 || errno == EINPROGRESS) {
        fwd.connecting = errno == EINPROGRESS;
        fwd.fd = fd;
        return fwd.connecting ? EINPROGRESS : 0;
    }
    int e = errno;
    close(fd);
    return e;
}

// At start: connected within FORWARD_CONNECT_MS, or an error in Go's words in err.
static bool forward_open(const char *address, char *err, size_t errlen)
{
    int e = forward_connect();
    if (e == EINPROGRESS) {
        struct pollfd pf = { .fd = fwd.fd, .events = POLLOUT };
        int r;
        do r = poll(&pf, 1, FORWARD_CONNECT_MS); while (r < 0 && errno == EINTR);
        socklen_t l = sizeof e;
        if (r == 0) e = ETIMEDOUT;
        else if (getsockopt(fwd.fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0) e = errno;
        fwd.connecting = false;
        if (e) close_fd(&fwd.fd);
    }
    if (e == 0) return true;
    const char *net = !strncmp(address, "unix:", 5) ? "unix" : "tcp";
    if (e == ETIMEDOUT) snprintf(err, errlen, "dial %s %s: i/o timeout", net, address_text(address));
    else syslog_dial_error(err, errlen, net, address_text(address), e);
    return false;
}

static void forward_drop_queue(void)
{
    fwd.queue.n = fwd.head = fwd.head_sent = fwd.messages = 0;
    fwd.awaiting_ack = false;
    fwd.answer_n = 0;
}

// The first message has gone (and, with fluentd-request-ack, fluentd acknowledged it).
static void forward_pop(void)
{
    fwd.head += 4 + get_be32(fwd.queue.p + fwd.head);
    fwd.head_sent = 0;
    fwd.messages--;
    fwd.failures = 0;
    fwd.awaiting_ack = false;
}

static void forward_close(void)
{
    if (fwd.ssl) {
        SSL_free(fwd.ssl);
        fwd.ssl = NULL;
        ERR_clear_error();
    }
    close_fd(&fwd.fd);
    fwd.connecting = fwd.handshaking = false;
}

static void forward_failed(bool write_error);

// One step of the TLS handshake; false when it failed (a failed connection attempt).
static bool forward_handshake(void)
{
    int r = SSL_connect(fwd.ssl);
    if (r == 1) {
        fwd.handshaking = false;
        return true;
    }
    int e = SSL_get_error(fwd.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        fwd.handshake_wants_read = e == SSL_ERROR_WANT_READ;
        return true;
    }
    forward_failed(false);
    return false;
}

// The tcp connection is up: over TLS, the handshake starts. False when that failed.
static bool forward_connected(void)
{
    fwd.connecting = false;
    if (!opt.syslog_tls) return true;
    if (!(fwd.ssl = tls_session(fwd.fd))) { forward_failed(false); return false; }
    fwd.handshaking = true;
    return forward_handshake();
}

// send() or SSL_write(): bytes taken, or -1 with errno (EAGAIN when the socket is full).
static ssize_t forward_write(const void *p, size_t n)
{
    if (!fwd.ssl) return send(fwd.fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    int r = SSL_write(fwd.ssl, p, (int)(n > INT_MAX ? INT_MAX : n));
    if (r > 0) return r;
    int e = SSL_get_error(fwd.ssl, r);
    ERR_clear_error();
    errno = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
    return -1;
}

// recv() or SSL_read(): as recv (0 at the end of the connection).
static ssize_t forward_read(void *p, size_t n)
{
    if (!fwd.ssl) return recv(fwd.fd, p, n, MSG_DONTWAIT);
    int r = SSL_read(fwd.ssl, p, (int)n);
    if (r > 0) return r;
    int e = SSL_get_error(fwd.ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EIO;
    return -1;
}

// A connection attempt failed, or the connection broke (write_error).
static void forward_failed(bool write_error)
{
    forward_close();
    fwd.head_sent = 0;       // the message it cut (or whose ack did not come) goes again whole
    fwd.awaiting_ack = false;
    fwd.answer_n = 0;
    long long now = now_ns(CLOCK_MONOTONIC);
    if (write_error) {
        fwd.retry_ns = fwd.retry_at_once_after_write_error ? now : now + forward_delay_ns();
        return;
    }
    fwd.failures++;
    if (fwd.failures >= fwd.give_up_after) {
        forward_drop_queue();
        fwd.failures = 0;
    }
    fwd.retry_ns = now + forward_delay_ns();
}

// Sends what the socket takes now; connects first when it is time to.
static void forward_flush(void)
{
    if (fwd.messages == 0) return;
    if (fwd.fd < 0) {
        if (now_ns(CLOCK_MONOTONIC) < fwd.retry_ns) return;
        int e = forward_connect();
        if (e == EINPROGRESS) return;
        if (e) { forward_failed(false); return; }
        if (!forward_connected()) return;
    }
    if (fwd.connecting || fwd.handshaking) return;
    while (fwd.messages > 0 && !fwd.awaiting_ack) {
        uint32_t len = get_be32(fwd.queue.p + fwd.head);
        ssize_t r = forward_write(fwd.queue.p + fwd.head + 4 + fwd.head_sent, len - fwd.head_sent);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        if (r <= 0) { forward_failed(true); return; }
        fwd.head_sent += (size_t)r;
        if (fwd.head_sent < len) continue;
        if (opt.fluentd_request_ack) fwd.awaiting_ack = true;   // the next message waits for this one's ack
        else forward_pop();
    }
    if (fwd.messages == 0) forward_drop_queue();
    else if (fwd.head > fwd.queue.n / 2) {
        buf_consume(&fwd.queue, fwd.head);
        fwd.head = 0;
    }
}

static void forward_send(const void *msg, size_t len)
{
    size_t queued_bytes = fwd.queue.n - fwd.head;
    if (opt.log_nonblocking && fwd.messages > 0 && queued_bytes + len + 4 > (size_t)opt.log_max_buffer) return;
    if (queued_bytes + len + 4 > FORWARD_QUEUE_MAX || (fwd.max_messages && fwd.messages >= fwd.max_messages)) return;
    unsigned char l[4];
    put_be32(l, (uint32_t)len);
    if (!buf_append(&fwd.queue, l, 4)) return;
    if (!buf_append(&fwd.queue, msg, len)) { fwd.queue.n -= 4; return; }
    fwd.messages++;
    forward_flush();
}

// The event loop's part: what to poll, and what came of it.
static bool forward_active(void)
{
    return opt.fluentd_address || (opt.gelf_address && !strncmp(opt.gelf_address, "tcp:", 4)) || (opt.syslog_address && syslog_stream);
}

// Blocking mode: the server is behind, the container's output waits (see above).
static bool forward_holds_output(void)
{
    return forward_active() && !opt.log_nonblocking && !opt.fluentd_async && fwd.queue.n - fwd.head > FORWARD_HOLD;
}

// A connection made at start (syslog's, which finds out the socket type first) becomes the queue's.
static void forward_adopt(int fd, const char *address, SSL *ssl)
{
    int type;
    if (!parse_address(address, &fwd.addr, &fwd.addrlen, &type)) startup_fail("failed to initialize logging driver: bad address %s", address);
    set_nonblock(fd);
    fwd.fd = fd;
    fwd.ssl = ssl;
    fwd.give_up_after = 1;
    fwd.retry_at_once_after_write_error = true;
}

static short forward_events(void)
{
    if (fwd.fd < 0) return 0;
    if (fwd.connecting) return POLLOUT;
    if (fwd.handshaking) return fwd.handshake_wants_read ? POLLIN : POLLOUT;
    return (short)(POLLIN | (fwd.messages && !fwd.awaiting_ack ? POLLOUT : 0));
}

// Milliseconds until a connection attempt is due (-1: none is).
static int forward_timeout_ms(void)
{
    if (fwd.fd >= 0 || fwd.messages == 0) return -1;
    long long left = (fwd.retry_ns - now_ns(CLOCK_MONOTONIC)) / 1000000 + 1;
    return left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

static int fluentd_check_ack(void);

static void forward_ready(short revents)
{
    if (fwd.fd >= 0 && fwd.connecting && revents) {
        int e = 0;
        socklen_t l = sizeof e;
        if (getsockopt(fwd.fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0 || e) { forward_failed(false); return; }
        if (!forward_connected()) return;
    } else if (fwd.fd >= 0 && fwd.handshaking && revents) {
        if (!forward_handshake()) return;
    } else if (fwd.fd >= 0 && (revents & (POLLIN | POLLHUP | POLLERR))) {
        // Only fluentd's acks are asked for: anything else that comes is read and dropped; EOF is a broken connection.
        unsigned char sink[4096];
        ssize_t r;
        while ((r = forward_read(sink, sizeof sink)) > 0) {
            if (!fwd.awaiting_ack) continue;
            if (fwd.answer_n + (size_t)r > sizeof fwd.answer) { forward_failed(true); return; }
            memcpy(fwd.answer + fwd.answer_n, sink, (size_t)r);
            fwd.answer_n += (size_t)r;
            int ack = fluentd_check_ack();
            if (ack < 0) { forward_failed(true); return; }   // not the ack of the message sent: send it again
            if (ack > 0) {
                forward_pop();
                fwd.answer_n = 0;
                forward_flush();
                if (fwd.fd < 0) return;
            }
        }
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { forward_failed(true); return; }
    }
    forward_flush();
}

// At exit: what is queued gets FORWARD_FLUSH_MS to go.
static void forward_drain(void)
{
    long long deadline = now_ns(CLOCK_MONOTONIC) + FORWARD_FLUSH_MS * 1000000LL;
    while (forward_active() && fwd.messages > 0) {
        long long left = (deadline - now_ns(CLOCK_MONOTONIC)) / 1000000;
        if (left <= 0) break;
        forward_flush();
        struct pollfd pf = { .fd = fwd.fd, .events = forward_events() };
        int timeout = forward_timeout_ms();
        if (timeout < 0 || timeout > left) timeout = (int)left;
        if (pf.fd < 0) { poll(NULL, 0, timeout); continue; }
        if (poll(&pf, 1, timeout) > 0) forward_ready(pf.revents);
    }
    if (fwd.ssl && !fwd.handshaking && !fwd.connecting) SSL_shutdown(fwd.ssl);   // close_notify, as Go's tls.Conn.Close sends
    forward_close();
}

// ---------------------------------------------------------------------------------------------
// gelf (docker's gelf driver, Graylog's go-gelf writers; the log file is then dockerd's cache)
//
// One GELF 1.1 message per non-empty entry, as dockerd's gelf driver builds it: {"version":"1.1",
// "host":…,"short_message":LINE,"timestamp":SECONDS.MILLIS,"level":6 (stdout) or 3 (stderr),
// then the extra fields berthd rendered once (_command, _container_id, _container_name,
// _created, _image_id, _image_name, _tag and the labels/env attributes, keys sorted)}; JSON as
// Go's json.Marshal writes it. udp: compressed (gzip, zlib or none, at --gelf-compression-level),
// one datagram, or go-gelf's chunks when it is over 1420 bytes: [0x1e 0x0f][8 random bytes][index]
// [count] and 1408 bytes of it each, 128 chunks at most (a larger message is dropped, as go-gelf
// refuses it); sent without waiting, a datagram the socket does not take is dropped. tcp: never
// compressed, each message ended by a NUL byte, through the queue above.

#define GELF_EXTRA_MAX 16384
#define GELF_CHUNK 1420
#define GELF_CHUNK_DATA (GELF_CHUNK - 12)
#define GELF_MESSAGE_MAX (LOG_LINE_MAX * 6 + GELF_EXTRA_MAX + 4096)

static int gelf_udp_fd = -1;
static char gelf_message[GELF_MESSAGE_MAX];
static unsigned char gelf_packed[GELF_MESSAGE_MAX + 1024];

static size_t json_escape(char *dst, const unsigned char *data, size_t len, bool html);

static long long gelf_delay_ns(void) { return opt.gelf_reconnect_delay * 1000000000LL; }

static void gelf_open(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int type;
    char err[512];
    if (!parse_address(opt.gelf_address, &ss, &len, &type) || ss.ss_family == AF_UNIX)
        startup_fail("failed to initialize logging driver: gelf: bad address %s", opt.gelf_address);
    if (type == SOCK_DGRAM) {
        gelf_udp_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (gelf_udp_fd < 0 || connect(gelf_udp_fd, (struct sockaddr *)&ss, len) < 0) {
            syslog_dial_error(err, sizeof err, "udp", address_text(opt.gelf_address), errno);
            startup_fail("failed to initialize logging driver: gelf: cannot connect to GELF endpoint: %s %s", address_text(opt.gelf_address), err);
        }
        return;
    }
    fwd.addr = ss;
    fwd.addrlen = len;
    fwd.give_up_after = (long)opt.gelf_max_reconnect + 1;
    if (!forward_open(opt.gelf_address, err, sizeof err))
        startup_fail("failed to initialize logging driver: gelf: cannot connect to GELF endpoint: %s %s", address_text(opt.gelf_address), err);
}

// zlib with Go's headers: gzip's says "unknown OS" (255) as compress/gzip writes it.
static size_t gelf_compress(const char *data, size_t len)
{
    z_stream z = { 0 };
    bool gzip = opt.gelf_compression == GELF_GZIP;
    if (deflateInit2(&z, opt.gelf_level, Z_DEFLATED, gzip ? 31 : 15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
    gz_header h = { .os = 255 };
    if (gzip) deflateSetHeader(&z, &h);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len;
    z.next_out = gelf_packed;
    z.avail_out = sizeof gelf_packed;
    int r = deflate(&z, Z_FINISH);
    size_t n = sizeof gelf_packed - z.avail_out;
    deflateEnd(&z);
    return r == Z_STREAM_END ? n : 0;
}

static void gelf_entry(const struct entry *e)
{
    if (e->len == 0) return;     // dockerd's gelf driver sends no empty message
    size_t n = 0;
    char *m = gelf_message;
    n += (size_t)sprintf(m, "{\"version\":\"1.1\",\"host\":\"");
    n += json_escape(m + n, (const unsigned char *)opt.gelf_host, strlen(opt.gelf_host), true);
    n += (size_t)sprintf(m + n, "\",\"short_message\":\"");
    n += json_escape(m + n, e->line, e->len, true);
    // float64(UnixNano/1e6)/1000 in Go's shortest form: whole seconds, then the milliseconds without trailing zeros.
    long long ms = e->time_ns / 1000000;
    n += (size_t)sprintf(m + n, "\",\"timestamp\":%lld", ms / 1000);
    if (ms % 1000) {
        n += (size_t)sprintf(m + n, ".%03lld", ms % 1000);
        while (m[n - 1] == '0') n--;
    }
    n += (size_t)sprintf(m + n, ",\"level\":%d", strcmp(e->source, "stderr") ? 6 : 3);
    size_t extra = strlen(opt.gelf_extra);
    if (extra > 2) {
        m[n++] = ',';
        memcpy(m + n, opt.gelf_extra + 1, extra - 2);
        n += extra - 2;
    }
    m[n++] = '}';

    if (gelf_udp_fd < 0) {
        m[n++] = 0;
        forward_send(m, n);
        return;
    }
    const unsigned char *payload = (const unsigned char *)m;
    if (opt.gelf_compression != GELF_NONE) {
        if ((n = gelf_compress(m, n)) == 0) return;
        payload = gelf_packed;
    }
    if (n <= GELF_CHUNK) {
        send(gelf_udp_fd, payload, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        return;
    }
    size_t chunks = n / GELF_CHUNK_DATA + 1;      // go-gelf's count: one more, empty, when n is a multiple
    if (chunks > 128) return;
    unsigned char chunk[GELF_CHUNK];
    chunk[0] = 0x1e;
    chunk[1] = 0x0f;
    if (getrandom(chunk + 2, 8, GRND_NONBLOCK) != 8) {
        long long seed = now_ns(CLOCK_MONOTONIC) ^ e->time_ns;
        memcpy(chunk + 2, &seed, 8);
    }
    chunk[11] = (unsigned char)chunks;
    for (size_t i = 0, off = 0; i < chunks; i++) {
        size_t part = n - off < GELF_CHUNK_DATA ? n - off : GELF_CHUNK_DATA;
        chunk[10] = (unsigned char)i;
        memcpy(chunk + 12, payload + off, part);
        send(gelf_udp_fd, chunk, 12 + part, MSG_DONTWAIT | MSG_NOSIGNAL);
        off += part;
    }
}

// ---------------------------------------------------------------------------------------------
// fluentd (docker's fluentd driver, fluent-logger-golang's Forward protocol, message mode)
//
// One msgpack message per entry, as fluent-logger-golang encodes it for dockerd: [tag, time,
// record, option {}], time as an integer of seconds (msgp's smallest signed form) or, with
// sub-second precision, the EventTime extension (fixext8 type 0: seconds, nanoseconds, u32 BE);
// record a map of strings: container_id, container_name (with its slash), source, log (the line
// without its newline, bytes as they came), the extra attributes (labels, env; one named like a
// field above replaces it, as in dockerd's map), and for a partial entry partial_message "true",
// partial_id, partial_ordinal, partial_last. Through the queue above; fluentd-buffer-limit
// messages at most; connection attempts wait fluentd-retry-wait × 1.5^(n-1) after the n-th
// failure in a row (the first retry at two thirds of it), at most 60 s, and fluentd-max-retries
// failures drop the queue, as fluent-logger-golang's write gives up.

#define FLUENTD_MESSAGE_MAX (LOG_LINE_MAX + 8 * 1024 + 1024)

static unsigned char fluentd_message[FLUENTD_MESSAGE_MAX];

static long long fluentd_delay_ns(void)
{
    double ms = (double)opt.fluentd_retry_wait_ms / 1.5;
    for (int i = 1; i < fwd.failures && ms < 60000; i++) ms *= 1.5;
    if (ms > 60000) ms = 60000;
    return (long long)(ms * 1000000.0);
}

static long long forward_delay_ns(void)
{
    return opt.fluentd_address ? fluentd_delay_ns() : opt.gelf_address ? gelf_delay_ns() : 1000000000LL;   // syslog: an attempt a second
}

static void fluentd_open(void)
{
    int type;
    char err[512];
    if (!parse_address(opt.fluentd_address, &fwd.addr, &fwd.addrlen, &type) || type != SOCK_STREAM)
        startup_fail("failed to initialize logging driver: fluentd: bad address %s", opt.fluentd_address);
    fwd.give_up_after = opt.fluentd_max_retries;
    fwd.max_messages = (size_t)opt.fluentd_buffer_limit;
    fwd.retry_at_once_after_write_error = true;
    if (forward_open(opt.fluentd_address, err, sizeof err)) return;
    // fluentd-async: connected later, when the first message is sent (and retried as any broken connection).
    if (!opt.fluentd_async) startup_fail("failed to initialize logging driver: %s", err);
}

static unsigned char *mp_str(unsigned char *p, const void *s, size_t n)
{
    if (n < 32) *p++ = (unsigned char)(0xa0 | n);
    else if (n < 256) { *p++ = 0xd9; *p++ = (unsigned char)n; }
    else if (n < 65536) { *p++ = 0xda; *p++ = (unsigned char)(n >> 8); *p++ = (unsigned char)n; }
    else { *p++ = 0xdb; put_be32(p, (uint32_t)n); p += 4; }
    memcpy(p, s, n);
    return p + n;
}

static unsigned char *mp_cstr(unsigned char *p, const char *s) { return mp_str(p, s, strlen(s)); }

// Standard base64 with padding (Go's base64.StdEncoding); dst holds 4 * ceil(n / 3) + 1 bytes.
static void base64_encode(char *dst, const unsigned char *src, size_t n)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < n ? (uint32_t)src[i + 1] << 8 : 0) | (i + 2 < n ? src[i + 2] : 0);
        *dst++ = digits[v >> 18 & 63];
        *dst++ = digits[v >> 12 & 63];
        *dst++ = i + 1 < n ? digits[v >> 6 & 63] : '=';
        *dst++ = i + 2 < n ? digits[v & 63] : '=';
    }
    *dst = 0;
}

static bool fluentd_extra_has(const char *key)
{
    for (int i = 0; i < opt.n_fluentd_extra; i += 2)
        if (!strcmp(opt.fluentd_extra[i], key)) return true;
    return false;
}

static const char *fluentd_field(const char *key, const char *value)
{
    for (int i = 0; i < opt.n_fluentd_extra; i += 2)
        if (!strcmp(opt.fluentd_extra[i], key)) value = opt.fluentd_extra[i + 1];
    return value;
}

static void fluentd_entry(const struct entry *e)
{
    static const char *const base[] = { "container_id", "container_name", "source", "log" };
    static const char *const partial[] = { "partial_message", "partial_id", "partial_ordinal", "partial_last" };
    unsigned char *p = fluentd_message;
    *p++ = 0x94;
    p = mp_cstr(p, opt.fluentd_tag);
    long long sec = e->time_ns / 1000000000LL;
    if (opt.fluentd_subsecond) {
        *p++ = 0xd7;
        *p++ = 0;
        put_be32(p, (uint32_t)sec);
        put_be32(p + 4, (uint32_t)(e->time_ns % 1000000000LL));
        p += 8;
    } else if (sec <= 127) {
        *p++ = (unsigned char)sec;
    } else if (sec <= 32767) {
        *p++ = 0xd1; *p++ = (unsigned char)(sec >> 8); *p++ = (unsigned char)sec;
    } else if (sec <= 2147483647LL) {
        *p++ = 0xd2;
        put_be32(p, (uint32_t)sec);
        p += 4;
    } else {
        *p++ = 0xd3;
        put_be32(p, (uint32_t)(sec >> 32));
        put_be32(p + 4, (uint32_t)sec);
        p += 8;
    }
    // The record: the four fields, the extras not named like one of them (or like a partial field, which wins), the partial fields.
    size_t fields = 4 + (e->partial ? 4 : 0);
    for (int i = 0; i < opt.n_fluentd_extra; i += 2) {
        bool shadowed = false;
        for (int k = 0; k < 4; k++) shadowed |= !strcmp(opt.fluentd_extra[i], base[k]) || (e->partial && !strcmp(opt.fluentd_extra[i], partial[k]));
        if (!shadowed) fields++;
    }
    if (fields < 16) *p++ = (unsigned char)(0x80 | fields);
    else { *p++ = 0xde; *p++ = (unsigned char)(fields >> 8); *p++ = (unsigned char)fields; }
    p = mp_cstr(mp_cstr(p, "container_id"), fluentd_field("container_id", opt.id));
    p = mp_cstr(mp_cstr(p, "container_name"), fluentd_field("container_name", opt.fluentd_name));
    p = mp_cstr(mp_cstr(p, "source"), fluentd_field("source", e->source));
    p = mp_cstr(p, "log");
    p = fluentd_extra_has("log") ? mp_cstr(p, fluentd_field("log", "")) : mp_str(p, e->line, e->len);
    for (int i = 0; i < opt.n_fluentd_extra; i += 2) {
        bool shadowed = false;
        for (int k = 0; k < 4; k++) shadowed |= !strcmp(opt.fluentd_extra[i], base[k]) || (e->partial && !strcmp(opt.fluentd_extra[i], partial[k]));
        if (!shadowed) p = mp_cstr(mp_cstr(p, opt.fluentd_extra[i]), opt.fluentd_extra[i + 1]);
    }
    if (e->partial) {
        char ordinal[16];
        snprintf(ordinal, sizeof ordinal, "%d", e->ordinal);
        p = mp_cstr(mp_cstr(p, "partial_message"), "true");
        p = mp_cstr(mp_cstr(p, "partial_id"), e->partial_id);
        p = mp_cstr(mp_cstr(p, "partial_ordinal"), ordinal);
        p = mp_cstr(mp_cstr(p, "partial_last"), e->last ? "true" : "false");
    }
    if (opt.fluentd_request_ack) {
        // {"chunk": ID}: fluent-logger-golang's id, base64 of the time in seconds and a random number (little endian),
        // 24 characters that end the message, where fluentd_check_ack finds them.
        unsigned char id[16];
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) rnd = (uint64_t)now_ns(CLOCK_MONOTONIC) ^ (uint64_t)e->time_ns;
        for (int k = 0; k < 8; k++) { id[k] = (unsigned char)((uint64_t)sec >> (8 * k)); id[8 + k] = (unsigned char)(rnd >> (8 * k)); }
        char chunk[25];
        base64_encode(chunk, id, sizeof id);
        *p++ = 0x81;
        p = mp_cstr(mp_cstr(p, "chunk"), chunk);
    } else {
        *p++ = 0x80;    // option: {}
    }
    forward_send(fluentd_message, (size_t)(p - fluentd_message));
}

// A msgpack string at *p (fixstr, str8, str16) before end: 1 with its bytes and length (*p moved past it),
// 0 when it is not all there yet, -1 when it is something else.
static int mp_read_str(const unsigned char **p, const unsigned char *end, const unsigned char **str, size_t *len)
{
    const unsigned char *q = *p;
    if (q >= end) return 0;
    size_t head = (*q & 0xe0) == 0xa0 ? 1 : *q == 0xd9 ? 2 : *q == 0xda ? 3 : 0;
    if (head == 0) return -1;
    if (q + head > end) return 0;
    *len = head == 1 ? (size_t)(*q & 31) : head == 2 ? q[1] : ((size_t)q[1] << 8 | q[2]);
    if (q + head + *len > end) return 0;
    *str = q + head;
    *p = q + head + *len;
    return 1;
}

// fluentd's answer to the message awaiting its ack, {"ack": ID} (a map of strings, as fluentd's
// in_forward sends it): 1 when ID is that message's chunk id, -1 when it is anything else, 0 while
// it is incomplete.
static int fluentd_check_ack(void)
{
    const unsigned char *p = fwd.answer, *end = fwd.answer + fwd.answer_n;
    if (p >= end) return 0;
    if ((*p & 0xf0) != 0x80) return -1;
    int pairs = *p++ & 15;
    bool matched = false;
    for (int k = 0; k < pairs; k++) {
        const unsigned char *key, *value;
        size_t klen, vlen;
        int r = mp_read_str(&p, end, &key, &klen);
        if (r == 1) r = mp_read_str(&p, end, &value, &vlen);
        if (r <= 0) return r;
        if (klen == 3 && !memcmp(key, "ack", 3)) {
            uint32_t len = get_be32(fwd.queue.p + fwd.head);
            const unsigned char *chunk = fwd.queue.p + fwd.head + 4 + len - 24;
            if (vlen != 24 || memcmp(value, chunk, 24)) return -1;
            matched = true;
        }
    }
    return matched ? 1 : -1;
}

// ---------------------------------------------------------------------------------------------
// journald (docker's journald driver, go-systemd's journal.Send; the log file is then the cache)
//
// One datagram per entry, empty lines too, to journald's native socket, as go-systemd writes it
// for dockerd: "PRIORITY=6\n" (stdout) or 3 (stderr), "MESSAGE=LINE\n", the fields berthd gave
// (CONTAINER_ID, CONTAINER_ID_FULL, CONTAINER_NAME, CONTAINER_TAG, IMAGE_NAME, SYSLOG_IDENTIFIER,
// the labels/env attributes under sanitized names), and for a partial entry CONTAINER_PARTIAL_ID,
// _ORDINAL, _LAST and, but for the last part, CONTAINER_PARTIAL_MESSAGE=true. A value holding a
// newline goes in the native protocol's binary form (NAME\n, u64 LE length, value, \n). Sent
// without waiting: a datagram the socket does not take is dropped (go-systemd would pass one too
// large for the socket in a memfd; a 16 KiB line with its fields always fits).

#define JOURNALD_MESSAGE_MAX (LOG_LINE_MAX + 16384 + 1024)

static int journald_fd = -1;
static char journald_message[JOURNALD_MESSAGE_MAX];

static void journald_open(void)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(opt.journald_socket) >= sizeof sun.sun_path) startup_fail("journald socket path too long: %s", opt.journald_socket);
    strcpy(sun.sun_path, opt.journald_socket);
    journald_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (journald_fd < 0 || connect(journald_fd, (struct sockaddr *)&sun, sizeof sun) < 0)
        startup_fail("failed to initialize logging driver: journald is not enabled on this host");
}

static size_t journald_field(char *m, size_t n, const char *name, const void *value, size_t len)
{
    size_t nl = strlen(name);
    if (n + nl + len + 16 > sizeof journald_message) return n;
    memcpy(m + n, name, nl);
    n += nl;
    if (memchr(value, '\n', len)) {
        m[n++] = '\n';
        for (int i = 0; i < 8; i++) m[n++] = (char)((uint64_t)len >> (8 * i));
    } else {
        m[n++] = '=';
    }
    memcpy(m + n, value, len);
    n += len;
    m[n++] = '\n';
    return n;
}

static void journald_entry(const struct entry *e)
{
    char *m = journald_message;
    size_t n = journald_field(m, 0, "PRIORITY", strcmp(e->source, "stderr") ? "6" : "3", 1);
    n = journald_field(m, n, "MESSAGE", e->line, e->len);
    for (int i = 0; i < opt.n_journald_fields; i += 2)
        n = journald_field(m, n, opt.journald_fields[i], opt.journald_fields[i + 1], strlen(opt.journald_fields[i + 1]));
    if (e->partial) {
        char ordinal[16];
        int ol = snprintf(ordinal, sizeof ordinal, "%d", e->ordinal);
        n = journald_field(m, n, "CONTAINER_PARTIAL_ID", e->partial_id, strlen(e->partial_id));
        n = journald_field(m, n, "CONTAINER_PARTIAL_ORDINAL", ordinal, (size_t)ol);
        n = journald_field(m, n, "CONTAINER_PARTIAL_LAST", e->last ? "true" : "false", e->last ? 4 : 5);
        if (!e->last) n = journald_field(m, n, "CONTAINER_PARTIAL_MESSAGE", "true", 4);
    }
    send(journald_fd, m, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

// ---------------------------------------------------------------------------------------------
// json-file entries

#define LOG_ATTRS_MAX 8192                   // the longest --log-attrs (berthd computes it from labels and env)

static char json_line[LOG_LINE_MAX * 6 + LOG_ATTRS_MAX + 256];

// A JSON string's contents as Go's encoding/json writes them: invalid UTF-8 bytes become U+FFFD,
// control characters \u00XX but for \n, \r, \t (Go before 1.22, dockerd 20.10's, has no \b or
// \f); with html (json.Marshal's default, which gelf's messages go through) also <, >, & and
// U+2028, U+2029 escaped. dst holds at least 6 bytes per input byte.
static size_t json_escape(char *dst, const unsigned char *data, size_t len, bool html)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = data[i];
        if (c >= 0x80) {
            size_t l = utf8_seq(data + i, len - i);
            if (l == 0) {
                memcpy(dst + n, "\\ufffd", 6);
                n += 6;
                i++;
            } else if (html && l == 3 && c == 0xe2 && data[i + 1] == 0x80 && (data[i + 2] == 0xa8 || data[i + 2] == 0xa9)) {
                memcpy(dst + n, data[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
                n += 6;
                i += 3;
            } else {
                memcpy(dst + n, data + i, l);
                n += l;
                i += l;
            }
            continue;
        }
        i++;
        switch (c) {
        case '"': dst[n++] = '\\'; dst[n++] = '"'; break;
        case '\\': dst[n++] = '\\'; dst[n++] = '\\'; break;
        case '\n': dst[n++] = '\\'; dst[n++] = 'n'; break;
        case '\r': dst[n++] = '\\'; dst[n++] = 'r'; break;
        case '\t': dst[n++] = '\\'; dst[n++] = 't'; break;
        default:
            if (c < 0x20 || (html && (c == '<' || c == '>' || c == '&'))) {
                memcpy(dst + n, "\\u00", 4);
                dst[n + 4] = hex[c >> 4];
                dst[n + 5] = hex[c & 15];
                n += 6;
            } else {
                dst[n++] = (char)c;
            }
        }
    }
    return n;
}

// One json-file entry.
static void log_entry(struct stream *s, const unsigned char *data, size_t len)
{
    const char *stream = s->name;
    struct entry e = entry_of(s, data, len);
    if (opt.syslog_address) syslog_entry(s, data, len);
    if (opt.gelf_address) gelf_entry(&e);
    if (opt.fluentd_address) fluentd_entry(&e);
    if (opt.journald_socket) journald_entry(&e);
    if (opt.no_log) return;
    if (opt.log_local) {
        local_entry(&e);
        return;
    }
    size_t n = 0;
    n += (size_t)sprintf(json_line, "{\"log\":\"");
    n += json_escape(json_line + n, data, len, false);
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    // Docker's field order: log, stream, attrs (the log-opt labels/env values, when any), time.
    n += (size_t)snprintf(json_line + n, sizeof json_line - n,
        "\",\"stream\":\"%s\"%s%s,\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\"}\n",
        stream, opt.log_attrs ? ",\"attrs\":" : "", opt.log_attrs ? opt.log_attrs : "",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
    log_write(json_line, n, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
}

// Splits one read of a stream into log entries as dockerd's copier does: at newlines (each entry
// keeps its '\n'), and a line that fills its 16 KiB buffer without one into partial entries of 16 KiB
// (not inside a UTF-8 sequence); the start of a line waits for the rest (the attach clients have
// it at once), and at EOF what is left is logged as is (a partial entry that is not the last).
static void log_output(struct stream *s, const unsigned char *data, size_t len, bool eof)
{
    static unsigned char work[LOG_LINE_MAX + MSG_MAX + 8];
    size_t n = 0;
    memcpy(work, s->carry, s->ncarry);
    n = s->ncarry;
    s->ncarry = 0;
    memcpy(work + n, data, len);
    n += len;

    size_t p = 0;
    while (p < n) {
        unsigned char *nl = memchr(work + p, '\n', n - p);
        size_t line = nl ? (size_t)(nl - (work + p)) + 1 : n - p;
        while (line > LOG_LINE_MAX || (!nl && line == LOG_LINE_MAX)) {
            size_t cut = LOG_LINE_MAX;
            if (p + cut < n) while (cut > LOG_LINE_MAX - 3 && (work[p + cut] & 0xC0) == 0x80) cut--;   // not inside a character
            else cut -= utf8_incomplete_tail(work + p, cut);
            log_entry(s, work + p, cut);
            p += cut;
            line -= cut;
        }
        if (!nl && !eof) {
            memcpy(s->carry, work + p, line);
            s->ncarry = line;
            break;
        }
        if (line > 0) log_entry(s, work + p, line);
        p += line;
        if (!nl) break;
    }
}

// ---------------------------------------------------------------------------------------------
// Attach clients

static void close_stdin_now(void)
{
    if (stdin_closed) return;
    stdin_closed = true;
    stdin_pending.n = 0;
    if (opt.tty) {
        // The pty stays open (closing the master would hang up the container's terminal):
        // send the terminal's end-of-file character instead.
        if (stdin_fd >= 0) write_all(stdin_fd, "\x04", 1);
        stdin_fd = -1;
    } else {
        close_fd(&stdin_fd);
    }
}

static void request_stdin_close(void)
{
    if (stdin_closed) return;
    stdin_close_requested = true;
    if (stdin_pending.n == 0) close_stdin_now();
}

static void drop_client(int i)
{
    // A client going away does not close the container's stdin, even with --stdin-once: a detach
    // (docker's ctrl-p ctrl-q) is a disconnect too, and the container must keep running. The
    // engine sends 'C' when the attached stdin reaches its end.
    close(clients[i].fd);
    free(clients[i].queue.p);
    clients[i] = clients[--n_clients];
}

static bool client_input(int i, bool to_the_end);

// Drops client i after a failed send. The send fails because the client hung up, and it may have
// sent packets before that which are still queued for us (its 'C' after its stdin ended, a resize):
// they are read and acted on first. Dropping at once lost a 'C' when the client closed between
// the two sends of one broadcast (its stdin then never closed: seen once in CI).
static void drop_client_after_send_error(int i)
{
    if (client_input(i, true)) drop_client(i);   // false: client_input dropped it at its end of file
}

static size_t queued(const struct client *c)
{
    return c->queue.n - c->queue_off;
}

static long long lossless_progress_ns;   // when a lossless client last took queued output

// Sends the queued packets of client i in order. Returns false when the client was dropped.
static bool flush_client(int i)
{
    struct client *c = &clients[i];
    if (c->lossless && queued(c) > 0) lossless_progress_ns = now_ns(CLOCK_MONOTONIC);
    while (queued(c) > 0) {
        unsigned char *p = c->queue.p + c->queue_off;
        size_t len = (size_t)p[0] | (size_t)p[1] << 8;
        ssize_t r = send(c->fd, p + 2, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return true;
        if (r < 0) {
            drop_client_after_send_error(i);
            return false;
        }
        c->queue_off += len + 2;
    }
    free(c->queue.p);   // a lag burst must not keep its memory
    c->queue = (struct buf){ 0 };
    c->queue_off = 0;
    return true;
}

// Each client gets every packet in order. A client whose socket is full gets a queue of up to
// CLIENT_QUEUE_MAX bytes; beyond that it is dropped: the container never waits for a client.
static void broadcast(unsigned char stream_id, const unsigned char *data, size_t len)
{
    static unsigned char msg[MSG_MAX];
    msg[0] = stream_id;
    memcpy(msg + 1, data, len);
    for (int i = 0; i < n_clients;) {
        struct client *c = &clients[i];
        if (queued(c) == 0) {
            ssize_t r;
            do r = send(c->fd, msg, len + 1, MSG_DONTWAIT | MSG_NOSIGNAL); while (r < 0 && errno == EINTR);
            if (r >= 0) { i++; continue; }
            if (errno != EAGAIN) { drop_client_after_send_error(i); continue; }
        }
        if (!c->lossless && queued(c) + len + 3 > CLIENT_QUEUE_MAX) {
            // A client that asked for lossless delivery right after connecting may not have had
            // that 'L' read yet (the output held for --wait-for-attach is flushed before the loop
            // reads clients): read what it sent before taking it for a lagging one.
            if (!client_input(i, false)) continue;   // dropped at its end of file
            if (!clients[i].lossless) { drop_client(i); continue; }
        }
        if (c->queue_off > 0 && c->queue_off >= c->queue.n / 2) {   // compact
            buf_consume(&c->queue, c->queue_off);
            c->queue_off = 0;
        }
        unsigned char header[2] = { (unsigned char)((len + 1) & 0xff), (unsigned char)((len + 1) >> 8) };
        if (!buf_append(&c->queue, header, 2) || !buf_append(&c->queue, msg, len + 1)) { drop_client(i); continue; }
        i++;
    }
}

static void accept_clients(void)
{
    for (;;) {
        int fd = accept4(attach_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;
        if (n_clients == MAX_CLIENTS) {
            close(fd);
            continue;
        }
        clients[n_clients] = (struct client){ .fd = fd, .serial = next_serial++ };
        n_clients++;
    }
}

// Reads the packets of client i. Returns false when the client was dropped. Above the stdin
// high-water mark it stops (the client waits), unless to_the_end: a client about to be dropped
// has all it sent read, at most one socket buffer more.
static bool client_input(int i, bool to_the_end)
{
    static unsigned char msg[MSG_MAX + 1];
    for (;;) {
        if (stdin_pending.n > STDIN_HIGH_WATER && !to_the_end) return true;
        ssize_t r = recv(clients[i].fd, msg, sizeof msg, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) continue;
        // A client that hung up with output unread in its own queue leaves ECONNRESET pending here,
        // and the kernel reports that error before the packets still queued (its 'C', its resize).
        // The error is cleared by being reported: read on to get them, then the end of file.
        if (r < 0 && errno == ECONNRESET) continue;
        if (r < 0 && errno == EAGAIN) return true;
        if (r <= 0) {
            drop_client(i);
            return false;
        }
        switch (msg[0]) {
        case 0:
            if (!stdin_closed && stdin_fd >= 0 && !stdin_close_requested) buf_append(&stdin_pending, msg + 1, (size_t)r - 1);
            break;
        case 'C':
            request_stdin_close();
            break;
        case 'L':
            clients[i].lossless = true;
            break;
        case 'R':
            if (r >= 5 && pty_master >= 0) {
                struct winsize ws = { 0 };
                ws.ws_row = (unsigned short)(msg[1] | msg[2] << 8);
                ws.ws_col = (unsigned short)(msg[3] | msg[4] << 8);
                ioctl(pty_master, TIOCSWINSZ, &ws);
            }
            break;
        default:
            break;   // unknown packets are ignored (room for later extensions)
        }
    }
}

// True while a lossless client has more than CLIENT_HOLD queued.
static bool clients_hold_output(void)
{
    for (int c = 0; c < n_clients; c++)
        if (clients[c].lossless && queued(&clients[c]) > CLIENT_HOLD) return true;
    return false;
}

// True while the container's output waits: for a lossless client, or (blocking mode) for the log server.
static bool output_held(void) { return clients_hold_output() || forward_holds_output(); }

static void flush_stdin(void)
{
    while (stdin_pending.n > 0 && stdin_fd >= 0) {
        ssize_t r = write(stdin_fd, stdin_pending.p, stdin_pending.n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return;
        if (r <= 0) {   // EPIPE: the container closed its stdin
            close_stdin_now();
            return;
        }
        buf_consume(&stdin_pending, (size_t)r);
    }
    if (stdin_pending.n == 0 && stdin_close_requested) close_stdin_now();
}

// ---------------------------------------------------------------------------------------------
// Children

static void reap_children(void)
{
    struct signalfd_siginfo si;
    while (read(sig_fd, &si, sizeof si) == sizeof si) {}
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        if (pid == compress_pid) {
            compress_pid = -1;
        } else if (pid == runtime_pid) {
            runtime_status = status;
            runtime_done = true;
        } else if (container_pid > 0 && pid == container_pid) {
            container_status = status;
            container_done = true;
            container_finished_ns = now_ns(CLOCK_REALTIME);
        } else if (container_pid <= 0 && n_early < (int)(sizeof early / sizeof early[0])) {
            early[n_early].pid = pid;
            early[n_early].status = status;
            early[n_early].ns = now_ns(CLOCK_REALTIME);
            n_early++;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sockets

static int listen_unix(const char *path, int type, const char *what)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof addr.sun_path) startup_fail("%s path too long (max %zu bytes): %s", what, sizeof addr.sun_path - 1, path);
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) startup_fail("socket for %s: %s", path, strerror(errno));
    unlink(path);
    mode_t old = umask(0077);
    int r = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (r < 0) startup_fail("bind %s: %s", path, strerror(errno));
    if (chmod(path, 0600) < 0) startup_fail("chmod %s: %s", path, strerror(errno));
    if (listen(fd, 64) < 0) startup_fail("listen %s: %s", path, strerror(errno));
    return fd;
}

// runc's console protocol: the runtime connects and sends one message carrying the pty master
// as SCM_RIGHTS. Returns true when the master was received.
static bool receive_console(void)
{
    int conn = accept4(console_listen, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) return false;
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char name[PATH_MAX];
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } control;
    struct iovec iov = { .iov_base = name, .iov_len = sizeof name };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.b, .msg_controllen = sizeof control.b };
    ssize_t r;
    do r = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
    close(conn);
    if (r < 0) return false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            if (pty_master >= 0) close(pty_master);
            pty_master = fd;
            set_nonblock(fd);
        }
    }
    return pty_master >= 0;
}

// Reads what is available from fd into b (bounded). Returns false at EOF or error.
static bool capture_read(int fd, struct buf *b)
{
    unsigned char tmp[8192];
    while (b->n < CAPTURE_MAX) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return true;
        if (r <= 0) return false;
        buf_append(b, tmp, (size_t)r);
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// Startup: run the runtime, collect its result, print the line.

static void startup(void)
{
    int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
    if (opt.tty) {
        console_listen = listen_unix(path_console, SOCK_STREAM, "console socket");
        if (pipe2(err_pipe, O_CLOEXEC) < 0) startup_fail("pipe: %s", strerror(errno));
    } else {
        if ((opt.open_stdin && pipe2(in_pipe, O_CLOEXEC) < 0) || pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0)
            startup_fail("pipe: %s", strerror(errno));
    }

    const char *args[16];
    int n = 0;
    if (opt.bundle) {
        args[n++] = "create";
        args[n++] = "--bundle";
        args[n++] = opt.bundle;
        args[n++] = "--pid-file";
        args[n++] = path_pid;
        if (opt.tty) { args[n++] = "--console-socket"; args[n++] = path_console; }
    } else {
        args[n++] = "exec";
        args[n++] = "--detach";
        args[n++] = "--pid-file";
        args[n++] = path_pid;
        if (opt.tty) { args[n++] = "--tty"; args[n++] = "--console-socket"; args[n++] = path_console; }
        args[n++] = "--process";
        args[n++] = opt.exec_process;
    }
    args[n++] = opt.id;
    args[n] = NULL;

    if (opt.tty) runtime_pid = spawn_runtime(args, -1, -1, err_pipe[1]);
    else runtime_pid = spawn_runtime(args, in_pipe[0], out_pipe[1], err_pipe[1]);
    if (runtime_pid < 0) startup_fail("fork: %s", strerror(errno));
    // Only the container keeps the write ends of its output pipes (and the read end of stdin).
    close_fd(&in_pipe[0]);
    close_fd(&out_pipe[1]);
    close_fd(&err_pipe[1]);
    if (opt.tty) {
        runtime_err_fd = err_pipe[0];
    } else {
        stdin_fd = in_pipe[1];
        out.fd = out_pipe[0];
        err.fd = err_pipe[0];
    }
    if (stdin_fd >= 0) set_nonblock(stdin_fd);
    if (out.fd >= 0) set_nonblock(out.fd);
    if (err.fd >= 0) set_nonblock(err.fd);
    if (runtime_err_fd >= 0) set_nonblock(runtime_err_fd);

    long long deadline = now_ns(CLOCK_MONOTONIC) + STARTUP_TIMEOUT_MS * 1000000LL;
    while (!runtime_done) {
        struct pollfd pf[5];
        int np = 0;
        pf[np++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
        if (console_listen >= 0 && pty_master < 0) pf[np++] = (struct pollfd){ .fd = console_listen, .events = POLLIN };
        // The runtime's stderr is the container's (non-tty): captured, it is the error text if
        // the runtime fails and the container's first output if it succeeds.
        struct buf *bufs[5] = { 0 };
        if (out.fd >= 0 && out.capture.n < CAPTURE_MAX) { bufs[np] = &out.capture; pf[np++] = (struct pollfd){ .fd = out.fd, .events = POLLIN }; }
        if (err.fd >= 0 && err.capture.n < CAPTURE_MAX) { bufs[np] = &err.capture; pf[np++] = (struct pollfd){ .fd = err.fd, .events = POLLIN }; }
        if (runtime_err_fd >= 0 && runtime_err.n < CAPTURE_MAX) { bufs[np] = &runtime_err; pf[np++] = (struct pollfd){ .fd = runtime_err_fd, .events = POLLIN }; }
        long long left = (deadline - now_ns(CLOCK_MONOTONIC)) / 1000000;
        if (left <= 0) startup_fail("%s did not finish within %d s", opt.runtime, STARTUP_TIMEOUT_MS / 1000);
        int r = poll(pf, (nfds_t)np, (int)(left > 1000 ? 1000 : left));
        if (r < 0 && errno != EINTR) startup_fail("poll: %s", strerror(errno));
        for (int i = 0; r > 0 && i < np; i++) {
            if (!pf[i].revents) continue;
            if (pf[i].fd == sig_fd) reap_children();
            else if (pf[i].fd == console_listen) receive_console();
            else if (!capture_read(pf[i].fd, bufs[i])) {
                if (pf[i].fd == out.fd) out.fd = -1, close(pf[i].fd);
                else if (pf[i].fd == err.fd) err.fd = -1, close(pf[i].fd);
                else close_fd(&runtime_err_fd);
            }
        }
    }

    if (!WIFEXITED(runtime_status) || WEXITSTATUS(runtime_status) != 0) {
        if (err.fd >= 0) capture_read(err.fd, &err.capture);
        if (out.fd >= 0) capture_read(out.fd, &out.capture);
        if (runtime_err_fd >= 0) capture_read(runtime_err_fd, &runtime_err);
        struct buf *text = opt.tty ? &runtime_err : err.capture.n ? &err.capture : &out.capture;
        while (text->n > 0 && (text->p[text->n - 1] == '\n' || text->p[text->n - 1] == ' ' || text->p[text->n - 1] == '\r')) text->n--;
        buf_append(text, "", 1);
        const char *msg = (const char *)text->p;
        while (*msg == ' ' || *msg == '\n') msg++;
        char status[64];
        if (WIFEXITED(runtime_status)) snprintf(status, sizeof status, "exit status %d", WEXITSTATUS(runtime_status));
        else snprintf(status, sizeof status, "killed by signal %d", WTERMSIG(runtime_status));
        runtime_pid = -1;   // the runtime failed: it cleans up after itself, nothing to delete
        startup_fail("%s%s(runtime %s)", msg, *msg ? " " : "", status);
    }
    close_fd(&runtime_err_fd);

    if (opt.tty && pty_master < 0) receive_console();   // sent just before the runtime exited
    int pidfd = open(path_pid, O_RDONLY | O_CLOEXEC);
    char pidtext[32] = { 0 };
    if (pidfd < 0) startup_fail("read pid file %s: %s", path_pid, strerror(errno));
    ssize_t pr = read(pidfd, pidtext, sizeof pidtext - 1);
    close(pidfd);
    long pid = pr > 0 ? strtol(pidtext, NULL, 10) : 0;
    if (pid <= 0) startup_fail("pid file %s holds no pid", path_pid);
    container_pid = (pid_t)pid;
    for (int i = 0; i < n_early; i++)
        if (early[i].pid == container_pid) {
            container_done = true;
            container_status = early[i].status;
            container_finished_ns = early[i].ns;
        }
    if (opt.tty && pty_master < 0) startup_fail("the runtime did not send the pty master on %s", path_console);
    if (opt.tty) {
        unlink(path_console);
        close_fd(&console_listen);
        out.fd = pty_master;
        if (opt.open_stdin) stdin_fd = pty_master;
    }

    char line[64];
    snprintf(line, sizeof line, "%d %d", getpid(), container_pid);
    report_line("ok ", line);
}

// ---------------------------------------------------------------------------------------------
// The event loop after "ok"

static void stream_eof(struct stream *s)
{
    log_output(s, NULL, 0, true);
    if (s->fd == pty_master) {
        pty_master = -1;
        if (stdin_fd == s->fd) stdin_fd = -1;
    }
    close_fd(&s->fd);
}

static void stream_read(struct stream *s)
{
    static unsigned char data[MSG_MAX - 1];
    for (int rounds = 0; rounds < 16 && s->fd >= 0 && !output_held(); rounds++) {
        ssize_t r = read(s->fd, data, sizeof data);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return;
        if (r <= 0) {   // EOF; EIO on a pty master once every slave fd is closed
            stream_eof(s);
            return;
        }
        broadcast(s->id, data, (size_t)r);
        log_output(s, data, (size_t)r, false);
    }
}

static void flush_capture(struct stream *s)
{
    for (size_t off = 0; off < s->capture.n;) {
        size_t len = s->capture.n - off > MSG_MAX - 1 ? MSG_MAX - 1 : s->capture.n - off;
        broadcast(s->id, s->capture.p + off, len);
        log_output(s, s->capture.p + off, len, false);
        off += len;
    }
    free(s->capture.p);
    s->capture = (struct buf){ 0 };
}

static void write_exit_file(void)
{
    int code = WIFEXITED(container_status) ? WEXITSTATUS(container_status)
             : WIFSIGNALED(container_status) ? 128 + WTERMSIG(container_status) : 255;
    char text[64];
    int len = snprintf(text, sizeof text, "%d %lld\n", code, container_finished_ns);
    int fd = open(path_exit_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    write_all(fd, text, (size_t)len);
    fsync(fd);
    close(fd);
    if (rename(path_exit_tmp, path_exit) < 0) return;
    int dir = open(opt.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
}

static void event_loop(void)
{
    // --wait-for-attach: the output is held back (read into the capture buffers, up to 1 MiB a
    // stream; beyond that the process blocks on its full pipe) until the caller's attach client
    // connects, so that it misses nothing of an exec's output. It is read rather than left in
    // the pipe because a pty loses what its slave wrote once the last slave fd closes unread.
    long long hold_until = now_ns(CLOCK_MONOTONIC) + WAIT_FOR_ATTACH_MS * 1000000LL;
    bool out_open = true, err_open = true;
    while (opt.wait_for_attach) {
        accept_clients();
        long long left = (hold_until - now_ns(CLOCK_MONOTONIC)) / 1000000;
        if (n_clients > 0 || left <= 0) break;
        struct pollfd pf[4] = { { .fd = sig_fd, .events = POLLIN }, { .fd = attach_listen, .events = POLLIN } };
        int np = 2, i_out = -1, i_err = -1;
        if (out.fd >= 0 && out_open && out.capture.n < CAPTURE_MAX) { i_out = np; pf[np++] = (struct pollfd){ .fd = out.fd, .events = POLLIN }; }
        if (err.fd >= 0 && err_open && err.capture.n < CAPTURE_MAX) { i_err = np; pf[np++] = (struct pollfd){ .fd = err.fd, .events = POLLIN }; }
        if (poll(pf, (nfds_t)np, (int)left) <= 0) continue;
        if (pf[0].revents) reap_children();
        if (i_out >= 0 && pf[i_out].revents) out_open = capture_read(out.fd, &out.capture);
        if (i_err >= 0 && pf[i_err].revents) err_open = capture_read(err.fd, &err.capture);
    }
    accept_clients();
    flush_capture(&out);
    flush_capture(&err);
    long long drain_deadline = 0;
    for (;;) {
        if (container_done && drain_deadline == 0)
            drain_deadline = now_ns(CLOCK_MONOTONIC) + (opt.bundle ? CONTAINER_DRAIN_MS : EXEC_DRAIN_MS) * 1000000LL;
        if (container_done && out.fd < 0 && err.fd < 0) break;
        bool held = output_held();
        if (drain_deadline && now_ns(CLOCK_MONOTONIC) >= drain_deadline) {
            // Output waiting for a lossless client that still takes it is not cut off.
            if (!clients_hold_output() || now_ns(CLOCK_MONOTONIC) - lossless_progress_ns > CLIENT_FLUSH_MS * 1000000LL) break;
            drain_deadline = now_ns(CLOCK_MONOTONIC) + CLIENT_FLUSH_MS * 1000000LL;
        }

        struct pollfd pf[6 + MAX_CLIENTS];
        int np = 0, i_out = -1, i_err = -1, i_in = -1, i_clients;
        pf[np++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
        pf[np++] = (struct pollfd){ .fd = attach_listen, .events = POLLIN };
        pf[np++] = (struct pollfd){ .fd = forward_events() ? fwd.fd : -1, .events = forward_events() };   // pf[2]: the log server
        bool want_stdin_out = stdin_fd >= 0 && stdin_pending.n > 0;
        // Held output is not polled at all: a pipe whose writer has gone reports POLLHUP whether
        // asked or not, and the loop would spin until the lossless client catches up.
        if (out.fd >= 0) {
            i_out = np;
            short events = (short)((held ? 0 : POLLIN) | (want_stdin_out && stdin_fd == out.fd ? POLLOUT : 0));
            pf[np++] = (struct pollfd){ .fd = events ? out.fd : -1, .events = events };
        }
        if (err.fd >= 0) {
            i_err = np;
            pf[np++] = (struct pollfd){ .fd = held ? -1 : err.fd, .events = POLLIN };
        }
        if (want_stdin_out && stdin_fd != out.fd) {
            i_in = np;
            pf[np++] = (struct pollfd){ .fd = stdin_fd, .events = POLLOUT };
        }
        i_clients = np;
        bool read_clients = stdin_pending.n <= STDIN_HIGH_WATER;
        for (int c = 0; c < n_clients; c++) {
            short events = (short)((read_clients ? POLLIN : 0) | (queued(&clients[c]) ? POLLOUT : 0));
            pf[np++] = (struct pollfd){ .fd = events ? clients[c].fd : -1, .events = events };
        }

        int timeout = -1;
        if (drain_deadline) {
            long long left = (drain_deadline - now_ns(CLOCK_MONOTONIC)) / 1000000 + 1;
            timeout = left < 0 ? 0 : (int)left;
        }
        int retry = forward_active() ? forward_timeout_ms() : -1;
        if (retry >= 0 && (timeout < 0 || retry < timeout)) timeout = retry;
        int r = poll(pf, (nfds_t)np, timeout);
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        // The log server's socket, or a connection attempt that is due (other events may keep poll from timing out).
        if (forward_active() && (pf[2].revents || forward_timeout_ms() == 0)) forward_ready(pf[2].revents);
        if (r == 0) continue;

        // New clients first: one that connected before the output was produced (an attach made
        // before `start`) must be accepted before that output is read and fanned out.
        if (pf[1].revents) accept_clients();
        if (pf[0].revents) reap_children();
        if (i_out >= 0 && (pf[i_out].revents & POLLOUT)) flush_stdin();
        if (i_in >= 0 && pf[i_in].revents) flush_stdin();
        if (i_out >= 0 && (pf[i_out].revents & (POLLIN | POLLHUP | POLLERR))) stream_read(&out);
        if (i_err >= 0 && pf[i_err].revents) stream_read(&err);
        // Client slots may move when one is dropped: walk the snapshot by fd.
        int polled = np - i_clients;
        int fds[MAX_CLIENTS];
        short rev[MAX_CLIENTS];
        for (int c = 0; c < polled; c++) { fds[c] = pf[i_clients + c].fd; rev[c] = pf[i_clients + c].revents; }
        for (int c = 0; c < polled; c++) {
            if (!rev[c] || fds[c] < 0) continue;
            for (int k = 0; k < n_clients; k++)
                if (clients[k].fd == fds[c]) {
                    // Input first: a client that sent 'C' and hung up must have its 'C' read before a
                    // failed write of pending output drops it.
                    if ((rev[c] & (POLLIN | POLLHUP | POLLERR)) && !client_input(k, false)) break;
                    if (rev[c] & POLLOUT) flush_client(k);
                    break;
                }
        }
        if (stdin_pending.n > 0) flush_stdin();
    }

    // Exit: the file first, then clients see EOF (so a client that saw EOF finds the file).
    unlink(path_attach);
    close_fd(&attach_listen);
    write_exit_file();
    long long flush_deadline = now_ns(CLOCK_MONOTONIC) + CLIENT_FLUSH_MS * 1000000LL;
    for (;;) {
        struct pollfd pf[MAX_CLIENTS];
        int np = 0;
        for (int c = 0; c < n_clients; c++)
            if (queued(&clients[c])) pf[np++] = (struct pollfd){ .fd = clients[c].fd, .events = POLLOUT };
        long long left = (flush_deadline - now_ns(CLOCK_MONOTONIC)) / 1000000;
        if (np == 0 || left <= 0) break;
        if (poll(pf, (nfds_t)np, (int)left) <= 0) continue;
        for (int p = 0; p < np; p++)
            for (int k = 0; k < n_clients; k++)
                if (clients[k].fd == pf[p].fd) {
                    // A lossless client that takes its output gets another CLIENT_FLUSH_MS.
                    if (clients[k].lossless && (pf[p].revents & POLLOUT))
                        flush_deadline = now_ns(CLOCK_MONOTONIC) + CLIENT_FLUSH_MS * 1000000LL;
                    if (pf[p].revents & POLLOUT) flush_client(k);
                    else if (pf[p].revents) drop_client(k);
                    break;
                }
    }
    forward_drain();
    // Read what the clients sent and nobody will act on now: closing a unix socket with packets
    // unread makes the peer's next read fail with ECONNRESET ahead of the output queued for it.
    for (int c = 0; c < n_clients; c++) {
        static unsigned char sink[MSG_MAX + 1];
        while (recv(clients[c].fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {}
        close(clients[c].fd);
    }
    n_clients = 0;
}

// ---------------------------------------------------------------------------------------------

static void __attribute__((noreturn)) usage(const char *why)
{
    char msg[1792];
    snprintf(msg, sizeof msg, "usage: %s (berth-monitor --runtime PATH [--runtime-arg ARG]... --id ID --state-dir DIR (--log PATH | --no-log) "
             "[--log-format json-file|local] [--log-mode blocking|non-blocking] [--log-max-buffer-size BYTES] [--log-max-size BYTES] [--log-max-files N] [--log-compress] [--log-attrs JSON] [--syslog ADDRESS --syslog-header TEXT [--syslog-facility N] [--syslog-time stamp|rfc3339|rfc3339micro] [--syslog-tls --syslog-tls-server-name NAME [--syslog-tls-ca FILE] [--syslog-tls-cert FILE] [--syslog-tls-key FILE] [--syslog-tls-skip-verify]]] "
             "[--gelf ADDRESS --gelf-host NAME --gelf-extra JSON [--gelf-compression gzip|zlib|none] [--gelf-compression-level N] [--gelf-tcp-max-reconnect N] [--gelf-tcp-reconnect-delay S]] "
             "[--fluentd ADDRESS --fluentd-tag TAG --fluentd-container-name NAME [--fluentd-async] [--fluentd-sub-second-precision] [--fluentd-request-ack] [--fluentd-buffer-limit N] [--fluentd-retry-wait MS] [--fluentd-max-retries N] [--fluentd-extra KEY VALUE]...] "
             "[--journald SOCKET [--journald-field NAME VALUE]...] [--tty] [--stdin] [--stdin-once] [--wait-for-attach] "
             "(--bundle DIR | --exec-process FILE))", why);
    report_line("error ", msg);
    _exit(2);
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(field) do { if (!v) usage("missing value"); field = v; i++; } while (0)
        if (!strcmp(a, "--runtime")) TAKE(opt.runtime);
        else if (!strcmp(a, "--runtime-arg")) {
            if (!v) usage("missing value");
            if (opt.n_runtime_args == MAX_RUNTIME_ARGS) usage("too many --runtime-arg");
            opt.runtime_args[opt.n_runtime_args++] = v;
            i++;
        }
        else if (!strcmp(a, "--id")) TAKE(opt.id);
        else if (!strcmp(a, "--state-dir")) TAKE(opt.state_dir);
        else if (!strcmp(a, "--log")) TAKE(opt.log_path);
        else if (!strcmp(a, "--no-log")) opt.no_log = true;
        else if (!strcmp(a, "--log-format")) {
            if (!v) usage("missing value");
            if (!strcmp(v, "local")) opt.log_local = true;
            else if (strcmp(v, "json-file")) usage("--log-format is json-file or local");
            i++;
        }
        else if (!strcmp(a, "--log-compress")) opt.log_compress = true;
        else if (!strcmp(a, "--log-mode")) {
            if (!v) usage("missing value");
            if (!strcmp(v, "non-blocking")) opt.log_nonblocking = true;
            else if (strcmp(v, "blocking")) usage("--log-mode is blocking or non-blocking");
            i++;
        }
        else if (!strcmp(a, "--log-max-buffer-size")) {
            if (!v) usage("missing value");
            char *end;
            long long n = strtoll(v, &end, 10);
            if (*end || !*v || n < 0) usage("bad number");
            opt.log_max_buffer = n;     // 0: one message at a time, as moby's ring with a size of 0
            i++;
        }
        else if (!strcmp(a, "--log-attrs")) {
            // Written into every entry as it is: berthd encodes it; here it is only bounded and must be an object.
            if (!v) usage("missing value");
            size_t len = strlen(v);
            if (len < 2 || len > LOG_ATTRS_MAX || v[0] != '{' || v[len - 1] != '}' || strchr(v, '\n')) usage("--log-attrs is a JSON object of at most 8192 bytes on one line");
            opt.log_attrs = v;
            i++;
        }
        else if (!strcmp(a, "--bundle")) TAKE(opt.bundle);
        else if (!strcmp(a, "--exec-process")) TAKE(opt.exec_process);
        else if (!strcmp(a, "--log-max-size") || !strcmp(a, "--log-max-files")) {
            if (!v) usage("missing value");
            char *end;
            long long n = strtoll(v, &end, 10);
            if (*end || n <= 0 || (a[10] == 'f' && n > 1000)) usage("bad number");
            if (a[10] == 'f') opt.log_max_files = (int)n;
            else opt.log_max_size = n;
            i++;
        }
        else if (!strcmp(a, "--tty")) opt.tty = true;
        else if (!strcmp(a, "--stdin")) opt.open_stdin = true;
        else if (!strcmp(a, "--stdin-once")) opt.stdin_once = true;
        else if (!strcmp(a, "--wait-for-attach")) opt.wait_for_attach = true;
        else if (!strcmp(a, "--syslog")) TAKE(opt.syslog_address);
        else if (!strcmp(a, "--syslog-header")) TAKE(opt.syslog_header);
        else if (!strcmp(a, "--syslog-tls")) opt.syslog_tls = true;
        else if (!strcmp(a, "--syslog-tls-server-name")) TAKE(opt.syslog_tls_name);
        else if (!strcmp(a, "--syslog-tls-ca")) TAKE(opt.syslog_tls_ca);
        else if (!strcmp(a, "--syslog-tls-cert")) TAKE(opt.syslog_tls_cert);
        else if (!strcmp(a, "--syslog-tls-key")) TAKE(opt.syslog_tls_key);
        else if (!strcmp(a, "--syslog-tls-skip-verify")) opt.syslog_tls_skip_verify = true;
        else if (!strcmp(a, "--syslog-facility")) {
            if (!v) usage("missing value");
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > 23) usage("--syslog-facility is a facility code, 0 to 23");
            opt.syslog_facility = (int)n;
            i++;
        }
        else if (!strcmp(a, "--syslog-time")) {
            if (!v) usage("missing value");
            if (!strcmp(v, "stamp")) opt.syslog_time = SYSLOG_STAMP;
            else if (!strcmp(v, "rfc3339")) opt.syslog_time = SYSLOG_RFC3339;
            else if (!strcmp(v, "rfc3339micro")) opt.syslog_time = SYSLOG_RFC3339_MICRO;
            else usage("--syslog-time is stamp, rfc3339 or rfc3339micro");
            i++;
        }
        else if (!strcmp(a, "--gelf")) TAKE(opt.gelf_address);
        else if (!strcmp(a, "--gelf-host")) TAKE(opt.gelf_host);
        else if (!strcmp(a, "--gelf-extra")) {
            if (!v) usage("missing value");
            size_t len = strlen(v);
            if (len < 2 || len > GELF_EXTRA_MAX || v[0] != '{' || v[len - 1] != '}') usage("--gelf-extra is a JSON object of at most 16384 bytes");
            opt.gelf_extra = v;
            i++;
        }
        else if (!strcmp(a, "--gelf-compression")) {
            if (!v) usage("missing value");
            if (!strcmp(v, "gzip")) opt.gelf_compression = GELF_GZIP;
            else if (!strcmp(v, "zlib")) opt.gelf_compression = GELF_ZLIB;
            else if (!strcmp(v, "none")) opt.gelf_compression = GELF_NONE;
            else usage("--gelf-compression is gzip, zlib or none");
            i++;
        }
        else if (!strcmp(a, "--gelf-compression-level") || !strcmp(a, "--gelf-tcp-max-reconnect") || !strcmp(a, "--gelf-tcp-reconnect-delay")
                 || !strcmp(a, "--fluentd-buffer-limit") || !strcmp(a, "--fluentd-retry-wait") || !strcmp(a, "--fluentd-max-retries")) {
            if (!v) usage("missing value");
            char *end;
            long long n = strtoll(v, &end, 10);
            bool level = !strcmp(a, "--gelf-compression-level");
            if (*end || !*v || n < (level ? -1 : 0) || n > (level ? 9 : 2147483647LL)) usage("bad number");
            if (level) opt.gelf_level = (int)n;
            else if (!strcmp(a, "--gelf-tcp-max-reconnect")) opt.gelf_max_reconnect = (int)n;
            else if (!strcmp(a, "--gelf-tcp-reconnect-delay")) opt.gelf_reconnect_delay = (int)n;
            else if (!strcmp(a, "--fluentd-buffer-limit")) opt.fluentd_buffer_limit = (long)n;
            else if (!strcmp(a, "--fluentd-retry-wait")) opt.fluentd_retry_wait_ms = n;
            else opt.fluentd_max_retries = (long)n;
            i++;
        }
        else if (!strcmp(a, "--fluentd")) TAKE(opt.fluentd_address);
        else if (!strcmp(a, "--fluentd-tag")) TAKE(opt.fluentd_tag);
        else if (!strcmp(a, "--fluentd-container-name")) TAKE(opt.fluentd_name);
        else if (!strcmp(a, "--fluentd-async")) opt.fluentd_async = true;
        else if (!strcmp(a, "--fluentd-sub-second-precision")) opt.fluentd_subsecond = true;
        else if (!strcmp(a, "--fluentd-request-ack")) opt.fluentd_request_ack = true;
        else if (!strcmp(a, "--fluentd-extra")) {
            if (i + 2 >= argc) usage("missing value");
            if (opt.n_fluentd_extra == (int)(sizeof opt.fluentd_extra / sizeof opt.fluentd_extra[0])) usage("too many --fluentd-extra");
            opt.fluentd_extra[opt.n_fluentd_extra++] = argv[i + 1];
            opt.fluentd_extra[opt.n_fluentd_extra++] = argv[i + 2];
            i += 2;
        }
        else if (!strcmp(a, "--journald")) TAKE(opt.journald_socket);
        else if (!strcmp(a, "--journald-field")) {
            if (i + 2 >= argc) usage("missing value");
            if (opt.n_journald_fields == (int)(sizeof opt.journald_fields / sizeof opt.journald_fields[0])) usage("too many --journald-field");
            opt.journald_fields[opt.n_journald_fields++] = argv[i + 1];
            opt.journald_fields[opt.n_journald_fields++] = argv[i + 2];
            i += 2;
        }
        else usage("unknown argument");
#undef TAKE
    }
    if (!opt.runtime || !opt.id || !opt.state_dir) usage("--runtime, --id and --state-dir are required");
    if (!opt.log_path == !opt.no_log) usage("exactly one of --log and --no-log");
    if (!opt.syslog_address != !opt.syslog_header) usage("--syslog and --syslog-header go together");
    if (opt.syslog_tls && (!opt.syslog_address || strncmp(opt.syslog_address, "tcp:", 4) || !opt.syslog_tls_name))
        usage("--syslog-tls goes with a --syslog tcp:IP:PORT and --syslog-tls-server-name");
    if (opt.syslog_header && strlen(opt.syslog_header) > 512) usage("--syslog-header is at most 512 bytes");
    if (opt.gelf_address && (!opt.gelf_host || !opt.gelf_extra)) usage("--gelf goes with --gelf-host and --gelf-extra");
    if (opt.gelf_host && strlen(opt.gelf_host) > 255) usage("--gelf-host is at most 255 bytes");
    if (opt.fluentd_address && (!opt.fluentd_tag || !opt.fluentd_name)) usage("--fluentd goes with --fluentd-tag and --fluentd-container-name");
    if (opt.fluentd_address) {
        size_t total = strlen(opt.fluentd_tag) + strlen(opt.fluentd_name);
        for (int k = 0; k < opt.n_fluentd_extra; k++) total += strlen(opt.fluentd_extra[k]) + 8;
        if (total > 8192) usage("--fluentd-tag, --fluentd-container-name and --fluentd-extra are at most 8192 bytes together");
    }
    size_t journald_size = 0;
    for (int k = 0; k < opt.n_journald_fields; k++) journald_size += strlen(opt.journald_fields[k]) + 16;
    if (journald_size > 16384) usage("--journald-field's names and values are at most 16384 bytes together");
    if (!!opt.syslog_address + !!opt.gelf_address + !!opt.fluentd_address + !!opt.journald_socket > 1) usage("one of --syslog, --gelf, --fluentd and --journald");
    if (!!opt.bundle == !!opt.exec_process) usage("exactly one of --bundle and --exec-process");
    if (opt.state_dir[0] != '/' || (opt.log_path && opt.log_path[0] != '/') || opt.runtime[0] != '/' ||
        (opt.bundle && opt.bundle[0] != '/') || (opt.exec_process && opt.exec_process[0] != '/'))
        usage("paths must be absolute (the monitor runs in /)");
    if (strlen(opt.state_dir) > PATH_MAX - 32 || (opt.log_path && strlen(opt.log_path) > PATH_MAX - 32)) usage("path too long");
}

static void close_inherited_fds(void)
{
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
    for (int fd = 3; fd < 65536; fd++) close(fd);
}

int main(int argc, char **argv)
{
    if (argc > 0) {
        arg_area = argv[0];
        arg_area_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
    }
    parse_args(argc, argv);

    // Detach: the caller reaps us at once; the monitor is a grandchild in its own session, so
    // it is neither berthd's child nor in its process group and outlives berthd.
    pid_t child = fork();
    if (child < 0) {
        report_line("error ", "fork failed");
        return 1;
    }
    if (child > 0) {
        // The line comes from the monitor: this process only waits for the intermediate child.
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, STDOUT_FILENO);
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        return 0;
    }
    setsid();
    pid_t monitor = fork();
    if (monitor != 0) _exit(monitor < 0 ? 1 : 0);

    close_inherited_fds();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > 2) close(null);
    }
    if (chdir("/") < 0) startup_fail("chdir /: %s", strerror(errno));
    umask(0022);
    // berthd's signals (and a closed terminal) must not end the monitor: only SIGKILL does.
    int ignored[] = { SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGTSTP, SIGALRM };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) signal(ignored[i], SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    sig_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0) startup_fail("signalfd: %s", strerror(errno));
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) startup_fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));

    if (mkdir(opt.state_dir, 0700) < 0 && errno != EEXIST) startup_fail("mkdir %s: %s", opt.state_dir, strerror(errno));
    join_path(path_pid, opt.state_dir, "pid");
    join_path(path_exit, opt.state_dir, "exit");
    join_path(path_exit_tmp, opt.state_dir, "exit.tmp");
    join_path(path_console, opt.state_dir, "console.sock");
    // A state dir reused for a restart must not show the last run's result.
    unlink(path_exit);
    unlink(path_exit_tmp);
    unlink(path_pid);

    if (!opt.no_log) {
        log_open();
        if (log_fd < 0) startup_fail("open log %s: %s", opt.log_path, strerror(errno));
    }
    if (opt.syslog_address) syslog_open();
    if (opt.gelf_address) gelf_open();
    if (opt.fluentd_address) fluentd_open();
    if (opt.journald_socket) journald_open();

    join_path(path_attach, opt.state_dir, "attach.sock");
    attach_listen = listen_unix(path_attach, SOCK_SEQPACKET, "attach socket");
    if (!opt.tty) path_console[0] = 0;

    startup();
    event_loop();
    return 0;
}
