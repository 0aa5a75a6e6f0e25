using System.Diagnostics;
using Berth.Seccomp.Bpf;
using System.Runtime.InteropServices;

namespace Berth.Seccomp.Tests.Support;

/// <summary>
/// A small C program, built with gcc on first use, that loads a filter into the kernel and makes syscalls under it.
/// For each probe it forks a child, which sets no_new_privs, loads the filter with seccomp(2) (closing a listener fd
/// at once, so notified syscalls fail with ENOSYS), makes one raw syscall and reports through shared memory; the
/// unfiltered parent prints one line per probe: <c>ret=R errno=E</c>, <c>trap data=D</c> (SIGSYS caught) or
/// <c>signal=S</c> (the child was killed).
/// </summary>
public static class SeccompHelper
{
    private const string Source = """
        #define _GNU_SOURCE
        #include <errno.h>
        #include <linux/filter.h>
        #include <linux/seccomp.h>
        #include <signal.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/mman.h>
        #include <sys/prctl.h>
        #include <sys/syscall.h>
        #include <sys/wait.h>
        #include <unistd.h>

        struct result { volatile int done, trapped, trap_data; volatile long ret; volatile int err; };
        static struct result *res;

        static void on_sigsys(int sig, siginfo_t *info, void *ctx) {
            (void)sig; (void)ctx;
            res->trapped = 1; res->trap_data = info->si_errno; res->done = 1;
            syscall(SYS_exit_group, 0);
        }

        int main(int argc, char **argv) {
            if (argc < 3) { fprintf(stderr, "usage: %s filter flags probe...\n", argv[0]); return 2; }
            FILE *f = fopen(argv[1], "rb");
            if (!f) { perror("open filter"); return 2; }
            static struct sock_filter insns[4096];
            size_t n = fread(insns, sizeof insns[0], 4096, f);
            fclose(f);
            struct sock_fprog prog = { .len = (unsigned short)n, .filter = insns };
            unsigned long flags = strtoul(argv[2], NULL, 0);
            res = mmap(NULL, sizeof *res, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
            for (int i = 3; i < argc; i++) {
                long a[7] = {0};
                char *copy = strdup(argv[i]), *tok, *save;
                int k = 0;
                for (tok = strtok_r(copy, ",", &save); tok && k < 7; tok = strtok_r(NULL, ",", &save), k++)
                    a[k] = strncmp(tok, "s:", 2) == 0 ? (long)(tok + 2) : (long)strtoull(tok, NULL, 0);
                memset((void *)res, 0, sizeof *res);
                fflush(stdout);
                pid_t pid = fork();
                if (pid == 0) {
                    struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
                    sigaction(SIGSYS, &sa, NULL);
                    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) _exit(90);
                    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
                    if (fd < 0) { res->err = errno; res->ret = -2; res->done = 1; _exit(91); }
                    if (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) syscall(SYS_close, fd);
                    long r = syscall(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
                    res->err = r < 0 ? errno : 0; res->ret = r; res->done = 1;
                    syscall(SYS_exit_group, 0);
                    for (;;) ;
                }
                int status;
                waitpid(pid, &status, 0);
                if (res->ret == -2 && !res->trapped) printf("load-failed errno=%d\n", res->err);
                else if (res->trapped) printf("trap data=%d\n", res->trap_data);
                else if (res->done) printf("ret=%ld errno=%d\n", res->ret, res->err);
                else if (WIFSIGNALED(status)) printf("signal=%d\n", WTERMSIG(status));
                else printf("exit=%d\n", WEXITSTATUS(status));
            }
            return 0;
        }
        """;

    private static readonly Lazy<(string? Path, string? Error)> s_binary = new(Build);

    public static string? SkipReason =>
        !OperatingSystem.IsLinux() ? "not Linux"
        : !File.Exists("/proc/sys/kernel/seccomp/actions_avail") ? "the kernel has no seccomp filter support"
        : s_binary.Value.Error;

    /// <summary>Runs the probes (each "nr[,arg…]", an arg "s:text" passes a string pointer) under the filter.</summary>
    public static string[] Run(ReadOnlySpan<SockFilter> filter, uint flags, params string[] probes)
    {
        var dir = Directory.CreateTempSubdirectory("berth-seccomp-");
        try
        {
            var file = Path.Combine(dir.FullName, "filter.bpf");
            File.WriteAllBytes(file, MemoryMarshal.AsBytes(filter).ToArray());
            var psi = new ProcessStartInfo(s_binary.Value.Path!) { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(file);
            psi.ArgumentList.Add(flags.ToString());
            foreach (var probe in probes) psi.ArgumentList.Add(probe.Replace("$DIR", dir.FullName));
            using var process = System.Diagnostics.Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEnd();
            var stderr = process.StandardError.ReadToEnd();
            if (!process.WaitForExit(30_000)) { process.Kill(); throw new TimeoutException("seccomp helper hung"); }
            if (process.ExitCode != 0) throw new InvalidOperationException($"seccomp helper exited {process.ExitCode}: {stderr}");
            return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        finally { dir.Delete(recursive: true); }
    }

    private static (string?, string?) Build()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"berth-seccomp-helper-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        var source = Path.Combine(dir, "helper.c");
        var binary = Path.Combine(dir, "helper");
        File.WriteAllText(source, Source);
        try
        {
            var psi = new ProcessStartInfo("gcc", ["-O1", "-o", binary, source]) { RedirectStandardError = true };
            using var gcc = System.Diagnostics.Process.Start(psi)!;
            var errors = gcc.StandardError.ReadToEnd();
            gcc.WaitForExit();
            AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };
            return gcc.ExitCode == 0 ? (binary, null) : (null, $"gcc failed: {errors}");
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return (null, "gcc is not installed");
        }
    }
}
